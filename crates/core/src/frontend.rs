//! What both front-ends (the native harness and the page) write around the trainers: the
//! per-epoch history rows (JSON, CSV).

use serde_json::{json, Value};

use crate::train::{EpochMetrics, EpochStats};

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

#[cfg(test)]
mod tests {
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
}
