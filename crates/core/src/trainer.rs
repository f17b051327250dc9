//! One trainer type for the front-ends, whichever backend runs it, and the GPU trainer with the
//! CPU one as its fallback.

use std::sync::Arc;

use fashion_data::Dataset;

use crate::cpu::CpuTrainer;
use crate::explain::Explanation;
use crate::gpu::context::GpuContext;
use crate::gpu::ops::KernelChoice;
use crate::gpu::trainer::GpuTrainer;
use crate::model::ModelSpec;
use crate::train::{Backend, EpochStats, Evaluation, Progress, RunIdentity, TrainConfig, TrainError, TrainerState};

/// A GPU or CPU trainer behind one API.
// One trainer lives per session and is never moved in a hot loop: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Trainer {
    Gpu(GpuTrainer),
    Cpu(CpuTrainer),
}

impl Trainer {
    /// A CPU trainer (the GPU one needs a device: build it with [`GpuTrainer::new`]).
    pub fn cpu(spec: &ModelSpec, config: TrainConfig, train: &Dataset, test: &Dataset) -> Result<Self, TrainError> {
        Ok(Trainer::Cpu(CpuTrainer::new(spec, config, train, test)?))
    }

    /// The GPU kernels it trains with (none on the CPU).
    pub fn kernels(&self) -> Option<crate::gpu::ops::KernelChoice> {
        match self {
            Trainer::Gpu(t) => Some(t.kernels()),
            Trainer::Cpu(_) => None,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Trainer::Gpu(_) => Backend::Gpu,
            Trainer::Cpu(_) => Backend::Cpu,
        }
    }

    pub fn config(&self) -> &TrainConfig {
        match self {
            Trainer::Gpu(t) => t.config(),
            Trainer::Cpu(t) => t.config(),
        }
    }

    pub fn epoch(&self) -> usize {
        match self {
            Trainer::Gpu(t) => t.epoch(),
            Trainer::Cpu(t) => t.epoch(),
        }
    }

    pub async fn run_epoch(&mut self, on_progress: impl FnMut(&Progress)) -> Result<EpochStats, TrainError> {
        match self {
            Trainer::Gpu(t) => t.run_epoch(on_progress).await,
            Trainer::Cpu(t) => t.run_epoch(on_progress).await,
        }
    }

    /// The test set's loss and accuracy for the current weights, without training.
    pub async fn evaluate(&self) -> Result<Evaluation, TrainError> {
        match self {
            Trainer::Gpu(t) => t.evaluate().await,
            Trainer::Cpu(t) => Ok(t.evaluate().await),
        }
    }

    /// Softmax probabilities `[rows, classes]` for images given as pixels in [0, 1].
    pub async fn predict(&self, pixels: &[f32]) -> Result<Vec<f32>, TrainError> {
        match self {
            Trainer::Gpu(t) => t.predict(pixels).await,
            Trainer::Cpu(t) => t.predict(pixels),
        }
    }

    /// For one image (pixels in [0, 1]): the probabilities, the predicted class, every layer's
    /// activations and the saliency ∂p_c/∂x, all in evaluation mode (see [`Explanation`]).
    pub async fn explain(&self, pixels: &[f32]) -> Result<Explanation, TrainError> {
        match self {
            Trainer::Gpu(t) => t.explain(pixels).await,
            Trainer::Cpu(t) => t.explain(pixels),
        }
    }

    /// Changes Adam's learning rate for the steps to come (e.g. after [`TrainError::Diverged`]).
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), TrainError> {
        match self {
            Trainer::Gpu(t) => t.set_learning_rate(learning_rate),
            Trainer::Cpu(t) => t.set_learning_rate(learning_rate),
        }
    }

    pub async fn params(&self) -> Result<Vec<f32>, TrainError> {
        match self {
            Trainer::Gpu(t) => t.params().await,
            Trainer::Cpu(t) => Ok(t.params()),
        }
    }

    pub fn set_params(&mut self, params: &[f32]) -> Result<(), TrainError> {
        match self {
            Trainer::Gpu(t) => t.set_params(params),
            Trainer::Cpu(t) => t.set_params(params),
        }
    }

    /// What this trainer's run is, for a [`TrainerState`] of it: `model`'s name, the seed, the
    /// batch and the kernels (`cpu` on the CPU: its trainers all sum with the fast kernels).
    pub fn run_identity(&self, model: &str) -> RunIdentity {
        let config = self.config();
        let kernels = kernels_name(self.kernels());
        let metrics = config.metrics.as_str().to_string();
        RunIdentity { model: model.to_string(), seed: config.seed, batch: config.batch, kernels, metrics }
    }

    /// The whole state after the epochs run so far, as `run`'s.
    pub async fn state(&self, run: RunIdentity) -> Result<TrainerState, TrainError> {
        match self {
            Trainer::Gpu(t) => t.state(run).await,
            Trainer::Cpu(t) => Ok(t.state(run)),
        }
    }

    /// Goes on from `state`, which must be `run`'s and fit this model (nothing changes when
    /// it is refused).
    pub fn restore(&mut self, state: &TrainerState, run: &RunIdentity) -> Result<(), TrainError> {
        match self {
            Trainer::Gpu(t) => t.restore(state, run),
            Trainer::Cpu(t) => t.restore(state, run),
        }
    }
}

/// The kernels a CPU trainer's [`RunIdentity`] names.
pub const CPU_KERNELS: &str = "cpu";

/// How a run's identity and history name the kernels it trains with: the GPU kernels' own
/// description, or [`CPU_KERNELS`] for a CPU trainer (`None`).
pub fn kernels_name(kernels: Option<crate::gpu::ops::KernelChoice>) -> String {
    kernels.map_or_else(|| CPU_KERNELS.to_string(), |k| k.to_string())
}

/// A GPU trainer on `gpu` when there is one and it can hold the model (with `kernels`, else the
/// adapter's set), otherwise a CPU trainer, with the reason the GPU was not used.
pub fn trainer_with_cpu_fallback(
    gpu: Result<Arc<GpuContext>, String>,
    kernels: Option<KernelChoice>,
    spec: &ModelSpec,
    gpu_config: TrainConfig,
    cpu_config: TrainConfig,
    train: &Dataset,
    test: &Dataset,
) -> Result<(Trainer, Option<String>), TrainError> {
    let why_cpu = match gpu {
        Ok(gpu) => match match kernels {
            Some(kernels) => GpuTrainer::with_kernels(gpu, spec, gpu_config, kernels, train, test),
            None => GpuTrainer::new(gpu, spec, gpu_config, train, test),
        } {
            Ok(trainer) => return Ok((Trainer::Gpu(trainer), None)),
            Err(error) => format!("The GPU trainer could not start ({error})."),
        },
        Err(reason) => reason,
    };
    Ok((Trainer::cpu(spec, cpu_config, train, test)?, Some(why_cpu)))
}
