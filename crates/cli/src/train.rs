//! `fashion-gpu train`: the study's loop, printing its epoch lines.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use fashion_core::weights::to_safetensors;
use fashion_report::history::epoch_json;

use crate::args::{BackendArgs, DataArgs, KernelArgs, ModelArgs, RecipeArgs};
use crate::eval::read_model;
use crate::export::{format_of, write_export};
use crate::progress::ProgressBar;

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    recipe: RecipeArgs,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    kernels: KernelArgs,
    /// Append one JSON object per epoch to this file.
    #[arg(long)]
    log_json: Option<PathBuf>,
    /// Save the trained weights to this .safetensors file (`fashion-gpu eval --weights` reads it).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Also write the trained model as a file Keras, ONNX Runtime or TF.js loads, the format
    /// chosen by the extension: .keras, .onnx, or .zip / a model.json (TF.js).
    #[arg(long)]
    export: Option<PathBuf>,
    /// Start from this model and its weights instead of a fresh one: a Keras 3 .keras file (its
    /// own layers), or a .safetensors file of --model.
    #[arg(long)]
    init: Option<PathBuf>,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    // The files are checked before the slow part (data, GPU).
    let (spec, init) = match &args.init {
        Some(path) => {
            let (spec, params) = read_model(path, &args.model)?;
            eprintln!("Starting from {} (model: {})", path.display(), spec.name);
            (spec, Some(params))
        }
        None => (args.model.spec()?, None),
    };
    let export = args.export.as_ref().map(|path| format_of(path).map(|format| (path, format))).transpose()?;
    let config = args.recipe.config()?;
    let (train, test) = args.data.load()?;
    let mut log = match &args.log_json {
        Some(path) => {
            Some(File::create(path).with_context(|| format!("cannot create the log file {}", path.display()))?)
        }
        None => None,
    };
    // Created now, so an unwritable path fails before the training, not after it.
    let mut save = match &args.save {
        Some(path) => Some((
            path,
            File::create(path).with_context(|| format!("cannot create the weights file {}", path.display()))?,
        )),
        None => None,
    };

    let device = args.backend.device()?;
    eprintln!(
        "Data: {} ({} train, {} test samples); model: {} ({} params)",
        args.data.source.dataset,
        train.len(),
        test.len(),
        spec.name,
        spec.total_params()
    );
    let metrics = config.metrics;
    eprintln!("Figures: {}", metrics.describe());
    let mut trainer = device.trainer(&spec, config, Some(&args.kernels), &train, &test)?;
    if let Some(params) = &init {
        trainer.set_params(params)?;
    }

    println!("Learning started. It takes sometime.");
    let bar = ProgressBar::new();
    for _ in 0..args.recipe.epochs {
        let stats = pollster::block_on(trainer.run_epoch(|p| bar.update(p)))?;
        bar.clear();
        println!("{}", stats.study_line());
        eprintln!("  {:.2} s training, {:.0} samples/s", stats.seconds, stats.samples_per_second());
        if let Some(log) = log.as_mut() {
            writeln!(log, "{}", epoch_json(&stats, metrics)).context("cannot write the log file")?;
        }
    }
    println!("Learning Finished!");
    if save.is_none() && export.is_none() {
        return Ok(());
    }
    let params = pollster::block_on(trainer.params())?;
    if let Some((path, file)) = save.as_mut() {
        file.write_all(&to_safetensors(&spec, &params))
            .with_context(|| format!("cannot write the weights file {}", path.display()))?;
        eprintln!("Weights saved to {}", path.display());
    }
    if let Some((path, format)) = export {
        write_export(path, format, &spec, &params)?;
    }
    Ok(())
}
