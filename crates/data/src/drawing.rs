//! Turns a free-hand drawing into an input the models know, the way MNIST itself was made:
//! crop to the ink's bounding box, scale it (anti-aliased) to fit a 20×20 box keeping its aspect
//! ratio, then place it in a 28×28 image so that its centre of mass sits at the centre.

use crate::{IMAGE_SIDE, PIXELS_PER_IMAGE};

/// Side of the box the ink is scaled to fit, as in MNIST.
pub const INK_BOX_SIDE: usize = 20;

/// Pixels fainter than this are treated as background when finding the bounding box.
const INK_THRESHOLD: f32 = 0.05;

/// A drawing of `width × height` intensities (row-major, 0 = background, 1 = full ink) as a
/// 28×28 image (`PIXELS_PER_IMAGE` values in [0, 1], brightest pixel 1). A blank drawing, or
/// one whose `pixels` do not hold `width * height` values, gives a blank image.
pub fn preprocess_drawing(pixels: &[f32], width: usize, height: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; PIXELS_PER_IMAGE];
    if width == 0 || height == 0 || pixels.len() != width * height {
        return out;
    }
    let Some((left, top, right, bottom)) = ink_bounds(pixels, width, height) else {
        return out;
    };
    let (box_w, box_h) = ((right - left) as f32, (bottom - top) as f32);
    // Source pixels per target pixel; the longer side becomes INK_BOX_SIDE.
    let scale = box_w.max(box_h) / INK_BOX_SIDE as f32;
    let target_w = ((box_w / scale).round() as usize).clamp(1, INK_BOX_SIDE);
    let target_h = ((box_h / scale).round() as usize).clamp(1, INK_BOX_SIDE);
    let columns = area_weights(left as f32, scale, target_w, width);
    let rows = area_weights(top as f32, scale, target_h, height);

    let mut scaled = vec![0.0f32; target_w * target_h];
    for (ty, row_weights) in rows.iter().enumerate() {
        for (tx, column_weights) in columns.iter().enumerate() {
            let mut sum = 0.0;
            for &(sy, wy) in row_weights {
                for &(sx, wx) in column_weights {
                    sum += wy * wx * pixels[sy * width + sx];
                }
            }
            scaled[ty * target_w + tx] = sum / (scale * scale);
        }
    }

    let peak = scaled.iter().copied().fold(0.0f32, f32::max);
    if peak <= 0.0 {
        return out;
    }
    let (mut mass, mut mass_x, mut mass_y) = (0.0f32, 0.0f32, 0.0f32);
    for (i, &v) in scaled.iter().enumerate() {
        mass += v;
        mass_x += v * ((i % target_w) as f32 + 0.5);
        mass_y += v * ((i / target_w) as f32 + 0.5);
    }
    let centre = IMAGE_SIDE as f32 / 2.0;
    let shift_x = (centre - mass_x / mass).round() as isize;
    let shift_y = (centre - mass_y / mass).round() as isize;
    for (i, &v) in scaled.iter().enumerate() {
        let x = (i % target_w) as isize + shift_x;
        let y = (i / target_w) as isize + shift_y;
        if (0..IMAGE_SIDE as isize).contains(&x) && (0..IMAGE_SIDE as isize).contains(&y) {
            out[y as usize * IMAGE_SIDE + x as usize] = (v / peak).clamp(0.0, 1.0);
        }
    }
    out
}

/// The half-open box `(left, top, right, bottom)` holding every inked pixel, if any.
fn ink_bounds(pixels: &[f32], width: usize, height: usize) -> Option<(usize, usize, usize, usize)> {
    let mut bounds: Option<(usize, usize, usize, usize)> = None;
    for (i, _) in pixels.iter().enumerate().filter(|(_, &v)| v > INK_THRESHOLD) {
        let (x, y) = (i % width, i / width);
        bounds = Some(match bounds {
            None => (x, y, x + 1, y + 1),
            Some((l, t, r, b)) => (l.min(x), t.min(y), r.max(x + 1), b.max(y + 1)),
        });
    }
    debug_assert!(bounds.is_none_or(|(_, _, r, b)| r <= width && b <= height));
    bounds
}

/// For each of `count` target pixels, the source pixels it covers along one axis and by how much
/// (box filter: target pixel `t` covers source `[start + t·scale, start + (t+1)·scale)`).
fn area_weights(start: f32, scale: f32, count: usize, limit: usize) -> Vec<Vec<(usize, f32)>> {
    (0..count)
        .map(|t| {
            let from = start + t as f32 * scale;
            let to = from + scale;
            let first = from.floor().max(0.0) as usize;
            let last = (to.ceil() as usize).min(limit);
            (first..last)
                .filter_map(|s| {
                    let overlap = (to.min(s as f32 + 1.0) - from.max(s as f32)).max(0.0);
                    (overlap > 0.0).then_some((s, overlap))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas(width: usize, height: usize, ink: impl Fn(usize, usize) -> bool) -> Vec<f32> {
        (0..width * height).map(|i| if ink(i % width, i / width) { 1.0 } else { 0.0 }).collect()
    }

    fn centre_of_mass(image: &[f32]) -> (f32, f32) {
        let (mut m, mut mx, mut my) = (0.0, 0.0, 0.0);
        for (i, &v) in image.iter().enumerate() {
            m += v;
            mx += v * ((i % IMAGE_SIDE) as f32 + 0.5);
            my += v * ((i / IMAGE_SIDE) as f32 + 0.5);
        }
        (mx / m, my / m)
    }

    fn ink_box(image: &[f32]) -> (usize, usize, usize, usize) {
        ink_bounds(image, IMAGE_SIDE, IMAGE_SIDE).unwrap()
    }

    #[test]
    fn blank_or_malformed_drawings_give_a_blank_image() {
        assert_eq!(preprocess_drawing(&vec![0.0; 280 * 280], 280, 280), vec![0.0; PIXELS_PER_IMAGE]);
        assert_eq!(preprocess_drawing(&[1.0; 10], 4, 4), vec![0.0; PIXELS_PER_IMAGE]);
        assert_eq!(preprocess_drawing(&[], 0, 0), vec![0.0; PIXELS_PER_IMAGE]);
    }

    #[test]
    fn a_square_in_a_corner_is_scaled_to_20_and_centred() {
        let drawing = canvas(280, 280, |x, y| x < 50 && y < 50);
        let image = preprocess_drawing(&drawing, 280, 280);
        let (l, t, r, b) = ink_box(&image);
        assert_eq!((r - l, b - t), (20, 20));
        let (cx, cy) = centre_of_mass(&image);
        assert!((cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5, "centre of mass ({cx}, {cy})");
        assert!(image.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert_eq!(image.iter().copied().fold(0.0, f32::max), 1.0);
    }

    #[test]
    fn a_tall_stroke_keeps_its_aspect_ratio() {
        // A vertical bar 200 high and 20 wide: 20 px tall, 2 px wide after scaling.
        let drawing = canvas(280, 280, |x, y| (100..120).contains(&x) && (40..240).contains(&y));
        let image = preprocess_drawing(&drawing, 280, 280);
        let (l, t, r, b) = ink_box(&image);
        assert_eq!((r - l, b - t), (2, 20));
    }

    #[test]
    fn downscaling_is_anti_aliased() {
        // A bar 1.5 target pixels wide: its second column is half covered, so half grey.
        let drawing = canvas(280, 280, |x, y| (100..115).contains(&x) && (40..240).contains(&y));
        let image = preprocess_drawing(&drawing, 280, 280);
        let greys: Vec<f32> = image.iter().copied().filter(|&v| v > 0.0 && v < 1.0).collect();
        assert_eq!(greys.len(), 20);
        assert!(greys.iter().all(|&v| (v - 0.5).abs() < 1e-5), "{greys:?}");
    }

    #[test]
    fn the_centre_of_mass_not_the_box_is_centred() {
        // An L shape: heavy at the bottom, so the box is pushed up relative to the image centre.
        let drawing = canvas(100, 100, |x, y| (x < 10 && y < 100) || (y >= 90 && x < 100));
        let image = preprocess_drawing(&drawing, 100, 100);
        let (cx, cy) = centre_of_mass(&image);
        assert!((cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5, "centre of mass ({cx}, {cy})");
        let (l, t, _, _) = ink_box(&image);
        assert!(l > 4, "box starts at ({l}, {t}): centred by its box, not its mass");
    }
}
