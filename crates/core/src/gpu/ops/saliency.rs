//! `saliency/seed.wgsl`: the gradient of the predicted class's probability at the logits, which
//! the evaluation-mode backward pass of [`crate::gpu::dispatches::Dispatches::explanation`]
//! carries down to the input pixels.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    Access, Binder, BoundKernel, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SaliencySeedShape {
    pub classes: u32,
    pub _pad: [u32; 3],
}

impl SaliencySeedShape {
    pub fn new(classes: usize) -> Self {
        SaliencySeedShape { classes: classes as u32, _pad: [0; 3] }
    }
}

impl KernelShape for SaliencySeedShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// An invocation per row.
    fn grid(&self, _: KernelVariant) -> Grid {
        Grid::Rows { per_workgroup: 64 }
    }
    /// Two walks over the classes: the argmax, the outputs.
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work { max_iterations: 2 * u64::from(self.classes), flops: 0 }
    }
}

/// Bindings: probs, dlogits.
pub fn seed_kernel(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "saliency_seed", wgsl: wgsl!("saliency/seed.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// What the saliency seed reads and writes.
pub struct SaliencySeedIo<'a> {
    pub probs: &'a TrackedBuffer,
    pub dlogits: &'a TrackedBuffer,
}

/// ∂p_c/∂logits of the predicted class c, for rows of `classes` probabilities.
pub fn bind_seed(b: &Binder, kernel: &Kernel, classes: usize, io: SaliencySeedIo) -> BoundKernel {
    b.bind(kernel, &SaliencySeedShape::new(classes), &[io.probs, io.dlogits])
}
