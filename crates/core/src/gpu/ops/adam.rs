//! `adam/adam.wgsl` (and `adam/adam_vec4.wgsl`): one Adam step over the flat trainable parameters.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    preferred, Access, Binder, BoundKernel, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};
use crate::optimizer::AdamConfig;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct AdamShape {
    pub count: u32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
}

impl AdamShape {
    pub fn new(trainable: usize, adam: &AdamConfig) -> Self {
        AdamShape { count: trainable as u32, beta1: adam.beta1, beta2: adam.beta2, epsilon: adam.epsilon }
    }
}

impl KernelShape for AdamShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A thread per parameter (per four in the vec4 kernel).
    fn grid(&self, variant: KernelVariant) -> Grid {
        let per_thread = match variant {
            KernelVariant::Vec4 => 4,
            KernelVariant::Scalar | KernelVariant::Gpu => 1,
        };
        Grid::Elements { count: self.count, per_thread }
    }
    /// Any count: the vec4 kernel needs only buffers of whole vec4s.
    fn vec4_fits(&self) -> bool {
        true
    }
    /// No loops, but the vec4 kernel's four-element tail.
    fn work(&self, variant: KernelVariant, _: u32) -> Work {
        Work { max_iterations: if variant == KernelVariant::Vec4 { 4 } else { 0 }, flops: 0 }
    }
}

/// Bindings: params, grads, m, v.
/// Adam is elementwise: a GPU runs the vec4 kernel as well as the emulators do, so the tiled
/// variant is the scalar kernel.
pub fn kernel(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let scalar = Source { label: "adam", wgsl: wgsl!("adam/adam.wgsl"), overrides: &[] };
    let vec4 = Source { label: "adam_vec4", wgsl: wgsl!("adam/adam_vec4.wgsl"), overrides: &[] };
    let preferred = preferred(variant, Some(vec4), None);
    Kernel::new(ctx, &[ReadWrite, Read, ReadWrite, ReadWrite], Compile::Now, scalar, preferred)
}

/// What Adam reads and updates: the first `trainable` parameters, their gradients and moments.
pub struct AdamIo<'a> {
    pub params: &'a TrackedBuffer,
    pub grads: &'a TrackedBuffer,
    pub m: &'a TrackedBuffer,
    pub v: &'a TrackedBuffer,
}

/// One Adam update of the first `trainable` parameters.
pub fn bind(b: &Binder, kernel: &Kernel, trainable: usize, config: &AdamConfig, io: AdamIo) -> BoundKernel {
    b.bind(kernel, &AdamShape::new(trainable, config), &[io.params, io.grads, io.m, io.v])
}
