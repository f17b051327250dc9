//! Trained weights as a `.safetensors` file, so a model trained in one place (the page, the CLI)
//! can predict in another without training again.
//!
//! The format: an 8-byte little-endian header length `n`, `n` bytes of JSON naming every tensor
//! (`{"dense_0.kernel": {"dtype": "F32", "shape": [784, 256], "data_offsets": [0, 802816]}, ...}`,
//! offsets relative to the data that follows), then the raw little-endian tensor data. Tensors
//! are named `dense_{i}.kernel` (shape `[inputs, units]`, as Keras stores it) and
//! `dense_{i}.bias` (shape `[units]`), laid out in the order of [`ModelSpec::param_layout`].

use serde_json::{json, Map, Value};

use crate::model::ModelSpec;

/// A header of more than this many bytes is refused (ours are a few hundred bytes).
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Why a weights file cannot be loaded into a model; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    #[error("not a safetensors file: it is {0} bytes long, shorter than the 8-byte header length")]
    TooShort(usize),
    #[error("corrupt safetensors file: the header claims {claimed} bytes but only {available} follow")]
    HeaderTooLong { claimed: u64, available: usize },
    #[error("corrupt safetensors file: the header is not valid JSON ({0})")]
    BadHeader(String),
    #[error("the weights file lacks tensor `{name}`; it was not saved from a `{model}` model")]
    MissingTensor { name: String, model: String },
    #[error("the weights file has tensor `{name}`, which a `{model}` model does not have")]
    UnexpectedTensor { name: String, model: String },
    #[error("tensor `{name}` has dtype {found}; only F32 is supported")]
    Dtype { name: String, found: String },
    #[error("tensor `{name}` has shape {found:?}, but the `{model}` model needs {expected:?}")]
    Shape { name: String, found: Vec<u64>, expected: Vec<usize>, model: String },
    #[error("tensor `{name}`: {problem}")]
    Offsets { name: String, problem: String },
    #[error("tensor `{name}` holds a non-finite value ({value}) at index {index}")]
    NotFinite { name: String, value: f32, index: usize },
}

/// Every tensor of `spec` as (name, shape, offset into the flat parameter buffer).
fn tensors(spec: &ModelSpec) -> Vec<(String, Vec<usize>, usize)> {
    spec.param_layout()
        .dense
        .iter()
        .enumerate()
        .flat_map(|(i, slot)| {
            [
                (format!("dense_{i}.kernel"), vec![slot.inputs, slot.units], slot.kernel_offset),
                (format!("dense_{i}.bias"), vec![slot.units], slot.bias_offset),
            ]
        })
        .collect()
}

/// Serialises `params` (the flat buffer laid out by `spec`) as a safetensors file.
///
/// Panics if `params` does not have exactly `spec.param_layout().total` values: that is a bug in
/// the caller, not bad input.
pub fn to_safetensors(spec: &ModelSpec, params: &[f32]) -> Vec<u8> {
    assert_eq!(params.len(), spec.param_layout().total, "parameter count does not match the model");
    let mut header = Map::new();
    let mut data = Vec::with_capacity(params.len() * 4);
    for (name, shape, offset) in tensors(spec) {
        let len: usize = shape.iter().product();
        let begin = data.len();
        for value in &params[offset..offset + len] {
            data.extend_from_slice(&value.to_le_bytes());
        }
        header.insert(name, json!({ "dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()] }));
    }
    header.insert("__metadata__".into(), json!({ "format": "fashion-gpu", "model": spec.name }));
    let mut header = Value::Object(header).to_string().into_bytes();
    // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut file = Vec::with_capacity(8 + header.len() + data.len());
    file.extend_from_slice(&(header.len() as u64).to_le_bytes());
    file.extend_from_slice(&header);
    file.extend_from_slice(&data);
    file
}

/// Reads a safetensors file written for `spec` back into a flat parameter buffer.
pub fn from_safetensors(spec: &ModelSpec, bytes: &[u8]) -> Result<Vec<f32>, WeightsError> {
    let (header, data) = split_header(bytes)?;
    let model = || spec.name.clone();
    let expected = tensors(spec);
    for name in header.keys().filter(|name| *name != "__metadata__") {
        if !expected.iter().any(|(wanted, _, _)| wanted == name) {
            return Err(WeightsError::UnexpectedTensor { name: name.clone(), model: model() });
        }
    }
    let mut params = vec![0.0f32; spec.param_layout().total];
    for (name, shape, offset) in expected {
        let entry =
            header.get(&name).ok_or_else(|| WeightsError::MissingTensor { name: name.clone(), model: model() })?;
        let bad_header = |what: &str| WeightsError::BadHeader(format!("tensor `{name}` has no valid {what}"));
        let dtype = entry.get("dtype").and_then(Value::as_str).ok_or_else(|| bad_header("dtype"))?;
        if dtype != "F32" {
            return Err(WeightsError::Dtype { name, found: dtype.to_string() });
        }
        let found: Vec<u64> = entry
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|dims| dims.iter().map(Value::as_u64).collect())
            .ok_or_else(|| bad_header("shape"))?;
        if found.len() != shape.len() || found.iter().zip(&shape).any(|(&f, &e)| f != e as u64) {
            return Err(WeightsError::Shape { name, found, expected: shape, model: model() });
        }
        let offsets: Vec<u64> = entry
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|pair| pair.iter().map(Value::as_u64).collect())
            .filter(|pair: &Vec<u64>| pair.len() == 2)
            .ok_or_else(|| bad_header("data_offsets"))?;
        let len: usize = shape.iter().product();
        let (begin, end) = (offsets[0], offsets[1]);
        let problem = if begin > end {
            Some(format!("data offsets [{begin}, {end}] are reversed"))
        } else if end - begin != (len as u64) * 4 {
            Some(format!(
                "data offsets [{begin}, {end}] span {} bytes, but {len} f32 values need {}",
                end - begin,
                len * 4
            ))
        } else if end > data.len() as u64 {
            Some(format!("data ends at byte {end}, but the file holds only {} data bytes (truncated?)", data.len()))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(WeightsError::Offsets { name, problem });
        }
        let raw = &data[begin as usize..end as usize];
        for (index, (chunk, slot)) in raw.chunks_exact(4).zip(&mut params[offset..offset + len]).enumerate() {
            let value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            if !value.is_finite() {
                return Err(WeightsError::NotFinite { name, value, index });
            }
            *slot = value;
        }
    }
    Ok(params)
}

/// The header's tensor map and the data section after it.
fn split_header(bytes: &[u8]) -> Result<(Map<String, Value>, &[u8]), WeightsError> {
    let length_bytes: [u8; 8] =
        bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or(WeightsError::TooShort(bytes.len()))?;
    let claimed = u64::from_le_bytes(length_bytes);
    let rest = &bytes[8..];
    if claimed > rest.len() as u64 || claimed > MAX_HEADER_BYTES {
        return Err(WeightsError::HeaderTooLong { claimed, available: rest.len() });
    }
    let (header, data) = rest.split_at(claimed as usize);
    match serde_json::from_slice::<Value>(header) {
        Ok(Value::Object(map)) => Ok((map, data)),
        Ok(_) => Err(WeightsError::BadHeader("the header is not a JSON object".into())),
        Err(e) => Err(WeightsError::BadHeader(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::glorot_uniform_params;

    fn baseline() -> (ModelSpec, Vec<f32>) {
        let spec = ModelSpec::preset("baseline").unwrap();
        let params = glorot_uniform_params(&spec, 7);
        (spec, params)
    }

    /// Rewrites the header of a file made by [`to_safetensors`] and keeps its data.
    fn with_header(file: &[u8], edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
        let (mut header, data) = split_header(file).unwrap();
        edit(&mut header);
        let header = Value::Object(header).to_string().into_bytes();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn round_trip_is_bit_identical() {
        for preset in crate::model::PRESETS {
            let spec = ModelSpec::preset(preset).unwrap();
            let mut params = glorot_uniform_params(&spec, 3);
            params[0] = -0.0;
            params[1] = f32::MIN_POSITIVE / 2.0; // subnormal
            let file = to_safetensors(&spec, &params);
            assert_eq!(file.len() % 4, 0);
            let back = from_safetensors(&spec, &file).unwrap();
            assert!(params.iter().zip(&back).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn header_names_keras_shapes() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        let (header, data) = split_header(&file).unwrap();
        assert_eq!(header["dense_0.kernel"]["shape"], json!([784, 256]));
        assert_eq!(header["dense_2.bias"]["shape"], json!([10]));
        assert_eq!(header["dense_0.kernel"]["data_offsets"], json!([0, 784 * 256 * 4]));
        assert_eq!(data.len(), params.len() * 4);
    }

    #[test]
    fn truncated_files_are_refused() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        assert_eq!(from_safetensors(&spec, &file[..5]), Err(WeightsError::TooShort(5)));
        assert!(matches!(from_safetensors(&spec, &file[..40]), Err(WeightsError::HeaderTooLong { .. })));
        let cut = from_safetensors(&spec, &file[..file.len() - 1]).unwrap_err();
        assert!(matches!(cut, WeightsError::Offsets { .. }), "{cut}");
        assert!(cut.to_string().contains("truncated"));
        assert!(from_safetensors(&spec, &[]).is_err());
    }

    #[test]
    fn another_models_weights_are_refused() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        let deep = ModelSpec::preset("deep").unwrap();
        let err = from_safetensors(&deep, &file).unwrap_err();
        assert!(matches!(err, WeightsError::Shape { .. } | WeightsError::MissingTensor { .. }), "{err}");
        let deep_file = to_safetensors(&deep, &glorot_uniform_params(&deep, 1));
        assert!(matches!(from_safetensors(&spec, &deep_file), Err(WeightsError::UnexpectedTensor { .. })));
    }

    #[test]
    fn wrong_names_shapes_and_dtypes_are_named() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        let renamed = with_header(&file, |h| {
            let entry = h.remove("dense_1.bias").unwrap();
            h.insert("dense_1.b".into(), entry);
        });
        let err = from_safetensors(&spec, &renamed).unwrap_err();
        assert!(err.to_string().contains("dense_1.b"), "{err}");

        let reshaped = with_header(&file, |h| h["dense_0.kernel"]["shape"] = json!([256, 784]));
        assert!(matches!(from_safetensors(&spec, &reshaped), Err(WeightsError::Shape { .. })));

        let half = with_header(&file, |h| h["dense_0.bias"]["dtype"] = json!("F16"));
        assert!(matches!(from_safetensors(&spec, &half), Err(WeightsError::Dtype { .. })));

        let bad_offsets = with_header(&file, |h| h["dense_0.bias"]["data_offsets"] = json!([8, 4]));
        assert!(matches!(from_safetensors(&spec, &bad_offsets), Err(WeightsError::Offsets { .. })));

        let mut not_json = file.clone();
        not_json[8] = b'[';
        assert!(matches!(from_safetensors(&spec, &not_json), Err(WeightsError::BadHeader(_))));
    }

    #[test]
    fn non_finite_values_are_refused() {
        let (spec, mut params) = baseline();
        let bias = spec.param_layout().dense[1].bias_offset;
        params[bias + 3] = f32::NAN;
        let file = to_safetensors(&spec, &params);
        match from_safetensors(&spec, &file) {
            Err(WeightsError::NotFinite { name, index, .. }) => assert_eq!((name.as_str(), index), ("dense_1.bias", 3)),
            other => panic!("expected NotFinite, got {other:?}"),
        }
    }
}
