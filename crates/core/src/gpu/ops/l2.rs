//! `l2_regularizer.wgsl`: Keras's `kernel_regularizer=l2(λ)` on every Dense kernel, its gradient
//! added to grads and its penalty to a metrics tally.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::GpuContext;
use crate::gpu::kernel::{Access, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work};
use crate::model::ParamLayout;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct L2RegularizerShape {
    /// How many (offset, length) kernel ranges the ranges buffer holds.
    pub ranges: u32,
    pub l2: f32,
    /// Which metrics tally the penalty goes to.
    pub tally: u32,
    /// The kernels' weights in all (read by the host only, for the dispatch plan).
    pub weights: u32,
}

impl L2RegularizerShape {
    pub fn new(layout: &ParamLayout, l2: f32, tally: u32) -> Self {
        let weights = layout.dense.iter().map(|d| d.kernel_len() as u32).sum();
        L2RegularizerShape { ranges: layout.dense.len() as u32, l2, tally, weights }
    }
}

impl KernelShape for L2RegularizerShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// One workgroup, whose threads reduce the penalty in workgroup memory.
    fn grid(&self, _: KernelVariant) -> Grid {
        Grid::Fixed([1, 1, 1])
    }
    /// Each thread walks every 256th weight of each range (at most one trip more per range),
    /// then the 8 halving steps of the reduction.
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work { max_iterations: u64::from(self.weights.div_ceil(256) + self.ranges + 8), flops: 0 }
    }
}

/// The ranges buffer's contents: (offset, length) of every Dense kernel in the parameters.
pub fn kernel_ranges(layout: &ParamLayout) -> Vec<u32> {
    layout.dense.iter().flat_map(|d| [d.kernel_offset as u32, d.kernel_len() as u32]).collect()
}

/// Bindings: ranges, params, grads, metrics.
pub fn kernel(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "l2_regularizer", wgsl: wgsl!("l2_regularizer.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, Read, ReadWrite, ReadWrite], Compile::Now, source, None)
}
