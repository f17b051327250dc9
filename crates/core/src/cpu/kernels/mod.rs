//! Fast CPU kernels beside the reference twins: the layers whose cost grows with a product of
//! sizes (dense and convolution, forward and both gradients) as blocked matrix products, one
//! implementation natively (threads through rayon) and in wasm (SIMD128), Adam as one
//! vectorised pass, max pooling window by window over runs of channels (keeping each window's
//! winner for the backward pass), dropout as tight loops, zero padding line by line and the
//! batch's gathering threaded at large batches. The rest (softmax, BatchNorm, L2) keeps the
//! twins' code: a few percent of a step. Every kernel writes into buffers its caller gives (the
//! model's workspace, kept from step to step), so a step maps and unmaps no memory; with the
//! twins the values they return are copied there. Which set a CPU model trains with is a
//! [`CpuKernels`]. Threads: rayon's pool for large passes ([`threads`]), and threads kept awake
//! through a chunk of steps for the small ones of a batch trained whole ([`ThreadsAwake`]).

mod adam;
#[cfg(cpu_threads)]
pub(crate) mod awake;
mod conv;
mod dense;
mod dropout;
mod float_mode;
mod gather;
mod matmul;
mod pad;
mod pool;
mod threads;

pub use float_mode::FlushSubnormals;
#[cfg(all(target_arch = "wasm32", feature = "threads"))]
pub use threads::start_web_pool;
pub use threads::threads;

use crate::model::{ConvLayout, PadLayout, PoolLayout};
use crate::reference;

/// Values (a batch's inputs) from which the per-image passes (im2col, col2im, max pooling) go
/// over rayon's threads: the CNN's layers at batch 100 do (2.5 M values at its first pooling),
/// a batch of a few images does not.
const PER_IMAGE_THREADED_FROM: usize = 1 << 18;

/// Values from which a per-image pass goes over the threads kept awake for a step ([`awake`]):
/// the baseline's batch of 100 images (78 K values) does.
#[cfg(cpu_threads)]
const PER_IMAGE_AWAKE_FROM: usize = 1 << 16;

/// Whether a per-image pass over `values` values goes over rayon's threads ([`threads`]).
fn per_image_threaded(values: usize) -> bool {
    values >= PER_IMAGE_THREADED_FROM && threads() > 1
}

/// `write(r, image)` for every image `r` of `out` (`image_len` values each): over the threads
/// kept awake for a step, or rayon's threads when `out` is large ([`per_image_threaded`]), in
/// order on this thread otherwise. One call writes each image, so the values do not depend on
/// the threads.
fn for_each_image<T: Send>(out: &mut [T], image_len: usize, write: impl Fn(usize, &mut [T]) + Send + Sync) {
    if image_len == 0 {
        return;
    }
    #[cfg(cpu_threads)]
    if let awake @ 1.. = awake::awake() {
        let images = out.len() / image_len;
        if out.len() >= PER_IMAGE_AWAKE_FROM && images > awake {
            let per_thread = images.div_ceil(awake + 1);
            awake::for_each_chunk_mut(out, per_thread * image_len, |part, images| {
                let first = part * per_thread;
                images.chunks_mut(image_len).enumerate().for_each(|(r, image)| write(first + r, image));
            });
            return;
        }
    }
    #[cfg(cpu_threads)]
    if per_image_threaded(out.len()) {
        use rayon::prelude::*;
        out.par_chunks_mut(image_len).enumerate().for_each(|(r, image)| write(r, image));
        return;
    }
    out.chunks_mut(image_len).enumerate().for_each(|(r, image)| write(r, image));
}

/// While it lives, rayon's other threads are kept awake for this thread's training steps
/// ([`awake`]), so that work too small to wake a thread for is split too: products from 1 M
/// multiply-adds, Adam's pass, the batch's gather. Where the kernels have no threads, or another
/// session runs, it keeps nothing.
pub struct ThreadsAwake {
    #[cfg(cpu_threads)]
    _session: Option<awake::Session>,
}

impl ThreadsAwake {
    pub fn keep() -> Self {
        ThreadsAwake {
            #[cfg(cpu_threads)]
            _session: awake::Session::start(),
        }
    }
}

/// The kernels a CPU model computes its dense and convolution layers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuKernels {
    /// [`crate::reference`]'s twins, written for clarity: what every fast kernel is tested
    /// against, and what the GPU trainer is checked against step for step.
    Reference,
    /// Blocked matrix products (`gemm`), with flush-to-zero natively.
    #[default]
    Fast,
}

impl CpuKernels {
    pub fn as_str(self) -> &'static str {
        match self {
            CpuKernels::Reference => "reference",
            CpuKernels::Fast => "fast",
        }
    }

    /// What trains, as a history or a benchmark names it: "CPU, fast kernels, 2 threads".
    pub fn describe(self) -> String {
        let threads = threads();
        format!("CPU, {} kernels, {threads} thread{}", self.as_str(), if threads == 1 { "" } else { "s" })
    }

    /// Flush-to-zero while the returned guard lives, for the fast kernels (natively on x86-64).
    pub fn float_mode(self) -> Option<FlushSubnormals> {
        (self == CpuKernels::Fast).then(FlushSubnormals::on_this_thread)
    }

    // The twin's seven arguments, and the choice.
    #[allow(clippy::too_many_arguments)]
    pub fn adam_update(
        self,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        config: &crate::optimizer::AdamConfig,
        learning_rate: f32,
        step: u64,
    ) {
        match self {
            CpuKernels::Reference => reference::adam_update(params, grads, m, v, config, learning_rate, step),
            CpuKernels::Fast => adam::adam_update(params, grads, m, v, config, learning_rate, step),
        }
    }

    pub fn dense_forward(
        self,
        x: &[f32],
        rows: usize,
        (kernel, bias): (&[f32], &[f32]),
        inputs: usize,
        relu: bool,
        y: &mut [f32],
    ) {
        match self {
            CpuKernels::Reference => fill(y, &reference::dense_forward(x, rows, kernel, bias, inputs, relu)),
            CpuKernels::Fast => dense::dense_forward(x, rows, kernel, bias, inputs, relu, y),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn dense_backward_input(
        self,
        dz: &[f32],
        rows: usize,
        kernel: &[f32],
        inputs: usize,
        units: usize,
        below: Option<&[f32]>,
        dx: &mut [f32],
    ) {
        match self {
            CpuKernels::Reference => {
                fill(dx, &reference::dense_backward_input(dz, rows, kernel, inputs, units, below));
            }
            CpuKernels::Fast => dense::dense_backward_input(dz, rows, kernel, inputs, units, below, dx),
        }
    }

    /// `dkernel [inputs, units]` and `dbias [units]` (units: `dbias`'s length).
    pub fn dense_backward_weights(
        self,
        x: &[f32],
        dz: &[f32],
        rows: usize,
        inputs: usize,
        (dkernel, dbias): (&mut [f32], &mut [f32]),
    ) {
        match self {
            CpuKernels::Reference => {
                let (want_kernel, want_bias) = reference::dense_backward_weights(x, dz, rows, inputs, dbias.len());
                fill(dkernel, &want_kernel);
                fill(dbias, &want_bias);
            }
            CpuKernels::Fast => dense::dense_backward_weights(x, dz, rows, inputs, dkernel, dbias),
        }
    }

    pub fn conv2d_forward(
        self,
        x: &[f32],
        rows: usize,
        layout: &ConvLayout,
        (kernel, bias): (&[f32], &[f32]),
        relu: bool,
        y: &mut [f32],
    ) {
        match self {
            CpuKernels::Reference => fill(y, &reference::conv2d_forward(x, rows, layout, kernel, bias, relu)),
            CpuKernels::Fast => conv::conv2d_forward(x, rows, layout, kernel, bias, relu, y),
        }
    }

    pub fn conv2d_backward_input(
        self,
        dz: &[f32],
        rows: usize,
        layout: &ConvLayout,
        kernel: &[f32],
        below: Option<&[f32]>,
        dx: &mut [f32],
    ) {
        match self {
            CpuKernels::Reference => fill(dx, &reference::conv2d_backward_input(dz, rows, layout, kernel, below)),
            CpuKernels::Fast => conv::conv2d_backward_input(dz, rows, layout, kernel, below, dx),
        }
    }

    /// `dkernel [k, k, c, f]` and `dbias [f]`.
    pub fn conv2d_backward_weights(
        self,
        x: &[f32],
        dz: &[f32],
        rows: usize,
        layout: &ConvLayout,
        (dkernel, dbias): (&mut [f32], &mut [f32]),
    ) {
        match self {
            CpuKernels::Reference => {
                let (want_kernel, want_bias) = reference::conv2d_backward_weights(x, dz, rows, layout);
                fill(dkernel, &want_kernel);
                fill(dbias, &want_bias);
            }
            CpuKernels::Fast => conv::conv2d_backward_weights(x, dz, rows, layout, dkernel, dbias),
        }
    }

    /// Pixels/255 and labels of `order[start..start + rows]` ([`reference::gather_batch`]),
    /// into `x` (`rows · pixels` values) and `y` (`rows` labels).
    #[allow(clippy::too_many_arguments)]
    pub fn gather_batch(
        self,
        images: &[u8],
        labels: &[u8],
        pixels: usize,
        order: &[u32],
        (start, rows): (usize, usize),
        x: &mut [f32],
        y: &mut [u32],
    ) {
        match self {
            CpuKernels::Reference => {
                let (want_x, want_y) = reference::gather_batch(images, labels, pixels, order, start, rows);
                fill(x, &want_x);
                fill(y, &want_y);
            }
            CpuKernels::Fast => gather::gather_batch(images, labels, pixels, order, (start, rows), x, y),
        }
    }

    /// Dropout op `index`'s training-mode output in the step seeded `seed`, into `y`.
    /// Dropout in training with the mask of step `seed`, op `index`, `x` being the op's input
    /// from element `first` on (a shard of the batch; always 0 with the twins, which never
    /// train in shards).
    pub fn dropout_forward(self, x: &[f32], rate: f32, (seed, index, first): (u32, u32, u32), y: &mut [f32]) {
        match self {
            CpuKernels::Reference => {
                assert_eq!(first, 0, "the twins train whole batches");
                fill(y, &reference::dropout_forward(x, rate, seed, index, true));
            }
            CpuKernels::Fast => dropout::dropout_forward(x, rate, (seed, index, first), y),
        }
    }

    pub fn dropout_backward(
        self,
        dy: &[f32],
        below: Option<&[f32]>,
        rate: f32,
        (seed, index, first): (u32, u32, u32),
        dx: &mut [f32],
    ) {
        match self {
            CpuKernels::Reference => {
                assert_eq!(first, 0, "the twins train whole batches");
                fill(dx, &reference::dropout_backward(dy, below, rate, seed, index));
            }
            CpuKernels::Fast => dropout::dropout_backward(dy, below, rate, (seed, index, first), dx),
        }
    }

    /// The pooled images into `y`; with the fast kernels each output's winner in its window
    /// (0..4) into `winners` (then as long as the output), for [`CpuKernels::max_pool_backward`]:
    /// the twin leaves `winners` empty and searches each window again.
    pub fn max_pool_forward(self, x: &[f32], rows: usize, layout: &PoolLayout, y: &mut [f32], winners: &mut Vec<u8>) {
        match self {
            CpuKernels::Reference => {
                winners.clear();
                fill(y, &reference::max_pool_forward(x, rows, layout));
            }
            CpuKernels::Fast => {
                let len = rows * layout.out_height() * layout.out_width() * layout.channels;
                winners.resize(len, 0);
                pool::max_pool_forward(x, rows, layout, y, winners);
            }
        }
    }

    /// The gradient at the input `x` from `dy` into `dx`, given what
    /// [`CpuKernels::max_pool_forward`] wrote for `x` (`pooled`: its output and winners).
    #[allow(clippy::too_many_arguments)]
    pub fn max_pool_backward(
        self,
        x: &[f32],
        (y, winners): (&[f32], &[u8]),
        dy: &[f32],
        rows: usize,
        layout: &PoolLayout,
        relu_below: bool,
        dx: &mut [f32],
    ) {
        match self {
            CpuKernels::Fast => pool::max_pool_backward(y, winners, dy, rows, layout, relu_below, dx),
            CpuKernels::Reference => fill(dx, &reference::max_pool_backward(x, dy, rows, layout, relu_below)),
        }
    }

    /// `x`'s images with zeros around them, into `y`.
    pub fn zero_pad_forward(self, x: &[f32], rows: usize, layout: &PadLayout, y: &mut [f32]) {
        match self {
            CpuKernels::Reference => fill(y, &reference::zero_pad_forward(x, rows, layout)),
            CpuKernels::Fast => pad::zero_pad_forward(x, rows, layout, y),
        }
    }

    /// The middle of each padded image's gradient `dy` into `dx`, times ReLU' of the layer below.
    pub fn zero_pad_backward(self, dy: &[f32], rows: usize, layout: &PadLayout, below: Option<&[f32]>, dx: &mut [f32]) {
        match self {
            CpuKernels::Reference => fill(dx, &reference::zero_pad_backward(dy, rows, layout, below)),
            CpuKernels::Fast => pad::zero_pad_backward(dy, rows, layout, below, dx),
        }
    }
}

/// The start of `out` = `values` (what the twins return, written where the fast kernels write).
fn fill<T: Copy>(out: &mut [T], values: &[T]) {
    out[..values.len()].copy_from_slice(values);
}

#[cfg(test)]
pub(crate) mod tests {
    /// Values in [-1, 1).
    pub fn pseudo(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = fashion_data::SplitMix64::new(seed);
        (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    /// Equal up to the rounding of sums taken in another order.
    pub fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 2e-5 * scale, "{what} [{i}]: {g} vs {w}");
        }
    }
}
