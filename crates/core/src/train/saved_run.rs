//! A whole run a front-end can pick up again after it stopped (the page: after a reload): the
//! trainer's [`TrainerState`] at an epoch's end, the history of the epochs run, the model as
//! this build defines it, and the front-end's own settings that reproduce the run, as bytes.
//! One format for both front-ends; the page keeps it in the browser's storage.
//!
//! Layout: the magic line `fashion-gpu saved run 1\n`, a little-endian u64 with the length of a
//! JSON header (`build`, `model`, `settings`, `history`), the header, then the trainer state's
//! own bytes ([`TrainerState::to_bytes`]).

use serde_json::{json, Value};

use super::state::{StateError, TrainerState};
use super::EpochStats;
use crate::model::ModelSpec;

const MAGIC: &[u8] = b"fashion-gpu saved run 1\n";
/// A header longer than this is not one of ours.
const MAX_HEADER: u64 = 1 << 20;

/// The build that writes saved runs: a run saved by another version is refused, not guessed at
/// (its kernels, shuffles or presets may differ).
pub const BUILD: &str = concat!("fashion-gpu ", env!("CARGO_PKG_VERSION"));

/// A run stopped after `state.epoch` epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedRun {
    /// [`BUILD`] of the build that saved it.
    pub build: String,
    /// The model as the saving build defined it ([`model_fingerprint`]).
    pub model: String,
    /// The front-end's own settings that reproduce the run (the page: its query string).
    pub settings: String,
    /// One entry per epoch run, in order.
    pub history: Vec<EpochStats>,
    pub state: TrainerState,
}

/// Why bytes are not a saved run this build can go on with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SavedRunError {
    #[error("not a fashion-gpu saved run (its first line is not `fashion-gpu saved run 1`)")]
    NotASavedRun,
    #[error("the saved run is cut short or damaged: {0}")]
    Damaged(String),
    #[error("the saved run is from another build ({found}; this page is {expected}): start a new run")]
    OtherBuild { found: String, expected: String },
    #[error(
        "the saved run is of another model: its `{saved}` ({found} parameters) is not defined as this \
         build's `{name}` ({expected} parameters): start a new run"
    )]
    OtherModel { saved: String, name: String, found: usize, expected: usize },
    #[error("the saved run's trainer state: {0}")]
    State(#[from] StateError),
}

/// The model as this build defines it, every layer, rate, factor and schedule: a saved run of
/// a model whose definition changed since is refused.
pub fn model_fingerprint(spec: &ModelSpec) -> String {
    format!("{spec:?}")
}

impl SavedRun {
    /// A run of `spec` by this build.
    pub fn new(spec: &ModelSpec, settings: String, history: Vec<EpochStats>, state: TrainerState) -> Self {
        SavedRun { build: BUILD.to_string(), model: model_fingerprint(spec), settings, history, state }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|s| {
                json!({
                    "epoch": s.epoch,
                    "loss": s.loss,
                    "train_accuracy": s.train_accuracy,
                    "test_loss": s.test_loss,
                    "test_accuracy": s.test_accuracy,
                    "train_samples": s.train_samples,
                    "seconds": s.seconds,
                })
            })
            .collect();
        let header = json!({ "build": self.build, "model": self.model, "settings": self.settings, "history": history })
            .to_string();
        let state = self.state.to_bytes();
        let mut bytes = Vec::with_capacity(MAGIC.len() + 8 + header.len() + state.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&state);
        bytes
    }

    /// Reads a saved run of this build ([`BUILD`]); another build's is refused whole.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SavedRunError> {
        let damaged = |why: String| SavedRunError::Damaged(why);
        let rest = bytes.strip_prefix(MAGIC).ok_or(SavedRunError::NotASavedRun)?;
        let (length, rest) = rest.split_first_chunk::<8>().ok_or_else(|| damaged("no header length".into()))?;
        let length = u64::from_le_bytes(*length);
        if length > MAX_HEADER || length > rest.len() as u64 {
            return Err(damaged(format!("a header of {length} bytes in {} bytes", rest.len())));
        }
        let (header, state) = rest.split_at(length as usize);
        let header: Value = serde_json::from_slice(header).map_err(|e| damaged(format!("its header: {e}")))?;
        let text = |name: &str| {
            header.get(name).and_then(Value::as_str).map(str::to_string).ok_or_else(|| damaged(format!("no `{name}`")))
        };
        let build = text("build")?;
        if build != BUILD {
            return Err(SavedRunError::OtherBuild { found: build, expected: BUILD.to_string() });
        }
        let history = header
            .get("history")
            .and_then(Value::as_array)
            .ok_or_else(|| damaged("no `history`".into()))?
            .iter()
            .map(epoch_from_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(damaged)?;
        let state = TrainerState::from_bytes(state)?;
        let numbered = history.iter().enumerate().all(|(i, s)| s.epoch == i + 1);
        if history.len() != state.epoch || !numbered {
            return Err(damaged(format!(
                "{} history entries (epochs 1 to n expected) for a state after epoch {}",
                history.len(),
                state.epoch
            )));
        }
        Ok(SavedRun { build, model: text("model")?, settings: text("settings")?, history, state })
    }

    /// Refuses a run of another model than `spec` as this build defines it, or whose tensors
    /// do not fit it.
    pub fn check_model(&self, spec: &ModelSpec) -> Result<(), SavedRunError> {
        let expected = model_fingerprint(spec);
        if self.model != expected {
            return Err(SavedRunError::OtherModel {
                saved: self.state.run.model.clone(),
                name: spec.name.clone(),
                found: self.state.params.len(),
                expected: spec.total_params(),
            });
        }
        Ok(self.state.check_sizes(spec.total_params(), spec.trainable_params())?)
    }
}

fn epoch_from_json(entry: &Value) -> Result<EpochStats, String> {
    let number = |name: &str| {
        entry.get(name).and_then(Value::as_f64).ok_or_else(|| format!("a history entry has no number `{name}`"))
    };
    let count = |name: &str| {
        entry.get(name).and_then(Value::as_u64).ok_or_else(|| format!("a history entry has no count `{name}`"))
    };
    Ok(EpochStats {
        epoch: count("epoch")? as usize,
        loss: number("loss")? as f32,
        train_accuracy: number("train_accuracy")? as f32,
        test_loss: number("test_loss")? as f32,
        test_accuracy: number("test_accuracy")? as f32,
        train_samples: count("train_samples")? as usize,
        seconds: number("seconds")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::RunIdentity;
    use fashion_data::SplitMix64;

    fn spec() -> ModelSpec {
        ModelSpec::preset("baseline").unwrap()
    }

    /// A run of the baseline after two epochs, with awkward floats in its history.
    fn saved() -> SavedRun {
        let spec = spec();
        let mut rng = SplitMix64::new(3);
        let history = (1..=2)
            .map(|epoch| EpochStats {
                epoch,
                loss: rng.next_f32() * 3.0,
                train_accuracy: rng.next_f32(),
                test_loss: f32::MIN_POSITIVE * rng.next_f32(),
                test_accuracy: 1.0 / 3.0,
                train_samples: 2000,
                seconds: 1.0 / 7.0,
            })
            .collect();
        let state = TrainerState {
            run: RunIdentity {
                model: spec.name.clone(),
                seed: 1,
                batch: 100,
                kernels: "cpu".into(),
                metrics: "step".into(),
            },
            epoch: 2,
            global_step: 40,
            learning_rate: 1e-3,
            params: (0..spec.total_params()).map(|i| i as f32 * 1e-3).collect(),
            adam_m: vec![0.5; spec.trainable_params()],
            adam_v: vec![0.25; spec.trainable_params()],
        };
        SavedRun::new(&spec, "model=baseline&epochs=2".into(), history, state)
    }

    #[test]
    fn a_saved_run_round_trips_to_the_bit() {
        let run = saved();
        let back = SavedRun::from_bytes(&run.to_bytes()).unwrap();
        let bits = |r: &SavedRun| -> Vec<u32> {
            r.history
                .iter()
                .flat_map(|s| [s.loss, s.train_accuracy, s.test_loss, s.test_accuracy])
                .map(f32::to_bits)
                .collect()
        };
        assert_eq!(bits(&back), bits(&run));
        assert_eq!(back, run);
        assert!(back.check_model(&spec()).is_ok());
    }

    #[test]
    fn another_build_or_model_is_refused_by_name() {
        let run = saved();
        let older = SavedRun { build: "fashion-gpu 0.0.1".into(), ..run.clone() };
        let error = SavedRun::from_bytes(&older.to_bytes()).unwrap_err();
        assert!(matches!(error, SavedRunError::OtherBuild { .. }), "{error}");
        assert!(error.to_string().contains("fashion-gpu 0.0.1"), "{error}");

        let wider = ModelSpec::preset("dropout").unwrap();
        let error = run.check_model(&wider).unwrap_err();
        assert!(matches!(error, SavedRunError::OtherModel { .. }), "{error}");
        // The same name defined otherwise (here: another L2 factor) is another model too.
        let changed = spec().with_l2(0.5).unwrap();
        assert!(matches!(run.check_model(&changed), Err(SavedRunError::OtherModel { .. })));
    }

    #[test]
    fn damaged_bytes_are_named_and_never_panic() {
        let bytes = saved().to_bytes();
        assert_eq!(SavedRun::from_bytes(b"garbage"), Err(SavedRunError::NotASavedRun));
        for cut in (0..bytes.len()).step_by(997).chain([bytes.len() - 1]) {
            assert!(SavedRun::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped.truncate(last);
        assert!(matches!(SavedRun::from_bytes(&flipped), Err(SavedRunError::State(StateError::Truncated(_)))));
        // A history that does not match the state's epoch is refused, not half used.
        let short = SavedRun { history: saved().history[..1].to_vec(), ..saved() };
        assert!(matches!(SavedRun::from_bytes(&short.to_bytes()), Err(SavedRunError::Damaged(_))));
    }
}
