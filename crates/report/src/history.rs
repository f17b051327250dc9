//! A training history as files: each epoch a CSV row (`fashion-gpu compare`'s `history.csv`, the
//! page's study download) and a JSON object (`fashion-gpu train --log-json`, `history.json`).
//! `compare --resume` reads the CSV back (crates/cli/src/history.rs), so its columns and number
//! formats are a contract.

use fashion_core::study::{RunHistory, Study};
use fashion_core::train::{EpochMetrics, EpochStats};
use serde_json::{json, Value};

/// The columns of a training history as CSV (`fashion-gpu compare`'s `history.csv`).
pub const HISTORY_CSV_HEADER: &str = "model,seed,epoch,loss,train_accuracy,test_loss,test_accuracy,seconds";

/// One epoch of `model` trained with `seed`, as a row under [`HISTORY_CSV_HEADER`].
pub fn history_csv_row(model: &str, seed: u64, stats: &EpochStats) -> String {
    format!(
        "{model},{seed},{},{},{},{},{},{:.3}",
        stats.epoch, stats.loss, stats.train_accuracy, stats.test_loss, stats.test_accuracy, stats.seconds
    )
}

/// One epoch as a JSON object (`fashion-gpu train --log-json`, the history JSON), with what its
/// training loss and accuracy measure.
pub fn epoch_json(stats: &EpochStats, metrics: EpochMetrics) -> Value {
    json!({
        "epoch": stats.epoch,
        "metrics": metrics.as_str(),
        "loss": stats.loss,
        "train_accuracy": stats.train_accuracy,
        "test_loss": stats.test_loss,
        "test_accuracy": stats.test_accuracy,
        "seconds": stats.seconds,
        "samples_per_second": stats.samples_per_second(),
    })
}

/// The CSV of `runs`, in order, under [`HISTORY_CSV_HEADER`] (`fashion-gpu compare`'s
/// `history.csv`, the page's study download).
pub fn history_csv<'a>(runs: impl IntoIterator<Item = &'a RunHistory>) -> String {
    let mut out = format!("{HISTORY_CSV_HEADER}\n");
    for run in runs {
        for stats in &run.epochs {
            out += &history_csv_row(&run.model, run.seed, stats);
            out.push('\n');
        }
    }
    out
}

/// Every run of `study` as `history.csv`, runs in the order they were added.
pub fn study_csv(study: &Study) -> String {
    history_csv(study.runs().iter().map(|r| &r.history))
}

/// Per model its runs' epochs, with the adapter and kernels they trained on and what their
/// training figures measure (`compare`'s `history.json`).
pub fn study_json(study: &Study, adapter: &str, metrics: EpochMetrics) -> String {
    let models: Vec<_> = study
        .summaries()
        .iter()
        .map(|summary| {
            let seeds: Vec<_> = study
                .runs()
                .iter()
                .filter(|r| r.history.model == summary.model)
                .map(|r| {
                    let epochs: Vec<_> = r.history.epochs.iter().map(|s| epoch_json(s, metrics)).collect();
                    json!({ "seed": r.history.seed, "epochs": epochs })
                })
                .collect();
            json!({
                "model": summary.model,
                "params": summary.params,
                "adapter": adapter,
                "kernels": summary.kernels,
                "metrics": metrics.as_str(),
                "seeds": seeds,
            })
        })
        .collect();
    serde_json::to_string_pretty(&models).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use fashion_core::ModelSpec;

    use super::*;

    fn stats() -> EpochStats {
        EpochStats {
            epoch: 2,
            loss: 0.5,
            train_accuracy: 0.75,
            test_loss: 0.25,
            test_accuracy: 0.875,
            train_samples: 100,
            seconds: 1.23456,
        }
    }

    #[test]
    fn history_rows_have_the_header_columns() {
        let row = history_csv_row("deep", 3, &stats());
        assert_eq!(row, "deep,3,2,0.5,0.75,0.25,0.875,1.235");
        assert_eq!(row.split(',').count(), HISTORY_CSV_HEADER.split(',').count());
        let json = epoch_json(&stats(), EpochMetrics::AfterStep);
        assert_eq!((json["epoch"].as_u64(), json["test_accuracy"].as_f64()), (Some(2), Some(0.875)));
        assert_eq!(json["metrics"], "study");
    }

    #[test]
    fn a_study_is_one_csv_row_per_epoch_and_a_json_entry_per_model() {
        let epoch = |epoch, test_accuracy| EpochStats { epoch, test_accuracy, ..stats() };
        let spec = |name| ModelSpec::preset(name).unwrap();
        let mut study = Study::new(3);
        study.add_run(&spec("baseline"), 1, "emulator".into(), vec![epoch(1, 0.80), epoch(2, 0.86), epoch(3, 0.84)]);
        study.add_run(&spec("l2"), 1, "emulator".into(), vec![epoch(1, 0.82), epoch(2, 0.85), epoch(3, 0.87)]);
        study.add_run(&spec("l2"), 2, "emulator".into(), vec![epoch(1, 0.80), epoch(2, 0.85), epoch(3, 0.85)]);
        let csv = study_csv(&study);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!((lines[0], lines.len()), (HISTORY_CSV_HEADER, 10));
        assert!(lines[9].starts_with("l2,2,3,"), "{}", lines[9]);
        let json: Value = serde_json::from_str(&study_json(&study, "lavapipe", EpochMetrics::Step)).unwrap();
        assert_eq!(json[1]["seeds"][1]["epochs"][2]["test_accuracy"].as_f64().map(|a| a as f32), Some(0.85));
        assert_eq!((json[0]["adapter"].as_str(), json[0]["metrics"].as_str()), (Some("lavapipe"), Some("step")));
    }
}
