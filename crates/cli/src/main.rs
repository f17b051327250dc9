//! `fashion-gpu`: the native harness. Every command calls the core; nothing here trains.

mod progress;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fashion_core::ModelSpec;

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
    Summary {
        /// Model preset.
        #[arg(long, default_value = "baseline")]
        model: String,
    },
    /// Train a model and print the study's epoch lines.
    Train(train::TrainArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Summary { model } => {
            ModelSpec::preset(&model).map(|spec| println!("{}", spec.summary())).map_err(anyhow::Error::from)
        }
        Command::Train(args) => train::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
