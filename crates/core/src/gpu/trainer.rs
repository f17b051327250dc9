//! The GPU trainer: the dataset resident on the device, every step of an epoch encoded without
//! a CPU round-trip (gather → forward → loss → backward → Adam), many steps per submit, and one
//! readback of the metrics per chunk.

use std::collections::VecDeque;
use std::sync::Arc;

use fashion_data::{shuffled_indices, Dataset, NUM_CLASSES};
use web_time::Instant;

use super::context::{AdapterSummary, GpuContext, PendingReadback, TrackedBuffer};
use super::dispatches::{
    Dispatches, ResidentSplit, Workspace, AFTER_STEP_HITS_TALLY, AFTER_STEP_LOSS_TALLY, TALLIES, TEST_TALLY,
    TRAIN_TALLY,
};
use super::kernel::PlannedDispatch;
use super::kernel::{write_steps, BoundKernel, StepUniform};
use super::ops::{KernelChoice, KernelSet, Kernels, TALLY_WORDS};
use crate::explain::{check_one_image, Explanation};
use crate::model::{LrSchedule, ModelSpec, OpOutput, ParamLayout};
use crate::train::{
    batches, check_datasets, check_param_count, images_in, step_seed, train_in_chunks, ChunkRunner, EpochMetrics,
    EpochStats, Evaluation, Progress, RunIdentity, TrainConfig, TrainError, TrainerState, Undo, MAX_BATCH, SNAPSHOTS,
};

/// Trains one model on the GPU.
pub struct GpuTrainer {
    pub(super) ctx: Arc<GpuContext>,
    pub(super) config: TrainConfig,
    schedule: LrSchedule,
    layout: ParamLayout,
    inputs: usize,
    pub(super) train: ResidentSplit,
    test: ResidentSplit,
    /// The workspace buffers the host reads or writes; the others live as long as the
    /// dispatches that bind them.
    capacity: usize,
    params: TrackedBuffer,
    x: TrackedBuffer,
    probs: TrackedBuffer,
    /// Each op's output and the gradient at the input, which [`GpuTrainer::explain`] reads.
    outputs: Vec<TrackedBuffer>,
    input_gradient: TrackedBuffer,
    /// Each op's output as the summary names it, and where [`GpuTrainer::explain`] gathers the
    /// probabilities, every op's output and the saliency for one readback.
    op_outputs: Vec<OpOutput>,
    explanation: TrackedBuffer,
    metrics: TrackedBuffer,
    pub(super) steps: TrackedBuffer,
    pub(super) dispatches: Dispatches,
    kernels: KernelChoice,
    /// The parameters and Adam's moments, each with [`SNAPSHOTS`] copies used in turn (see
    /// [`train_in_chunks`]).
    snapshots: Vec<(TrackedBuffer, [TrackedBuffer; SNAPSHOTS])>,
    undo: Undo,
    /// The running training tally's readback of each submitted chunk not read yet.
    in_flight: VecDeque<PendingReadback>,
    /// The next chunk of steps starts the epoch: it clears the metrics first.
    starts_epoch: bool,
    epoch: usize,
    pub(super) global_step: u64,
}

/// The largest batch `adapter` trains: [`MAX_BATCH`] on a CPU implementation of a GPU (its
/// loop guard), none elsewhere (the binding limits, checked when the buffers are sized).
pub fn batch_cap(adapter: &AdapterSummary) -> Option<usize> {
    adapter.is_cpu().then_some(MAX_BATCH)
}

impl GpuTrainer {
    /// A trainer with the kernel set for its adapter ([`KernelSet::Auto`]: the emulator set on a
    /// CPU adapter, the GPU set elsewhere).
    pub fn new(
        ctx: Arc<GpuContext>,
        spec: &ModelSpec,
        config: TrainConfig,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<Self, TrainError> {
        let kernels = KernelSet::Auto.choice(&ctx.adapter);
        GpuTrainer::with_kernels(ctx, spec, config, kernels, train, test)
    }

    /// Uploads both splits and the initialised model, compiles the kernels `kernels` names and
    /// binds every dispatch once.
    pub fn with_kernels(
        ctx: Arc<GpuContext>,
        spec: &ModelSpec,
        config: TrainConfig,
        kernels: KernelChoice,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        config.check_batch_cap(batch_cap(&ctx.adapter))?;
        check_datasets(train, test)?;
        let work = Workspace::new(&ctx, spec, &config, test.len())?;
        let train_split = ResidentSplit::upload(&ctx, "train", train)?;
        let test_split = ResidentSplit::upload(&ctx, "test", test)?;
        let compiled = Kernels::new(&ctx, &kernels);
        let dispatches = Dispatches::bind(&ctx, &compiled, spec, &config, &work, &train_split, &test_split);
        ctx.check_errors()?;
        let Workspace { capacity, params, x, probs, outputs, input_gradient, metrics, steps, adam_m, adam_v, .. } =
            work;
        let op_outputs = spec.op_outputs();
        let explained = NUM_CLASSES + output_widths(&op_outputs).iter().sum::<usize>() + spec.inputs;
        let explanation = ctx.storage("explanation", (explained * 4) as u64);
        let snapshots = [(params.clone(), "params copy"), (adam_m, "adam m copy"), (adam_v, "adam v copy")]
            .into_iter()
            .map(|(live, label)| {
                let copies = std::array::from_fn(|_| ctx.storage(label, live.size()));
                (live, copies)
            })
            .collect();
        Ok(GpuTrainer {
            ctx,
            config,
            schedule: spec.schedule,
            layout: spec.param_layout(),
            inputs: spec.inputs,
            train: train_split,
            test: test_split,
            capacity,
            params,
            x,
            probs,
            outputs,
            input_gradient,
            op_outputs,
            explanation,
            metrics,
            steps,
            dispatches,
            kernels,
            snapshots,
            undo: Undo::default(),
            in_flight: VecDeque::new(),
            starts_epoch: false,
            epoch: 0,
            global_step: 0,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The kernel implementations this trainer was given.
    pub fn kernels(&self) -> KernelChoice {
        self.kernels
    }

    /// Epochs finished so far.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Compute dispatches recorded for one training step.
    pub fn dispatches_per_step(&self) -> usize {
        self.dispatches.train_step().count()
    }

    /// The dispatches of one full training batch, as they are recorded, with what each launches
    /// and does.
    pub fn train_step_plan(&self) -> Vec<PlannedDispatch> {
        self.dispatches.train_step_plan(self.config.batch as u32)
    }

    /// The uniforms of the training steps that follow `global_step`, one per `(start, rows)` batch:
    /// Adam's step number, the scheduled and bias-corrected learning rate, the dropout seed.
    pub(super) fn training_steps(&self, batches: &[(usize, usize)]) -> Vec<StepUniform> {
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
    pub async fn run_epoch(&mut self, on_progress: impl FnMut(&Progress)) -> Result<EpochStats, TrainError> {
        let started = Instant::now();
        let epoch = self.epoch + 1;
        let order = shuffled_indices(self.train.len, self.config.seed, epoch as u64);
        self.ctx.queue.write_buffer(&self.train.order, 0, bytemuck::cast_slice(&order));
        let train_batches: Vec<_> = batches(self.train.len, self.config.batch).collect();
        self.starts_epoch = true;
        train_in_chunks(self, epoch, &train_batches, started, on_progress).await?;
        let train_seconds = started.elapsed().as_secs_f64();

        let words = self.run_test_set(false).await?;
        let tally = |which: u32| tally_figures(&words, which);
        let (loss, train_accuracy) = match self.config.metrics {
            EpochMetrics::Step => tally(TRAIN_TALLY),
            EpochMetrics::AfterStep => (tally(AFTER_STEP_LOSS_TALLY).0, tally(AFTER_STEP_HITS_TALLY).1),
        };
        let (test_loss, test_accuracy) = tally(TEST_TALLY);
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

    /// Runs every test batch (one step slot each), clearing the metrics first when asked, and
    /// reads back every tally.
    async fn run_test_set(&self, clear_metrics: bool) -> Result<Vec<u32>, TrainError> {
        let steps: Vec<StepUniform> = batches(self.test.len, self.config.eval_batch)
            .map(|(start, rows)| StepUniform { batch_start: start as u32, ..StepUniform::rows(rows) })
            .collect();
        self.submit(&steps, clear_metrics, Dispatches::test_step);
        Ok(self.ctx.read_u32(&self.metrics, TALLIES * TALLY_WORDS).await?)
    }

    /// Records copies of the parameters and Adam's moments to their snapshot copy `which`, or
    /// back when `restore`.
    fn encode_snapshot_copies(&self, encoder: &mut wgpu::CommandEncoder, which: usize, restore: bool) {
        for (live, copies) in &self.snapshots {
            let copy = &copies[which];
            let (from, to) = if restore { (copy, live) } else { (live, copy) };
            encoder.copy_buffer_to_buffer(from, 0, to, 0, live.size());
        }
    }

    /// Changes Adam's learning rate, e.g. to continue after [`TrainError::Diverged`].
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), TrainError> {
        self.config.set_learning_rate(learning_rate)
    }

    /// Writes `steps` to the step buffer and submits one command buffer running the dispatches
    /// `pass` lists for each of them.
    fn submit<'a, I>(&'a self, steps: &[StepUniform], clear_metrics: bool, pass: impl Fn(&'a Dispatches) -> I)
    where
        I: Iterator<Item = &'a BoundKernel>,
    {
        let encoder = self.ctx.device.create_command_encoder(&Default::default());
        let encoder = self.encode(encoder, steps, clear_metrics, pass);
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Writes `steps` to the step buffer and records, after what `encoder` holds, the dispatches
    /// `pass` lists for each of them.
    fn encode<'a, I>(
        &'a self,
        mut encoder: wgpu::CommandEncoder,
        steps: &[StepUniform],
        clear_metrics: bool,
        pass: impl Fn(&'a Dispatches) -> I,
    ) -> wgpu::CommandEncoder
    where
        I: Iterator<Item = &'a BoundKernel>,
    {
        write_steps(&self.ctx, &self.steps, steps);
        if clear_metrics {
            encoder.clear_buffer(&self.metrics, 0, None);
        }
        {
            let mut compute = encoder.begin_compute_pass(&Default::default());
            for (slot, step) in steps.iter().enumerate() {
                for kernel in pass(&self.dispatches) {
                    kernel.encode(&mut compute, slot as u32, step.rows);
                }
            }
        }
        encoder
    }

    /// Softmax probabilities `[rows, classes]` for `rows` images given as pixels in [0, 1].
    pub async fn predict(&self, pixels: &[f32]) -> Result<Vec<f32>, TrainError> {
        let rows = images_in(pixels, self.inputs)?;
        let mut probs = Vec::with_capacity(rows * NUM_CLASSES);
        for chunk in pixels.chunks(self.capacity * self.inputs) {
            let rows = chunk.len() / self.inputs;
            self.ctx.queue.write_buffer(&self.x, 0, bytemuck::cast_slice(chunk));
            self.submit(&[StepUniform::rows(rows)], false, Dispatches::prediction);
            probs.extend(self.ctx.read_f32(&self.probs, rows * NUM_CLASSES).await?);
        }
        Ok(probs)
    }

    /// One image's prediction, every op's activations and the saliency, in evaluation mode: the
    /// prediction's dispatches then the saliency's backward pass ([`Dispatches::explanation`]),
    /// the results copied together and read back once.
    pub async fn explain(&self, pixels: &[f32]) -> Result<Explanation, TrainError> {
        check_one_image(pixels, self.inputs)?;
        self.ctx.queue.write_buffer(&self.x, 0, bytemuck::cast_slice(pixels));
        let encoder = self.ctx.device.create_command_encoder(&Default::default());
        let mut encoder = self.encode(encoder, &[StepUniform::rows(1)], false, Dispatches::explanation);
        let floats = |n: usize| (n * 4) as u64;
        let widths = output_widths(&self.op_outputs);
        let mut at = 0;
        let sources = std::iter::once((&self.probs, NUM_CLASSES))
            .chain(self.outputs.iter().zip(widths.iter().copied()))
            .chain([(&self.input_gradient, self.inputs)]);
        for (source, count) in sources {
            encoder.copy_buffer_to_buffer(source, 0, &self.explanation, floats(at), floats(count));
            at += count;
        }
        self.ctx.queue.submit([encoder.finish()]);
        let values = self.ctx.read_f32(&self.explanation, at).await?;
        let (probs, rest) = values.split_at(NUM_CLASSES);
        let (activations, saliency) = rest.split_at(rest.len() - self.inputs);
        let mut outputs = Vec::with_capacity(widths.len());
        let mut rest = activations;
        for width in widths {
            let (values, tail) = rest.split_at(width);
            outputs.push(values.to_vec());
            rest = tail;
        }
        Ok(Explanation::new(&self.op_outputs, probs.to_vec(), outputs, saliency.to_vec()))
    }

    /// The whole state after the epochs run so far, as `run`'s: parameters, Adam's moments and
    /// step, the epoch, the learning rate ([`TrainerState`]).
    pub async fn state(&self, run: RunIdentity) -> Result<TrainerState, TrainError> {
        let read = |i: usize, count: usize| {
            let live = &self.snapshots[i].0;
            self.ctx.read_f32(live, count)
        };
        Ok(TrainerState {
            run,
            epoch: self.epoch,
            global_step: self.global_step,
            learning_rate: self.config.adam.learning_rate,
            params: read(0, self.layout.total).await?,
            adam_m: read(1, self.layout.trainable).await?,
            adam_v: read(2, self.layout.trainable).await?,
        })
    }

    /// Goes on from `state`, which must be `run`'s and fit this model: the next epoch is the
    /// one after its, with its weights, moments, step and learning rate.
    pub fn restore(&mut self, state: &TrainerState, run: &RunIdentity) -> Result<(), TrainError> {
        state.check_run(run)?;
        state.check_sizes(self.layout.total, self.layout.trainable)?;
        self.config.set_learning_rate(state.learning_rate)?;
        for (i, values) in [&state.params, &state.adam_m, &state.adam_v].into_iter().enumerate() {
            // A model without trainable tensors has 4-byte moment buffers and no moments.
            if !values.is_empty() {
                self.ctx.queue.write_buffer(&self.snapshots[i].0, 0, bytemuck::cast_slice(values));
            }
        }
        self.epoch = state.epoch;
        self.global_step = state.global_step;
        Ok(())
    }

    /// The current weights, in [`ModelSpec::param_layout`] order.
    pub async fn params(&self) -> Result<Vec<f32>, TrainError> {
        Ok(self.ctx.read_f32(&self.params, self.layout.total).await?)
    }

    /// Replaces the weights (e.g. loaded from a file); the optimizer state is kept.
    pub fn set_params(&mut self, params: &[f32]) -> Result<(), TrainError> {
        check_param_count(params, self.layout.total)?;
        self.ctx.queue.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        Ok(())
    }

    /// The test set's loss and accuracy for the current weights, exactly as the evaluation at
    /// the end of [`GpuTrainer::run_epoch`] computes them, without training.
    pub async fn evaluate(&self) -> Result<Evaluation, TrainError> {
        let words = self.run_test_set(true).await?;
        let (loss, accuracy) = tally_figures(&words, TEST_TALLY);
        Ok(Evaluation { loss, accuracy })
    }
}

impl ChunkRunner for GpuTrainer {
    fn steps_taken(&self) -> u64 {
        self.global_step
    }

    fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn undo(&mut self) -> &mut Undo {
        &mut self.undo
    }

    async fn restore_snapshot(&mut self, copy: usize, steps: u64) -> Result<(), TrainError> {
        // The chunks still running finish before the copy back (the queue keeps their order).
        self.in_flight.clear();
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        self.encode_snapshot_copies(&mut encoder, copy, true);
        self.ctx.queue.submit([encoder.finish()]);
        self.ctx.wait_for_submitted_work().await?;
        self.global_step = steps;
        Ok(())
    }

    /// One submit for the whole chunk — the snapshot copy, its steps, the copy of the running
    /// training tally to a staging buffer of its own — and nothing waited for: the next chunk is
    /// encoded while this one runs.
    async fn submit_steps(&mut self, copy: usize, batches: &[(usize, usize)]) -> Result<(), TrainError> {
        let steps = self.training_steps(batches);
        let clear_metrics = std::mem::take(&mut self.starts_epoch);
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        self.encode_snapshot_copies(&mut encoder, copy, false);
        let encoder = self.encode(encoder, &steps, clear_metrics, Dispatches::train_step);
        let pending = self.ctx.submit_with_readback(encoder, &self.metrics, (TALLY_WORDS * 4) as u64);
        self.in_flight.push_back(pending);
        self.global_step += batches.len() as u64;
        Ok(())
    }

    /// Waits for the oldest chunk's tally (16 bytes; never one per step).
    async fn finished_loss(&mut self) -> Result<f32, TrainError> {
        let pending = self.in_flight.pop_front().expect("train_in_chunks reads one loss per submitted chunk");
        let bytes = self.ctx.finish_readback(pending).await?;
        Ok(tally_figures(&bytemuck::pod_collect_to_vec(&bytes), TRAIN_TALLY).0)
    }
}

/// Floats of one sample's output of each op.
fn output_widths(ops: &[OpOutput]) -> Vec<usize> {
    ops.iter().map(|op| op.dims.iter().product()).collect()
}

/// (mean loss, accuracy) of metrics tally `which` among `words` (read from its start).
fn tally_figures(words: &[u32], which: u32) -> (f32, f32) {
    let words = &words[which as usize * TALLY_WORDS..][..TALLY_WORDS];
    let sum = f64::from(f32::from_bits(words[0])) - f64::from(f32::from_bits(words[1]));
    let samples = f64::from(words[3].max(1));
    ((sum / samples) as f32, (f64::from(words[2]) / samples) as f32)
}
