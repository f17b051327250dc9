//! 2×2 max pooling over NHWC images, the twins' rule exactly (the window's first maximum in
//! the order (0,0), (0,1), (1,0), (1,1) wins; a trailing odd row or column is dropped), written
//! for speed: a window's four pixels are four contiguous runs of `channels` values, compared run
//! against run (a loop the compiler vectorises), instead of the twin's index arithmetic per
//! value. The backward pass finds the same winners again from the forward's input.

use crate::model::PoolLayout;

/// For one window (its four runs of `channels` values), each channel's winner: 0..4.
fn winners(runs: [&[f32]; 4], out: &mut [u8]) {
    let [a, b, c, d] = runs;
    for (ci, winner) in out.iter_mut().enumerate() {
        let mut best = a[ci];
        let mut at = 0u8;
        if b[ci] > best {
            best = b[ci];
            at = 1;
        }
        if c[ci] > best {
            best = c[ci];
            at = 2;
        }
        if d[ci] > best {
            at = 3;
        }
        *winner = at;
    }
}

/// The window (oy, ox)'s four runs, and where each starts in the image.
fn window<'a>(image: &'a [f32], layout: &PoolLayout, oy: usize, ox: usize) -> ([&'a [f32]; 4], [usize; 4]) {
    let (w, c) = (layout.width, layout.channels);
    let top = (2 * oy * w + 2 * ox) * c;
    let starts = [top, top + c, top + w * c, top + w * c + c];
    (starts.map(|s| &image[s..s + c]), starts)
}

/// [`crate::reference::max_pool_forward`], fast.
pub fn max_pool_forward(x: &[f32], rows: usize, layout: &PoolLayout) -> Vec<f32> {
    let (oh, ow, c) = (layout.out_height(), layout.out_width(), layout.channels);
    let image_len = layout.height * layout.width * c;
    let mut y = vec![0.0; rows * oh * ow * c];
    let mut won = vec![0u8; c];
    for (image, pooled) in x.chunks(image_len).take(rows).zip(y.chunks_mut(oh * ow * c)) {
        for oy in 0..oh {
            for ox in 0..ow {
                let (runs, _) = window(image, layout, oy, ox);
                winners(runs, &mut won);
                let out = &mut pooled[(oy * ow + ox) * c..(oy * ow + ox + 1) * c];
                for ((o, &k), ci) in out.iter_mut().zip(&won).zip(0..) {
                    *o = runs[usize::from(k)][ci];
                }
            }
        }
    }
    y
}

/// [`crate::reference::max_pool_backward`], fast: each window's gradient to its winner, times
/// ReLU' of the layer below (`x > 0`) when `relu_below`.
pub fn max_pool_backward(x: &[f32], dy: &[f32], rows: usize, layout: &PoolLayout, relu_below: bool) -> Vec<f32> {
    let (oh, ow, c) = (layout.out_height(), layout.out_width(), layout.channels);
    let image_len = layout.height * layout.width * c;
    let mut dx = vec![0.0; x.len()];
    let mut won = vec![0u8; c];
    for r in 0..rows {
        let image = &x[r * image_len..(r + 1) * image_len];
        let grads = &mut dx[r * image_len..(r + 1) * image_len];
        for oy in 0..oh {
            for ox in 0..ow {
                let (runs, starts) = window(image, layout, oy, ox);
                winners(runs, &mut won);
                let dy_window = &dy[((r * oh + oy) * ow + ox) * c..((r * oh + oy) * ow + ox + 1) * c];
                for (ci, (&k, &g)) in won.iter().zip(dy_window).enumerate() {
                    let k = usize::from(k);
                    if !relu_below || runs[k][ci] > 0.0 {
                        grads[starts[k] + ci] = g;
                    }
                }
            }
        }
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::tests::pseudo;
    use crate::reference;

    /// Odd heights and widths (a trailing row and column dropped), one channel, the CNN's own
    /// 28×28×32, and windows of equal values (the first one wins, as in the twin).
    #[test]
    fn max_pool_matches_the_reference_twins_on_odd_shapes_and_ties() {
        for (rows, height, width, channels) in [(1, 2, 2, 1), (3, 5, 7, 3), (2, 9, 4, 13), (4, 28, 28, 32)] {
            let layout = PoolLayout { height, width, channels };
            let n = rows * height * width * channels;
            let random = pseudo(n, 7);
            // Values from a few levels only: most windows hold ties, zeros and negatives.
            let tied: Vec<f32> = random.iter().map(|v| (v * 2.0).round() / 2.0).collect();
            for (x, what) in [(random, "random"), (tied, "ties")] {
                let name = format!("{rows} × {layout:?} {what}");
                let dy = pseudo(rows * layout.out_height() * layout.out_width() * channels, 8);
                assert_eq!(
                    max_pool_forward(&x, rows, &layout),
                    reference::max_pool_forward(&x, rows, &layout),
                    "{name}"
                );
                for relu_below in [false, true] {
                    assert_eq!(
                        max_pool_backward(&x, &dy, rows, &layout, relu_below),
                        reference::max_pool_backward(&x, &dy, rows, &layout, relu_below),
                        "{name} backward, relu below {relu_below}"
                    );
                }
            }
        }
    }
}
