//! Runs a single kernel on host data and reads its output back: how the tests compare each WGSL
//! kernel with its twin in `fashion_core::reference`. Parameters are placed at an odd offset in the
//! flat buffer so the kernels' offset handling is exercised too. Test-only: not part of the core.

#![allow(dead_code)]

use fashion_core::gpu::context::{GpuContext, GpuError, TrackedBuffer};
use fashion_core::gpu::kernel::{step_buffer, write_steps, Kernel, KernelShape, KernelVariant, StepUniform};
use fashion_core::gpu::ops::adam::{self, AdamShape};
use fashion_core::gpu::ops::batch_norm::{
    self, BatchNormBackwardEvalShape, BatchNormBackwardPartialsShape, BatchNormBackwardShape, BatchNormForwardShape,
    BatchNormStatisticsShape, StatisticsStage,
};
use fashion_core::gpu::ops::conv::{self, ConvKernelShape};
use fashion_core::gpu::ops::dense::{self, DenseBackwardInputShape, DenseBackwardWeightsShape, DenseForwardShape};
use fashion_core::gpu::ops::dropout::{self, DropoutBackwardShape, DropoutForwardShape};
use fashion_core::gpu::ops::gather::{self, GatherShape};
use fashion_core::gpu::ops::l2::{self, L2PenaltyTallyShape, L2RegularizerShape};
use fashion_core::gpu::ops::partials::{self, SumPartialsShape};
use fashion_core::gpu::ops::pool::{self, MaxPoolBackwardShape, MaxPoolForwardShape};
use fashion_core::gpu::ops::saliency::{self, SaliencySeedShape};
use fashion_core::gpu::ops::softmax::{self, MetricsTallyShape, SoftmaxCrossEntropyShape};
use fashion_core::gpu::ops::zero_pad::{self, ZeroPadBackwardShape, ZeroPadForwardShape};
use fashion_core::gpu::ops::TALLY_WORDS;
use fashion_core::model::{Activation, BatchNormLayout, ConvLayout, DenseLayout, PadLayout, ParamLayout, PoolLayout};
use fashion_core::reference::{BatchNormStatistics, BatchNormTensors, SoftmaxCrossEntropy};
use fashion_core::AdamConfig;
use fashion_data::PIXELS_PER_IMAGE;

/// Where the tensors start in the flat parameter buffer of these one-shot runs.
const PARAM_OFFSET: usize = 3;

/// Where a layer's tensors start for `variant`: odd for the scalar kernels, the next multiple of 4
/// for the vec4 ones (an odd offset would make them fall back to the scalar kernels).
fn param_offset(variant: KernelVariant) -> usize {
    match variant {
        KernelVariant::Scalar | KernelVariant::Tiled => PARAM_OFFSET,
        KernelVariant::Vec4 => PARAM_OFFSET.next_multiple_of(4),
    }
}

/// Binds `shape` and `storage` to `kernel`, dispatches it once for a batch of `rows`, and waits.
async fn run_once(
    ctx: &GpuContext,
    kernel: &Kernel,
    step: StepUniform,
    shape: &dyn KernelShape,
    storage: &[&TrackedBuffer],
) -> Result<(), GpuError> {
    run_each(ctx, kernel, step, &[shape], storage).await
}

/// Dispatches `kernel` once per shape, in order, in one pass, and waits.
async fn run_each(
    ctx: &GpuContext,
    kernel: &Kernel,
    step: StepUniform,
    shapes: &[&dyn KernelShape],
    storage: &[&TrackedBuffer],
) -> Result<(), GpuError> {
    let dispatches: Vec<_> = shapes.iter().map(|&shape| (kernel, shape, storage)).collect();
    run_dispatches(ctx, step, &dispatches).await
}

/// Dispatches each kernel with its shape and storage, in order, in one pass, and waits.
async fn run_dispatches(
    ctx: &GpuContext,
    step: StepUniform,
    dispatches: &[(&Kernel, &dyn KernelShape, &[&TrackedBuffer])],
) -> Result<(), GpuError> {
    let steps = step_buffer(ctx, 1);
    write_steps(ctx, &steps, &[step]);
    let bound: Vec<_> =
        dispatches.iter().map(|&(kernel, shape, storage)| kernel.bind(ctx, &steps, shape, storage)).collect();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for kernel in &bound {
            kernel.encode(&mut pass, 0, step.rows);
        }
    }
    ctx.queue.submit([encoder.finish()]);
    ctx.wait_for_submitted_work().await
}

fn rows_step(rows: usize) -> StepUniform {
    StepUniform::rows(rows)
}

/// A dense layer of `inputs × units` whose tensors start at `offset`.
fn dense_at(inputs: usize, units: usize, offset: usize) -> DenseLayout {
    DenseLayout {
        inputs,
        units,
        activation: Activation::Linear,
        kernel_offset: offset,
        bias_offset: offset + inputs * units,
    }
}

fn f32_storage(ctx: &GpuContext, label: &str, data: &[f32]) -> TrackedBuffer {
    ctx.storage_with(label, bytemuck::cast_slice(data))
}

/// Kernel then bias in one flat buffer, both after `offset` filler values.
fn packed_params(offset: usize, kernel: &[f32], bias: &[f32]) -> Vec<f32> {
    let mut params = vec![f32::NAN; offset];
    params.extend_from_slice(kernel);
    params.extend_from_slice(bias);
    params
}

/// `gather/batch.wgsl` on a dataset of 28×28 images.
pub async fn gather_batch(
    ctx: &GpuContext,
    images: &[u8],
    labels: &[u8],
    order: &[u32],
    start: usize,
    rows: usize,
) -> Result<(Vec<f32>, Vec<u32>), GpuError> {
    let pixels = PIXELS_PER_IMAGE;
    let labels32: Vec<u32> = labels.iter().map(|&l| u32::from(l)).collect();
    let images_buffer = ctx.storage_with("images", images);
    let labels_buffer = ctx.storage_with("labels", bytemuck::cast_slice(&labels32));
    let order_buffer = ctx.storage_with("order", bytemuck::cast_slice(order));
    let x = ctx.storage("x", (rows * pixels * 4) as u64);
    let batch_labels = ctx.storage("batch labels", (rows * 4) as u64);
    let step = StepUniform { batch_start: start as u32, rows: rows as u32, ..Default::default() };
    let storage = [&images_buffer, &labels_buffer, &order_buffer, &x, &batch_labels];
    run_once(ctx, &gather::kernel(ctx), step, &GatherShape::new(pixels), &storage).await?;
    Ok((ctx.read_f32(&x, rows * pixels).await?, ctx.read_u32(&batch_labels, rows).await?))
}

/// `dense/forward.wgsl`: `act(x · kernel + bias)`.
pub async fn dense_forward(
    ctx: &GpuContext,
    x: &[f32],
    rows: usize,
    kernel: &[f32],
    bias: &[f32],
    inputs: usize,
    relu: bool,
) -> Result<Vec<f32>, GpuError> {
    dense_forward_with(ctx, KernelVariant::Scalar, x, rows, kernel, bias, inputs, relu).await
}

/// [`dense_forward`] through `variant`'s kernel (the 4×4 one where it does not apply).
#[allow(clippy::too_many_arguments)]
pub async fn dense_forward_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    x: &[f32],
    rows: usize,
    kernel: &[f32],
    bias: &[f32],
    inputs: usize,
    relu: bool,
) -> Result<Vec<f32>, GpuError> {
    let units = bias.len();
    let offset = param_offset(variant);
    let x_buffer = f32_storage(ctx, "x", x);
    let params = f32_storage(ctx, "params", &packed_params(offset, kernel, bias));
    let y = ctx.storage("y", (rows * units * 4) as u64);
    let shape = DenseForwardShape::new(&dense_at(inputs, units, offset), relu);
    let compiled = dense::forward(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &[&x_buffer, &params, &y]).await?;
    ctx.read_f32(&y, rows * units).await
}

/// `dense/backward_input.wgsl`: `dz · kernelᵀ`, masked by ReLU'(below) when given.
pub async fn dense_backward_input(
    ctx: &GpuContext,
    dz: &[f32],
    rows: usize,
    kernel: &[f32],
    inputs: usize,
    units: usize,
    below: Option<&[f32]>,
) -> Result<Vec<f32>, GpuError> {
    dense_backward_input_with(ctx, KernelVariant::Scalar, dz, rows, kernel, inputs, units, below).await
}

/// [`dense_backward_input`] through `variant`'s kernel (the 4×4 one where it does not apply).
#[allow(clippy::too_many_arguments)]
pub async fn dense_backward_input_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    dz: &[f32],
    rows: usize,
    kernel: &[f32],
    inputs: usize,
    units: usize,
    below: Option<&[f32]>,
) -> Result<Vec<f32>, GpuError> {
    let offset = param_offset(variant);
    let dz_buffer = f32_storage(ctx, "dz", dz);
    let params = f32_storage(ctx, "params", &packed_params(offset, kernel, &[]));
    let below_buffer = match below {
        Some(below) => f32_storage(ctx, "below", below),
        None => ctx.storage("below", (rows * inputs * 4) as u64),
    };
    let dx = ctx.storage("dx", (rows * inputs * 4) as u64);
    let shape = DenseBackwardInputShape::new(&dense_at(inputs, units, offset), below.is_some());
    let storage = [&dz_buffer, &params, &below_buffer, &dx];
    let compiled = dense::backward_input(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &storage).await?;
    ctx.read_f32(&dx, rows * inputs).await
}

/// `dense/backward_weights.wgsl`: `(xᵀ · dz, Σ_rows dz)`.
pub async fn dense_backward_weights(
    ctx: &GpuContext,
    x: &[f32],
    dz: &[f32],
    rows: usize,
    inputs: usize,
    units: usize,
) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
    dense_backward_weights_with(ctx, KernelVariant::Scalar, x, dz, rows, inputs, units).await
}

/// [`dense_backward_weights`] through `variant`'s kernel (the 4×4 one where it does not apply).
pub async fn dense_backward_weights_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    x: &[f32],
    dz: &[f32],
    rows: usize,
    inputs: usize,
    units: usize,
) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
    let offset = param_offset(variant);
    let x_buffer = f32_storage(ctx, "x", x);
    let dz_buffer = f32_storage(ctx, "dz", dz);
    let grads = ctx.storage("grads", ((offset + inputs * units + units) * 4) as u64);
    let shape = DenseBackwardWeightsShape::new(&dense_at(inputs, units, offset));
    let compiled = dense::backward_weights(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &[&x_buffer, &dz_buffer, &grads]).await?;
    let all = ctx.read_f32(&grads, offset + inputs * units + units).await?;
    let (dkernel, dbias) = all[offset..].split_at(inputs * units);
    Ok((dkernel.to_vec(), dbias.to_vec()))
}

/// `softmax/cross_entropy.wgsl` with the gradient written; metrics tally 1 is used.
pub async fn softmax_cross_entropy(
    ctx: &GpuContext,
    logits: &[f32],
    labels: &[u32],
    classes: usize,
) -> Result<SoftmaxCrossEntropy, GpuError> {
    softmax_cross_entropy_with(ctx, KernelVariant::Scalar, logits, labels, classes).await
}

/// [`softmax_cross_entropy`] through `variant`'s kernels: for Tiled the per-row kernel then
/// `softmax/metrics_tally.wgsl`, as the trainer binds them.
pub async fn softmax_cross_entropy_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    logits: &[f32],
    labels: &[u32],
    classes: usize,
) -> Result<SoftmaxCrossEntropy, GpuError> {
    let rows = labels.len();
    let logits_buffer = f32_storage(ctx, "logits", logits);
    let labels_buffer = ctx.storage_with("labels", bytemuck::cast_slice(labels));
    let probs = ctx.storage("probs", (rows * classes * 4) as u64);
    let dlogits = ctx.storage("dlogits", (rows * classes * 4) as u64);
    let metrics = ctx.storage("metrics", (2 * TALLY_WORDS * 4) as u64);
    let compiled = softmax::kernel(ctx, variant);
    if variant == KernelVariant::Tiled {
        let row_metrics = ctx.storage("row metrics", (rows * 2 * 4) as u64);
        let shape = SoftmaxCrossEntropyShape::whole_batch(classes, 1, true);
        let tally = MetricsTallyShape { tally: 1, _pad: [0; 3] };
        let storage = [&logits_buffer, &labels_buffer, &probs, &dlogits, &row_metrics];
        let tally_storage = [&row_metrics, &metrics];
        let tally_kernel = softmax::tally_kernel(ctx);
        let dispatches: [(&Kernel, &dyn KernelShape, &[&TrackedBuffer]); 2] =
            [(&compiled, &shape, &storage), (&tally_kernel, &tally, &tally_storage)];
        run_dispatches(ctx, rows_step(rows), &dispatches).await?;
    } else {
        // As the trainer does: one dispatch per chunk of rows.
        let shapes = SoftmaxCrossEntropyShape::chunks(classes, 1, true, rows);
        let shapes: Vec<&dyn KernelShape> = shapes.iter().map(|shape| shape as &dyn KernelShape).collect();
        let storage = [&logits_buffer, &labels_buffer, &probs, &dlogits, &metrics];
        run_each(ctx, &compiled, rows_step(rows), &shapes, &storage).await?;
    }
    let words = ctx.read_u32(&metrics, 2 * TALLY_WORDS).await?;
    let test_metrics = &words[TALLY_WORDS..];
    Ok(SoftmaxCrossEntropy {
        probs: ctx.read_f32(&probs, rows * classes).await?,
        dlogits: ctx.read_f32(&dlogits, rows * classes).await?,
        loss_sum: f64::from(f32::from_bits(test_metrics[0])) - f64::from(f32::from_bits(test_metrics[1])),
        correct: test_metrics[2],
    })
}

/// The state Adam updates.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState {
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// `adam/adam.wgsl`: one step `step` (1-based) on `state` with `grads`.
pub async fn adam_update(
    ctx: &GpuContext,
    state: &AdamState,
    grads: &[f32],
    config: &AdamConfig,
    step: u64,
) -> Result<AdamState, GpuError> {
    adam_update_with(ctx, KernelVariant::Scalar, state, grads, config, step).await
}

/// [`adam_update`] through `variant`'s kernel. Only the first `grads.len()` parameters are
/// trainable (Adam's `count`): the rest of `state` must come back unchanged.
pub async fn adam_update_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    state: &AdamState,
    grads: &[f32],
    config: &AdamConfig,
    step: u64,
) -> Result<AdamState, GpuError> {
    let len = state.params.len();
    let count = grads.len();
    let params = f32_storage(ctx, "params", &state.params);
    let grads_buffer = f32_storage(ctx, "grads", grads);
    let m = f32_storage(ctx, "m", &state.m);
    let v = f32_storage(ctx, "v", &state.v);
    let shape = AdamShape::new(count, config);
    let step = StepUniform {
        rows: 1,
        t: step as u32,
        lr_t: config.corrected_learning_rate(config.learning_rate, step),
        ..Default::default()
    };
    let compiled = adam::kernel(ctx, variant);
    run_once(ctx, &compiled, step, &shape, &[&params, &grads_buffer, &m, &v]).await?;
    Ok(AdamState {
        params: ctx.read_f32(&params, len).await?,
        m: ctx.read_f32(&m, len).await?,
        v: ctx.read_f32(&v, len).await?,
    })
}

/// `dropout/forward.wgsl` for dropout op `index` in the step seeded `seed`.
pub async fn dropout_forward(
    ctx: &GpuContext,
    x: &[f32],
    rows: usize,
    rate: f32,
    seed: u32,
    index: u32,
    training: bool,
) -> Result<Vec<f32>, GpuError> {
    let width = x.len() / rows;
    let x_buffer = f32_storage(ctx, "x", x);
    let y = ctx.storage("y", (x.len() * 4) as u64);
    let shape = DropoutForwardShape::new(width, rate, index, training);
    let step = StepUniform { seed, ..StepUniform::rows(rows) };
    run_once(ctx, &dropout::forward(ctx), step, &shape, &[&x_buffer, &y]).await?;
    ctx.read_f32(&y, x.len()).await
}

/// `dropout/backward.wgsl`: `dy · keep / (1 − rate)`, masked by ReLU'(below) when given.
pub async fn dropout_backward(
    ctx: &GpuContext,
    dy: &[f32],
    rows: usize,
    below: Option<&[f32]>,
    rate: f32,
    seed: u32,
    index: u32,
) -> Result<Vec<f32>, GpuError> {
    let width = dy.len() / rows;
    let dy_buffer = f32_storage(ctx, "dy", dy);
    let below_buffer = f32_storage(ctx, "below", below.unwrap_or(dy));
    let dx = ctx.storage("dx", (dy.len() * 4) as u64);
    let shape = DropoutBackwardShape::new(width, rate, index, below.is_some());
    let step = StepUniform { seed, ..StepUniform::rows(rows) };
    run_once(ctx, &dropout::backward(ctx), step, &shape, &[&dy_buffer, &below_buffer, &dx]).await?;
    ctx.read_f32(&dx, dy.len()).await
}

/// `batch_norm/backward_eval.wgsl`: dx in evaluation mode, from the moving variance in `tensors`.
pub async fn batch_norm_backward_eval(
    ctx: &GpuContext,
    dy: &[f32],
    rows: usize,
    tensors: &BatchNormTensors<'_>,
    below: Option<&[f32]>,
) -> Result<Vec<f32>, GpuError> {
    let (packed, [gamma_offset, beta_offset, moving_mean_offset, moving_variance_offset]) = packed_batch_norm(tensors);
    let width = tensors.gamma.len();
    let layer = BatchNormLayout {
        width,
        positions: dy.len() / (rows * width).max(1),
        gamma_offset: gamma_offset as usize,
        beta_offset: beta_offset as usize,
        moving_mean_offset: moving_mean_offset as usize,
        moving_variance_offset: moving_variance_offset as usize,
    };
    let dy_buffer = f32_storage(ctx, "dy", dy);
    let params = f32_storage(ctx, "params", &packed);
    let below_buffer = f32_storage(ctx, "below", below.unwrap_or(dy));
    let dx = ctx.storage("dx", (dy.len() * 4) as u64);
    let shape = BatchNormBackwardEvalShape::new(&layer, below.is_some());
    let storage = [&dy_buffer, &params, &below_buffer, &dx];
    run_once(ctx, &batch_norm::backward_eval(ctx), rows_step(rows), &shape, &storage).await?;
    ctx.read_f32(&dx, dy.len()).await
}

/// `saliency/seed.wgsl`: ∂p_c/∂logits for each row of `probs` (`classes` a row).
pub async fn saliency_seed(ctx: &GpuContext, probs: &[f32], classes: usize) -> Result<Vec<f32>, GpuError> {
    let rows = probs.len() / classes;
    let probs_buffer = f32_storage(ctx, "probs", probs);
    let dlogits = ctx.storage("dlogits", (probs.len() * 4) as u64);
    let shape = SaliencySeedShape::new(classes);
    run_once(ctx, &saliency::seed_kernel(ctx), rows_step(rows), &shape, &[&probs_buffer, &dlogits]).await?;
    ctx.read_f32(&dlogits, probs.len()).await
}

/// γ, β, moving mean, moving variance packed after [`PARAM_OFFSET`] filler values, and the
/// offsets of each.
fn packed_batch_norm(t: &BatchNormTensors<'_>) -> (Vec<f32>, [u32; 4]) {
    let mut params = vec![f32::NAN; PARAM_OFFSET];
    let mut offsets = [0; 4];
    for (offset, tensor) in offsets.iter_mut().zip([t.gamma, t.beta, t.moving_mean, t.moving_variance]) {
        *offset = params.len() as u32;
        params.extend_from_slice(tensor);
    }
    (params, offsets)
}

/// `batch_norm/forward.wgsl`: `y`, and in training the statistics it stores (μ, 1/std) with the
/// updated moving mean and variance. `x` holds `rows` samples of one or more rows of the features
/// each (an image's positions of its channels): its length tells how many.
pub async fn batch_norm_forward(
    ctx: &GpuContext,
    x: &[f32],
    rows: usize,
    tensors: &BatchNormTensors<'_>,
    training: bool,
    relu: bool,
) -> Result<(Vec<f32>, BatchNormStatistics), GpuError> {
    batch_norm_forward_with(ctx, KernelVariant::Scalar, x, rows, tensors, training, relu).await
}

/// [`batch_norm_forward`] through `variant`'s kernels: for Tiled in training the statistics'
/// partials and combine then the normalisation, as the trainer binds them.
pub async fn batch_norm_forward_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    x: &[f32],
    rows: usize,
    tensors: &BatchNormTensors<'_>,
    training: bool,
    relu: bool,
) -> Result<(Vec<f32>, BatchNormStatistics), GpuError> {
    let width = tensors.gamma.len();
    let (packed, [gamma, beta, moving_mean, moving_variance]) = packed_batch_norm(tensors);
    let x_buffer = f32_storage(ctx, "x", x);
    let params = f32_storage(ctx, "params", &packed);
    let y = ctx.storage("y", (x.len() * 4) as u64);
    let stats = ctx.storage("stats", (2 * width * 4) as u64);
    let layer = BatchNormLayout {
        width,
        positions: x.len() / (rows * width).max(1),
        gamma_offset: gamma as usize,
        beta_offset: beta as usize,
        moving_mean_offset: moving_mean as usize,
        moving_variance_offset: moving_variance as usize,
    };
    let shape = BatchNormForwardShape::new(&layer, relu, training);
    let storage = [&x_buffer, &params, &y, &stats];
    let compiled = batch_norm::forward(ctx, variant);
    if variant == KernelVariant::Tiled && training {
        let partials_shape = BatchNormStatisticsShape::new(&layer, rows, StatisticsStage::Partials);
        let combine_shape = BatchNormStatisticsShape::new(&layer, rows, StatisticsStage::Combine);
        let partials = ctx.storage("partials", (partials_shape.partial_floats() * 4) as u64);
        let (partials_kernel, combine_kernel) =
            (batch_norm::statistics_partials(ctx), batch_norm::statistics_combine(ctx));
        let partials_storage = [&x_buffer, &partials];
        let combine_storage = [&partials, &params, &stats];
        let dispatches: [(&Kernel, &dyn KernelShape, &[&TrackedBuffer]); 3] = [
            (&partials_kernel, &partials_shape, &partials_storage),
            (&combine_kernel, &combine_shape, &combine_storage),
            (&compiled, &shape, &storage),
        ];
        run_dispatches(ctx, rows_step(rows), &dispatches).await?;
    } else {
        run_once(ctx, &compiled, rows_step(rows), &shape, &storage).await?;
    }
    let stats = ctx.read_f32(&stats, 2 * width).await?;
    let params = ctx.read_f32(&params, packed.len()).await?;
    let at = |offset: u32| params[offset as usize..offset as usize + width].to_vec();
    let statistics = BatchNormStatistics {
        mean: stats[..width].to_vec(),
        inv_std: stats[width..].to_vec(),
        moving_mean: at(moving_mean),
        moving_variance: at(moving_variance),
    };
    Ok((ctx.read_f32(&y, x.len()).await?, statistics))
}

/// `batch_norm/backward.wgsl`: `(dx, dγ, dβ)` from the forward pass's statistics.
pub async fn batch_norm_backward(
    ctx: &GpuContext,
    x: &[f32],
    dy: &[f32],
    rows: usize,
    gamma: &[f32],
    stats: &BatchNormStatistics,
    below: Option<&[f32]>,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>), GpuError> {
    batch_norm_backward_with(ctx, KernelVariant::Scalar, x, dy, rows, gamma, stats, below).await
}

/// [`batch_norm_backward`] through `variant`'s kernels: for Tiled the partial sums, their sum
/// into dγ and dβ, then dx, as the trainer binds them.
#[allow(clippy::too_many_arguments)]
pub async fn batch_norm_backward_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    x: &[f32],
    dy: &[f32],
    rows: usize,
    gamma: &[f32],
    stats: &BatchNormStatistics,
    below: Option<&[f32]>,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>), GpuError> {
    let width = gamma.len();
    let mut packed = vec![f32::NAN; PARAM_OFFSET];
    packed.extend_from_slice(gamma);
    let beta_offset = packed.len();
    packed.extend(std::iter::repeat_n(f32::NAN, width));
    let x_buffer = f32_storage(ctx, "x", x);
    let dy_buffer = f32_storage(ctx, "dy", dy);
    let params = f32_storage(ctx, "params", &packed);
    let stats_buffer = f32_storage(ctx, "stats", &[stats.mean.as_slice(), &stats.inv_std].concat());
    let below_buffer = f32_storage(ctx, "below", below.unwrap_or(x));
    let dx = ctx.storage("dx", (x.len() * 4) as u64);
    let grads = ctx.storage("grads", (packed.len() * 4) as u64);
    // Backward reads only γ and β's place in the gradient; the moving statistics are unused.
    let layer = BatchNormLayout {
        width,
        positions: x.len() / (rows * width).max(1),
        gamma_offset: PARAM_OFFSET,
        beta_offset,
        moving_mean_offset: 0,
        moving_variance_offset: 0,
    };
    let shape = BatchNormBackwardShape::new(&layer, below.is_some());
    let storage = [&x_buffer, &dy_buffer, &params, &stats_buffer, &below_buffer, &dx, &grads];
    let compiled = batch_norm::backward(ctx, variant);
    if variant == KernelVariant::Tiled {
        let partials_shape = BatchNormBackwardPartialsShape::new(&layer, rows);
        let partials = ctx.storage("partials", (partials_shape.partial_floats() * 4) as u64);
        let sum = SumPartialsShape::kernel_and_bias(
            2 * width,
            partials_shape.chunks as usize,
            width,
            layer.gamma_offset,
            layer.beta_offset,
        );
        let (partials_kernel, sum_kernel) = (batch_norm::backward_partials(ctx), partials::kernel(ctx));
        let partials_storage = [&x_buffer, &dy_buffer, &stats_buffer, &partials];
        let sum_storage = [&partials, &grads];
        let dispatches: [(&Kernel, &dyn KernelShape, &[&TrackedBuffer]); 3] = [
            (&partials_kernel, &partials_shape, &partials_storage),
            (&sum_kernel, &sum, &sum_storage),
            (&compiled, &shape, &storage),
        ];
        run_dispatches(ctx, rows_step(rows), &dispatches).await?;
    } else {
        run_once(ctx, &compiled, rows_step(rows), &shape, &storage).await?;
    }
    let grads = ctx.read_f32(&grads, packed.len()).await?;
    Ok((
        ctx.read_f32(&dx, x.len()).await?,
        grads[PARAM_OFFSET..beta_offset].to_vec(),
        grads[beta_offset..beta_offset + width].to_vec(),
    ))
}

/// `l2/regularizer.wgsl` over the Dense kernels of `layout`: the updated gradient and the
/// penalty it added to metrics tally 0 for a batch of `rows` (divided back by `rows`).
pub async fn l2_regularizer(
    ctx: &GpuContext,
    params: &[f32],
    grads: &[f32],
    layout: &ParamLayout,
    l2: f32,
    rows: usize,
) -> Result<(Vec<f32>, f32), GpuError> {
    l2_regularizer_with(ctx, KernelVariant::Scalar, params, grads, layout, l2, rows).await
}

/// [`l2_regularizer`] through `variant`'s kernels: for Tiled the partial penalties then their
/// tally, as the trainer binds them.
pub async fn l2_regularizer_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    params: &[f32],
    grads: &[f32],
    layout: &ParamLayout,
    l2: f32,
    rows: usize,
) -> Result<(Vec<f32>, f32), GpuError> {
    let ranges_buffer = ctx.storage_with("ranges", bytemuck::cast_slice(&l2::kernel_ranges(layout)));
    let params_buffer = f32_storage(ctx, "params", params);
    let grads_buffer = f32_storage(ctx, "grads", grads);
    let metrics = ctx.storage("metrics", (TALLY_WORDS * 4) as u64);
    let shape = L2RegularizerShape::new(layout, l2, 0);
    let compiled = l2::kernel(ctx, variant);
    if variant == KernelVariant::Tiled {
        let partials = ctx.storage("partials", (shape.partials() * 4) as u64);
        let tally = L2PenaltyTallyShape::new(&shape);
        let tally_kernel = l2::tally_kernel(ctx);
        let storage = [&ranges_buffer, &params_buffer, &grads_buffer, &partials];
        let tally_storage = [&partials, &metrics];
        let dispatches: [(&Kernel, &dyn KernelShape, &[&TrackedBuffer]); 2] =
            [(&compiled, &shape, &storage), (&tally_kernel, &tally, &tally_storage)];
        run_dispatches(ctx, rows_step(rows), &dispatches).await?;
    } else {
        let storage = [&ranges_buffer, &params_buffer, &grads_buffer, &metrics];
        run_once(ctx, &compiled, rows_step(rows), &shape, &storage).await?;
    }
    let words = ctx.read_u32(&metrics, TALLY_WORDS).await?;
    let penalty = (f64::from(f32::from_bits(words[0])) - f64::from(f32::from_bits(words[1]))) / rows as f64;
    Ok((ctx.read_f32(&grads_buffer, grads.len()).await?, penalty as f32))
}

/// Kernel then bias of a conv layer, packed as [`packed_params`] does from `variant`'s
/// [`param_offset`], and `layout` moved to them.
fn packed_conv(variant: KernelVariant, layout: &ConvLayout, kernel: &[f32], bias: &[f32]) -> (Vec<f32>, ConvLayout) {
    let offset = param_offset(variant);
    let placed = ConvLayout { kernel_offset: offset, bias_offset: offset + kernel.len(), ..*layout };
    (packed_params(offset, kernel, bias), placed)
}

/// `conv/forward.wgsl`: `act(conv(x, kernel) + bias)` over NHWC images.
pub async fn conv2d_forward(
    ctx: &GpuContext,
    x: &[f32],
    rows: usize,
    layout: &ConvLayout,
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
) -> Result<Vec<f32>, GpuError> {
    conv2d_forward_with(ctx, KernelVariant::Scalar, x, rows, layout, kernel, bias, relu).await
}

/// [`conv2d_forward`] through `variant`'s kernel (the scalar one where it does not apply).
#[allow(clippy::too_many_arguments)]
pub async fn conv2d_forward_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    x: &[f32],
    rows: usize,
    layout: &ConvLayout,
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
) -> Result<Vec<f32>, GpuError> {
    let (packed, placed) = packed_conv(variant, layout, kernel, bias);
    let out_len = rows * placed.out_height() * placed.out_width() * placed.filters;
    let x_buffer = f32_storage(ctx, "x", x);
    let params = f32_storage(ctx, "params", &packed);
    let y = ctx.storage("y", (out_len * 4) as u64);
    let shape = ConvKernelShape::forward(&placed, relu);
    let compiled = conv::forward(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &[&x_buffer, &params, &y]).await?;
    ctx.read_f32(&y, out_len).await
}

/// `conv/backward_input.wgsl`: the gradient at the input, masked by ReLU'(below) when given.
pub async fn conv2d_backward_input(
    ctx: &GpuContext,
    dz: &[f32],
    rows: usize,
    layout: &ConvLayout,
    kernel: &[f32],
    below: Option<&[f32]>,
) -> Result<Vec<f32>, GpuError> {
    conv2d_backward_input_with(ctx, KernelVariant::Scalar, dz, rows, layout, kernel, below).await
}

/// [`conv2d_backward_input`] through `variant`'s kernel (the scalar one where it does not apply).
pub async fn conv2d_backward_input_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    dz: &[f32],
    rows: usize,
    layout: &ConvLayout,
    kernel: &[f32],
    below: Option<&[f32]>,
) -> Result<Vec<f32>, GpuError> {
    let (packed, placed) = packed_conv(variant, layout, kernel, &[]);
    let in_len = rows * layout.height * layout.width * layout.channels;
    let dz_buffer = f32_storage(ctx, "dz", dz);
    let params = f32_storage(ctx, "params", &packed);
    let below_buffer = match below {
        Some(below) => f32_storage(ctx, "below", below),
        None => ctx.storage("below", (in_len * 4) as u64),
    };
    let dx = ctx.storage("dx", (in_len * 4) as u64);
    let shape = ConvKernelShape::backward_input(&placed, below.is_some());
    let storage = [&dz_buffer, &params, &below_buffer, &dx];
    let compiled = conv::backward_input(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &storage).await?;
    ctx.read_f32(&dx, in_len).await
}

/// `conv/backward_weights.wgsl`: `(dkernel, dbias)`.
pub async fn conv2d_backward_weights(
    ctx: &GpuContext,
    x: &[f32],
    dz: &[f32],
    rows: usize,
    layout: &ConvLayout,
) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
    conv2d_backward_weights_with(ctx, KernelVariant::Scalar, x, dz, rows, layout).await
}

/// [`conv2d_backward_weights`] through `variant`'s kernel (the scalar one where it does not
/// apply).
pub async fn conv2d_backward_weights_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    x: &[f32],
    dz: &[f32],
    rows: usize,
    layout: &ConvLayout,
) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
    let zeros = vec![0.0; layout.kernel_len()];
    let (packed, placed) = packed_conv(variant, layout, &zeros, &vec![0.0; layout.filters]);
    let x_buffer = f32_storage(ctx, "x", x);
    let dz_buffer = f32_storage(ctx, "dz", dz);
    // NaN where the kernel writes nothing: the first chunk must overwrite, not add.
    let grads = f32_storage(ctx, "grads", &vec![f32::NAN; packed.len()]);
    let compiled = conv::backward_weights(ctx, variant);
    if variant == KernelVariant::Tiled {
        // As the trainer does: partial sums over chunks of the batch's positions, then their sum.
        let shape = ConvKernelShape::backward_weights_split(&placed, rows);
        let partials = ctx.storage("partials", (shape.partial_floats() * 4) as u64);
        let sum = SumPartialsShape::kernel_and_bias(
            shape.shape.result_rows() as usize * layout.filters,
            shape.shape.chunks as usize,
            layout.kernel_len(),
            placed.kernel_offset,
            placed.bias_offset,
        );
        let sum_kernel = partials::kernel(ctx);
        let storage = [&x_buffer, &dz_buffer, &partials];
        let sum_storage = [&partials, &grads];
        let dispatches: [(&Kernel, &dyn KernelShape, &[&TrackedBuffer]); 2] =
            [(&compiled, &shape, &storage), (&sum_kernel, &sum, &sum_storage)];
        run_dispatches(ctx, rows_step(rows), &dispatches).await?;
    } else {
        // As the trainer does: one dispatch per chunk of rows.
        let shapes = ConvKernelShape::backward_weights_chunks(&placed, rows);
        let shapes: Vec<&dyn KernelShape> = shapes.iter().map(|shape| shape as &dyn KernelShape).collect();
        let storage = [&x_buffer, &dz_buffer, &grads];
        run_each(ctx, &compiled, rows_step(rows), &shapes, &storage).await?;
    }
    let all = ctx.read_f32(&grads, packed.len()).await?;
    let (dkernel, dbias) = all[placed.kernel_offset..].split_at(layout.kernel_len());
    Ok((dkernel.to_vec(), dbias[..layout.filters].to_vec()))
}

/// `pool/forward.wgsl`.
pub async fn max_pool_forward(
    ctx: &GpuContext,
    x: &[f32],
    rows: usize,
    layout: &PoolLayout,
) -> Result<Vec<f32>, GpuError> {
    let out_len = rows * layout.out_height() * layout.out_width() * layout.channels;
    let x_buffer = f32_storage(ctx, "x", x);
    let y = ctx.storage("y", (out_len * 4) as u64);
    let shape = MaxPoolForwardShape::new(layout);
    run_once(ctx, &pool::forward(ctx), rows_step(rows), &shape, &[&x_buffer, &y]).await?;
    ctx.read_f32(&y, out_len).await
}

/// `zero_pad/forward.wgsl`.
pub async fn zero_pad_forward(
    ctx: &GpuContext,
    x: &[f32],
    rows: usize,
    layout: &PadLayout,
) -> Result<Vec<f32>, GpuError> {
    let out_len = rows * layout.out_height() * layout.out_width() * layout.channels;
    let x_buffer = f32_storage(ctx, "x", x);
    // NaN where the kernel would write nothing: every output element must be written.
    let y = f32_storage(ctx, "y", &vec![f32::NAN; out_len]);
    let shape = ZeroPadForwardShape::new(layout);
    run_once(ctx, &zero_pad::forward(ctx), rows_step(rows), &shape, &[&x_buffer, &y]).await?;
    ctx.read_f32(&y, out_len).await
}

/// `zero_pad/backward.wgsl`, masked by `below > 0` when given.
pub async fn zero_pad_backward(
    ctx: &GpuContext,
    dy: &[f32],
    rows: usize,
    layout: &PadLayout,
    below: Option<&[f32]>,
) -> Result<Vec<f32>, GpuError> {
    let in_len = rows * layout.height * layout.width * layout.channels;
    let dy_buffer = f32_storage(ctx, "dy", dy);
    let below_buffer = f32_storage(ctx, "below", below.unwrap_or(&vec![0.0; in_len]));
    let dx = f32_storage(ctx, "dx", &vec![f32::NAN; in_len]);
    let shape = ZeroPadBackwardShape::new(layout, below.is_some());
    run_once(ctx, &zero_pad::backward(ctx), rows_step(rows), &shape, &[&below_buffer, &dy_buffer, &dx]).await?;
    ctx.read_f32(&dx, in_len).await
}

/// `pool/backward.wgsl`.
pub async fn max_pool_backward(
    ctx: &GpuContext,
    x: &[f32],
    dy: &[f32],
    rows: usize,
    layout: &PoolLayout,
    relu_below: bool,
) -> Result<Vec<f32>, GpuError> {
    let x_buffer = f32_storage(ctx, "x", x);
    let dy_buffer = f32_storage(ctx, "dy", dy);
    // NaN where the kernel writes nothing: in training dx holds the previous step's values.
    let dx = f32_storage(ctx, "dx", &vec![f32::NAN; x.len()]);
    let shape = MaxPoolBackwardShape::new(layout, relu_below);
    run_once(ctx, &pool::backward(ctx), rows_step(rows), &shape, &[&x_buffer, &dy_buffer, &dx]).await?;
    ctx.read_f32(&dx, x.len()).await
}
