//! `model.weights.h5`: every layer's variables in an HDF5 file, written and read.
//!
//! Keras 3 (`saving_lib._save_state`) stores the variables of the Sequential's `model.layers`
//! (the InputLayer is not one of them) in a group per layer, named after its class rather than
//! after the layer: `layers/dense`, `layers/dense_1`, `layers/batch_normalization`, … A layer's
//! group holds a `vars` group, with the layer's name as its `name` attribute, and in it one
//! float32 dataset per variable, named by its index: Dense and Conv2D `0` kernel, `1` bias;
//! BatchNormalization `0` gamma, `1` beta, `2` moving_mean, `3` moving_variance. The root's
//! `vars` group (named after the model) holds none, and Keras's `optimizer/vars` holds the
//! optimizer's state, which this writer leaves out and this reader does not read.
//!
//! Keras writes the file through h5py with HDF5's oldest format (superblock 0, symbol-table
//! groups, contiguous datasets); this writer uses the oldest format `hdf5-pure` writes (HDF5
//! 1.8's), which h5py reads as well. Its `name` attributes are fixed-length strings, where h5py
//! writes variable-length ones: each of those takes a 4 KB global heap of its own here, and
//! Keras reads none of them.

use hdf5_pure::{AttrValue, DType, File, FileBuilder, LibVer};

use super::config::ConfigLayer;
use crate::layers::{keras_class, weight_names, AssembleError, KerasModel, Weight};
use crate::ExportError;

/// Why `model.weights.h5` does not hold the weights `config.json` describes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    #[error("not an HDF5 file")]
    NotHdf5,
    #[error("{0}")]
    Hdf5(String),
    #[error("{bytes} bytes, too few for the {parameters} float32 weights config.json describes")]
    TooSmall { bytes: usize, parameters: u64 },
    #[error("no group `{path}` (the variables of layer `{layer}`)")]
    MissingGroup { path: String, layer: String },
    #[error("`{path}` holds {found} variables, but layer `{layer}` has {expected}")]
    VariableCount { path: String, layer: String, found: usize, expected: usize },
    #[error("`{path}` (the {weight} of layer `{layer}`): {problem}")]
    Variable { path: String, layer: String, weight: &'static str, problem: String },
    #[error("{0}")]
    Assemble(AssembleError),
}

/// `model.weights.h5` for `model`.
pub(super) fn write(model: &KerasModel) -> Result<Vec<u8>, ExportError> {
    let mut file = FileBuilder::new();
    file.with_libver_bounds(LibVer::Earliest, LibVer::V18);
    let mut layers = file.create_group("layers");
    let groups = group_names(model.layers.iter().map(|l| keras_class(&l.layer)));
    for (layer, group_name) in model.layers.iter().zip(groups) {
        let mut group = layers.create_group(&group_name);
        let mut vars = group.create_group("vars");
        vars.set_attr("name", AttrValue::String(layer.name.clone()));
        for (index, weight) in layer.weights.iter().enumerate() {
            let shape: Vec<u64> = weight.shape.iter().map(|&d| d as u64).collect();
            vars.create_dataset(&index.to_string()).with_f32_data(&weight.values).with_shape(&shape);
        }
        group.add_group(vars.finish());
        layers.add_group(group.finish());
    }
    file.add_group(layers.finish());
    let mut model_vars = file.create_group("vars");
    model_vars.set_attr("name", AttrValue::String(model.name.clone()));
    file.add_group(model_vars.finish());
    file.finish().map_err(|e| ExportError::Write(format!("model.weights.h5: {e}")))
}

/// Every layer's weights from `bytes`, in the order and with the names Keras gives them.
pub(super) fn read(bytes: Vec<u8>, layers: &[ConfigLayer]) -> Result<Vec<Vec<Weight>>, WeightsError> {
    if !hdf5_pure::is_hdf5_bytes(&bytes) {
        return Err(WeightsError::NotHdf5);
    }
    // No dataset can hold more float32 values than the file has bytes for (Keras compresses none).
    let most_values = bytes.len() as u64 / 4;
    let file = File::from_bytes(bytes).map_err(|e| WeightsError::Hdf5(e.to_string()))?;
    let groups = group_names(layers.iter().map(|l| l.class));
    let mut weights = Vec::with_capacity(layers.len());
    for (layer, group) in layers.iter().zip(groups) {
        let names = weight_names(&layer.layer);
        if names.is_empty() {
            weights.push(Vec::new());
            continue;
        }
        let path = format!("layers/{group}/vars");
        let vars = file
            .group(&path)
            .map_err(|_| WeightsError::MissingGroup { path: path.clone(), layer: layer.name.clone() })?;
        let found = vars.datasets().map_err(|e| WeightsError::Hdf5(format!("`{path}`: {e}")))?.len();
        if found != names.len() {
            return Err(WeightsError::VariableCount { path, layer: layer.name.clone(), found, expected: names.len() });
        }
        let mut layer_weights = Vec::with_capacity(names.len());
        for (index, &name) in names.iter().enumerate() {
            let path = format!("{path}/{index}");
            let problem = |problem: String| WeightsError::Variable {
                path: path.clone(),
                layer: layer.name.clone(),
                weight: name,
                problem,
            };
            let dataset = file.dataset(&path).map_err(|e| problem(e.to_string()))?;
            let dtype = dataset.dtype().map_err(|e| problem(e.to_string()))?;
            if dtype != DType::F32 {
                return Err(problem(format!("holds {dtype:?} values, not float32")));
            }
            let shape = dataset.shape().map_err(|e| problem(e.to_string()))?;
            let count = shape.iter().try_fold(1u64, |count, &d| count.checked_mul(d));
            if count.is_none_or(|count| count > most_values) {
                return Err(problem(format!("its shape {shape:?} holds more values than the file has bytes for")));
            }
            let values = dataset.read_f32().map_err(|e| problem(e.to_string()))?;
            let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            if values.len() != shape.iter().product::<usize>() {
                return Err(problem(format!("{} values for the shape {shape:?}", values.len())));
            }
            layer_weights.push(Weight { name, shape, values });
        }
        weights.push(layer_weights);
    }
    Ok(weights)
}

/// The names of the groups under `layers/` that Keras keeps the variables of layers of these
/// classes in, in this order: the class in snake case, numbered from the second layer of a
/// class on (`dense`, `dense_1`).
pub(super) fn group_names<'a>(classes: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    classes
        .into_iter()
        .map(|class| {
            let base = snake_case(class);
            match seen.iter_mut().find(|(name, _)| *name == base) {
                Some((_, count)) => {
                    *count += 1;
                    format!("{base}_{count}")
                }
                None => {
                    seen.push((base.clone(), 0));
                    base
                }
            }
        })
        .collect()
}

/// A class name as Keras's `naming.to_snake_case` writes it: `_` before a capitalised word
/// (`BatchNormalization` → `batch_normalization`) and between a lower- and an uppercase
/// letter (`ReLU` → `re_lu`), then all lowercase.
fn snake_case(class: &str) -> String {
    let chars: Vec<char> = class.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    let mut words = Vec::with_capacity(chars.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        words.push(chars[i]);
        let word_follows = chars.get(i + 1).is_some_and(char::is_ascii_uppercase)
            && chars.get(i + 2).is_some_and(char::is_ascii_lowercase);
        if word_follows {
            let end = (i + 3..chars.len()).find(|&j| !chars[j].is_ascii_lowercase()).unwrap_or(chars.len());
            words.push('_');
            words.extend(&chars[i + 1..end]);
            i = end;
        } else {
            i += 1;
        }
    }
    let mut snake = String::with_capacity(words.len() + 4);
    for (i, &c) in words.iter().enumerate() {
        snake.push(c.to_ascii_lowercase());
        if c.is_ascii_lowercase() && words.get(i + 1).is_some_and(char::is_ascii_uppercase) {
            snake.push('_');
        }
    }
    snake
}
