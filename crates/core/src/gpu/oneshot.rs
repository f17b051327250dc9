//! Runs a single kernel on host data and reads its output back: how the tests compare each WGSL
//! kernel with its twin in [`crate::reference`]. Parameters are placed at an odd offset in the
//! flat buffer so the kernels' offset handling is exercised too.

use fashion_data::PIXELS_PER_IMAGE;

use super::context::{GpuContext, GpuError, TrackedBuffer};
use super::kernels::{
    self, AdamShape, BatchNormBackwardShape, BatchNormForwardShape, ConvShape, DenseBackwardInputShape,
    DenseBackwardWeightsShape, DenseForwardShape, DropoutShape, GatherShape, Grid, Kernel, KernelVariant,
    L2RegularizerShape, PoolShape, StepUniform, METRICS_SLOT_WORDS,
};
use crate::model::{ConvSlot, ParamLayout, PoolSlot, BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM};
use crate::optimizer::AdamConfig;
use crate::reference::{BatchNormStatistics, BatchNormTensors, SoftmaxCrossEntropy};

/// Where the tensors start in the flat parameter buffer of these one-shot runs.
const PARAM_OFFSET: usize = 3;

/// Where a layer's tensors start for `variant`: odd for the scalar kernels, the next multiple of 4
/// for the vec4 ones (an odd offset would make them fall back to the scalar kernels).
fn param_offset(variant: KernelVariant) -> usize {
    match variant {
        KernelVariant::Scalar => PARAM_OFFSET,
        KernelVariant::Vec4 => PARAM_OFFSET.next_multiple_of(4),
    }
}

/// Binds `shape` and `storage` to `kernel`, dispatches it once for a batch of `rows`, and waits.
async fn run_once<S: bytemuck::Pod>(
    ctx: &GpuContext,
    kernel: &Kernel,
    step: StepUniform,
    shape: &S,
    storage: &[&TrackedBuffer],
    grid: Grid,
) -> Result<(), GpuError> {
    run_each(ctx, kernel, step, std::slice::from_ref(shape), storage, grid).await
}

/// Dispatches `kernel` once per shape, in order, in one pass, and waits.
async fn run_each<S: bytemuck::Pod>(
    ctx: &GpuContext,
    kernel: &Kernel,
    step: StepUniform,
    shapes: &[S],
    storage: &[&TrackedBuffer],
    grid: Grid,
) -> Result<(), GpuError> {
    let steps = kernels::step_buffer(ctx, 1);
    kernels::write_steps(ctx, &steps, &[step]);
    let bound: Vec<_> = shapes.iter().map(|shape| kernel.bind(ctx, &steps, shape, storage, grid)).collect();
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
    StepUniform { rows: rows as u32, ..Default::default() }
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

/// `gather_batch.wgsl` on a dataset of 28×28 images.
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
    let shape = GatherShape { pixels: pixels as u32, ..Default::default() };
    let storage = [&images_buffer, &labels_buffer, &order_buffer, &x, &batch_labels];
    run_once(ctx, &kernels::gather_batch(ctx), step, &shape, &storage, kernels::gather_grid(pixels)).await?;
    Ok((ctx.read_f32(&x, rows * pixels).await?, ctx.read_u32(&batch_labels, rows).await?))
}

/// `dense_forward.wgsl`: `act(x · kernel + bias)`.
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
    let shape = DenseForwardShape {
        inputs: inputs as u32,
        units: units as u32,
        kernel_offset: offset as u32,
        bias_offset: (offset + kernel.len()) as u32,
        relu: u32::from(relu),
        ..Default::default()
    };
    let grid = kernels::dense_forward_grid(units);
    let compiled = kernels::dense_forward_with(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &[&x_buffer, &params, &y], grid).await?;
    ctx.read_f32(&y, rows * units).await
}

/// `dense_backward_input.wgsl`: `dz · kernelᵀ`, masked by ReLU'(below) when given.
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
    let shape = DenseBackwardInputShape {
        inputs: inputs as u32,
        units: units as u32,
        kernel_offset: offset as u32,
        relu_below: u32::from(below.is_some()),
    };
    let storage = [&dz_buffer, &params, &below_buffer, &dx];
    let grid = kernels::dense_backward_input_grid(inputs);
    let compiled = kernels::dense_backward_input_with(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &storage, grid).await?;
    ctx.read_f32(&dx, rows * inputs).await
}

/// `dense_backward_weights.wgsl`: `(xᵀ · dz, Σ_rows dz)`.
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
    let shape = DenseBackwardWeightsShape {
        inputs: inputs as u32,
        units: units as u32,
        kernel_offset: offset as u32,
        bias_offset: (offset + inputs * units) as u32,
    };
    let grid = kernels::dense_backward_weights_grid(inputs, units);
    let compiled = kernels::dense_backward_weights_with(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &[&x_buffer, &dz_buffer, &grads], grid).await?;
    let all = ctx.read_f32(&grads, offset + inputs * units + units).await?;
    let (dkernel, dbias) = all[offset..].split_at(inputs * units);
    Ok((dkernel.to_vec(), dbias.to_vec()))
}

/// `softmax_cross_entropy.wgsl` with the gradient written; metrics slot 1 is used.
pub async fn softmax_cross_entropy(
    ctx: &GpuContext,
    logits: &[f32],
    labels: &[u32],
    classes: usize,
) -> Result<SoftmaxCrossEntropy, GpuError> {
    let rows = labels.len();
    let logits_buffer = f32_storage(ctx, "logits", logits);
    let labels_buffer = ctx.storage_with("labels", bytemuck::cast_slice(labels));
    let probs = ctx.storage("probs", (rows * classes * 4) as u64);
    let dlogits = ctx.storage("dlogits", (rows * classes * 4) as u64);
    let metrics = ctx.storage("metrics", (2 * METRICS_SLOT_WORDS * 4) as u64);
    // As the trainer does: one dispatch per chunk of rows.
    let shapes = kernels::softmax_cross_entropy_shapes(classes, 1, true, rows);
    let storage = [&logits_buffer, &labels_buffer, &probs, &dlogits, &metrics];
    run_each(ctx, &kernels::softmax_cross_entropy(ctx), rows_step(rows), &shapes, &storage, Grid::Fixed([1, 1, 1]))
        .await?;
    let words = ctx.read_u32(&metrics, 2 * METRICS_SLOT_WORDS).await?;
    let slot = &words[METRICS_SLOT_WORDS..];
    Ok(SoftmaxCrossEntropy {
        probs: ctx.read_f32(&probs, rows * classes).await?,
        dlogits: ctx.read_f32(&dlogits, rows * classes).await?,
        loss_sum: f64::from(f32::from_bits(slot[0])) - f64::from(f32::from_bits(slot[1])),
        correct: slot[2],
    })
}

/// The state Adam updates.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState {
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// `adam.wgsl`: one step `step` (1-based) on `state` with `grads`.
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
    let shape = AdamShape { count: count as u32, beta1: config.beta1, beta2: config.beta2, epsilon: config.epsilon };
    let step = StepUniform {
        rows: 1,
        t: step as u32,
        lr_t: config.corrected_learning_rate(config.learning_rate, step),
        ..Default::default()
    };
    let compiled = kernels::adam_with(ctx, variant);
    run_once(ctx, &compiled, step, &shape, &[&params, &grads_buffer, &m, &v], kernels::adam_grid(count)).await?;
    Ok(AdamState {
        params: ctx.read_f32(&params, len).await?,
        m: ctx.read_f32(&m, len).await?,
        v: ctx.read_f32(&v, len).await?,
    })
}

/// `dropout_forward.wgsl` for dropout op `index` in the step seeded `seed`.
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
    let shape = DropoutShape { width: width as u32, rate, index, flag: u32::from(training) };
    let step = StepUniform { rows: rows as u32, seed, ..Default::default() };
    let grid = kernels::elementwise_grid(width);
    run_once(ctx, &kernels::dropout_forward(ctx), step, &shape, &[&x_buffer, &y], grid).await?;
    ctx.read_f32(&y, x.len()).await
}

/// `dropout_backward.wgsl`: `dy · keep / (1 − rate)`, masked by ReLU'(below) when given.
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
    let shape = DropoutShape { width: width as u32, rate, index, flag: u32::from(below.is_some()) };
    let step = StepUniform { rows: rows as u32, seed, ..Default::default() };
    let grid = kernels::elementwise_grid(width);
    run_once(ctx, &kernels::dropout_backward(ctx), step, &shape, &[&dy_buffer, &below_buffer, &dx], grid).await?;
    ctx.read_f32(&dx, dy.len()).await
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

/// `batch_norm_forward.wgsl`: `y`, and in training the statistics it stores (μ, 1/std) with the
/// updated moving mean and variance.
pub async fn batch_norm_forward(
    ctx: &GpuContext,
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
    let shape = BatchNormForwardShape {
        width: width as u32,
        gamma_offset: gamma,
        beta_offset: beta,
        moving_mean_offset: moving_mean,
        moving_variance_offset: moving_variance,
        training: u32::from(training),
        relu: u32::from(relu),
        momentum: BATCH_NORM_MOMENTUM,
        epsilon: BATCH_NORM_EPSILON,
        _pad: [0; 3],
    };
    let storage = [&x_buffer, &params, &y, &stats];
    let grid = kernels::per_feature_grid(width);
    run_once(ctx, &kernels::batch_norm_forward(ctx), rows_step(rows), &shape, &storage, grid).await?;
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

/// `batch_norm_backward.wgsl`: `(dx, dγ, dβ)` from the forward pass's statistics.
pub async fn batch_norm_backward(
    ctx: &GpuContext,
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
    let shape = BatchNormBackwardShape {
        width: width as u32,
        gamma_offset: PARAM_OFFSET as u32,
        beta_offset: beta_offset as u32,
        relu_below: u32::from(below.is_some()),
    };
    let storage = [&x_buffer, &dy_buffer, &params, &stats_buffer, &below_buffer, &dx, &grads];
    let grid = kernels::per_feature_grid(width);
    run_once(ctx, &kernels::batch_norm_backward(ctx), rows_step(rows), &shape, &storage, grid).await?;
    let grads = ctx.read_f32(&grads, packed.len()).await?;
    Ok((
        ctx.read_f32(&dx, x.len()).await?,
        grads[PARAM_OFFSET..beta_offset].to_vec(),
        grads[beta_offset..beta_offset + width].to_vec(),
    ))
}

/// `l2_regularizer.wgsl` over the Dense kernels of `layout`: the updated gradient and the
/// penalty it added to metrics slot 0 for a batch of `rows` (divided back by `rows`).
pub async fn l2_regularizer(
    ctx: &GpuContext,
    params: &[f32],
    grads: &[f32],
    layout: &ParamLayout,
    l2: f32,
    rows: usize,
) -> Result<(Vec<f32>, f32), GpuError> {
    let ranges: Vec<u32> = layout.dense.iter().flat_map(|d| [d.kernel_offset as u32, d.kernel_len() as u32]).collect();
    let ranges_buffer = ctx.storage_with("ranges", bytemuck::cast_slice(&ranges));
    let params_buffer = f32_storage(ctx, "params", params);
    let grads_buffer = f32_storage(ctx, "grads", grads);
    let metrics = ctx.storage("metrics", (METRICS_SLOT_WORDS * 4) as u64);
    let shape = L2RegularizerShape { ranges: layout.dense.len() as u32, l2, metrics_slot: 0, _pad: 0 };
    let storage = [&ranges_buffer, &params_buffer, &grads_buffer, &metrics];
    run_once(ctx, &kernels::l2_regularizer(ctx), rows_step(rows), &shape, &storage, Grid::Fixed([1, 1, 1])).await?;
    let words = ctx.read_u32(&metrics, METRICS_SLOT_WORDS).await?;
    let penalty = (f64::from(f32::from_bits(words[0])) - f64::from(f32::from_bits(words[1]))) / rows as f64;
    Ok((ctx.read_f32(&grads_buffer, grads.len()).await?, penalty as f32))
}

/// Kernel then bias of a conv layer, packed as [`packed_params`] does from `variant`'s
/// [`param_offset`], and `slot` moved to them.
fn packed_conv(variant: KernelVariant, slot: &ConvSlot, kernel: &[f32], bias: &[f32]) -> (Vec<f32>, ConvSlot) {
    let offset = param_offset(variant);
    let placed = ConvSlot { kernel_offset: offset, bias_offset: offset + kernel.len(), ..*slot };
    (packed_params(offset, kernel, bias), placed)
}

/// `conv2d_forward.wgsl`: `act(conv(x, kernel) + bias)` over NHWC images.
pub async fn conv2d_forward(
    ctx: &GpuContext,
    x: &[f32],
    rows: usize,
    slot: &ConvSlot,
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
) -> Result<Vec<f32>, GpuError> {
    conv2d_forward_with(ctx, KernelVariant::Scalar, x, rows, slot, kernel, bias, relu).await
}

/// [`conv2d_forward`] through `variant`'s kernel (the scalar one where it does not apply).
#[allow(clippy::too_many_arguments)]
pub async fn conv2d_forward_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    x: &[f32],
    rows: usize,
    slot: &ConvSlot,
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
) -> Result<Vec<f32>, GpuError> {
    let (packed, placed) = packed_conv(variant, slot, kernel, bias);
    let out_len = rows * placed.out_height() * placed.out_width() * placed.filters;
    let x_buffer = f32_storage(ctx, "x", x);
    let params = f32_storage(ctx, "params", &packed);
    let y = ctx.storage("y", (out_len * 4) as u64);
    let shape = ConvShape::new(&placed, relu);
    let grid = kernels::conv2d_forward_grid(&placed);
    let compiled = kernels::conv2d_forward_with(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &[&x_buffer, &params, &y], grid).await?;
    ctx.read_f32(&y, out_len).await
}

/// `conv2d_backward_input.wgsl`: the gradient at the input, masked by ReLU'(below) when given.
pub async fn conv2d_backward_input(
    ctx: &GpuContext,
    dz: &[f32],
    rows: usize,
    slot: &ConvSlot,
    kernel: &[f32],
    below: Option<&[f32]>,
) -> Result<Vec<f32>, GpuError> {
    conv2d_backward_input_with(ctx, KernelVariant::Scalar, dz, rows, slot, kernel, below).await
}

/// [`conv2d_backward_input`] through `variant`'s kernel (the scalar one where it does not apply).
pub async fn conv2d_backward_input_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    dz: &[f32],
    rows: usize,
    slot: &ConvSlot,
    kernel: &[f32],
    below: Option<&[f32]>,
) -> Result<Vec<f32>, GpuError> {
    let (packed, placed) = packed_conv(variant, slot, kernel, &[]);
    let in_len = rows * slot.height * slot.width * slot.channels;
    let dz_buffer = f32_storage(ctx, "dz", dz);
    let params = f32_storage(ctx, "params", &packed);
    let below_buffer = match below {
        Some(below) => f32_storage(ctx, "below", below),
        None => ctx.storage("below", (in_len * 4) as u64),
    };
    let dx = ctx.storage("dx", (in_len * 4) as u64);
    let shape = ConvShape::new(&placed, below.is_some());
    let storage = [&dz_buffer, &params, &below_buffer, &dx];
    let grid = kernels::conv2d_backward_input_grid(&placed);
    let compiled = kernels::conv2d_backward_input_with(ctx, variant);
    run_once(ctx, &compiled, rows_step(rows), &shape, &storage, grid).await?;
    ctx.read_f32(&dx, in_len).await
}

/// `conv2d_backward_weights.wgsl`: `(dkernel, dbias)`.
pub async fn conv2d_backward_weights(
    ctx: &GpuContext,
    x: &[f32],
    dz: &[f32],
    rows: usize,
    slot: &ConvSlot,
) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
    conv2d_backward_weights_with(ctx, KernelVariant::Scalar, x, dz, rows, slot).await
}

/// [`conv2d_backward_weights`] through `variant`'s kernel (the scalar one where it does not
/// apply).
pub async fn conv2d_backward_weights_with(
    ctx: &GpuContext,
    variant: KernelVariant,
    x: &[f32],
    dz: &[f32],
    rows: usize,
    slot: &ConvSlot,
) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
    let zeros = vec![0.0; slot.kernel_len()];
    let (packed, placed) = packed_conv(variant, slot, &zeros, &vec![0.0; slot.filters]);
    let x_buffer = f32_storage(ctx, "x", x);
    let dz_buffer = f32_storage(ctx, "dz", dz);
    // NaN where the kernel writes nothing: the first chunk must overwrite, not add.
    let grads = f32_storage(ctx, "grads", &vec![f32::NAN; packed.len()]);
    // As the trainer does: one dispatch per chunk of rows.
    let shapes = kernels::conv2d_backward_weights_shapes(&placed, rows);
    let grid = kernels::conv2d_backward_weights_grid(&placed);
    let storage = [&x_buffer, &dz_buffer, &grads];
    let compiled = kernels::conv2d_backward_weights_with(ctx, variant);
    run_each(ctx, &compiled, rows_step(rows), &shapes, &storage, grid).await?;
    let all = ctx.read_f32(&grads, packed.len()).await?;
    let (dkernel, dbias) = all[placed.kernel_offset..].split_at(slot.kernel_len());
    Ok((dkernel.to_vec(), dbias[..slot.filters].to_vec()))
}

/// `max_pool_forward.wgsl`.
pub async fn max_pool_forward(ctx: &GpuContext, x: &[f32], rows: usize, slot: &PoolSlot) -> Result<Vec<f32>, GpuError> {
    let out_len = rows * slot.out_height() * slot.out_width() * slot.channels;
    let x_buffer = f32_storage(ctx, "x", x);
    let y = ctx.storage("y", (out_len * 4) as u64);
    let grid = kernels::max_pool_grid(out_len / rows);
    let shape = PoolShape::new(slot, false);
    run_once(ctx, &kernels::max_pool_forward(ctx), rows_step(rows), &shape, &[&x_buffer, &y], grid).await?;
    ctx.read_f32(&y, out_len).await
}

/// `max_pool_backward.wgsl`.
pub async fn max_pool_backward(
    ctx: &GpuContext,
    x: &[f32],
    dy: &[f32],
    rows: usize,
    slot: &PoolSlot,
    relu_below: bool,
) -> Result<Vec<f32>, GpuError> {
    let x_buffer = f32_storage(ctx, "x", x);
    let dy_buffer = f32_storage(ctx, "dy", dy);
    // NaN where the kernel writes nothing: in training dx holds the previous step's values.
    let dx = f32_storage(ctx, "dx", &vec![f32::NAN; x.len()]);
    let grid = kernels::max_pool_backward_grid(slot);
    let shape = PoolShape::new(slot, relu_below);
    run_once(ctx, &kernels::max_pool_backward(ctx), rows_step(rows), &shape, &[&x_buffer, &dy_buffer, &dx], grid)
        .await?;
    ctx.read_f32(&dx, x.len()).await
}
