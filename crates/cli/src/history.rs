//! `compare`'s files while it trains: the history CSV (crates/report's `history_csv`), rewritten after every epoch so a stopped
//! run keeps what it finished, read back by `--resume`; and each run's trainer state
//! after its last epoch (`states/<model>-seed<seed>.state`, a few MB each).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use fashion_core::study::RunHistory;
use fashion_core::train::TrainerState;
use fashion_core::EpochStats;
use fashion_report::history::HISTORY_CSV_HEADER;

/// Writes `bytes` to `path` through a temporary file and a rename: a reader, or a run stopped
/// mid-write, sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a history CSV written by `compare` (each run's epochs 1, 2, … in order); `train_samples`
/// fills the one figure the CSV does not hold.
pub fn read_csv(path: &Path, train_samples: usize) -> anyhow::Result<Vec<RunHistory>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HISTORY_CSV_HEADER) {
        bail!("{}: not a compare history (its first line is not `{HISTORY_CSV_HEADER}`)", path.display());
    }
    let mut runs: Vec<RunHistory> = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{} line {}", path.display(), i + 2);
        let fields: Vec<&str> = line.split(',').collect();
        let [model, seed, epoch, loss, train_accuracy, test_loss, test_accuracy, seconds] = fields[..] else {
            bail!("{}: {} fields, the header has 8", at(), fields.len());
        };
        let number = |name: &str, text: &str| -> anyhow::Result<f64> {
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() || name.contains("loss"))
                .with_context(|| format!("{}: {name} `{text}` is not a number", at()))
        };
        let seed: u64 = seed.parse().with_context(|| format!("{}: seed `{seed}` is not a whole number", at()))?;
        let epoch: usize = epoch.parse().with_context(|| format!("{}: epoch `{epoch}` is not a whole number", at()))?;
        let stats = EpochStats {
            epoch,
            loss: loss.parse().with_context(|| format!("{}: loss `{loss}` is not a number", at()))?,
            train_accuracy: number("train_accuracy", train_accuracy)? as f32,
            test_loss: test_loss
                .parse()
                .with_context(|| format!("{}: test_loss `{test_loss}` is not a number", at()))?,
            test_accuracy: number("test_accuracy", test_accuracy)? as f32,
            train_samples,
            seconds: number("seconds", seconds)?,
        };
        match runs.iter_mut().find(|r| r.model == model && r.seed == seed) {
            Some(run) if run.epochs.len() + 1 == epoch => run.epochs.push(stats),
            Some(run) => bail!("{}: epoch {epoch} of {model} seed {seed} after its epoch {}", at(), run.epochs.len()),
            None if epoch == 1 => runs.push(RunHistory { model: model.to_string(), seed, epochs: vec![stats] }),
            None => bail!("{}: {model} seed {seed} starts at epoch {epoch}", at()),
        }
    }
    Ok(runs)
}

/// Where a run's trainer state goes between epochs.
pub fn state_path(out: &Path, model: &str, seed: u64) -> PathBuf {
    out.join("states").join(format!("{model}-seed{seed}.state"))
}

/// The state saved for a run, if there is one.
pub fn read_state(path: &Path) -> anyhow::Result<Option<TrainerState>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(TrainerState::from_bytes(&bytes).with_context(|| format!("{}", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fashion_report::history::{history_csv, history_csv_row};

    fn stats(epoch: usize) -> EpochStats {
        EpochStats {
            epoch,
            loss: 0.1 + epoch as f32 / 3.0,
            train_accuracy: 0.8,
            test_loss: 0.4,
            test_accuracy: 0.85 + epoch as f32 / 1e4,
            train_samples: 60_000,
            seconds: 1.25,
        }
    }

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fashion-gpu-history-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_history_round_trips_exactly() {
        let runs = vec![
            RunHistory { model: "baseline".into(), seed: 1, epochs: vec![stats(1), stats(2)] },
            RunHistory { model: "deep".into(), seed: 2, epochs: vec![stats(1)] },
        ];
        let path = dir("round-trip").join("history.csv");
        write_atomically(&path, history_csv(&runs).as_bytes()).unwrap();
        let back = read_csv(&path, 60_000).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].epochs, runs[0].epochs, "f32 figures print in full and parse back to the bit");
        assert_eq!((back[1].model.as_str(), back[1].seed), ("deep", 2));
    }

    #[test]
    fn a_broken_history_is_named() {
        let path = dir("broken").join("history.csv");
        let row = |m: &str, e: usize| history_csv_row(m, 1, &stats(e));
        for (text, expect) in [
            ("model,seed\n".to_string(), "not a compare history"),
            (format!("{HISTORY_CSV_HEADER}\n{}\n", row("baseline", 2)), "starts at epoch 2"),
            (format!("{HISTORY_CSV_HEADER}\n{}\n{}\n", row("baseline", 1), row("baseline", 3)), "epoch 3 of baseline"),
            (format!("{HISTORY_CSV_HEADER}\nbaseline,1,1,x,0.8,0.4,0.85,1\n"), "line 2: loss `x`"),
            (format!("{HISTORY_CSV_HEADER}\nbaseline,1\n"), "2 fields"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = format!("{:#}", read_csv(&path, 1).expect_err(expect));
            assert!(error.contains(expect), "{error}");
        }
    }
}
