//! `batch_norm/forward.wgsl` and `batch_norm/backward.wgsl`: Keras's BatchNormalization, batch
//! statistics in training (moving ones updated), moving statistics at evaluation. For GPUs the
//! batch is split into chunks of rows: the statistics as partial (count, mean, M2) per chunk
//! merged in order (`batch_norm/statistics_{partials,combine}.wgsl`) then an elementwise
//! `batch_norm/normalize.wgsl`; the backward pass as partial sums per chunk
//! (`batch_norm/backward_partials.wgsl`, added up by [`super::partials`]) then an elementwise
//! `batch_norm/backward_input.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::partials;
use super::shaders::wgsl;
use super::Kernels;
use crate::gpu::context::{GpuContext, TrackedBuffer};
use crate::gpu::kernel::{
    preferred, Access, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work, LOOP_ITERATIONS_BUDGET,
};
use crate::gpu::kernel::{Binder, BoundKernel};
use crate::model::{BatchNormLayout, BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM};

/// A thread per feature: each walks the batch's rows (the emulator set); a thread per element
/// (the GPU set's elementwise passes), `positions · width` of them per batch row.
fn per_feature(width: u32, positions: u32, variant: KernelVariant) -> Grid {
    match variant {
        KernelVariant::Gpu => per_element(width, positions),
        KernelVariant::Scalar | KernelVariant::Vec4 => Grid::Fixed([width.div_ceil(64), 1, 1]),
    }
}

/// A thread per element of a batch row's `positions · width` values.
fn per_element(width: u32, positions: u32) -> Grid {
    Grid::PerRow { x: (width * positions).div_ceil(256) }
}

/// Rows per chunk of the split reductions, and chunks, for up to `max_rows` rows (a batch's
/// rows × positions): at least 16 rows a chunk, and few enough that a thread's two walks over
/// its chunk stay within [`LOOP_ITERATIONS_BUDGET`] (more chunks then).
fn row_chunking(max_rows: usize) -> (u32, u32) {
    let (per_chunk, chunks) = partials::chunking(max_rows, 16);
    let most = (LOOP_ITERATIONS_BUDGET / 2) as u32;
    if per_chunk <= most {
        (per_chunk, chunks)
    } else {
        (most, max_rows.div_ceil(most as usize) as u32)
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
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
    pub positions: u32,
    pub _pad: [u32; 2],
}

impl BatchNormForwardShape {
    pub fn new(layer: &BatchNormLayout, relu: bool, training: bool) -> Self {
        BatchNormForwardShape {
            width: layer.width as u32,
            gamma_offset: layer.gamma_offset as u32,
            beta_offset: layer.beta_offset as u32,
            moving_mean_offset: layer.moving_mean_offset as u32,
            moving_variance_offset: layer.moving_variance_offset as u32,
            training: u32::from(training),
            relu: u32::from(relu),
            momentum: BATCH_NORM_MOMENTUM,
            epsilon: BATCH_NORM_EPSILON,
            positions: layer.positions as u32,
            _pad: [0; 2],
        }
    }

    /// Training mode that leaves the moving statistics as they are: momentum 1, so
    /// `moving ← 1·moving + 0·μ` is the moving statistic itself, exactly, for a finite batch
    /// ([`crate::train::EpochMetrics::AfterStep`]'s loss).
    pub fn keeping_moving_statistics(self) -> Self {
        BatchNormForwardShape { momentum: 1.0, ..self }
    }
}

impl KernelShape for BatchNormForwardShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    fn grid(&self, variant: KernelVariant) -> Grid {
        per_feature(self.width, self.positions, variant)
    }
    /// Training: the mean and the variance walk the column, then the output; evaluation: the
    /// output only. The GPU set's normalisation: no loops.
    fn work(&self, variant: KernelVariant, rows: u32) -> Work {
        let passes = match (variant, self.training != 0) {
            (KernelVariant::Gpu, _) => 0,
            (_, true) => 3,
            (_, false) => 1,
        };
        Work { max_iterations: passes * u64::from(rows) * u64::from(self.positions), flops: 0 }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BatchNormBackwardShape {
    pub width: u32,
    pub gamma_offset: u32,
    pub beta_offset: u32,
    pub relu_below: u32,
    pub positions: u32,
    pub _pad: [u32; 3],
}

impl BatchNormBackwardShape {
    pub fn new(layer: &BatchNormLayout, relu_below: bool) -> Self {
        BatchNormBackwardShape {
            width: layer.width as u32,
            gamma_offset: layer.gamma_offset as u32,
            beta_offset: layer.beta_offset as u32,
            relu_below: u32::from(relu_below),
            positions: layer.positions as u32,
            _pad: [0; 3],
        }
    }
}

impl KernelShape for BatchNormBackwardShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    fn grid(&self, variant: KernelVariant) -> Grid {
        per_feature(self.width, self.positions, variant)
    }
    /// Two walks down the column: the sums, then dx. The GPU set's dx: no loops.
    fn work(&self, variant: KernelVariant, rows: u32) -> Work {
        let passes = if variant == KernelVariant::Gpu { 0 } else { 2 };
        Work { max_iterations: passes * u64::from(rows) * u64::from(self.positions), flops: 0 }
    }
}

/// `Shape` of `batch_norm/backward_eval.wgsl`: the evaluation-mode gradient at the input.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct BatchNormBackwardEvalShape {
    pub width: u32,
    pub gamma_offset: u32,
    pub moving_variance_offset: u32,
    pub relu_below: u32,
    pub epsilon: f32,
    pub positions: u32,
    pub _pad: [u32; 2],
}

impl BatchNormBackwardEvalShape {
    pub fn new(layer: &BatchNormLayout, relu_below: bool) -> Self {
        BatchNormBackwardEvalShape {
            width: layer.width as u32,
            gamma_offset: layer.gamma_offset as u32,
            moving_variance_offset: layer.moving_variance_offset as u32,
            relu_below: u32::from(relu_below),
            epsilon: BATCH_NORM_EPSILON,
            positions: layer.positions as u32,
            _pad: [0; 2],
        }
    }
}

impl KernelShape for BatchNormBackwardEvalShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// An invocation per element.
    fn grid(&self, _: KernelVariant) -> Grid {
        per_element(self.width, self.positions)
    }
    /// No loops.
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work::default()
    }
}

/// The two stages of the GPU set's batch statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatisticsStage {
    /// Per chunk of rows: count, mean, M2.
    Partials,
    /// Per feature: the chunks merged, stats and moving statistics written.
    Combine,
}

/// `Shape` of `batch_norm/statistics_partials.wgsl` and `batch_norm/statistics_combine.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct BatchNormStatisticsUniform {
    pub width: u32,
    pub rows_per_chunk: u32,
    pub chunks: u32,
    pub moving_mean_offset: u32,
    pub moving_variance_offset: u32,
    pub momentum: f32,
    pub epsilon: f32,
    pub positions: u32,
}

/// The statistics uniform as one of its two kernels reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormStatisticsShape {
    pub stage: StatisticsStage,
    pub uniform: BatchNormStatisticsUniform,
}

impl BatchNormStatisticsShape {
    /// For batches of up to `max_rows` rows (`positions` rows of the layer's features each).
    pub fn new(layer: &BatchNormLayout, max_rows: usize, stage: StatisticsStage) -> Self {
        let (rows_per_chunk, chunks) = row_chunking(max_rows * layer.positions);
        let uniform = BatchNormStatisticsUniform {
            width: layer.width as u32,
            rows_per_chunk,
            chunks,
            moving_mean_offset: layer.moving_mean_offset as u32,
            moving_variance_offset: layer.moving_variance_offset as u32,
            momentum: BATCH_NORM_MOMENTUM,
            epsilon: BATCH_NORM_EPSILON,
            positions: layer.positions as u32,
        };
        BatchNormStatisticsShape { stage, uniform }
    }

    /// As [`BatchNormForwardShape::keeping_moving_statistics`]: momentum 1.
    pub fn keeping_moving_statistics(self) -> Self {
        BatchNormStatisticsShape { uniform: BatchNormStatisticsUniform { momentum: 1.0, ..self.uniform }, ..self }
    }

    /// Floats of the partial results: (count, mean, M2) per chunk and feature.
    pub fn partial_floats(&self) -> usize {
        (self.uniform.chunks * self.uniform.width * 3) as usize
    }
}

impl KernelShape for BatchNormStatisticsShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(&self.uniform)
    }
    /// Partials: a thread per feature and chunk; combine: a thread per feature.
    fn grid(&self, _: KernelVariant) -> Grid {
        let u = &self.uniform;
        match self.stage {
            StatisticsStage::Partials => Grid::Fixed([u.width.div_ceil(64), u.chunks, 1]),
            StatisticsStage::Combine => Grid::Fixed([u.width.div_ceil(64), 1, 1]),
        }
    }
    /// Partials: two walks over the chunk's rows; combine: one trip per chunk.
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        let u = &self.uniform;
        let trips = match self.stage {
            StatisticsStage::Partials => 2 * u.rows_per_chunk,
            StatisticsStage::Combine => u.chunks,
        };
        Work { max_iterations: u64::from(trips), flops: 0 }
    }
}

/// `Shape` of `batch_norm/backward_partials.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BatchNormBackwardPartialsShape {
    pub width: u32,
    pub rows_per_chunk: u32,
    pub chunks: u32,
    pub positions: u32,
}

impl BatchNormBackwardPartialsShape {
    /// For batches of up to `max_rows` rows (`positions` rows of the layer's features each).
    pub fn new(layer: &BatchNormLayout, max_rows: usize) -> Self {
        let (rows_per_chunk, chunks) = row_chunking(max_rows * layer.positions);
        let positions = layer.positions as u32;
        BatchNormBackwardPartialsShape { width: layer.width as u32, rows_per_chunk, chunks, positions }
    }

    /// Floats of the partial results: Σ dy·x̂ and Σ dy per chunk and feature.
    pub fn partial_floats(&self) -> usize {
        (self.chunks * 2 * self.width) as usize
    }
}

impl KernelShape for BatchNormBackwardPartialsShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// A thread per feature and chunk.
    fn grid(&self, _: KernelVariant) -> Grid {
        Grid::Fixed([self.width.div_ceil(64), self.chunks, 1])
    }
    /// One walk over the chunk's rows.
    fn work(&self, _: KernelVariant, _: u32) -> Work {
        Work { max_iterations: u64::from(self.rows_per_chunk), flops: 0 }
    }
}

/// Bindings: x, params, y, batch statistics (mean, 1/std); `variant` Gpu: the GPU set's
/// elementwise normalisation (in training after the statistics kernels).
pub fn forward(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "batch_norm_forward", wgsl: wgsl!("batch_norm/forward.wgsl"), overrides: &[] };
    let normalize = Source { label: "batch_norm_normalize", wgsl: wgsl!("batch_norm/normalize.wgsl"), overrides: &[] };
    let preferred = preferred(variant, None, Some(normalize));
    Kernel::new(ctx, &[Read, ReadWrite, ReadWrite, ReadWrite], Compile::OnFirstBind, source, preferred)
}

/// Bindings: x, dy, params, batch statistics, below (for its ReLU mask), dx, grads; `variant`
/// Gpu: the GPU set's elementwise dx (after the partial sums and their sum into grads).
pub fn backward(ctx: &GpuContext, variant: KernelVariant) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "batch_norm_backward", wgsl: wgsl!("batch_norm/backward.wgsl"), overrides: &[] };
    let input =
        Source { label: "batch_norm_backward_input", wgsl: wgsl!("batch_norm/backward_input.wgsl"), overrides: &[] };
    let preferred = preferred(variant, None, Some(input));
    Kernel::new(ctx, &[Read, Read, Read, Read, Read, ReadWrite, ReadWrite], Compile::OnFirstBind, source, preferred)
}

/// Bindings: x, partials.
pub fn statistics_partials(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source {
        label: "batch_norm_statistics_partials",
        wgsl: wgsl!("batch_norm/statistics_partials.wgsl"),
        overrides: &[],
    };
    Kernel::new(ctx, &[Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// Bindings: partials, params, batch statistics.
pub fn statistics_combine(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source {
        label: "batch_norm_statistics_combine",
        wgsl: wgsl!("batch_norm/statistics_combine.wgsl"),
        overrides: &[],
    };
    Kernel::new(ctx, &[Read, ReadWrite, ReadWrite], Compile::OnFirstBind, source, None)
}

/// Bindings: x, dy, batch statistics, partials.
pub fn backward_partials(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source {
        label: "batch_norm_backward_partials",
        wgsl: wgsl!("batch_norm/backward_partials.wgsl"),
        overrides: &[],
    };
    Kernel::new(ctx, &[Read, Read, Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// Bindings: dy, params, below (for its ReLU mask), dx: the evaluation-mode gradient at the input.
pub fn backward_eval(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source =
        Source { label: "batch_norm_backward_eval", wgsl: wgsl!("batch_norm/backward_eval.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, Read, Read, ReadWrite], Compile::OnFirstBind, source, None)
}

/// Which statistics a BatchNorm forward pass normalises with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchNormMode {
    /// The batch's, stored for the backward pass, the moving statistics updated.
    Training,
    /// The batch's, the moving statistics left as they are (the after-step figures' loss).
    TrainingKeepingMovingStatistics,
    /// The moving statistics.
    Evaluation,
}

/// Whether a BatchNorm layer runs split (the statistics and the gradient sums as partials per
/// chunk of rows, then elementwise passes): in the GPU set, and in any set over an image's
/// channels, whose rows (batch × positions) are too many for one thread to walk. Its forward and
/// backward kernels.
pub fn kernels_for<'k>(kernels: &'k Kernels, layer: &BatchNormLayout) -> (bool, &'k Kernel, &'k Kernel) {
    if layer.positions > 1 {
        (true, &kernels.batch_norm_normalize, &kernels.batch_norm_backward_input)
    } else {
        let split = kernels.batch_norm_forward.variant() == KernelVariant::Gpu;
        (split, &kernels.batch_norm_forward, &kernels.batch_norm_backward)
    }
}

/// What a BatchNorm forward pass reads and writes.
pub struct BatchNormForwardIo<'a> {
    pub x: &'a TrackedBuffer,
    /// γ, β and the moving statistics (updated in training).
    pub params: &'a TrackedBuffer,
    pub y: &'a TrackedBuffer,
    /// The batch statistics (mean, 1/std) the backward pass reads.
    pub stats: &'a TrackedBuffer,
}

/// The forward pass of `layer` (ReLU after it when `relu`) for batches of up to `max_rows` rows:
/// split in training, the batch statistics as partials per chunk of rows, merged, then the
/// output; else one kernel.
pub fn bind_forward(
    b: &Binder,
    kernels: &Kernels,
    layer: &BatchNormLayout,
    relu: bool,
    mode: BatchNormMode,
    max_rows: usize,
    io: BatchNormForwardIo,
) -> Vec<BoundKernel> {
    let (split, forward, _) = kernels_for(kernels, layer);
    let keep_moving = mode == BatchNormMode::TrainingKeepingMovingStatistics;
    let training = mode != BatchNormMode::Evaluation;
    let mut bound = Vec::new();
    if split && training {
        let partials_shape = BatchNormStatisticsShape::new(layer, max_rows, StatisticsStage::Partials);
        let mut combine_shape = BatchNormStatisticsShape::new(layer, max_rows, StatisticsStage::Combine);
        if keep_moving {
            combine_shape = combine_shape.keeping_moving_statistics();
        }
        let partials = b.scratch("batch norm statistics partials", partials_shape.partial_floats());
        bound.push(b.bind(&kernels.batch_norm_statistics_partials, &partials_shape, &[io.x, &partials]));
        bound.push(b.bind(&kernels.batch_norm_statistics_combine, &combine_shape, &[&partials, io.params, io.stats]));
    }
    let mut shape = BatchNormForwardShape::new(layer, relu, training);
    if keep_moving {
        shape = shape.keeping_moving_statistics();
    }
    bound.push(b.bind(forward, &shape, &[io.x, io.params, io.y, io.stats]));
    bound
}

/// What a BatchNorm backward pass (training mode) reads and writes.
pub struct BatchNormBackwardIo<'a> {
    pub x: &'a TrackedBuffer,
    pub dy: &'a TrackedBuffer,
    pub params: &'a TrackedBuffer,
    /// The forward pass's batch statistics.
    pub stats: &'a TrackedBuffer,
    /// The layer below's output, for its ReLU mask (in a model: `x`).
    pub below: &'a TrackedBuffer,
    pub dx: &'a TrackedBuffer,
    /// dγ and dβ are written at the layer's offsets.
    pub grads: &'a TrackedBuffer,
}

/// `(dx, dγ, dβ)` for batches of up to `max_rows` rows, dx masked by ReLU'(below) when
/// `relu_below`: split, dγ and dβ as partial sums per chunk of rows summed in order into grads,
/// then dx; else one kernel.
pub fn bind_backward(
    b: &Binder,
    kernels: &Kernels,
    layer: &BatchNormLayout,
    relu_below: bool,
    max_rows: usize,
    io: BatchNormBackwardIo,
) -> Vec<BoundKernel> {
    let (split, _, backward) = kernels_for(kernels, layer);
    let mut bound = Vec::new();
    if split {
        let shape = BatchNormBackwardPartialsShape::new(layer, max_rows);
        let partials = b.scratch("batch norm gradient partials", shape.partial_floats());
        bound.push(b.bind(&kernels.batch_norm_backward_partials, &shape, &[io.x, io.dy, io.stats, &partials]));
        let sum = partials::SumPartialsShape::kernel_and_bias(
            2 * layer.width,
            shape.chunks as usize,
            layer.width,
            layer.gamma_offset,
            layer.beta_offset,
        );
        bound.push(partials::bind_sum(b, &kernels.sum_partials, &sum, &partials, io.grads));
    }
    let shape = BatchNormBackwardShape::new(layer, relu_below);
    bound.push(b.bind(backward, &shape, &[io.x, io.dy, io.params, io.stats, io.below, io.dx, io.grads]));
    bound
}

/// What BatchNorm's evaluation-mode gradient at its input reads and writes.
pub struct BatchNormBackwardEvalIo<'a> {
    pub dy: &'a TrackedBuffer,
    pub params: &'a TrackedBuffer,
    /// The layer below's output, for its ReLU mask.
    pub below: &'a TrackedBuffer,
    pub dx: &'a TrackedBuffer,
}

/// dx in evaluation mode (the affine map of the moving statistics), masked by ReLU'(below) when
/// `relu_below`: the saliency's backward pass.
pub fn bind_backward_eval(
    b: &Binder,
    kernel: &Kernel,
    layer: &BatchNormLayout,
    relu_below: bool,
    io: BatchNormBackwardEvalIo,
) -> BoundKernel {
    b.bind(kernel, &BatchNormBackwardEvalShape::new(layer, relu_below), &[io.dy, io.params, io.below, io.dx])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_chunks_cover_every_row_within_the_loop_budget() {
        // A batch of 100 features, the CNN's first conv output (100 × 26·26), and 10,000 of them.
        for rows in [1, 100, 100 * 676, 10_000 * 676] {
            let (per_chunk, chunks) = row_chunking(rows);
            assert!(per_chunk as usize * chunks as usize >= rows, "{rows}: {per_chunk} × {chunks}");
            assert!((chunks as usize - 1) * (per_chunk as usize) < rows, "{rows}: a chunk past the rows");
            assert!(2 * per_chunk as usize <= LOOP_ITERATIONS_BUDGET, "{rows}: {per_chunk} rows a chunk");
        }
    }
}
