//! Small grey images as `data:` URLs (8-bit BMP), so they show in an `<img>` everywhere,
//! headless browsers included.

/// A `side × side` grey image (0 = black, 255 = white, row-major from the top) as a BMP data URL.
pub fn grey_data_url(pixels: &[u8], side: usize) -> String {
    format!("data:image/bmp;base64,{}", base64(&grey_bmp(pixels, side)))
}

/// Values in [0, 1] as bytes.
pub fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect()
}

/// The sum of a grey image's bytes: which drawing a view shows (the e2e tests compare them).
pub fn ink(pixels: &[u8]) -> u32 {
    pixels.iter().map(|&p| u32::from(p)).sum()
}

fn grey_bmp(pixels: &[u8], side: usize) -> Vec<u8> {
    let stride = (side + 3) & !3;
    let palette_bytes = 256 * 4;
    let offset = 14 + 40 + palette_bytes;
    let size = offset + stride * side;
    let mut bmp = Vec::with_capacity(size);
    bmp.extend_from_slice(b"BM");
    for value in [size as u32, 0, offset as u32, 40, side as u32, side as u32] {
        bmp.extend_from_slice(&value.to_le_bytes());
    }
    bmp.extend_from_slice(&1u16.to_le_bytes()); // planes
    bmp.extend_from_slice(&8u16.to_le_bytes()); // bits per pixel
    for value in [0u32, (stride * side) as u32, 2835, 2835, 256, 0] {
        bmp.extend_from_slice(&value.to_le_bytes());
    }
    for grey in 0..=255u8 {
        bmp.extend_from_slice(&[grey, grey, grey, 0]);
    }
    // BMP rows run bottom-up.
    for y in (0..side).rev() {
        let row = pixels.get(y * side..(y + 1) * side).unwrap_or(&[]);
        bmp.extend_from_slice(row);
        bmp.resize(bmp.len() + stride - row.len(), 0);
    }
    bmp
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn bmp_has_the_declared_size() {
        let bmp = grey_bmp(&[7; 28 * 28], 28);
        assert_eq!(bmp.len(), 14 + 40 + 1024 + 28 * 28);
        assert_eq!(u32::from_le_bytes([bmp[2], bmp[3], bmp[4], bmp[5]]) as usize, bmp.len());
    }
}
