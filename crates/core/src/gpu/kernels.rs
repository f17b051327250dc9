//! Host side of the WGSL kernels in `shaders/`: their pipelines, the uniform structs that mirror
//! each kernel's `Shape`, and how each is dispatched. Every kernel binds a per-step uniform
//! (`Step`, at a dynamic offset, so many steps share one command buffer) at binding 0, its
//! `Shape` at binding 1, and storage buffers from binding 2 on.

use std::sync::Mutex;

use bytemuck::{Pod, Zeroable};

use crate::model::{ConvSlot, PoolSlot};

use super::context::{GpuContext, TrackedBuffer};

/// Bytes between consecutive step slots: WebGPU's minimum uniform-offset alignment.
pub const STEP_STRIDE: u64 = 256;

/// Per-step values, one slot per step of a chunk. Mirrors `struct Step` in every kernel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct StepUniform {
    /// First position of this batch in the `order` buffer.
    pub batch_start: u32,
    /// Samples in this batch (the last batch of an epoch may be short).
    pub rows: u32,
    /// 1-based optimizer step.
    pub t: u32,
    /// Bias-corrected learning rate for this step.
    pub lr_t: f32,
    /// Per-step seed for stochastic layers.
    pub seed: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct GatherShape {
    pub pixels: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct DenseForwardShape {
    pub inputs: u32,
    pub units: u32,
    pub kernel_offset: u32,
    pub bias_offset: u32,
    pub relu: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct DenseBackwardInputShape {
    pub inputs: u32,
    pub units: u32,
    pub kernel_offset: u32,
    pub relu_below: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct DenseBackwardWeightsShape {
    pub inputs: u32,
    pub units: u32,
    pub kernel_offset: u32,
    pub bias_offset: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct SoftmaxCrossEntropyShape {
    pub classes: u32,
    pub metrics_slot: u32,
    pub write_gradient: u32,
    /// The batch rows this dispatch handles (see [`softmax_cross_entropy_shapes`]).
    pub first_row: u32,
    pub row_count: u32,
    pub _pad: [u32; 3],
}

/// The shapes of the softmax-CE dispatches for batches of up to `max_rows` rows, one per chunk of
/// rows that one invocation can loop over within [`LOOP_ITERATIONS_BUDGET`] (1,000 rows of 10
/// classes: one dispatch for any usual batch).
pub fn softmax_cross_entropy_shapes(
    classes: usize,
    metrics_slot: u32,
    write_gradient: bool,
    max_rows: usize,
) -> Vec<SoftmaxCrossEntropyShape> {
    row_chunks(3 * classes, max_rows)
        .map(|(first_row, row_count)| SoftmaxCrossEntropyShape {
            classes: classes as u32,
            metrics_slot,
            write_gradient: u32::from(write_gradient),
            first_row,
            row_count,
            _pad: [0; 3],
        })
        .collect()
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct AdamShape {
    pub count: u32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct DropoutShape {
    pub width: u32,
    pub rate: f32,
    pub index: u32,
    /// Forward: 1 in training, 0 (identity) at evaluation. Backward: relu_below.
    pub flag: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct BatchNormForwardShape {
    pub width: u32,
    pub gamma_offset: u32,
    pub beta_offset: u32,
    pub moving_mean_offset: u32,
    pub moving_variance_offset: u32,
    pub training: u32,
    pub relu: u32,
    pub momentum: f32,
    pub epsilon: f32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct BatchNormBackwardShape {
    pub width: u32,
    pub gamma_offset: u32,
    pub beta_offset: u32,
    pub relu_below: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct L2RegularizerShape {
    pub ranges: u32,
    pub l2: f32,
    pub metrics_slot: u32,
    pub _pad: u32,
}

/// Shared by the three conv kernels; `flag` is `relu` (forward), `relu_below` (backward input)
/// or `accumulate` (weight gradient: add to grads instead of overwriting them). The weight
/// gradient sums batch rows `first_row..first_row + row_count` only (see
/// [`conv2d_backward_weights_shapes`]); the other kernels ignore both.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
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
    pub flag: u32,
    pub first_row: u32,
    pub row_count: u32,
}

impl ConvShape {
    pub fn new(slot: &ConvSlot, flag: bool) -> Self {
        ConvShape {
            height: slot.height as u32,
            width: slot.width as u32,
            channels: slot.channels as u32,
            filters: slot.filters as u32,
            kernel_size: slot.kernel_size as u32,
            out_height: slot.out_height() as u32,
            out_width: slot.out_width() as u32,
            kernel_offset: slot.kernel_offset as u32,
            bias_offset: slot.bias_offset as u32,
            flag: u32::from(flag),
            first_row: 0,
            row_count: u32::MAX,
        }
    }
}

/// Loop iterations one invocation may run in all. llvmpipe (lavapipe, Mesa 22.3) silently ends
/// any loop of an invocation after 65,535 iterations in all (its guard against infinite loops),
/// so a kernel that sums a whole batch of conv outputs in one thread would drop the batch's
/// last rows there; every loop of ours stays well under.
pub const LOOP_ITERATIONS_BUDGET: usize = 30_000;

/// Batches of up to `max_rows` rows as `(first_row, row_count)` chunks, in order, each as many
/// rows as one invocation may loop over within [`LOOP_ITERATIONS_BUDGET`] when a row costs
/// `iterations_per_row` (at least one chunk, at least one row each; a chunk past a short batch
/// is empty when dispatched).
fn row_chunks(iterations_per_row: usize, max_rows: usize) -> impl Iterator<Item = (u32, u32)> {
    let chunk = (LOOP_ITERATIONS_BUDGET / iterations_per_row).max(1);
    (0..max_rows.div_ceil(chunk).max(1)).map(move |i| ((i * chunk) as u32, chunk as u32))
}

/// The shapes of the conv weight-gradient dispatches for batches of up to `max_rows` rows, in
/// order: each sums the next chunk of rows (its loops over their outputs, output rows and dbias
/// within the budget), the first overwriting grads, the others adding to them (a chunk past a
/// short batch adds nothing).
pub fn conv2d_backward_weights_shapes(slot: &ConvSlot, max_rows: usize) -> Vec<ConvShape> {
    let per_row = 2 * slot.out_height() * (slot.out_width() + 1) + 1;
    row_chunks(per_row, max_rows)
        .map(|(first_row, row_count)| ConvShape { first_row, row_count, ..ConvShape::new(slot, first_row > 0) })
        .collect()
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct PoolShape {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub relu_below: u32,
    pub _pad: [u32; 2],
}

impl PoolShape {
    pub fn new(slot: &PoolSlot, relu_below: bool) -> Self {
        PoolShape {
            height: slot.height as u32,
            width: slot.width as u32,
            channels: slot.channels as u32,
            out_height: slot.out_height() as u32,
            out_width: slot.out_width() as u32,
            relu_below: u32::from(relu_below),
            _pad: [0; 2],
        }
    }
}

/// u32 words per metrics slot: loss sum, its Kahan compensation, hits, samples.
pub const METRICS_SLOT_WORDS: usize = 4;

/// How a storage binding is accessed, as declared in the WGSL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    ReadWrite,
}
use Access::{Read, ReadWrite};

/// How a kernel's workgroup grid follows the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grid {
    /// `(x, rows, 1)`.
    PerRow { x: u32 },
    /// `(x, rows, z)`.
    PerRowLayers { x: u32, z: u32 },
    /// `(ceil(cols / tile), ceil(rows / tile), 1)`: a matrix product whose workgroups each cover
    /// `tile × tile` outputs, over the batch's rows unless `rows` is fixed. The tile is the bound
    /// implementation's ([`TILE`] or [`VEC4_TILE`]).
    Tiles { cols: u32, rows: Option<u32>, tile: u32 },
    /// One thread per `per_thread` of `count` elements, 256 threads per workgroup, the groups
    /// folded into a second dimension past 65,535.
    Elements { count: u32, per_thread: u32 },
    /// `(ceil(rows · pixels_per_row / 1024), y, 1)`: the conv kernels whose 64-thread workgroups
    /// each cover 1024 pixels of the batch (16 per thread).
    PixelBlocks { pixels_per_row: u32, y: u32 },
    /// Independent of the batch.
    Fixed([u32; 3]),
}

impl Grid {
    pub fn workgroups(self, rows: u32) -> [u32; 3] {
        match self {
            Grid::PerRow { x } => [x, rows, 1],
            Grid::PerRowLayers { x, z } => [x, rows, z],
            Grid::Tiles { cols, rows: fixed, tile } => [cols.div_ceil(tile), fixed.unwrap_or(rows).div_ceil(tile), 1],
            Grid::Elements { count, per_thread } => {
                let groups = count.div_ceil(per_thread).div_ceil(256);
                let y = groups.div_ceil(65_535).max(1);
                [groups.div_ceil(y), y, 1]
            }
            Grid::PixelBlocks { pixels_per_row, y } => [(rows * pixels_per_row).div_ceil(64 * CONV_VEC4_BLOCK), y, 1],
            Grid::Fixed(size) => size,
        }
    }

    /// The grid of the vec4 implementation of the same kernel.
    fn for_vec4(self) -> Grid {
        match self {
            Grid::Tiles { cols, rows, .. } => Grid::Tiles { cols, rows, tile: VEC4_TILE },
            Grid::Elements { count, .. } => Grid::Elements { count, per_thread: 4 },
            other => other,
        }
    }
}

/// Outputs per workgroup along each axis of the 4×4 register-blocked kernels (8 threads × 4).
pub const TILE: u32 = 32;
/// The same for the vec4 kernels (8 threads × 16).
pub const VEC4_TILE: u32 = 128;

/// The implementations of a kernel that has more than one (the dense kernels and Adam). Every
/// variant does the same maths with the same bindings and `Shape`; which one is fastest depends
/// on the adapter ([`super::autotune`] measures it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelVariant {
    /// The kernel's own file (`dense_forward.wgsl`, …): scalar loads, any shape; the dense
    /// kernels compute 4×4 outputs per thread.
    Scalar,
    /// `*_vec4.wgsl`: vec4 loads and stores; the dense kernels compute 16×16 outputs per thread,
    /// so each loaded value feeds 8 multiply-adds (2 in the scalar kernels). Only for buffers of whole vec4s
    /// and (dense) sizes and offsets that are multiples of 4: elsewhere the scalar kernel runs.
    Vec4,
}

impl KernelVariant {
    pub const ALL: [KernelVariant; 2] = [KernelVariant::Scalar, KernelVariant::Vec4];

    pub fn as_str(self) -> &'static str {
        match self {
            KernelVariant::Scalar => "scalar",
            KernelVariant::Vec4 => "vec4",
        }
    }
}

/// A kernel's `Shape` uniform as bytes, whatever its struct (so one closure can bind any kernel).
pub trait ShapeBytes {
    fn bytes(&self) -> &[u8];
}

impl<T: Pod> ShapeBytes for T {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}

/// One compiled kernel and the layout of its bindings.
pub struct Kernel {
    module: wgpu::ShaderModule,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    label: &'static str,
    /// WGSL `override` constants set from the shape's first fields, in order: such a kernel gets
    /// one pipeline per distinct shape, compiled when first bound.
    overrides: &'static [&'static str],
    /// Compiled pipelines by the values of `overrides` (one, keyed by nothing, without them).
    pipelines: Mutex<Vec<(Vec<u32>, wgpu::ComputePipeline)>>,
    /// A faster implementation for aligned shapes, which [`Kernel::bind`] uses whenever it can.
    vec4: Option<Box<Vec4Variant>>,
}

/// A vec4 implementation of a kernel: usable when the shape fields at `aligned` are multiples
/// of 4 and every storage buffer is a whole number of vec4s long.
struct Vec4Variant {
    kernel: Kernel,
    aligned: &'static [usize],
    grid: Option<fn(&[u32]) -> Grid>,
}

/// A vec4 implementation's WGSL: the same bindings and `Shape`, needing the shape fields at
/// `aligned` (indices of u32 words) to be multiples of 4, with `overrides` set from the first
/// fields. Its grid is `grid` of the shape's words where it covers the outputs differently from
/// the scalar kernel, else the scalar grid's [`Grid::for_vec4`].
struct Vec4Source {
    label: &'static str,
    source: &'static str,
    aligned: &'static [usize],
    overrides: &'static [&'static str],
    grid: Option<fn(&[u32]) -> Grid>,
}

/// The `override` constants of the dense kernels: the layer's sizes (the first two fields of
/// their shapes). lavapipe runs them several times faster with the sizes known at compile time
/// (5× for dense_backward_input_vec4): it inlines uniforms only into pipelines whose uniforms
/// have no dynamic offset, and the step uniform has one. Not on the web: SwiftShader compiles
/// every pipeline for up to a second at its first dispatch and runs these no faster specialised.
const SIZE_OVERRIDES: &[&str] = if cfg!(target_arch = "wasm32") { &[] } else { &["INPUTS", "UNITS"] };

impl Vec4Variant {
    fn applies(&self, shape: &[u8], storage: &[&TrackedBuffer]) -> bool {
        let sizes: Vec<u64> = storage.iter().map(|buffer| buffer.size()).collect();
        vec4_applies(&shape_words(shape), self.aligned, &sizes)
    }
}

/// A `Shape` uniform's bytes as the u32 words every field of it is.
fn shape_words(shape: &[u8]) -> Vec<u32> {
    shape.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect()
}

/// Whether a vec4 kernel can take a shape whose words at the indices `aligned` must be multiples
/// of 4, bound to storage buffers of `sizes` bytes (whole vec4s, else the last one would be cut).
pub fn vec4_applies(shape_words: &[u32], aligned: &[usize], sizes: &[u64]) -> bool {
    aligned.iter().all(|&i| shape_words.get(i).is_some_and(|w| w % 4 == 0)) && sizes.iter().all(|size| size % 16 == 0)
}

impl Kernel {
    fn new(ctx: &GpuContext, label: &'static str, source: &str, storage: &[Access]) -> Self {
        let kernel = Kernel::with_overrides(ctx, label, source, storage, &[]);
        // Compiled now: the kernel has one pipeline whatever it is bound with.
        kernel.pipeline(ctx, &[]);
        kernel
    }

    /// A kernel whose one pipeline is compiled when first bound: the CNN's kernels, which an MLP
    /// never binds (on the web each pipeline costs up to a second of start-up).
    fn lazy(ctx: &GpuContext, label: &'static str, source: &str, storage: &[Access]) -> Self {
        Kernel::with_overrides(ctx, label, source, storage, &[])
    }

    /// A kernel whose `overrides` are set from the first shape fields of each bind.
    fn with_overrides(
        ctx: &GpuContext,
        label: &'static str,
        source: &str,
        storage: &[Access],
        overrides: &'static [&'static str],
    ) -> Self {
        let uniform = |binding, dynamic| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: dynamic,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = vec![uniform(0, true), uniform(1, false)];
        entries.extend(storage.iter().enumerate().map(|(i, access)| wgpu::BindGroupLayoutEntry {
            binding: 2 + i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: *access == Read },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }));
        let device = &ctx.device;
        let layout =
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        Kernel { module, layout, pipeline_layout, label, overrides, pipelines: Mutex::default(), vec4: None }
    }

    /// The pipeline for a shape starting with `shape_words` (compiled on first use).
    fn pipeline(&self, ctx: &GpuContext, shape_words: &[u32]) -> wgpu::ComputePipeline {
        let key: Vec<u32> = shape_words.iter().copied().take(self.overrides.len()).collect();
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, pipeline)) = pipelines.iter().find(|(k, _)| *k == key) {
            return pipeline.clone();
        }
        let constants: Vec<(&str, f64)> =
            self.overrides.iter().zip(&key).map(|(&name, &value)| (name, f64::from(value))).collect();
        let pipeline = ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(self.label),
            layout: Some(&self.pipeline_layout),
            module: &self.module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
            cache: None,
        });
        pipelines.push((key, pipeline.clone()));
        pipeline
    }

    /// This kernel with `variant`'s implementation: `vec4` for the vec4 variant.
    fn with_variant(self, ctx: &GpuContext, variant: KernelVariant, vec4: Vec4Source, storage: &[Access]) -> Self {
        match variant {
            KernelVariant::Scalar => self,
            KernelVariant::Vec4 => {
                let kernel = Kernel::with_overrides(ctx, vec4.label, vec4.source, storage, vec4.overrides);
                let variant = Vec4Variant { kernel, aligned: vec4.aligned, grid: vec4.grid };
                Kernel { vec4: Some(Box::new(variant)), ..self }
            }
        }
    }

    /// Binds the step buffer, a fresh uniform holding `shape`, and the storage buffers in order.
    pub fn bind<S: Pod>(
        &self,
        ctx: &GpuContext,
        steps: &TrackedBuffer,
        shape: &S,
        storage: &[&TrackedBuffer],
        grid: Grid,
    ) -> BoundKernel {
        self.bind_bytes(ctx, steps, bytemuck::bytes_of(shape), storage, grid)
    }

    /// [`Kernel::bind`] with the shape given as its bytes.
    pub fn bind_bytes(
        &self,
        ctx: &GpuContext,
        steps: &TrackedBuffer,
        shape: &[u8],
        storage: &[&TrackedBuffer],
        grid: Grid,
    ) -> BoundKernel {
        match &self.vec4 {
            Some(variant) if variant.applies(shape, storage) => {
                let grid = variant.grid.map_or(grid.for_vec4(), |vec4_grid| vec4_grid(&shape_words(shape)));
                variant.kernel.bind_bytes(ctx, steps, shape, storage, grid)
            }
            _ => self.bind_exactly(ctx, steps, shape, storage, grid),
        }
    }

    fn bind_exactly(
        &self,
        ctx: &GpuContext,
        steps: &TrackedBuffer,
        shape: &[u8],
        storage: &[&TrackedBuffer],
        grid: Grid,
    ) -> BoundKernel {
        let shape_buffer = ctx.uniform_with(self.label, shape);
        let step_binding = wgpu::BufferBinding {
            buffer: steps,
            offset: 0,
            size: wgpu::BufferSize::new(std::mem::size_of::<StepUniform>() as u64),
        };
        let mut entries = vec![
            wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::Buffer(step_binding) },
            wgpu::BindGroupEntry { binding: 1, resource: shape_buffer.as_entire_binding() },
        ];
        entries.extend(
            storage.iter().enumerate().map(|(i, buffer)| wgpu::BindGroupEntry {
                binding: 2 + i as u32,
                resource: buffer.as_entire_binding(),
            }),
        );
        let group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.label),
            layout: &self.layout,
            entries: &entries,
        });
        let mut buffers = vec![steps.clone(), shape_buffer];
        buffers.extend(storage.iter().map(|&buffer| buffer.clone()));
        let pipeline = self.pipeline(ctx, &shape_words(shape));
        BoundKernel { pipeline, group, grid, label: self.label, _buffers: buffers }
    }
}

/// A kernel with its buffers bound, ready to be dispatched for any step slot.
pub struct BoundKernel {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    grid: Grid,
    label: &'static str,
    /// Every buffer the bind group uses, kept alive (and counted) as long as it is.
    _buffers: Vec<TrackedBuffer>,
}

impl BoundKernel {
    /// Records one dispatch reading step slot `slot` of the step buffer, for a batch of `rows`.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, slot: u32, rows: u32) {
        let [x, y, z] = self.grid.workgroups(rows);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[slot * STEP_STRIDE as u32]);
        pass.dispatch_workgroups(x, y, z);
    }

    /// The implementation bound, e.g. `dense_forward_vec4`.
    pub fn label(&self) -> &'static str {
        self.label
    }
}

/// Every training kernel, compiled once per device.
pub struct Kernels {
    pub gather_batch: Kernel,
    pub dense_forward: Kernel,
    pub dense_backward_input: Kernel,
    pub dense_backward_weights: Kernel,
    pub softmax_cross_entropy: Kernel,
    pub adam: Kernel,
    pub dropout_forward: Kernel,
    pub dropout_backward: Kernel,
    pub batch_norm_forward: Kernel,
    pub batch_norm_backward: Kernel,
    pub l2_regularizer: Kernel,
    pub conv2d_forward: Kernel,
    pub conv2d_backward_input: Kernel,
    pub conv2d_backward_weights: Kernel,
    pub max_pool_forward: Kernel,
    pub max_pool_backward: Kernel,
}

impl Kernels {
    /// Compiles every kernel, those with several implementations in the variants
    /// [`super::autotune::choice`] gives for this adapter.
    pub fn new(ctx: &GpuContext) -> Self {
        let choice = super::autotune::choice(ctx);
        Kernels {
            gather_batch: gather_batch(ctx),
            dense_forward: dense_forward_with(ctx, choice.forward),
            dense_backward_input: dense_backward_input_with(ctx, choice.backward_input),
            dense_backward_weights: dense_backward_weights_with(ctx, choice.backward_weights),
            softmax_cross_entropy: softmax_cross_entropy(ctx),
            adam: adam_with(ctx, choice.adam),
            dropout_forward: dropout_forward(ctx),
            dropout_backward: dropout_backward(ctx),
            batch_norm_forward: batch_norm_forward(ctx),
            batch_norm_backward: batch_norm_backward(ctx),
            l2_regularizer: l2_regularizer(ctx),
            // Not tuned: the vec4 conv kernels wherever the shape allows (channels, filters
            // multiples of 4), 3–7× faster than the scalar ones on lavapipe.
            conv2d_forward: conv2d_forward_with(ctx, KernelVariant::Vec4),
            conv2d_backward_input: conv2d_backward_input_with(ctx, KernelVariant::Vec4),
            conv2d_backward_weights: conv2d_backward_weights_with(ctx, KernelVariant::Vec4),
            max_pool_forward: max_pool_forward(ctx),
            max_pool_backward: max_pool_backward(ctx),
        }
    }
}

pub fn gather_batch(ctx: &GpuContext) -> Kernel {
    let source = include_str!("../../../../shaders/gather_batch.wgsl");
    Kernel::new(ctx, "gather_batch", source, &[Read, Read, Read, ReadWrite, ReadWrite])
}

pub fn dense_forward(ctx: &GpuContext) -> Kernel {
    dense_forward_with(ctx, KernelVariant::Scalar)
}

pub fn dense_forward_with(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    let storage = [Read, Read, ReadWrite];
    let source = include_str!("../../../../shaders/dense_forward.wgsl");
    let vec4_source = include_str!("../../../../shaders/dense_forward_vec4.wgsl");
    // inputs, units, kernel_offset, bias_offset
    let vec4 = Vec4Source {
        label: "dense_forward_vec4",
        source: vec4_source,
        aligned: &[0, 1, 2, 3],
        overrides: SIZE_OVERRIDES,
        grid: None,
    };
    Kernel::with_overrides(ctx, "dense_forward", source, &storage, SIZE_OVERRIDES)
        .with_variant(ctx, variant, vec4, &storage)
}

pub fn dense_backward_input(ctx: &GpuContext) -> Kernel {
    dense_backward_input_with(ctx, KernelVariant::Scalar)
}

pub fn dense_backward_input_with(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    let storage = [Read, Read, Read, ReadWrite];
    let source = include_str!("../../../../shaders/dense_backward_input.wgsl");
    let vec4_source = include_str!("../../../../shaders/dense_backward_input_vec4.wgsl");
    // inputs, units, kernel_offset
    let vec4 = Vec4Source {
        label: "dense_backward_input_vec4",
        source: vec4_source,
        aligned: &[0, 1, 2],
        overrides: SIZE_OVERRIDES,
        grid: None,
    };
    Kernel::with_overrides(ctx, "dense_backward_input", source, &storage, SIZE_OVERRIDES)
        .with_variant(ctx, variant, vec4, &storage)
}

pub fn dense_backward_weights(ctx: &GpuContext) -> Kernel {
    dense_backward_weights_with(ctx, KernelVariant::Scalar)
}

pub fn dense_backward_weights_with(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    let storage = [Read, Read, ReadWrite];
    let source = include_str!("../../../../shaders/dense_backward_weights.wgsl");
    let vec4_source = include_str!("../../../../shaders/dense_backward_weights_vec4.wgsl");
    // inputs, units, kernel_offset, bias_offset
    let vec4 = Vec4Source {
        label: "dense_backward_weights_vec4",
        source: vec4_source,
        aligned: &[0, 1, 2, 3],
        overrides: SIZE_OVERRIDES,
        grid: None,
    };
    Kernel::with_overrides(ctx, "dense_backward_weights", source, &storage, SIZE_OVERRIDES)
        .with_variant(ctx, variant, vec4, &storage)
}

pub fn softmax_cross_entropy(ctx: &GpuContext) -> Kernel {
    let source = include_str!("../../../../shaders/softmax_cross_entropy.wgsl");
    Kernel::new(ctx, "softmax_cross_entropy", source, &[Read, Read, ReadWrite, ReadWrite, ReadWrite])
}

pub fn adam(ctx: &GpuContext) -> Kernel {
    adam_with(ctx, KernelVariant::Scalar)
}

/// Adam, with its vec4 implementation for the vec4 variant (for any count: it needs no aligned
/// shape field, only buffers of whole vec4s).
pub fn adam_with(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    let storage = [ReadWrite, Read, ReadWrite, ReadWrite];
    let source = include_str!("../../../../shaders/adam.wgsl");
    let vec4_source = include_str!("../../../../shaders/adam_vec4.wgsl");
    let vec4 = Vec4Source { label: "adam_vec4", source: vec4_source, aligned: &[], overrides: &[], grid: None };
    Kernel::new(ctx, "adam", source, &storage).with_variant(ctx, variant, vec4, &storage)
}

pub fn dropout_forward(ctx: &GpuContext) -> Kernel {
    let source = concat!(
        include_str!("../../../../shaders/random.wgsl"),
        include_str!("../../../../shaders/dropout_forward.wgsl")
    );
    Kernel::new(ctx, "dropout_forward", source, &[Read, ReadWrite])
}

pub fn dropout_backward(ctx: &GpuContext) -> Kernel {
    let source = concat!(
        include_str!("../../../../shaders/random.wgsl"),
        include_str!("../../../../shaders/dropout_backward.wgsl")
    );
    Kernel::new(ctx, "dropout_backward", source, &[Read, Read, ReadWrite])
}

pub fn batch_norm_forward(ctx: &GpuContext) -> Kernel {
    let source = include_str!("../../../../shaders/batch_norm_forward.wgsl");
    Kernel::new(ctx, "batch_norm_forward", source, &[Read, ReadWrite, ReadWrite, ReadWrite])
}

pub fn batch_norm_backward(ctx: &GpuContext) -> Kernel {
    let source = include_str!("../../../../shaders/batch_norm_backward.wgsl");
    Kernel::new(ctx, "batch_norm_backward", source, &[Read, Read, Read, Read, Read, ReadWrite, ReadWrite])
}

pub fn l2_regularizer(ctx: &GpuContext) -> Kernel {
    let source = include_str!("../../../../shaders/l2_regularizer.wgsl");
    Kernel::new(ctx, "l2_regularizer", source, &[Read, Read, ReadWrite, ReadWrite])
}

/// A conv kernel's WGSL: `conv_shape.wgsl` (Step, Shape, the size constants) then the file.
macro_rules! conv_source {
    ($file:literal) => {
        concat!(
            include_str!("../../../../shaders/conv_shape.wgsl"),
            include_str!(concat!("../../../../shaders/", $file))
        )
    };
}

/// The `override` constants of the vec4 conv kernels: the first seven fields of [`ConvShape`]
/// (none on the web, as [`SIZE_OVERRIDES`]).
const CONV_OVERRIDES: &[&str] = if cfg!(target_arch = "wasm32") {
    &[]
} else {
    &["HEIGHT", "WIDTH", "CHANNELS", "FILTERS", "KERNEL_SIZE", "OUT_HEIGHT", "OUT_WIDTH"]
};

/// The [`ConvShape`] fields the vec4 conv kernels need aligned: channels, filters,
/// kernel_offset, bias_offset.
const CONV_ALIGNED: &[usize] = &[2, 3, 7, 8];

pub fn conv2d_forward(ctx: &GpuContext) -> Kernel {
    conv2d_forward_with(ctx, KernelVariant::Scalar)
}

pub fn conv2d_forward_with(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    let storage = [Read, Read, ReadWrite];
    let source = conv_source!("conv2d_forward.wgsl");
    let vec4 = Vec4Source {
        label: "conv2d_forward_vec4",
        source: conv_source!("conv2d_forward_vec4.wgsl"),
        aligned: CONV_ALIGNED,
        overrides: CONV_OVERRIDES,
        // The scalar kernel's grid: both compute 16 pixels × 16 filters per thread.
        grid: None,
    };
    Kernel::with_overrides(ctx, "conv2d_forward", source, &storage, CONV_OVERRIDES)
        .with_variant(ctx, variant, vec4, &storage)
}

pub fn conv2d_backward_input(ctx: &GpuContext) -> Kernel {
    conv2d_backward_input_with(ctx, KernelVariant::Scalar)
}

pub fn conv2d_backward_input_with(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    let storage = [Read, Read, Read, ReadWrite];
    let source = conv_source!("conv2d_backward_input.wgsl");
    let vec4 = Vec4Source {
        label: "conv2d_backward_input_vec4",
        source: conv_source!("conv2d_backward_input_vec4.wgsl"),
        aligned: CONV_ALIGNED,
        overrides: CONV_OVERRIDES,
        grid: Some(conv2d_backward_input_vec4_grid),
    };
    Kernel::lazy(ctx, "conv2d_backward_input", source, &storage).with_variant(ctx, variant, vec4, &storage)
}

pub fn conv2d_backward_weights(ctx: &GpuContext) -> Kernel {
    conv2d_backward_weights_with(ctx, KernelVariant::Scalar)
}

pub fn conv2d_backward_weights_with(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    let storage = [Read, Read, ReadWrite];
    let source = conv_source!("conv2d_backward_weights.wgsl");
    let vec4 = Vec4Source {
        label: "conv2d_backward_weights_vec4",
        source: conv_source!("conv2d_backward_weights_vec4.wgsl"),
        aligned: CONV_ALIGNED,
        overrides: CONV_OVERRIDES,
        grid: Some(conv2d_backward_weights_vec4_grid),
    };
    Kernel::with_overrides(ctx, "conv2d_backward_weights", source, &storage, CONV_OVERRIDES)
        .with_variant(ctx, variant, vec4, &storage)
}

pub fn max_pool_forward(ctx: &GpuContext) -> Kernel {
    let source = include_str!("../../../../shaders/max_pool_forward.wgsl");
    Kernel::lazy(ctx, "max_pool_forward", source, &[Read, ReadWrite])
}

pub fn max_pool_backward(ctx: &GpuContext) -> Kernel {
    let source = include_str!("../../../../shaders/max_pool_backward.wgsl");
    Kernel::lazy(ctx, "max_pool_backward", source, &[Read, Read, ReadWrite])
}

/// Grids for each kernel, from the shapes they are bound with.
pub fn gather_grid(pixels: usize) -> Grid {
    Grid::PerRow { x: (pixels as u32 / 4).div_ceil(64) }
}

pub fn dense_forward_grid(units: usize) -> Grid {
    Grid::Tiles { cols: units as u32, rows: None, tile: TILE }
}

pub fn dense_backward_input_grid(inputs: usize) -> Grid {
    Grid::Tiles { cols: inputs as u32, rows: None, tile: TILE }
}

pub fn dense_backward_weights_grid(inputs: usize, units: usize) -> Grid {
    Grid::Tiles { cols: units as u32, rows: Some(inputs as u32), tile: TILE }
}

/// One thread per element, 256 per workgroup along each row.
pub fn elementwise_grid(width: usize) -> Grid {
    Grid::PerRow { x: (width as u32).div_ceil(256) }
}

/// Conv forward (either implementation): a thread per 16 output pixels × 16 filters.
pub fn conv2d_forward_grid(slot: &ConvSlot) -> Grid {
    let pixels_per_row = (slot.out_height() * slot.out_width()) as u32;
    Grid::PixelBlocks { pixels_per_row, y: (slot.filters as u32).div_ceil(CONV_VEC4_BLOCK) }
}

/// Conv backward to the input: a thread per input element.
pub fn conv2d_backward_input_grid(slot: &ConvSlot) -> Grid {
    Grid::PerRowLayers { x: ((slot.height * slot.width) as u32).div_ceil(64), z: slot.channels as u32 }
}

/// Conv weight gradient: a thread per four kernel rows (tap and channel) × four filters, 16
/// threads per workgroup.
pub fn conv2d_backward_weights_grid(slot: &ConvSlot) -> Grid {
    let kernel_rows = (slot.kernel_size * slot.kernel_size * slot.channels) as u32;
    Grid::Fixed([kernel_rows.div_ceil(64), slot.filters as u32 / 4, 1])
}

/// Pixels × columns each thread of the vec4 conv kernels computes along either axis.
const CONV_VEC4_BLOCK: u32 = 16;

/// The vec4 conv backward to the input: a thread per 16 input pixels × 16 channels.
fn conv2d_backward_input_vec4_grid(words: &[u32]) -> Grid {
    let (height, width, channels) = (words[0], words[1], words[2]);
    Grid::PixelBlocks { pixels_per_row: height * width, y: channels.div_ceil(CONV_VEC4_BLOCK) }
}

/// The vec4 conv weight gradient: a thread per four channels of one tap × 16 filters, 16 threads
/// per workgroup.
fn conv2d_backward_weights_vec4_grid(words: &[u32]) -> Grid {
    let (channels, filters, kernel_size) = (words[2], words[3], words[4]);
    let quads = kernel_size * kernel_size * channels / 4;
    Grid::Fixed([quads.div_ceil(16), filters.div_ceil(CONV_VEC4_BLOCK), 1])
}

/// Pooling forward: a thread per element of the image (`outputs` elements per sample).
pub fn max_pool_grid(elements: usize) -> Grid {
    Grid::PerRow { x: (elements as u32).div_ceil(64) }
}

/// Pooling backward: a thread per 2×2 block of the input (rounded up) and channel.
pub fn max_pool_backward_grid(slot: &PoolSlot) -> Grid {
    max_pool_grid(slot.height.div_ceil(2) * slot.width.div_ceil(2) * slot.channels)
}

/// One thread per feature.
pub fn per_feature_grid(width: usize) -> Grid {
    Grid::Fixed([(width as u32).div_ceil(64), 1, 1])
}

pub fn adam_grid(count: usize) -> Grid {
    Grid::Elements { count: count as u32, per_thread: 1 }
}

/// A step buffer of `slots` slots.
pub fn step_buffer(ctx: &GpuContext, slots: usize) -> TrackedBuffer {
    ctx.create_buffer(&wgpu::BufferDescriptor {
        label: Some("steps"),
        size: slots.max(1) as u64 * STEP_STRIDE,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Writes step values into consecutive slots from slot 0.
pub fn write_steps(ctx: &GpuContext, buffer: &wgpu::Buffer, steps: &[StepUniform]) {
    let mut bytes = vec![0u8; steps.len() * STEP_STRIDE as usize];
    for (i, step) in steps.iter().enumerate() {
        let at = i * STEP_STRIDE as usize;
        bytes[at..at + std::mem::size_of::<StepUniform>()].copy_from_slice(bytemuck::bytes_of(step));
    }
    ctx.queue.write_buffer(buffer, 0, &bytes);
}
