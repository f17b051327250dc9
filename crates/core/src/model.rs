//! The model spec: layers, the study's presets, and the one place where parameter shapes and
//! offsets into the flat parameter buffer are computed.

use std::fmt::Write as _;

use fashion_data::{NUM_CLASSES, PIXELS_PER_IMAGE};

/// Errors in a model description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model preset `{0}`; available presets: {available}", available = PRESETS.join(", "))]
    UnknownPreset(String),
    #[error("the model has no layers")]
    Empty,
    #[error("layer {index} (`{layer}`) has zero units; a Dense layer needs at least 1")]
    ZeroUnits { index: usize, layer: String },
    #[error(
        "the last layer must be Dense({NUM_CLASSES}, softmax) to classify {NUM_CLASSES} classes, but it is {found}"
    )]
    BadOutputLayer { found: String },
    #[error("softmax is only supported on the last layer (layer {index})")]
    SoftmaxNotLast { index: usize },
}

/// The activation applied after a Dense layer's affine map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
    /// Only on the output layer; fused with the cross-entropy loss on the GPU.
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

/// One layer of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Dense { units: usize, activation: Activation },
}

/// Names of the built-in presets, as accepted by [`ModelSpec::preset`].
pub const PRESETS: &[&str] = &["baseline", "deep"];

/// A model: a flattened 28×28 input followed by layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub name: String,
    pub inputs: usize,
    pub layers: Vec<Layer>,
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

/// The layout of every trainable tensor in the flat parameter buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLayout {
    pub dense: Vec<DenseSlot>,
    pub total: usize,
}

fn dense(units: usize, activation: Activation) -> Layer {
    Layer::Dense { units, activation }
}

impl ModelSpec {
    /// A model from a list of layers, validated.
    pub fn new(name: &str, inputs: usize, layers: Vec<Layer>) -> Result<Self, ModelError> {
        let spec = ModelSpec { name: name.to_string(), inputs, layers };
        spec.validate()?;
        Ok(spec)
    }

    /// One of the study's models by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, ModelError> {
        use Activation::{Relu, Softmax};
        let layers = match name {
            "baseline" => vec![dense(256, Relu), dense(128, Relu), dense(NUM_CLASSES, Softmax)],
            "deep" => vec![
                dense(256, Relu),
                dense(256, Relu),
                dense(128, Relu),
                dense(128, Relu),
                dense(NUM_CLASSES, Softmax),
            ],
            other => return Err(ModelError::UnknownPreset(other.to_string())),
        };
        ModelSpec::new(name, PIXELS_PER_IMAGE, layers)
    }

    fn validate(&self) -> Result<(), ModelError> {
        let last = self.layers.last().ok_or(ModelError::Empty)?;
        for (index, layer) in self.layers.iter().enumerate() {
            let Layer::Dense { units, activation } = *layer;
            if units == 0 {
                return Err(ModelError::ZeroUnits { index, layer: describe(layer) });
            }
            if activation == Activation::Softmax && index + 1 != self.layers.len() {
                return Err(ModelError::SoftmaxNotLast { index });
            }
        }
        if *last != dense(NUM_CLASSES, Activation::Softmax) {
            return Err(ModelError::BadOutputLayer { found: describe(last) });
        }
        Ok(())
    }

    /// Offsets of every tensor in the flat parameter buffer: kernel then bias, layer by layer.
    pub fn param_layout(&self) -> ParamLayout {
        let mut offset = 0;
        let mut inputs = self.inputs;
        let dense = self
            .layers
            .iter()
            .map(|layer| {
                let Layer::Dense { units, activation } = *layer;
                let slot = DenseSlot {
                    inputs,
                    units,
                    activation,
                    kernel_offset: offset,
                    bias_offset: offset + inputs * units,
                };
                offset += slot.params();
                inputs = units;
                slot
            })
            .collect();
        ParamLayout { dense, total: offset }
    }

    pub fn total_params(&self) -> usize {
        self.param_layout().total
    }

    /// Width of the widest activation, the input included.
    pub fn widest_layer(&self) -> usize {
        self.param_layout().dense.iter().map(|d| d.units).fold(self.inputs, usize::max)
    }

    /// A Keras-style `model.summary()` table.
    pub fn summary(&self) -> String {
        let rule = "_".repeat(65);
        let double = "=".repeat(65);
        let mut out = String::new();
        let _ = writeln!(out, "Model: \"{}\"", self.name);
        let _ = writeln!(out, "{rule}");
        let _ = writeln!(out, " {:<28}{:<26}{:<10}", "Layer (type)", "Output Shape", "Param #");
        let _ = writeln!(out, "{double}");
        let _ = writeln!(out, " {:<28}{:<26}{:<10}", "flatten (Flatten)", format!("(None, {})", self.inputs), 0);
        for (i, slot) in self.param_layout().dense.iter().enumerate() {
            let name = if i == 0 { "dense".to_string() } else { format!("dense_{i}") };
            let _ = writeln!(
                out,
                " {:<28}{:<26}{:<10}",
                format!("{name} (Dense)"),
                format!("(None, {})", slot.units),
                thousands(slot.params())
            );
        }
        let total = thousands(self.total_params());
        let _ = writeln!(out, "{double}");
        let _ = writeln!(out, "Total params: {total}");
        let _ = writeln!(out, "Trainable params: {total}");
        let _ = writeln!(out, "Non-trainable params: 0");
        let _ = write!(out, "{rule}");
        out
    }
}

fn describe(layer: &Layer) -> String {
    let Layer::Dense { units, activation } = *layer;
    format!("Dense({units}, {})", activation.keras_name())
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
    fn deep_matches_the_study() {
        assert_eq!(ModelSpec::preset("deep").unwrap().total_params(), 317_450);
    }

    #[test]
    fn bad_specs_are_named() {
        assert!(matches!(ModelSpec::preset("resnet"), Err(ModelError::UnknownPreset(_))));
        assert_eq!(ModelSpec::new("m", 784, vec![]), Err(ModelError::Empty));
        let zero = vec![dense(0, Activation::Relu), dense(10, Activation::Softmax)];
        assert!(matches!(ModelSpec::new("m", 784, zero), Err(ModelError::ZeroUnits { index: 0, .. })));
        let wrong_out = vec![dense(10, Activation::Relu)];
        assert!(matches!(ModelSpec::new("m", 784, wrong_out), Err(ModelError::BadOutputLayer { .. })));
    }

    #[test]
    fn thousands_separates() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
