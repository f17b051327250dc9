//! `pool/forward.wgsl` and `pool/backward.wgsl`: 2×2 max pooling, stride 2, over NHWC
//! images; the backward pass sends each window's gradient to its winner.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    Access, Binder, BoundKernel, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};
use crate::model::PoolLayout;

/// A thread per element of `elements` per row, 64 per workgroup.
fn per_element(elements: u32) -> Grid {
    Grid::PerRow { x: elements.div_ceil(64) }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MaxPoolForwardShape {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub _pad: [u32; 3],
}

impl MaxPoolForwardShape {
    pub fn new(layer: &PoolLayout) -> Self {
        MaxPoolForwardShape {
            height: layer.height as u32,
            width: layer.width as u32,
            channels: layer.channels as u32,
            out_height: layer.out_height() as u32,
            out_width: layer.out_width() as u32,
            _pad: [0; 3],
        }
    }
}

impl KernelShape for MaxPoolForwardShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A thread per output element.
    fn grid(&self, _: KernelVariant) -> Grid {
        per_element(self.out_height * self.out_width * self.channels)
    }
    /// No loops (the 2×2 window is unrolled).
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work::default()
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MaxPoolBackwardShape {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub relu_below: u32,
    pub _pad: [u32; 2],
}

impl MaxPoolBackwardShape {
    pub fn new(layer: &PoolLayout, relu_below: bool) -> Self {
        MaxPoolBackwardShape {
            height: layer.height as u32,
            width: layer.width as u32,
            channels: layer.channels as u32,
            out_height: layer.out_height() as u32,
            out_width: layer.out_width() as u32,
            relu_below: u32::from(relu_below),
            _pad: [0; 2],
        }
    }
}

impl KernelShape for MaxPoolBackwardShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A thread per 2×2 block of the input (rounded up) and channel.
    fn grid(&self, _: KernelVariant) -> Grid {
        per_element(self.height.div_ceil(2) * self.width.div_ceil(2) * self.channels)
    }
    /// No loops (the 2×2 window is unrolled).
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work::default()
    }
}

/// Bindings: x, y. Compiled when first bound: an MLP never binds it.
pub fn forward(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "max_pool_forward", wgsl: wgsl!("pool/forward.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// Bindings: x, dy, dx.
pub fn backward(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "max_pool_backward", wgsl: wgsl!("pool/backward.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// What max pooling's forward pass reads and writes.
pub struct MaxPoolForwardIo<'a> {
    pub x: &'a TrackedBuffer,
    pub y: &'a TrackedBuffer,
}

pub fn bind_forward(b: &Binder, kernel: &Kernel, layer: &PoolLayout, io: MaxPoolForwardIo) -> BoundKernel {
    b.bind(kernel, &MaxPoolForwardShape::new(layer), &[io.x, io.y])
}

/// What max pooling's backward pass reads and writes.
pub struct MaxPoolBackwardIo<'a> {
    /// The pool's input (where each window's maximum is; its ReLU mask).
    pub x: &'a TrackedBuffer,
    pub dy: &'a TrackedBuffer,
    pub dx: &'a TrackedBuffer,
}

pub fn bind_backward(
    b: &Binder,
    kernel: &Kernel,
    layer: &PoolLayout,
    relu_below: bool,
    io: MaxPoolBackwardIo,
) -> BoundKernel {
    b.bind(kernel, &MaxPoolBackwardShape::new(layer, relu_below), &[io.x, io.dy, io.dx])
}
