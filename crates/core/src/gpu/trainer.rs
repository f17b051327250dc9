//! The GPU trainer: the dataset resident on the device, every step of an epoch encoded without
//! a CPU round-trip (gather → forward → loss → backward → Adam), many steps per submit, and one
//! readback of the metrics per epoch.

use std::sync::Arc;

use fashion_data::{shuffled_indices, Dataset, NUM_CLASSES};
use web_time::Instant;

use super::context::{GpuContext, GpuError, TrackedBuffer};
use super::kernels::{
    self, AdamShape, BatchNormBackwardShape, BatchNormForwardShape, BoundKernel, ConvShape, DenseBackwardInputShape,
    DenseBackwardWeightsShape, DenseForwardShape, DropoutShape, GatherShape, Grid, Kernel, Kernels, L2RegularizerShape,
    PoolShape, ShapeBytes, StepUniform, METRICS_SLOT_WORDS,
};
use crate::epoch::{batches, step_seed, EpochStats, Evaluation, Progress, TrainConfig, TrainError};
use crate::init::glorot_uniform_params;
use crate::model::{LrSchedule, ModelSpec, Op, ParamLayout, BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM};

/// A split of the dataset living on the GPU.
struct ResidentSplit {
    images: TrackedBuffer,
    labels: TrackedBuffer,
    order: TrackedBuffer,
    len: usize,
}

impl ResidentSplit {
    fn upload(ctx: &GpuContext, name: &str, data: &Dataset) -> Result<Self, GpuError> {
        // u8 pixels packed four to a u32 word: a whole 60k split is 47 MB, under WebGPU's
        // default 128 MiB binding limit (as f32 it would not be).
        let mut pixels = data.images().to_vec();
        pixels.resize(pixels.len().next_multiple_of(4), 0);
        ctx.check_binding_size(&format!("the {name} images"), pixels.len() as u64)?;
        let labels: Vec<u32> = data.labels().iter().map(|&l| u32::from(l)).collect();
        let identity: Vec<u32> = (0..data.len() as u32).collect();
        Ok(ResidentSplit {
            images: ctx.storage_with(&format!("{name} images"), &pixels),
            labels: ctx.storage_with(&format!("{name} labels"), bytemuck::cast_slice(&labels)),
            order: ctx.storage_with(&format!("{name} order"), bytemuck::cast_slice(&identity)),
            len: data.len(),
        })
    }
}

/// The bound kernels of one pass through the model.
struct Passes {
    gather_train: BoundKernel,
    gather_test: BoundKernel,
    /// One kernel per op: training mode (batch statistics, dropout masks).
    forward_train: Vec<BoundKernel>,
    /// One kernel per op: evaluation mode (moving statistics, no dropout).
    forward_eval: Vec<BoundKernel>,
    loss_train: Vec<BoundKernel>,
    loss_test: Vec<BoundKernel>,
    /// Softmax only: the input is written by the host, labels are ignored.
    predict: Vec<BoundKernel>,
    /// Every backward kernel in the order they run, from the loss down to the first op.
    backward: Vec<BoundKernel>,
    l2: Option<BoundKernel>,
    adam: BoundKernel,
}

const TRAIN_SLOT: u32 = 0;
const TEST_SLOT: u32 = 1;
const PREDICT_SLOT: u32 = 2;
const METRICS_SLOTS: usize = 3;

/// Trains one model on the GPU.
pub struct GpuTrainer {
    ctx: Arc<GpuContext>,
    config: TrainConfig,
    schedule: LrSchedule,
    layout: ParamLayout,
    train: ResidentSplit,
    test: ResidentSplit,
    params: TrackedBuffer,
    x: TrackedBuffer,
    probs: TrackedBuffer,
    inputs: usize,
    capacity: usize,
    metrics: TrackedBuffer,
    steps_buffer: TrackedBuffer,
    passes: Passes,
    /// The parameters and Adam's moments, each with two copies used in turn: every chunk of
    /// steps starts by copying them, so the steps since the last chunk whose losses were all
    /// finite can be undone.
    snapshots: Vec<(TrackedBuffer, [TrackedBuffer; 2])>,
    chunks_run: u64,
    /// The snapshot copy and optimizer step at the start of the last chunk whose losses were all
    /// finite: weights known to be good.
    last_good: Option<(usize, u64)>,
    epoch: usize,
    global_step: u64,
}

/// The device buffers a model's passes read and write, sized for `capacity` samples.
struct Activations {
    x: TrackedBuffer,
    batch_labels: TrackedBuffer,
    /// Each op's output.
    outputs: Vec<TrackedBuffer>,
    /// Each op's gradient, at its pre-ReLU output.
    gradients: Vec<TrackedBuffer>,
    /// Where a gradient with respect to the input goes when the first op computes one anyway.
    input_gradient: TrackedBuffer,
    /// Per op: the batch mean and 1/std of a BatchNorm op (a 4-byte stub for other ops).
    batch_norm_stats: Vec<TrackedBuffer>,
}

impl GpuTrainer {
    /// Uploads both splits and the initialised model; builds every bind group once.
    pub fn new(
        ctx: Arc<GpuContext>,
        spec: &ModelSpec,
        config: TrainConfig,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        if train.is_empty() || test.is_empty() {
            return Err(TrainError::Config("the training and test sets must not be empty".into()));
        }
        let layout = spec.param_layout();
        let ops = spec.ops();
        let kernels = Kernels::new(&ctx);
        let capacity = config.batch.max(config.eval_batch);
        let floats = |n: usize| (n * 4) as u64;
        let widest = spec.widest_layer();
        for (what, n) in [("one batch of the widest layer", capacity * widest), ("the parameters", layout.total)] {
            ctx.check_binding_size(what, floats(n))?;
        }

        let train_split = ResidentSplit::upload(&ctx, "train", train)?;
        let test_split = ResidentSplit::upload(&ctx, "test", test)?;
        let initial = glorot_uniform_params(spec, config.seed);
        let params = ctx.storage_with("params", bytemuck::cast_slice(&initial));
        let grads = ctx.storage("grads", floats(layout.trainable.max(1)));
        let adam_m = ctx.storage("adam m", floats(layout.trainable.max(1)));
        let adam_v = ctx.storage("adam v", floats(layout.trainable.max(1)));
        let act = Activations {
            x: ctx.storage("x", floats(capacity * spec.inputs)),
            batch_labels: ctx.storage("batch labels", floats(capacity)),
            outputs: ops.iter().map(|op| ctx.storage("op output", floats(capacity * op.width()))).collect(),
            gradients: ops.iter().map(|op| ctx.storage("op gradient", floats(config.batch * op.width()))).collect(),
            input_gradient: ctx.storage("input gradient", floats(config.batch * spec.inputs)),
            batch_norm_stats: ops
                .iter()
                .map(|op| match op {
                    Op::BatchNorm { slot, .. } => ctx.storage("batch norm stats", floats(2 * slot.width)),
                    _ => ctx.storage("no stats", 4),
                })
                .collect(),
        };
        let probs = ctx.storage("probs", floats(capacity * NUM_CLASSES));
        let metrics = ctx.storage("metrics", (METRICS_SLOTS * METRICS_SLOT_WORDS * 4) as u64);
        let steps_buffer =
            kernels::step_buffer(&ctx, config.steps_per_submit.max(test.len().div_ceil(config.eval_batch)));
        let bind = |kernel: &Kernel, shape: &dyn ShapeBytes, storage: &[&TrackedBuffer], grid: Grid| {
            kernel.bind_bytes(&ctx, &steps_buffer, shape.bytes(), storage, grid)
        };

        let gather_shape = GatherShape { pixels: spec.inputs as u32, ..Default::default() };
        let gather_grid = kernels::gather_grid(spec.inputs);
        let gather = |split: &ResidentSplit| {
            bind(
                &kernels.gather_batch,
                &gather_shape,
                &[&split.images, &split.labels, &split.order, &act.x, &act.batch_labels],
                gather_grid,
            )
        };
        let input_of = |i: usize| if i == 0 { &act.x } else { &act.outputs[i - 1] };
        let forward = |i: usize, op: &Op, training: bool| match *op {
            Op::Dense { slot, relu } => {
                let shape = DenseForwardShape {
                    inputs: slot.inputs as u32,
                    units: slot.units as u32,
                    kernel_offset: slot.kernel_offset as u32,
                    bias_offset: slot.bias_offset as u32,
                    relu: u32::from(relu),
                    ..Default::default()
                };
                bind(
                    &kernels.dense_forward,
                    &shape,
                    &[input_of(i), &params, &act.outputs[i]],
                    kernels::dense_forward_grid(slot.units),
                )
            }
            Op::Dropout { width, rate, index } => {
                let shape = DropoutShape { width: width as u32, rate, index, flag: u32::from(training) };
                bind(
                    &kernels.dropout_forward,
                    &shape,
                    &[input_of(i), &act.outputs[i]],
                    kernels::elementwise_grid(width),
                )
            }
            Op::Conv2D { slot, relu } => bind(
                &kernels.conv2d_forward,
                &ConvShape::new(&slot, relu),
                &[input_of(i), &params, &act.outputs[i]],
                kernels::conv2d_forward_grid(&slot),
            ),
            Op::MaxPool2D { slot } => bind(
                &kernels.max_pool_forward,
                &PoolShape::new(&slot, false),
                &[input_of(i), &act.outputs[i]],
                kernels::max_pool_grid(op.width()),
            ),
            Op::BatchNorm { slot, relu } => {
                let shape = BatchNormForwardShape {
                    width: slot.width as u32,
                    gamma_offset: slot.gamma_offset as u32,
                    beta_offset: slot.beta_offset as u32,
                    moving_mean_offset: slot.moving_mean_offset as u32,
                    moving_variance_offset: slot.moving_variance_offset as u32,
                    training: u32::from(training),
                    relu: u32::from(relu),
                    momentum: BATCH_NORM_MOMENTUM,
                    epsilon: BATCH_NORM_EPSILON,
                    _pad: [0; 3],
                };
                bind(
                    &kernels.batch_norm_forward,
                    &shape,
                    &[input_of(i), &params, &act.outputs[i], &act.batch_norm_stats[i]],
                    kernels::per_feature_grid(slot.width),
                )
            }
        };
        let last = ops.len() - 1;
        // One dispatch per chunk of rows a single invocation may loop over (lavapipe caps loops).
        let loss = |slot: u32, write_gradient: bool, max_rows: usize| -> Vec<BoundKernel> {
            kernels::softmax_cross_entropy_shapes(NUM_CLASSES, slot, write_gradient, max_rows)
                .iter()
                .map(|shape| {
                    bind(
                        &kernels.softmax_cross_entropy,
                        shape,
                        &[&act.outputs[last], &act.batch_labels, &probs, &act.gradients[last], &metrics],
                        Grid::Fixed([1, 1, 1]),
                    )
                })
                .collect()
        };

        let mut backward = Vec::new();
        for (i, op) in ops.iter().enumerate().rev() {
            // Where the gradient with respect to this op's input goes, masked by the ReLU of the
            // op below when it has one.
            let dx = if i == 0 { &act.input_gradient } else { &act.gradients[i - 1] };
            let relu_below = u32::from(i > 0 && ops[i - 1].relu());
            let dy = &act.gradients[i];
            match *op {
                Op::Dense { slot, .. } => {
                    let shape = DenseBackwardWeightsShape {
                        inputs: slot.inputs as u32,
                        units: slot.units as u32,
                        kernel_offset: slot.kernel_offset as u32,
                        bias_offset: slot.bias_offset as u32,
                    };
                    backward.push(bind(
                        &kernels.dense_backward_weights,
                        &shape,
                        &[input_of(i), dy, &grads],
                        kernels::dense_backward_weights_grid(slot.inputs, slot.units),
                    ));
                    if i > 0 {
                        let shape = DenseBackwardInputShape {
                            inputs: slot.inputs as u32,
                            units: slot.units as u32,
                            kernel_offset: slot.kernel_offset as u32,
                            relu_below,
                        };
                        backward.push(bind(
                            &kernels.dense_backward_input,
                            &shape,
                            &[dy, &params, input_of(i), dx],
                            kernels::dense_backward_input_grid(slot.inputs),
                        ));
                    }
                }
                Op::Dropout { width, rate, index } => {
                    if i > 0 {
                        let shape = DropoutShape { width: width as u32, rate, index, flag: relu_below };
                        backward.push(bind(
                            &kernels.dropout_backward,
                            &shape,
                            &[dy, input_of(i), dx],
                            kernels::elementwise_grid(width),
                        ));
                    }
                }
                Op::Conv2D { slot, .. } => {
                    // One dispatch per chunk of the batch's rows (lavapipe caps loop lengths).
                    for shape in kernels::conv2d_backward_weights_shapes(&slot, config.batch) {
                        backward.push(bind(
                            &kernels.conv2d_backward_weights,
                            &shape,
                            &[input_of(i), dy, &grads],
                            kernels::conv2d_backward_weights_grid(&slot),
                        ));
                    }
                    if i > 0 {
                        backward.push(bind(
                            &kernels.conv2d_backward_input,
                            &ConvShape::new(&slot, relu_below == 1),
                            &[dy, &params, input_of(i), dx],
                            kernels::conv2d_backward_input_grid(&slot),
                        ));
                    }
                }
                Op::MaxPool2D { slot } => {
                    if i > 0 {
                        backward.push(bind(
                            &kernels.max_pool_backward,
                            &PoolShape::new(&slot, relu_below == 1),
                            &[input_of(i), dy, dx],
                            kernels::max_pool_backward_grid(&slot),
                        ));
                    }
                }
                Op::BatchNorm { slot, .. } => {
                    let shape = BatchNormBackwardShape {
                        width: slot.width as u32,
                        gamma_offset: slot.gamma_offset as u32,
                        beta_offset: slot.beta_offset as u32,
                        relu_below,
                    };
                    backward.push(bind(
                        &kernels.batch_norm_backward,
                        &shape,
                        &[input_of(i), dy, &params, &act.batch_norm_stats[i], input_of(i), dx, &grads],
                        kernels::per_feature_grid(slot.width),
                    ));
                }
            }
        }
        let l2 = (spec.l2 > 0.0).then(|| {
            let ranges: Vec<u32> =
                layout.dense.iter().flat_map(|d| [d.kernel_offset as u32, d.kernel_len() as u32]).collect();
            let ranges_buffer = ctx.storage_with("l2 ranges", bytemuck::cast_slice(&ranges));
            let shape = L2RegularizerShape {
                ranges: layout.dense.len() as u32,
                l2: spec.l2,
                metrics_slot: TRAIN_SLOT,
                _pad: 0,
            };
            bind(&kernels.l2_regularizer, &shape, &[&ranges_buffer, &params, &grads, &metrics], Grid::Fixed([1, 1, 1]))
        });
        let adam_shape = AdamShape {
            count: layout.trainable as u32,
            beta1: config.adam.beta1,
            beta2: config.adam.beta2,
            epsilon: config.adam.epsilon,
        };
        let adam = bind(
            &kernels.adam,
            &adam_shape,
            &[&params, &grads, &adam_m, &adam_v],
            kernels::adam_grid(layout.trainable),
        );
        let passes = Passes {
            gather_train: gather(&train_split),
            gather_test: gather(&test_split),
            forward_train: ops.iter().enumerate().map(|(i, op)| forward(i, op, true)).collect(),
            forward_eval: ops.iter().enumerate().map(|(i, op)| forward(i, op, false)).collect(),
            loss_train: loss(TRAIN_SLOT, true, config.batch),
            loss_test: loss(TEST_SLOT, false, config.eval_batch),
            predict: loss(PREDICT_SLOT, false, capacity),
            backward,
            l2,
            adam,
        };
        ctx.check_errors()?;
        let snapshots = [(&params, "params copy"), (&adam_m, "adam m copy"), (&adam_v, "adam v copy")]
            .into_iter()
            .map(|(live, label)| (live.clone(), [ctx.storage(label, live.size()), ctx.storage(label, live.size())]))
            .collect();
        Ok(GpuTrainer {
            ctx,
            config,
            schedule: spec.schedule,
            layout,
            train: train_split,
            test: test_split,
            params,
            x: act.x,
            probs,
            inputs: spec.inputs,
            capacity,
            metrics,
            steps_buffer,
            passes,
            snapshots,
            chunks_run: 0,
            last_good: None,
            epoch: 0,
            global_step: 0,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Epochs finished so far.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Compute dispatches recorded for one training step.
    pub fn dispatches_per_step(&self) -> usize {
        let p = &self.passes;
        1 + p.forward_train.len() + 1 + p.backward.len() + usize::from(p.l2.is_some()) + 1
    }

    fn encode_train_step(&self, pass: &mut wgpu::ComputePass<'_>, slot: u32, rows: u32) {
        let p = &self.passes;
        p.gather_train.encode(pass, slot, rows);
        for kernel in p.forward_train.iter().chain(&p.loss_train).chain(&p.backward).chain(&p.l2).chain([&p.adam]) {
            kernel.encode(pass, slot, rows);
        }
    }

    fn encode_test_step(&self, pass: &mut wgpu::ComputePass<'_>, slot: u32, rows: u32) {
        let p = &self.passes;
        p.gather_test.encode(pass, slot, rows);
        for kernel in p.forward_eval.iter().chain(&p.loss_test) {
            kernel.encode(pass, slot, rows);
        }
    }

    /// The uniforms of the training steps that follow `global_step`, one per `(start, rows)` batch:
    /// Adam's step number, the scheduled and bias-corrected learning rate, the dropout seed.
    fn training_steps(&self, batches: &[(usize, usize)]) -> Vec<StepUniform> {
        let adam = &self.config.adam;
        batches
            .iter()
            .enumerate()
            .map(|(i, &(start, rows))| {
                let t = self.global_step + 1 + i as u64;
                let learning_rate = self.schedule.learning_rate(adam.learning_rate, t - 1);
                StepUniform {
                    batch_start: start as u32,
                    rows: rows as u32,
                    t: t as u32,
                    lr_t: adam.corrected_learning_rate(learning_rate, t),
                    seed: step_seed(self.config.seed, t),
                    _pad: [0; 3],
                }
            })
            .collect()
    }

    /// Trains one epoch over a fresh shuffle, evaluates the test set, and reads the figures back.
    pub async fn run_epoch(&mut self, mut on_progress: impl FnMut(&Progress)) -> Result<EpochStats, TrainError> {
        let started = Instant::now();
        let epoch = self.epoch + 1;
        let order = shuffled_indices(self.train.len, self.config.seed, epoch as u64);
        self.ctx.queue.write_buffer(&self.train.order, 0, bytemuck::cast_slice(&order));

        let train_batches: Vec<_> = batches(self.train.len, self.config.batch).collect();
        let mut clear_metrics = true;
        let mut done = 0;
        for chunk in train_batches.chunks(self.config.steps_per_submit) {
            let copy = (self.chunks_run % 2) as usize;
            let chunk_start = self.global_step;
            self.copy_snapshots(copy, false);
            let steps = self.training_steps(chunk);
            self.submit(&steps, std::mem::take(&mut clear_metrics), |trainer, pass, slot, rows| {
                trainer.encode_train_step(pass, slot, rows)
            });
            self.ctx.wait_for_submitted_work().await?;
            // One 16-byte readback per chunk (never per step): stop at the first chunk whose
            // running loss is no longer finite, and undo it.
            let words = self.ctx.read_u32(&self.metrics, METRICS_SLOT_WORDS).await?;
            let (loss, _) = slot_figures(&words);
            if !loss.is_finite() {
                // This chunk's first loss may already come from bad weights: go back to the
                // start of the last chunk whose losses were all finite.
                let (good_copy, good_step) = self.last_good.take().unwrap_or((copy, chunk_start));
                self.copy_snapshots(good_copy, true);
                self.ctx.wait_for_submitted_work().await?;
                self.global_step = good_step;
                return Err(TrainError::Diverged {
                    epoch,
                    first_step: good_step + 1,
                    last_step: chunk_start + chunk.len() as u64,
                    loss,
                    learning_rate: self.config.adam.learning_rate,
                });
            }
            self.last_good = Some((copy, chunk_start));
            self.chunks_run += 1;
            self.global_step += chunk.len() as u64;
            done += chunk.len();
            let samples_done = chunk.last().map_or(0, |&(start, rows)| start + rows);
            on_progress(&Progress {
                epoch,
                step: done,
                steps: train_batches.len(),
                samples_done,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        let train_seconds = started.elapsed().as_secs_f64();

        let test_steps: Vec<StepUniform> = batches(self.test.len, self.config.eval_batch)
            .map(|(start, rows)| StepUniform { batch_start: start as u32, rows: rows as u32, ..Default::default() })
            .collect();
        self.submit(&test_steps, false, |trainer, pass, slot, rows| trainer.encode_test_step(pass, slot, rows));
        let words = self.ctx.read_u32(&self.metrics, 2 * METRICS_SLOT_WORDS).await?;
        let (loss, train_accuracy) = slot_figures(&words[..METRICS_SLOT_WORDS]);
        let (test_loss, test_accuracy) = slot_figures(&words[METRICS_SLOT_WORDS..]);
        self.epoch = epoch;
        Ok(EpochStats {
            epoch,
            loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            train_samples: self.train.len,
            seconds: train_seconds,
        })
    }

    /// Copies the parameters and Adam's moments to their snapshot copy `which`, or back when
    /// `restore`.
    fn copy_snapshots(&self, which: usize, restore: bool) {
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        for (live, copies) in &self.snapshots {
            let copy = &copies[which];
            let (from, to) = if restore { (copy, live) } else { (live, copy) };
            encoder.copy_buffer_to_buffer(from, 0, to, 0, live.size());
        }
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Changes Adam's learning rate, e.g. to continue after [`TrainError::Diverged`].
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), TrainError> {
        self.config.set_learning_rate(learning_rate)
    }

    /// Writes `steps` to the step buffer and submits one command buffer encoding each of them.
    fn submit(
        &self,
        steps: &[StepUniform],
        clear_metrics: bool,
        encode: impl Fn(&Self, &mut wgpu::ComputePass<'_>, u32, u32),
    ) {
        kernels::write_steps(&self.ctx, &self.steps_buffer, steps);
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        if clear_metrics {
            encoder.clear_buffer(&self.metrics, 0, None);
        }
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for (slot, step) in steps.iter().enumerate() {
                encode(self, &mut pass, slot as u32, step.rows);
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Softmax probabilities `[rows, classes]` for `rows` images given as pixels in [0, 1].
    pub async fn predict(&self, pixels: &[f32]) -> Result<Vec<f32>, TrainError> {
        let rows = pixels.len() / self.inputs;
        if rows == 0 || !pixels.len().is_multiple_of(self.inputs) {
            return Err(TrainError::Config(format!(
                "predict needs whole images of {} pixels, got {} values",
                self.inputs,
                pixels.len()
            )));
        }
        let mut probs = Vec::with_capacity(rows * NUM_CLASSES);
        for chunk in pixels.chunks(self.capacity * self.inputs) {
            let rows = chunk.len() / self.inputs;
            self.ctx.queue.write_buffer(&self.x, 0, bytemuck::cast_slice(chunk));
            let step = StepUniform { rows: rows as u32, ..Default::default() };
            self.submit(&[step], false, |trainer, pass, slot, rows| {
                let p = &trainer.passes;
                for kernel in p.forward_eval.iter().chain(&p.predict) {
                    kernel.encode(pass, slot, rows);
                }
            });
            probs.extend(self.ctx.read_f32(&self.probs, rows * NUM_CLASSES).await?);
        }
        Ok(probs)
    }

    /// The current weights, in [`ModelSpec::param_layout`] order.
    pub async fn params(&self) -> Result<Vec<f32>, TrainError> {
        Ok(self.ctx.read_f32(&self.params, self.layout.total).await?)
    }

    /// Replaces the weights (e.g. loaded from a file); the optimizer state is kept.
    pub fn set_params(&mut self, params: &[f32]) -> Result<(), TrainError> {
        if params.len() != self.layout.total {
            return Err(TrainError::Config(format!("expected {} parameters, got {}", self.layout.total, params.len())));
        }
        self.ctx.queue.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        Ok(())
    }

    /// The test set's loss and accuracy for the current weights, exactly as the evaluation at
    /// the end of [`GpuTrainer::run_epoch`] computes them, without training.
    pub async fn evaluate(&self) -> Result<Evaluation, TrainError> {
        let test_steps: Vec<StepUniform> = batches(self.test.len, self.config.eval_batch)
            .map(|(start, rows)| StepUniform { batch_start: start as u32, rows: rows as u32, ..Default::default() })
            .collect();
        self.submit(&test_steps, true, |trainer, pass, slot, rows| trainer.encode_test_step(pass, slot, rows));
        let words = self.ctx.read_u32(&self.metrics, 2 * METRICS_SLOT_WORDS).await?;
        let (loss, accuracy) = slot_figures(&words[METRICS_SLOT_WORDS..]);
        Ok(Evaluation { loss, accuracy })
    }
}

/// (mean loss, accuracy) of a metrics slot.
fn slot_figures(words: &[u32]) -> (f32, f32) {
    let sum = f64::from(f32::from_bits(words[0])) - f64::from(f32::from_bits(words[1]));
    let samples = f64::from(words[3].max(1));
    ((sum / samples) as f32, (f64::from(words[2]) / samples) as f32)
}

/// Which part of a training step a dispatch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Gather, every op forward, and the loss.
    Forward,
    /// Every gradient, and the L2 term.
    Backward,
    /// Adam.
    Optimizer,
}

/// GPU time one dispatch of a training step took, summed over the timed steps.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchTime {
    /// The implementation that ran, e.g. `dense_forward_vec4`.
    pub kernel: &'static str,
    pub phase: Phase,
    pub seconds: f64,
}

/// Benchmark hook: timed training steps, outside any epoch.
impl GpuTrainer {
    /// Trains `steps` more steps on the first batches of the current order (wrapping around; no
    /// evaluation), each dispatch in its own compute pass between GPU timestamps, and returns the
    /// time of each dispatch of a step, in order, summed over the steps. `None` when the device
    /// has no timestamp queries. The extra passes cost a little: [`GpuTrainer::run_epoch`] runs a
    /// whole step in one.
    pub async fn time_train_dispatches(&mut self, steps: usize) -> Result<Option<Vec<DispatchTime>>, TrainError> {
        if !self.ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Ok(None);
        }
        let p = &self.passes;
        let dispatches: Vec<(&BoundKernel, Phase)> = [&p.gather_train]
            .into_iter()
            .chain(&p.forward_train)
            .chain(&p.loss_train)
            .map(|kernel| (kernel, Phase::Forward))
            .chain(p.backward.iter().chain(&p.l2).map(|kernel| (kernel, Phase::Backward)))
            .chain([(&p.adam, Phase::Optimizer)])
            .collect();
        let mut times: Vec<DispatchTime> = dispatches
            .iter()
            .map(|&(kernel, phase)| DispatchTime { kernel: kernel.label(), phase, seconds: 0.0 })
            .collect();
        let epoch_batches: Vec<_> = batches(self.train.len, self.config.batch).collect();
        let train_batches: Vec<_> = epoch_batches.iter().copied().cycle().take(steps).collect();
        for chunk in train_batches.chunks(self.config.steps_per_submit) {
            // The same per-step values as `run_epoch`.
            let step_values = self.training_steps(chunk);
            kernels::write_steps(&self.ctx, &self.steps_buffer, &step_values);
            let count = (chunk.len() * dispatches.len() * 2) as u32;
            let queries = self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("dispatch timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let resolved = self.ctx.create_buffer(&wgpu::BufferDescriptor {
                label: Some("dispatch timestamps"),
                size: u64::from(count) * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
            let mut query = 0;
            for (slot, step) in step_values.iter().enumerate() {
                for (kernel, _) in &dispatches {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: &queries,
                            beginning_of_pass_write_index: Some(query),
                            end_of_pass_write_index: Some(query + 1),
                        }),
                    });
                    kernel.encode(&mut pass, slot as u32, step.rows);
                    query += 2;
                }
            }
            encoder.resolve_query_set(&queries, 0..count, &resolved, 0);
            self.ctx.queue.submit([encoder.finish()]);
            self.global_step += chunk.len() as u64;
            let bytes = self.ctx.read_bytes(&resolved, u64::from(count) * 8).await?;
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
            let seconds_per_tick = f64::from(self.ctx.queue.get_timestamp_period()) * 1e-9;
            for step in ticks.chunks_exact(2 * dispatches.len()) {
                for (time, pair) in times.iter_mut().zip(step.chunks_exact(2)) {
                    time.seconds += pair[1].saturating_sub(pair[0]) as f64 * seconds_per_tick;
                }
            }
            queries.destroy();
        }
        Ok(Some(times))
    }
}
