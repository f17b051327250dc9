//! The dense layer's kernels: `dense_forward` (bias + ReLU epilogue), `dense_backward_input`
//! (ReLU mask of the layer below fused), `dense_backward_weights` (dW and db); each with a vec4
//! implementation (`*_vec4.wgsl`) for layers whose sizes and offsets are multiples of 4.

use bytemuck::{Pod, Zeroable};

use super::shaders::{native_overrides, wgsl};
use crate::gpu::context::GpuContext;
use crate::gpu::kernel::{all_multiples_of_4, Access, Compile, Grid, Kernel, KernelShape, KernelVariant, Source};
use crate::model::DenseLayout;

/// Outputs per workgroup along each axis of the scalar kernels (8 threads × 4).
pub const TILE: u32 = 32;
/// The same for the vec4 kernels (8 threads × 16).
pub const VEC4_TILE: u32 = 128;

/// The layer's sizes, as `override` constants INPUTS and UNITS (natively).
const OVERRIDES: &[&str] = native_overrides(&["INPUTS", "UNITS"]);

fn tile(variant: KernelVariant) -> u32 {
    match variant {
        KernelVariant::Scalar => TILE,
        KernelVariant::Vec4 => VEC4_TILE,
    }
}

/// `Shape` of `dense_forward*.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DenseForwardShape {
    pub inputs: u32,
    pub units: u32,
    pub kernel_offset: u32,
    pub bias_offset: u32,
    pub relu: u32,
    pub _pad: [u32; 3],
}

impl DenseForwardShape {
    pub fn new(layer: &DenseLayout, relu: bool) -> Self {
        DenseForwardShape {
            inputs: layer.inputs as u32,
            units: layer.units as u32,
            kernel_offset: layer.kernel_offset as u32,
            bias_offset: layer.bias_offset as u32,
            relu: u32::from(relu),
            _pad: [0; 3],
        }
    }
}

impl KernelShape for DenseForwardShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A workgroup per tile of the `[rows, units]` output.
    fn grid(&self, variant: KernelVariant) -> Grid {
        Grid::Tiles { cols: self.units, rows: None, tile: tile(variant) }
    }
    fn override_values(&self) -> Vec<u32> {
        vec![self.inputs, self.units]
    }
    fn vec4_fits(&self) -> bool {
        all_multiples_of_4(&[self.inputs, self.units, self.kernel_offset, self.bias_offset])
    }
}

/// `Shape` of `dense_backward_input*.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DenseBackwardInputShape {
    pub inputs: u32,
    pub units: u32,
    pub kernel_offset: u32,
    pub relu_below: u32,
}

impl DenseBackwardInputShape {
    pub fn new(layer: &DenseLayout, relu_below: bool) -> Self {
        DenseBackwardInputShape {
            inputs: layer.inputs as u32,
            units: layer.units as u32,
            kernel_offset: layer.kernel_offset as u32,
            relu_below: u32::from(relu_below),
        }
    }
}

impl KernelShape for DenseBackwardInputShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A workgroup per tile of the `[rows, inputs]` gradient.
    fn grid(&self, variant: KernelVariant) -> Grid {
        Grid::Tiles { cols: self.inputs, rows: None, tile: tile(variant) }
    }
    fn override_values(&self) -> Vec<u32> {
        vec![self.inputs, self.units]
    }
    fn vec4_fits(&self) -> bool {
        all_multiples_of_4(&[self.inputs, self.units, self.kernel_offset])
    }
}

/// `Shape` of `dense_backward_weights*.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DenseBackwardWeightsShape {
    pub inputs: u32,
    pub units: u32,
    pub kernel_offset: u32,
    pub bias_offset: u32,
}

impl DenseBackwardWeightsShape {
    pub fn new(layer: &DenseLayout) -> Self {
        DenseBackwardWeightsShape {
            inputs: layer.inputs as u32,
            units: layer.units as u32,
            kernel_offset: layer.kernel_offset as u32,
            bias_offset: layer.bias_offset as u32,
        }
    }
}

impl KernelShape for DenseBackwardWeightsShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A workgroup per tile of the `[inputs, units]` kernel gradient.
    fn grid(&self, variant: KernelVariant) -> Grid {
        Grid::Tiles { cols: self.units, rows: Some(self.inputs), tile: tile(variant) }
    }
    fn override_values(&self) -> Vec<u32> {
        vec![self.inputs, self.units]
    }
    fn vec4_fits(&self) -> bool {
        all_multiples_of_4(&[self.inputs, self.units, self.kernel_offset, self.bias_offset])
    }
}

fn dense_kernel(ctx: &GpuContext, storage: &[Access], variant: KernelVariant, scalar: Source, vec4: Source) -> Kernel {
    Kernel::new(ctx, storage, Compile::OnFirstBind, scalar, Some((variant, vec4)))
}

/// Bindings: x, params, y.
pub fn forward(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let scalar = Source { label: "dense_forward", wgsl: wgsl!("dense_forward.wgsl"), overrides: OVERRIDES };
    let vec4 = Source { label: "dense_forward_vec4", wgsl: wgsl!("dense_forward_vec4.wgsl"), overrides: OVERRIDES };
    dense_kernel(ctx, &[Read, Read, ReadWrite], variant, scalar, vec4)
}

/// Bindings: dz, params, below (the layer below's output, for its ReLU mask), dx.
pub fn backward_input(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let scalar =
        Source { label: "dense_backward_input", wgsl: wgsl!("dense_backward_input.wgsl"), overrides: OVERRIDES };
    let vec4 = Source {
        label: "dense_backward_input_vec4",
        wgsl: wgsl!("dense_backward_input_vec4.wgsl"),
        overrides: OVERRIDES,
    };
    dense_kernel(ctx, &[Read, Read, Read, ReadWrite], variant, scalar, vec4)
}

/// Bindings: x, dz, grads.
pub fn backward_weights(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let scalar =
        Source { label: "dense_backward_weights", wgsl: wgsl!("dense_backward_weights.wgsl"), overrides: OVERRIDES };
    let vec4 = Source {
        label: "dense_backward_weights_vec4",
        wgsl: wgsl!("dense_backward_weights_vec4.wgsl"),
        overrides: OVERRIDES,
    };
    dense_kernel(ctx, &[Read, Read, ReadWrite], variant, scalar, vec4)
}
