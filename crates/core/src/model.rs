//! The model spec: layers, the study's presets, and the one place where parameter shapes and
//! offsets into the flat parameter buffer are computed.

use std::fmt::Write as _;

use fashion_data::{NUM_CLASSES, PIXELS_PER_IMAGE};

/// Errors in a model description.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model preset `{0}`; available presets: {available}", available = PRESETS.join(", "))]
    UnknownPreset(String),
    #[error("the model has no layers")]
    Empty,
    #[error("layer {index} (`{layer}`) has zero units; a Dense layer needs at least 1")]
    ZeroUnits { index: usize, layer: String },
    #[error(
        "the model must end in a softmax over {NUM_CLASSES} classes (e.g. Dense({NUM_CLASSES}, softmax)), but it ends \
         with {found}"
    )]
    BadOutputLayer { found: String },
    #[error("softmax is only supported on the last layer (layer {index})")]
    SoftmaxNotLast { index: usize },
    #[error("layer {index}: dropout rate must be in [0, 1), got {rate}")]
    DropoutRate { index: usize, rate: f32 },
    #[error("layer {index}: a ReLU must follow a Dense or BatchNormalization layer without activation, not {after}")]
    MisplacedRelu { index: usize, after: String },
    #[error("the L2 factor must be a finite number ≥ 0, got {0}")]
    L2Factor(f32),
    #[error("learning-rate decay: {0}")]
    Schedule(String),
    #[error("dropout rate {rate}: the `{model}` model has no Dropout layer")]
    NoDropout { model: String, rate: f32 },
    #[error("layer {index} ({layer}) needs an image input, but its input is already flat")]
    NotAnImage { index: usize, layer: String },
    #[error("layer {index} ({layer}) does not fit a {height}×{width} input")]
    ImageTooSmall { index: usize, layer: String, height: usize, width: usize },
    #[error("layer {index}: Conv2D filters must be a positive multiple of 4, got {filters}")]
    Filters { index: usize, filters: usize },
    #[error("layer spec `{token}`: {problem}")]
    Parse { token: String, problem: String },
}

/// The activation applied after a Dense layer's affine map (or as a layer of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
    /// Only on the output; fused with the cross-entropy loss on the GPU.
    Softmax,
}

impl Activation {
    pub fn keras_name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Softmax => "softmax",
        }
    }
}

/// One layer of a model, as Keras would declare it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layer {
    Dense {
        units: usize,
        activation: Activation,
    },
    /// Inverted dropout: zeroes a `rate` fraction in training, scales the rest by 1/(1−rate).
    Dropout {
        rate: f32,
    },
    /// Keras's BatchNormalization (momentum 0.99, ε 1e-3) over the features.
    BatchNorm,
    Activation(Activation),
    /// Keras's Conv2D(filters, kernel_size, padding="valid", strides 1) over NHWC images;
    /// `filters` must be a multiple of 4 (the kernels compute four filters per thread).
    Conv2D {
        filters: usize,
        kernel_size: usize,
        activation: Activation,
    },
    /// Keras's MaxPooling2D(2): 2×2 windows, stride 2, a trailing odd row/column dropped.
    MaxPool2D,
    /// Keras's Flatten: NHWC images are already stored flat, so it only ends the image shape.
    Flatten,
}

/// Keras's BatchNormalization defaults.
pub const BATCH_NORM_MOMENTUM: f32 = 0.99;
pub const BATCH_NORM_EPSILON: f32 = 1e-3;

/// The learning rate over training steps.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LrSchedule {
    #[default]
    Constant,
    /// Keras's ExponentialDecay: `lr · rate^(step / decay_steps)`, the exponent floored when
    /// `staircase`.
    ExponentialDecay { decay_steps: u64, decay_rate: f32, staircase: bool },
}

impl LrSchedule {
    /// The study's schedule: ×0.5 every 6000 steps (10 epochs of 600 batches), staircase.
    pub const STUDY: LrSchedule = LrSchedule::ExponentialDecay { decay_steps: 6000, decay_rate: 0.5, staircase: true };

    /// The learning rate for the optimizer step that has `step` steps before it (0-based, as
    /// Keras evaluates a schedule at `optimizer.iterations`).
    pub fn learning_rate(&self, initial: f32, step: u64) -> f32 {
        match *self {
            LrSchedule::Constant => initial,
            LrSchedule::ExponentialDecay { decay_steps, decay_rate, staircase } => {
                let progress = step as f64 / decay_steps.max(1) as f64;
                let exponent = if staircase { progress.floor() } else { progress };
                (f64::from(initial) * f64::from(decay_rate).powf(exponent)) as f32
            }
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        match *self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::ExponentialDecay { decay_steps, decay_rate, .. } => {
                if decay_steps == 0 {
                    Err(ModelError::Schedule("decay_steps must be at least 1".into()))
                } else if !(decay_rate.is_finite() && decay_rate > 0.0) {
                    Err(ModelError::Schedule(format!("decay_rate must be a positive number, got {decay_rate}")))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Names of the built-in presets, as accepted by [`ModelSpec::preset`].
pub const PRESETS: &[&str] = &["baseline", "deep", "dropout", "l2", "batchnorm", "lr-decay", "cnn"];

/// The study's dropout rate and L2 factor.
pub const STUDY_DROPOUT: f32 = 0.3;
pub const STUDY_L2: f32 = 0.002;

/// A model: a flattened 28×28 input followed by layers, the L2 factor on every Dense kernel,
/// and the learning-rate schedule it is trained with.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    pub inputs: usize,
    pub layers: Vec<Layer>,
    /// λ of Keras's `kernel_regularizer=l2(λ)` on every Dense layer: adds λ·ΣW² to the loss.
    pub l2: f32,
    pub schedule: LrSchedule,
}

/// Where one Dense layer's tensors live in the flat parameter buffer (offsets in f32 elements).
/// The kernel is stored as Keras does, `[inputs, units]` row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseSlot {
    pub inputs: usize,
    pub units: usize,
    pub activation: Activation,
    pub kernel_offset: usize,
    pub bias_offset: usize,
}

impl DenseSlot {
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
pub struct ConvSlot {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub filters: usize,
    pub kernel_size: usize,
    pub kernel_offset: usize,
    pub bias_offset: usize,
}

impl ConvSlot {
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
pub struct PoolSlot {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl PoolSlot {
    pub fn out_height(&self) -> usize {
        self.height / 2
    }
    pub fn out_width(&self) -> usize {
        self.width / 2
    }
}

/// Where one BatchNormalization layer's tensors live: γ and β among the trainable parameters,
/// the moving mean and variance after all trainable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchNormSlot {
    pub width: usize,
    pub gamma_offset: usize,
    pub beta_offset: usize,
    pub moving_mean_offset: usize,
    pub moving_variance_offset: usize,
}

/// The layout of every tensor in the flat parameter buffer: trainable tensors first (Adam
/// updates `[0, trainable)`), then the non-trainable moving statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLayout {
    pub dense: Vec<DenseSlot>,
    pub conv: Vec<ConvSlot>,
    pub batch_norm: Vec<BatchNormSlot>,
    pub trainable: usize,
    pub total: usize,
}

impl ParamLayout {
    /// Every tensor as (name, shape, offset), named as Keras names the weights.
    pub fn named_tensors(&self) -> Vec<(String, Vec<usize>, usize)> {
        let mut tensors = Vec::new();
        for (i, slot) in self.conv.iter().enumerate() {
            let k = slot.kernel_size;
            tensors.push((format!("conv2d_{i}.kernel"), vec![k, k, slot.channels, slot.filters], slot.kernel_offset));
            tensors.push((format!("conv2d_{i}.bias"), vec![slot.filters], slot.bias_offset));
        }
        for (i, slot) in self.dense.iter().enumerate() {
            tensors.push((format!("dense_{i}.kernel"), vec![slot.inputs, slot.units], slot.kernel_offset));
            tensors.push((format!("dense_{i}.bias"), vec![slot.units], slot.bias_offset));
        }
        for (i, slot) in self.batch_norm.iter().enumerate() {
            for (what, offset) in [
                ("gamma", slot.gamma_offset),
                ("beta", slot.beta_offset),
                ("moving_mean", slot.moving_mean_offset),
                ("moving_variance", slot.moving_variance_offset),
            ] {
                tensors.push((format!("batch_normalization_{i}.{what}"), vec![slot.width], offset));
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
        slot: DenseSlot,
        relu: bool,
    },
    /// `index` counts dropout ops from 0: it salts the per-step random stream.
    Dropout {
        width: usize,
        rate: f32,
        index: u32,
    },
    BatchNorm {
        slot: BatchNormSlot,
        relu: bool,
    },
    Conv2D {
        slot: ConvSlot,
        relu: bool,
    },
    MaxPool2D {
        slot: PoolSlot,
    },
}

impl Op {
    /// Features per sample this op outputs.
    pub fn width(&self) -> usize {
        match self {
            Op::Dense { slot, .. } => slot.units,
            Op::Dropout { width, .. } => *width,
            Op::BatchNorm { slot, .. } => slot.width,
            Op::Conv2D { slot, .. } => slot.out_height() * slot.out_width() * slot.filters,
            Op::MaxPool2D { slot } => slot.out_height() * slot.out_width() * slot.channels,
        }
    }

    /// Whether the output is post-ReLU.
    pub fn relu(&self) -> bool {
        match self {
            Op::Dense { relu, .. } | Op::BatchNorm { relu, .. } | Op::Conv2D { relu, .. } => *relu,
            Op::Dropout { .. } | Op::MaxPool2D { .. } => false,
        }
    }
}

fn dense(units: usize, activation: Activation) -> Layer {
    Layer::Dense { units, activation }
}

impl ModelSpec {
    /// A model from a list of layers (no L2, constant learning rate), validated.
    pub fn new(name: &str, inputs: usize, layers: Vec<Layer>) -> Result<Self, ModelError> {
        let spec = ModelSpec { name: name.to_string(), inputs, layers, l2: 0.0, schedule: LrSchedule::Constant };
        spec.validate()?;
        Ok(spec)
    }

    /// One of the study's models by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, ModelError> {
        use Activation::{Relu, Softmax};
        let deep = || vec![dense(256, Relu), dense(256, Relu), dense(128, Relu), dense(128, Relu)];
        let with_output = |mut hidden: Vec<Layer>| {
            hidden.push(dense(NUM_CLASSES, Softmax));
            hidden
        };
        let spec = match name {
            "baseline" => {
                ModelSpec::new(name, PIXELS_PER_IMAGE, with_output(vec![dense(256, Relu), dense(128, Relu)]))?
            }
            "deep" => ModelSpec::new(name, PIXELS_PER_IMAGE, with_output(deep()))?,
            "dropout" => {
                let hidden = deep().into_iter().flat_map(|d| [d, Layer::Dropout { rate: STUDY_DROPOUT }]).collect();
                ModelSpec::new(name, PIXELS_PER_IMAGE, with_output(hidden))?
            }
            "l2" => ModelSpec::new(name, PIXELS_PER_IMAGE, with_output(deep()))?.with_l2(STUDY_L2)?,
            "batchnorm" => {
                let mut layers: Vec<Layer> = [256, 256, 128, 128]
                    .into_iter()
                    .flat_map(|units| [dense(units, Activation::Linear), Layer::BatchNorm, Layer::Activation(Relu)])
                    .collect();
                layers.extend([dense(NUM_CLASSES, Activation::Linear), Layer::BatchNorm, Layer::Activation(Softmax)]);
                ModelSpec::new(name, PIXELS_PER_IMAGE, layers)?
            }
            "lr-decay" => {
                ModelSpec::new(name, PIXELS_PER_IMAGE, with_output(deep()))?.with_schedule(LrSchedule::STUDY)?
            }
            "cnn" => {
                let conv = |filters| Layer::Conv2D { filters, kernel_size: 3, activation: Relu };
                let layers = vec![
                    conv(32),
                    Layer::MaxPool2D,
                    conv(64),
                    Layer::MaxPool2D,
                    Layer::Flatten,
                    dense(128, Relu),
                    Layer::Dropout { rate: 0.5 },
                    dense(NUM_CLASSES, Softmax),
                ];
                ModelSpec::new(name, PIXELS_PER_IMAGE, layers)?
            }
            other => return Err(ModelError::UnknownPreset(other.to_string())),
        };
        Ok(spec)
    }

    /// A custom model from a comma-separated spec: `256:relu,dropout:0.3,bn,relu,128,softmax`.
    /// Tokens: `UNITS[:relu|linear|softmax]` (Dense, ReLU by default), `dropout:RATE`, `bn`
    /// (or `batchnorm`), `relu`, `softmax`, `conv:FILTERS` (3×3, ReLU), `pool` (2×2 max),
    /// `flatten`. Without a final softmax, `10:softmax` is appended.
    pub fn parse(name: &str, layers: &str) -> Result<Self, ModelError> {
        let mut parsed = Vec::new();
        for token in layers.split(',').map(str::trim) {
            let bad = |problem: &str| ModelError::Parse { token: token.to_string(), problem: problem.to_string() };
            let mut parts = token.split(':').map(str::trim);
            let head = parts.next().unwrap_or_default().to_ascii_lowercase();
            let arg = parts.next();
            if parts.next().is_some() {
                return Err(bad("too many `:` parts"));
            }
            let layer = match (head.as_str(), arg) {
                ("", _) => return Err(bad("empty layer; expected e.g. `256:relu`, `dropout:0.3`, `bn`")),
                ("dropout", Some(rate)) => {
                    Layer::Dropout { rate: rate.parse().map_err(|_| bad("the dropout rate is not a number"))? }
                }
                ("dropout", None) => return Err(bad("dropout needs a rate, e.g. `dropout:0.3`")),
                ("bn" | "batchnorm", None) => Layer::BatchNorm,
                ("relu", None) => Layer::Activation(Activation::Relu),
                ("conv", Some(filters)) => Layer::Conv2D {
                    filters: filters.parse().map_err(|_| bad("the number of filters is not a number"))?,
                    kernel_size: 3,
                    activation: Activation::Relu,
                },
                ("pool" | "maxpool", None) => Layer::MaxPool2D,
                ("flatten", None) => Layer::Flatten,
                ("softmax", None) => Layer::Activation(Activation::Softmax),
                (units, activation) if units.chars().all(|c| c.is_ascii_digit()) => {
                    let units = units.parse().map_err(|_| bad("too many units"))?;
                    let activation = match activation.map(str::to_ascii_lowercase).as_deref() {
                        None | Some("relu") => Activation::Relu,
                        Some("linear") | Some("none") => Activation::Linear,
                        Some("softmax") => Activation::Softmax,
                        Some(_) => return Err(bad("unknown activation; use relu, linear or softmax")),
                    };
                    dense(units, activation)
                }
                (units, _) if units.starts_with('-') => return Err(bad("units must be a positive number")),
                _ => {
                    return Err(bad(
                        "unknown layer; expected `UNITS[:relu|linear|softmax]`, `dropout:RATE`, `bn`, `relu`",
                    ))
                }
            };
            parsed.push(layer);
        }
        let ends_in_softmax = matches!(
            parsed.last(),
            Some(Layer::Activation(Activation::Softmax)) | Some(Layer::Dense { activation: Activation::Softmax, .. })
        );
        if !ends_in_softmax {
            parsed.push(dense(NUM_CLASSES, Activation::Softmax));
        }
        ModelSpec::new(name, PIXELS_PER_IMAGE, parsed)
    }

    /// What a user picks: a preset, or a `--layers` spec instead, with the dropout rate and the
    /// L2 factor overridden when given.
    pub fn choose(
        preset: &str,
        layers: Option<&str>,
        dropout: Option<f32>,
        l2: Option<f32>,
    ) -> Result<Self, ModelError> {
        let mut spec = match layers {
            Some(layers) => ModelSpec::parse("custom", layers)?,
            None => ModelSpec::preset(preset)?,
        };
        if let Some(rate) = dropout {
            if !spec.has_dropout() {
                return Err(ModelError::NoDropout { model: spec.name, rate });
            }
            spec = spec.with_dropout_rate(rate)?;
        }
        if let Some(l2) = l2 {
            spec = spec.with_l2(l2)?;
        }
        Ok(spec)
    }

    /// The same model with `kernel_regularizer=l2(λ)` on every Dense layer.
    pub fn with_l2(mut self, l2: f32) -> Result<Self, ModelError> {
        if !(l2.is_finite() && l2 >= 0.0) {
            return Err(ModelError::L2Factor(l2));
        }
        self.l2 = l2;
        Ok(self)
    }

    /// The same model with every Dropout layer's rate set to `rate`.
    pub fn with_dropout_rate(mut self, rate: f32) -> Result<Self, ModelError> {
        for layer in &mut self.layers {
            if let Layer::Dropout { rate: r } = layer {
                *r = rate;
            }
        }
        self.validate()?;
        Ok(self)
    }

    pub fn with_schedule(mut self, schedule: LrSchedule) -> Result<Self, ModelError> {
        schedule.validate()?;
        self.schedule = schedule;
        Ok(self)
    }

    /// Whether the model has Dropout layers (so their rate is a setting worth showing).
    pub fn has_dropout(&self) -> bool {
        self.layers.iter().any(|l| matches!(l, Layer::Dropout { .. }))
    }

    fn validate(&self) -> Result<(), ModelError> {
        self.compile().map(|_| ())
    }

    /// Checks the layers and turns them into the ops the trainers run, with the parameter layout.
    fn compile(&self) -> Result<(Vec<Op>, ParamLayout), ModelError> {
        if self.layers.is_empty() {
            return Err(ModelError::Empty);
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(ModelError::L2Factor(self.l2));
        }
        self.schedule.validate()?;
        let last = self.layers.len() - 1;
        let mut ops: Vec<Op> = Vec::new();
        let mut dense_slots = Vec::new();
        let mut bn_widths = Vec::new();
        let mut conv_slots = Vec::new();
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
                    let slot = ConvSlot {
                        height: h,
                        width: w,
                        channels: c,
                        filters,
                        kernel_size,
                        kernel_offset: offset,
                        bias_offset: offset + kernel_len,
                    };
                    offset += kernel_len + filters;
                    image = Some((slot.out_height(), slot.out_width(), filters));
                    conv_slots.push(slot);
                    let op = Op::Conv2D { slot, relu: activation == Activation::Relu };
                    width = op.width();
                    ops.push(op);
                }
                Layer::MaxPool2D => {
                    let (h, w, c) = image.ok_or_else(needs_image)?;
                    if h < 2 || w < 2 {
                        return Err(ModelError::ImageTooSmall { index, layer: describe(layer), height: h, width: w });
                    }
                    let slot = PoolSlot { height: h, width: w, channels: c };
                    image = Some((slot.out_height(), slot.out_width(), c));
                    let op = Op::MaxPool2D { slot };
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
                    let slot = DenseSlot {
                        inputs: width,
                        units,
                        activation,
                        kernel_offset: offset,
                        bias_offset: offset + width * units,
                    };
                    offset += slot.params();
                    width = units;
                    image = None;
                    dense_slots.push(slot);
                    ops.push(Op::Dense { slot, relu: activation == Activation::Relu });
                }
                Layer::Dropout { rate } => {
                    if !(0.0..1.0).contains(&rate) {
                        return Err(ModelError::DropoutRate { index, rate });
                    }
                    ops.push(Op::Dropout { width, rate, index: dropouts });
                    dropouts += 1;
                }
                Layer::BatchNorm => {
                    // Offsets of γ/β are assigned below, once all trainable tensors are counted.
                    let slot = BatchNormSlot {
                        width,
                        gamma_offset: offset,
                        beta_offset: offset + width,
                        moving_mean_offset: 0,
                        moving_variance_offset: 0,
                    };
                    offset += 2 * width;
                    bn_widths.push(width);
                    ops.push(Op::BatchNorm { slot, relu: false });
                }
                Layer::Activation(Activation::Linear) => {}
                Layer::Activation(Activation::Relu) => match ops.last_mut() {
                    Some(Op::Dense { relu, slot }) if !*relu && slot.activation == Activation::Linear => *relu = true,
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
            if let Op::BatchNorm { slot, .. } = op {
                slot.moving_mean_offset = offset;
                slot.moving_variance_offset = offset + slot.width;
                offset += 2 * slot.width;
                batch_norm.push(*slot);
            }
        }
        debug_assert_eq!(batch_norm.len(), bn_widths.len());
        Ok((ops, ParamLayout { dense: dense_slots, conv: conv_slots, batch_norm, trainable, total: offset }))
    }

    /// The ops the trainers run, in order; the last one outputs the logits.
    pub fn ops(&self) -> Vec<Op> {
        self.compile().map(|(ops, _)| ops).unwrap_or_default()
    }

    /// Offsets of every tensor in the flat parameter buffer: Dense kernel then bias and
    /// BatchNorm γ, β in layer order, then every BatchNorm's moving mean and variance.
    pub fn param_layout(&self) -> ParamLayout {
        self.compile().map(|(_, layout)| layout).unwrap_or(ParamLayout {
            dense: Vec::new(),
            conv: Vec::new(),
            batch_norm: Vec::new(),
            trainable: 0,
            total: 0,
        })
    }

    pub fn total_params(&self) -> usize {
        self.param_layout().total
    }

    pub fn trainable_params(&self) -> usize {
        self.param_layout().trainable
    }

    /// Width of the widest activation, the input included.
    pub fn widest_layer(&self) -> usize {
        self.ops().iter().map(Op::width).fold(self.inputs, usize::max)
    }

    /// A Keras-style `model.summary()` table.
    pub fn summary(&self) -> String {
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut keras_name = |base: &'static str, class: &str| {
            let n = counts.entry(base).or_insert(0);
            let name = if *n == 0 { base.to_string() } else { format!("{base}_{n}") };
            *n += 1;
            format!("{name} ({class})")
        };
        let shape = |dims: &[usize]| {
            let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("(None, {})", dims.join(", "))
        };
        let starts_with_image = matches!(self.layers.first(), Some(Layer::Conv2D { .. } | Layer::MaxPool2D));
        let mut rows = Vec::new();
        if !starts_with_image {
            rows.push((keras_name("flatten", "Flatten"), shape(&[self.inputs]), 0));
        }
        // The output of each layer, from the compiled ops (activations and Flatten have none).
        let ops = self.ops();
        let mut next_op = ops.iter();
        let mut current = if starts_with_image {
            let side = (self.inputs as f64).sqrt() as usize;
            vec![side, side, 1]
        } else {
            vec![self.inputs]
        };
        for layer in &self.layers {
            let (name, params) = match *layer {
                Layer::Dense { .. } => (keras_name("dense", "Dense"), 0),
                Layer::Dropout { .. } => (keras_name("dropout", "Dropout"), 0),
                Layer::BatchNorm => (keras_name("batch_normalization", "BatchNormalization"), 0),
                Layer::Activation(_) => (keras_name("activation", "Activation"), 0),
                Layer::Conv2D { .. } => (keras_name("conv2d", "Conv2D"), 0),
                Layer::MaxPool2D => (keras_name("max_pooling2d", "MaxPooling2D"), 0),
                Layer::Flatten => (keras_name("flatten", "Flatten"), 0),
            };
            let params = params
                + match layer {
                    Layer::Activation(_) => 0,
                    Layer::Flatten => {
                        current = vec![current.iter().product()];
                        0
                    }
                    _ => match next_op.next() {
                        Some(Op::Dense { slot, .. }) => {
                            current = vec![slot.units];
                            slot.params()
                        }
                        Some(Op::BatchNorm { slot, .. }) => 4 * slot.width,
                        Some(Op::Conv2D { slot, .. }) => {
                            current = vec![slot.out_height(), slot.out_width(), slot.filters];
                            slot.kernel_len() + slot.filters
                        }
                        Some(Op::MaxPool2D { slot }) => {
                            current = vec![slot.out_height(), slot.out_width(), slot.channels];
                            0
                        }
                        Some(Op::Dropout { .. }) | None => 0,
                    },
                };
            rows.push((name, shape(&current), params));
        }
        let layout = self.param_layout();
        let rule = "_".repeat(70);
        let double = "=".repeat(70);
        let mut out = String::new();
        let _ = writeln!(out, "Model: \"{}\"", self.name);
        let _ = writeln!(out, "{rule}");
        let _ = writeln!(out, " {:<34}{:<24}{:<10}", "Layer (type)", "Output Shape", "Param #");
        let _ = writeln!(out, "{double}");
        for (name, shape, params) in rows {
            let _ = writeln!(out, " {:<34}{:<24}{:<10}", name, shape, thousands(params));
        }
        let _ = writeln!(out, "{double}");
        let _ = writeln!(out, "Total params: {}", thousands(layout.total));
        let _ = writeln!(out, "Trainable params: {}", thousands(layout.trainable));
        let _ = writeln!(out, "Non-trainable params: {}", thousands(layout.total - layout.trainable));
        let _ = write!(out, "{rule}");
        out
    }
}

fn describe(layer: &Layer) -> String {
    match *layer {
        Layer::Dense { units, activation } => format!("Dense({units}, {})", activation.keras_name()),
        Layer::Dropout { rate } => format!("Dropout({rate})"),
        Layer::BatchNorm => "BatchNormalization".to_string(),
        Layer::Activation(a) => format!("Activation({})", a.keras_name()),
        Layer::Conv2D { filters, kernel_size, activation } => {
            format!("Conv2D({filters}, {kernel_size}×{kernel_size}, {})", activation.keras_name())
        }
        Layer::MaxPool2D => "MaxPooling2D(2×2)".to_string(),
        Layer::Flatten => "Flatten".to_string(),
    }
}

/// `235146` → `235,146`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_matches_the_study() {
        let spec = ModelSpec::preset("baseline").unwrap();
        assert_eq!(spec.total_params(), 235_146);
        assert!(spec.summary().contains("Total params: 235,146"));
        let layout = spec.param_layout();
        assert_eq!(layout.dense[1].kernel_offset, 784 * 256 + 256);
        assert_eq!(layout.dense[2].bias_offset, 235_146 - 10);
    }

    #[test]
    fn every_preset_has_the_study_parameter_count() {
        for (name, total, trainable) in [
            ("deep", 317_450, 317_450),
            ("dropout", 317_450, 317_450),
            ("l2", 317_450, 317_450),
            ("batchnorm", 320_562, 319_006),
            ("lr-decay", 317_450, 317_450),
        ] {
            let spec = ModelSpec::preset(name).unwrap();
            assert_eq!((spec.total_params(), spec.trainable_params()), (total, trainable), "{name}");
            let summary = spec.summary();
            assert!(summary.contains(&format!("Total params: {}", thousands(total))), "{summary}");
            assert!(summary.contains(&format!("Non-trainable params: {}", thousands(total - trainable))), "{summary}");
        }
        assert_eq!(ModelSpec::preset("l2").unwrap().l2, 0.002);
        assert_eq!(ModelSpec::preset("lr-decay").unwrap().schedule, LrSchedule::STUDY);
        let bn = ModelSpec::preset("batchnorm").unwrap();
        assert!(bn.summary().contains("batch_normalization_4 (BatchNormalization)"), "{}", bn.summary());
        let ops = bn.ops();
        assert_eq!(ops.len(), 10);
        assert!(matches!(ops[1], Op::BatchNorm { relu: true, .. }));
        assert!(matches!(ops[9], Op::BatchNorm { relu: false, slot } if slot.width == 10));
        let dropout = ModelSpec::preset("dropout").unwrap().ops();
        assert!(matches!(dropout[1], Op::Dropout { rate, index: 0, width: 256 } if rate == 0.3));
        assert!(matches!(dropout[7], Op::Dropout { index: 3, width: 128, .. }));
    }

    #[test]
    fn cnn_preset_has_keras_shapes_and_counts() {
        let cnn = ModelSpec::preset("cnn").unwrap();
        // Keras: 320 + 18,496 + 204,928 + 1,290.
        assert_eq!(cnn.total_params(), 225_034);
        let summary = cnn.summary();
        for line in ["conv2d (Conv2D)", "(None, 26, 26, 32)", "max_pooling2d_1 (MaxPooling2D)", "(None, 5, 5, 64)"] {
            assert!(summary.contains(line), "{line}: {summary}");
        }
        assert!(summary.contains("flatten (Flatten)") && summary.contains("(None, 1600)"), "{summary}");
        assert!(!summary.contains("(None, 784)"), "a CNN takes the image, not a flattened one: {summary}");
        let names: Vec<_> =
            cnn.param_layout().named_tensors().into_iter().map(|(name, shape, _)| (name, shape)).collect();
        assert!(names.contains(&("conv2d_1.kernel".to_string(), vec![3, 3, 32, 64])));
        let err = |text: &str| ModelSpec::parse("custom", text).unwrap_err().to_string();
        assert!(err("128,conv:8").contains("image input"), "{}", err("128,conv:8"));
        assert!(err("conv:6").contains("multiple of 4"), "{}", err("conv:6"));
        assert!(
            err("conv:4,pool,pool,pool,pool,pool").contains("does not fit"),
            "{}",
            err("conv:4,pool,pool,pool,pool,pool")
        );
        assert!(ModelSpec::parse("custom", "conv:8,pool,flatten,32").is_ok());
    }

    #[test]
    fn batch_norm_statistics_follow_the_trainable_tensors() {
        let layout = ModelSpec::preset("batchnorm").unwrap().param_layout();
        assert_eq!(layout.batch_norm[0].gamma_offset, 784 * 256 + 256);
        assert_eq!(layout.batch_norm[0].moving_mean_offset, layout.trainable);
        assert_eq!(layout.batch_norm[4].moving_variance_offset + 10, layout.total);
        let names: Vec<_> = layout.named_tensors().into_iter().map(|(name, _, _)| name).collect();
        assert!(names.contains(&"batch_normalization_4.moving_variance".to_string()));
    }

    #[test]
    fn study_schedule_halves_every_6000_steps() {
        let s = LrSchedule::STUDY;
        assert_eq!(s.learning_rate(1e-3, 0), 1e-3);
        assert_eq!(s.learning_rate(1e-3, 5999), 1e-3);
        assert_eq!(s.learning_rate(1e-3, 6000), 5e-4);
        assert_eq!(s.learning_rate(1e-3, 12000), 2.5e-4);
        let smooth = LrSchedule::ExponentialDecay { decay_steps: 6000, decay_rate: 0.5, staircase: false };
        assert!((smooth.learning_rate(1e-3, 3000) - 1e-3 / 2f32.sqrt()).abs() < 1e-9);
        assert_eq!(LrSchedule::Constant.learning_rate(1e-3, 1_000_000), 1e-3);
    }

    #[test]
    fn layer_specs_parse_or_say_what_is_wrong() {
        let spec = ModelSpec::parse("custom", "256:relu, dropout:0.3, 128").unwrap();
        assert_eq!(
            spec.layers,
            vec![
                dense(256, Activation::Relu),
                Layer::Dropout { rate: 0.3 },
                dense(128, Activation::Relu),
                dense(10, Activation::Softmax)
            ]
        );
        let bn = ModelSpec::parse("custom", "64:linear,bn,relu,10:linear,bn,softmax").unwrap();
        assert_eq!(bn.param_layout().total - bn.param_layout().trainable, 2 * 64 + 2 * 10);
        let err = |text: &str| ModelSpec::parse("custom", text).unwrap_err().to_string();
        assert!(err("").contains("empty layer"), "{}", err(""));
        assert!(err("256,conv").contains("unknown layer"), "{}", err("256,conv"));
        assert!(err("0").contains("zero units"), "{}", err("0"));
        assert!(err("-5").contains("positive"), "{}", err("-5"));
        assert!(err("256,dropout:1.5").contains("dropout rate"), "{}", err("256,dropout:1.5"));
        assert!(err("256,dropout:x").contains("not a number"), "{}", err("256,dropout:x"));
        assert!(err("256:tanh").contains("unknown activation"), "{}", err("256:tanh"));
        assert!(err("relu,256").contains("ReLU must follow"), "{}", err("relu,256"));
        assert!(err("256,softmax,128").contains("last layer"), "{}", err("256,softmax,128"));
        assert!(err("256,12:softmax").contains("softmax over 10"), "{}", err("256,12:softmax"));
    }

    #[test]
    fn bad_specs_are_named() {
        assert!(matches!(ModelSpec::preset("resnet"), Err(ModelError::UnknownPreset(_))));
        assert_eq!(ModelSpec::new("m", 784, vec![]), Err(ModelError::Empty));
        let zero = vec![dense(0, Activation::Relu), dense(10, Activation::Softmax)];
        assert!(matches!(ModelSpec::new("m", 784, zero), Err(ModelError::ZeroUnits { index: 0, .. })));
        let wrong_out = vec![dense(10, Activation::Relu)];
        assert!(matches!(ModelSpec::new("m", 784, wrong_out), Err(ModelError::BadOutputLayer { .. })));
        let deep = ModelSpec::preset("deep").unwrap();
        assert!(matches!(deep.clone().with_l2(f32::NAN), Err(ModelError::L2Factor(_))));
        assert!(matches!(
            ModelSpec::preset("dropout").unwrap().with_dropout_rate(1.0),
            Err(ModelError::DropoutRate { .. })
        ));
        assert!(matches!(ModelSpec::choose("baseline", None, Some(0.5), None), Err(ModelError::NoDropout { .. })));
        let chosen = ModelSpec::choose("dropout", None, Some(0.5), Some(0.01)).unwrap();
        assert_eq!((chosen.layers[1], chosen.l2), (Layer::Dropout { rate: 0.5 }, 0.01));
        let no_steps = LrSchedule::ExponentialDecay { decay_steps: 0, decay_rate: 0.5, staircase: true };
        assert!(matches!(deep.with_schedule(no_steps), Err(ModelError::Schedule(_))));
    }

    #[test]
    fn thousands_separates() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
