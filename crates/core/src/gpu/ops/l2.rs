//! `l2/regularizer.wgsl`: Keras's `kernel_regularizer=l2(λ)` on every Dense kernel, its gradient
//! added to grads and its penalty to a metrics tally; for GPUs over many workgroups
//! (`l2/regularizer_partials.wgsl`, a partial penalty per workgroup) then `l2/penalty_tally.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::shaders::{wgsl, with_tally};
use super::Kernels;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{preferred, Access, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work};
use crate::gpu::kernel::{Binder, BoundKernel};
use crate::model::ParamLayout;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct L2RegularizerShape {
    /// How many (offset, length) kernel ranges the ranges buffer holds.
    pub ranges: u32,
    pub l2: f32,
    /// Which metrics tally the penalty goes to.
    pub tally: u32,
    /// The kernels' weights in all (the GPU kernel's sequence; the one-workgroup kernel ignores it).
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
    /// One workgroup, whose threads reduce the penalty in workgroup memory; the GPU kernel: a
    /// thread per four weights.
    fn grid(&self, variant: KernelVariant) -> Grid {
        match variant {
            KernelVariant::Gpu => Grid::Elements { count: self.weights, per_thread: 4 },
            KernelVariant::Scalar | KernelVariant::Vec4 => Grid::Fixed([1, 1, 1]),
        }
    }
    /// Each thread walks every 256th weight of each range (at most one trip more per range),
    /// then the 8 halving steps of the reduction; the GPU kernel's threads four weights, each
    /// found over the ranges.
    fn work(&self, variant: KernelVariant, _: u32) -> Work {
        let trips = match variant {
            KernelVariant::Gpu => 4 * (self.ranges + 1) + 8,
            KernelVariant::Scalar | KernelVariant::Vec4 => self.weights.div_ceil(256) + self.ranges + 8,
        };
        Work { max_iterations: u64::from(trips), flops: 0 }
    }
}

impl L2RegularizerShape {
    /// The GPU kernel's partial penalties: one per workgroup launched.
    pub fn partials(&self) -> usize {
        let [x, y, z] = self.grid(KernelVariant::Gpu).workgroups(0);
        (x * y * z) as usize
    }
}

/// `Shape` of `l2/penalty_tally.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct L2PenaltyTallyShape {
    /// How many partial penalties there are.
    pub partials: u32,
    pub l2: f32,
    /// Which metrics tally the penalty goes to.
    pub tally: u32,
    pub _pad: u32,
}

impl L2PenaltyTallyShape {
    pub fn new(regularizer: &L2RegularizerShape) -> Self {
        L2PenaltyTallyShape {
            partials: regularizer.partials() as u32,
            l2: regularizer.l2,
            tally: regularizer.tally,
            _pad: 0,
        }
    }
}

impl KernelShape for L2PenaltyTallyShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// One workgroup of 256 threads.
    fn grid(&self, _: KernelVariant) -> Grid {
        Grid::Fixed([1, 1, 1])
    }
    /// Every 256th partial, then 8 halving steps.
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work { max_iterations: u64::from(self.partials.div_ceil(256) + 8), flops: 0 }
    }
}

/// The ranges buffer's contents: (offset, length) of every Dense kernel in the parameters.
pub fn kernel_ranges(layout: &ParamLayout) -> Vec<u32> {
    layout.dense.iter().flat_map(|d| [d.kernel_offset as u32, d.kernel_len() as u32]).collect()
}

/// Bindings: ranges, params, grads, and the metrics (the GPU kernel, which `variant` Gpu
/// chooses: its partial penalties, for [`tally_kernel`]).
pub fn kernel(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source {
        label: "l2_regularizer",
        wgsl: concat!(wgsl!("l2/workgroup_sum.wgsl"), with_tally!("l2/regularizer.wgsl")),
        overrides: &[],
    };
    let partials = Source {
        label: "l2_regularizer_partials",
        wgsl: concat!(wgsl!("l2/workgroup_sum.wgsl"), wgsl!("l2/regularizer_partials.wgsl")),
        overrides: &[],
    };
    let preferred = preferred(variant, None, Some(partials));
    Kernel::new(ctx, &[Read, Read, ReadWrite, ReadWrite], Compile::OnFirstBind, source, preferred)
}

/// Bindings: partial penalties, metrics.
pub fn tally_kernel(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source {
        label: "l2_penalty_tally",
        wgsl: concat!(wgsl!("l2/workgroup_sum.wgsl"), with_tally!("l2/penalty_tally.wgsl")),
        overrides: &[],
    };
    Kernel::new(ctx, &[Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// What the L2 term reads and writes.
pub struct L2Io<'a> {
    pub params: &'a TrackedBuffer,
    /// 2λW is added to every Dense kernel's gradient here.
    pub grads: &'a TrackedBuffer,
    /// The metrics tallies: the penalty λ·ΣW² is added to tally `tally`'s loss.
    pub metrics: &'a TrackedBuffer,
}

/// The L2 term of every Dense kernel of `layout`: the one-workgroup kernel, or the GPU set's
/// partial penalties then their tally.
pub fn bind(b: &Binder, kernels: &Kernels, layout: &ParamLayout, l2: f32, tally: u32, io: L2Io) -> Vec<BoundKernel> {
    let ranges = b.ctx.storage_with("l2 ranges", bytemuck::cast_slice(&kernel_ranges(layout)));
    let shape = L2RegularizerShape::new(layout, l2, tally);
    let kernel = &kernels.l2_regularizer;
    if kernel.variant() == KernelVariant::Gpu {
        let partials = b.scratch("l2 partials", shape.partials());
        return vec![
            b.bind(kernel, &shape, &[&ranges, io.params, io.grads, &partials]),
            b.bind(&kernels.l2_penalty_tally, &L2PenaltyTallyShape::new(&shape), &[&partials, io.metrics]),
        ];
    }
    vec![b.bind(kernel, &shape, &[&ranges, io.params, io.grads, io.metrics])]
}
