//! `gather/batch.wgsl`: a batch's pixels (÷255) and labels, gathered on the GPU from the resident
//! split through the epoch's shuffled order.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    Access, Binder, BoundKernel, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct GatherShape {
    pub pixels: u32,
    pub _pad: [u32; 3],
}

impl GatherShape {
    pub fn new(pixels: usize) -> Self {
        GatherShape { pixels: pixels as u32, _pad: [0; 3] }
    }
}

impl KernelShape for GatherShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A thread per four pixels (one packed word) of each row.
    fn grid(&self, _: KernelVariant) -> Grid {
        Grid::PerRow { x: (self.pixels / 4).div_ceil(64) }
    }
    /// No loops.
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work::default()
    }
}

/// Bindings: images (u8 packed in u32), labels, order, x, batch labels.
pub fn kernel(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "gather_batch", wgsl: wgsl!("gather/batch.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, Read, Read, ReadWrite, ReadWrite], Compile::Now, source, None)
}

/// What a gather reads and writes.
pub struct GatherIo<'a> {
    /// The resident split: pixels (u8 packed in u32), labels, the epoch's order.
    pub images: &'a TrackedBuffer,
    pub labels: &'a TrackedBuffer,
    pub order: &'a TrackedBuffer,
    /// The batch: pixels ÷ 255, labels.
    pub x: &'a TrackedBuffer,
    pub batch_labels: &'a TrackedBuffer,
}

/// The gather of a batch of images of `pixels` pixels.
pub fn bind(b: &Binder, kernel: &Kernel, pixels: usize, io: GatherIo) -> BoundKernel {
    b.bind(kernel, &GatherShape::new(pixels), &[io.images, io.labels, io.order, io.x, io.batch_labels])
}
