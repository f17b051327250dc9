//! `train --save` and `eval --weights`: the saved model scores what the run that saved it
//! scored, and a broken weights file is refused in one line naming it. (Bit-identical
//! probabilities after save → load: crates/core/tests/weights_round_trip.rs.)
//! Uses the installed Fashion-MNIST (scripts/install-data.sh), cut to 500 + 500 images.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use fashion_core::weights::{from_safetensors, to_safetensors};
use fashion_core::ModelSpec;

fn fashion_gpu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fashion-gpu")).args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fashion-gpu-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Trains the baseline one epoch on 500 images, once per test binary, saving its weights;
/// returns the file and the test accuracy of the last epoch line, as printed.
fn trained() -> &'static (PathBuf, String) {
    static TRAINED: OnceLock<(PathBuf, String)> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let file = scratch_dir().join("baseline.safetensors");
        let out = fashion_gpu(&[
            "train",
            "--epochs",
            "1",
            "--train-limit",
            "500",
            "--test-limit",
            "500",
            "--save",
            file.to_str().unwrap(),
        ]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "train failed:\n{stdout}\n{}", text(&out.stderr));
        let last_epoch = stdout.lines().rfind(|l| l.starts_with("Epoch:")).expect("an epoch line");
        let accuracy = last_epoch.rsplit('=').next().unwrap().trim().to_string();
        (file, accuracy)
    })
}

fn eval(weights: &Path, extra: &[&str]) -> Output {
    fashion_gpu(&[&["eval", "--weights", weights.to_str().unwrap(), "--test-limit", "500"], extra].concat())
}

/// Asserts a failure with exactly one line on stderr, naming `file` and containing `problem`.
fn assert_one_line_error(out: &Output, file: &Path, problem: &str) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "accepted a broken weights file: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line expected:\n{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "the file is not named: {stderr}");
    assert!(stderr.contains(problem), "`{problem}` is not said: {stderr}");
    assert!(!text(&out.stdout).contains("test accuracy"), "no figure for a broken file");
}

#[test]
fn eval_prints_the_accuracy_of_the_run_that_saved_the_weights() {
    let (file, trained_accuracy) = trained();
    let out = eval(file, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "eval failed:\n{stdout}\n{}", text(&out.stderr));
    assert_eq!(stdout.trim(), format!("test accuracy = {trained_accuracy}"));
    let accuracy: f32 = trained_accuracy.parse().unwrap();
    assert!(accuracy > 0.6, "one epoch on 500 images should reach 0.6, got {accuracy}");
}

#[test]
fn the_saved_file_is_the_model_in_safetensors_form() {
    let (file, _) = trained();
    let bytes = std::fs::read(file).unwrap();
    let spec = ModelSpec::preset("baseline").unwrap();
    let params = from_safetensors(&spec, &bytes).unwrap();
    assert_eq!(params.len(), spec.total_params());
    assert_eq!(to_safetensors(&spec, &params), bytes, "load → save gives the same bytes");
}

#[test]
fn broken_weights_files_are_one_line_errors_naming_the_file() {
    let (file, _) = trained();
    let bytes = std::fs::read(file).unwrap();
    let dir = scratch_dir();
    let write = |name: &str, content: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    };

    let truncated = write("truncated.safetensors", &bytes[..bytes.len() / 2]);
    assert_one_line_error(&eval(&truncated, &[]), &truncated, "truncated");

    let spec = ModelSpec::preset("baseline").unwrap();
    let mut params = from_safetensors(&spec, &bytes).unwrap();
    params[12] = f32::NAN;
    let diverged = write("nan.safetensors", &to_safetensors(&spec, &params));
    assert_one_line_error(&eval(&diverged, &[]), &diverged, "non-finite value (NaN)");

    let garbage = write("garbage.safetensors", b"this is not a weights file at all");
    assert_one_line_error(&eval(&garbage, &[]), &garbage, "safetensors");

    assert_one_line_error(&eval(file, &["--model", "deep"]), file, "saved from a `baseline` model");

    let missing = dir.join("missing.safetensors");
    assert_one_line_error(&eval(&missing, &[]), &missing, "cannot read the weights file");
}

#[test]
fn an_unwritable_save_path_fails_before_training() {
    let out =
        fashion_gpu(&["train", "--epochs", "1", "--train-limit", "100", "--save", "/nonexistent/dir/w.safetensors"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot create the weights file /nonexistent/dir/w.safetensors"), "{stderr}");
    assert!(!text(&out.stdout).contains("Learning started"), "it trained before failing");
}

#[test]
fn a_model_goes_out_as_keras_and_back_in_and_a_broken_keras_file_is_named() {
    let (file, trained_accuracy) = trained();
    let dir = scratch_dir();
    let keras = dir.join("baseline.keras");
    let out = fashion_gpu(&["export", "--weights", file.to_str().unwrap(), "--out", keras.to_str().unwrap()]);
    assert!(out.status.success(), "export failed: {}", text(&out.stderr));
    // The .keras file names its own model: no --model needed, the same figure to the digit.
    let out = eval(&keras, &[]);
    assert_eq!(text(&out.stdout).trim(), format!("test accuracy = {trained_accuracy}"), "{}", text(&out.stderr));

    let bytes = std::fs::read(&keras).unwrap();
    let write = |name: &str, content: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    };
    let truncated = write("truncated.keras", &bytes[..bytes.len() / 2]);
    assert_one_line_error(&eval(&truncated, &[]), &truncated, "not a .keras file");

    let spec = ModelSpec::preset("baseline").unwrap();
    let mut params = from_safetensors(&spec, &std::fs::read(file).unwrap()).unwrap();
    params[spec.param_layout().dense[1].bias_offset + 3] = f32::NAN;
    let nan = write("nan.keras", &fashion_interop::export(&spec, &params, fashion_interop::Format::Keras).unwrap());
    assert_one_line_error(&eval(&nan, &[]), &nan, "weight `bias` holds a non-finite value (NaN) at index 3");

    let legacy = write("legacy.h5", b"\x89HDF\r\n\x1a\n and the rest of a Keras 2 file");
    assert_one_line_error(&eval(&legacy, &[]), &legacy, "Keras 2's legacy .h5");

    let out = fashion_gpu(&["export", "--weights", file.to_str().unwrap(), "--out", "model.bin"]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("end it in .keras, .onnx, .zip"),
        "{}",
        text(&out.stderr)
    );
}
