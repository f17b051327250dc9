//! `softmax/cross_entropy.wgsl`: softmax, the cross-entropy loss and its gradient, with the loss
//! and hits added to a metrics tally; for GPUs `softmax/cross_entropy_rows.wgsl` (an invocation
//! per row, each writing its loss and hit) then `softmax/metrics_tally.wgsl` (their fixed-order
//! sum).

use bytemuck::{Pod, Zeroable};

use super::shaders::{wgsl, with_tally};
use super::Kernels;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    preferred, row_chunks, Access, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};
use crate::gpu::kernel::{Binder, BoundKernel};

/// u32 words of one metrics tally: loss sum, its Kahan compensation, hits, samples.
pub const TALLY_WORDS: usize = 4;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SoftmaxCrossEntropyShape {
    pub classes: u32,
    /// Which metrics tally the loss and hits go to.
    pub tally: u32,
    pub write_gradient: u32,
    /// The batch rows this dispatch handles (see [`SoftmaxCrossEntropyShape::chunks`]).
    pub first_row: u32,
    pub row_count: u32,
    pub _pad: [u32; 3],
}

impl SoftmaxCrossEntropyShape {
    /// The shapes of the dispatches for batches of up to `max_rows` rows, one per chunk of rows
    /// that one invocation can loop over within the loop budget (1,000 rows of 10 classes: one
    /// dispatch for any usual batch).
    pub fn chunks(classes: usize, tally: u32, write_gradient: bool, max_rows: usize) -> Vec<Self> {
        row_chunks(3 * classes, max_rows)
            .map(|(first_row, row_count)| SoftmaxCrossEntropyShape {
                classes: classes as u32,
                tally,
                write_gradient: u32::from(write_gradient),
                first_row,
                row_count,
                _pad: [0; 3],
            })
            .collect()
    }

    /// The shape of the per-row kernel's one dispatch for any batch.
    pub fn whole_batch(classes: usize, tally: u32, write_gradient: bool) -> Self {
        let mut shape = Self::chunks(classes, tally, write_gradient, 1)[0];
        shape.row_count = u32::MAX;
        shape
    }
}

impl KernelShape for SoftmaxCrossEntropyShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// One invocation, which sums its rows' losses in order (a reproducible sum); the per-row
    /// kernel: an invocation per row.
    fn grid(&self, variant: KernelVariant) -> Grid {
        match variant {
            KernelVariant::Gpu => Grid::Rows { per_workgroup: 64 },
            KernelVariant::Scalar | KernelVariant::Vec4 => Grid::Fixed([1, 1, 1]),
        }
    }
    /// Three walks over the classes (the maximum, the sum, the outputs) per row: the rows of the
    /// chunk, or one.
    fn work(&self, variant: KernelVariant, rows: u32) -> Work {
        let rows_walked = match variant {
            KernelVariant::Gpu => 1,
            KernelVariant::Scalar | KernelVariant::Vec4 => rows.saturating_sub(self.first_row).min(self.row_count),
        };
        Work { max_iterations: u64::from(rows_walked) * 3 * u64::from(self.classes), flops: 0 }
    }
}

/// `Shape` of `softmax/metrics_tally.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MetricsTallyShape {
    /// Which metrics tally the batch's loss and hits go to.
    pub tally: u32,
    pub _pad: [u32; 3],
}

impl KernelShape for MetricsTallyShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// One workgroup of 256 threads.
    fn grid(&self, _: KernelVariant) -> Grid {
        Grid::Fixed([1, 1, 1])
    }
    /// Every 256th row, then 8 halving steps.
    fn work(&self, _: KernelVariant, rows: u32) -> Work {
        Work { max_iterations: u64::from(rows.div_ceil(256) + 8), flops: 0 }
    }
}

/// Bindings: logits, labels, probs, dlogits, and the metrics (the per-row kernel, which `variant`
/// Gpu chooses: its row metrics, for [`tally_kernel`]).
pub fn kernel(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let source =
        Source { label: "softmax_cross_entropy", wgsl: with_tally!("softmax/cross_entropy.wgsl"), overrides: &[] };
    let rows =
        Source { label: "softmax_cross_entropy_rows", wgsl: wgsl!("softmax/cross_entropy_rows.wgsl"), overrides: &[] };
    let preferred = preferred(variant, None, Some(rows));
    Kernel::new(ctx, &[Read, Read, ReadWrite, ReadWrite, ReadWrite], Compile::OnFirstBind, source, preferred)
}

/// Bindings: row metrics, metrics.
pub fn tally_kernel(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "metrics_tally", wgsl: with_tally!("softmax/metrics_tally.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// What the loss reads and writes.
pub struct SoftmaxCrossEntropyIo<'a> {
    pub logits: &'a TrackedBuffer,
    pub labels: &'a TrackedBuffer,
    pub probs: &'a TrackedBuffer,
    pub dlogits: &'a TrackedBuffer,
    /// The metrics tallies.
    pub metrics: &'a TrackedBuffer,
    /// Each row's loss and hit, from the per-row kernel to its tally: [`row_metrics`]'s buffer.
    pub row_metrics: Option<&'a TrackedBuffer>,
}

/// Where the per-row kernel writes each row's loss and hit for batches of up to `max_rows` rows,
/// when it is the one `kernels` bind (the GPU set); several losses run one after another may
/// share it.
pub fn row_metrics(b: &Binder, kernels: &Kernels, max_rows: usize) -> Option<TrackedBuffer> {
    (kernels.softmax_cross_entropy.variant() == KernelVariant::Gpu).then(|| b.scratch("row metrics", 2 * max_rows))
}

/// Softmax, the cross-entropy loss and (when `write_gradient`) its gradient for batches of up to
/// `max_rows` rows of `classes` logits, the loss and hits added to metrics tally `tally`: the
/// per-row kernel then its tally (the GPU set), or one dispatch per chunk of rows a single
/// invocation may loop over (lavapipe caps loops).
pub fn bind_loss(
    b: &Binder,
    kernels: &Kernels,
    classes: usize,
    tally: u32,
    write_gradient: bool,
    max_rows: usize,
    io: SoftmaxCrossEntropyIo,
) -> Vec<BoundKernel> {
    let kernel = &kernels.softmax_cross_entropy;
    if kernel.variant() == KernelVariant::Gpu {
        let row_metrics = io.row_metrics.expect("the per-row softmax needs its row metrics buffer");
        let shape = SoftmaxCrossEntropyShape::whole_batch(classes, tally, write_gradient);
        let tally_shape = MetricsTallyShape { tally, _pad: [0; 3] };
        return vec![
            b.bind(kernel, &shape, &[io.logits, io.labels, io.probs, io.dlogits, row_metrics]),
            b.bind(&kernels.metrics_tally, &tally_shape, &[row_metrics, io.metrics]),
        ];
    }
    let storage = [io.logits, io.labels, io.probs, io.dlogits, io.metrics];
    SoftmaxCrossEntropyShape::chunks(classes, tally, write_gradient, max_rows)
        .iter()
        .map(|shape| b.bind(kernel, shape, &storage))
        .collect()
}
