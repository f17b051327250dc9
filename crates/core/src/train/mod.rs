//! What training means, whichever backend runs it: the settings, the figures an epoch reports,
//! its batches and step seeds, how it fails, the checks every trainer makes of its input,
//! (`recipe`) what a user sets of it and the datasets cut to the user's limits, and (`chunks`)
//! the chunk-by-chunk loop that undoes a divergence. The backends (`cpu`, `gpu`)
//! depend on this module, never the other way round.

mod chunks;
mod recipe;
pub mod saved_run;
pub mod state;

use fashion_data::Dataset;

use crate::optimizer::AdamConfig;

pub(crate) use chunks::{train_in_chunks, ChunkRunner, Undo, SNAPSHOTS};
pub use recipe::{limit, Recipe};
pub use saved_run::{SavedRun, SavedRunError};
pub use state::{RunIdentity, StateError, TrainerState};

/// Which hardware trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Backend {
    Gpu,
    Cpu,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
        }
    }
}

/// What kind of failure of the hardware a trainer runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendFailure {
    /// No device to train on (no adapter, or it refused a device).
    Unavailable,
    /// The device went away mid-training; the model on it is gone.
    DeviceLost,
    /// The model or a batch does not fit the device's limits.
    TooLarge,
    /// Anything else the device reported (validation, readback).
    Failed,
}

/// The hardware a trainer runs on failed; the message says what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub backend: Backend,
    pub failure: BackendFailure,
    pub message: String,
}

/// Training failed; the message says what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("invalid training setting: {0}")]
    Config(String),
    #[error(
        "training diverged in epoch {epoch}: the loss became {loss} by step {last_step}; the weights \
         are back to where they were before step {first_step}: lower the learning rate (now \
         {learning_rate:e}) and continue"
    )]
    /// Steps count optimizer steps from 1 over the whole run; `first_step..=last_step` were undone.
    Diverged { epoch: usize, first_step: u64, last_step: u64, loss: f32, learning_rate: f32 },
    #[error(transparent)]
    State(#[from] StateError),
}

/// What an epoch's training loss and accuracy measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EpochMetrics {
    /// Each step's own figures, from its forward pass before the update (what Keras's `fit`
    /// reports): the loss in training mode, the accuracy of that same forward pass.
    #[default]
    Step,
    /// The study's: after each step's update, on the batch just trained, the loss of a second
    /// forward pass in training mode (dropout with a fresh mask, BatchNorm on the batch's
    /// statistics without touching the moving ones) and the accuracy of a forward pass in
    /// evaluation mode. Two extra forward passes per step.
    AfterStep,
}

impl EpochMetrics {
    /// The name `--metrics` and the page's `metrics=` take.
    pub fn as_str(self) -> &'static str {
        match self {
            EpochMetrics::Step => "step",
            EpochMetrics::AfterStep => "study",
        }
    }

    /// What the figures are, in a line for the logs.
    pub fn describe(self) -> &'static str {
        match self {
            EpochMetrics::Step => "loss and train accuracy: each step's own, before its update (Keras's fit)",
            EpochMetrics::AfterStep => {
                "loss and train accuracy: measured after each step's update on the batch just trained (the study's loop)"
            }
        }
    }
}

impl std::str::FromStr for EpochMetrics {
    type Err = TrainError;

    fn from_str(name: &str) -> Result<Self, TrainError> {
        match name {
            "step" => Ok(EpochMetrics::Step),
            "study" => Ok(EpochMetrics::AfterStep),
            other => Err(TrainError::Config(format!(
                "metrics must be `step` (each step's own figures, as Keras's fit) or `study` (measured after each \
                 step's update, as the study's loop), got `{other}`"
            ))),
        }
    }
}

/// The dropout op index the after-step loss draws its mask with: op `index`'s, offset so the
/// mask is a fresh one, not the step's own ([`EpochMetrics::AfterStep`]).
pub fn after_step_dropout_index(index: u32) -> u32 {
    index + AFTER_STEP_DROPOUT_STREAM
}

const AFTER_STEP_DROPOUT_STREAM: u32 = 1 << 16;

/// The study's recipe: Adam 1e-3, batch 100, 30 epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub adam: AdamConfig,
    /// Seeds the weight init and every epoch's shuffle.
    pub seed: u64,
    /// Training steps encoded into one command buffer.
    pub steps_per_submit: usize,
    /// Samples per forward pass when evaluating the test set.
    pub eval_batch: usize,
    /// What the epoch's training loss and accuracy measure.
    pub metrics: EpochMetrics,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch: 100,
            adam: AdamConfig::default(),
            seed: 1,
            steps_per_submit: 50,
            eval_batch: 1000,
            metrics: EpochMetrics::Step,
        }
    }
}

impl TrainConfig {
    /// Changes Adam's learning rate (e.g. to continue after [`TrainError::Diverged`]).
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), TrainError> {
        let changed = TrainConfig { adam: AdamConfig { learning_rate, ..self.adam }, ..self.clone() };
        changed.validate()?;
        *self = changed;
        Ok(())
    }

    /// Refuses settings no trainer can run, with one line naming the setting.
    pub fn validate(&self) -> Result<(), TrainError> {
        let lr = self.adam.learning_rate;
        let problem = if self.epochs == 0 {
            "epochs must be at least 1".to_string()
        } else if self.batch == 0 {
            "batch size must be at least 1".to_string()
        } else if !(lr.is_finite() && lr > 0.0) {
            format!("learning rate must be a positive number, got {lr}")
        } else if self.steps_per_submit == 0 || self.eval_batch == 0 {
            "steps per submit and evaluation batch must be at least 1".to_string()
        } else {
            return Ok(());
        };
        Err(TrainError::Config(problem))
    }

    /// Refuses batches over `cap` (an adapter's: [`MAX_BATCH`] on a CPU implementation of a
    /// GPU, none elsewhere, where the binding limits bound a batch).
    pub fn check_batch_cap(&self, cap: Option<usize>) -> Result<(), TrainError> {
        match cap {
            Some(cap) if self.batch.max(self.eval_batch) > cap => Err(TrainError::Config(format!(
                "batch size must be at most {cap} on a CPU implementation of a GPU, got {}",
                self.batch.max(self.eval_batch)
            ))),
            _ => Ok(()),
        }
    }
}

/// Figures of one finished epoch.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    /// Mean training loss over the epoch's samples: each step's own (as Keras reports it), or
    /// measured after each step's update ([`EpochMetrics`]).
    pub loss: f32,
    /// Accuracy over the epoch's training batches, as [`EpochStats::loss`].
    pub train_accuracy: f32,
    pub test_loss: f32,
    pub test_accuracy: f32,
    pub train_samples: usize,
    pub seconds: f64,
}

impl EpochStats {
    /// The study's own epoch line.
    pub fn study_line(&self) -> String {
        format!(
            "Epoch: {} loss = {:.8} train accuracy = {:>7.4} test accuracy = {:>7.4}",
            self.epoch, self.loss, self.train_accuracy, self.test_accuracy
        )
    }

    pub fn samples_per_second(&self) -> f64 {
        self.train_samples as f64 / self.seconds.max(1e-9)
    }
}

/// The test set's figures for the current weights, computed as an epoch's evaluation does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub loss: f32,
    pub accuracy: f32,
}

/// Where an epoch stands, reported after each submitted chunk.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub epoch: usize,
    pub step: usize,
    pub steps: usize,
    pub samples_done: usize,
    pub seconds: f64,
}

/// The seed of optimizer step `t` (1-based): dropout's random stream for that step, the same on
/// every backend.
pub fn step_seed(seed: u64, t: u64) -> u32 {
    (seed as u32) ^ ((seed >> 32) as u32).rotate_left(16) ^ (t as u32).wrapping_mul(0x9e37_79b9)
}

/// The largest batch (training or evaluation) a GPU trainer takes on a CPU adapter (lavapipe,
/// SwiftShader), and the page before it knows its adapter: the emulator kernels loop over a
/// batch's rows in one thread (BatchNorm, the dense weight gradient), and llvmpipe ends an
/// invocation's loops after 65,535 iterations. Other adapters are bounded by their binding
/// limits only.
pub const MAX_BATCH: usize = 10_000;

/// Batches of `batch` over `len` samples as (start, rows); the last one may be short.
pub fn batches(len: usize, batch: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..len).step_by(batch.max(1)).map(move |start| (start, batch.min(len - start)))
}

/// Refuses an empty training or test set (every trainer needs both).
pub(crate) fn check_datasets(train: &Dataset, test: &Dataset) -> Result<(), TrainError> {
    if train.is_empty() || test.is_empty() {
        return Err(TrainError::Config("the training and test sets must not be empty".into()));
    }
    Ok(())
}

/// The number of images in `pixels` for a model of `inputs` pixels per image: whole images, at
/// least one.
pub(crate) fn images_in(pixels: &[f32], inputs: usize) -> Result<usize, TrainError> {
    if pixels.is_empty() || !pixels.len().is_multiple_of(inputs) {
        return Err(TrainError::Config(format!(
            "predict needs whole images of {inputs} pixels, got {} values",
            pixels.len()
        )));
    }
    Ok(pixels.len() / inputs)
}

/// Refuses a parameter vector of another length than the model's.
pub(crate) fn check_param_count(params: &[f32], expected: usize) -> Result<(), TrainError> {
    if params.len() != expected {
        return Err(TrainError::Config(format!("expected {expected} parameters, got {}", params.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_line_matches_the_study_format() {
        let stats = EpochStats {
            epoch: 1,
            loss: 0.471_220_25,
            train_accuracy: 0.8334,
            test_loss: 0.4,
            test_accuracy: 0.8503,
            train_samples: 60_000,
            seconds: 1.0,
        };
        assert_eq!(stats.study_line(), "Epoch: 1 loss = 0.47122025 train accuracy =  0.8334 test accuracy =  0.8503");
    }

    #[test]
    fn batches_cover_every_sample_once() {
        let all: Vec<_> = batches(250, 64).collect();
        assert_eq!(all, vec![(0, 64), (64, 64), (128, 64), (192, 58)]);
        assert_eq!(batches(0, 10).count(), 0);
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = |config: TrainConfig| config.validate().unwrap_err().to_string();
        assert!(bad(TrainConfig { batch: 0, ..TrainConfig::default() }).contains("batch"));
        let huge = TrainConfig { batch: MAX_BATCH + 1, ..TrainConfig::default() };
        assert!(huge.validate().is_ok(), "no cap without an adapter's");
        assert!(huge.check_batch_cap(None).is_ok());
        assert_eq!(
            huge.check_batch_cap(Some(MAX_BATCH)).unwrap_err().to_string(),
            "invalid training setting: batch size must be at most 10000 on a CPU implementation of a GPU, got 10001"
        );
        let eval = TrainConfig { eval_batch: MAX_BATCH + 1, ..TrainConfig::default() };
        assert!(eval.check_batch_cap(Some(MAX_BATCH)).is_err(), "the evaluation batch too");
        assert!(TrainConfig { batch: MAX_BATCH, ..TrainConfig::default() }.check_batch_cap(Some(MAX_BATCH)).is_ok());
        assert!(bad(TrainConfig { epochs: 0, ..TrainConfig::default() }).contains("epochs"));
        let nan_lr = AdamConfig { learning_rate: f32::NAN, ..AdamConfig::default() };
        assert!(bad(TrainConfig { adam: nan_lr, ..TrainConfig::default() }).contains("learning rate"));
    }
}
