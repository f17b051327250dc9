//! The native harness as a user runs it: real processes, real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fashion_gpu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fashion-gpu")).args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh directory under the system temp dir.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fashion-gpu-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn idx_images(count: usize, pixel: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for dim in [count as u32, 28, 28] {
        bytes.extend(dim.to_be_bytes());
    }
    for i in 0..count {
        bytes.extend((0..784).map(|p| pixel(i, p)));
    }
    bytes
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 1];
    bytes.extend((labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    bytes
}

/// A learnable toy dataset in the four raw IDX files: class c lights up band c.
fn write_banded_dataset(dir: &Path, train: usize, test: usize) {
    for (stem, count) in [("train", train), ("t10k", test)] {
        let label = |i: usize| (i * 3 % 10) as u8;
        let labels: Vec<u8> = (0..count).map(label).collect();
        let images =
            idx_images(count, |i, p| if p * 10 / 784 == usize::from(label(i)) { 200 } else { (p * i % 50) as u8 });
        std::fs::write(dir.join(format!("{stem}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(dir.join(format!("{stem}-labels-idx1-ubyte")), idx_labels(&labels)).unwrap();
    }
}

#[test]
fn summary_prints_the_study_totals() {
    let out = fashion_gpu(&["summary", "--model", "baseline"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Total params: 235,146"), "{stdout}");
    assert!(stdout.contains("dense_2 (Dense)"), "{stdout}");
    let deep = text(&fashion_gpu(&["summary", "--model", "deep"]).stdout);
    assert!(deep.contains("Total params: 317,450"), "{deep}");
}

/// `--metrics study` measures the loss and train accuracy after each update (other figures than
/// each step's own), trains the same weights (the same test figures) and says so in the logs.
#[test]
fn the_studys_train_figures_are_an_option_recorded_with_the_run() {
    let dir = scratch_dir("metrics");
    write_banded_dataset(&dir, 300, 100);
    let epoch = |metrics: &str| {
        let log = dir.join(format!("{metrics}.jsonl"));
        let args = ["train", "--backend", "cpu", "--epochs", "1", "--batch", "32", "--metrics", metrics];
        let data = ["--data", dir.to_str().unwrap(), "--log-json", log.to_str().unwrap()];
        let out = fashion_gpu(&[&args[..], &data[..]].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("Figures: loss and train accuracy: "), "{}", text(&out.stderr));
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&log).unwrap()).unwrap()
    };
    let (step, study) = (epoch("step"), epoch("study"));
    assert_eq!((step["metrics"].as_str(), study["metrics"].as_str()), (Some("step"), Some("study")));
    assert_eq!(step["test_accuracy"], study["test_accuracy"], "the same training: {step} {study}");
    assert_ne!(step["loss"], study["loss"], "{step} {study}");

    let out_dir = dir.join("compare");
    let args = ["compare", "--backend", "cpu", "--models", "baseline", "--epochs", "1", "--metrics", "study"];
    let data = ["--data", dir.to_str().unwrap(), "--out", out_dir.to_str().unwrap()];
    let out = fashion_gpu(&[&args[..], &data[..]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("history.json")).unwrap()).unwrap();
    assert_eq!(
        (json[0]["metrics"].as_str(), json[0]["seeds"][0]["epochs"][0]["metrics"].as_str()),
        (Some("study"), Some("study"))
    );
    let refused = fashion_gpu(&["train", "--metrics", "after"]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("metrics must be `step`"), "{}", text(&refused.stderr));
}

#[test]
fn unknown_model_is_a_named_error() {
    let out = fashion_gpu(&["summary", "--model", "resnet"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown model preset `resnet`") && stderr.contains("baseline"), "{stderr}");
}

#[test]
fn train_prints_the_study_lines_and_logs_json() {
    let dir = scratch_dir("train");
    write_banded_dataset(&dir, 300, 100);
    let log = dir.join("log.jsonl");
    let args = [
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch",
        "32",
        "--log-json",
        log.to_str().unwrap(),
    ];
    let out = fashion_gpu(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "Learning started. It takes sometime.");
    assert_eq!(lines[3], "Learning Finished!");
    for (i, line) in lines[1..3].iter().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Epoch: 1 loss = 0.47122025 train accuracy = 0.8334 test accuracy = 0.8503
        assert_eq!(fields[..2], ["Epoch:", &(i + 1).to_string()], "{line}");
        assert_eq!(fields[2..4], ["loss", "="], "{line}");
        assert_eq!(fields[4].split('.').nth(1).map(str::len), Some(8), "8 decimals of loss: {line}");
        assert!(line.contains(" train accuracy =  0.") || line.contains(" train accuracy =  1."), "{line}");
        let test_accuracy: f32 = fields[fields.len() - 1].parse().unwrap();
        assert!((0.0..=1.0).contains(&test_accuracy), "{line}");
    }
    assert!(stderr.contains("Adapter: "), "{stderr}");
    let json = std::fs::read_to_string(&log).unwrap();
    let epochs: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(epochs.len(), 2);
    assert_eq!(epochs[1]["epoch"], 2);
    assert!(epochs[1]["test_accuracy"].as_f64().unwrap() > 0.5, "the bands are easy to learn: {json}");
}

#[test]
fn truncated_idx_file_is_a_one_line_named_error() {
    let dir = scratch_dir("truncated");
    write_banded_dataset(&dir, 50, 20);
    let images = dir.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() - 100]).unwrap();
    let out = fashion_gpu(&["train", "--data", dir.to_str().unwrap(), "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("train-images-idx3-ubyte"), "the error names the file: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "no training output after a data error");
}

#[test]
fn corrupt_gzip_and_bad_labels_are_named() {
    let dir = scratch_dir("corrupt");
    write_banded_dataset(&dir, 50, 20);
    std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), b"\x1f\x8b\x08\x00garbage").unwrap();
    let out = fashion_gpu(&["train", "--data", dir.to_str().unwrap(), "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("t10k-images-idx3-ubyte.gz"), "{}", text(&out.stderr));

    let dir = scratch_dir("labels");
    write_banded_dataset(&dir, 50, 20);
    let mut labels = idx_labels(&[1; 20]);
    *labels.last_mut().unwrap() = 12;
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
    let out = fashion_gpu(&["train", "--data", dir.to_str().unwrap(), "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("t10k-labels-idx1-ubyte") && stderr.contains("12"), "{stderr}");
}

#[test]
fn silly_settings_are_refused_before_any_work() {
    for (flag, value, expect) in
        [("--batch", "0", "batch"), ("--epochs", "0", "epochs"), ("--lr", "-1", "learning rate")]
    {
        // `--flag=value` so that a negative number is a value, not another flag.
        let out = fashion_gpu(&["train", &format!("{flag}={value}")]);
        assert_eq!(out.status.code(), Some(1), "{flag} {value}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expect), "{flag} {value}: {stderr}");
    }
}

#[test]
fn missing_data_directory_says_where_it_looked() {
    let out = fashion_gpu(&["train", "--data", "/nonexistent/fashion", "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/fashion"), "{}", text(&out.stderr));
}

#[test]
fn summary_of_every_variant_has_the_study_totals() {
    for (model, total, trainable) in [
        ("dropout", "317,450", "317,450"),
        ("l2", "317,450", "317,450"),
        ("batchnorm", "320,562", "319,006"),
        ("lr-decay", "317,450", "317,450"),
    ] {
        let out = fashion_gpu(&["summary", "--model", model]);
        assert!(out.status.success(), "{model}");
        let stdout = text(&out.stdout);
        assert!(stdout.contains(&format!("Total params: {total}")), "{stdout}");
        assert!(stdout.contains(&format!("Trainable params: {trainable}")), "{stdout}");
    }
    let bn = text(&fashion_gpu(&["summary", "--model", "batchnorm"]).stdout);
    assert!(bn.contains("Non-trainable params: 1,556"), "{bn}");
}

#[test]
fn a_custom_layer_spec_trains() {
    let dir = scratch_dir("layers");
    write_banded_dataset(&dir, 300, 50);
    let data = dir.to_str().unwrap();
    let layers = "48:linear,bn,relu,dropout:0.2,24";
    let out = fashion_gpu(&["train", "--data", data, "--epochs", "2", "--layers", layers, "--l2", "0.001"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("Epoch: ")).count(), 2, "{stdout}");
    let summary = text(&fashion_gpu(&["summary", "--layers", layers]).stdout);
    assert!(summary.contains("dropout (Dropout)") && summary.contains("batch_normalization"), "{summary}");
}

#[test]
fn bad_model_settings_are_named() {
    for (args, expect) in [
        (vec!["--layers", "256,conv"], "unknown layer"),
        (vec!["--layers", "256,dropout:1.5"], "dropout rate"),
        (vec!["--model", "baseline", "--dropout", "0.5"], "no Dropout layer"),
        (vec!["--model", "deep", "--l2=-1"], "L2"),
        (vec!["--model", "resnet"], "unknown model preset"),
    ] {
        let out = fashion_gpu(&[&["summary"], args.as_slice()].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

/// A compare history's rows without their seconds column (timings differ run to run).
fn history_rows(out: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(out.join("history.csv")).unwrap();
    csv.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect()
}

#[test]
fn compare_prints_a_table_and_writes_history_and_chart() {
    let dir = scratch_dir("compare");
    write_banded_dataset(&dir, 200, 40);
    let out_dir = dir.join("out");
    let args = [
        "compare",
        "--models",
        "baseline,batchnorm",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--data",
        dir.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = fashion_gpu(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let rows: Vec<_> = stdout.lines().filter(|l| l.starts_with("baseline ") || l.starts_with("batchnorm ")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows[0].contains("0.8951") && rows[1].contains("0.8813"), "the study's figures beside ours: {stdout}");
    assert!(rows[0].contains('±'), "two seeds give a spread: {stdout}");

    let csv = std::fs::read_to_string(out_dir.join("history.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 2, "header + models × seeds × epochs:\n{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("history.json")).unwrap()).unwrap();
    assert_eq!(json[1]["model"], "batchnorm");
    assert_eq!(json[1]["seeds"][1]["epochs"].as_array().unwrap().len(), 2);
    let png = std::fs::read(out_dir.join("chart.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a drawn chart, {} bytes", png.len());
    assert_eq!(json[0]["kernels"], "emulator set", "the history records the kernels (lavapipe: the emulator's)");
    assert!(json[1]["adapter"].as_str().is_some_and(|a| !a.is_empty()), "{json}");
}

/// `--seed S --seeds N` trains seeds S..S+N-1: seeds trained apart (in parallel, each in its own
/// --out) join into one history with --resume, the same as one compare of all the seeds.
#[test]
fn compare_seeds_trained_apart_join_into_one_history() {
    let dir = scratch_dir("seeds-apart");
    write_banded_dataset(&dir, 200, 40);
    let data = dir.to_str().unwrap();
    let compare = |out: &Path, extra: &[&str]| {
        let args = ["compare", "--models", "baseline", "--epochs", "2", "--data", data, "--backend", "cpu"];
        let out = fashion_gpu(&[&args[..], &["--out", out.to_str().unwrap()], extra].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let (together, first, second, joined) =
        (dir.join("together"), dir.join("first"), dir.join("second"), dir.join("joined"));
    compare(&together, &["--seeds", "2"]);
    compare(&first, &["--seeds", "1"]);
    compare(&second, &["--seed", "2", "--seeds", "1"]);
    assert!(history_rows(&second)[1].starts_with("baseline,2,1,"), "{:?}", history_rows(&second));
    std::fs::create_dir_all(&joined).unwrap();
    let mut csv = std::fs::read_to_string(first.join("history.csv")).unwrap();
    csv.extend(std::fs::read_to_string(second.join("history.csv")).unwrap().lines().skip(1).map(|l| format!("{l}\n")));
    std::fs::write(joined.join("history.csv"), csv).unwrap();
    let stderr = compare(&joined, &["--seeds", "2", "--resume"]);
    assert!(!stderr.contains("Epoch: "), "nothing trains again: {stderr}");
    assert_eq!(history_rows(&joined), history_rows(&together), "the joined history is the one of both seeds together");
}

/// `compare --interleave` trains the models together, epoch by epoch in turn, and reaches the
/// same history as one after the other (to the digit, without the seconds).
#[test]
fn compare_interleaved_trains_in_turn_to_the_same_history() {
    let dir = scratch_dir("interleave");
    write_banded_dataset(&dir, 200, 40);
    let data = dir.to_str().unwrap();
    let compare = |out: &Path, extra: &[&str]| {
        let args = ["compare", "--models", "baseline,dropout", "--epochs", "2", "--data", data];
        let out = fashion_gpu(&[&args[..], &["--out", out.to_str().unwrap()], extra].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let order = |stderr: &str| -> Vec<String> {
        stderr
            .lines()
            .filter(|l| l.contains("Epoch: "))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let (alone, together) = (dir.join("alone"), dir.join("together"));
    assert_eq!(order(&compare(&alone, &[])), ["baseline", "baseline", "dropout", "dropout"]);
    assert_eq!(order(&compare(&together, &["--interleave"])), ["baseline", "dropout", "baseline", "dropout"]);
    assert_eq!(history_rows(&together), history_rows(&alone), "interleaving changes no figure");
}

/// `--kernels tuned` times the variants once per adapter, shapes and batch: `lr-decay` has
/// `deep`'s shapes and reuses its tuning; the history records what each trained with.
#[test]
fn tuned_kernels_are_timed_once_per_shape_and_recorded() {
    let dir = scratch_dir("tuned");
    write_banded_dataset(&dir, 200, 40);
    let out_dir = dir.join("out");
    let data = dir.to_str().unwrap();
    let args = ["compare", "--models", "deep,lr-decay", "--epochs", "1", "--kernels", "tuned", "--data", data];
    let out = fashion_gpu(&[&args[..], &["--out", out_dir.to_str().unwrap()]].concat());
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("Kernels for ")).collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("Kernels for deep at batch 100") && lines[0].contains("dense_forward/tiled"));
    assert!(lines[1].starts_with("Kernels for lr-decay") && lines[1].contains("tuned earlier in this run"), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("history.json")).unwrap()).unwrap();
    assert_eq!(json[0]["kernels"], json[1]["kernels"], "the same tuning");
    assert!(json[0]["kernels"].as_str().is_some_and(|k| !k.is_empty()), "{json}");
}

#[test]
fn a_learning_rate_that_blows_up_is_named_with_its_epoch_and_steps() {
    let dir = scratch_dir("diverge");
    write_banded_dataset(&dir, 300, 50);
    let out = fashion_gpu(&["train", "--data", dir.to_str().unwrap(), "--epochs", "3", "--lr", "1e20"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let line = stderr.lines().find(|l| l.contains("diverged")).unwrap_or_default();
    assert!(line.contains("diverged in epoch 1") && line.contains("lower the learning rate (now 1e20)"), "{stderr}");
    assert!(!text(&out.stdout).contains("Epoch: 1 loss = NaN"), "no epoch line with a NaN loss");
}

#[test]
fn bench_prints_one_json_line_with_its_figures() {
    let out = fashion_gpu(&["bench", "--steps", "3", "--steps-per-submit", "2", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["model"], "baseline");
    assert_eq!(report["dispatches_per_step"], 11);
    assert_eq!(report["flops_per_step"], 6.0 * 100.0 * (784.0 * 256.0 + 256.0 * 128.0 + 128.0 * 10.0));
    assert!((report["submits_per_step"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-3);
    for key in ["samples_per_second", "epoch_seconds", "gflops"] {
        assert!(report[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {}", report[key]);
    }
    for key in ["forward_ms", "backward_ms", "optimizer_ms"] {
        assert!(report[key].is_number() || report[key] == "n/a", "{key}: {}", report[key]);
    }
    assert!(!report["adapter"].as_str().unwrap_or("").is_empty());
}

/// A chunk of 200 steps times its 11 dispatches with 4,400 timestamps: more than one query set
/// holds (4,096), so each step gets its own set ("4400 is too many queries for a single
/// QuerySet" before). Batch 1 keeps it short.
#[test]
fn bench_times_a_chunk_of_more_steps_than_one_query_set_holds() {
    let out = fashion_gpu(&["bench", "--steps", "200", "--steps-per-submit", "200", "--batch", "1", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(report["steps_per_submit"], 200);
    if report["timing"] == "timestamp-query" {
        let dispatches = report["dispatch_ms"].as_array().map_or(0, Vec::len);
        assert_eq!(dispatches, 11, "{}", report["dispatch_ms"]);
    }
}

/// The same command, seed and adapter print the same epoch lines to the digit (weights,
/// shuffles and dropout masks all come from the seed); another seed prints other lines.
#[test]
fn a_seed_reproduces_its_run_to_the_digit() {
    let run = |seed: &str| {
        let args = ["train", "--model", "dropout", "--epochs", "2", "--train-limit", "600", "--test-limit", "300"];
        let out = fashion_gpu(&[&args[..], &["--seed", seed]].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().filter(|l| l.starts_with("Epoch: ")).count(), 2, "{stdout}");
        stdout
    };
    let first = run("7");
    assert_eq!(first, run("7"), "the same seed");
    assert_ne!(first, run("8"), "another seed");
}

/// `bench --plan --json`: the last stdout line is `{"plan": [...]}`, one entry per dispatch.
fn dispatch_plan(model: &str, batch: usize, kernels: &str) -> Vec<serde_json::Value> {
    let batch = batch.to_string();
    let args = ["bench", "--plan", "--json", "--kernels", kernels, "--model", model, "--batch", &batch];
    let out = fashion_gpu(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let plan: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let dispatches = plan["plan"].as_array().unwrap_or_else(|| panic!("no plan: {last}")).clone();
    for d in &dispatches {
        for key in ["kernel", "workgroups", "invocations", "max_iterations", "flops"] {
            assert!(!d[key].is_null(), "{key} missing in {d}");
        }
    }
    dispatches
}

/// What the GPU set must not do on a real GPU: a product's FLOPs on few invocations at batch 100
/// (more than 65,536 each), or an invocation walking a batch of 1,000 alone (more than 4,096
/// loop trips). The emulator set does both (one invocation runs the softmax of the batch).
fn plan_violations(plan: &[serde_json::Value], batch: usize) -> Vec<String> {
    let number = |d: &serde_json::Value, key: &str| d[key].as_u64().unwrap_or(u64::MAX);
    plan.iter()
        .filter(|d| match batch {
            100 => number(d, "flops") >= 1_000_000 && number(d, "flops") / number(d, "invocations") > 65_536,
            _ => number(d, "max_iterations") > 4_096,
        })
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn the_gpu_kernel_set_fills_a_gpu_and_splits_reductions_for_every_preset() {
    for model in fashion_core::model::PRESETS {
        for batch in [100, 1_000] {
            let plan = dispatch_plan(model, batch, "gpu");
            assert!(plan.iter().any(|d| d["kernel"] == "adam_vec4"), "{model}: {plan:?}");
            let violations = plan_violations(&plan, batch);
            assert!(violations.is_empty(), "{model} at batch {batch}: {violations:#?}");
        }
    }
    let emulator = dispatch_plan("cnn", 1_000, "emulator");
    assert!(!plan_violations(&emulator, 1_000).is_empty(), "the rule catches the emulator set's long loops");
    let emulator = dispatch_plan("baseline", 100, "emulator");
    assert!(!plan_violations(&emulator, 100).is_empty(), "and its few-invocation products");
}

/// `compare --resume` goes on from what an earlier compare left: one epoch, then --resume to
/// three, gives the rows of three epochs straight (to the digit: the state holds everything the
/// run needs); a resume with another batch is refused, naming it, and the history is kept.
#[test]
fn compare_resumes_a_stopped_run_to_the_digit() {
    let dir = scratch_dir("resume");
    write_banded_dataset(&dir, 300, 60);
    let data = dir.to_str().unwrap();
    let compare = |out: &Path, extra: &[&str]| {
        let args = ["compare", "--models", "dropout", "--data", data, "--out", out.to_str().unwrap()];
        fashion_gpu(&[&args[..], extra].concat())
    };
    let straight = dir.join("straight");
    assert!(compare(&straight, &["--epochs", "3"]).status.success());

    let pieces = dir.join("pieces");
    assert!(compare(&pieces, &["--epochs", "1"]).status.success());
    assert_eq!(history_rows(&pieces).len(), 2, "header and epoch 1");
    let out = compare(&pieces, &["--epochs", "3", "--resume"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resumed after epoch 1"), "{stderr}");
    assert_eq!(history_rows(&pieces), history_rows(&straight), "the same history as three epochs straight");

    // A resumed run keeps the kernels it started with, whatever --kernels now says.
    let out = compare(&pieces, &["--epochs", "4", "--resume", "--kernels", "gpu"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success() && stderr.contains("resumed after epoch 3"), "{stderr}");
    assert_eq!(history_rows(&pieces)[..4], history_rows(&straight)[..], "epochs 1-3 kept");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pieces.join("history.json")).unwrap()).unwrap();
    assert_eq!(json[0]["kernels"], "emulator set", "{json}");

    let before = std::fs::read_to_string(pieces.join("history.csv")).unwrap();
    let out = compare(&pieces, &["--epochs", "5", "--resume", "--batch", "50"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("it has batch 100, this run 50"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(pieces.join("history.csv")).unwrap(), before, "nothing lost");
    // Nor does a history of each step's own figures go on with the study's.
    let out = compare(&pieces, &["--epochs", "5", "--resume", "--metrics", "study"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("it has metrics step, this run study"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(pieces.join("history.csv")).unwrap(), before, "nothing lost");
}

/// The bench runs a named kernel set untuned (the GPU set on lavapipe too, where it is slow),
/// and the CNN at batch 1,000, where one query set per step keeps the timestamps within
/// WebGPU's 4,096 (it broke from batch 379 before).
#[test]
fn bench_runs_the_gpu_set_and_the_cnn_at_batch_1000() {
    let run = |args: &[&str]| -> serde_json::Value {
        let out = fashion_gpu(&[&["bench", "--json"], args].concat());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        serde_json::from_str(text(&out.stdout).lines().last().unwrap_or_default()).unwrap()
    };
    let gpu = run(&["--kernels", "gpu", "--steps", "2"]);
    assert_eq!(gpu["variants"]["dense_forward"], "tiled", "{gpu}");
    assert_eq!(gpu["variants"]["softmax"], "tiled", "{gpu}");
    assert_eq!(gpu["dispatches_per_step"], 12, "the per-row softmax and its tally");
    assert!(gpu["samples_per_second"].as_f64().is_some_and(|s| s > 0.0), "{gpu}");
    let cnn = run(&["--model", "cnn", "--batch", "1000", "--steps", "1", "--kernels", "emulator"]);
    assert_eq!(cnn["batch"], 1000);
    assert!(cnn["samples_per_second"].as_f64().is_some_and(|s| s > 0.0), "{cnn}");
}

/// `--backend cpu` trains with the fast CPU kernels and prints the study's lines; the weights
/// it saves give the GPU's evaluation the same accuracy (up to a borderline image), and its own
/// evaluation the printed one to the digit. `auto` on a CPU adapter picks the CPU and says why.
#[test]
fn the_cpu_backend_trains_saves_and_evaluates_like_the_gpu() {
    let dir = scratch_dir("cpu-backend");
    write_banded_dataset(&dir, 300, 100);
    let weights = dir.join("cpu.safetensors");
    let data = dir.to_str().unwrap();
    let out = fashion_gpu(&[
        "train",
        "--backend",
        "cpu",
        "--data",
        data,
        "--epochs",
        "2",
        "--batch",
        "32",
        "--save",
        weights.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("Backend: cpu ("), "{stderr}");
    let last = stdout.lines().rfind(|l| l.starts_with("Epoch: 2 ")).expect("two epoch lines");
    let printed: f32 = last.rsplit('=').next().unwrap().trim().parse().unwrap();
    assert!(printed > 0.5, "the bands are easy to learn: {last}");
    let eval = |backend: &str| {
        let out = fashion_gpu(&["eval", "--backend", backend, "--data", data, "--weights", weights.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        stdout.trim().rsplit('=').next().unwrap().trim().parse::<f32>().unwrap()
    };
    assert_eq!(eval("cpu"), printed, "the CPU's own evaluation");
    assert!((eval("gpu") - printed).abs() <= 1.0 / 100.0, "the GPU's evaluation of the CPU's weights");

    let auto = fashion_gpu(&["train", "--backend", "auto", "--data", data, "--epochs", "1", "--batch", "64"]);
    let stderr = text(&auto.stderr);
    assert!(auto.status.success(), "{stderr}");
    if stderr.contains("emulates a GPU on the CPU") {
        assert!(stderr.contains("Backend: cpu (") && !stderr.contains("Adapter: "), "{stderr}");
    } else {
        assert!(stderr.contains("Adapter: "), "a real GPU trains: {stderr}");
    }
}

/// `bench --backend cpu` prints the GPU bench's JSON keys with the CPU's figures; `--plan`
/// (GPU dispatches) is refused on the CPU by name.
#[test]
fn the_cpu_bench_prints_the_gpu_benchs_keys() {
    let keys = |backend: &str| {
        let out = fashion_gpu(&["bench", "--backend", backend, "--steps", "3", "--batch", "20", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        (report.as_object().unwrap().keys().cloned().collect::<Vec<_>>(), report)
    };
    let (cpu_keys, cpu) = keys("cpu");
    assert_eq!(cpu_keys, keys("gpu").0);
    assert_eq!((cpu["backend"].as_str(), cpu["variants"]["cpu"].as_str()), (Some("cpu"), Some("fast")));
    assert!(cpu["samples_per_second"].as_f64().is_some_and(|v| v > 0.0), "{cpu}");
    let plan = fashion_gpu(&["bench", "--backend", "cpu", "--plan"]);
    assert!(!plan.status.success());
    assert!(text(&plan.stderr).contains("--plan lists GPU dispatches"), "{}", text(&plan.stderr));
}

/// `compare --backend cpu` trains on the fast CPU kernels, records the CPU as what it trained
/// on, and resumes a stopped run to the digit; a CPU run refuses to go on on the GPU, by name.
#[test]
fn compare_on_the_cpu_backend_resumes_to_the_digit() {
    let dir = scratch_dir("compare-cpu");
    write_banded_dataset(&dir, 300, 60);
    let data = dir.to_str().unwrap();
    let compare = |out: &Path, extra: &[&str]| {
        let args = ["compare", "--backend", "cpu", "--models", "dropout,batchnorm", "--data", data];
        fashion_gpu(&[&args[..], &["--out", out.to_str().unwrap()], extra].concat())
    };
    let straight = dir.join("straight");
    let out = compare(&straight, &["--epochs", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(straight.join("history.json")).unwrap()).unwrap();
    assert!(json[0]["adapter"].as_str().unwrap_or("").starts_with("CPU, fast kernels"), "{json}");
    assert_eq!(json[0]["kernels"], "cpu", "{json}");

    let pieces = dir.join("pieces");
    assert!(compare(&pieces, &["--epochs", "1"]).status.success());
    let out = compare(&pieces, &["--epochs", "3", "--resume"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success() && stderr.contains("resumed after epoch 1"), "{stderr}");
    assert_eq!(history_rows(&pieces), history_rows(&straight), "the same history as three epochs straight");

    let before = std::fs::read_to_string(pieces.join("history.csv")).unwrap();
    let args = ["compare", "--models", "dropout,batchnorm", "--data", data, "--epochs", "4", "--resume"];
    let out = fashion_gpu(&[&args[..], &["--out", pieces.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cpu"), "the kernels it started with are named: {}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(pieces.join("history.csv")).unwrap(), before, "nothing lost");
}
