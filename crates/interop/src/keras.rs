//! Keras 3's `.keras` file: written from a [`KerasModel`], and read back into one.
//! (Being written: see the issue; `write` is the entry point the exporters call.)

use crate::layers::KerasModel;
use crate::ExportError;

/// The `.keras` zip of `model`.
pub fn write(_model: &KerasModel) -> Result<Vec<u8>, ExportError> {
    Err(ExportError::Write("the .keras writer is not built yet".into()))
}
