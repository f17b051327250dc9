//! The dense layer's kernels: `dense_forward` (bias + ReLU epilogue), `dense_backward_input`
//! (ReLU mask of the layer below fused), `dense_backward_weights` (dW and db); each with a vec4
//! implementation (`*_vec4.wgsl`) for layers whose sizes and offsets are multiples of 4, and a
//! tiled one for GPUs (`*_tiled.wgsl`: 32×32 outputs per 256-thread workgroup, 2×2 per thread,
//! the operands staged through workgroup memory 32 along k at a time).

use bytemuck::{Pod, Zeroable};

use super::shaders::{native_overrides, wgsl};
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    all_multiples_of_4, preferred, Access, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};
use crate::gpu::kernel::{Binder, BoundKernel};
use crate::model::DenseLayout;

/// Outputs per workgroup along each axis of the scalar kernels (8 threads × 4).
pub const TILE: u32 = 32;
/// The same for the vec4 kernels (8 threads × 16).
pub const VEC4_TILE: u32 = 128;
/// The same for the tiled kernels (16 threads × 2); they also step 32 along k per tile.
pub const TILED_TILE: u32 = 32;
/// Loop trips of a tiled kernel per 32-long step along k: 4 to stage both operands (1,024
/// values each over 256 threads), 32 multiply-add trips of a 2×2 block.
const TILED_TRIPS_PER_STEP: u64 = 4 + 32;

/// The layer's sizes, as `override` constants INPUTS and UNITS (natively).
const OVERRIDES: &[&str] = native_overrides(&["INPUTS", "UNITS"]);

fn tile(variant: KernelVariant) -> u32 {
    match variant {
        KernelVariant::Scalar => TILE,
        KernelVariant::Vec4 => VEC4_TILE,
        KernelVariant::Gpu => TILED_TILE,
    }
}

/// What an invocation of a dense product of `rows × inputs × units` does when its loop runs
/// along `k` (the layer's inputs, units or the batch's rows), plus `epilogue` trips of the
/// scalar and vec4 kernels' stores.
fn product_work(variant: KernelVariant, k: u32, epilogue: u64, rows: u32, inputs: u32, units: u32) -> Work {
    let k = u64::from(k);
    let max_iterations = match variant {
        KernelVariant::Scalar => k + epilogue,
        KernelVariant::Vec4 => k.div_ceil(4) + epilogue,
        KernelVariant::Gpu => k.div_ceil(u64::from(TILED_TILE)) * TILED_TRIPS_PER_STEP,
    };
    Work { max_iterations, flops: 2 * u64::from(rows) * u64::from(inputs) * u64::from(units) }
}

/// `Shape` of `dense/forward*.wgsl`.
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
    /// A loop along the inputs, then the 4×4 (vec4: 4 rows of 16) stores.
    fn work(&self, variant: KernelVariant, rows: u32) -> Work {
        let epilogue = if variant == KernelVariant::Vec4 { 4 } else { 16 };
        product_work(variant, self.inputs, epilogue, rows, self.inputs, self.units)
    }
}

/// `Shape` of `dense/backward_input*.wgsl`.
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
    /// A loop along the units, then the stores.
    fn work(&self, variant: KernelVariant, rows: u32) -> Work {
        let epilogue = if variant == KernelVariant::Vec4 { 4 } else { 16 };
        product_work(variant, self.units, epilogue, rows, self.inputs, self.units)
    }
}

/// `Shape` of `dense/backward_weights*.wgsl`.
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
    /// A workgroup per tile of the `[inputs, units]` kernel gradient; the tiled kernel computes
    /// the bias gradient as one more row (the input's column of ones).
    fn grid(&self, variant: KernelVariant) -> Grid {
        let rows = if variant == KernelVariant::Gpu { self.inputs + 1 } else { self.inputs };
        Grid::Tiles { cols: self.units, rows: Some(rows), tile: tile(variant) }
    }
    fn override_values(&self) -> Vec<u32> {
        vec![self.inputs, self.units]
    }
    fn vec4_fits(&self) -> bool {
        all_multiples_of_4(&[self.inputs, self.units, self.kernel_offset, self.bias_offset])
    }
    /// A loop along the batch's rows, then the stores (and the bias's).
    fn work(&self, variant: KernelVariant, rows: u32) -> Work {
        let epilogue = if variant == KernelVariant::Vec4 { 8 } else { 20 };
        product_work(variant, rows, epilogue, rows, self.inputs, self.units)
    }
}

/// The scalar, vec4 and tiled implementations of the dense kernel `$name`, from its WGSL files
/// `shaders/dense/$file*.wgsl`. The tiled kernels read their sizes from the shape: a GPU gains
/// nothing from constants.
macro_rules! dense_sources {
    ($name:literal, $file:literal) => {
        [
            Source { label: $name, wgsl: wgsl!("dense/", $file, ".wgsl"), overrides: OVERRIDES },
            Source { label: concat!($name, "_vec4"), wgsl: wgsl!("dense/", $file, "_vec4.wgsl"), overrides: OVERRIDES },
            Source { label: concat!($name, "_tiled"), wgsl: wgsl!("dense/", $file, "_tiled.wgsl"), overrides: &[] },
        ]
    };
}

/// A dense kernel from its [`dense_sources`], with `variant`'s implementation.
fn dense_kernel(ctx: &GpuContext, storage: &[Access], variant: KernelVariant, sources: [Source; 3]) -> Kernel {
    let [scalar, vec4, tiled] = sources;
    Kernel::new(ctx, storage, Compile::OnFirstBind, scalar, preferred(variant, Some(vec4), Some(tiled)))
}

/// Bindings: x, params, y.
pub fn forward(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    dense_kernel(ctx, &[Read, Read, ReadWrite], variant, dense_sources!("dense_forward", "forward"))
}

/// Bindings: dz, params, below (the layer below's output, for its ReLU mask), dx.
pub fn backward_input(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    dense_kernel(ctx, &[Read, Read, Read, ReadWrite], variant, dense_sources!("dense_backward_input", "backward_input"))
}

/// Bindings: x, dz, grads.
pub fn backward_weights(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    dense_kernel(ctx, &[Read, Read, ReadWrite], variant, dense_sources!("dense_backward_weights", "backward_weights"))
}

/// What the dense forward pass reads and writes.
pub struct DenseForwardIo<'a> {
    pub x: &'a TrackedBuffer,
    pub params: &'a TrackedBuffer,
    pub y: &'a TrackedBuffer,
}

/// `y = act(x · kernel + bias)` for `layer`, ReLU when `relu`.
pub fn bind_forward(b: &Binder, kernel: &Kernel, layer: &DenseLayout, relu: bool, io: DenseForwardIo) -> BoundKernel {
    b.bind(kernel, &DenseForwardShape::new(layer, relu), &[io.x, io.params, io.y])
}

/// What the dense layer's gradient at its input reads and writes.
pub struct DenseBackwardInputIo<'a> {
    pub dy: &'a TrackedBuffer,
    pub params: &'a TrackedBuffer,
    /// The layer below's output (this layer's input), for its ReLU mask.
    pub below: &'a TrackedBuffer,
    pub dx: &'a TrackedBuffer,
}

/// `dx = dy · kernelᵀ`, masked by ReLU'(below) when `relu_below`.
pub fn bind_backward_input(
    b: &Binder,
    kernel: &Kernel,
    layer: &DenseLayout,
    relu_below: bool,
    io: DenseBackwardInputIo,
) -> BoundKernel {
    b.bind(kernel, &DenseBackwardInputShape::new(layer, relu_below), &[io.dy, io.params, io.below, io.dx])
}

/// What the dense layer's weight gradient reads and writes.
pub struct DenseBackwardWeightsIo<'a> {
    pub x: &'a TrackedBuffer,
    pub dy: &'a TrackedBuffer,
    /// The gradients of every parameter: the layer's dW and db are written at its offsets.
    pub grads: &'a TrackedBuffer,
}

/// `(dW, db) = (xᵀ · dy, Σ_rows dy)` into the layer's place in `grads`.
pub fn bind_backward_weights(
    b: &Binder,
    kernel: &Kernel,
    layer: &DenseLayout,
    io: DenseBackwardWeightsIo,
) -> BoundKernel {
    b.bind(kernel, &DenseBackwardWeightsShape::new(layer), &[io.x, io.dy, io.grads])
}
