//! A TF.js LayersModel of a [`KerasModel`]: `model.json` and `group1-shard1of1.bin`.
//! (Being written: `write_files` and `write_zip` are the entry points the exporters call.)

use crate::layers::KerasModel;
use crate::ExportError;

/// `model.json`'s text and the weights shard's bytes.
pub struct TfjsFiles {
    pub model_json: String,
    pub weights: Vec<u8>,
}

/// The file name `model.json` gives its weights shard.
pub const WEIGHTS_FILE: &str = "group1-shard1of1.bin";

/// `model.json` and its weights shard for `model`.
pub fn write_files(_model: &KerasModel) -> Result<TfjsFiles, ExportError> {
    Err(ExportError::Write("the TF.js writer is not built yet".into()))
}

/// One zip holding `model.json` and its weights shard (the page's download).
pub fn write_zip(_model: &KerasModel) -> Result<Vec<u8>, ExportError> {
    Err(ExportError::Write("the TF.js writer is not built yet".into()))
}
