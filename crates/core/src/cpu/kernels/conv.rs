//! Valid k×k convolutions over NHWC images as explicit im2col products: each output pixel's
//! receptive field is copied into a row of `patches [pixels, k·k·c]` (in the kernel's own
//! `(ky, kx, c)` order), so the layer is `patches · kernel[k·k·c, f]`, and its gradients are
//! `patchesᵀ · dz` and `dz · kernelᵀ` scattered back (col2im). Images go through in groups
//! whose patches stay within [`PATCH_VALUES`], so batch 1,000 does not need gigabytes.
//! The same maths as [`crate::reference`]'s `conv2d_*` twins (tested against them).

use std::cell::RefCell;

use super::dense::{bias_rows, column_sums, relu_gate, relu_in_place};
use super::matmul::{matmul, MatRef, Output};
use crate::model::ConvLayout;

/// At most this many values of patches at once (16 MiB).
const PATCH_VALUES: usize = 1 << 22;

thread_local! {
    /// The patch buffer of [`Groups::with_patch_buffer`] (at most [`PATCH_VALUES`] values).
    static PATCHES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One image's sizes, and how many images go through at once.
struct Groups {
    /// Values of one input image.
    image_len: usize,
    /// Output pixels of one image (= patch rows).
    pixels: usize,
    /// Values of one patch row: k·k·c.
    patch_len: usize,
    /// Images per group.
    group: usize,
}

impl Groups {
    fn new(layout: &ConvLayout) -> Self {
        let pixels = layout.out_height() * layout.out_width();
        let patch_len = layout.kernel_size * layout.kernel_size * layout.channels;
        let group = (PATCH_VALUES / (pixels * patch_len).max(1)).max(1);
        Groups { image_len: layout.height * layout.width * layout.channels, pixels, patch_len, group }
    }

    /// Each group of a batch of `rows` images: its first image and how many it holds.
    fn of(&self, rows: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..rows).step_by(self.group).map(move |first| (first, self.group.min(rows - first)))
    }

    /// Runs `f` on a patch buffer for the largest group of `rows` images: this thread's, kept
    /// from call to call (a fresh 16 MiB buffer per call, three calls a layer a step, cost the
    /// CNN page faults and zeroing every step). Every value `f` reads it has written first.
    fn with_patch_buffer<R>(&self, rows: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let len = self.group.min(rows) * self.pixels * self.patch_len;
        PATCHES.with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut buffer) => {
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
                f(&mut buffer[..len])
            }
            // This thread is already in a call: while it waited on rayon's threads it took up
            // another shard's pass (see `CpuModel::shards`), which gets a buffer of its own.
            Err(_) => f(&mut vec![0.0; len]),
        })
    }

    /// The first `images` images' patches in `buffer`, as a matrix.
    fn patches<'a>(&self, buffer: &'a [f32], images: usize) -> MatRef<'a> {
        MatRef::row_major(buffer, images * self.pixels, self.patch_len)
    }
}

/// [`im2col`] image by image, over rayon's threads for a large batch.
fn im2col_images(images: &[f32], g: &Groups, layout: &ConvLayout, patches: &mut [f32]) {
    let (image_len, patches_len) = (g.image_len, g.pixels * g.patch_len);
    if image_len == 0 {
        return;
    }
    let patches = &mut patches[..images.len() / image_len * patches_len];
    super::for_each_image(patches, patches_len, |r, patches| {
        im2col(&images[r * image_len..(r + 1) * image_len], layout, patches);
    });
}

/// [`col2im`] image by image, over rayon's threads for a large batch.
fn col2im_images(patches: &[f32], g: &Groups, layout: &ConvLayout, images: &mut [f32]) {
    let patches_len = g.pixels * g.patch_len;
    if patches_len == 0 {
        return;
    }
    super::for_each_image(images, g.image_len, |r, image| {
        col2im(&patches[r * patches_len..(r + 1) * patches_len], layout, image);
    });
}

/// Copies the receptive fields of `images` (NHWC, whole images) into `patches`, a row per
/// output pixel.
fn im2col(images: &[f32], layout: &ConvLayout, patches: &mut [f32]) {
    let ConvLayout { height: h, width: w, channels: c, kernel_size: k, .. } = *layout;
    let (oh, ow) = (layout.out_height(), layout.out_width());
    let run = k * c; // one kernel row: k neighbouring pixels' channels, contiguous in NHWC
    let mut rows = patches.chunks_exact_mut(k * k * c);
    for image in images.chunks_exact(h * w * c) {
        for oy in 0..oh {
            for ox in 0..ow {
                let patch = rows.next().expect("a patch row per output pixel");
                for (ky, dst) in patch.chunks_exact_mut(run).enumerate() {
                    let start = ((oy + ky) * w + ox) * c;
                    copy_run(dst, &image[start..start + run]);
                }
            }
        }
    }
}

/// `dst = src`; a run of 3 (a 3×3 kernel over one channel: the CNN's first layer) as three
/// moves rather than a `memcpy` call for 12 bytes.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    match (<&mut [f32; 3]>::try_from(&mut *dst), <&[f32; 3]>::try_from(src)) {
        (Ok(dst), Ok(src)) => *dst = *src,
        _ => dst.copy_from_slice(src),
    }
}

/// Adds each patch row back onto the pixels it was read from (the transpose of [`im2col`]).
fn col2im(patches: &[f32], layout: &ConvLayout, images: &mut [f32]) {
    let ConvLayout { height: h, width: w, channels: c, kernel_size: k, .. } = *layout;
    let (oh, ow) = (layout.out_height(), layout.out_width());
    let run = k * c;
    let mut rows = patches.chunks_exact(k * k * c);
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
    y: &mut [f32],
) {
    let g = Groups::new(layout);
    let out_len = g.pixels * layout.filters;
    let y = &mut y[..rows * out_len];
    bias_rows(bias, y);
    let kernel = MatRef::row_major(kernel, g.patch_len, layout.filters);
    g.with_patch_buffer(rows, |patches| {
        for (first, n) in g.of(rows) {
            im2col_images(&x[first * g.image_len..(first + n) * g.image_len], &g, layout, patches);
            let out = &mut y[first * out_len..(first + n) * out_len];
            matmul(out, g.patches(patches, n), kernel, Output::Accumulate);
        }
    });
    if relu {
        relu_in_place(y);
    }
}

/// `dkernel [k, k, c, f]` and `dbias [f]` from the input `x` and `dz` at the pre-activation output.
pub fn conv2d_backward_weights(
    x: &[f32],
    dz: &[f32],
    rows: usize,
    layout: &ConvLayout,
    dkernel: &mut [f32],
    dbias: &mut [f32],
) {
    let (g, f) = (Groups::new(layout), layout.filters);
    let out_len = g.pixels * f;
    let dkernel = &mut dkernel[..layout.kernel_len()];
    if rows == 0 {
        dkernel.fill(0.0);
    }
    g.with_patch_buffer(rows, |patches| {
        for (first, n) in g.of(rows) {
            im2col_images(&x[first * g.image_len..(first + n) * g.image_len], &g, layout, patches);
            let dz = MatRef::row_major(&dz[first * out_len..(first + n) * out_len], n * g.pixels, f);
            let output = if first == 0 { Output::Overwrite } else { Output::Accumulate };
            matmul(dkernel, g.patches(patches, n).t(), dz, output);
        }
    });
    column_sums(&dz[..rows * out_len], &mut dbias[..f]);
}

/// The gradient `dx` at the input from `dz` at the pre-activation output, times ReLU' of the
/// layer below (read from its output `below`) when given.
pub fn conv2d_backward_input(
    dz: &[f32],
    rows: usize,
    layout: &ConvLayout,
    kernel: &[f32],
    below: Option<&[f32]>,
    dx: &mut [f32],
) {
    let (g, f) = (Groups::new(layout), layout.filters);
    let out_len = g.pixels * f;
    let dx = &mut dx[..rows * g.image_len];
    dx.fill(0.0);
    let kernel_t = MatRef::row_major(kernel, g.patch_len, f).t();
    g.with_patch_buffer(rows, |patches| {
        for (first, n) in g.of(rows) {
            let dz = MatRef::row_major(&dz[first * out_len..(first + n) * out_len], n * g.pixels, f);
            matmul(patches, dz, kernel_t, Output::Overwrite);
            col2im_images(patches, &g, layout, &mut dx[first * g.image_len..(first + n) * g.image_len]);
        }
    });
    relu_gate(dx, below);
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
                let mut y = vec![f32::NAN; dz.len()];
                conv2d_forward(&x, rows, &layout, &kernel, &bias, relu, &mut y);
                assert_close(
                    &y,
                    &reference::conv2d_forward(&x, rows, &layout, &kernel, &bias, relu),
                    &format!("forward {name} relu {relu}"),
                );
                let below = relu.then_some(below.as_slice());
                let mut dx = vec![f32::NAN; x.len()];
                conv2d_backward_input(&dz, rows, &layout, &kernel, below, &mut dx);
                assert_close(
                    &dx,
                    &reference::conv2d_backward_input(&dz, rows, &layout, &kernel, below),
                    &format!("dx {name} relu {relu}"),
                );
            }
            let (mut dkernel, mut dbias) = (vec![f32::NAN; kernel.len()], vec![f32::NAN; layout.filters]);
            conv2d_backward_weights(&x, &dz, rows, &layout, &mut dkernel, &mut dbias);
            let (want_dkernel, want_dbias) = reference::conv2d_backward_weights(&x, &dz, rows, &layout);
            assert_close(&dkernel, &want_dkernel, &format!("dkernel {name}"));
            assert_close(&dbias, &want_dbias, &format!("dbias {name}"));
        }
    }
}
