use std::io::{Cursor, Read, Write};

use fashion_core::model::{Layer, PRESETS};
use fashion_core::ModelSpec;
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;
use zip::{ZipArchive, ZipWriter};

use super::*;

/// A `.keras` file Keras 3.15.1 wrote (`pad:1,conv:4,pool,pool,flatten,10:softmax`, trained
/// 300 steps): `tests/interop/keras_make.py`'s `keras_cnn.keras`, also a fuzz seed.
const KERAS_WRITTEN_CNN: &[u8] = include_bytes!("../../../../fuzz/seeds/keras/keras_cnn.keras");

/// Odd custom models: padding, several convs, pooling of odd sizes, batch norm on images and
/// features, dropout, linear Dense layers followed by Activation layers.
const ODD_MODELS: [&str; 4] = [
    "pad:1,conv:8,pool,bn,flatten,24:relu,dropout:0.3,10:softmax",
    "pad:2,conv:4,conv:12,pool,pool,flatten,bn,17:linear,bn,relu,10:linear,bn,softmax",
    "64:linear,bn,relu,dropout:0.5,33,10:linear,softmax",
    "conv:4,pool,flatten,10:softmax",
];

fn numbered(spec: &ModelSpec) -> Vec<f32> {
    (0..spec.total_params()).map(|i| ((i * 7919) % 1013) as f32 * 0.001 - 0.5).collect()
}

fn model(spec: &ModelSpec) -> KerasModel {
    KerasModel::new(spec, &numbered(spec)).unwrap()
}

fn every_model() -> Vec<ModelSpec> {
    let presets = PRESETS.iter().map(|p| ModelSpec::preset(p).unwrap());
    let odd = ODD_MODELS.iter().map(|layers| ModelSpec::parse("odd", layers).unwrap());
    let with_l2 = ModelSpec::parse("odd", ODD_MODELS[2]).unwrap().with_l2(0.0025).unwrap();
    presets.chain(odd).chain([with_l2]).collect()
}

fn member(keras: &[u8], name: &str) -> Vec<u8> {
    let mut zip = ZipArchive::new(Cursor::new(keras)).unwrap();
    let mut bytes = Vec::new();
    zip.by_name(name).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

/// `keras` with members replaced (`Some`) or left out (`None`).
fn rezip(keras: &[u8], changes: &[(&str, Option<Vec<u8>>)]) -> Vec<u8> {
    let mut zip = ZipArchive::new(Cursor::new(keras)).unwrap();
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    for index in 0..zip.len() {
        let mut file = zip.by_index(index).unwrap();
        let name = file.name().unwrap().to_string();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        let bytes = match changes.iter().find(|(changed, _)| *changed == name) {
            Some((_, Some(new))) => new.clone(),
            Some((_, None)) => continue,
            None => bytes,
        };
        out.start_file(name, SimpleFileOptions::default()).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A change to a `config.json`.
type ConfigEdit = fn(&mut Value);

/// `keras` with its `config.json` edited by `edit`.
fn with_config(keras: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut config: Value = serde_json::from_slice(&member(keras, CONFIG_FILE)).unwrap();
    edit(&mut config);
    rezip(keras, &[(CONFIG_FILE, Some(config.to_string().into_bytes()))])
}

/// The `index`-th entry of `layers` (0: the InputLayer).
fn layer_entry(config: &mut Value, index: usize) -> &mut Value {
    &mut config["config"]["layers"][index]
}

fn read_error(bytes: &[u8]) -> String {
    read(bytes).unwrap_err().to_string()
}

#[test]
fn every_model_is_written_and_read_back_unchanged() {
    for spec in every_model() {
        let model = model(&spec);
        let file = write(&model).unwrap();
        assert_eq!(read_layers(&file).unwrap(), model, "{:?}", spec.layers);
        let (back_spec, back_params) = read(&file).unwrap();
        assert_eq!((back_spec.layers, back_spec.l2), (spec.layers.clone(), spec.l2));
        assert_eq!(back_params, numbered(&spec), "{:?}", spec.layers);
    }
}

#[test]
fn the_zip_holds_what_keras_writes() {
    let spec = ModelSpec::preset("l2").unwrap();
    let keras = write(&model(&spec)).unwrap();
    let zip = ZipArchive::new(Cursor::new(&keras[..])).unwrap();
    let names: Vec<String> = zip.file_names().map(|name| name.unwrap().to_string()).collect();
    assert_eq!(names, [METADATA_FILE, CONFIG_FILE, WEIGHTS_FILE]);
    let metadata: Value = serde_json::from_slice(&member(&keras, METADATA_FILE)).unwrap();
    assert_eq!(metadata["keras_version"], "3.15.1");
    let config: Value = serde_json::from_slice(&member(&keras, CONFIG_FILE)).unwrap();
    assert_eq!(config["config"]["layers"][0]["config"]["batch_shape"], json!([null, 28, 28]));
    let dense = &config["config"]["layers"][2];
    assert_eq!(dense["class_name"], "Dense");
    let l2: f64 = spec.l2.to_string().parse().unwrap();
    assert_eq!(dense["config"]["kernel_regularizer"]["config"]["l2"], json!(l2));
    assert_eq!(dense["build_config"]["input_shape"], json!([null, 784]));
    assert_eq!(config["compile_config"]["loss"], "sparse_categorical_crossentropy");
}

#[test]
fn a_file_keras_wrote_is_read() {
    let model = read_layers(KERAS_WRITTEN_CNN).unwrap();
    assert_eq!(model.input_shape, [28, 28, 1]);
    let layers: Vec<Layer> = model.layers.iter().map(|l| l.layer).collect();
    assert_eq!(layers, ModelSpec::parse("cnn", "pad:1,conv:4,pool,pool,flatten,10:softmax").unwrap().layers);
    let (spec, params) = read(KERAS_WRITTEN_CNN).unwrap();
    assert_eq!(params.len(), spec.total_params());
    assert!(params.iter().any(|&p| p != 0.0));
}

#[test]
fn a_same_padded_conv_is_read_as_zero_padding_and_a_valid_conv() {
    let spec = ModelSpec::parse("same", "pad:1,conv:8,pool,bn,flatten,10:softmax").unwrap();
    let original = write(&model(&spec)).unwrap();
    let same = with_config(&original, |config| {
        let layers = config["config"]["layers"].as_array_mut().unwrap();
        layers.remove(1);
        layers[1]["config"]["padding"] = json!("same");
    });
    let (back, params) = read(&same).unwrap();
    assert_eq!((back.layers, params), (spec.layers.clone(), numbered(&spec)));
}

#[test]
fn keras_names_variable_groups_after_the_class() {
    let classes = ["Dense", "ReLU", "BatchNormalization", "Dense", "MaxPooling2D", "ZeroPadding2D", "Conv2D", "Dense"];
    let expected =
        ["dense", "re_lu", "batch_normalization", "dense_1", "max_pooling2d", "zero_padding2d", "conv2d", "dense_2"];
    assert_eq!(weights::group_names(classes), expected);
}

#[test]
fn dates_are_written_as_keras_writes_them() {
    assert_eq!(date(0), "1970-01-01@00:00:00");
    assert_eq!(date(1_700_000_000), "2023-11-14@22:13:20");
    assert_eq!(date(951_782_400), "2000-02-29@00:00:00");
}

#[test]
fn what_is_not_a_keras_file_is_named() {
    assert!(read_error(b"not a zip").starts_with("not a .keras file"), "{}", read_error(b"not a zip"));
    let keras = write(&model(&ModelSpec::preset("baseline").unwrap())).unwrap();
    for cut in [10, keras.len() / 2, keras.len() - 10] {
        assert!(read(&keras[..cut]).is_err(), "cut at {cut}");
    }
    let weights = member(&keras, WEIGHTS_FILE);
    assert!(read_error(&weights).contains("Keras 2's legacy .h5"), "{}", read_error(&weights));
    let no_weights = rezip(&keras, &[(WEIGHTS_FILE, None)]);
    assert_eq!(read_error(&no_weights), "model.weights.h5: missing from the .keras zip");
    let junk = rezip(&keras, &[(WEIGHTS_FILE, Some(vec![7; weights.len()]))]);
    assert_eq!(read_error(&junk), "model.weights.h5: not an HDF5 file");
    let short = rezip(&keras, &[(WEIGHTS_FILE, Some(weights[..1000].to_vec()))]);
    assert!(read_error(&short).contains("too few for the 235146 float32 weights"), "{}", read_error(&short));
    let huge_config = rezip(&keras, &[(CONFIG_FILE, Some(vec![b' '; (CONFIG_LIMIT + 1) as usize]))]);
    assert!(read_error(&huge_config).starts_with("config.json: larger than"), "{}", read_error(&huge_config));
    let not_json = rezip(&keras, &[(CONFIG_FILE, Some(b"{\"class_name\": ".to_vec()))]);
    assert!(read_error(&not_json).starts_with("config.json: not valid JSON"), "{}", read_error(&not_json));
}

#[test]
fn unsupported_layers_and_arguments_are_named() {
    let keras = write(&model(&ModelSpec::preset("batchnorm").unwrap())).unwrap();
    let cases: [(&str, ConfigEdit); 9] = [
        ("config.json: layer 3 (conv1d): Conv1D is not supported", |c| {
            *layer_entry(c, 4) = json!({ "class_name": "Conv1D", "config": { "name": "conv1d" } });
        }),
        ("config.json: layer 2 (batch_normalization): epsilon 0.00001 is not supported", |c| {
            layer_entry(c, 3)["config"]["epsilon"] = json!(1e-5)
        }),
        ("config.json: layer 1 (dense): activation \"gelu\" is not supported", |c| {
            layer_entry(c, 2)["config"]["activation"] = json!("gelu")
        }),
        ("config.json: layer 2 (batch_normalization): `center` false is not supported", |c| {
            layer_entry(c, 3)["config"]["center"] = json!(false)
        }),
        ("config.json: the model's input is [null,32,32,3]", |c| {
            layer_entry(c, 0)["config"]["batch_shape"] = json!([null, 32, 32, 3])
        }),
        ("config.json: the model is a `Functional`", |c| c["class_name"] = json!("Functional")),
        ("config.json: the Dense layers' L2 factors differ (dense: 0.01, dense_1: 0", |c| {
            layer_entry(c, 2)["config"]["kernel_regularizer"] = json!({ "class_name": "L2", "config": { "l2": 0.01 } });
        }),
        ("config.json: layer 0 (dense): Keras applies a Dense layer to the last axis of its [28, 28] input", |c| {
            c["config"]["layers"].as_array_mut().unwrap().remove(1);
        }),
        ("config.json: layer 0 (flatten): dtype \"mixed_float16\" is not supported", |c| {
            layer_entry(c, 1)["config"]["dtype"]["config"]["name"] = json!("mixed_float16")
        }),
    ];
    for (expected, edit) in cases {
        let error = read_error(&with_config(&keras, edit));
        assert!(error.starts_with(expected), "expected {expected}…, got {error}");
    }
}

#[test]
fn weights_that_do_not_fit_the_config_are_named() {
    let keras = write(&model(&ModelSpec::preset("baseline").unwrap())).unwrap();
    let wider = write(&model(&ModelSpec::parse("baseline", "257:relu,128:relu,10:softmax").unwrap())).unwrap();
    let mismatched = rezip(&keras, &[(WEIGHTS_FILE, Some(member(&wider, WEIGHTS_FILE)))]);
    assert_eq!(
        read_error(&mismatched),
        "model.weights.h5: layer `dense`: weight `kernel` has shape [784, 257], but the layer needs [784, 256]"
    );

    let spec = ModelSpec::preset("baseline").unwrap();
    let mut with_nan = model(&spec);
    with_nan.layers[2].weights[1].values[3] = f32::NAN;
    assert_eq!(
        read_error(&write(&with_nan).unwrap()),
        "model.weights.h5: layer `dense_1`: weight `bias` holds a non-finite value (NaN) at index 3"
    );

    let mut no_bias = model(&spec);
    no_bias.layers[1].weights.pop();
    assert_eq!(
        read_error(&write(&no_bias).unwrap()),
        "model.weights.h5: `layers/dense/vars` holds 1 variables, but layer `dense` has 2"
    );
}

#[test]
fn a_model_fashion_gpu_cannot_hold_is_refused_with_the_models_reason() {
    let keras = write(&model(&ModelSpec::preset("baseline").unwrap())).unwrap();
    let twelve_classes = with_config(&keras, |c| layer_entry(c, 4)["config"]["units"] = json!(12));
    assert!(read_error(&twelve_classes).contains("softmax over 10 classes"), "{}", read_error(&twelve_classes));
    let enormous = with_config(&keras, |c| layer_entry(c, 2)["config"]["units"] = json!(1u64 << 40));
    assert!(read_error(&enormous).contains("more than 67108864 weights"), "{}", read_error(&enormous));
}
