//! Runs one op on host data and reads its output back: how the tests compare each WGSL kernel
//! with its twin in `fashion_core::reference`. The binding is the op's own (its bind functions in
//! `gpu/ops/<family>.rs`, the ones the trainer calls, whole chains included); this harness only
//! uploads the inputs and reads the outputs. Parameters are placed at an odd offset in the flat
//! buffer so the kernels' offset handling is exercised too.

use std::sync::Mutex;

use fashion_core::gpu::context::{GpuContext, GpuError, TrackedBuffer};
use fashion_core::gpu::kernel::{step_buffer, write_steps, Binder, BoundKernel, KernelVariant, StepUniform};
use fashion_core::gpu::ops::adam::{self, AdamIo};
use fashion_core::gpu::ops::batch_norm::{
    self, BatchNormBackwardEvalIo, BatchNormBackwardIo, BatchNormForwardIo, BatchNormMode,
};
use fashion_core::gpu::ops::conv::{self, ConvBackwardInputIo, ConvBackwardWeightsIo, ConvForwardIo};
use fashion_core::gpu::ops::dense::{self, DenseBackwardInputIo, DenseBackwardWeightsIo, DenseForwardIo};
use fashion_core::gpu::ops::dropout::{self, DropoutBackwardIo, DropoutForwardIo};
use fashion_core::gpu::ops::gather::{self, GatherIo};
use fashion_core::gpu::ops::l2::{self, L2Io};
use fashion_core::gpu::ops::pool::{self, MaxPoolBackwardIo, MaxPoolForwardIo};
use fashion_core::gpu::ops::saliency::{self, SaliencySeedIo};
use fashion_core::gpu::ops::softmax::{self, SoftmaxCrossEntropyIo};
use fashion_core::gpu::ops::tanh::{self, TanhBackwardIo, TanhForwardIo};
use fashion_core::gpu::ops::zero_pad::{self, ZeroPadBackwardIo, ZeroPadForwardIo};
use fashion_core::gpu::ops::{KernelChoice, Kernels, TALLY_WORDS};
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
        KernelVariant::Scalar | KernelVariant::Gpu => PARAM_OFFSET,
        KernelVariant::Vec4 => PARAM_OFFSET.next_multiple_of(4),
    }
}

/// Every kernel, each one with several implementations in `variant`'s (where it has none, the
/// scalar one), compiled once per process for the process's device.
fn kernels(ctx: &GpuContext, variant: KernelVariant) -> &'static Kernels {
    static COMPILED: Mutex<Vec<(usize, KernelVariant, &'static Kernels)>> = Mutex::new(Vec::new());
    let device = ctx as *const GpuContext as usize;
    let mut compiled = COMPILED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&(_, _, kernels)) = compiled.iter().find(|(d, v, _)| *d == device && *v == variant) {
        return kernels;
    }
    let choice = KernelChoice {
        dense_forward: variant,
        dense_backward_input: variant,
        dense_backward_weights: variant,
        adam: variant,
        conv: variant,
        softmax: variant,
        batch_norm: variant,
        l2: variant,
    };
    let kernels: &'static Kernels = Box::leak(Box::new(Kernels::new(ctx, &choice)));
    compiled.push((device, variant, kernels));
    kernels
}

/// Binds what `bind` binds to a step buffer holding `step`, dispatches it in order in one pass for
/// a batch of `step.rows`, and waits.
async fn run(
    ctx: &GpuContext,
    step: StepUniform,
    bind: impl FnOnce(&Binder) -> Vec<BoundKernel>,
) -> Result<(), GpuError> {
    let steps = step_buffer(ctx, 1);
    write_steps(ctx, &steps, &[step]);
    let bound = bind(&Binder { ctx, steps: &steps });
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
    let io = GatherIo {
        images: &images_buffer,
        labels: &labels_buffer,
        order: &order_buffer,
        x: &x,
        batch_labels: &batch_labels,
    };
    let kernel = &kernels(ctx, KernelVariant::Scalar).gather_batch;
    run(ctx, step, |b| vec![gather::bind(b, kernel, pixels, io)]).await?;
    Ok((ctx.read_f32(&x, rows * pixels).await?, ctx.read_u32(&batch_labels, rows).await?))
}

/// `dense/forward.wgsl`: `act(x · kernel + bias)`, through `variant`'s kernel (the 4×4 one where
/// it does not apply).
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
    let layer = dense_at(inputs, units, offset);
    let io = DenseForwardIo { x: &x_buffer, params: &params, y: &y };
    let compiled = &kernels(ctx, variant).dense_forward;
    run(ctx, rows_step(rows), |b| vec![dense::bind_forward(b, compiled, &layer, relu, io)]).await?;
    ctx.read_f32(&y, rows * units).await
}

/// `dense/backward_input.wgsl`: `dz · kernelᵀ`, masked by ReLU'(below) when given, through
/// `variant`'s kernel (the 4×4 one where it does not apply).
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
    let layer = dense_at(inputs, units, offset);
    let io = DenseBackwardInputIo { dy: &dz_buffer, params: &params, below: &below_buffer, dx: &dx };
    let compiled = &kernels(ctx, variant).dense_backward_input;
    run(ctx, rows_step(rows), |b| vec![dense::bind_backward_input(b, compiled, &layer, below.is_some(), io)]).await?;
    ctx.read_f32(&dx, rows * inputs).await
}

/// `dense/backward_weights.wgsl`: `(xᵀ · dz, Σ_rows dz)`, through `variant`'s kernel (the 4×4 one
/// where it does not apply).
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
    let layer = dense_at(inputs, units, offset);
    let io = DenseBackwardWeightsIo { x: &x_buffer, dy: &dz_buffer, grads: &grads };
    let compiled = &kernels(ctx, variant).dense_backward_weights;
    run(ctx, rows_step(rows), |b| vec![dense::bind_backward_weights(b, compiled, &layer, io)]).await?;
    let all = ctx.read_f32(&grads, offset + inputs * units + units).await?;
    let (dkernel, dbias) = all[offset..].split_at(inputs * units);
    Ok((dkernel.to_vec(), dbias.to_vec()))
}

/// `softmax/cross_entropy.wgsl` with the gradient written, metrics tally 1 used, through
/// `variant`'s kernels (for Gpu the per-row kernel then `softmax/metrics_tally.wgsl`).
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
    let kernels = kernels(ctx, variant);
    run(ctx, rows_step(rows), |b| {
        let row_metrics = softmax::row_metrics(b, kernels, rows);
        let io = SoftmaxCrossEntropyIo {
            logits: &logits_buffer,
            labels: &labels_buffer,
            probs: &probs,
            dlogits: &dlogits,
            metrics: &metrics,
            row_metrics: row_metrics.as_ref(),
        };
        softmax::bind_loss(b, kernels, classes, 1, true, rows, io)
    })
    .await?;
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

/// `adam/adam.wgsl`: one step `step` (1-based) on `state` with `grads`, through `variant`'s kernel. Only the first `grads.len()` parameters are
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
    let step = StepUniform {
        rows: 1,
        t: step as u32,
        lr_t: config.corrected_learning_rate(config.learning_rate, step),
        ..Default::default()
    };
    let io = AdamIo { params: &params, grads: &grads_buffer, m: &m, v: &v };
    let compiled = &kernels(ctx, variant).adam;
    run(ctx, step, |b| vec![adam::bind(b, compiled, count, config, io)]).await?;
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
    let step = StepUniform { seed, ..StepUniform::rows(rows) };
    let kernel = &kernels(ctx, KernelVariant::Scalar).dropout_forward;
    let io = DropoutForwardIo { x: &x_buffer, y: &y };
    run(ctx, step, |b| vec![dropout::bind_forward(b, kernel, width, rate, index, training, io)]).await?;
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
    let step = StepUniform { seed, ..StepUniform::rows(rows) };
    let kernel = &kernels(ctx, KernelVariant::Scalar).dropout_backward;
    let io = DropoutBackwardIo { dy: &dy_buffer, below: &below_buffer, dx: &dx };
    run(ctx, step, |b| vec![dropout::bind_backward(b, kernel, width, rate, index, below.is_some(), io)]).await?;
    ctx.read_f32(&dx, dy.len()).await
}

/// γ, β, moving mean, moving variance packed after [`PARAM_OFFSET`] filler values, and the
/// layer placing them, for `rows` rows of `len` values in all (one or more rows of the features
/// each: an image's positions of its channels).
fn packed_batch_norm(t: &BatchNormTensors<'_>, len: usize, rows: usize) -> (Vec<f32>, BatchNormLayout) {
    let mut params = vec![f32::NAN; PARAM_OFFSET];
    let mut offsets = [0; 4];
    for (offset, tensor) in offsets.iter_mut().zip([t.gamma, t.beta, t.moving_mean, t.moving_variance]) {
        *offset = params.len();
        params.extend_from_slice(tensor);
    }
    let width = t.gamma.len();
    let [gamma_offset, beta_offset, moving_mean_offset, moving_variance_offset] = offsets;
    let layer = BatchNormLayout {
        width,
        positions: len / (rows * width).max(1),
        gamma_offset,
        beta_offset,
        moving_mean_offset,
        moving_variance_offset,
    };
    (params, layer)
}

/// `batch_norm/backward_eval.wgsl`: dx in evaluation mode, from the moving variance in `tensors`.
pub async fn batch_norm_backward_eval(
    ctx: &GpuContext,
    dy: &[f32],
    rows: usize,
    tensors: &BatchNormTensors<'_>,
    below: Option<&[f32]>,
) -> Result<Vec<f32>, GpuError> {
    let (packed, layer) = packed_batch_norm(tensors, dy.len(), rows);
    let dy_buffer = f32_storage(ctx, "dy", dy);
    let params = f32_storage(ctx, "params", &packed);
    let below_buffer = f32_storage(ctx, "below", below.unwrap_or(dy));
    let dx = ctx.storage("dx", (dy.len() * 4) as u64);
    let kernel = &kernels(ctx, KernelVariant::Scalar).batch_norm_backward_eval;
    let io = BatchNormBackwardEvalIo { dy: &dy_buffer, params: &params, below: &below_buffer, dx: &dx };
    run(ctx, rows_step(rows), |b| vec![batch_norm::bind_backward_eval(b, kernel, &layer, below.is_some(), io)]).await?;
    ctx.read_f32(&dx, dy.len()).await
}

/// `saliency/seed.wgsl`: ∂p_c/∂logits for each row of `probs` (`classes` a row).
pub async fn saliency_seed(ctx: &GpuContext, probs: &[f32], classes: usize) -> Result<Vec<f32>, GpuError> {
    let rows = probs.len() / classes;
    let probs_buffer = f32_storage(ctx, "probs", probs);
    let dlogits = ctx.storage("dlogits", (probs.len() * 4) as u64);
    let kernel = &kernels(ctx, KernelVariant::Scalar).saliency_seed;
    let io = SaliencySeedIo { probs: &probs_buffer, dlogits: &dlogits };
    run(ctx, rows_step(rows), |b| vec![saliency::bind_seed(b, kernel, classes, io)]).await?;
    ctx.read_f32(&dlogits, probs.len()).await
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

/// [`batch_norm_forward`] through `variant`'s kernels, split where the trainer splits it (in
/// training for Gpu, or over an image's channels: the statistics' partials and combine, then the
/// normalisation).
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
    let (packed, layer) = packed_batch_norm(tensors, x.len(), rows);
    let x_buffer = f32_storage(ctx, "x", x);
    let params = f32_storage(ctx, "params", &packed);
    let y = ctx.storage("y", (x.len() * 4) as u64);
    let stats = ctx.storage("stats", (2 * width * 4) as u64);
    let mode = if training { BatchNormMode::Training } else { BatchNormMode::Evaluation };
    let kernels = kernels(ctx, variant);
    let io = BatchNormForwardIo { x: &x_buffer, params: &params, y: &y, stats: &stats };
    run(ctx, rows_step(rows), |b| batch_norm::bind_forward(b, kernels, &layer, relu, mode, rows, io)).await?;
    let stats = ctx.read_f32(&stats, 2 * width).await?;
    let params = ctx.read_f32(&params, packed.len()).await?;
    let at = |offset: usize| params[offset..offset + width].to_vec();
    let statistics = BatchNormStatistics {
        mean: stats[..width].to_vec(),
        inv_std: stats[width..].to_vec(),
        moving_mean: at(layer.moving_mean_offset),
        moving_variance: at(layer.moving_variance_offset),
    };
    Ok((ctx.read_f32(&y, x.len()).await?, statistics))
}

/// `batch_norm/backward.wgsl`: `(dx, dγ, dβ)` from the forward pass's statistics, through
/// `variant`'s kernels, split where the trainer splits it (the
/// partial sums, their sum into dγ and dβ, then dx).
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
    let kernels = kernels(ctx, variant);
    let io = BatchNormBackwardIo {
        x: &x_buffer,
        dy: &dy_buffer,
        params: &params,
        stats: &stats_buffer,
        below: &below_buffer,
        dx: &dx,
        grads: &grads,
    };
    run(ctx, rows_step(rows), |b| batch_norm::bind_backward(b, kernels, &layer, below.is_some(), rows, io)).await?;
    let grads = ctx.read_f32(&grads, packed.len()).await?;
    Ok((
        ctx.read_f32(&dx, x.len()).await?,
        grads[PARAM_OFFSET..beta_offset].to_vec(),
        grads[beta_offset..beta_offset + width].to_vec(),
    ))
}

/// `l2/regularizer.wgsl` over the Dense kernels of `layout`: the updated gradient and the
/// penalty it added to metrics tally 0 for a batch of `rows` (divided back by `rows`), through
/// `variant`'s kernels (for Gpu the partial penalties then their tally).
pub async fn l2_regularizer_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    params: &[f32],
    grads: &[f32],
    layout: &ParamLayout,
    l2: f32,
    rows: usize,
) -> Result<(Vec<f32>, f32), GpuError> {
    let params_buffer = f32_storage(ctx, "params", params);
    let grads_buffer = f32_storage(ctx, "grads", grads);
    let metrics = ctx.storage("metrics", (TALLY_WORDS * 4) as u64);
    let kernels = kernels(ctx, variant);
    let io = L2Io { params: &params_buffer, grads: &grads_buffer, metrics: &metrics };
    run(ctx, rows_step(rows), |b| l2::bind(b, kernels, layout, l2, 0, io)).await?;
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

/// `conv/forward.wgsl`: `act(conv(x, kernel) + bias)` over NHWC images, through `variant`'s
/// kernel (the scalar one where it does not apply).
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
    let compiled = &kernels(ctx, variant).conv2d_forward;
    let io = ConvForwardIo { x: &x_buffer, params: &params, y: &y };
    run(ctx, rows_step(rows), |b| vec![conv::bind_forward(b, compiled, &placed, relu, io)]).await?;
    ctx.read_f32(&y, out_len).await
}

/// `conv/backward_input.wgsl`: the gradient at the input, masked by ReLU'(below) when given,
/// through `variant`'s kernel (the scalar one where it does not apply).
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
    let compiled = &kernels(ctx, variant).conv2d_backward_input;
    let io = ConvBackwardInputIo { dy: &dz_buffer, params: &params, below: &below_buffer, dx: &dx };
    run(ctx, rows_step(rows), |b| vec![conv::bind_backward_input(b, compiled, &placed, below.is_some(), io)]).await?;
    ctx.read_f32(&dx, in_len).await
}

/// `conv/backward_weights.wgsl`: `(dkernel, dbias)` through `variant`'s kernels: for Gpu the
/// partial sums over chunks
/// of the batch's positions then their sum; else one dispatch per chunk of rows.
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
    let kernels = kernels(ctx, variant);
    let io = ConvBackwardWeightsIo { x: &x_buffer, dy: &dz_buffer, grads: &grads };
    run(ctx, rows_step(rows), |b| conv::bind_backward_weights(b, kernels, &placed, rows, io)).await?;
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
    let kernel = &kernels(ctx, KernelVariant::Scalar).max_pool_forward;
    run(ctx, rows_step(rows), |b| {
        vec![pool::bind_forward(b, kernel, layout, MaxPoolForwardIo { x: &x_buffer, y: &y })]
    })
    .await?;
    ctx.read_f32(&y, out_len).await
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
    let kernel = &kernels(ctx, KernelVariant::Scalar).max_pool_backward;
    let io = MaxPoolBackwardIo { x: &x_buffer, dy: &dy_buffer, dx: &dx };
    run(ctx, rows_step(rows), |b| vec![pool::bind_backward(b, kernel, layout, relu_below, io)]).await?;
    ctx.read_f32(&dx, x.len()).await
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
    let kernel = &kernels(ctx, KernelVariant::Scalar).zero_pad_forward;
    let io = ZeroPadForwardIo { x: &x_buffer, y: &y };
    run(ctx, rows_step(rows), |b| vec![zero_pad::bind_forward(b, kernel, layout, io)]).await?;
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
    let kernel = &kernels(ctx, KernelVariant::Scalar).zero_pad_backward;
    let io = ZeroPadBackwardIo { below: &below_buffer, dy: &dy_buffer, dx: &dx };
    run(ctx, rows_step(rows), |b| vec![zero_pad::bind_backward(b, kernel, layout, below.is_some(), io)]).await?;
    ctx.read_f32(&dx, in_len).await
}

/// `tanh/forward.wgsl`: `tanh(x)`.
pub async fn tanh_forward(ctx: &GpuContext, x: &[f32], rows: usize) -> Result<Vec<f32>, GpuError> {
    let width = x.len() / rows;
    let x_buffer = f32_storage(ctx, "x", x);
    let y = ctx.storage("y", (x.len() * 4) as u64);
    let kernel = &kernels(ctx, KernelVariant::Scalar).tanh_forward;
    run(ctx, rows_step(rows), |b| vec![tanh::bind_forward(b, kernel, width, TanhForwardIo { x: &x_buffer, y: &y })])
        .await?;
    ctx.read_f32(&y, x.len()).await
}

/// `tanh/backward.wgsl`: `dy · (1 − y²)` from the forward pass's output `y`.
pub async fn tanh_backward(ctx: &GpuContext, y: &[f32], dy: &[f32], rows: usize) -> Result<Vec<f32>, GpuError> {
    let width = y.len() / rows;
    let y_buffer = f32_storage(ctx, "y", y);
    let dy_buffer = f32_storage(ctx, "dy", dy);
    let dx = ctx.storage("dx", (y.len() * 4) as u64);
    let kernel = &kernels(ctx, KernelVariant::Scalar).tanh_backward;
    let io = TanhBackwardIo { y: &y_buffer, dy: &dy_buffer, dx: &dx };
    run(ctx, rows_step(rows), |b| vec![tanh::bind_backward(b, kernel, width, io)]).await?;
    ctx.read_f32(&dx, y.len()).await
}
