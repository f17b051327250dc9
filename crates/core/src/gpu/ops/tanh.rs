//! `tanh/forward.wgsl` and `tanh/backward.wgsl`: the tanh activation, elementwise; its gradient
//! from the forward pass's output (dx = dy · (1 − y²)). Not in a preset: the smallest op, and the
//! one `docs/adding-an-op.md` walks through.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    Access, Binder, BoundKernel, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};

/// `Shape` of `tanh/forward.wgsl` and `tanh/backward.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct TanhShape {
    /// Elements of one row.
    pub width: u32,
    pub _pad: [u32; 3],
}

impl TanhShape {
    pub fn new(width: usize) -> Self {
        TanhShape { width: width as u32, _pad: [0; 3] }
    }
}

impl KernelShape for TanhShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A thread per element, 256 per workgroup along each row.
    fn grid(&self, _: KernelVariant) -> Grid {
        Grid::PerRow { x: self.width.div_ceil(256) }
    }
    /// No loops.
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work::default()
    }
}

/// Bindings: x, y. Compiled when first bound: a model without tanh never binds it.
pub fn forward(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "tanh_forward", wgsl: wgsl!("tanh/forward.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// Bindings: y (the forward pass's output), dy, dx.
pub fn backward(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "tanh_backward", wgsl: wgsl!("tanh/backward.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// What tanh's forward pass reads and writes.
pub struct TanhForwardIo<'a> {
    pub x: &'a TrackedBuffer,
    pub y: &'a TrackedBuffer,
}

/// `y = tanh(x)` on rows of `width`.
pub fn bind_forward(b: &Binder, kernel: &Kernel, width: usize, io: TanhForwardIo) -> BoundKernel {
    b.bind(kernel, &TanhShape::new(width), &[io.x, io.y])
}

/// What tanh's backward pass reads and writes.
pub struct TanhBackwardIo<'a> {
    /// The forward pass's output.
    pub y: &'a TrackedBuffer,
    pub dy: &'a TrackedBuffer,
    pub dx: &'a TrackedBuffer,
}

/// `dx = dy · (1 − y²)` on rows of `width`.
pub fn bind_backward(b: &Binder, kernel: &Kernel, width: usize, io: TanhBackwardIo) -> BoundKernel {
    b.bind(kernel, &TanhShape::new(width), &[io.y, io.dy, io.dx])
}
