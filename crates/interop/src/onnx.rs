//! An ONNX inference graph of a [`KerasModel`].
//! (Being written: `write` is the entry point the exporters call.)

use crate::layers::KerasModel;
use crate::ExportError;

/// The `.onnx` file of `model`.
pub fn write(_model: &KerasModel) -> Result<Vec<u8>, ExportError> {
    Err(ExportError::Write("the ONNX writer is not built yet".into()))
}
