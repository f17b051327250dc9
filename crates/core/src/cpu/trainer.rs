//! The CPU trainer: the same epoch as the GPU trainer (the same shuffle, steps, chunks and undo),
//! computed by [`CpuModel`]. On the web it yields to the event loop between steps once a frame's
//! worth of work is done ([`YieldBudget`]), so the page stays responsive.

use std::collections::VecDeque;

use fashion_data::{shuffled_indices, Dataset, PIXELS_PER_IMAGE};
use web_time::Instant;

use super::kernels::{CpuKernels, ThreadsAwake};
use super::model::{sized, CpuModel};
use crate::explain::{check_one_image, Explanation};
use crate::init::glorot_uniform_params;
use crate::model::{ModelSpec, OpOutput};
use crate::platform::YieldBudget;
use crate::train::{
    batches, check_datasets, check_param_count, images_in, train_in_chunks, ChunkRunner, EpochMetrics, EpochStats,
    Evaluation, Progress, RunIdentity, TrainConfig, TrainError, TrainerState, Undo, SNAPSHOTS,
};

/// Trains one model on the CPU.
pub struct CpuTrainer {
    config: TrainConfig,
    model: CpuModel,
    /// The snapshots the chunks take in turn (see [`train_in_chunks`]).
    snapshots: [Option<CpuModel>; SNAPSHOTS],
    /// The running loss after each chunk computed and not read yet.
    finished: VecDeque<f32>,
    undo: Undo,
    inputs: usize,
    /// Each op's output as the summary names it (for [`CpuTrainer::explain`]).
    op_outputs: Vec<OpOutput>,
    train: Dataset,
    test: Dataset,
    epoch: usize,
    /// This epoch's order of the training set, and its running loss sum and hits: the steps'
    /// own, and with [`EpochMetrics::AfterStep`] those measured after each update.
    order: Vec<u32>,
    loss_sum: f64,
    hits: u64,
    after_step: (f64, u64),
    samples: usize,
    /// When the steps last let the page run (kept across chunks, which may be short).
    budget: YieldBudget,
    /// The step's batch, gathered into the same buffers every step.
    batch: (Vec<f32>, Vec<u32>),
}

impl CpuTrainer {
    /// A trainer with the fast kernels.
    pub fn new(spec: &ModelSpec, config: TrainConfig, train: &Dataset, test: &Dataset) -> Result<Self, TrainError> {
        Self::with_kernels(spec, config, CpuKernels::Fast, train, test)
    }

    pub fn with_kernels(
        spec: &ModelSpec,
        config: TrainConfig,
        kernels: CpuKernels,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        check_datasets(train, test)?;
        let model = CpuModel::new(spec, glorot_uniform_params(spec, config.seed), config.adam, config.seed)
            .with_kernels(kernels);
        Ok(CpuTrainer {
            config,
            model,
            snapshots: [None, None, None],
            finished: VecDeque::new(),
            undo: Undo::default(),
            inputs: spec.inputs,
            op_outputs: spec.op_outputs(),
            train: train.clone(),
            test: test.clone(),
            epoch: 0,
            order: Vec::new(),
            loss_sum: 0.0,
            hits: 0,
            after_step: (0.0, 0),
            samples: 0,
            budget: YieldBudget::default(),
            batch: (Vec::new(), Vec::new()),
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn epoch(&self) -> usize {
        self.epoch
    }

    pub fn kernels(&self) -> CpuKernels {
        self.model.kernels()
    }

    /// Trains one epoch over the same shuffle the GPU trainer would use, then evaluates.
    pub async fn run_epoch(&mut self, on_progress: impl FnMut(&Progress)) -> Result<EpochStats, TrainError> {
        let started = Instant::now();
        let epoch = self.epoch + 1;
        self.order = shuffled_indices(self.train.len(), self.config.seed, epoch as u64);
        (self.loss_sum, self.hits, self.after_step, self.samples) = (0.0, 0, (0.0, 0), 0);
        let train_batches: Vec<_> = batches(self.train.len(), self.config.batch).collect();
        train_in_chunks(self, epoch, &train_batches, started, on_progress).await?;
        let train_seconds = started.elapsed().as_secs_f64();

        let test = self.evaluate().await;
        self.epoch = epoch;
        let train_n = self.train.len() as f64;
        let (loss_sum, hits) = match self.config.metrics {
            EpochMetrics::Step => (self.loss_sum, self.hits),
            EpochMetrics::AfterStep => self.after_step,
        };
        Ok(EpochStats {
            epoch,
            loss: (loss_sum / train_n) as f32,
            train_accuracy: (hits as f64 / train_n) as f32,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            train_samples: self.train.len(),
            seconds: train_seconds,
        })
    }

    /// The test set's loss and accuracy for the current weights (what an epoch ends with).
    pub async fn evaluate(&self) -> Evaluation {
        let identity: Vec<u32> = (0..self.test.len() as u32).collect();
        let (mut loss_sum, mut hits) = (0.0f64, 0u64);
        let mut budget = YieldBudget::default();
        let (mut x, mut labels) = (Vec::new(), Vec::new());
        for (start, rows) in batches(self.test.len(), self.config.eval_batch) {
            let (x, labels) = (sized(&mut x, rows * PIXELS_PER_IMAGE), sized(&mut labels, rows));
            let (images, classes) = (self.test.images(), self.test.labels());
            let batch = (start, rows);
            self.model.kernels().gather_batch(images, classes, PIXELS_PER_IMAGE, &identity, batch, x, labels);
            let outcome = self.model.evaluate(x, labels);
            loss_sum += outcome.loss_sum;
            hits += u64::from(outcome.correct);
            budget.tick().await;
        }
        let n = self.test.len() as f64;
        Evaluation { loss: (loss_sum / n) as f32, accuracy: (hits as f64 / n) as f32 }
    }

    /// Softmax probabilities `[rows, classes]` for images given as pixels in [0, 1].
    pub fn predict(&self, pixels: &[f32]) -> Result<Vec<f32>, TrainError> {
        let rows = images_in(pixels, self.inputs)?;
        Ok(self.model.predict(pixels, rows))
    }

    /// One image's prediction, every op's activations and the saliency, in evaluation mode
    /// ([`CpuModel::explain`]).
    pub fn explain(&self, pixels: &[f32]) -> Result<Explanation, TrainError> {
        check_one_image(pixels, self.inputs)?;
        let (probs, outputs, saliency) = self.model.explain(pixels, 1);
        Ok(Explanation::new(&self.op_outputs, probs, outputs, saliency))
    }

    /// Changes Adam's learning rate for the steps to come (e.g. after [`TrainError::Diverged`]).
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), TrainError> {
        self.config.set_learning_rate(learning_rate)?;
        self.model.set_learning_rate(learning_rate);
        Ok(())
    }

    pub fn params(&self) -> Vec<f32> {
        self.model.params.clone()
    }

    pub fn set_params(&mut self, params: &[f32]) -> Result<(), TrainError> {
        check_param_count(params, self.model.params.len())?;
        self.model.params.copy_from_slice(params);
        Ok(())
    }

    /// The whole state after the epochs run so far, as `run`'s ([`TrainerState`], the format
    /// the GPU trainer writes too).
    pub fn state(&self, run: RunIdentity) -> TrainerState {
        let (m, v) = self.model.moments();
        TrainerState {
            run,
            epoch: self.epoch,
            global_step: self.model.step(),
            learning_rate: self.config.adam.learning_rate,
            params: self.model.params.clone(),
            adam_m: m.to_vec(),
            adam_v: v.to_vec(),
        }
    }

    /// Goes on from `state`, which must be `run`'s and fit this model: the next epoch is the
    /// one after its, with its weights, moments, step and learning rate. Nothing changes when
    /// it is refused.
    pub fn restore(&mut self, state: &TrainerState, run: &RunIdentity) -> Result<(), TrainError> {
        state.check_run(run)?;
        state.check_sizes(self.model.layout.total, self.model.layout.trainable)?;
        self.config.set_learning_rate(state.learning_rate)?;
        self.model.set_learning_rate(state.learning_rate);
        self.model.params.copy_from_slice(&state.params);
        self.model.set_optimizer(&state.adam_m, &state.adam_v, state.global_step);
        self.epoch = state.epoch;
        Ok(())
    }
}

impl ChunkRunner for CpuTrainer {
    fn steps_taken(&self) -> u64 {
        self.model.step()
    }

    fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn undo(&mut self) -> &mut Undo {
        &mut self.undo
    }

    async fn restore_snapshot(&mut self, copy: usize, _steps: u64) -> Result<(), TrainError> {
        self.finished.clear();
        if let Some(snapshot) = self.snapshots[copy].clone() {
            self.model = snapshot;
        }
        // A snapshot from before `set_learning_rate` keeps the rate it was taken with.
        self.model.set_learning_rate(self.config.adam.learning_rate);
        Ok(())
    }

    /// Computes the chunk at once (the CPU has nothing to overlap), yielding between steps.
    async fn submit_steps(&mut self, copy: usize, batches: &[(usize, usize)]) -> Result<(), TrainError> {
        self.snapshots[copy] = Some(self.model.clone());
        let _awake = self.model.wants_threads_awake(self.config.batch).then(ThreadsAwake::keep);
        for &(start, rows) in batches {
            let (x, labels) = (sized(&mut self.batch.0, rows * PIXELS_PER_IMAGE), sized(&mut self.batch.1, rows));
            let (images, classes) = (self.train.images(), self.train.labels());
            let batch = (start, rows);
            self.model.kernels().gather_batch(images, classes, PIXELS_PER_IMAGE, &self.order, batch, x, labels);
            let outcome = self.model.train_step(x, labels);
            self.loss_sum += outcome.loss_sum;
            self.hits += u64::from(outcome.correct);
            if self.config.metrics == EpochMetrics::AfterStep {
                let after = self.model.after_step_outcome(x, labels);
                self.after_step.0 += after.loss_sum;
                self.after_step.1 += u64::from(after.correct);
            }
            self.samples += rows;
            self.budget.tick().await;
        }
        self.finished.push_back((self.loss_sum / self.samples.max(1) as f64) as f32);
        Ok(())
    }

    async fn finished_loss(&mut self) -> Result<f32, TrainError> {
        Ok(self.finished.pop_front().expect("train_in_chunks reads one loss per submitted chunk"))
    }
}
