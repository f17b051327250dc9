//! The GPU trainer: the dataset resident on the device, every step of an epoch encoded without
//! a CPU round-trip (gather → forward → loss → backward → Adam), many steps per submit, and one
//! readback of the metrics per epoch.

use std::sync::Arc;

use fashion_data::{shuffled_indices, Dataset, NUM_CLASSES};
use web_time::Instant;

use super::context::{GpuContext, GpuError};
use super::kernels::{
    self, AdamShape, BoundKernel, DenseBackwardInputShape, DenseBackwardWeightsShape, DenseForwardShape, GatherShape,
    Kernels, SoftmaxCrossEntropyShape, StepUniform, METRICS_SLOT_WORDS,
};
use crate::epoch::{batches, EpochStats, Progress, TrainConfig, TrainError};
use crate::init::glorot_uniform_params;
use crate::model::{Activation, ModelSpec, ParamLayout};

/// A split of the dataset living on the GPU.
struct ResidentSplit {
    images: wgpu::Buffer,
    labels: wgpu::Buffer,
    order: wgpu::Buffer,
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
    forward: Vec<BoundKernel>,
    loss_train: BoundKernel,
    loss_test: BoundKernel,
    /// Softmax only: the input is written by the host, labels are ignored.
    predict: BoundKernel,
    backward_weights: Vec<BoundKernel>,
    /// `backward_input[l - 1]` propagates layer `l`'s gradient to layer `l - 1`.
    backward_input: Vec<BoundKernel>,
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
    layout: ParamLayout,
    train: ResidentSplit,
    test: ResidentSplit,
    params: wgpu::Buffer,
    x: wgpu::Buffer,
    probs: wgpu::Buffer,
    inputs: usize,
    capacity: usize,
    metrics: wgpu::Buffer,
    steps_buffer: wgpu::Buffer,
    passes: Passes,
    epoch: usize,
    global_step: u64,
}

impl GpuTrainer {
    /// Uploads both splits and the Glorot-initialised model; builds every bind group once.
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
        let kernels = Kernels::new(&ctx);
        let capacity = config.batch.max(config.eval_batch);
        let floats = |n: usize| (n * 4) as u64;
        for (what, n) in [("one batch of inputs", capacity * spec.inputs), ("the parameters", layout.total)] {
            ctx.check_binding_size(what, floats(n))?;
        }

        let train_split = ResidentSplit::upload(&ctx, "train", train)?;
        let test_split = ResidentSplit::upload(&ctx, "test", test)?;
        let initial = glorot_uniform_params(spec, config.seed);
        let params = ctx.storage_with("params", bytemuck::cast_slice(&initial));
        let grads = ctx.storage("grads", floats(layout.total));
        let adam_m = ctx.storage("adam m", floats(layout.total));
        let adam_v = ctx.storage("adam v", floats(layout.total));
        let x = ctx.storage("x", floats(capacity * spec.inputs));
        let batch_labels = ctx.storage("batch labels", floats(capacity));
        let outputs: Vec<_> =
            layout.dense.iter().map(|d| ctx.storage("layer output", floats(capacity * d.units))).collect();
        let dz: Vec<_> =
            layout.dense.iter().map(|d| ctx.storage("layer gradient", floats(capacity * d.units))).collect();
        let probs = ctx.storage("probs", floats(capacity * NUM_CLASSES));
        let metrics = ctx.storage("metrics", (METRICS_SLOTS * METRICS_SLOT_WORDS * 4) as u64);
        let steps_buffer =
            kernels::step_buffer(&ctx, config.steps_per_submit.max(test.len().div_ceil(config.eval_batch)));

        let gather_shape = GatherShape { pixels: spec.inputs as u32, ..Default::default() };
        let gather_grid = kernels::gather_grid(spec.inputs);
        let gather = |split: &ResidentSplit| {
            kernels.gather_batch.bind(
                &ctx,
                &steps_buffer,
                &gather_shape,
                &[&split.images, &split.labels, &split.order, &x, &batch_labels],
                gather_grid,
            )
        };
        let input_of = |l: usize| if l == 0 { &x } else { &outputs[l - 1] };
        let forward = layout
            .dense
            .iter()
            .enumerate()
            .map(|(l, d)| {
                let shape = DenseForwardShape {
                    inputs: d.inputs as u32,
                    units: d.units as u32,
                    kernel_offset: d.kernel_offset as u32,
                    bias_offset: d.bias_offset as u32,
                    relu: u32::from(d.activation == Activation::Relu),
                    ..Default::default()
                };
                kernels.dense_forward.bind(
                    &ctx,
                    &steps_buffer,
                    &shape,
                    &[input_of(l), &params, &outputs[l]],
                    kernels::dense_forward_grid(d.units),
                )
            })
            .collect();
        let last = layout.dense.len() - 1;
        let loss = |slot: u32, write_gradient: bool| {
            let shape = SoftmaxCrossEntropyShape {
                classes: NUM_CLASSES as u32,
                metrics_slot: slot,
                write_gradient: u32::from(write_gradient),
                _pad: 0,
            };
            kernels.softmax_cross_entropy.bind(
                &ctx,
                &steps_buffer,
                &shape,
                &[&outputs[last], &batch_labels, &probs, &dz[last], &metrics],
                kernels::Grid::Fixed([1, 1, 1]),
            )
        };
        let backward_weights = layout
            .dense
            .iter()
            .enumerate()
            .map(|(l, d)| {
                let shape = DenseBackwardWeightsShape {
                    inputs: d.inputs as u32,
                    units: d.units as u32,
                    kernel_offset: d.kernel_offset as u32,
                    bias_offset: d.bias_offset as u32,
                };
                kernels.dense_backward_weights.bind(
                    &ctx,
                    &steps_buffer,
                    &shape,
                    &[input_of(l), &dz[l], &grads],
                    kernels::dense_backward_weights_grid(d.inputs, d.units),
                )
            })
            .collect();
        let backward_input = (1..layout.dense.len())
            .map(|l| {
                let d = layout.dense[l];
                let shape = DenseBackwardInputShape {
                    inputs: d.inputs as u32,
                    units: d.units as u32,
                    kernel_offset: d.kernel_offset as u32,
                    relu_below: u32::from(layout.dense[l - 1].activation == Activation::Relu),
                };
                kernels.dense_backward_input.bind(
                    &ctx,
                    &steps_buffer,
                    &shape,
                    &[&dz[l], &params, &outputs[l - 1], &dz[l - 1]],
                    kernels::dense_backward_input_grid(d.inputs),
                )
            })
            .collect();
        let adam_shape = AdamShape {
            count: layout.total as u32,
            beta1: config.adam.beta1,
            beta2: config.adam.beta2,
            epsilon: config.adam.epsilon,
        };
        let adam = kernels.adam.bind(
            &ctx,
            &steps_buffer,
            &adam_shape,
            &[&params, &grads, &adam_m, &adam_v],
            kernels::adam_grid(layout.total),
        );
        let passes = Passes {
            gather_train: gather(&train_split),
            gather_test: gather(&test_split),
            forward,
            loss_train: loss(TRAIN_SLOT, true),
            loss_test: loss(TEST_SLOT, false),
            predict: loss(PREDICT_SLOT, false),
            backward_weights,
            backward_input,
            adam,
        };
        ctx.check_errors()?;
        Ok(GpuTrainer {
            ctx,
            config,
            layout,
            train: train_split,
            test: test_split,
            params,
            x,
            probs,
            inputs: spec.inputs,
            capacity,
            metrics,
            steps_buffer,
            passes,
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
        2 + p.forward.len() + 1 + p.backward_weights.len() + p.backward_input.len()
    }

    fn encode_train_step(&self, pass: &mut wgpu::ComputePass<'_>, slot: u32, rows: u32) {
        let p = &self.passes;
        p.gather_train.encode(pass, slot, rows);
        for kernel in &p.forward {
            kernel.encode(pass, slot, rows);
        }
        p.loss_train.encode(pass, slot, rows);
        for l in (0..p.backward_weights.len()).rev() {
            p.backward_weights[l].encode(pass, slot, rows);
            if l > 0 {
                p.backward_input[l - 1].encode(pass, slot, rows);
            }
        }
        p.adam.encode(pass, slot, rows);
    }

    fn encode_test_step(&self, pass: &mut wgpu::ComputePass<'_>, slot: u32, rows: u32) {
        let p = &self.passes;
        p.gather_test.encode(pass, slot, rows);
        for kernel in &p.forward {
            kernel.encode(pass, slot, rows);
        }
        p.loss_test.encode(pass, slot, rows);
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
            let steps: Vec<StepUniform> = chunk
                .iter()
                .enumerate()
                .map(|(i, &(start, rows))| {
                    let t = self.global_step + 1 + i as u64;
                    StepUniform {
                        batch_start: start as u32,
                        rows: rows as u32,
                        t: t as u32,
                        lr_t: self.config.adam.corrected_learning_rate(self.config.adam.learning_rate, t),
                        seed: (self.config.seed as u32) ^ (t as u32).wrapping_mul(0x9E37_79B9),
                        _pad: [0; 3],
                    }
                })
                .collect();
            self.submit(&steps, std::mem::take(&mut clear_metrics), |trainer, pass, slot, rows| {
                trainer.encode_train_step(pass, slot, rows)
            });
            self.global_step += chunk.len() as u64;
            done += chunk.len();
            self.ctx.wait_for_submitted_work().await?;
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
        if !loss.is_finite() {
            return Err(TrainError::Diverged { epoch, loss, learning_rate: self.config.adam.learning_rate });
        }
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
                for kernel in &trainer.passes.forward {
                    kernel.encode(pass, slot, rows);
                }
                trainer.passes.predict.encode(pass, slot, rows);
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
}

/// (mean loss, accuracy) of a metrics slot.
fn slot_figures(words: &[u32]) -> (f32, f32) {
    let sum = f64::from(f32::from_bits(words[0])) - f64::from(f32::from_bits(words[1]));
    let samples = f64::from(words[3].max(1));
    ((sum / samples) as f32, (f64::from(words[2]) / samples) as f32)
}
