//! 2×2 max pooling over NHWC images, the twins' rule exactly (the window's first maximum in
//! the order (0,0), (0,1), (1,0), (1,1) wins; a trailing odd row or column is dropped), written
//! for speed: a window's four pixels are four contiguous runs of `channels` values, compared run
//! against run (a loop the compiler vectorises), instead of the twin's index arithmetic per
//! value. The forward pass keeps each output's winner, so the backward pass does not search again.

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

/// Where the window (oy, ox)'s four runs start in an image.
fn window_starts(layout: &PoolLayout, oy: usize, ox: usize) -> [usize; 4] {
    let (w, c) = (layout.width, layout.channels);
    let top = (2 * oy * w + 2 * ox) * c;
    [top, top + c, top + w * c, top + w * c + c]
}

/// The window (oy, ox)'s four runs.
fn window<'a>(image: &'a [f32], layout: &PoolLayout, oy: usize, ox: usize) -> [&'a [f32]; 4] {
    window_starts(layout, oy, ox).map(|s| &image[s..s + layout.channels])
}

/// [`crate::reference::max_pool_forward`], fast, into `y`, with each output's winner (its place
/// in the window, 0..4) kept in `winners_of` (as long as `y`) for [`max_pool_backward`].
pub fn max_pool_forward(x: &[f32], rows: usize, layout: &PoolLayout, y: &mut [f32], winners_of: &mut [u8]) {
    let (oh, ow, c) = (layout.out_height(), layout.out_width(), layout.channels);
    let image_len = layout.height * layout.width * c;
    let out_len = oh * ow * c;
    let (y, winners_of) = (&mut y[..rows * out_len], &mut winners_of[..rows * out_len]);
    let x = &x[..rows * image_len];
    if out_len == 0 {
        return;
    }
    let pool_image = |((image, pooled), won): ((&[f32], &mut [f32]), &mut [u8])| {
        for oy in 0..oh {
            for ox in 0..ow {
                let runs = window(image, layout, oy, ox);
                let at = (oy * ow + ox) * c..(oy * ow + ox + 1) * c;
                let won = &mut won[at.clone()];
                winners(runs, won);
                for ((o, &k), ci) in pooled[at].iter_mut().zip(won.iter()).zip(0..) {
                    *o = runs[usize::from(k)][ci];
                }
            }
        }
    };
    if super::per_image_threaded(x.len()) {
        #[cfg(cpu_threads)]
        {
            use rayon::prelude::*;
            let images = x.par_chunks(image_len).zip(y.par_chunks_mut(out_len));
            images.zip(winners_of.par_chunks_mut(out_len)).for_each(pool_image);
        }
    } else {
        x.chunks(image_len).zip(y.chunks_mut(out_len)).zip(winners_of.chunks_mut(out_len)).for_each(pool_image);
    }
}

/// [`crate::reference::max_pool_backward`], fast: each window's gradient to the winner the
/// forward pass found (`winners`, with its output `y`), times ReLU' of the layer below when
/// `relu_below` (the winner's value is the window's output, so `y > 0`), into `dx`.
pub fn max_pool_backward(
    y: &[f32],
    winners: &[u8],
    dy: &[f32],
    rows: usize,
    layout: &PoolLayout,
    relu_below: bool,
    dx: &mut [f32],
) {
    let (oh, ow, c) = (layout.out_height(), layout.out_width(), layout.channels);
    let image_len = layout.height * layout.width * c;
    let out_len = oh * ow * c;
    super::for_each_image(&mut dx[..rows * image_len], image_len, |r, grads| {
        grads.fill(0.0);
        for oy in 0..oh {
            for ox in 0..ow {
                let at = r * out_len + (oy * ow + ox) * c;
                let starts = window_starts(layout, oy, ox);
                let window = winners[at..at + c].iter().zip(&dy[at..at + c]).zip(&y[at..at + c]);
                for (ci, ((&k, &g), &v)) in window.enumerate() {
                    if !relu_below || v > 0.0 {
                        grads[starts[usize::from(k)] + ci] = g;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::tests::pseudo;
    use crate::reference;

    /// Odd heights and widths (a trailing row and column dropped), one channel, the CNN's own
    /// 28×28×32 (11 images: a batch threaded natively), and windows of equal values (the first
    /// one wins, as in the twin).
    #[test]
    fn max_pool_matches_the_reference_twins_on_odd_shapes_and_ties() {
        for (rows, height, width, channels) in
            [(1, 2, 2, 1), (3, 5, 7, 3), (2, 9, 4, 13), (4, 28, 28, 32), (11, 28, 28, 32), (5, 29, 31, 7)]
        {
            let layout = PoolLayout { height, width, channels };
            let n = rows * height * width * channels;
            let random = pseudo(n, 7);
            // Values from a few levels only: most windows hold ties, zeros and negatives.
            let tied: Vec<f32> = random.iter().map(|v| (v * 2.0).round() / 2.0).collect();
            for (x, what) in [(random, "random"), (tied, "ties")] {
                let name = format!("{rows} × {layout:?} {what}");
                let dy = pseudo(rows * layout.out_height() * layout.out_width() * channels, 8);
                let (mut y, mut won) = (vec![f32::NAN; dy.len()], vec![9u8; dy.len()]);
                max_pool_forward(&x, rows, &layout, &mut y, &mut won);
                assert_eq!(y, reference::max_pool_forward(&x, rows, &layout), "{name}");
                for relu_below in [false, true] {
                    let mut dx = vec![f32::NAN; x.len()];
                    max_pool_backward(&y, &won, &dy, rows, &layout, relu_below, &mut dx);
                    assert_eq!(
                        dx,
                        reference::max_pool_backward(&x, &dy, rows, &layout, relu_below),
                        "{name} backward, relu below {relu_below}"
                    );
                }
            }
        }
    }
}
