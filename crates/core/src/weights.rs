//! Trained weights as a `.safetensors` file, so a model trained in one place (the page, the CLI)
//! can predict in another without training again.
//!
//! The format: an 8-byte little-endian header length `n`, `n` bytes of JSON naming every tensor
//! (`{"dense_0.kernel": {"dtype": "F32", "shape": [784, 256], "data_offsets": [0, 802816]}, ...}`,
//! offsets relative to the data that follows), then the raw little-endian tensor data. Tensors
//! are named `dense_{i}.kernel` (shape `[inputs, units]`, as Keras stores it) and
//! `dense_{i}.bias` (shape `[units]`), laid out in the order of [`ModelSpec::param_layout`].
//! A file meant for one model loads into whichever preset it fits ([`weights_for_any_preset`]).

use serde_json::{json, Map, Value};

use crate::model::{ModelSpec, PRESETS};

/// A header of more than this many bytes is refused (ours are a few hundred bytes).
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Why a weights file cannot be loaded into a model; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    #[error("not a safetensors file: it is {0} bytes long, shorter than the 8-byte header length")]
    TooShort(usize),
    #[error("truncated safetensors file: the header claims {claimed} bytes but only {available} follow")]
    HeaderTooLong { claimed: u64, available: usize },
    #[error("not a fashion-gpu safetensors file: its header would be {claimed} bytes, over the {limit}-byte limit")]
    HeaderTooLarge { claimed: u64, limit: u64 },
    #[error("corrupt safetensors file: the header is not valid JSON ({0})")]
    BadHeader(String),
    #[error("the weights file lacks tensor `{name}`; it was not saved from a `{model}` model")]
    MissingTensor { name: String, model: String },
    #[error("the weights file has tensor `{name}`, which a `{model}` model does not have")]
    UnexpectedTensor { name: String, model: String },
    #[error(
        "these weights were saved from a `{saved}` model, not `{model}`: choose `{saved}` to load them ({problem})"
    )]
    OtherModel { saved: String, model: String, problem: String },
    #[error("tensor `{name}` has dtype {found}; only F32 (float32) is supported, re-save the weights as float32")]
    Dtype { name: String, found: String },
    #[error("tensor `{name}` has shape {found:?}, but the `{model}` model needs {expected:?}")]
    Shape { name: String, found: Vec<u64>, expected: Vec<usize>, model: String },
    #[error("tensor `{name}`: {problem}")]
    Offsets { name: String, problem: String },
    #[error(
        "truncated safetensors file: tensor `{name}` ends at data byte {end}, but only {available} data bytes \
         follow the header"
    )]
    Truncated { name: String, end: u64, available: usize },
    #[error("corrupt safetensors file: tensors `{first}` and `{second}` share data bytes")]
    Overlap { first: String, second: String },
    #[error("corrupt safetensors file: {extra} data bytes after the last tensor belong to no tensor")]
    TrailingBytes { extra: usize },
    #[error(
        "tensor `{name}` holds a non-finite value ({value}) at index {index}; the run that saved it had \
         diverged, train again with a lower learning rate"
    )]
    NotFinite { name: String, value: f32, index: usize },
}

impl WeightsError {
    /// Errors that mean the file describes another architecture.
    fn is_model_mismatch(&self) -> bool {
        matches!(
            self,
            WeightsError::MissingTensor { .. } | WeightsError::UnexpectedTensor { .. } | WeightsError::Shape { .. }
        )
    }
}

/// Every tensor of `spec` as (name, shape, offset into the flat parameter buffer).
fn tensors(spec: &ModelSpec) -> Vec<(String, Vec<usize>, usize)> {
    spec.param_layout().named_tensors()
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
///
/// Everything is checked before a value is used: the header, every tensor's name, dtype, shape
/// and byte range (in bounds, no overlap, nothing left over), and that every value is finite.
pub fn from_safetensors(spec: &ModelSpec, bytes: &[u8]) -> Result<Vec<f32>, WeightsError> {
    let (header, data) = split_header(bytes)?;
    read_tensors(spec, &header, data).map_err(|error| {
        let saved = header.get("__metadata__").and_then(|m| m.get("model")).and_then(Value::as_str);
        match saved {
            Some(saved) if error.is_model_mismatch() && saved != spec.name => WeightsError::OtherModel {
                saved: saved.to_string(),
                model: spec.name.clone(),
                problem: error.to_string(),
            },
            _ => error,
        }
    })
}

fn read_tensors(spec: &ModelSpec, header: &Map<String, Value>, data: &[u8]) -> Result<Vec<f32>, WeightsError> {
    let model = || spec.name.clone();
    let expected = tensors(spec);
    for name in header.keys().filter(|name| *name != "__metadata__") {
        if !expected.iter().any(|(wanted, _, _)| wanted == name) {
            return Err(WeightsError::UnexpectedTensor { name: name.clone(), model: model() });
        }
    }
    let mut params = vec![0.0f32; spec.param_layout().total];
    let mut ranges = Vec::with_capacity(expected.len());
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
        if begin > end {
            let problem = format!("data offsets [{begin}, {end}] are reversed");
            return Err(WeightsError::Offsets { name, problem });
        }
        if end - begin != (len as u64) * 4 {
            let problem = format!(
                "data offsets [{begin}, {end}] span {} bytes, but {len} f32 values need {}",
                end - begin,
                len * 4
            );
            return Err(WeightsError::Offsets { name, problem });
        }
        if end > data.len() as u64 {
            return Err(WeightsError::Truncated { name, end, available: data.len() });
        }
        let raw = &data[begin as usize..end as usize];
        for (index, (chunk, param)) in raw.chunks_exact(4).zip(&mut params[offset..offset + len]).enumerate() {
            let value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            if !value.is_finite() {
                return Err(WeightsError::NotFinite { name, value, index });
            }
            *param = value;
        }
        ranges.push((begin, end, name));
    }
    check_ranges(ranges, data.len())?;
    Ok(params)
}

/// The tensors' byte ranges must not overlap and must use the whole data section, as the
/// reference implementation requires: anything else is a corrupt or hand-edited file.
fn check_ranges(mut ranges: Vec<(u64, u64, String)>, data_len: usize) -> Result<(), WeightsError> {
    ranges.sort();
    for pair in ranges.windows(2) {
        let ((_, first_end, first), (second_begin, _, second)) = (&pair[0], &pair[1]);
        if second_begin < first_end {
            return Err(WeightsError::Overlap { first: first.clone(), second: second.clone() });
        }
    }
    let used: u64 = ranges.iter().map(|(begin, end, _)| end - begin).sum();
    match usize::try_from(used) {
        Ok(used) if used < data_len => Err(WeightsError::TrailingBytes { extra: data_len - used }),
        _ => Ok(()),
    }
}

/// The header's tensor map and the data section after it.
fn split_header(bytes: &[u8]) -> Result<(Map<String, Value>, &[u8]), WeightsError> {
    let length_bytes: [u8; 8] =
        bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or(WeightsError::TooShort(bytes.len()))?;
    let claimed = u64::from_le_bytes(length_bytes);
    let rest = &bytes[8..];
    if claimed > MAX_HEADER_BYTES {
        return Err(WeightsError::HeaderTooLarge { claimed, limit: MAX_HEADER_BYTES });
    }
    if claimed > rest.len() as u64 {
        return Err(WeightsError::HeaderTooLong { claimed, available: rest.len() });
    }
    let (header, data) = rest.split_at(claimed as usize);
    match serde_json::from_slice::<Value>(header) {
        Ok(Value::Object(map)) => Ok((map, data)),
        Ok(_) => Err(WeightsError::BadHeader("the header is not a JSON object".into())),
        Err(e) => Err(WeightsError::BadHeader(e.to_string())),
    }
}

/// Loads a `.safetensors` file for the `chosen` model, or, when it does not fit, for whichever
/// preset it fits; the error is the chosen model's.
pub fn weights_for_any_preset(chosen: &ModelSpec, bytes: &[u8]) -> Result<(ModelSpec, Vec<f32>), WeightsError> {
    match from_safetensors(chosen, bytes) {
        Ok(params) => Ok((chosen.clone(), params)),
        Err(error) => PRESETS
            .iter()
            .filter_map(|name| ModelSpec::preset(name).ok())
            .find_map(|spec| from_safetensors(&spec, bytes).ok().map(|params| (spec, params)))
            .ok_or(error),
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

    fn load_err(spec: &ModelSpec, file: &[u8]) -> WeightsError {
        match from_safetensors(spec, file) {
            Ok(_) => panic!("a broken file was accepted"),
            Err(error) => error,
        }
    }

    #[test]
    fn truncated_files_are_refused() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        assert_eq!(from_safetensors(&spec, &[]), Err(WeightsError::TooShort(0)));
        assert_eq!(from_safetensors(&spec, &file[..5]), Err(WeightsError::TooShort(5)));
        let header_cut = load_err(&spec, &file[..40]);
        assert!(matches!(header_cut, WeightsError::HeaderTooLong { available: 32, .. }), "{header_cut}");
        assert!(header_cut.to_string().starts_with("truncated"), "{header_cut}");

        // Cut inside the last tensor, and right after the header: the first tensor out of
        // bounds is named.
        let cut = load_err(&spec, &file[..file.len() - 1]);
        assert!(matches!(&cut, WeightsError::Truncated { name, .. } if name == "dense_2.bias"), "{cut}");
        assert!(cut.to_string().contains("truncated") && cut.to_string().contains("dense_2.bias"), "{cut}");
        let data_start = file.len() - params.len() * 4;
        let no_data = load_err(&spec, &file[..data_start]);
        assert!(
            matches!(&no_data, WeightsError::Truncated { name, available: 0, .. } if name == "dense_0.kernel"),
            "{no_data}"
        );
    }

    #[test]
    fn absurd_header_lengths_are_refused() {
        let (spec, params) = baseline();
        let mut file = to_safetensors(&spec, &params);
        file[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(load_err(&spec, &file), WeightsError::HeaderTooLarge { claimed, .. } if claimed == 1 << 40));
        file[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(load_err(&spec, &file), WeightsError::HeaderTooLarge { .. }));
    }

    #[test]
    fn another_models_weights_are_refused_naming_both_models() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        let deep = ModelSpec::preset("deep").unwrap();
        let err = load_err(&deep, &file);
        assert!(
            matches!(&err, WeightsError::OtherModel { saved, model, .. } if saved == "baseline" && model == "deep")
        );
        assert!(err.to_string().contains("choose `baseline`"), "{err}");

        let deep_file = to_safetensors(&deep, &glorot_uniform_params(&deep, 1));
        let err = load_err(&spec, &deep_file);
        assert!(matches!(&err, WeightsError::OtherModel { saved, .. } if saved == "deep"), "{err}");
        assert!(err.to_string().contains("dense_3"), "the underlying problem is kept: {err}");

        // Without metadata (another writer) the structural error itself is reported.
        let anonymous = with_header(&deep_file, |h| {
            h.remove("__metadata__");
        });
        assert!(matches!(load_err(&spec, &anonymous), WeightsError::UnexpectedTensor { .. }));
    }

    #[test]
    fn wrong_or_missing_tensor_names_are_named() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        let renamed = with_header(&file, |h| {
            let entry = h.remove("dense_1.bias").unwrap();
            h.insert("dense_1.b".into(), entry);
        });
        let err = load_err(&spec, &renamed);
        assert!(matches!(&err, WeightsError::UnexpectedTensor { name, .. } if name == "dense_1.b"), "{err}");
        assert!(err.to_string().contains("`dense_1.b`") && err.to_string().contains("`baseline`"), "{err}");

        let missing = with_header(&file, |h| {
            h.remove("dense_2.bias");
        });
        let err = load_err(&spec, &missing);
        assert!(matches!(&err, WeightsError::MissingTensor { name, .. } if name == "dense_2.bias"), "{err}");
    }

    #[test]
    fn wrong_shapes_are_named_with_the_expected_shape() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        let transposed = with_header(&file, |h| h["dense_0.kernel"]["shape"] = json!([256, 784]));
        let err = load_err(&spec, &transposed);
        assert!(
            matches!(&err, WeightsError::Shape { name, found, .. } if name == "dense_0.kernel" && found == &[256, 784])
        );
        assert!(err.to_string().contains("[784, 256]"), "{err}");
        let flat = with_header(&file, |h| h["dense_2.bias"]["shape"] = json!([1, 10]));
        assert!(matches!(load_err(&spec, &flat), WeightsError::Shape { .. }));
        let not_numbers = with_header(&file, |h| h["dense_2.bias"]["shape"] = json!(["ten"]));
        assert!(matches!(load_err(&spec, &not_numbers), WeightsError::BadHeader(m) if m.contains("dense_2.bias")));
    }

    #[test]
    fn other_dtypes_are_refused() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        for dtype in ["F16", "BF16", "F64", "I32", "f32"] {
            let other = with_header(&file, |h| h["dense_0.bias"]["dtype"] = json!(dtype));
            let err = load_err(&spec, &other);
            assert!(matches!(&err, WeightsError::Dtype { name, found } if name == "dense_0.bias" && found == dtype));
            assert!(err.to_string().contains("only F32"), "{err}");
        }
        let no_dtype = with_header(&file, |h| {
            h["dense_0.bias"].as_object_mut().unwrap().remove("dtype");
        });
        assert!(matches!(load_err(&spec, &no_dtype), WeightsError::BadHeader(m) if m.contains("dtype")));
    }

    #[test]
    fn bad_offsets_overlaps_and_leftover_bytes_are_refused() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        let reversed = with_header(&file, |h| h["dense_0.bias"]["data_offsets"] = json!([8, 4]));
        assert!(
            matches!(load_err(&spec, &reversed), WeightsError::Offsets { problem, .. } if problem.contains("reversed"))
        );
        let short = with_header(&file, |h| h["dense_2.bias"]["data_offsets"] = json!([0, 36]));
        assert!(matches!(load_err(&spec, &short), WeightsError::Offsets { problem, .. } if problem.contains("40")));
        let pair = with_header(&file, |h| h["dense_2.bias"]["data_offsets"] = json!([0]));
        assert!(matches!(load_err(&spec, &pair), WeightsError::BadHeader(m) if m.contains("data_offsets")));

        // dense_2.bias pointed at the first 40 bytes of dense_0.kernel: in bounds, right size.
        let overlapping = with_header(&file, |h| h["dense_2.bias"]["data_offsets"] = json!([0, 40]));
        let err = load_err(&spec, &overlapping);
        let WeightsError::Overlap { first, second } = &err else { panic!("expected Overlap, got {err:?}") };
        let mut names = [first.as_str(), second.as_str()];
        names.sort();
        assert_eq!(names, ["dense_0.kernel", "dense_2.bias"]);

        let mut longer = file.clone();
        longer.extend_from_slice(&[0; 12]);
        assert_eq!(from_safetensors(&spec, &longer), Err(WeightsError::TrailingBytes { extra: 12 }));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let (spec, params) = baseline();
        let file = to_safetensors(&spec, &params);
        let mut not_json = file.clone();
        not_json[8] = b'[';
        assert!(matches!(load_err(&spec, &not_json), WeightsError::BadHeader(_)));
        let mut array = 2u64.to_le_bytes().to_vec();
        array.extend_from_slice(b"[]");
        assert!(matches!(load_err(&spec, &array), WeightsError::BadHeader(m) if m.contains("not a JSON object")));
        let mut not_utf8 = 2u64.to_le_bytes().to_vec();
        not_utf8.extend_from_slice(&[0xff, 0xfe]);
        assert!(matches!(load_err(&spec, &not_utf8), WeightsError::BadHeader(_)));
    }

    #[test]
    fn non_finite_values_are_refused() {
        let (spec, params) = baseline();
        let bias = spec.param_layout().dense[1].bias_offset;
        let kernel = spec.param_layout().dense[0].kernel_offset;
        for (at, value, name, index) in [
            (bias + 3, f32::NAN, "dense_1.bias", 3),
            (kernel + 100, f32::INFINITY, "dense_0.kernel", 100),
            (bias, f32::NEG_INFINITY, "dense_1.bias", 0),
        ] {
            let mut bad = params.clone();
            bad[at] = value;
            let err = load_err(&spec, &to_safetensors(&spec, &bad));
            match &err {
                WeightsError::NotFinite { name: n, index: i, .. } => assert_eq!((n.as_str(), *i), (name, index)),
                other => panic!("expected NotFinite, got {other:?}"),
            }
            assert!(err.to_string().contains("lower learning rate"), "{err}");
        }
    }

    #[test]
    fn weights_load_into_the_preset_they_fit() {
        let baseline = ModelSpec::preset("baseline").unwrap();
        let params = crate::init::glorot_uniform_params(&baseline, 1);
        let bytes = crate::weights::to_safetensors(&baseline, &params);
        let deep = ModelSpec::preset("deep").unwrap();
        let (spec, loaded) = weights_for_any_preset(&deep, &bytes).unwrap();
        assert_eq!((spec.name.as_str(), loaded), ("baseline", params));
        assert!(weights_for_any_preset(&deep, b"not a weights file").is_err());
    }
}
