//! `fashion-gpu bench`: training throughput on this machine's GPU (the core's benchmark, on
//! synthetic data): the adapter, epoch seconds, samples/s, dispatches and submits per step,
//! GFLOP/s, and where timestamp queries exist the forward/backward/optimizer split; or, with
//! `--plan`, the dispatches of one training step without running them. `--backend cpu`
//! benchmarks the fast CPU kernels with the same figures (no dispatches or submits).

use clap::Args;
use fashion_core::bench::{self, BenchOptions};
use fashion_core::gpu::ops::KernelSet;
use fashion_core::CpuKernels;
use fashion_report::bench_report;

use crate::args::{BackendArgs, Device, ModelArgs};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Timed training steps (a warm-up of as many runs first).
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Training steps per submitted command buffer.
    #[arg(long, default_value_t = 50)]
    steps_per_submit: usize,
    /// Use the adapter's kernel set instead of timing every variant first.
    #[arg(long)]
    no_autotune: bool,
    /// Train with this kernel set, untuned: gpu (tiled products, per-row softmax, split
    /// reductions), emulator (vec4: for lavapipe and SwiftShader), auto (emulator on a CPU
    /// adapter, gpu elsewhere). With --plan: the set to list (default auto).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(KernelSet::NAMES))]
    kernels: Option<String>,
    /// List the dispatches of one training step (kernel, workgroups, invocations, the most loop
    /// trips of one invocation, FLOPs) instead of running the benchmark.
    #[arg(long)]
    plan: bool,
    /// Print one JSON line instead of the summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let spec = args.model.spec()?;
    let kernels = args.kernels.as_deref().and_then(KernelSet::parse);
    let options = BenchOptions {
        batch: args.batch,
        steps: args.steps,
        steps_per_submit: args.steps_per_submit,
        autotune: !args.no_autotune && kernels.is_none(),
        kernels: kernels.unwrap_or(KernelSet::Auto),
        ..BenchOptions::default()
    };
    let ctx = match args.backend.device()? {
        Device::Gpu(ctx) => ctx,
        Device::Cpu if args.plan => anyhow::bail!("--plan lists GPU dispatches: it needs --backend gpu"),
        Device::Cpu => {
            let report = pollster::block_on(bench::run_cpu(&spec, &options, CpuKernels::Fast))?;
            print_report(&report, args.json);
            return Ok(());
        }
    };
    if args.plan {
        let choice = options.kernels.choice(&ctx.adapter);
        let plan = bench::plan(ctx.clone(), &spec, args.batch, choice)?;
        if args.json {
            println!("{}", bench_report::plan_json(&plan));
        } else {
            println!("Adapter: {}\nModel {}, batch {}: one training step\n", ctx.adapter, spec.name, args.batch);
            print!("{}", bench_report::plan_table(&plan));
        }
        return Ok(());
    }
    let report = pollster::block_on(bench::run(ctx, &spec, &options))?;
    print_report(&report, args.json);
    Ok(())
}

fn print_report(report: &bench::BenchReport, json: bool) {
    if json {
        println!("{}", bench_report::to_json(report));
    } else {
        println!("{}", bench_report::summary(report));
    }
}
