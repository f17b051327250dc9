//! `fashion-gpu bench`: training throughput on this machine's GPU (the core's benchmark, on
//! synthetic data): the adapter, epoch seconds, samples/s, dispatches and submits per step,
//! GFLOP/s, and where timestamp queries exist the forward/backward/optimizer split.

use std::sync::Arc;

use clap::Args;
use fashion_core::bench::{self, BenchOptions};
use fashion_core::GpuContext;

use crate::args::ModelArgs;

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Timed training steps (a warm-up of as many runs first).
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Training steps per submitted command buffer.
    #[arg(long, default_value_t = 50)]
    steps_per_submit: usize,
    /// Use the default kernels instead of timing every variant first.
    #[arg(long)]
    no_autotune: bool,
    /// Print one JSON line instead of the summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let spec = args.model.spec()?;
    let options = BenchOptions {
        batch: args.batch,
        steps: args.steps,
        steps_per_submit: args.steps_per_submit,
        autotune: !args.no_autotune,
        ..BenchOptions::default()
    };
    let ctx = Arc::new(pollster::block_on(GpuContext::new())?);
    let report = pollster::block_on(bench::run(ctx, &spec, &options))?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.summary());
    }
    Ok(())
}
