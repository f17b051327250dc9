//! A trainer's whole state at an epoch's end — the parameters (BatchNorm's moving statistics
//! among them), Adam's moments and step, the epoch, the learning rate — with what it belongs to
//! (model, seed, batch, kernels), as bytes a file holds. The epoch's shuffle and every dropout
//! mask follow from the seed, the epoch and Adam's step, so a trainer restored from it goes on
//! exactly as if it had never stopped (`fashion-gpu compare --resume`).
//!
//! File layout: the magic line `fashion-gpu trainer state 1\n`, a little-endian u64 with the
//! length of a JSON header, the header (the fields below but the three tensors, and their
//! lengths), then the tensors as little-endian f32: params, Adam's m, Adam's v.

use serde_json::{json, Value};

const MAGIC: &[u8] = b"fashion-gpu trainer state 1\n";
/// A header longer than this is not one of ours.
const MAX_HEADER: u64 = 1 << 16;

/// What a training run is, so a state is only resumed where it belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    pub model: String,
    pub seed: u64,
    pub batch: usize,
    /// The kernels it trains with (they sum in different orders: a run keeps its choice).
    pub kernels: String,
    /// What its loss and train accuracy measure ([`crate::train::EpochMetrics::as_str`]): one
    /// history holds one kind of figure.
    pub metrics: String,
}

/// A trainer's state after `epoch` epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState {
    pub run: RunIdentity,
    pub epoch: usize,
    /// Adam steps taken.
    pub global_step: u64,
    pub learning_rate: f32,
    pub params: Vec<f32>,
    pub adam_m: Vec<f32>,
    pub adam_v: Vec<f32>,
}

/// Why bytes are not a trainer state we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("not a fashion-gpu trainer state (its first line is not `fashion-gpu trainer state 1`)")]
    NotAState,
    #[error("the trainer state is cut short: {0}")]
    Truncated(String),
    #[error("the trainer state's header is not valid: {0}")]
    BadHeader(String),
    #[error("the trainer state is of another run: it has {what} {found}, this run {expected}")]
    OtherRun { what: &'static str, found: String, expected: String },
    #[error("the trainer state holds {found} {what}, the model has {expected}")]
    WrongSize { what: &'static str, found: usize, expected: usize },
}

impl TrainerState {
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = json!({
            "model": self.run.model,
            "seed": self.run.seed,
            "batch": self.run.batch,
            "kernels": self.run.kernels,
            "metrics": self.run.metrics,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "learning_rate": self.learning_rate,
            "params": self.params.len(),
            "adam_m": self.adam_m.len(),
            "adam_v": self.adam_v.len(),
        })
        .to_string();
        let floats = self.params.len() + self.adam_m.len() + self.adam_v.len();
        let mut bytes = Vec::with_capacity(MAGIC.len() + 8 + header.len() + 4 * floats);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for value in self.params.iter().chain(&self.adam_m).chain(&self.adam_v) {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let rest = bytes.strip_prefix(MAGIC).ok_or(StateError::NotAState)?;
        let (length, rest) = rest.split_first_chunk::<8>().ok_or(StateError::Truncated("no header length".into()))?;
        let length = u64::from_le_bytes(*length);
        if length > MAX_HEADER || length > rest.len() as u64 {
            return Err(StateError::Truncated(format!("a header of {length} bytes in {} bytes", rest.len())));
        }
        let (header, mut data) = rest.split_at(length as usize);
        let header: Value = serde_json::from_slice(header).map_err(|e| StateError::BadHeader(e.to_string()))?;
        let field = |name: &str| header.get(name).ok_or_else(|| StateError::BadHeader(format!("no `{name}`")));
        let count = |name: &str| -> Result<usize, StateError> {
            field(name)?
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| StateError::BadHeader(format!("`{name}` is not a count")))
        };
        let text = |name: &str| -> Result<String, StateError> {
            field(name)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| StateError::BadHeader(format!("`{name}` is not text")))
        };
        let run = RunIdentity {
            model: text("model")?,
            seed: count("seed")? as u64,
            batch: count("batch")?,
            kernels: text("kernels")?,
            // States written before `--metrics` existed measured each step's own figures.
            metrics: if header.get("metrics").is_some() { text("metrics")? } else { "step".into() },
        };
        let learning_rate = field("learning_rate")?
            .as_f64()
            .ok_or_else(|| StateError::BadHeader("`learning_rate` is not a number".into()))?
            as f32;
        let mut tensor = |name: &'static str| -> Result<Vec<f32>, StateError> {
            let n = count(name)?;
            let bytes = n.checked_mul(4).filter(|&b| b <= data.len()).ok_or_else(|| {
                StateError::Truncated(format!("{name} needs {n} floats, {} bytes are left", data.len()))
            })?;
            let (values, rest) = data.split_at(bytes);
            data = rest;
            Ok(values.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        };
        let (params, adam_m, adam_v) = (tensor("params")?, tensor("adam_m")?, tensor("adam_v")?);
        if !data.is_empty() {
            return Err(StateError::BadHeader(format!("{} bytes after the tensors", data.len())));
        }
        Ok(TrainerState {
            run,
            epoch: count("epoch")?,
            global_step: count("global_step")? as u64,
            learning_rate,
            params,
            adam_m,
            adam_v,
        })
    }

    /// Refuses a state of another run (model, seed, batch, kernels or metrics).
    pub fn check_run(&self, run: &RunIdentity) -> Result<(), StateError> {
        let pairs = [
            ("model", self.run.model.clone(), run.model.clone()),
            ("seed", self.run.seed.to_string(), run.seed.to_string()),
            ("batch", self.run.batch.to_string(), run.batch.to_string()),
            ("kernels", self.run.kernels.clone(), run.kernels.clone()),
            ("metrics", self.run.metrics.clone(), run.metrics.clone()),
        ];
        match pairs.into_iter().find(|(_, found, expected)| found != expected) {
            Some((what, found, expected)) => Err(StateError::OtherRun { what, found, expected }),
            None => Ok(()),
        }
    }

    /// Refuses tensors of other sizes than a model's `total` parameters and `trainable` moments.
    pub fn check_sizes(&self, total: usize, trainable: usize) -> Result<(), StateError> {
        for (what, found, expected) in [
            ("parameters", self.params.len(), total),
            ("Adam m values", self.adam_m.len(), trainable),
            ("Adam v values", self.adam_v.len(), trainable),
        ] {
            if found != expected {
                return Err(StateError::WrongSize { what, found, expected });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> TrainerState {
        TrainerState {
            run: RunIdentity {
                model: "baseline".into(),
                seed: 2,
                batch: 100,
                kernels: "emulator set".into(),
                metrics: "step".into(),
            },
            epoch: 3,
            global_step: 1800,
            learning_rate: 1e-3,
            params: vec![1.0, -2.5, f32::MIN_POSITIVE],
            adam_m: vec![0.25, 0.5],
            adam_v: vec![1e-8, 0.0],
        }
    }

    /// `bytes` with `name` left out of the header.
    fn without_header_field(bytes: &[u8], name: &str) -> Vec<u8> {
        let rest = &bytes[MAGIC.len()..];
        let length = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
        let mut header: Value = serde_json::from_slice(&rest[8..8 + length]).unwrap();
        header.as_object_mut().unwrap().remove(name);
        let header = header.to_string();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&rest[8 + length..]);
        out
    }

    #[test]
    fn a_state_round_trips_to_the_bit() {
        assert_eq!(TrainerState::from_bytes(&state().to_bytes()).unwrap(), state());
    }

    #[test]
    fn bad_bytes_are_named_and_never_panic() {
        let bytes = state().to_bytes();
        assert_eq!(TrainerState::from_bytes(b"PK\x03\x04"), Err(StateError::NotAState));
        for cut in [MAGIC.len() + 3, MAGIC.len() + 20, bytes.len() - 1] {
            let error = TrainerState::from_bytes(&bytes[..cut]).unwrap_err();
            assert!(matches!(error, StateError::Truncated(_) | StateError::BadHeader(_)), "cut at {cut}: {error}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(TrainerState::from_bytes(&longer), Err(StateError::BadHeader(_))));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(TrainerState::from_bytes(&huge), Err(StateError::Truncated(_))));
        // Every prefix of a valid state is an error, not a panic.
        for cut in 0..bytes.len() {
            assert!(TrainerState::from_bytes(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn a_state_of_another_run_or_model_is_refused() {
        let s = state();
        assert!(s.check_run(&s.run).is_ok());
        let other = RunIdentity { seed: 3, ..s.run.clone() };
        assert_eq!(
            s.check_run(&other).unwrap_err().to_string(),
            "the trainer state is of another run: it has seed 2, this run 3"
        );
        let study = RunIdentity { metrics: "study".into(), ..s.run.clone() };
        assert_eq!(
            s.check_run(&study).unwrap_err().to_string(),
            "the trainer state is of another run: it has metrics step, this run study"
        );
        // A state written before `metrics` was recorded measured each step's own figures.
        let old = without_header_field(&s.to_bytes(), "metrics");
        assert_eq!(TrainerState::from_bytes(&old).unwrap().run.metrics, "step");
        assert!(s.check_sizes(3, 2).is_ok());
        assert!(matches!(s.check_sizes(4, 2), Err(StateError::WrongSize { what: "parameters", .. })));
    }
}
