//! The Conv2D kernels, all sharing `conv/shape.wgsl` (prepended by the host): forward (bias +
//! ReLU), backward to the input (ReLU mask of the layer below fused) and the weight gradient
//! (one dispatch per chunk of the batch's rows); each with a vec4 implementation for layers whose
//! channels, filters and offsets are multiples of 4. For GPUs: `conv/forward_tiled.wgsl` (an
//! invocation per output pixel and four filters), the scalar backward to the input (an
//! invocation per input element already), and the weight gradient split over the batch's output
//! positions (`conv/backward_weights_partials.wgsl`, then [`super::partials`]).

use bytemuck::{Pod, Zeroable};

use super::partials;
use super::shaders::{native_overrides, wgsl};
use super::Kernels;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    all_multiples_of_4, preferred, row_chunks, Access, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work,
};
use crate::gpu::kernel::{Binder, BoundKernel};
use crate::model::ConvLayout;

/// A conv kernel's WGSL: `conv/shape.wgsl` (Shape, the size constants, size()) then the file.
macro_rules! conv_wgsl {
    ($file:literal) => {
        concat!(wgsl!("conv/shape.wgsl"), wgsl!($file))
    };
}

/// The `override` constants: the first seven fields of [`ConvShape`] (natively).
const OVERRIDES: &[&str] =
    native_overrides(&["HEIGHT", "WIDTH", "CHANNELS", "FILTERS", "KERNEL_SIZE", "OUT_HEIGHT", "OUT_WIDTH"]);

/// Pixels × columns each thread of the vec4 conv kernels (and of the scalar forward) computes
/// along either axis.
const BLOCK: u32 = 16;

/// `Shape` of `conv/shape.wgsl`, shared by the three kernels; each reads its own flag.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ConvShape {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub filters: u32,
    pub kernel_size: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub kernel_offset: u32,
    pub bias_offset: u32,
    /// Forward: apply ReLU.
    pub relu: u32,
    /// Backward to the input: mask by ReLU' of the layer below.
    pub relu_below: u32,
    /// Weight gradient: add to grads instead of overwriting them.
    pub accumulate: u32,
    /// The batch rows a weight-gradient dispatch sums (the other kernels ignore both).
    pub first_row: u32,
    pub row_count: u32,
    /// The split weight gradient: output positions (row, oy, ox) each chunk sums, and chunks.
    pub positions_per_chunk: u32,
    pub chunks: u32,
}

/// The split weight gradient's chunks hold at least this many output positions each.
const MIN_POSITIONS_PER_CHUNK: usize = 64;

impl ConvShape {
    /// Rows of the weight gradient's result: one per tap and channel, and the bias's.
    pub fn result_rows(&self) -> u32 {
        self.kernel_size * self.kernel_size * self.channels + 1
    }

    fn new(layer: &ConvLayout) -> Self {
        ConvShape {
            height: layer.height as u32,
            width: layer.width as u32,
            channels: layer.channels as u32,
            filters: layer.filters as u32,
            kernel_size: layer.kernel_size as u32,
            out_height: layer.out_height() as u32,
            out_width: layer.out_width() as u32,
            kernel_offset: layer.kernel_offset as u32,
            bias_offset: layer.bias_offset as u32,
            first_row: 0,
            row_count: u32::MAX,
            ..Default::default()
        }
    }
}

/// Which of the three conv kernels a [`ConvKernelShape`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKernel {
    Forward,
    BackwardInput,
    BackwardWeights,
}

/// A [`ConvShape`] as one of the conv kernels reads it: the uniform is the same, the grid is
/// the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvKernelShape {
    pub kernel: ConvKernel,
    pub shape: ConvShape,
}

impl ConvKernelShape {
    pub fn forward(layer: &ConvLayout, relu: bool) -> Self {
        ConvKernelShape {
            kernel: ConvKernel::Forward,
            shape: ConvShape { relu: u32::from(relu), ..ConvShape::new(layer) },
        }
    }

    pub fn backward_input(layer: &ConvLayout, relu_below: bool) -> Self {
        let shape = ConvShape { relu_below: u32::from(relu_below), ..ConvShape::new(layer) };
        ConvKernelShape { kernel: ConvKernel::BackwardInput, shape }
    }

    /// The weight gradient's dispatches for batches of up to `max_rows` rows, in order: each
    /// sums the next chunk of rows (its loops over their outputs, output rows and dbias within
    /// the loop budget), the first overwriting grads, the others adding to them (a chunk past a
    /// short batch adds nothing).
    pub fn backward_weights_chunks(layer: &ConvLayout, max_rows: usize) -> Vec<Self> {
        let per_row = 2 * layer.out_height() * (layer.out_width() + 1) + 1;
        row_chunks(per_row, max_rows)
            .map(|(first_row, row_count)| {
                let accumulate = u32::from(first_row > 0);
                let shape = ConvShape { first_row, row_count, accumulate, ..ConvShape::new(layer) };
                ConvKernelShape { kernel: ConvKernel::BackwardWeights, shape }
            })
            .collect()
    }

    /// The split weight gradient's shape for batches of up to `max_rows` rows: the batch's
    /// output positions in chunks ([`partials::chunking`]).
    pub fn backward_weights_split(layer: &ConvLayout, max_rows: usize) -> Self {
        let positions = max_rows.max(1) * layer.out_height() * layer.out_width();
        let (positions_per_chunk, chunks) = partials::chunking(positions, MIN_POSITIONS_PER_CHUNK);
        let shape = ConvShape { positions_per_chunk, chunks, ..ConvShape::new(layer) };
        ConvKernelShape { kernel: ConvKernel::BackwardWeights, shape }
    }

    /// Floats of the split weight gradient's partial results.
    pub fn partial_floats(&self) -> usize {
        (self.shape.chunks * self.shape.result_rows() * self.shape.filters) as usize
    }
}

impl KernelShape for ConvKernelShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(&self.shape)
    }

    /// Forward (either implementation): a thread per 16 output pixels × 16 filters. Backward to
    /// the input: a thread per input element (scalar), per 16 input pixels × 16 channels (vec4).
    /// Weight gradient: a thread per four kernel rows (tap and channel) × four filters (scalar),
    /// per four channels of one tap × 16 filters (vec4); 16 threads per workgroup either way.
    fn grid(&self, variant: KernelVariant) -> Grid {
        let s = &self.shape;
        let pixel_blocks = |pixels_per_row: u32, columns: u32| Grid::PixelBlocks {
            pixels_per_row,
            pixels_per_thread: BLOCK,
            y: columns.div_ceil(BLOCK),
        };
        let kernel_rows = s.kernel_size * s.kernel_size * s.channels;
        match (self.kernel, variant) {
            (ConvKernel::Forward, KernelVariant::Gpu) => Grid::PixelBlocks {
                pixels_per_row: s.out_height * s.out_width,
                pixels_per_thread: 1,
                y: s.filters.div_ceil(4),
            },
            (ConvKernel::Forward, _) => pixel_blocks(s.out_height * s.out_width, s.filters),
            (ConvKernel::BackwardInput, KernelVariant::Scalar | KernelVariant::Gpu) => {
                Grid::PerRowLayers { x: (s.height * s.width).div_ceil(64), z: s.channels }
            }
            (ConvKernel::BackwardInput, KernelVariant::Vec4) => pixel_blocks(s.height * s.width, s.channels),
            (ConvKernel::BackwardWeights, KernelVariant::Scalar) => {
                Grid::Fixed([kernel_rows.div_ceil(64), s.filters / 4, 1])
            }
            (ConvKernel::BackwardWeights, KernelVariant::Vec4) => {
                Grid::Fixed([(kernel_rows / 4).div_ceil(16), s.filters.div_ceil(BLOCK), 1])
            }
            (ConvKernel::BackwardWeights, KernelVariant::Gpu) => {
                let blocks = s.result_rows().div_ceil(4) * s.filters.div_ceil(4);
                Grid::Fixed([blocks.div_ceil(64), s.chunks, 1])
            }
        }
    }

    /// Forward and backward to the input: a loop over the taps and channels (or filters, four
    /// at a time). Weight gradient: a loop over the output positions of its rows (the vec4
    /// kernel's bias threads walk them twice), or of its chunk.
    fn work(&self, variant: KernelVariant, rows: u32) -> Work {
        let s = &self.shape;
        let wide = |n: u32| u64::from(n);
        let taps = wide(s.kernel_size * s.kernel_size);
        let out_pixels = wide(s.out_height * s.out_width);
        let flops_per_row = 2 * out_pixels * wide(s.filters) * taps * wide(s.channels);
        let chunk_rows = wide(rows.saturating_sub(s.first_row).min(s.row_count));
        match (self.kernel, variant) {
            (ConvKernel::Forward, KernelVariant::Vec4) => {
                Work { max_iterations: 4 + taps * wide(s.channels.div_ceil(4)), flops: wide(rows) * flops_per_row }
            }
            (ConvKernel::Forward, _) => {
                Work { max_iterations: 4 + taps * wide(s.channels), flops: wide(rows) * flops_per_row }
            }
            (ConvKernel::BackwardInput, KernelVariant::Vec4) => {
                Work { max_iterations: 4 + taps * wide(s.filters.div_ceil(4)), flops: wide(rows) * flops_per_row }
            }
            (ConvKernel::BackwardInput, _) => {
                Work { max_iterations: taps * wide(s.filters.div_ceil(4)), flops: wide(rows) * flops_per_row }
            }
            (ConvKernel::BackwardWeights, KernelVariant::Scalar) => {
                Work { max_iterations: chunk_rows * out_pixels + 4, flops: chunk_rows * flops_per_row }
            }
            (ConvKernel::BackwardWeights, KernelVariant::Vec4) => {
                Work { max_iterations: 2 * chunk_rows * out_pixels + 8, flops: chunk_rows * flops_per_row }
            }
            (ConvKernel::BackwardWeights, KernelVariant::Gpu) => {
                Work { max_iterations: wide(s.positions_per_chunk) + 16, flops: wide(rows) * flops_per_row }
            }
        }
    }

    /// The first seven fields, as [`OVERRIDES`] names them.
    fn override_values(&self) -> Vec<u32> {
        let s = &self.shape;
        vec![s.height, s.width, s.channels, s.filters, s.kernel_size, s.out_height, s.out_width]
    }

    fn vec4_fits(&self) -> bool {
        let s = &self.shape;
        all_multiples_of_4(&[s.channels, s.filters, s.kernel_offset, s.bias_offset])
    }
}

/// Bindings: x, params, y.
pub fn forward(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let scalar = Source { label: "conv2d_forward", wgsl: conv_wgsl!("conv/forward.wgsl"), overrides: OVERRIDES };
    let vec4 =
        Source { label: "conv2d_forward_vec4", wgsl: conv_wgsl!("conv/forward_vec4.wgsl"), overrides: OVERRIDES };
    let tiled = Source { label: "conv2d_forward_tiled", wgsl: conv_wgsl!("conv/forward_tiled.wgsl"), overrides: &[] };
    let preferred = preferred(variant, Some(vec4), Some(tiled));
    Kernel::new(ctx, &[Read, Read, ReadWrite], Compile::OnFirstBind, scalar, preferred)
}

/// Bindings: dz, params, below (for its ReLU mask), dx.
pub fn backward_input(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let scalar =
        Source { label: "conv2d_backward_input", wgsl: conv_wgsl!("conv/backward_input.wgsl"), overrides: &[] };
    let vec4 = Source {
        label: "conv2d_backward_input_vec4",
        wgsl: conv_wgsl!("conv/backward_input_vec4.wgsl"),
        overrides: OVERRIDES,
    };
    // The scalar kernel is already the GPU's: an invocation per input element.
    let preferred = preferred(variant, Some(vec4), None);
    Kernel::new(ctx, &[Read, Read, Read, ReadWrite], Compile::OnFirstBind, scalar, preferred)
}

/// Bindings: x, dz, grads (the split kernel, which `variant` Gpu chooses: its partial results).
pub fn backward_weights(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let scalar = Source {
        label: "conv2d_backward_weights",
        wgsl: conv_wgsl!("conv/backward_weights.wgsl"),
        overrides: OVERRIDES,
    };
    let vec4 = Source {
        label: "conv2d_backward_weights_vec4",
        wgsl: conv_wgsl!("conv/backward_weights_vec4.wgsl"),
        overrides: OVERRIDES,
    };
    let tiled = Source {
        label: "conv2d_backward_weights_partials",
        wgsl: conv_wgsl!("conv/backward_weights_partials.wgsl"),
        overrides: &[],
    };
    let preferred = preferred(variant, Some(vec4), Some(tiled));
    Kernel::new(ctx, &[Read, Read, ReadWrite], Compile::OnFirstBind, scalar, preferred)
}

/// What the conv forward pass reads and writes.
pub struct ConvForwardIo<'a> {
    pub x: &'a TrackedBuffer,
    pub params: &'a TrackedBuffer,
    pub y: &'a TrackedBuffer,
}

/// `y = act(conv(x, kernel) + bias)` over NHWC images, ReLU when `relu`.
pub fn bind_forward(b: &Binder, kernel: &Kernel, layer: &ConvLayout, relu: bool, io: ConvForwardIo) -> BoundKernel {
    b.bind(kernel, &ConvKernelShape::forward(layer, relu), &[io.x, io.params, io.y])
}

/// What the conv gradient at its input reads and writes.
pub struct ConvBackwardInputIo<'a> {
    pub dy: &'a TrackedBuffer,
    pub params: &'a TrackedBuffer,
    /// The layer below's output (this layer's input), for its ReLU mask.
    pub below: &'a TrackedBuffer,
    pub dx: &'a TrackedBuffer,
}

/// The gradient at the input, masked by ReLU'(below) when `relu_below`.
pub fn bind_backward_input(
    b: &Binder,
    kernel: &Kernel,
    layer: &ConvLayout,
    relu_below: bool,
    io: ConvBackwardInputIo,
) -> BoundKernel {
    b.bind(kernel, &ConvKernelShape::backward_input(layer, relu_below), &[io.dy, io.params, io.below, io.dx])
}

/// What the conv weight gradient reads and writes.
pub struct ConvBackwardWeightsIo<'a> {
    pub x: &'a TrackedBuffer,
    pub dy: &'a TrackedBuffer,
    /// The gradients of every parameter: the layer's dkernel and dbias are written at its offsets.
    pub grads: &'a TrackedBuffer,
}

/// `(dkernel, dbias)` for batches of up to `max_rows` rows: in the GPU set partial sums over
/// chunks of the batch's positions then their sum in order; else one dispatch per chunk of the
/// batch's rows (lavapipe caps loop lengths).
pub fn bind_backward_weights(
    b: &Binder,
    kernels: &Kernels,
    layer: &ConvLayout,
    max_rows: usize,
    io: ConvBackwardWeightsIo,
) -> Vec<BoundKernel> {
    let kernel = &kernels.conv2d_backward_weights;
    if kernel.variant() == KernelVariant::Gpu {
        let shape = ConvKernelShape::backward_weights_split(layer, max_rows);
        let partials = b.scratch("conv weight partials", shape.partial_floats());
        let sum = partials::SumPartialsShape::kernel_and_bias(
            shape.shape.result_rows() as usize * layer.filters,
            shape.shape.chunks as usize,
            layer.kernel_len(),
            layer.kernel_offset,
            layer.bias_offset,
        );
        return vec![
            b.bind(kernel, &shape, &[io.x, io.dy, &partials]),
            partials::bind_sum(b, &kernels.sum_partials, &sum, &partials, io.grads),
        ];
    }
    ConvKernelShape::backward_weights_chunks(layer, max_rows)
        .iter()
        .map(|shape| b.bind(kernel, shape, &[io.x, io.dy, io.grads]))
        .collect()
}
