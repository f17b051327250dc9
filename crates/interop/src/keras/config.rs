//! `config.json`: the model as Keras 3 serializes it, written and read.
//!
//! Every Keras object is `{"module", "class_name", "config", "registered_name"}`; a built layer
//! adds `"build_config": {"input_shape": [null, …]}`. The model is a `Sequential` whose
//! `config.layers` start with an `InputLayer` (`batch_shape` `[null, 28, 28]` or
//! `[null, 28, 28, 1]`); the file ends with the `compile_config` that `load_model` compiles the
//! model with. The writer spells every argument out as Keras 3.15 does; the reader takes what
//! Keras leaves out at its default, and refuses any argument fashion-gpu's layers do not have.

use fashion_core::model::{Activation, Layer, ModelError, BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM, MAX_PADDING};
use fashion_data::{IMAGE_SIDE, PIXELS_PER_IMAGE};
use serde_json::{json, Map, Value};

use crate::layers::{keras_class, KerasModel};
use crate::ExportError;

/// The most weights a model read from a file may have (256 MiB of float32).
pub(super) const MAX_PARAMETERS: u64 = 1 << 26;

/// Why `config.json` does not describe a model fashion-gpu can hold.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("not valid JSON ({0})")]
    Json(String),
    #[error("{0}")]
    Structure(String),
    #[error("layer {index} ({name}): {problem}")]
    Layer { index: usize, name: String, problem: String },
    #[error("{0}")]
    Spec(#[from] ModelError),
}

/// The model `config.json` describes.
pub(super) struct ModelConfig {
    pub name: String,
    /// One image's shape: `[28, 28]`, `[28, 28, 1]` or `[784]`.
    pub input_shape: Vec<usize>,
    pub layers: Vec<ConfigLayer>,
    /// The L2 factor of every Dense layer's `kernel_regularizer` (0: none).
    pub l2: f32,
    /// How many weights the layers hold.
    pub parameters: u64,
}

/// One entry of the Sequential's `layers` (the InputLayer aside).
pub(super) struct ConfigLayer {
    pub name: String,
    /// Keras's class, which names the layer's group in `model.weights.h5`.
    pub class: &'static str,
    /// What it computes; it holds the layer's weights.
    pub layer: Layer,
    /// A `padding="same"` Conv2D's padding, as the ZeroPadding2D that goes before `layer`.
    pub same_padding: Option<Layer>,
}

/// The classes the reader takes (`ReLU` and `Softmax` are read as Activation layers).
const CLASSES: [&str; 10] = [
    "Dense",
    "Dropout",
    "BatchNormalization",
    "Activation",
    "ReLU",
    "Softmax",
    "Conv2D",
    "MaxPooling2D",
    "ZeroPadding2D",
    "Flatten",
];

// ---------------------------------------------------------------------------------------------
// Writing

/// `config.json` for `model`.
pub(super) fn to_json(model: &KerasModel) -> Result<Value, ExportError> {
    let batch_shape = |shape: &[usize]| {
        let mut with_batch = vec![Value::Null];
        with_batch.extend(shape.iter().map(|&d| json!(d)));
        Value::Array(with_batch)
    };
    let input = batch_shape(&model.input_shape);
    let mut layers = vec![json!({
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": input,
            "dtype": "float32",
            "sparse": false,
            "ragged": false,
            "name": "input_layer",
            "optional": false,
        },
        "registered_name": null,
    })];
    let mut shape = model.input_shape.clone();
    for layer in &model.layers {
        let mut config = layer_arguments(&layer.layer, model);
        config["name"] = json!(layer.name);
        config["trainable"] = json!(true);
        config["dtype"] = float32_policy();
        let mut entry = json!({
            "module": "keras.layers",
            "class_name": keras_class(&layer.layer),
            "config": config,
            "registered_name": null,
        });
        // Keras records the input shape of the layers that define `build`.
        if !matches!(layer.layer, Layer::Activation(_) | Layer::Dropout { .. } | Layer::MaxPool2D) {
            entry["build_config"] = json!({ "input_shape": batch_shape(&shape) });
        }
        layers.push(entry);
        shape = output_shape(&layer.layer, &shape)
            .map_err(|problem| ExportError::Write(format!("layer `{}`: {problem}", layer.name)))?;
    }
    Ok(json!({
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": model.name,
            "trainable": true,
            "dtype": float32_policy(),
            "layers": layers,
            "build_input_shape": input,
        },
        "registered_name": null,
        "build_config": { "input_shape": input },
        "compile_config": {
            "optimizer": keras_object("keras.optimizers", "Adam", json!({
                "name": "adam",
                "learning_rate": 0.001,
                "weight_decay": null,
                "clipnorm": null,
                "global_clipnorm": null,
                "clipvalue": null,
                "use_ema": false,
                "ema_momentum": 0.99,
                "ema_overwrite_frequency": null,
                "loss_scale_factor": null,
                "gradient_accumulation_steps": null,
                "beta_1": 0.9,
                "beta_2": 0.999,
                "epsilon": 1e-7,
                "amsgrad": false,
            })),
            "loss": "sparse_categorical_crossentropy",
            "loss_weights": null,
            "metrics": ["accuracy"],
            "weighted_metrics": null,
            "run_eagerly": false,
            "steps_per_execution": 1,
            "jit_compile": "auto",
        },
    }))
}

/// A layer's arguments as Keras 3.15's `get_config()` names them (name and dtype aside).
fn layer_arguments(layer: &Layer, model: &KerasModel) -> Value {
    match *layer {
        Layer::Dense { units, activation } => json!({
            "units": units,
            "activation": activation.keras_name(),
            "use_bias": true,
            "kernel_initializer": glorot_uniform(),
            "bias_initializer": initializer("Zeros"),
            "kernel_regularizer": if model.l2 > 0.0 {
                keras_object("keras.regularizers", "L2", json!({ "l2": decimal(model.l2) }))
            } else {
                Value::Null
            },
            "bias_regularizer": null,
            "kernel_constraint": null,
            "bias_constraint": null,
            "quantization_config": null,
        }),
        Layer::Dropout { rate } => json!({ "rate": decimal(rate), "seed": null, "noise_shape": null }),
        Layer::BatchNorm => json!({
            "axis": -1,
            "momentum": decimal(BATCH_NORM_MOMENTUM),
            "epsilon": decimal(model.batch_norm_epsilon),
            "center": true,
            "scale": true,
            "beta_initializer": initializer("Zeros"),
            "gamma_initializer": initializer("Ones"),
            "moving_mean_initializer": initializer("Zeros"),
            "moving_variance_initializer": initializer("Ones"),
            "beta_regularizer": null,
            "gamma_regularizer": null,
            "beta_constraint": null,
            "gamma_constraint": null,
            "synchronized": false,
            "renorm": false,
            "renorm_clipping": null,
            "renorm_momentum": 0.99,
        }),
        Layer::Activation(activation) => json!({ "activation": activation.keras_name() }),
        Layer::Conv2D { filters, kernel_size, activation } => json!({
            "filters": filters,
            "kernel_size": [kernel_size, kernel_size],
            "strides": [1, 1],
            "padding": "valid",
            "data_format": "channels_last",
            "dilation_rate": [1, 1],
            "groups": 1,
            "activation": activation.keras_name(),
            "use_bias": true,
            "kernel_initializer": glorot_uniform(),
            "bias_initializer": initializer("Zeros"),
            "kernel_regularizer": null,
            "bias_regularizer": null,
            "activity_regularizer": null,
            "kernel_constraint": null,
            "bias_constraint": null,
        }),
        Layer::MaxPool2D => json!({
            "pool_size": [2, 2],
            "padding": "valid",
            "strides": [2, 2],
            "data_format": "channels_last",
        }),
        Layer::ZeroPadding2D { padding } => json!({
            "padding": [[padding, padding], [padding, padding]],
            "data_format": "channels_last",
        }),
        Layer::Flatten => json!({ "data_format": "channels_last" }),
    }
}

fn keras_object(module: &str, class: &str, config: Value) -> Value {
    json!({ "module": module, "class_name": class, "config": config, "registered_name": null })
}

fn float32_policy() -> Value {
    keras_object("keras", "DTypePolicy", json!({ "name": "float32" }))
}

fn initializer(class: &str) -> Value {
    keras_object("keras.initializers", class, json!({}))
}

fn glorot_uniform() -> Value {
    keras_object(
        "keras.initializers",
        "GlorotUniform",
        json!({ "seed": null, "input_axes": null, "output_axes": null }),
    )
}

/// An f32 as the shortest decimal that reads back as it (`0.001`, not `0.0010000000474974513`).
fn decimal(value: f32) -> Value {
    value.to_string().parse::<f64>().map_or(Value::Null, |v| json!(v))
}

/// The shape (without the batch axis) `layer` outputs for an input of `shape`, as Keras
/// computes it; an error where fashion-gpu's layer would not compute what Keras's does.
fn output_shape(layer: &Layer, shape: &[usize]) -> Result<Vec<usize>, String> {
    let image = || match *shape {
        [height, width, channels] => Ok((height, width, channels)),
        _ => Err(format!("needs a height × width × channels image, but its input is {shape:?}")),
    };
    match *layer {
        Layer::Dense { units, .. } => match shape {
            [_] => Ok(vec![units]),
            _ => Err(format!(
                "Keras applies a Dense layer to the last axis of its {shape:?} input, fashion-gpu to all \
                 of it: put a Flatten before it"
            )),
        },
        Layer::Conv2D { filters, kernel_size, .. } => {
            let (height, width, _) = image()?;
            if kernel_size == 0 || kernel_size > height || kernel_size > width {
                return Err(format!("a {kernel_size}×{kernel_size} kernel does not fit its {height}×{width} input"));
            }
            Ok(vec![height + 1 - kernel_size, width + 1 - kernel_size, filters])
        }
        Layer::MaxPool2D => {
            let (height, width, channels) = image()?;
            Ok(vec![height / 2, width / 2, channels])
        }
        Layer::ZeroPadding2D { padding } => {
            let (height, width, channels) = image()?;
            if padding > MAX_PADDING {
                return Err(format!("a padding of {padding} is not supported (1 to {MAX_PADDING})"));
            }
            Ok(vec![height + 2 * padding, width + 2 * padding, channels])
        }
        Layer::Flatten => {
            let size = shape.iter().try_fold(1usize, |size, &d| size.checked_mul(d));
            Ok(vec![size.ok_or_else(|| format!("its {shape:?} input is too large"))?])
        }
        Layer::Dropout { .. } | Layer::BatchNorm | Layer::Activation(_) => Ok(shape.to_vec()),
    }
}

/// How many weights `layer` holds for an input of `shape` (`None` past `u64`).
fn parameter_count(layer: &Layer, shape: &[usize]) -> Option<u64> {
    let last = *shape.last()? as u64;
    match *layer {
        Layer::Dense { units, .. } => (last.checked_add(1)?).checked_mul(units as u64),
        Layer::Conv2D { filters, kernel_size, .. } => {
            let k = kernel_size as u64;
            k.checked_mul(k)?.checked_mul(last)?.checked_add(1)?.checked_mul(filters as u64)
        }
        Layer::BatchNorm => last.checked_mul(4),
        _ => Some(0),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// The model in `config.json`'s bytes.
pub(super) fn parse(bytes: &[u8]) -> Result<ModelConfig, ConfigError> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| ConfigError::Json(e.to_string()))?;
    let structure = |problem: String| ConfigError::Structure(problem);
    let class = root.get("class_name").and_then(Value::as_str).unwrap_or("(none)");
    if class != "Sequential" {
        return Err(structure(format!("the model is a `{class}`; fashion-gpu reads Sequential models")));
    }
    let config = root.get("config").and_then(Value::as_object).ok_or_else(|| structure("no `config`".into()))?;
    let name = config.get("name").and_then(Value::as_str).unwrap_or("sequential").to_string();
    let entries = config.get("layers").and_then(Value::as_array).ok_or_else(|| structure("no `layers`".into()))?;

    let (input, entries) = match entries.split_first() {
        Some((first, rest)) if first.get("class_name").and_then(Value::as_str) == Some("InputLayer") => {
            let input = first.get("config").and_then(|c| c.get("batch_shape").or_else(|| c.get("batch_input_shape")));
            (input, rest)
        }
        // A model built without an InputLayer keeps its input shape in `build_input_shape`.
        _ => (config.get("build_input_shape"), entries.as_slice()),
    };
    let input = input.ok_or_else(|| structure("no input shape: the model was saved before it was built".into()))?;
    let input_shape = input_shape(input)?;

    let mut shape = input_shape.clone();
    let mut parameters = 0u64;
    let mut l2_factors: Vec<(String, f32)> = Vec::new();
    let mut layers = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let arguments = entry.get("config").and_then(Value::as_object);
        let name = arguments.and_then(|a| a.get("name")).and_then(Value::as_str).unwrap_or("unnamed");
        let problem = |problem: String| ConfigError::Layer { index, name: name.to_string(), problem };
        let arguments = arguments.ok_or_else(|| problem("no `config`".into()))?;
        let read = read_layer(entry, &Arguments { map: arguments }).map_err(problem)?;
        if let Some(l2) = read.l2 {
            l2_factors.push((name.to_string(), l2));
        }
        for layer in read.same_padding.iter().chain([&read.layer]) {
            let count = parameter_count(layer, &shape).unwrap_or(u64::MAX);
            parameters = parameters.saturating_add(count);
            if parameters > MAX_PARAMETERS {
                return Err(problem(format!("the model would have more than {MAX_PARAMETERS} weights")));
            }
            shape = output_shape(layer, &shape).map_err(problem)?;
        }
        layers.push(ConfigLayer {
            name: name.to_string(),
            class: read.class,
            layer: read.layer,
            same_padding: read.same_padding,
        });
    }
    Ok(ModelConfig { name, input_shape, layers, l2: one_l2_factor(&l2_factors)?, parameters })
}

/// One image's shape from a `[null, …]` batch shape: `[28, 28]`, `[28, 28, 1]` or `[784]`.
fn input_shape(batch_shape: &Value) -> Result<Vec<usize>, ConfigError> {
    let dims = batch_shape.as_array().and_then(|dims| dims.get(1..)).unwrap_or_default();
    let shape: Option<Vec<usize>> = dims.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect();
    match shape {
        Some(shape)
            if shape == [IMAGE_SIDE, IMAGE_SIDE]
                || shape == [IMAGE_SIDE, IMAGE_SIDE, 1]
                || shape == [PIXELS_PER_IMAGE] =>
        {
            Ok(shape)
        }
        _ => Err(ConfigError::Structure(format!(
            "the model's input is {batch_shape}; fashion-gpu models take 28×28 grayscale images ([null, 28, 28], \
             [null, 28, 28, 1] or [null, 784])"
        ))),
    }
}

/// The one L2 factor of the Dense layers' kernel regularizers, which must all be the same.
fn one_l2_factor(factors: &[(String, f32)]) -> Result<f32, ConfigError> {
    let Some((_, first)) = factors.first() else { return Ok(0.0) };
    if factors.iter().all(|(_, l2)| l2 == first) {
        return Ok(*first);
    }
    let listed: Vec<String> = factors.iter().map(|(name, l2)| format!("{name}: {l2}")).collect();
    Err(ConfigError::Structure(format!(
        "the Dense layers' L2 factors differ ({}); fashion-gpu has one factor for every Dense layer",
        listed.join(", ")
    )))
}

/// A layer as read: what it computes, and the L2 factor of a Dense layer's kernel.
struct ReadLayer {
    class: &'static str,
    layer: Layer,
    same_padding: Option<Layer>,
    l2: Option<f32>,
}

/// One entry of `layers`, or what fashion-gpu's layer lacks to compute what Keras's does.
fn read_layer(entry: &Value, arguments: &Arguments) -> Result<ReadLayer, String> {
    let class_name = entry.get("class_name").and_then(Value::as_str).unwrap_or("(none)");
    let Some(class) = CLASSES.into_iter().find(|c| *c == class_name) else {
        return Err(format!("{class_name} is not supported (fashion-gpu reads {})", CLASSES.join(", ")));
    };
    if let Some(registered) = entry.get("registered_name").and_then(Value::as_str) {
        if registered != class {
            return Err(format!("a custom layer (registered as `{registered}`) is not supported"));
        }
    }
    if let Some(policy) = arguments.get("dtype") {
        let policy_name = policy.get("config").and_then(|c| c.get("name")).unwrap_or(policy);
        if policy_name.as_str() != Some("float32") {
            return Err(format!("dtype {policy_name} is not supported (float32 only)"));
        }
    }
    let mut same_padding = None;
    let mut l2 = None;
    let layer = match class {
        "Dense" => {
            arguments.expect_true("use_bias")?;
            arguments.expect_null(&[
                "bias_regularizer",
                "activity_regularizer",
                "kernel_constraint",
                "bias_constraint",
            ])?;
            l2 = Some(arguments.l2_factor("kernel_regularizer")?);
            Layer::Dense { units: arguments.whole("units")?, activation: arguments.activation()? }
        }
        "Dropout" => {
            arguments.expect_null(&["noise_shape"])?;
            Layer::Dropout { rate: arguments.number("rate")? as f32 }
        }
        "BatchNormalization" => {
            arguments.expect_last_axis()?;
            arguments.expect_true("center")?;
            arguments.expect_true("scale")?;
            arguments.expect_false("renorm")?;
            arguments.expect_null(&["beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"])?;
            let epsilon = arguments.number_or("epsilon", 1e-3)? as f32;
            if epsilon != BATCH_NORM_EPSILON {
                return Err(format!(
                    "epsilon {epsilon} is not supported (fashion-gpu's BatchNormalization has ε 0.001)"
                ));
            }
            let momentum = arguments.number_or("momentum", 0.99)? as f32;
            if momentum != BATCH_NORM_MOMENTUM {
                return Err(format!(
                    "momentum {momentum} is not supported (fashion-gpu's BatchNormalization has 0.99)"
                ));
            }
            Layer::BatchNorm
        }
        "Activation" => Layer::Activation(arguments.activation()?),
        "ReLU" => {
            for (argument, default) in [("negative_slope", 0.0), ("threshold", 0.0)] {
                if arguments.number_or(argument, default)? != default {
                    return Err(format!("a ReLU with a {argument} is not supported"));
                }
            }
            arguments.expect_null(&["max_value"])?;
            Layer::Activation(Activation::Relu)
        }
        "Softmax" => {
            arguments.expect_last_axis()?;
            Layer::Activation(Activation::Softmax)
        }
        "Conv2D" => {
            arguments.expect_channels_last()?;
            arguments.expect_pair("strides", 1)?;
            arguments.expect_pair("dilation_rate", 1)?;
            if arguments.whole_or("groups", 1)? != 1 {
                return Err("grouped convolutions are not supported".into());
            }
            arguments.expect_true("use_bias")?;
            arguments.expect_null(&[
                "kernel_regularizer",
                "bias_regularizer",
                "activity_regularizer",
                "kernel_constraint",
                "bias_constraint",
            ])?;
            let kernel_size = match arguments.pair("kernel_size")? {
                [height, width] if height == width => height,
                [height, width] => {
                    return Err(format!("a {height}×{width} kernel is not supported (square kernels only)"))
                }
            };
            match arguments.text_or("padding", "valid")? {
                "valid" => {}
                "same" if kernel_size % 2 == 1 => {
                    same_padding = Some(Layer::ZeroPadding2D { padding: kernel_size / 2 });
                }
                padding => {
                    return Err(format!(
                        "padding \"{padding}\" with a {kernel_size}×{kernel_size} kernel is not supported"
                    ))
                }
            }
            Layer::Conv2D { filters: arguments.whole("filters")?, kernel_size, activation: arguments.activation()? }
        }
        "MaxPooling2D" => {
            arguments.expect_channels_last()?;
            if arguments.pair("pool_size")? != [2, 2] {
                return Err("pool sizes other than 2×2 are not supported".into());
            }
            if arguments.get("strides").is_some() {
                arguments.expect_pair("strides", 2)?;
            }
            if arguments.text_or("padding", "valid")? != "valid" {
                return Err("padding other than \"valid\" is not supported".into());
            }
            Layer::MaxPool2D
        }
        "ZeroPadding2D" => {
            arguments.expect_channels_last()?;
            Layer::ZeroPadding2D { padding: arguments.symmetric_padding()? }
        }
        // Flatten, the last of `CLASSES`.
        _ => {
            arguments.expect_channels_last()?;
            Layer::Flatten
        }
    };
    Ok(ReadLayer { class, layer, same_padding, l2 })
}

/// A layer's `config` object, read argument by argument; a missing argument is Keras's default.
struct Arguments<'a> {
    map: &'a Map<String, Value>,
}

impl Arguments<'_> {
    /// The argument's value; `None` when it is missing or null.
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn whole_or(&self, key: &str, default: usize) -> Result<usize, String> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| format!("`{key}` is {value}, not a whole number")),
        }
    }

    fn whole(&self, key: &str) -> Result<usize, String> {
        self.get(key).ok_or_else(|| format!("no `{key}`"))?;
        self.whole_or(key, 0)
    }

    fn number_or(&self, key: &str, default: f64) -> Result<f64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value.as_f64().ok_or_else(|| format!("`{key}` is {value}, not a number")),
        }
    }

    fn number(&self, key: &str) -> Result<f64, String> {
        self.get(key).ok_or_else(|| format!("no `{key}`"))?;
        self.number_or(key, 0.0)
    }

    fn text_or<'b>(&'b self, key: &str, default: &'b str) -> Result<&'b str, String> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value.as_str().ok_or_else(|| format!("`{key}` is {value}, not a string")),
        }
    }

    /// An `(a, b)` argument, which Keras also takes as one number `n` for `(n, n)`.
    fn pair(&self, key: &str) -> Result<[usize; 2], String> {
        let value = self.get(key).ok_or_else(|| format!("no `{key}`"))?;
        let whole = |v: &Value| v.as_u64().and_then(|v| usize::try_from(v).ok());
        match value {
            Value::Array(items) => match items.as_slice() {
                [a, b] => whole(a).zip(whole(b)).map(|(a, b)| [a, b]),
                _ => None,
            },
            single => whole(single).map(|n| [n, n]),
        }
        .ok_or_else(|| format!("`{key}` is {value}, not one or two whole numbers"))
    }

    fn expect_pair(&self, key: &str, each: usize) -> Result<(), String> {
        if self.get(key).is_none() || self.pair(key)? == [each, each] {
            Ok(())
        } else {
            Err(format!("{key} other than ({each}, {each}) are not supported"))
        }
    }

    fn expect_true(&self, key: &str) -> Result<(), String> {
        match self.get(key) {
            None => Ok(()),
            Some(Value::Bool(true)) => Ok(()),
            Some(value) => Err(format!("`{key}` {value} is not supported (fashion-gpu's layer has {key}=True)")),
        }
    }

    fn expect_false(&self, key: &str) -> Result<(), String> {
        match self.get(key) {
            None | Some(Value::Bool(false)) => Ok(()),
            Some(value) => Err(format!("`{key}` {value} is not supported")),
        }
    }

    /// Arguments fashion-gpu's layer does not have, which must be missing or null.
    fn expect_null(&self, keys: &[&str]) -> Result<(), String> {
        match keys.iter().find(|key| self.get(key).is_some()) {
            None => Ok(()),
            Some(key) => Err(format!("`{key}` is not supported")),
        }
    }

    fn expect_channels_last(&self) -> Result<(), String> {
        match self.text_or("data_format", "channels_last")? {
            "channels_last" => Ok(()),
            other => Err(format!("data_format \"{other}\" is not supported (channels_last only)")),
        }
    }

    /// `axis` -1, the last axis of every input fashion-gpu's layers see.
    fn expect_last_axis(&self) -> Result<(), String> {
        let axis = match self.get("axis") {
            Some(Value::Array(axes)) if axes.len() == 1 => axes.first(),
            other => other,
        };
        match axis.map(|a| a.as_i64()) {
            None | Some(Some(-1)) => Ok(()),
            _ => Err(format!("axis {} is not supported (the last axis, -1, only)", axis.unwrap_or(&Value::Null))),
        }
    }

    /// `activation`: relu, softmax or linear (Keras's default, also written null).
    fn activation(&self) -> Result<Activation, String> {
        match self.text_or("activation", "linear")? {
            "relu" => Ok(Activation::Relu),
            "softmax" => Ok(Activation::Softmax),
            "linear" => Ok(Activation::Linear),
            other => Err(format!("activation \"{other}\" is not supported (relu, softmax or linear)")),
        }
    }

    /// ZeroPadding2D's `padding`: `n`, `(h, w)` or `((top, bottom), (left, right))`, all equal.
    fn symmetric_padding(&self) -> Result<usize, String> {
        let value = self.get("padding").ok_or("no `padding`")?;
        let mut sides = Vec::new();
        let mut collect = |v: &Value| match v {
            Value::Array(items) => sides.extend(items.iter().map(|i| i.as_u64())),
            single => sides.push(single.as_u64()),
        };
        match value {
            Value::Array(items) => items.iter().for_each(&mut collect),
            single => collect(single),
        }
        match sides.as_slice() {
            [Some(first), rest @ ..] if rest.iter().all(|side| *side == Some(*first)) => {
                usize::try_from(*first).map_err(|_| format!("padding {value} is too large"))
            }
            _ => Err(format!("padding {value} is not supported (the same on every side)")),
        }
    }

    /// λ of a Dense layer's `kernel_regularizer`: Keras's `L2(λ)` (or `L1L2` with l1 0), 0 for none.
    fn l2_factor(&self, key: &str) -> Result<f32, String> {
        let Some(regularizer) = self.get(key) else { return Ok(0.0) };
        let class = regularizer.get("class_name").and_then(Value::as_str).unwrap_or("(none)");
        let factor = |name: &str| regularizer.get("config").and_then(|c| c.get(name)).and_then(Value::as_f64);
        match class {
            "L2" => factor("l2"),
            "L1L2" if factor("l1").unwrap_or(0.0) == 0.0 => factor("l2"),
            _ => None,
        }
        .map(|l2| l2 as f32)
        .ok_or_else(|| format!("`{key}` {class} is not supported (L2 only)"))
    }
}
