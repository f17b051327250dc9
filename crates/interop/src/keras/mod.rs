//! Keras 3's `.keras` file: written from a [`KerasModel`], and read back into one.
//!
//! A `.keras` file is a zip of three members, as Keras's `saving_lib` writes them:
//! - `metadata.json`: `{"keras_version": "3.15.1", "date_saved": "2026-05-04@10:11:12"}`;
//! - `config.json`: the model as `keras.saving.serialize_keras_object` describes it — a
//!   Sequential whose `layers` are an InputLayer then every layer's class and arguments, and a
//!   `compile_config` so that `model.evaluate` works right after `load_model` (`config.rs`);
//! - `model.weights.h5`: an HDF5 file with every layer's variables under `layers/<group>/vars/`,
//!   `0`, `1`, … in the layer's own order (`weights.rs`).
//!
//! The writer leaves the optimizer's state out: `load_model` compiles a fresh Adam (learning rate
//! 1e-3) from `compile_config`, whose moments start from zero if training goes on. Keras warns as
//! it loads the file that it skips the optimizer's variables ("… whereas the saved optimizer has
//! 0 variables"), as it does for a model it saved itself before training it.
//!
//! The reader takes a Sequential model built from the layers fashion-gpu has, with Keras's
//! defaults where fashion-gpu has no setting (BatchNormalization ε 1e-3, momentum 0.99), and
//! refuses anything else by name. It trusts no size in the file: the members it reads are
//! bounded before they are inflated, and no tensor is read before its size is checked against
//! the bytes that could hold it.

mod config;
mod weights;

use std::io::{Cursor, Read, Write};

use fashion_core::model::BATCH_NORM_EPSILON;
use fashion_core::ModelSpec;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::layers::{AssembleError, KerasLayer, KerasModel};
use crate::ExportError;
pub use config::ConfigError;
pub use weights::WeightsError;

/// The first bytes of an HDF5 file: Keras 2's legacy `.h5` models are one.
pub const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

const METADATA_FILE: &str = "metadata.json";
const CONFIG_FILE: &str = "config.json";
const WEIGHTS_FILE: &str = "model.weights.h5";

/// The Keras whose `.keras` layout the writer follows (and was checked against).
const KERAS_VERSION: &str = "3.15.1";

/// The largest `config.json` read (a layer takes about a kilobyte of it).
const CONFIG_LIMIT: u64 = 1 << 20;

/// Room in `model.weights.h5` beyond the weights themselves: Keras may keep its optimizer's
/// state there (Adam: two more copies of every weight), and every layer has a group.
const WEIGHTS_FILE_COPIES: u64 = 8;
const WEIGHTS_FILE_SLACK: u64 = 4 << 20;

/// Why a `.keras` file cannot be read into a fashion-gpu model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KerasError {
    #[error("not a .keras file: {0}")]
    NotAZip(String),
    #[error("not a .keras file: this is an HDF5 file (Keras 2's legacy .h5?); save the model with model.save(\"name.keras\")")]
    LegacyHdf5,
    #[error("{0}: missing from the .keras zip")]
    Missing(&'static str),
    #[error("{part}: larger than the {limit} bytes it can take")]
    TooLarge { part: &'static str, limit: u64 },
    #[error("{part}: cannot be read from the zip: {problem}")]
    Unreadable { part: &'static str, problem: String },
    #[error("config.json: {0}")]
    Config(#[from] ConfigError),
    #[error("model.weights.h5: {0}")]
    Weights(#[from] WeightsError),
}

/// The `.keras` zip of `model`: what `keras.saving.load_model` loads, with no custom objects.
/// The optimizer's state is left out (see the module's doc).
pub fn write(model: &KerasModel) -> Result<Vec<u8>, ExportError> {
    let metadata = serde_json::json!({ "keras_version": KERAS_VERSION, "date_saved": date_saved() });
    let config = config::to_json(model)?;
    let weights = weights::write(model)?;
    let zip_error = |e: &dyn std::fmt::Display| ExportError::Write(format!(".keras zip: {e}"));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // Keras stores its members uncompressed; so does this writer.
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for (name, bytes) in [
        (METADATA_FILE, metadata.to_string().as_bytes()),
        (CONFIG_FILE, config.to_string().as_bytes()),
        (WEIGHTS_FILE, &weights),
    ] {
        zip.start_file(name, options).map_err(|e| zip_error(&e))?;
        zip.write_all(bytes).map_err(|e| zip_error(&e))?;
    }
    Ok(zip.finish().map_err(|e| zip_error(&e))?.into_inner())
}

/// The model in a `.keras` file as our spec and its flat parameter buffer, every layer, weight
/// shape and value checked.
pub fn read(bytes: &[u8]) -> Result<(ModelSpec, Vec<f32>), KerasError> {
    read_layers(bytes)?.to_spec().map_err(|error| match error {
        AssembleError::Model(e) => ConfigError::Spec(e).into(),
        e @ AssembleError::InputShape { .. } => ConfigError::Structure(e.to_string()).into(),
        e => WeightsError::Assemble(e).into(),
    })
}

/// The layers of a `.keras` file with their weights, as the file has them (checked against our
/// layers by [`read`]).
fn read_layers(bytes: &[u8]) -> Result<KerasModel, KerasError> {
    if bytes.starts_with(HDF5_SIGNATURE) {
        return Err(KerasError::LegacyHdf5);
    }
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| KerasError::NotAZip(e.to_string()))?;
    let config = config::parse(&read_member(&mut zip, CONFIG_FILE, CONFIG_LIMIT)?)?;
    let weights_needed = config.parameters * 4;
    let weights_limit = WEIGHTS_FILE_COPIES * weights_needed + WEIGHTS_FILE_SLACK;
    let weights_file = read_member(&mut zip, WEIGHTS_FILE, weights_limit)?;
    if (weights_file.len() as u64) < weights_needed {
        return Err(WeightsError::TooSmall { bytes: weights_file.len(), parameters: config.parameters }.into());
    }
    let weights = weights::read(weights_file, &config.layers)?;

    let mut layers = Vec::new();
    for (config_layer, layer_weights) in config.layers.into_iter().zip(weights) {
        // A `padding="same"` Conv2D is read as a ZeroPadding2D and the Conv2D that holds its weights.
        if let Some(padding) = config_layer.same_padding {
            layers.push(KerasLayer {
                name: format!("{}_padding", config_layer.name),
                layer: padding,
                weights: Vec::new(),
            });
        }
        layers.push(KerasLayer { name: config_layer.name, layer: config_layer.layer, weights: layer_weights });
    }
    Ok(KerasModel {
        name: config.name,
        input_shape: config.input_shape,
        layers,
        l2: config.l2,
        batch_norm_epsilon: BATCH_NORM_EPSILON,
    })
}

/// A zip member's bytes, refused when it would inflate past `limit`.
fn read_member(zip: &mut ZipArchive<Cursor<&[u8]>>, name: &'static str, limit: u64) -> Result<Vec<u8>, KerasError> {
    let unreadable = |e: &dyn std::fmt::Display| KerasError::Unreadable { part: name, problem: e.to_string() };
    let member = zip.by_name(name).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => KerasError::Missing(name),
        e => unreadable(&e),
    })?;
    if member.size() > limit {
        return Err(KerasError::TooLarge { part: name, limit });
    }
    let mut bytes = Vec::new();
    member.take(limit + 1).read_to_end(&mut bytes).map_err(|e| unreadable(&e))?;
    if bytes.len() as u64 > limit {
        return Err(KerasError::TooLarge { part: name, limit });
    }
    Ok(bytes)
}

/// Now, as Keras writes `date_saved`.
fn date_saved() -> String {
    date(web_time::SystemTime::now().duration_since(web_time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// Seconds since 1970 as Keras writes a date (`%Y-%m-%d@%H:%M:%S`, here in UTC).
fn date(seconds: u64) -> String {
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}@{:02}:{:02}:{:02}", time / 3600, time / 60 % 60, time % 60)
}

#[cfg(test)]
mod tests;
