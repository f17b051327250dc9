//! `fashion-gpu eval`: loads weights saved by `train --save` (or the page) and prints the test
//! accuracy the GPU trainer's evaluation gives them, without training.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fashion_core::frontend::limit;
use fashion_core::weights::from_safetensors;
use fashion_core::TrainConfig;

use crate::args::{BackendArgs, DatasetArgs, ModelArgs};

#[derive(Args)]
pub struct EvalArgs {
    /// A .safetensors file written by `fashion-gpu train --save` or the page.
    #[arg(long)]
    weights: PathBuf,
    /// The model the weights were saved from.
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DatasetArgs,
    #[command(flatten)]
    backend: BackendArgs,
    /// Evaluate on the first N test samples only.
    #[arg(long)]
    test_limit: Option<usize>,
}

/// The weights in `path` for `spec`; the error is one line naming the file.
fn read_weights(path: &Path, spec: &fashion_core::ModelSpec) -> anyhow::Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the weights file {}", path.display()))?;
    from_safetensors(spec, &bytes).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let spec = args.model.spec()?;
    // The file is checked before the slow part (data, GPU).
    let params = read_weights(&args.weights, &spec)?;
    let test = limit(&args.data.load()?.test, args.test_limit);

    let device = args.backend.device()?;
    eprintln!("Data: {} ({} test samples); model: {}", args.data.dataset, test.len(), spec.name);
    // The trainer needs a training set; nothing is trained, so one test image stands in for it.
    let mut trainer = device.trainer(&spec, TrainConfig::default(), None, &test.take(1), &test)?;
    trainer.set_params(&params)?;
    let evaluation = pollster::block_on(trainer.evaluate())?;
    eprintln!("test loss = {:.8}", evaluation.loss);
    println!("test accuracy = {:.4}", evaluation.accuracy);
    Ok(())
}
