//! `zero_pad/forward.wgsl` and `zero_pad/backward.wgsl`: Keras's ZeroPadding2D over NHWC images
//! (a following valid Conv2D then computes Keras's `padding="same"`); the backward pass crops
//! the gradient back to the image.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    Access, Binder, BoundKernel, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};
use crate::model::PadLayout;

/// A thread per element of `elements` per row, 64 per workgroup.
fn per_element(elements: usize) -> Grid {
    Grid::PerRow { x: (elements as u32).div_ceil(64) }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ZeroPadForwardShape {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub padding: u32,
}

impl ZeroPadForwardShape {
    pub fn new(layer: &PadLayout) -> Self {
        ZeroPadForwardShape {
            height: layer.height as u32,
            width: layer.width as u32,
            channels: layer.channels as u32,
            padding: layer.padding as u32,
        }
    }
}

impl KernelShape for ZeroPadForwardShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A thread per output element.
    fn grid(&self, _: KernelVariant) -> Grid {
        let side = |n: u32| (n + 2 * self.padding) as usize;
        per_element(side(self.height) * side(self.width) * self.channels as usize)
    }
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work::default()
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ZeroPadBackwardShape {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub padding: u32,
    pub relu_below: u32,
    pub _pad: [u32; 3],
}

impl ZeroPadBackwardShape {
    pub fn new(layer: &PadLayout, relu_below: bool) -> Self {
        let ZeroPadForwardShape { height, width, channels, padding } = ZeroPadForwardShape::new(layer);
        ZeroPadBackwardShape { height, width, channels, padding, relu_below: u32::from(relu_below), _pad: [0; 3] }
    }
}

impl KernelShape for ZeroPadBackwardShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A thread per input element.
    fn grid(&self, _: KernelVariant) -> Grid {
        per_element((self.height * self.width * self.channels) as usize)
    }
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work::default()
    }
}

/// Bindings: x, y. Compiled when first bound: a model without padding never binds it.
pub fn forward(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "zero_pad_forward", wgsl: wgsl!("zero_pad/forward.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// Bindings: x (for the ReLU mask below), dy, dx.
pub fn backward(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "zero_pad_backward", wgsl: wgsl!("zero_pad/backward.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// What zero padding's forward pass reads and writes.
pub struct ZeroPadForwardIo<'a> {
    pub x: &'a TrackedBuffer,
    pub y: &'a TrackedBuffer,
}

pub fn bind_forward(b: &Binder, kernel: &Kernel, layer: &PadLayout, io: ZeroPadForwardIo) -> BoundKernel {
    b.bind(kernel, &ZeroPadForwardShape::new(layer), &[io.x, io.y])
}

/// What zero padding's backward pass reads and writes.
pub struct ZeroPadBackwardIo<'a> {
    /// The padding's input, for the ReLU mask of the layer below.
    pub below: &'a TrackedBuffer,
    pub dy: &'a TrackedBuffer,
    pub dx: &'a TrackedBuffer,
}

pub fn bind_backward(
    b: &Binder,
    kernel: &Kernel,
    layer: &PadLayout,
    relu_below: bool,
    io: ZeroPadBackwardIo,
) -> BoundKernel {
    b.bind(kernel, &ZeroPadBackwardShape::new(layer, relu_below), &[io.below, io.dy, io.dx])
}
