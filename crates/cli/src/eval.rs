//! `fashion-gpu eval`: loads weights saved by `train --save` (or the page), or a Keras `.keras`
//! model, and prints the test accuracy the trainer's evaluation gives them, without training.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fashion_core::train::limit;
use fashion_core::weights::from_safetensors;
use fashion_core::{ModelSpec, TrainConfig};

use crate::args::{BackendArgs, DatasetArgs, ModelArgs};

#[derive(Args)]
pub struct EvalArgs {
    /// A .safetensors file written by `fashion-gpu train --save` or the page, or a Keras 3
    /// .keras model (which names its own layers).
    #[arg(long)]
    weights: PathBuf,
    /// The model a .safetensors file was saved from.
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

/// The model and weights in `path`: a `.keras` file's own model, or `model`'s for a
/// `.safetensors` file. The error is one line naming the file.
pub fn read_model(path: &Path, model: &ModelArgs) -> anyhow::Result<(ModelSpec, Vec<f32>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the weights file {}", path.display()))?;
    let named = |error: &dyn std::fmt::Display| anyhow::anyhow!("{}: {error}", path.display());
    if fashion_interop::looks_like_keras(&bytes) {
        return fashion_interop::import_keras(&bytes).map_err(|error| named(&error));
    }
    let spec = model.spec()?;
    let params = from_safetensors(&spec, &bytes).map_err(|error| named(&error))?;
    Ok((spec, params))
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    // The file is checked before the slow part (data, GPU).
    let (spec, params) = read_model(&args.weights, &args.model)?;
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
