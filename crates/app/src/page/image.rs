//! Small images as `data:` URLs (BMP: 8-bit grey or 24-bit colour), so they show in an `<img>`
//! everywhere, headless browsers included. An `<img>` is decoded and drawn off the page's main
//! thread; a canvas hands its pixels over on the main thread at every frame it changed, which
//! for the 64 weight images took 25 ms of that thread's time per epoch.

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

/// A `width × height` RGBA image (row-major from the top; alpha is dropped) as a BMP data URL.
pub fn rgba_data_url(rgba: &[u8], width: usize, height: usize) -> String {
    format!("data:image/bmp;base64,{}", base64(&colour_bmp(rgba, width, height)))
}

fn grey_bmp(pixels: &[u8], side: usize) -> Vec<u8> {
    bmp(side, side, 8, |x, y, out| out.push(pixels.get(y * side + x).copied().unwrap_or(0)))
}

fn colour_bmp(rgba: &[u8], width: usize, height: usize) -> Vec<u8> {
    bmp(width, height, 24, |x, y, out| {
        let at = (y * width + x) * 4;
        let [red, green, blue] = rgba.get(at..at + 3).map_or([0; 3], |p| [p[0], p[1], p[2]]);
        out.extend_from_slice(&[blue, green, red]);
    })
}

/// An uncompressed BMP of `bits` per pixel (8: grey through a 256-entry palette; 24: blue,
/// green, red), `pixel(x, y, out)` pushing each pixel's bytes; rows run bottom-up, each padded
/// to 4 bytes.
fn bmp(width: usize, height: usize, bits: u16, pixel: impl Fn(usize, usize, &mut Vec<u8>)) -> Vec<u8> {
    let palette = if bits == 8 { 256 } else { 0 };
    let stride = (width * usize::from(bits) / 8 + 3) & !3;
    let offset = 14 + 40 + palette * 4;
    let size = offset + stride * height;
    let mut bmp = Vec::with_capacity(size);
    bmp.extend_from_slice(b"BM");
    for value in [size as u32, 0, offset as u32, 40, width as u32, height as u32] {
        bmp.extend_from_slice(&value.to_le_bytes());
    }
    bmp.extend_from_slice(&1u16.to_le_bytes()); // planes
    bmp.extend_from_slice(&bits.to_le_bytes());
    for value in [0u32, (stride * height) as u32, 2835, 2835, palette as u32, 0] {
        bmp.extend_from_slice(&value.to_le_bytes());
    }
    for grey in 0..palette {
        let grey = grey as u8;
        bmp.extend_from_slice(&[grey, grey, grey, 0]);
    }
    for y in (0..height).rev() {
        let row_start = bmp.len();
        for x in 0..width {
            pixel(x, y, &mut bmp);
        }
        bmp.resize(row_start + stride, 0);
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

    #[test]
    fn colour_bmp_rows_run_bottom_up_in_blue_green_red_padded_to_four_bytes() {
        // 3 × 2: the top row red, green, blue; the bottom row white, black, grey.
        let rgba = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0, 255, 9, 9, 9, 255];
        let bmp = colour_bmp(&rgba, 3, 2);
        assert_eq!(bmp.len(), 14 + 40 + 2 * 12);
        assert_eq!(u32::from_le_bytes([bmp[10], bmp[11], bmp[12], bmp[13]]), 54, "pixels right after the headers");
        assert_eq!(u16::from_le_bytes([bmp[28], bmp[29]]), 24);
        assert_eq!(&bmp[54..66], &[255, 255, 255, 0, 0, 0, 9, 9, 9, 0, 0, 0], "bottom row first");
        assert_eq!(&bmp[66..78], &[0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 0], "top row last");
    }
}
