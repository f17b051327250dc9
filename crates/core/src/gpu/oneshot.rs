//! Runs a single kernel on host data and reads its output back: how the tests compare each WGSL
//! kernel with its twin in [`crate::reference`]. Parameters are placed at an odd offset in the
//! flat buffer so the kernels' offset handling is exercised too.

use fashion_data::PIXELS_PER_IMAGE;

use super::context::{GpuContext, GpuError};
use super::kernels::{
    self, AdamShape, DenseBackwardInputShape, DenseBackwardWeightsShape, DenseForwardShape, GatherShape, Grid, Kernel,
    SoftmaxCrossEntropyShape, StepUniform, METRICS_SLOT_WORDS,
};
use crate::optimizer::AdamConfig;
use crate::reference::SoftmaxCrossEntropy;

/// Where the tensors start in the flat parameter buffer of these one-shot runs.
const PARAM_OFFSET: usize = 3;

/// Binds `shape` and `storage` to `kernel`, dispatches it once for a batch of `rows`, and waits.
async fn run_once<S: bytemuck::Pod>(
    ctx: &GpuContext,
    kernel: &Kernel,
    step: StepUniform,
    shape: &S,
    storage: &[&wgpu::Buffer],
    grid: Grid,
) -> Result<(), GpuError> {
    let steps = kernels::step_buffer(ctx, 1);
    kernels::write_steps(ctx, &steps, &[step]);
    let bound = kernel.bind(ctx, &steps, shape, storage, grid);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        bound.encode(&mut pass, 0, step.rows);
    }
    ctx.queue.submit([encoder.finish()]);
    ctx.wait_for_submitted_work().await
}

fn rows_step(rows: usize) -> StepUniform {
    StepUniform { rows: rows as u32, ..Default::default() }
}

fn f32_storage(ctx: &GpuContext, label: &str, data: &[f32]) -> wgpu::Buffer {
    ctx.storage_with(label, bytemuck::cast_slice(data))
}

/// Kernel then bias in one flat buffer, both after [`PARAM_OFFSET`] filler values.
fn packed_params(kernel: &[f32], bias: &[f32]) -> Vec<f32> {
    let mut params = vec![f32::NAN; PARAM_OFFSET];
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
    let units = bias.len();
    let x_buffer = f32_storage(ctx, "x", x);
    let params = f32_storage(ctx, "params", &packed_params(kernel, bias));
    let y = ctx.storage("y", (rows * units * 4) as u64);
    let shape = DenseForwardShape {
        inputs: inputs as u32,
        units: units as u32,
        kernel_offset: PARAM_OFFSET as u32,
        bias_offset: (PARAM_OFFSET + kernel.len()) as u32,
        relu: u32::from(relu),
        ..Default::default()
    };
    let grid = kernels::dense_forward_grid(units);
    run_once(ctx, &kernels::dense_forward(ctx), rows_step(rows), &shape, &[&x_buffer, &params, &y], grid).await?;
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
    let dz_buffer = f32_storage(ctx, "dz", dz);
    let params = f32_storage(ctx, "params", &packed_params(kernel, &[]));
    let below_buffer = match below {
        Some(below) => f32_storage(ctx, "below", below),
        None => ctx.storage("below", (rows * inputs * 4) as u64),
    };
    let dx = ctx.storage("dx", (rows * inputs * 4) as u64);
    let shape = DenseBackwardInputShape {
        inputs: inputs as u32,
        units: units as u32,
        kernel_offset: PARAM_OFFSET as u32,
        relu_below: u32::from(below.is_some()),
    };
    let storage = [&dz_buffer, &params, &below_buffer, &dx];
    let grid = kernels::dense_backward_input_grid(inputs);
    run_once(ctx, &kernels::dense_backward_input(ctx), rows_step(rows), &shape, &storage, grid).await?;
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
    let x_buffer = f32_storage(ctx, "x", x);
    let dz_buffer = f32_storage(ctx, "dz", dz);
    let grads = ctx.storage("grads", ((PARAM_OFFSET + inputs * units + units) * 4) as u64);
    let shape = DenseBackwardWeightsShape {
        inputs: inputs as u32,
        units: units as u32,
        kernel_offset: PARAM_OFFSET as u32,
        bias_offset: (PARAM_OFFSET + inputs * units) as u32,
    };
    let grid = kernels::dense_backward_weights_grid(inputs, units);
    run_once(
        ctx,
        &kernels::dense_backward_weights(ctx),
        rows_step(rows),
        &shape,
        &[&x_buffer, &dz_buffer, &grads],
        grid,
    )
    .await?;
    let all = ctx.read_f32(&grads, PARAM_OFFSET + inputs * units + units).await?;
    let (dkernel, dbias) = all[PARAM_OFFSET..].split_at(inputs * units);
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
    let shape = SoftmaxCrossEntropyShape { classes: classes as u32, metrics_slot: 1, write_gradient: 1, _pad: 0 };
    let storage = [&logits_buffer, &labels_buffer, &probs, &dlogits, &metrics];
    run_once(ctx, &kernels::softmax_cross_entropy(ctx), rows_step(rows), &shape, &storage, Grid::Fixed([1, 1, 1]))
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
    let count = state.params.len();
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
    run_once(ctx, &kernels::adam(ctx), step, &shape, &[&params, &grads_buffer, &m, &v], kernels::adam_grid(count))
        .await?;
    Ok(AdamState {
        params: ctx.read_f32(&params, count).await?,
        m: ctx.read_f32(&m, count).await?,
        v: ctx.read_f32(&v, count).await?,
    })
}
