//! The training benchmark both front-ends run (`fashion-gpu bench`, the page's `?bench=1`): the
//! kernel autotune, a warm-up, then `steps` timed training steps of a model on synthetic data,
//! measured into a [`BenchReport`], which the CPU backend's benchmark ([`run_cpu`]) fills too;
//! and a training step's dispatch plan ([`plan`]). The front-ends show both as JSON and text
//! (crates/report's `bench_report`).

use std::sync::Arc;

use fashion_data::{Dataset, SplitMix64, NUM_CLASSES, PIXELS_PER_IMAGE};

use crate::cpu::{kernels, CpuKernels, CpuTrainer};
use crate::gpu::autotune::{self, Tuning};
use crate::gpu::context::GpuContext;
use crate::gpu::kernel::PlannedDispatch;
use crate::gpu::ops::{KernelChoice, KernelSet};
use crate::gpu::timing::{DispatchTime, Phase};
use crate::gpu::trainer::GpuTrainer;
use crate::model::ModelSpec;
use crate::train::{Backend, TrainConfig, TrainError};

/// Training samples in a Fashion-MNIST epoch: what "epoch seconds" are extrapolated to.
pub const EPOCH_SAMPLES: usize = 60_000;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    pub batch: usize,
    /// Timed training steps (the warm-up runs as many again).
    pub steps: usize,
    pub steps_per_submit: usize,
    pub seed: u64,
    /// Time every kernel variant first and train with the fastest.
    pub autotune: bool,
    /// The kernels without autotune.
    pub kernels: KernelSet,
}

impl Default for BenchOptions {
    fn default() -> Self {
        let study = TrainConfig::default();
        BenchOptions {
            batch: study.batch,
            steps: 100,
            steps_per_submit: study.steps_per_submit,
            seed: study.seed,
            autotune: true,
            kernels: KernelSet::Auto,
        }
    }
}

/// What trained: GPU kernels (tuned or a set's), or CPU kernels on some threads.
#[derive(Debug, Clone, PartialEq)]
pub enum BenchKernels {
    Gpu(KernelChoice),
    Cpu { kernels: CpuKernels, threads: usize },
}

impl BenchKernels {
    pub fn backend(&self) -> Backend {
        match self {
            BenchKernels::Gpu(_) => Backend::Gpu,
            BenchKernels::Cpu { .. } => Backend::Cpu,
        }
    }

    /// `(what, which)` pairs: each GPU kernel's variant, or the CPU kernels and threads.
    pub fn entries(&self) -> Vec<(String, String)> {
        match self {
            BenchKernels::Gpu(choice) => {
                choice.entries().iter().map(|&(k, v)| (k.to_string(), v.as_str().to_string())).collect()
            }
            BenchKernels::Cpu { kernels, threads } => {
                vec![("cpu".into(), kernels.as_str().into()), ("threads".into(), threads.to_string())]
            }
        }
    }
}

/// What the benchmark measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub model: String,
    pub adapter: String,
    pub options: BenchOptions,
    /// Wall-clock seconds of the timed steps, submits and waits included.
    pub seconds: f64,
    pub dispatches_per_step: usize,
    pub flops_per_step: f64,
    /// GPU time of each dispatch of a step over as many steps again, each in its own pass;
    /// `None` without timestamp queries.
    pub dispatches: Option<Vec<DispatchTime>>,
    pub kernels: BenchKernels,
    pub tuning: Option<Tuning>,
}

impl BenchReport {
    pub fn seconds_per_step(&self) -> f64 {
        self.seconds / self.options.steps.max(1) as f64
    }

    pub fn samples_per_second(&self) -> f64 {
        self.options.batch as f64 / self.seconds_per_step().max(1e-12)
    }

    /// Seconds a 60,000-sample epoch would take at this rate.
    pub fn epoch_seconds(&self) -> f64 {
        EPOCH_SAMPLES.div_ceil(self.options.batch.max(1)) as f64 * self.seconds_per_step()
    }

    /// Command buffers submitted per step (none on the CPU).
    pub fn submits_per_step(&self) -> f64 {
        if self.kernels.backend() == Backend::Cpu {
            return 0.0;
        }
        let steps = self.options.steps.max(1);
        steps.div_ceil(self.options.steps_per_submit.max(1)) as f64 / steps as f64
    }

    /// Achieved GFLOP/s, counting [`flops_per_step`] per step.
    pub fn gflops(&self) -> f64 {
        self.flops_per_step / self.seconds_per_step().max(1e-12) / 1e9
    }

    /// Milliseconds per step in forward, backward and optimizer.
    pub fn phase_ms(&self) -> Option<[f64; 3]> {
        let steps = self.options.steps.max(1) as f64;
        let dispatches = self.dispatches.as_ref()?;
        let ms =
            |phase: Phase| dispatches.iter().filter(|d| d.phase == phase).map(|d| d.seconds).sum::<f64>() * 1e3 / steps;
        Some([ms(Phase::Forward), ms(Phase::Backward), ms(Phase::Optimizer)])
    }
}

/// The dispatches of one training step of `spec` at batch `batch` with `kernels`, from the
/// trainer's own bindings (built on a synthetic batch; nothing is dispatched).
pub fn plan(
    ctx: Arc<GpuContext>,
    spec: &ModelSpec,
    batch: usize,
    kernels: KernelChoice,
) -> Result<Vec<PlannedDispatch>, TrainError> {
    let config = TrainConfig { epochs: 1, batch, eval_batch: batch, ..TrainConfig::default() };
    let data = synthetic_dataset(batch, 0);
    let trainer = GpuTrainer::with_kernels(ctx, spec, config, kernels, &data, &data)?;
    Ok(trainer.train_step_plan())
}

/// FLOPs of one training step at batch `rows`: each Dense layer is a `rows × inputs × units`
/// matrix product (2·rows·inputs·units FLOPs) and each Conv2D one of `rows·out_h·out_w` positions
/// × `k·k·channels` × `filters`; a step does three of each (forward, gradient to the input,
/// gradient to the weights; the first layer's gradient to the images is counted although
/// nothing computes it, as the usual 3× convention does). Elementwise work is not counted.
pub fn flops_per_step(spec: &ModelSpec, rows: usize) -> f64 {
    let layout = spec.param_layout();
    let dense: usize = layout.dense.iter().map(|d| rows * d.inputs * d.units).sum();
    let conv: usize = layout
        .conv
        .iter()
        .map(|c| rows * c.out_height() * c.out_width() * c.kernel_size * c.kernel_size * c.channels * c.filters)
        .sum();
    3.0 * 2.0 * (dense + conv) as f64
}

/// `len` random 28×28 images with random labels: throughput does not depend on the pixels.
pub fn synthetic_dataset(len: usize, seed: u64) -> Dataset {
    let mut rng = SplitMix64::new(seed);
    let images = (0..len * PIXELS_PER_IMAGE).map(|_| rng.next_u32() as u8).collect();
    let labels = (0..len).map(|_| (rng.next_u32() % NUM_CLASSES as u32) as u8).collect();
    Dataset::new(images, labels).expect("synthetic images and labels have matching sizes")
}

/// Runs the benchmark: autotune (when asked), one warm-up epoch of `steps` steps (pipelines are
/// compiled on first use on some implementations), one timed epoch, then the same number of
/// steps again with each phase between timestamps.
pub async fn run(ctx: Arc<GpuContext>, spec: &ModelSpec, options: &BenchOptions) -> Result<BenchReport, TrainError> {
    let config = bench_config(options)?;
    let tuning = if options.autotune { Some(autotune::autotune(&ctx, spec, options.batch).await?) } else { None };
    let kernels = match (&tuning, options.kernels) {
        (Some(tuning), _) => tuning.choice,
        (None, set) => set.choice(&ctx.adapter),
    };
    let train = synthetic_dataset(options.steps * options.batch, options.seed);
    let test = synthetic_dataset(options.batch, options.seed + 1);
    let mut trainer = GpuTrainer::with_kernels(ctx.clone(), spec, config, kernels, &train, &test)?;
    trainer.run_epoch(|_| {}).await?;
    let timed = trainer.run_epoch(|_| {}).await?;
    let dispatches = trainer.time_train_dispatches(options.steps).await?;
    Ok(BenchReport {
        model: spec.name.clone(),
        adapter: ctx.adapter.to_string(),
        options: options.clone(),
        seconds: timed.seconds,
        dispatches_per_step: trainer.dispatches_per_step(),
        flops_per_step: flops_per_step(spec, options.batch),
        dispatches,
        kernels: BenchKernels::Gpu(kernels),
        tuning,
    })
}

/// The benchmark on the CPU backend with `kernels`: one warm-up epoch of `steps` steps, one
/// timed epoch (`steps_per_submit` only sets how often the trainer checks the loss, as on the GPU).
pub async fn run_cpu(spec: &ModelSpec, options: &BenchOptions, kernels: CpuKernels) -> Result<BenchReport, TrainError> {
    let config = bench_config(options)?;
    let train = synthetic_dataset(options.steps * options.batch, options.seed);
    let test = synthetic_dataset(options.batch, options.seed + 1);
    let mut trainer = CpuTrainer::with_kernels(spec, config, kernels, &train, &test)?;
    trainer.run_epoch(|_| {}).await?;
    let timed = trainer.run_epoch(|_| {}).await?;
    let threads = kernels::threads();
    Ok(BenchReport {
        model: spec.name.clone(),
        adapter: kernels.describe(),
        options: BenchOptions { autotune: false, ..options.clone() },
        seconds: timed.seconds,
        dispatches_per_step: 0,
        flops_per_step: flops_per_step(spec, options.batch),
        dispatches: None,
        kernels: BenchKernels::Cpu { kernels, threads },
        tuning: None,
    })
}

/// The one-epoch recipe a benchmark trains with.
fn bench_config(options: &BenchOptions) -> Result<TrainConfig, TrainError> {
    if options.steps == 0 {
        return Err(TrainError::Config("the benchmark needs at least 1 step".into()));
    }
    let config = TrainConfig {
        epochs: 1,
        batch: options.batch,
        seed: options.seed,
        steps_per_submit: options.steps_per_submit,
        eval_batch: options.batch,
        ..TrainConfig::default()
    };
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_flops_follow_the_layer_sizes() {
        let spec = ModelSpec::preset("baseline").unwrap();
        let per_sample_macs = 784 * 256 + 256 * 128 + 128 * 10;
        assert_eq!(flops_per_step(&spec, 100), (3 * 2 * 100 * per_sample_macs) as f64);
    }

    #[test]
    fn report_figures() {
        let report = BenchReport {
            model: "baseline".into(),
            adapter: "test".into(),
            options: BenchOptions { steps: 20, steps_per_submit: 8, ..BenchOptions::default() },
            seconds: 0.5,
            dispatches_per_step: 11,
            flops_per_step: 1e8,
            dispatches: None,
            kernels: BenchKernels::Gpu(KernelChoice::default()),
            tuning: None,
        };
        assert!((report.samples_per_second() - 4000.0).abs() < 1e-6);
        assert!((report.epoch_seconds() - 15.0).abs() < 1e-9);
        assert!((report.submits_per_step() - 3.0 / 20.0).abs() < 1e-12);
        assert!((report.gflops() - 4.0).abs() < 1e-9);
        assert_eq!(report.phase_ms(), None);
    }

    /// The CPU benchmark trains for real and fills the GPU benchmark's report.
    #[test]
    fn the_cpu_benchmark_measures_a_real_epoch() {
        let spec = ModelSpec::preset("baseline").unwrap();
        let options = BenchOptions { steps: 3, batch: 20, ..BenchOptions::default() };
        let report = pollster::block_on(run_cpu(&spec, &options, CpuKernels::Fast)).unwrap();
        assert!(report.seconds > 0.0 && report.samples_per_second() > 0.0);
        assert_eq!(report.kernels.backend(), Backend::Cpu);
        assert_eq!(report.kernels.entries()[0], ("cpu".to_string(), "fast".to_string()));
        assert_eq!(report.submits_per_step(), 0.0);
        let zero = BenchOptions { steps: 0, ..options };
        assert!(pollster::block_on(run_cpu(&spec, &zero, CpuKernels::Fast)).is_err());
    }

    #[test]
    fn synthetic_data_is_valid_and_reproducible() {
        let data = synthetic_dataset(3, 7);
        assert_eq!(data.len(), 3);
        assert_eq!(data, synthetic_dataset(3, 7));
    }
}
