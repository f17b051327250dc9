//! The model spec: a model's layers as Keras declares them, its L2 factor and learning-rate
//! schedule. `layout` compiles a spec into the ops the trainers run and the one place where
//! parameter shapes and offsets are computed; `presets` holds the study's models, `parse` the
//! `--layers` syntax, `summary` the Keras table.

mod layout;
mod parse;
mod presets;
mod summary;

use fashion_data::NUM_CLASSES;

pub use layout::{BatchNormLayout, ConvLayout, DenseLayout, Op, PadLayout, ParamLayout, PoolLayout};
pub use presets::{study_note, study_test_accuracy, PRESETS, STUDY_DROPOUT, STUDY_L2};
pub use summary::{thousands, OpOutput};

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
    #[error("layer {index}: ZeroPadding2D needs a padding of 1 to {MAX_PADDING}, got {padding}")]
    Padding { index: usize, padding: usize },
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
    /// Keras's ZeroPadding2D(padding): `padding` rows and columns of zeros around an NHWC image.
    /// Before a 3×3 Conv2D, `ZeroPadding2D(1)` makes it Keras's `padding="same"`.
    ZeroPadding2D {
        padding: usize,
    },
    /// Keras's Flatten: NHWC images are already stored flat, so it only ends the image shape.
    Flatten,
}

/// The widest ZeroPadding2D a model may have (a border as wide as a 28×28 image).
pub const MAX_PADDING: usize = 28;

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

    pub(super) fn validate(&self) -> Result<(), ModelError> {
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

pub(crate) fn dense(units: usize, activation: Activation) -> Layer {
    Layer::Dense { units, activation }
}

impl ModelSpec {
    /// A model from a list of layers (no L2, constant learning rate), validated.
    pub fn new(name: &str, inputs: usize, layers: Vec<Layer>) -> Result<Self, ModelError> {
        let spec = ModelSpec { name: name.to_string(), inputs, layers, l2: 0.0, schedule: LrSchedule::Constant };
        spec.validate()?;
        Ok(spec)
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
}

/// A layer as a user would write it in Keras, for error messages.
pub(super) fn describe(layer: &Layer) -> String {
    match *layer {
        Layer::Dense { units, activation } => format!("Dense({units}, {})", activation.keras_name()),
        Layer::Dropout { rate } => format!("Dropout({rate})"),
        Layer::BatchNorm => "BatchNormalization".to_string(),
        Layer::Activation(a) => format!("Activation({})", a.keras_name()),
        Layer::Conv2D { filters, kernel_size, activation } => {
            format!("Conv2D({filters}, {kernel_size}×{kernel_size}, {})", activation.keras_name())
        }
        Layer::MaxPool2D => "MaxPooling2D(2×2)".to_string(),
        Layer::ZeroPadding2D { padding } => format!("ZeroPadding2D({padding})"),
        Layer::Flatten => "Flatten".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
