//! `fashion-gpu`: the native harness. Every command calls the core; nothing here trains.

mod args;
mod bench;
mod compare;
mod eval;
mod export;
mod history;
mod progress;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "fashion-gpu",
    version,
    about = "Train the Fashion-MNIST MLP study on the GPU (WGSL kernels through wgpu)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a Keras-style summary of a model.
    Summary(args::ModelArgs),
    /// Train a model and print the study's epoch lines.
    Train(train::TrainArgs),
    /// Train several models and compare them: a table, the history as CSV/JSON, a PNG chart.
    Compare(compare::CompareArgs),
    /// Print the test accuracy of saved weights (from `train --save` or the page).
    Eval(eval::EvalArgs),
    /// Write saved weights as a file Keras, ONNX Runtime or TF.js loads.
    Export(export::ExportArgs),
    /// Measure training throughput on synthetic data (--json: one JSON line).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Summary(model) => model.spec().map(|spec| println!("{}", spec.summary())),
        Command::Train(args) => train::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
