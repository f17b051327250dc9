//! `partials/sum.wgsl`: the second stage of the GPU set's split reductions, adding the partial
//! results of a batch's chunks in order and writing them to the gradients.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    Access, Binder, BoundKernel, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};

/// Items (batch rows, output positions) per chunk of a split reduction over `items` of them,
/// and chunks: at most 256 partial results, of at least `min_per_chunk` items each.
pub fn chunking(items: usize, min_per_chunk: usize) -> (u32, u32) {
    const MAX_PARTIALS: usize = 256;
    let items = items.max(1);
    let per_chunk = items.div_ceil(MAX_PARTIALS).max(min_per_chunk);
    (per_chunk as u32, items.div_ceil(per_chunk) as u32)
}

/// `Shape` of `partials/sum.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SumPartialsShape {
    /// Elements of one partial result.
    pub count: u32,
    /// Partial results (chunks).
    pub partials: u32,
    /// Elements written from `first_offset`; the rest go from `second_offset`.
    pub split: u32,
    pub first_offset: u32,
    pub second_offset: u32,
    pub _pad: [u32; 3],
}

impl SumPartialsShape {
    /// `partials` results of a kernel gradient of `kernel_len` values at `kernel_offset` followed
    /// by a bias gradient of `count − kernel_len` at `bias_offset`.
    pub fn kernel_and_bias(
        count: usize,
        partials: usize,
        kernel_len: usize,
        kernel_offset: usize,
        bias_offset: usize,
    ) -> Self {
        SumPartialsShape {
            count: count as u32,
            partials: partials as u32,
            split: kernel_len as u32,
            first_offset: kernel_offset as u32,
            second_offset: bias_offset as u32,
            _pad: [0; 3],
        }
    }
}

impl KernelShape for SumPartialsShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A thread per element.
    fn grid(&self, _: KernelVariant) -> Grid {
        Grid::Elements { count: self.count, per_thread: 1 }
    }
    /// One trip per partial result.
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work { max_iterations: u64::from(self.partials), flops: 0 }
    }
}

/// Bindings: partials, grads.
pub fn kernel(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "sum_partials", wgsl: wgsl!("partials/sum.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// The partial results summed in order into a kernel gradient and a bias gradient in `grads`.
pub fn bind_sum(
    b: &Binder,
    kernel: &Kernel,
    shape: &SumPartialsShape,
    partials: &TrackedBuffer,
    grads: &TrackedBuffer,
) -> BoundKernel {
    b.bind(kernel, shape, &[partials, grads])
}
