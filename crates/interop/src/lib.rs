//! A trained model in the files other tools load, and Keras's files in.
//!
//! - [`layers`]: the model as Keras layers, each with its weights: what every format writes, and
//!   what a `.keras` file is read back into.
//! - [`keras`]: Keras 3's `.keras` zip (`config.json`, `metadata.json`, `model.weights.h5`),
//!   written and read.
//! - [`onnx`]: an ONNX inference graph (opset 13).
//! - [`tfjs`]: a TF.js LayersModel (`model.json` and one weights shard).
//!
//! Every exported model takes images as the study's Keras notebook feeds them: pixels / 255,
//! shaped `[batch, 28, 28]` for the MLPs (their first layer is a Flatten) and
//! `[batch, 28, 28, 1]` for models that start with an image layer (Conv2D, padding, pooling).

pub mod keras;
pub mod layers;
pub mod onnx;
pub mod tfjs;

use std::path::Path;

use fashion_core::ModelSpec;

/// The formats a model is exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// Keras 3's `.keras` zip.
    Keras,
    /// An ONNX model (`.onnx`).
    Onnx,
    /// A TF.js LayersModel: `model.json` and `group1-shard1of1.bin`, in a folder or one zip.
    Tfjs,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Keras, Format::Onnx, Format::Tfjs];

    /// The name users type (`--format keras`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Keras => "keras",
            Format::Onnx => "onnx",
            Format::Tfjs => "tfjs",
        }
    }

    /// How users call it (`Keras 3`, `ONNX`, `TF.js`).
    pub fn title(self) -> &'static str {
        match self {
            Format::Keras => "Keras 3",
            Format::Onnx => "ONNX",
            Format::Tfjs => "TF.js",
        }
    }

    /// The format a name (`keras`, `onnx`, `tfjs`) stands for.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }

    /// The format a file name stands for: `.keras`, `.onnx`, and for TF.js a
    /// `.zip` or a `model.json` (beside which the weights shard is written).
    pub fn from_path(path: &Path) -> Option<Format> {
        let extension = path.extension().map(|e| e.to_ascii_lowercase());
        match extension.as_ref().and_then(|e| e.to_str()) {
            Some("keras") => Some(Format::Keras),
            Some("onnx") => Some(Format::Onnx),
            Some("zip") => Some(Format::Tfjs),
            _ if path.file_name().is_some_and(|name| name == "model.json") => Some(Format::Tfjs),
            _ => None,
        }
    }

    /// The download's file name for a model called `model` (TF.js: one zip of its two files).
    pub fn file_name(self, model: &str) -> String {
        match self {
            Format::Keras => format!("{model}.keras"),
            Format::Onnx => format!("{model}.onnx"),
            Format::Tfjs => format!("{model}-tfjs.zip"),
        }
    }
}

/// Why a model cannot be exported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    #[error("the model has {found} parameters, but a `{model}` model has {expected}")]
    ParamCount { model: String, found: usize, expected: usize },
    #[error("{0}")]
    Write(String),
}

/// The model of a Keras `.keras` file and its flat parameter buffer, every layer and weight
/// checked before anything is used. A model with the layers of one of the study's presets is
/// named after it (`baseline`), so the page and the CLI treat it as that preset.
pub fn import_keras(bytes: &[u8]) -> Result<(ModelSpec, Vec<f32>), keras::KerasError> {
    let (mut spec, params) = keras::read(bytes)?;
    if let Some(preset) = fashion_core::PRESETS
        .iter()
        .find(|preset| ModelSpec::preset(preset).is_ok_and(|p| p.layers == spec.layers && p.l2 == spec.l2))
    {
        spec.name = preset.to_string();
    }
    Ok((spec, params))
}

/// Whether `bytes` are Keras's, not a `.safetensors` file: a `.keras` zip, or an HDF5 file (Keras
/// 2's legacy `.h5`, which [`import_keras`] refuses by name).
pub fn looks_like_keras(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(keras::HDF5_SIGNATURE)
}

/// `spec` with the weights `params` (its flat parameter buffer) as one file of `format`: the
/// bytes a user downloads (TF.js: a zip of `model.json` and its weights shard).
pub fn export(spec: &ModelSpec, params: &[f32], format: Format) -> Result<Vec<u8>, ExportError> {
    let model = layers::KerasModel::new(spec, params)?;
    match format {
        Format::Keras => keras::write(&model),
        Format::Onnx => onnx::write(&model),
        Format::Tfjs => tfjs::write_zip(&model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_names_its_format() {
        for (path, format) in [
            ("out/baseline.keras", Some(Format::Keras)),
            ("BASELINE.ONNX", Some(Format::Onnx)),
            ("baseline-tfjs.zip", Some(Format::Tfjs)),
            ("web/model.json", Some(Format::Tfjs)),
            ("mymodel.json", None),
            ("baseline", None),
        ] {
            assert_eq!(Format::from_path(Path::new(path)), format, "{path}");
        }
    }
}
