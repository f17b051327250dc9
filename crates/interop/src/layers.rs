//! The model as Keras layers, each with its weights: what every export writes, and what a
//! `.keras` file is read back into before it becomes a [`ModelSpec`] and a flat parameter buffer.
//!
//! Layers are named as Keras 3 names them in a new session (`dense`, `dense_1`, …). Weights are
//! in Keras's order and shapes: Dense `kernel [inputs, units]`, `bias [units]`; Conv2D
//! `kernel [k, k, channels, filters]`, `bias [filters]`; BatchNormalization `gamma`, `beta`,
//! `moving_mean`, `moving_variance`, each `[features]`.

use std::collections::HashMap;

use fashion_core::model::{Layer, ModelError, BATCH_NORM_EPSILON};
use fashion_core::ModelSpec;
use fashion_data::{IMAGE_SIDE, PIXELS_PER_IMAGE};

use crate::ExportError;

/// One weight tensor of a layer, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// Keras's name for it: `kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance`.
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// One Keras layer: its name, what it computes, and its weights in Keras's order.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasLayer {
    pub name: String,
    pub layer: Layer,
    pub weights: Vec<Weight>,
}

/// A Sequential model as Keras holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasModel {
    /// The model's name (the preset's, e.g. `baseline`).
    pub name: String,
    /// One image's shape: `[28, 28]` for an MLP (whose first layer is a Flatten), or
    /// `[28, 28, 1]` for a model that starts with an image layer.
    pub input_shape: Vec<usize>,
    pub layers: Vec<KerasLayer>,
    /// λ of `kernel_regularizer=L2(λ)` on every Dense layer (0: none).
    pub l2: f32,
    /// BatchNormalization's ε (Keras's default, 1e-3).
    pub batch_norm_epsilon: f32,
}

/// Keras's class name for a layer (`Dense`, `Activation`, …).
pub fn keras_class(layer: &Layer) -> &'static str {
    match layer {
        Layer::Dense { .. } => "Dense",
        Layer::Dropout { .. } => "Dropout",
        Layer::BatchNorm => "BatchNormalization",
        Layer::Activation(_) => "Activation",
        Layer::Conv2D { .. } => "Conv2D",
        Layer::MaxPool2D => "MaxPooling2D",
        Layer::ZeroPadding2D { .. } => "ZeroPadding2D",
        Layer::Flatten => "Flatten",
    }
}

/// The base of Keras's automatic layer name (`dense` → `dense`, `dense_1`, …).
fn keras_base_name(layer: &Layer) -> &'static str {
    match layer {
        Layer::Dense { .. } => "dense",
        Layer::Dropout { .. } => "dropout",
        Layer::BatchNorm => "batch_normalization",
        Layer::Activation(_) => "activation",
        Layer::Conv2D { .. } => "conv2d",
        Layer::MaxPool2D => "max_pooling2d",
        Layer::ZeroPadding2D { .. } => "zero_padding2d",
        Layer::Flatten => "flatten",
    }
}

/// Whether a layer takes an NHWC image (so a model starting with it has a `[28, 28, 1]` input).
pub fn takes_image(layer: &Layer) -> bool {
    matches!(layer, Layer::Conv2D { .. } | Layer::MaxPool2D | Layer::ZeroPadding2D { .. })
}

/// Why Keras layers with weights do not make one of our models.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssembleError {
    #[error("the model's input is {found:?}; fashion-gpu models take 28×28 images ([28, 28], [28, 28, 1] or [784])")]
    InputShape { found: Vec<usize> },
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("layer `{layer}` has {found} weights, but a {class} layer has {expected}")]
    WeightCount { layer: String, class: &'static str, found: usize, expected: usize },
    #[error("layer `{layer}`: weight `{weight}` has shape {found:?}, but the layer needs {expected:?}")]
    WeightShape { layer: String, weight: String, found: Vec<usize>, expected: Vec<usize> },
    #[error("layer `{layer}`: weight `{weight}` holds a non-finite value ({value}) at index {index}")]
    NotFinite { layer: String, weight: String, value: f32, index: usize },
}

impl KerasModel {
    /// `spec` with the weights `params` (its flat parameter buffer), as Keras layers.
    pub fn new(spec: &ModelSpec, params: &[f32]) -> Result<Self, ExportError> {
        let layout = spec.param_layout();
        if params.len() != layout.total {
            return Err(ExportError::ParamCount {
                model: spec.name.clone(),
                found: params.len(),
                expected: layout.total,
            });
        }
        let starts_with_image = spec.layers.first().is_some_and(takes_image);
        let mut counts = HashMap::<&str, usize>::new();
        let mut name_for = |layer: &Layer| {
            let base = keras_base_name(layer);
            let n = counts.entry(base).or_insert(0);
            let name = if *n == 0 { base.to_string() } else { format!("{base}_{n}") };
            *n += 1;
            name
        };
        let mut layers = Vec::new();
        if !starts_with_image {
            layers.push(KerasLayer { name: name_for(&Layer::Flatten), layer: Layer::Flatten, weights: Vec::new() });
        }
        // Our trainers flatten an image before a Dense layer by themselves; Keras (and TF.js, and
        // ONNX's Gemm) would apply the Dense to its last axis only, so the Flatten is written.
        let mut image = starts_with_image;
        for (layer, slots) in spec.layers.iter().zip(weight_slots(spec)) {
            if image && matches!(layer, Layer::Dense { .. }) {
                layers.push(KerasLayer { name: name_for(&Layer::Flatten), layer: Layer::Flatten, weights: Vec::new() });
            }
            image = match layer {
                Layer::Flatten | Layer::Dense { .. } => false,
                other => image || takes_image(other),
            };
            let weights = slots
                .into_iter()
                .map(|WeightSlot { name, shape, offset }| {
                    let len: usize = shape.iter().product();
                    Weight { name, shape, values: params[offset..offset + len].to_vec() }
                })
                .collect();
            layers.push(KerasLayer { name: name_for(layer), layer: *layer, weights });
        }
        Ok(KerasModel {
            name: spec.name.clone(),
            input_shape: if starts_with_image { vec![IMAGE_SIDE, IMAGE_SIDE, 1] } else { vec![IMAGE_SIDE, IMAGE_SIDE] },
            layers,
            l2: spec.l2,
            batch_norm_epsilon: BATCH_NORM_EPSILON,
        })
    }

    /// Our model and its flat parameter buffer, every weight's shape and values checked.
    pub fn to_spec(&self) -> Result<(ModelSpec, Vec<f32>), AssembleError> {
        let pixels = self.input_shape.iter().product::<usize>();
        let image =
            self.input_shape.len() >= 2 && self.input_shape[0] == IMAGE_SIDE && self.input_shape[1] == IMAGE_SIDE;
        if pixels != PIXELS_PER_IMAGE || !(image || self.input_shape.len() == 1) {
            return Err(AssembleError::InputShape { found: self.input_shape.clone() });
        }
        // Our models take the image flat: a leading Flatten is the input's.
        let mut layers: &[KerasLayer] = &self.layers;
        if let Some((first, rest)) = layers.split_first() {
            if first.layer == Layer::Flatten {
                layers = rest;
            }
        }
        let spec =
            ModelSpec::new(&self.name, PIXELS_PER_IMAGE, layers.iter().map(|l| l.layer).collect())?.with_l2(self.l2)?;
        let mut params = vec![0.0f32; spec.param_layout().total];
        for (layer, expected) in layers.iter().zip(weight_slots(&spec)) {
            if layer.weights.len() != expected.len() {
                return Err(AssembleError::WeightCount {
                    layer: layer.name.clone(),
                    class: keras_class(&layer.layer),
                    found: layer.weights.len(),
                    expected: expected.len(),
                });
            }
            for (weight, WeightSlot { name, shape, offset }) in layer.weights.iter().zip(expected) {
                if weight.shape != shape || weight.values.len() != shape.iter().product::<usize>() {
                    return Err(AssembleError::WeightShape {
                        layer: layer.name.clone(),
                        weight: name.to_string(),
                        found: weight.shape.clone(),
                        expected: shape,
                    });
                }
                if let Some((index, &value)) = weight.values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    return Err(AssembleError::NotFinite {
                        layer: layer.name.clone(),
                        weight: name.to_string(),
                        value,
                        index,
                    });
                }
                params[offset..offset + weight.values.len()].copy_from_slice(&weight.values);
            }
        }
        Ok((spec, params))
    }
}

/// The names of a layer's weights, in Keras's order (its variables `0`, `1`, …).
pub fn weight_names(layer: &Layer) -> &'static [&'static str] {
    match layer {
        Layer::Dense { .. } | Layer::Conv2D { .. } => &["kernel", "bias"],
        Layer::BatchNorm => &["gamma", "beta", "moving_mean", "moving_variance"],
        _ => &[],
    }
}

/// Where one weight of a layer lives in the flat parameter buffer.
struct WeightSlot {
    name: &'static str,
    shape: Vec<usize>,
    offset: usize,
}

/// Each layer of `spec`, in order: where its weights ([`weight_names`]) live, in Keras's shapes.
fn weight_slots(spec: &ModelSpec) -> Vec<Vec<WeightSlot>> {
    let layout = spec.param_layout();
    let (mut dense, mut conv, mut batch_norm) = (layout.dense.iter(), layout.conv.iter(), layout.batch_norm.iter());
    spec.layers
        .iter()
        .map(|layer| {
            let (shapes, offsets) = match layer {
                Layer::Dense { .. } => {
                    let d = dense.next().expect("a Dense layer has a dense layout");
                    (vec![vec![d.inputs, d.units], vec![d.units]], vec![d.kernel_offset, d.bias_offset])
                }
                Layer::Conv2D { .. } => {
                    let c = conv.next().expect("a Conv2D layer has a conv layout");
                    let k = c.kernel_size;
                    (vec![vec![k, k, c.channels, c.filters], vec![c.filters]], vec![c.kernel_offset, c.bias_offset])
                }
                Layer::BatchNorm => {
                    let b = batch_norm.next().expect("a BatchNorm layer has a batch-norm layout");
                    let offsets = vec![b.gamma_offset, b.beta_offset, b.moving_mean_offset, b.moving_variance_offset];
                    (vec![vec![b.width]; 4], offsets)
                }
                _ => (Vec::new(), Vec::new()),
            };
            weight_names(layer)
                .iter()
                .zip(shapes.into_iter().zip(offsets))
                .map(|(&name, (shape, offset))| WeightSlot { name, shape, offset })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(spec: &ModelSpec) -> Vec<f32> {
        (0..spec.total_params()).map(|i| (i % 97) as f32 * 0.01).collect()
    }

    #[test]
    fn every_preset_goes_to_keras_layers_and_back_unchanged() {
        for preset in fashion_core::model::PRESETS {
            let spec = ModelSpec::preset(preset).unwrap();
            let params = numbered(&spec);
            let model = KerasModel::new(&spec, &params).unwrap();
            let (back, back_params) = model.to_spec().unwrap();
            assert_eq!(back.layers, spec.layers, "{preset}");
            assert_eq!(back.l2, spec.l2, "{preset}");
            assert_eq!(back_params, params, "{preset}");
        }
    }

    #[test]
    fn layers_are_named_as_keras_names_them() {
        let spec = ModelSpec::preset("batchnorm").unwrap();
        let model = KerasModel::new(&spec, &numbered(&spec)).unwrap();
        let names: Vec<&str> = model.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(&names[..5], ["flatten", "dense", "batch_normalization", "activation", "dense_1"]);
        assert_eq!(model.input_shape, [28, 28]);
        let cnn = ModelSpec::preset("cnn").unwrap();
        let model = KerasModel::new(&cnn, &numbered(&cnn)).unwrap();
        assert_eq!(model.input_shape, [28, 28, 1]);
        assert_eq!(model.layers[0].name, "zero_padding2d");
    }

    #[test]
    fn a_dense_layer_after_an_image_gets_the_flatten_our_trainers_imply() {
        let spec = ModelSpec::parse("odd", "conv:8,pool,24").unwrap();
        let model = KerasModel::new(&spec, &numbered(&spec)).unwrap();
        let classes: Vec<&str> = model.layers.iter().map(|l| keras_class(&l.layer)).collect();
        assert_eq!(classes, ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]);
        let (back, params) = model.to_spec().unwrap();
        assert_eq!(params, numbered(&spec), "the same weights in the same places");
        assert_eq!(back.layers[2], Layer::Flatten);
    }

    #[test]
    fn a_wrong_shape_or_a_nan_is_named() {
        let spec = ModelSpec::preset("baseline").unwrap();
        let mut model = KerasModel::new(&spec, &numbered(&spec)).unwrap();
        model.layers[1].weights[0].shape = vec![256, 784];
        let error = model.clone().to_spec().unwrap_err().to_string();
        assert!(error.contains("layer `dense`") && error.contains("[256, 784]"), "{error}");
        let mut model = KerasModel::new(&spec, &numbered(&spec)).unwrap();
        model.layers[2].weights[1].values[3] = f32::NAN;
        let error = model.to_spec().unwrap_err().to_string();
        assert!(error.contains("dense_1") && error.contains("NaN") && error.contains("index 3"), "{error}");
    }

    #[test]
    fn a_wrong_param_count_is_refused() {
        let spec = ModelSpec::preset("baseline").unwrap();
        assert!(matches!(KerasModel::new(&spec, &[0.0; 3]), Err(ExportError::ParamCount { .. })));
    }
}
