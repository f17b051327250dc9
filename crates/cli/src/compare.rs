//! `fashion-gpu compare`: trains each model (for each seed) with the same recipe and data, one
//! run after the other or (`--interleave`) a seed's models together on one GPU context (the
//! core's [`Study`] drives them, as it drives the page's study mode), then prints one table, writes the per-epoch history as CSV and JSON, and draws the test-accuracy
//! and loss curves of every model on shared axes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fashion_core::gpu::ops::KernelChoice;
use fashion_core::study::{study_specs, ModelSummary, Study};
use fashion_core::train::{RunIdentity, TrainerState};
use fashion_core::trainer::kernels_name;
use fashion_core::{TrainConfig, Trainer};
use fashion_report::history::{history_csv, study_json};
use fashion_report::palette::SERIES_COLORS;
use plotters::prelude::*;

use crate::args::{BackendArgs, DataArgs, Device, KernelArgs, RecipeArgs};
use crate::history::{read_csv, read_state, state_path, write_atomically};

#[derive(Args)]
pub struct CompareArgs {
    /// Comma-separated presets to compare.
    #[arg(long, default_value = "baseline,deep,dropout,l2,batchnorm,lr-decay", value_delimiter = ',')]
    models: Vec<String>,
    /// Train each model with N seeds from --seed on (1..=N by default) and average the figures;
    /// runs of other seeds (`--seed 2 --seeds 1` in another --out, in parallel) join with
    /// --resume once their history.csv lines are put together.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    #[command(flatten)]
    recipe: RecipeArgs,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    backend: BackendArgs,
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
    /// Train a seed's models together, interleaved chunk by chunk on the one GPU context (as the
    /// page's study mode does); each epoch's seconds then include the other models' chunks.
    #[arg(long)]
    interleave: bool,
}

/// A run that trains in this compare: how its trainer is built and where its state goes.
struct ToTrain {
    run: usize,
    spec: usize,
    config: TrainConfig,
    /// The GPU kernels (none on the CPU).
    kernels: Option<KernelChoice>,
    identity: RunIdentity,
    /// The saved state it goes on from, when it resumes.
    resume_from: Option<TrainerState>,
    state_file: PathBuf,
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.seeds >= 1, "--seeds must be at least 1");
    // Check every model and setting before any training starts.
    let specs = study_specs(&args.models, None, None).context("--models")?;
    args.recipe.config()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let (train, test) = args.data.load()?;
    let device = args.backend.device()?;
    eprintln!("Data: {} ({} train, {} test samples)", args.data.source.dataset, train.len(), test.len());
    eprintln!("Figures: {}", args.recipe.metrics.describe());

    let csv = args.out.join("history.csv");
    let mut earlier = if args.resume && csv.exists() { read_csv(&csv, train.len())? } else { Vec::new() };
    if !earlier.is_empty() {
        eprintln!("Resuming: {} runs in {}", earlier.len(), csv.display());
    }
    let epochs = args.recipe.epochs;
    let first_seed = args.recipe.seed;
    let seeds = first_seed..first_seed.checked_add(args.seeds).context("--seed + --seeds is too large")?;
    // Every run in the study, model by model; the earlier file's runs not in it stay in the file.
    let mut study = Study::new(epochs);
    let mut to_train = Vec::new();
    for (spec_index, spec) in specs.iter().enumerate() {
        let kernels = match &device {
            Device::Gpu(ctx) => Some(args.kernels.choice(ctx, spec, args.recipe.config()?.batch)?),
            Device::Cpu => None,
        };
        for seed in seeds.clone() {
            let config = args.recipe.config_with_seed(seed)?;
            let mut done = match earlier.iter().position(|r| r.model == spec.name && r.seed == seed) {
                Some(at) => earlier.remove(at).epochs,
                None => Vec::new(),
            };
            if done.len() >= epochs {
                eprintln!("{:<10} seed {seed}  kept from {} ({epochs} epochs)", spec.name, csv.display());
                study.add_run(spec, seed, kernels_name(kernels), done);
                continue;
            }
            // A resumed run keeps the kernels it started with (they sum in their own order).
            let state_file = state_path(&args.out, &spec.name, seed);
            let state = if done.is_empty() { None } else { read_state(&state_file)? };
            let started_with = state.as_ref().and_then(|s| KernelChoice::from_description(&s.run.kernels));
            let kernels = kernels.map(|chosen| started_with.unwrap_or(chosen));
            let resume_from = match state {
                Some(state) if !done.is_empty() && state.epoch <= done.len() => {
                    done.truncate(state.epoch);
                    Some(state)
                }
                found => {
                    if !done.is_empty() {
                        let why =
                            found.map_or("no saved state".to_string(), |s| format!("a state of epoch {}", s.epoch));
                        eprintln!("{:<10} seed {seed}  starts again: {why} for its {} epochs", spec.name, done.len());
                        done.clear();
                    }
                    None
                }
            };
            let identity = RunIdentity {
                model: spec.name.clone(),
                seed,
                batch: config.batch,
                kernels: kernels_name(kernels),
                metrics: config.metrics.as_str().to_string(),
            };
            let run = study.add_run(spec, seed, kernels_name(kernels), done);
            to_train.push(ToTrain { run, spec: spec_index, config, kernels, identity, resume_from, state_file });
        }
    }

    // One run at a time (each epoch's seconds are its own), or with --interleave a seed's
    // models together, chunk by chunk on the one GPU context, as the page's study mode runs them.
    let groups: Vec<Vec<&ToTrain>> = if args.interleave {
        seeds.map(|seed| to_train.iter().filter(|job| job.identity.seed == seed).collect()).collect()
    } else {
        to_train.iter().map(|job| vec![job]).collect()
    };
    for group in groups {
        let mut trainers: Vec<Option<Trainer>> = study.runs().iter().map(|_| None).collect();
        for job in &group {
            let (spec, seed) = (&specs[job.spec], job.identity.seed);
            let mut trainer = device.trainer_with_kernels(spec, job.config.clone(), job.kernels, &train, &test)?;
            if let Some(state) = &job.resume_from {
                trainer.restore(state, &job.identity).with_context(|| format!("{}", job.state_file.display()))?;
                eprintln!("{:<10} seed {seed}  resumed after epoch {}", spec.name, state.epoch);
            }
            trainers[job.run] = Some(trainer);
        }
        while trainers.iter().enumerate().any(|(run, t)| t.is_some() && study.needs_epoch(run)) {
            let trained = pollster::block_on(study.train_round(&mut trainers, |_, _| {}))?;
            // The rows first, then the states: a stop between them re-runs one epoch. The last
            // epoch's state stays too: a later --resume with more --epochs goes on.
            let histories = study.runs().iter().map(|r| &r.history).chain(&earlier);
            write_atomically(&csv, history_csv(histories).as_bytes())?;
            for run in trained {
                let history = &study.runs()[run].history;
                let stats = history.epochs.last().expect("a trained run has an epoch");
                let seed = history.seed;
                eprintln!("{:<10} seed {seed}  {}  ({:.1} s)", history.model, stats.study_line(), stats.seconds);
                let job = group.iter().find(|job| job.run == run).expect("a trained run is in its group");
                if let Some(trainer) = &trainers[run] {
                    std::fs::create_dir_all(job.state_file.parent().unwrap_or(&args.out))?;
                    let state = pollster::block_on(trainer.state(job.identity.clone()))?;
                    write_atomically(&job.state_file, &state.to_bytes())?;
                }
            }
        }
    }
    write_atomically(&csv, history_csv(study.runs().iter().map(|r| &r.history).chain(&earlier)).as_bytes())?;

    let summaries = study.summaries();
    print!("{}", table(&summaries, args.recipe.epochs));
    let json = args.out.join("history.json");
    std::fs::write(&json, study_json(&study, &device.describe(), args.recipe.metrics))
        .with_context(|| format!("cannot write {}", json.display()))?;
    let png = args.out.join("chart.png");
    draw_chart(&summaries, &png).with_context(|| format!("cannot draw {}", png.display()))?;
    println!("History: {} and {}; chart: {}", csv.display(), json.display(), png.display());
    Ok(())
}

fn table(summaries: &[ModelSummary], epochs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>10} {:>10} {:>16} {:>16} {:>9} {:>12}",
        "model", "params", "loss", "train acc", "test acc", "best test (ep)", "seconds", "study@30ep"
    );
    for s in summaries {
        let test_text = if s.seeds > 1 {
            format!("{:.4}±{:.4}", s.test_accuracy, s.test_accuracy_sd)
        } else {
            format!("{:.4}", s.test_accuracy)
        };
        let study = s.study.map_or("-".to_string(), |a| format!("{a:.4}"));
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>10.4} {:>10.4} {:>16} {:>10.4} ({:>2}) {:>9.1} {:>12}",
            s.model,
            s.params,
            s.loss,
            s.train_accuracy,
            test_text,
            s.best_test_accuracy,
            s.best_epoch,
            s.seconds,
            study
        );
    }
    for s in summaries {
        if let Some(note) = s.study_note {
            let _ = writeln!(out, "{}: the study's figure — {note}", s.model);
        }
    }
    let _ = writeln!(out, "(figures after {epochs} epochs; the study's column is after 30)");
    out
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

/// Two panels on shared epoch axes: test accuracy and training loss, one line per model.
fn draw_chart(all: &[ModelSummary], path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    let epochs = all.iter().map(|s| s.epochs).max().unwrap_or(1).max(2);
    let accuracy: Vec<Vec<f32>> = all.iter().map(|s| s.test_accuracy_curve.clone()).collect();
    let loss: Vec<Vec<f32>> = all.iter().map(|s| s.loss_curve.clone()).collect();
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
            let (r, g, b) = SERIES_COLORS[i % SERIES_COLORS.len()];
            let color = RGBColor(r, g, b).to_rgba();
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
