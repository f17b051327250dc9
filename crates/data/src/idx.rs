//! The IDX format: a 4-byte magic `00 00 <type> <ndim>`, `ndim` big-endian `u32` sizes,
//! then the elements. Only unsigned bytes (`type` 0x08) are accepted: 3 dims (count, 28,
//! 28) for images, 1 dim (count) for labels. Files may be gzipped.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::GzDecoder;

use crate::{DataError, Dataset, IMAGE_SIDE};

/// Largest decompressed file accepted (the real training images are ~45 MiB), so a
/// gzip bomb fails with an error instead of exhausting memory.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UNSIGNED_BYTE: u8 = 0x08;
const IMAGES_NDIM: u8 = 3;
const LABELS_NDIM: u8 = 1;

/// Parses an IDX images file (gzip or raw) and returns its pixels, `count * 784` bytes,
/// row-major. `name` is used in error messages (usually the file path).
pub fn parse_idx_images(bytes: &[u8], name: &str) -> Result<Vec<u8>, DataError> {
    let side = IMAGE_SIDE as u32;
    let (dims, body) = parse_idx(bytes, name, IMAGES_NDIM, MAX_DECOMPRESSED_BYTES)?;
    if let [_, rows, cols] = dims[..] {
        if rows != side || cols != side {
            return Err(DataError::WrongImageSize { name: name.to_owned(), rows, cols });
        }
    }
    Ok(body)
}

/// Parses an IDX labels file (gzip or raw) and returns one byte per label. Label values
/// are not range-checked here; [`dataset_from_idx_bytes`] does that.
pub fn parse_idx_labels(bytes: &[u8], name: &str) -> Result<Vec<u8>, DataError> {
    let (_, body) = parse_idx(bytes, name, LABELS_NDIM, MAX_DECOMPRESSED_BYTES)?;
    Ok(body)
}

/// Parses a matching pair of images and labels files into a validated [`Dataset`].
pub fn dataset_from_idx_bytes(
    images: &[u8],
    images_name: &str,
    labels: &[u8],
    labels_name: &str,
) -> Result<Dataset, DataError> {
    let pixels = parse_idx_images(images, images_name)?;
    let labels = parse_idx_labels(labels, labels_name)?;
    Dataset::from_named_parts(pixels, images_name, labels, labels_name)
}

/// Returns the dimensions and the body (exactly their product in bytes).
pub(crate) fn parse_idx(
    bytes: &[u8],
    name: &str,
    ndim: u8,
    max_bytes: usize,
) -> Result<(Vec<u32>, Vec<u8>), DataError> {
    if bytes.is_empty() {
        return Err(DataError::EmptyFile { name: name.to_owned() });
    }
    let data = decompress_if_gzip(bytes, name, max_bytes)?;
    let dims = parse_header(&data, name, ndim)?;
    let header_len = 4 + 4 * usize::from(ndim);

    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
        .ok_or_else(|| DataError::DimensionOverflow { name: name.to_owned(), dims: dims.clone() })?;
    let found = data.len() - header_len;
    if found < expected {
        return Err(DataError::TruncatedBody { name: name.to_owned(), expected, found });
    }
    if found > expected {
        return Err(DataError::TrailingBytes { name: name.to_owned(), expected, extra: found - expected });
    }
    let body = match data {
        Cow::Borrowed(b) => b[header_len..].to_vec(),
        Cow::Owned(mut v) => {
            v.drain(..header_len);
            v
        }
    };
    Ok((dims, body))
}

/// Checks the magic and returns the dimensions; on success `data` holds at least the
/// whole header.
fn parse_header(data: &[u8], name: &str, ndim: u8) -> Result<Vec<u32>, DataError> {
    let header_len = 4 + 4 * usize::from(ndim);
    let expected_magic = u32::from_be_bytes([0, 0, UNSIGNED_BYTE, ndim]);
    let Some(magic) = data.get(..4) else {
        return Err(DataError::TruncatedHeader { name: name.to_owned(), needed: header_len, found: data.len() });
    };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::BadMagic {
            name: name.to_owned(),
            found: u32::from_be_bytes([magic[0], magic[1], magic[2], magic[3]]),
            expected: expected_magic,
        });
    }
    if magic[2] != UNSIGNED_BYTE {
        return Err(DataError::WrongElementType { name: name.to_owned(), found: magic[2] });
    }
    if magic[3] != ndim {
        return Err(DataError::WrongDimensionCount { name: name.to_owned(), found: magic[3], expected: ndim });
    }
    let Some(dim_bytes) = data.get(4..header_len) else {
        return Err(DataError::TruncatedHeader { name: name.to_owned(), needed: header_len, found: data.len() });
    };
    Ok(dim_bytes.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn decompress_if_gzip<'a>(bytes: &'a [u8], name: &str, max_bytes: usize) -> Result<Cow<'a, [u8]>, DataError> {
    let is_gzip = bytes.starts_with(&GZIP_MAGIC);
    if !is_gzip {
        if name.ends_with(".gz") {
            return Err(DataError::NotGzip { name: name.to_owned() });
        }
        if bytes.len() > max_bytes {
            return Err(too_large(name, max_bytes));
        }
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    // One byte past the cap tells "exactly at the cap" apart from "over it".
    let cap = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    GzDecoder::new(bytes)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| DataError::CorruptGzip { name: name.to_owned(), reason: e.to_string() })?;
    if out.len() > max_bytes {
        return Err(too_large(name, max_bytes));
    }
    Ok(Cow::Owned(out))
}

fn too_large(name: &str, max_bytes: usize) -> DataError {
    DataError::TooLarge { name: name.to_owned(), limit_mib: max_bytes / (1024 * 1024) }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{write::GzEncoder, Compression};

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn labels_file(count: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 8, 1];
        v.extend_from_slice(&(count as u32).to_be_bytes());
        v.extend(std::iter::repeat_n(3u8, count));
        v
    }

    #[test]
    fn gzip_bomb_is_capped() {
        let limit = 4096;
        let bomb = gzip(&labels_file(limit * 10));
        let err = parse_idx(&bomb, "bomb.gz", LABELS_NDIM, limit).unwrap_err();
        assert!(matches!(err, DataError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("bomb.gz"));
    }

    #[test]
    fn raw_file_over_cap_is_rejected() {
        let data = labels_file(100);
        let err = parse_idx(&data, "big", LABELS_NDIM, 50).unwrap_err();
        assert!(matches!(err, DataError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn gzip_exactly_at_cap_is_accepted() {
        let data = labels_file(100);
        let (dims, body) = parse_idx(&gzip(&data), "ok.gz", LABELS_NDIM, data.len()).unwrap();
        assert_eq!(dims, vec![100]);
        assert_eq!(body.len(), 100);
    }
}
