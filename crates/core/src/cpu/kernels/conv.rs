//! Valid k×k convolutions over NHWC images as explicit im2col products: each output pixel's
//! receptive field is copied into a row of `patches [pixels, k·k·c]` (in the kernel's own
//! `(ky, kx, c)` order), so the layer is `patches · kernel[k·k·c, f]`, and its gradients are
//! `patchesᵀ · dz` and `dz · kernelᵀ` scattered back (col2im). Images go through in groups
//! whose patches stay within [`PATCH_VALUES`], so batch 1,000 does not need gigabytes.
//! The same maths as [`crate::reference`]'s `conv2d_*` twins (tested against them).

use super::dense::{column_sums, relu_gate, relu_in_place};
use super::matmul::{matmul, MatRef, Output};
use crate::model::ConvLayout;

/// At most this many values of patches at once (16 MiB).
const PATCH_VALUES: usize = 1 << 22;

/// Images per group, and the values of one image's patches.
fn groups(layout: &ConvLayout) -> (usize, usize) {
    let per_image = layout.out_height() * layout.out_width() * patch_len(layout);
    ((PATCH_VALUES / per_image.max(1)).max(1), per_image)
}

fn patch_len(layout: &ConvLayout) -> usize {
    layout.kernel_size * layout.kernel_size * layout.channels
}

/// Copies the receptive fields of `images` (NHWC, whole images) into `patches`, a row per
/// output pixel.
fn im2col(images: &[f32], layout: &ConvLayout, patches: &mut [f32]) {
    let ConvLayout { height: h, width: w, channels: c, kernel_size: k, .. } = *layout;
    let (oh, ow) = (layout.out_height(), layout.out_width());
    let run = k * c; // one kernel row: k neighbouring pixels' channels, contiguous in NHWC
    let mut rows = patches.chunks_exact_mut(patch_len(layout));
    for image in images.chunks_exact(h * w * c) {
        for oy in 0..oh {
            for ox in 0..ow {
                let patch = rows.next().expect("a patch row per output pixel");
                for (ky, dst) in patch.chunks_exact_mut(run).enumerate() {
                    let start = ((oy + ky) * w + ox) * c;
                    dst.copy_from_slice(&image[start..start + run]);
                }
            }
        }
    }
}

/// Adds each patch row back onto the pixels it was read from (the transpose of [`im2col`]).
fn col2im(patches: &[f32], layout: &ConvLayout, images: &mut [f32]) {
    let ConvLayout { height: h, width: w, channels: c, kernel_size: k, .. } = *layout;
    let (oh, ow) = (layout.out_height(), layout.out_width());
    let run = k * c;
    let mut rows = patches.chunks_exact(patch_len(layout));
    for image in images.chunks_exact_mut(h * w * c) {
        for oy in 0..oh {
            for ox in 0..ow {
                let patch = rows.next().expect("a patch row per output pixel");
                for (ky, src) in patch.chunks_exact(run).enumerate() {
                    let start = ((oy + ky) * w + ox) * c;
                    image[start..start + run].iter_mut().zip(src).for_each(|(d, &s)| *d += s);
                }
            }
        }
    }
}

/// `y [rows, oh, ow, f] = act(conv(x, kernel) + bias)`.
pub fn conv2d_forward(
    x: &[f32],
    rows: usize,
    layout: &ConvLayout,
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
) -> Vec<f32> {
    let f = layout.filters;
    let pixels = layout.out_height() * layout.out_width();
    let image_len = layout.height * layout.width * layout.channels;
    let (group, per_image) = groups(layout);
    let mut y: Vec<f32> = bias.iter().copied().cycle().take(rows * pixels * f).collect();
    let mut patches = vec![0.0; group.min(rows) * per_image];
    let kernel = MatRef::row_major(kernel, patch_len(layout), f);
    for first in (0..rows).step_by(group) {
        let n = group.min(rows - first);
        let patches = &mut patches[..n * per_image];
        im2col(&x[first * image_len..(first + n) * image_len], layout, patches);
        let out = &mut y[first * pixels * f..(first + n) * pixels * f];
        matmul(out, MatRef::row_major(patches, n * pixels, patch_len(layout)), kernel, Output::Accumulate);
    }
    if relu {
        relu_in_place(&mut y);
    }
    y
}

/// `(dkernel [k, k, c, f], dbias [f])` from the input `x` and `dz` at the pre-activation output.
pub fn conv2d_backward_weights(x: &[f32], dz: &[f32], rows: usize, layout: &ConvLayout) -> (Vec<f32>, Vec<f32>) {
    let f = layout.filters;
    let pixels = layout.out_height() * layout.out_width();
    let image_len = layout.height * layout.width * layout.channels;
    let (group, per_image) = groups(layout);
    let mut dkernel = vec![0.0; layout.kernel_len()];
    let mut patches = vec![0.0; group.min(rows) * per_image];
    for first in (0..rows).step_by(group) {
        let n = group.min(rows - first);
        let patches = &mut patches[..n * per_image];
        im2col(&x[first * image_len..(first + n) * image_len], layout, patches);
        let dz = &dz[first * pixels * f..(first + n) * pixels * f];
        let output = if first == 0 { Output::Overwrite } else { Output::Accumulate };
        matmul(
            &mut dkernel,
            MatRef::row_major(patches, n * pixels, patch_len(layout)).t(),
            MatRef::row_major(dz, n * pixels, f),
            output,
        );
    }
    (dkernel, column_sums(&dz[..rows * pixels * f], f))
}

/// The gradient at the input from `dz` at the pre-activation output, times ReLU' of the layer
/// below (read from its output `below`) when given.
pub fn conv2d_backward_input(
    dz: &[f32],
    rows: usize,
    layout: &ConvLayout,
    kernel: &[f32],
    below: Option<&[f32]>,
) -> Vec<f32> {
    let f = layout.filters;
    let pixels = layout.out_height() * layout.out_width();
    let image_len = layout.height * layout.width * layout.channels;
    let (group, per_image) = groups(layout);
    let mut dx = vec![0.0; rows * image_len];
    let mut patches = vec![0.0; group.min(rows) * per_image];
    let kernel_t = MatRef::row_major(kernel, patch_len(layout), f).t();
    for first in (0..rows).step_by(group) {
        let n = group.min(rows - first);
        let patches = &mut patches[..n * per_image];
        let dz = &dz[first * pixels * f..(first + n) * pixels * f];
        matmul(patches, MatRef::row_major(dz, n * pixels, f), kernel_t, Output::Overwrite);
        col2im(patches, layout, &mut dx[first * image_len..(first + n) * image_len]);
    }
    relu_gate(&mut dx, below);
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::tests::{assert_close, pseudo};
    use crate::reference;

    fn layout(height: usize, width: usize, channels: usize, filters: usize, kernel_size: usize) -> ConvLayout {
        ConvLayout { height, width, channels, filters, kernel_size, kernel_offset: 0, bias_offset: 0 }
    }

    /// Odd sizes, channel and filter counts, a 1×1 and a 5×5 kernel, and a batch that crosses
    /// image groups (13×13×32 patches: 121·288 values an image, 120 images a group).
    #[test]
    fn conv_kernels_match_the_reference_twins_on_odd_shapes() {
        for (rows, layout) in [
            (1, layout(3, 3, 1, 1, 3)),
            (3, layout(7, 5, 3, 5, 3)),
            (2, layout(6, 9, 2, 7, 1)),
            (4, layout(9, 8, 3, 3, 5)),
            (130, layout(13, 13, 32, 3, 3)),
        ] {
            let name = format!("{rows} × {layout:?}");
            let x = pseudo(rows * layout.height * layout.width * layout.channels, 1);
            let kernel = pseudo(layout.kernel_len(), 2);
            let bias = pseudo(layout.filters, 3);
            let dz = pseudo(rows * layout.out_height() * layout.out_width() * layout.filters, 4);
            let below = pseudo(x.len(), 5);
            for relu in [false, true] {
                assert_close(
                    &conv2d_forward(&x, rows, &layout, &kernel, &bias, relu),
                    &reference::conv2d_forward(&x, rows, &layout, &kernel, &bias, relu),
                    &format!("forward {name} relu {relu}"),
                );
                let below = relu.then_some(below.as_slice());
                assert_close(
                    &conv2d_backward_input(&dz, rows, &layout, &kernel, below),
                    &reference::conv2d_backward_input(&dz, rows, &layout, &kernel, below),
                    &format!("dx {name} relu {relu}"),
                );
            }
            let (dkernel, dbias) = conv2d_backward_weights(&x, &dz, rows, &layout);
            let (want_dkernel, want_dbias) = reference::conv2d_backward_weights(&x, &dz, rows, &layout);
            assert_close(&dkernel, &want_dkernel, &format!("dkernel {name}"));
            assert_close(&dbias, &want_dbias, &format!("dbias {name}"));
        }
    }
}
