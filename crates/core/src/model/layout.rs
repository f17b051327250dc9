//! Compiling a spec: the ops the trainers run, and where every tensor lives in the flat
//! parameter buffer.

use fashion_data::NUM_CLASSES;

use super::{describe, Activation, Layer, ModelError, ModelSpec};

/// Where one Dense layer's tensors live in the flat parameter buffer (offsets in f32 elements).
/// The kernel is stored as Keras does, `[inputs, units]` row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseLayout {
    pub inputs: usize,
    pub units: usize,
    pub activation: Activation,
    pub kernel_offset: usize,
    pub bias_offset: usize,
}

impl DenseLayout {
    pub fn kernel_len(&self) -> usize {
        self.inputs * self.units
    }
    pub fn params(&self) -> usize {
        self.kernel_len() + self.units
    }
}

/// Where one Conv2D layer's tensors live. The kernel is stored as Keras does,
/// `[kernel_size, kernel_size, channels, filters]` row-major; images are NHWC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvLayout {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub filters: usize,
    pub kernel_size: usize,
    pub kernel_offset: usize,
    pub bias_offset: usize,
}

impl ConvLayout {
    pub fn out_height(&self) -> usize {
        self.height + 1 - self.kernel_size
    }
    pub fn out_width(&self) -> usize {
        self.width + 1 - self.kernel_size
    }
    pub fn kernel_len(&self) -> usize {
        self.kernel_size * self.kernel_size * self.channels * self.filters
    }
}

/// A 2×2 max pooling over an NHWC image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLayout {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl PoolLayout {
    pub fn out_height(&self) -> usize {
        self.height / 2
    }
    pub fn out_width(&self) -> usize {
        self.width / 2
    }
}

/// Zeros around an NHWC image (`padding` rows and columns on each side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PadLayout {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub padding: usize,
}

impl PadLayout {
    pub fn out_height(&self) -> usize {
        self.height + 2 * self.padding
    }
    pub fn out_width(&self) -> usize {
        self.width + 2 * self.padding
    }
}

/// Where one BatchNormalization layer's tensors live: γ and β among the trainable parameters,
/// the moving mean and variance after all trainable ones. As Keras's (`axis=-1`), it normalises
/// each of `width` features over the batch; after a Conv2D or MaxPooling2D, `width` is the
/// image's channels and each is normalised over the batch and the `positions` (height × width)
/// of the NHWC image, so a sample's `positions · width` values are `positions` rows of `width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchNormLayout {
    /// Features normalised (an image's channels).
    pub width: usize,
    /// Rows of `width` values per sample: 1, or an image's height × width.
    pub positions: usize,
    pub gamma_offset: usize,
    pub beta_offset: usize,
    pub moving_mean_offset: usize,
    pub moving_variance_offset: usize,
}

/// The layout of every tensor in the flat parameter buffer: trainable tensors first (Adam
/// updates `[0, trainable)`), then the non-trainable moving statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLayout {
    pub dense: Vec<DenseLayout>,
    pub conv: Vec<ConvLayout>,
    pub batch_norm: Vec<BatchNormLayout>,
    pub trainable: usize,
    pub total: usize,
}

impl ParamLayout {
    /// Every tensor as (name, shape, offset), named as Keras names the weights.
    pub fn named_tensors(&self) -> Vec<(String, Vec<usize>, usize)> {
        let mut tensors = Vec::new();
        for (i, layout) in self.conv.iter().enumerate() {
            let k = layout.kernel_size;
            tensors.push((
                format!("conv2d_{i}.kernel"),
                vec![k, k, layout.channels, layout.filters],
                layout.kernel_offset,
            ));
            tensors.push((format!("conv2d_{i}.bias"), vec![layout.filters], layout.bias_offset));
        }
        for (i, layout) in self.dense.iter().enumerate() {
            tensors.push((format!("dense_{i}.kernel"), vec![layout.inputs, layout.units], layout.kernel_offset));
            tensors.push((format!("dense_{i}.bias"), vec![layout.units], layout.bias_offset));
        }
        for (i, layout) in self.batch_norm.iter().enumerate() {
            for (what, offset) in [
                ("gamma", layout.gamma_offset),
                ("beta", layout.beta_offset),
                ("moving_mean", layout.moving_mean_offset),
                ("moving_variance", layout.moving_variance_offset),
            ] {
                tensors.push((format!("batch_normalization_{i}.{what}"), vec![layout.width], offset));
            }
        }
        tensors
    }
}

/// One step of the compiled model, as the trainers run it. A ReLU that follows a Dense or
/// BatchNorm layer is fused into it (`relu`): the op's output is then post-activation, and
/// whoever propagates a gradient into it masks by `output > 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Dense {
        layout: DenseLayout,
        relu: bool,
    },
    /// `index` counts dropout ops from 0: it salts the per-step random stream.
    Dropout {
        width: usize,
        rate: f32,
        index: u32,
    },
    BatchNorm {
        layout: BatchNormLayout,
        relu: bool,
    },
    Conv2D {
        layout: ConvLayout,
        relu: bool,
    },
    MaxPool2D {
        layout: PoolLayout,
    },
    ZeroPad2D {
        layout: PadLayout,
    },
}

impl Op {
    /// Features per sample this op outputs.
    pub fn width(&self) -> usize {
        match self {
            Op::Dense { layout, .. } => layout.units,
            Op::Dropout { width, .. } => *width,
            Op::BatchNorm { layout, .. } => layout.positions * layout.width,
            Op::Conv2D { layout, .. } => layout.out_height() * layout.out_width() * layout.filters,
            Op::MaxPool2D { layout } => layout.out_height() * layout.out_width() * layout.channels,
            Op::ZeroPad2D { layout } => layout.out_height() * layout.out_width() * layout.channels,
        }
    }

    /// Whether the output is post-ReLU.
    pub fn relu(&self) -> bool {
        match self {
            Op::Dense { relu, .. } | Op::BatchNorm { relu, .. } | Op::Conv2D { relu, .. } => *relu,
            Op::Dropout { .. } | Op::MaxPool2D { .. } | Op::ZeroPad2D { .. } => false,
        }
    }
}

impl ModelSpec {
    /// Checks the layers and turns them into the ops the trainers run, with the parameter layout.
    pub(super) fn compile(&self) -> Result<(Vec<Op>, ParamLayout), ModelError> {
        if self.layers.is_empty() {
            return Err(ModelError::Empty);
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(ModelError::L2Factor(self.l2));
        }
        self.schedule.validate()?;
        let last = self.layers.len() - 1;
        let mut ops: Vec<Op> = Vec::new();
        let mut dense_layouts = Vec::new();
        let mut bn_widths = Vec::new();
        let mut conv_layouts = Vec::new();
        let mut offset = 0;
        let mut width = self.inputs;
        // (height, width, channels) while the activations are still an image.
        let side = (self.inputs as f64).sqrt() as usize;
        let mut image = (side * side == self.inputs).then_some((side, side, 1));
        let mut dropouts = 0;
        let mut softmax_seen = false;
        for (index, layer) in self.layers.iter().enumerate() {
            let needs_image = || ModelError::NotAnImage { index, layer: describe(layer) };
            match *layer {
                Layer::Conv2D { filters, kernel_size, activation } => {
                    let (h, w, c) = image.ok_or_else(needs_image)?;
                    if filters == 0 || !filters.is_multiple_of(4) {
                        return Err(ModelError::Filters { index, filters });
                    }
                    if kernel_size == 0 || kernel_size > h || kernel_size > w {
                        return Err(ModelError::ImageTooSmall { index, layer: describe(layer), height: h, width: w });
                    }
                    if activation == Activation::Softmax {
                        return Err(ModelError::SoftmaxNotLast { index });
                    }
                    let kernel_len = kernel_size * kernel_size * c * filters;
                    let layout = ConvLayout {
                        height: h,
                        width: w,
                        channels: c,
                        filters,
                        kernel_size,
                        kernel_offset: offset,
                        bias_offset: offset + kernel_len,
                    };
                    offset += kernel_len + filters;
                    image = Some((layout.out_height(), layout.out_width(), filters));
                    conv_layouts.push(layout);
                    let op = Op::Conv2D { layout, relu: activation == Activation::Relu };
                    width = op.width();
                    ops.push(op);
                }
                Layer::MaxPool2D => {
                    let (h, w, c) = image.ok_or_else(needs_image)?;
                    if h < 2 || w < 2 {
                        return Err(ModelError::ImageTooSmall { index, layer: describe(layer), height: h, width: w });
                    }
                    let layout = PoolLayout { height: h, width: w, channels: c };
                    image = Some((layout.out_height(), layout.out_width(), c));
                    let op = Op::MaxPool2D { layout };
                    width = op.width();
                    ops.push(op);
                }
                Layer::ZeroPadding2D { padding } => {
                    let (h, w, c) = image.ok_or_else(needs_image)?;
                    if padding == 0 || padding > super::MAX_PADDING {
                        return Err(ModelError::Padding { index, padding });
                    }
                    let layout = PadLayout { height: h, width: w, channels: c, padding };
                    image = Some((layout.out_height(), layout.out_width(), c));
                    let op = Op::ZeroPad2D { layout };
                    width = op.width();
                    ops.push(op);
                }
                Layer::Flatten => {
                    image.ok_or_else(needs_image)?;
                    image = None;
                }
                Layer::Dense { units, activation } => {
                    if units == 0 {
                        return Err(ModelError::ZeroUnits { index, layer: describe(layer) });
                    }
                    if activation == Activation::Softmax {
                        if index != last {
                            return Err(ModelError::SoftmaxNotLast { index });
                        }
                        softmax_seen = true;
                    }
                    let layout = DenseLayout {
                        inputs: width,
                        units,
                        activation,
                        kernel_offset: offset,
                        bias_offset: offset + width * units,
                    };
                    offset += layout.params();
                    width = units;
                    image = None;
                    dense_layouts.push(layout);
                    ops.push(Op::Dense { layout, relu: activation == Activation::Relu });
                }
                Layer::Dropout { rate } => {
                    if !(0.0..1.0).contains(&rate) {
                        return Err(ModelError::DropoutRate { index, rate });
                    }
                    ops.push(Op::Dropout { width, rate, index: dropouts });
                    dropouts += 1;
                }
                Layer::BatchNorm => {
                    // Per channel on a Conv2D's or MaxPooling2D's image (which it leaves an
                    // image); the flat input of an MLP, though square, is features.
                    let after_image_op = ops
                        .iter()
                        .any(|op| matches!(op, Op::Conv2D { .. } | Op::MaxPool2D { .. } | Op::ZeroPad2D { .. }));
                    let (features, positions) = match image {
                        Some((h, w, c)) if after_image_op => (c, h * w),
                        _ => (width, 1),
                    };
                    // Offsets of γ/β are assigned below, once all trainable tensors are counted.
                    let layout = BatchNormLayout {
                        width: features,
                        positions,
                        gamma_offset: offset,
                        beta_offset: offset + features,
                        moving_mean_offset: 0,
                        moving_variance_offset: 0,
                    };
                    offset += 2 * features;
                    bn_widths.push(features);
                    ops.push(Op::BatchNorm { layout, relu: false });
                }
                Layer::Activation(Activation::Linear) => {}
                Layer::Activation(Activation::Relu) => match ops.last_mut() {
                    Some(Op::Dense { relu, layout }) if !*relu && layout.activation == Activation::Linear => {
                        *relu = true
                    }
                    Some(Op::BatchNorm { relu, .. }) if !*relu => *relu = true,
                    Some(Op::Conv2D { relu, .. }) if !*relu => *relu = true,
                    other => {
                        let after = match other {
                            None => "the input".to_string(),
                            Some(_) => describe(&self.layers[index - 1]),
                        };
                        return Err(ModelError::MisplacedRelu { index, after });
                    }
                },
                Layer::Activation(Activation::Softmax) => {
                    if index != last {
                        return Err(ModelError::SoftmaxNotLast { index });
                    }
                    softmax_seen = true;
                }
            }
        }
        let logits = ops.last().map_or(self.inputs, Op::width);
        let plain_logits = ops.last().is_some_and(|op| !op.relu());
        if !(softmax_seen && logits == NUM_CLASSES && plain_logits) {
            return Err(ModelError::BadOutputLayer { found: describe(&self.layers[last]) });
        }
        let trainable = offset;
        let mut batch_norm = Vec::new();
        for op in &mut ops {
            if let Op::BatchNorm { layout, .. } = op {
                layout.moving_mean_offset = offset;
                layout.moving_variance_offset = offset + layout.width;
                offset += 2 * layout.width;
                batch_norm.push(*layout);
            }
        }
        debug_assert_eq!(batch_norm.len(), bn_widths.len());
        Ok((ops, ParamLayout { dense: dense_layouts, conv: conv_layouts, batch_norm, trainable, total: offset }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_norm_statistics_follow_the_trainable_tensors() {
        let layout = ModelSpec::preset("batchnorm").unwrap().param_layout();
        assert_eq!(layout.batch_norm[0].gamma_offset, 784 * 256 + 256);
        assert_eq!(layout.batch_norm[0].moving_mean_offset, layout.trainable);
        assert_eq!(layout.batch_norm[4].moving_variance_offset + 10, layout.total);
        let names: Vec<_> = layout.named_tensors().into_iter().map(|(name, _, _)| name).collect();
        assert!(names.contains(&"batch_normalization_4.moving_variance".to_string()));
    }
}
