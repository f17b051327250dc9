//! A TF.js LayersModel of a [`KerasModel`]: what `tf.loadLayersModel` reads.
//!
//! Two files. `model.json`:
//!
//! ```text
//! { "format": "layers-model", "generatedBy": …, "convertedBy": …,
//!   "modelTopology": { "class_name": "Sequential", "keras_version": …, "backend": …,
//!                      "config": { "name": …, "layers": [ {"class_name": "Dense", "config": {…}}, … ] } },
//!   "weightsManifest": [ { "paths": ["group1-shard1of1.bin"],
//!                          "weights": [ {"name": "dense/kernel", "shape": [784, 256], "dtype": "float32"}, … ] } ] }
//! ```
//!
//! `modelTopology` is Keras 2's model config (snake_case keys, which tfjs-layers turns into its
//! camelCase arguments); the first layer carries `batch_input_shape`. tfjs-layers registers one
//! regularizer class, `L1L2`, so Keras's `L2(λ)` is written as `L1L2(l1=0, l2=λ)`, the same
//! penalty λ·Σw².
//!
//! `group1-shard1of1.bin` holds every weight listed in the manifest, in the manifest's order, as
//! little-endian float32, row-major, back to back. tfjs-layers gives each weight to the variable
//! whose name is `layer/weight` (`dense_1/bias`, `batch_normalization/moving_variance`), so the
//! manifest's names are the layers' names and Keras's weight names.

use std::io::{Cursor, Write};

use fashion_core::model::{Layer, BATCH_NORM_MOMENTUM};
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::layers::{keras_class, KerasLayer, KerasModel};
use crate::ExportError;

/// `model.json`'s text and the weights shard's bytes.
pub struct TfjsFiles {
    pub model_json: String,
    pub weights: Vec<u8>,
}

/// The file name `model.json` gives its weights shard.
pub const WEIGHTS_FILE: &str = "group1-shard1of1.bin";

/// The name of the model file (in the zip, and what a user hands to `tf.loadLayersModel`).
pub const MODEL_FILE: &str = "model.json";

/// Who wrote the files, as `model.json` records it.
const WRITER: &str = concat!("fashion-gpu ", env!("CARGO_PKG_VERSION"));

/// The Keras whose model config `modelTopology` follows (the last Keras 2, whose layout
/// tfjs-layers and tensorflowjs_converter read).
const KERAS_VERSION: &str = "2.15.0";

/// `model.json` and its weights shard for `model`.
pub fn write_files(model: &KerasModel) -> Result<TfjsFiles, ExportError> {
    let mut layers = Vec::with_capacity(model.layers.len());
    let mut manifest = Vec::new();
    let mut weights = Vec::new();
    for (index, layer) in model.layers.iter().enumerate() {
        let mut config = layer_config(layer, model);
        if index == 0 {
            let batch_input_shape: Vec<Option<usize>> =
                std::iter::once(None).chain(model.input_shape.iter().copied().map(Some)).collect();
            config["batch_input_shape"] = json!(batch_input_shape);
        }
        layers.push(json!({ "class_name": keras_class(&layer.layer), "config": config }));
        for weight in &layer.weights {
            manifest.push(json!({
                "name": format!("{}/{}", layer.name, weight.name),
                "shape": weight.shape,
                "dtype": "float32",
            }));
            weights.extend(weight.values.iter().flat_map(|value| value.to_le_bytes()));
        }
    }
    let model_json = json!({
        "format": "layers-model",
        "generatedBy": WRITER,
        "convertedBy": WRITER,
        "modelTopology": {
            "class_name": "Sequential",
            "config": { "name": model.name, "layers": layers },
            "keras_version": KERAS_VERSION,
            "backend": "tensorflow",
        },
        "weightsManifest": [{ "paths": [WEIGHTS_FILE], "weights": manifest }],
    });
    let model_json = serde_json::to_string(&model_json).map_err(|e| ExportError::Write(format!("model.json: {e}")))?;
    Ok(TfjsFiles { model_json, weights })
}

/// One zip holding `model.json` and its weights shard (the page's download).
pub fn write_zip(model: &KerasModel) -> Result<Vec<u8>, ExportError> {
    let files = write_files(model)?;
    let zip_error = |e: &dyn std::fmt::Display| ExportError::Write(format!("TF.js zip: {e}"));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in [(MODEL_FILE, files.model_json.as_bytes()), (WEIGHTS_FILE, &files.weights)] {
        zip.start_file(name, options).map_err(|e| zip_error(&e))?;
        zip.write_all(bytes).map_err(|e| zip_error(&e))?;
    }
    Ok(zip.finish().map_err(|e| zip_error(&e))?.into_inner())
}

/// A layer's Keras 2 config: its name, and its arguments as Keras's `get_config()` names them.
fn layer_config(layer: &KerasLayer, model: &KerasModel) -> Value {
    let mut config = match layer.layer {
        Layer::Dense { units, activation } => {
            let mut dense = json!({ "units": units, "activation": activation.keras_name(), "use_bias": true });
            if model.l2 > 0.0 {
                dense["kernel_regularizer"] =
                    json!({ "class_name": "L1L2", "config": { "l1": 0.0, "l2": decimal(model.l2) } });
            }
            dense
        }
        Layer::Dropout { rate } => json!({ "rate": decimal(rate) }),
        Layer::BatchNorm => json!({
            "axis": -1,
            "momentum": decimal(BATCH_NORM_MOMENTUM),
            "epsilon": decimal(model.batch_norm_epsilon),
            "center": true,
            "scale": true,
        }),
        Layer::Activation(activation) => json!({ "activation": activation.keras_name() }),
        Layer::Conv2D { filters, kernel_size, activation } => json!({
            "filters": filters,
            "kernel_size": [kernel_size, kernel_size],
            "strides": [1, 1],
            "padding": "valid",
            "data_format": "channels_last",
            "dilation_rate": [1, 1],
            "activation": activation.keras_name(),
            "use_bias": true,
        }),
        Layer::MaxPool2D => json!({
            "pool_size": [2, 2],
            "strides": [2, 2],
            "padding": "valid",
            "data_format": "channels_last",
        }),
        Layer::ZeroPadding2D { padding } => {
            json!({ "padding": [[padding, padding], [padding, padding]], "data_format": "channels_last" })
        }
        Layer::Flatten => json!({ "data_format": "channels_last" }),
    };
    config["name"] = json!(layer.name);
    config["trainable"] = json!(true);
    config["dtype"] = json!("float32");
    config
}

/// An f32 hyperparameter as the decimal it was written as (`0.99`, not `0.9900000095367432`).
fn decimal(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::Read;

    use fashion_core::ModelSpec;

    use super::*;

    fn numbered(spec: &ModelSpec) -> Vec<f32> {
        (0..spec.total_params()).map(|i| (i % 89) as f32 * 0.01 - 0.4).collect()
    }

    fn models() -> Vec<KerasModel> {
        let mut specs: Vec<ModelSpec> =
            fashion_core::model::PRESETS.iter().map(|preset| ModelSpec::preset(preset).unwrap()).collect();
        specs.push(
            ModelSpec::parse("odd", "pad:2,conv:8,pool,bn,pad:1,conv:4,flatten,24:relu,dropout:0.3,10:softmax")
                .unwrap(),
        );
        specs.push(
            ModelSpec::parse("odd-mlp", "37:linear,bn,relu,dropout:0.5,10:linear,bn,softmax")
                .unwrap()
                .with_l2(0.0005)
                .unwrap(),
        );
        specs.iter().map(|spec| KerasModel::new(spec, &numbered(spec)).unwrap()).collect()
    }

    #[test]
    fn the_manifest_describes_the_shard_exactly() {
        for model in models() {
            let files = write_files(&model).unwrap();
            let json: Value = serde_json::from_str(&files.model_json).unwrap();
            assert_eq!(json["format"], "layers-model");
            let groups = json["weightsManifest"].as_array().unwrap();
            assert_eq!(groups.len(), 1);
            assert_eq!(groups[0]["paths"], json!([WEIGHTS_FILE]));
            let specs = groups[0]["weights"].as_array().unwrap();
            let mut names = HashSet::new();
            let mut offset = 0;
            let expected = model.layers.iter().flat_map(|layer| layer.weights.iter().map(move |w| (layer, w)));
            for (spec, (layer, weight)) in specs.iter().zip(expected) {
                let name = spec["name"].as_str().unwrap();
                assert_eq!(name, format!("{}/{}", layer.name, weight.name));
                assert!(names.insert(name.to_string()), "{}: `{name}` twice", model.name);
                assert_eq!(spec["dtype"], "float32");
                let shape: Vec<usize> = serde_json::from_value(spec["shape"].clone()).unwrap();
                assert_eq!(shape, weight.shape);
                let len = shape.iter().product::<usize>() * 4;
                let bytes = &files.weights[offset..offset + len];
                let values: Vec<f32> =
                    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                assert_eq!(values, weight.values, "{}: {name}", model.name);
                offset += len;
            }
            let weight_count: usize = model.layers.iter().map(|layer| layer.weights.len()).sum();
            assert_eq!(specs.len(), weight_count, "{}", model.name);
            assert_eq!(offset, files.weights.len(), "{}", model.name);
        }
    }

    #[test]
    fn the_topology_is_a_keras_2_sequential_model() {
        for model in models() {
            let json: Value = serde_json::from_str(&write_files(&model).unwrap().model_json).unwrap();
            let topology = &json["modelTopology"];
            assert_eq!(topology["class_name"], "Sequential");
            assert_eq!(topology["config"]["name"], model.name.as_str());
            let layers = topology["config"]["layers"].as_array().unwrap();
            assert_eq!(layers.len(), model.layers.len());
            let mut input_shape = vec![Value::Null];
            input_shape.extend(model.input_shape.iter().map(|&side| json!(side)));
            assert_eq!(layers[0]["config"]["batch_input_shape"], Value::Array(input_shape));
            for (config, layer) in layers.iter().zip(&model.layers) {
                assert_eq!(config["class_name"], keras_class(&layer.layer));
                assert_eq!(config["config"]["name"], layer.name.as_str());
                let regularizer = &config["config"]["kernel_regularizer"];
                match layer.layer {
                    Layer::Dense { .. } if model.l2 > 0.0 => {
                        assert_eq!(
                            *regularizer,
                            json!({ "class_name": "L1L2", "config": { "l1": 0.0, "l2": decimal(model.l2) } })
                        )
                    }
                    _ => assert!(regularizer.is_null(), "{}: {}", model.name, layer.name),
                }
            }
        }
    }

    #[test]
    fn hyperparameters_are_written_as_their_decimals() {
        let spec = ModelSpec::preset("batchnorm").unwrap();
        let model = KerasModel::new(&spec, &numbered(&spec)).unwrap();
        let json: Value = serde_json::from_str(&write_files(&model).unwrap().model_json).unwrap();
        let batch_norm = &json["modelTopology"]["config"]["layers"][2]["config"];
        assert_eq!(batch_norm["epsilon"], json!(0.001));
        assert_eq!(batch_norm["momentum"], json!(0.99));
        let spec = ModelSpec::preset("l2").unwrap();
        let model = KerasModel::new(&spec, &numbered(&spec)).unwrap();
        let json: Value = serde_json::from_str(&write_files(&model).unwrap().model_json).unwrap();
        assert_eq!(
            json["modelTopology"]["config"]["layers"][1]["config"]["kernel_regularizer"]["config"]["l2"],
            json!(0.002)
        );
    }

    #[test]
    fn the_zip_holds_model_json_and_its_shard() {
        let spec = ModelSpec::preset("cnn").unwrap();
        let model = KerasModel::new(&spec, &numbered(&spec)).unwrap();
        let files = write_files(&model).unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(write_zip(&model).unwrap())).unwrap();
        assert_eq!(zip.len(), 2);
        let mut model_json = String::new();
        zip.by_name(MODEL_FILE).unwrap().read_to_string(&mut model_json).unwrap();
        assert_eq!(model_json, files.model_json);
        let mut weights = Vec::new();
        zip.by_name(WEIGHTS_FILE).unwrap().read_to_end(&mut weights).unwrap();
        assert_eq!(weights, files.weights);
    }
}
