//! `fashion-gpu compare`: trains each model (for each seed) with the same recipe and data, then
//! prints one table, writes the per-epoch history as CSV and JSON, and draws the test-accuracy
//! and loss curves of every model on shared axes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use fashion_core::frontend::epoch_json;
use fashion_core::gpu::ops::KernelChoice;
use fashion_core::model::study_test_accuracy;
use fashion_core::train::RunIdentity;
use fashion_core::{EpochStats, GpuContext, GpuTrainer, ModelSpec};
use plotters::prelude::*;

use crate::args::{DataArgs, KernelArgs, RecipeArgs};
use crate::history::{csv_text, read_csv, read_state, state_path, write_atomically, RunHistory};

#[derive(Args)]
pub struct CompareArgs {
    /// Comma-separated presets to compare.
    #[arg(long, default_value = "baseline,deep,dropout,l2,batchnorm,lr-decay", value_delimiter = ',')]
    models: Vec<String>,
    /// Train each model with seeds 1..=N and average the figures.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    #[command(flatten)]
    recipe: RecipeArgs,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    kernels: KernelArgs,
    /// Where history.csv, history.json and chart.png go (history.csv is rewritten after every
    /// epoch, and each run's state after its last epoch kept in states/ beside it).
    #[arg(long, default_value = "compare")]
    out: PathBuf,
    /// Go on from what an earlier compare with the same --out left: runs its history.csv holds
    /// in full are kept, an unfinished one continues after its last saved epoch (a stopped run
    /// loses at most the epoch it was in), the rest train. More --epochs or --seeds extend it.
    #[arg(long)]
    resume: bool,
}

/// One model's runs: per seed, its epochs.
struct Runs {
    model: String,
    params: usize,
    /// The kernels it trained with (kernels sum in different orders: a history is the choice's).
    kernels: String,
    seeds: Vec<(u64, Vec<EpochStats>)>,
}

impl Runs {
    /// Mean over seeds of `figure` at each epoch.
    fn mean_curve(&self, figure: impl Fn(&EpochStats) -> f32) -> Vec<f32> {
        let epochs = self.seeds.iter().map(|(_, h)| h.len()).min().unwrap_or(0);
        (0..epochs)
            .map(|e| self.seeds.iter().map(|(_, h)| figure(&h[e])).sum::<f32>() / self.seeds.len() as f32)
            .collect()
    }
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.models.is_empty(), "--models: name at least one model");
    anyhow::ensure!(args.seeds >= 1, "--seeds must be at least 1");
    // Check every model and setting before any training starts.
    let specs = args.models.iter().map(|name| ModelSpec::preset(name.trim())).collect::<Result<Vec<_>, _>>()?;
    args.recipe.config()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let (train, test) = args.data.load()?;
    let ctx = Arc::new(pollster::block_on(GpuContext::new())?);
    eprintln!("Adapter: {}", ctx.adapter);
    eprintln!("Data: {} ({} train, {} test samples)", args.data.source.dataset, train.len(), test.len());

    let csv = args.out.join("history.csv");
    let mut earlier = if args.resume && csv.exists() { read_csv(&csv, train.len())? } else { Vec::new() };
    if !earlier.is_empty() {
        eprintln!("Resuming: {} runs in {}", earlier.len(), csv.display());
    }
    let epochs = args.recipe.epochs;
    // Every run's epochs in training order; the earlier file's runs not reached yet stay in it.
    let mut finished: Vec<RunHistory> = Vec::new();
    let mut all = Vec::new();
    for spec in &specs {
        let kernels = args.kernels.choice(&ctx, spec, args.recipe.config()?.batch)?;
        let mut runs = Runs {
            model: spec.name.clone(),
            params: spec.total_params(),
            kernels: kernels.to_string(),
            seeds: Vec::new(),
        };
        for seed in 1..=args.seeds {
            let config = args.recipe.config_with_seed(seed)?;
            let mut current = match earlier.iter().position(|r| r.model == spec.name && r.seed == seed) {
                Some(at) => earlier.remove(at),
                None => RunHistory { model: spec.name.clone(), seed, epochs: Vec::new() },
            };
            let state_file = state_path(&args.out, &spec.name, seed);
            if current.epochs.len() >= epochs {
                current.epochs.truncate(epochs);
                eprintln!("{:<10} seed {seed}  kept from {} ({epochs} epochs)", spec.name, csv.display());
            } else {
                // A resumed run keeps the kernels it started with (they sum in their own order).
                let state = if current.epochs.is_empty() { None } else { read_state(&state_file)? };
                let started_with = state.as_ref().and_then(|s| KernelChoice::from_description(&s.run.kernels));
                let kernels = started_with.unwrap_or(kernels);
                if seed == 1 {
                    runs.kernels = kernels.to_string();
                }
                let run =
                    RunIdentity { model: spec.name.clone(), seed, batch: config.batch, kernels: kernels.to_string() };
                let mut trainer = GpuTrainer::with_kernels(ctx.clone(), spec, config, kernels, &train, &test)?;
                if !current.epochs.is_empty() {
                    match state {
                        Some(state) if state.epoch <= current.epochs.len() => {
                            trainer.restore(&state, &run).with_context(|| format!("{}", state_file.display()))?;
                            current.epochs.truncate(state.epoch);
                            eprintln!("{:<10} seed {seed}  resumed after epoch {}", spec.name, state.epoch);
                        }
                        found => {
                            let why =
                                found.map_or("no saved state".to_string(), |s| format!("a state of epoch {}", s.epoch));
                            eprintln!(
                                "{:<10} seed {seed}  starts again: {why} for its {} epochs",
                                spec.name,
                                current.epochs.len()
                            );
                            current.epochs.clear();
                        }
                    }
                }
                while current.epochs.len() < epochs {
                    let stats = pollster::block_on(trainer.run_epoch(|_| {}))?;
                    eprintln!("{:<10} seed {seed}  {}  ({:.1} s)", spec.name, stats.study_line(), stats.seconds);
                    current.epochs.push(stats);
                    // The row first, then the state: a stop between them re-runs one epoch. The
                    // last epoch's state stays too: a later --resume with more --epochs goes on.
                    write_atomically(&csv, csv_text(finished.iter().chain([&current]).chain(&earlier)).as_bytes())?;
                    std::fs::create_dir_all(state_file.parent().unwrap_or(&args.out))?;
                    let state = pollster::block_on(trainer.state(run.clone()))?;
                    write_atomically(&state_file, &state.to_bytes())?;
                }
            }
            runs.seeds.push((seed, current.epochs.clone()));
            finished.push(current);
        }
        all.push(runs);
    }
    write_atomically(&csv, csv_text(finished.iter().chain(&earlier)).as_bytes())?;

    print!("{}", table(&all, args.recipe.epochs));
    let json = args.out.join("history.json");
    std::fs::write(&json, history_json(&all, &ctx.adapter.to_string()))
        .with_context(|| format!("cannot write {}", json.display()))?;
    let png = args.out.join("chart.png");
    draw_chart(&all, &png).with_context(|| format!("cannot draw {}", png.display()))?;
    println!("History: {} and {}; chart: {}", csv.display(), json.display(), png.display());
    Ok(())
}

/// Mean and (sample) standard deviation.
fn mean_sd(values: &[f32]) -> (f32, f32) {
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

fn table(all: &[Runs], epochs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>10} {:>10} {:>16} {:>16} {:>9} {:>12}",
        "model", "params", "loss", "train acc", "test acc", "best test (ep)", "seconds", "study@30ep"
    );
    for runs in all {
        let last = |f: fn(&EpochStats) -> f32| -> Vec<f32> {
            runs.seeds.iter().filter_map(|(_, h)| h.last().map(f)).collect()
        };
        let (loss, _) = mean_sd(&last(|s| s.loss));
        let (train, _) = mean_sd(&last(|s| s.train_accuracy));
        let (test, test_sd) = mean_sd(&last(|s| s.test_accuracy));
        let curve = runs.mean_curve(|s| s.test_accuracy);
        let (best_epoch, best) =
            curve.iter().enumerate().fold((0, 0.0f32), |acc, (e, &v)| if v > acc.1 { (e + 1, v) } else { acc });
        let seconds: f64 =
            runs.seeds.iter().flat_map(|(_, h)| h.iter().map(|s| s.seconds)).sum::<f64>() / runs.seeds.len() as f64;
        let test_text = if runs.seeds.len() > 1 { format!("{test:.4}±{test_sd:.4}") } else { format!("{test:.4}") };
        let study = study_test_accuracy(&runs.model).map_or("-".to_string(), |a| format!("{a:.4}"));
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>10.4} {:>10.4} {:>16} {:>10.4} ({:>2}) {:>9.1} {:>12}",
            runs.model, runs.params, loss, train, test_text, best, best_epoch, seconds, study
        );
    }
    let _ = writeln!(out, "(figures after {epochs} epochs; the study's column is after 30)");
    out
}

/// Per model its runs' epochs, with the adapter and kernels they trained on.
fn history_json(all: &[Runs], adapter: &str) -> String {
    let models: Vec<_> = all
        .iter()
        .map(|runs| {
            let seeds: Vec<_> = runs
                .seeds
                .iter()
                .map(|(seed, history)| {
                    let epochs: Vec<_> = history.iter().map(epoch_json).collect();
                    serde_json::json!({ "seed": seed, "epochs": epochs })
                })
                .collect();
            serde_json::json!({
                "model": runs.model,
                "params": runs.params,
                "adapter": adapter,
                "kernels": runs.kernels,
                "seeds": seeds,
            })
        })
        .collect();
    serde_json::to_string_pretty(&models).unwrap_or_default()
}

/// Plotters draws text with a TrueType font it is given; Debian's fonts-dejavu-core has one.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn register_font() -> anyhow::Result<()> {
    let path = FONT_PATHS.iter().find(|p| Path::new(p).exists()).with_context(|| {
        format!(
            "the chart needs a TrueType font (apt-get install fonts-dejavu-core); looked in {}",
            FONT_PATHS.join(", ")
        )
    })?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{path} is not a usable TrueType font"))?;
    Ok(())
}

/// Ten colours that stay apart from each other (Tableau's).
const LINE_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Two panels on shared epoch axes: test accuracy and training loss, one line per model.
fn draw_chart(all: &[Runs], path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    let epochs = all.iter().map(|r| r.mean_curve(|s| s.loss).len()).max().unwrap_or(1).max(2);
    let accuracy: Vec<Vec<f32>> = all.iter().map(|r| r.mean_curve(|s| s.test_accuracy)).collect();
    let loss: Vec<Vec<f32>> = all.iter().map(|r| r.mean_curve(|s| s.loss)).collect();
    let bounds = |curves: &[Vec<f32>]| {
        let (lo, hi) = curves.iter().flatten().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let pad = ((hi - lo) * 0.05).max(1e-3);
        (lo - pad, hi + pad)
    };
    let panels = [
        (&left, "Test accuracy", &accuracy, SeriesLabelPosition::LowerRight),
        (&right, "Training loss (with the L2 penalty where there is one)", &loss, SeriesLabelPosition::UpperRight),
    ];
    for (area, title, curves, legend) in panels {
        let (lo, hi) = bounds(curves);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1i32..epochs as i32, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(epochs.min(16))
            .x_label_formatter(&|e| e.to_string())
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, (runs, curve)) in all.iter().zip(curves.iter()).enumerate() {
            let color = LINE_COLORS[i % LINE_COLORS.len()].to_rgba();
            let points = curve.iter().enumerate().map(|(e, &v)| ((e + 1) as i32, v));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(runs.model.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(legend)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
