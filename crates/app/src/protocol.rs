//! The messages between the page and its training worker, compiled into both.
//!
//! The page is a view and a remote control: it sends [`Command`]s and renders the [`Event`]s the
//! worker sends back. The worker owns everything that computes (datasets, trainers, the study,
//! predictions, saved runs, kernel tunings). Settings cross as the page's query string
//! ([`crate::settings::Settings::to_query`]), which is also what reproduces a run.
//!
//! On the wire a message is a plain object `{ protocol, kind, payload }`: `protocol` is
//! [`PROTOCOL`] (the version and a fingerprint of this file, so a page and a worker of different
//! builds refuse each other by name), `kind` the variant's name (for error messages only), and
//! `payload` an `ArrayBuffer` holding the message in postcard's binary form, *transferred*, not
//! copied: pixels, weights and figures never cross as JSON arrays.

use fashion_core::study::Study;
use fashion_core::{Allocations, Backend, EpochStats, Explanation, Progress};
use fashion_interop::Format;
use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

/// The protocol's version and the fingerprint of this file (set by `build.rs`): any change to
/// the messages makes another protocol.
pub const PROTOCOL: &str = concat!("fashion-gpu protocol 1/", env!("FASHION_PROTOCOL_FINGERPRINT"));

/// The training worker's name (`new Worker(…, { name })`): the threaded build's helper workers
/// load the same module, and only the worker of this name starts the engine.
pub const WORKER_NAME: &str = "fashion-gpu training";

/// What the page asks of the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// The page's first message: kernel tunings an earlier build kept in the page's
    /// `localStorage` (`key`, `choice`), which the worker adopts where it has none.
    Hello {
        stored_tunings: Vec<(String, String)>,
    },
    /// Trains a new model with these settings.
    Train {
        settings: String,
    },
    /// Ends the running epoch (or the study's) early.
    Stop,
    Pause,
    Resume,
    /// After a divergence: goes on from the last good weights with these settings' rate.
    Continue {
        settings: String,
    },
    /// Uses a weights file instead of training: our `.safetensors`, or a Keras `.keras` model.
    LoadWeights {
        settings: String,
        bytes: Vec<u8>,
    },
    /// The current model as a file ([`Event::WeightsFile`]): our `.safetensors`, or exported
    /// in a format another tool loads.
    SaveWeights {
        export: Option<Format>,
    },
    /// 15 other test images in the gallery.
    AnotherBatch,
    /// Opens the error explorer on one confusion cell.
    Explore {
        truth: usize,
        predicted: usize,
    },
    /// Classifies and explains one drawing ([`Event::Explained`] with the same `id`).
    Explain {
        id: u32,
        pixels: Vec<f32>,
    },
    /// Looks for a saved run; starts these settings' training when `autostart` and it is not
    /// this link's own run.
    LookForSavedRun {
        settings: String,
        autostart: bool,
    },
    ResumeSavedRun,
    DiscardSavedRun,
    /// Trains the settings' study models side by side.
    Study {
        settings: String,
    },
    /// Shows this study model in the rest of the page.
    ShowStudyModel {
        model: String,
    },
    /// The training benchmark (`?bench=1`).
    Bench {
        settings: String,
    },
    /// Test hook (`?test_hooks=1` only): destroys the WebGPU device, as a driver reset would.
    LoseDevice,
}

/// What the page does ([`Event::Status`]); shown as `data-testid="status"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Idle,
    Loading,
    Training,
    /// Training holds between two chunks (Pause) until Resume.
    Paused,
    Done,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Idle => "idle",
            Status::Loading => "loading",
            Status::Training => "training",
            Status::Paused => "paused",
            Status::Done => "done",
            Status::Error => "error",
        }
    }

    pub fn busy(self) -> bool {
        matches!(self, Status::Loading | Status::Training | Status::Paused)
    }
}

/// What the worker found saved when the page loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Found {
    /// A run it can go on with, in words (`baseline on fashion, 1 of 2 epochs`).
    Resumable(String),
    /// A saved run it will not use, and why.
    Refused(String),
}

/// One test image with the model's opinion of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryItem {
    pub index: usize,
    pub pixels: Vec<u8>,
    pub label: usize,
    pub probs: Vec<f32>,
}

/// The test images of one confusion cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explorer {
    pub truth: usize,
    pub predicted: usize,
    /// Test images in the cell (the items are the most confident ones).
    pub total: usize,
    pub items: Vec<GalleryItem>,
}

/// What the worker tells the page. Each event replaces what the page shows of one thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The worker listens (its answer to nothing: sent once it started).
    Ready,
    Status(Status),
    /// The error the page shows, or none.
    Error(Option<String>),
    /// A command the worker did not carry out, and why (a second Train during a run); what
    /// was running goes on.
    Refused(String),
    /// Why training runs on the CPU although the GPU was asked for.
    GpuNotice(Option<String>),
    /// A new model: the page clears its figures (the settings' dataset names the classes).
    Reset,
    /// The worker changed the settings (a weights file's model, a resumed run's link).
    Settings(String),
    Backend(Option<Backend>),
    Adapter(Option<String>),
    Progress(Option<Progress>),
    History(Vec<EpochStats>),
    Log(String),
    Gallery(Vec<GalleryItem>),
    /// `confusion[true * 10 + predicted]` over the test set.
    Confusion(Option<Vec<u32>>),
    Explorer(Option<Explorer>),
    /// The first layer's weights per unit as `side × side` images in [-1, 1].
    WeightImages(Option<(usize, Vec<Vec<f32>>)>),
    ModelReady(bool),
    CanContinue(bool),
    GpuAllocations(Option<Allocations>),
    Found(Option<Found>),
    /// Why the current run is not being saved, when it is not.
    StorageNotice(Option<String>),
    Study(Option<Study>),
    /// Each study run's place in its epoch.
    StudyProgress(Vec<Option<Progress>>),
    /// The study model the rest of the page shows.
    StudyShown(Option<String>),
    /// The answer to [`Command::Explain`] `id`; `None` when no model can explain yet.
    Explained {
        id: u32,
        explanation: Option<Explanation>,
    },
    /// The answer to [`Command::SaveWeights`]: a file name and its bytes.
    WeightsFile(Result<(String, Vec<u8>), String>),
    /// The benchmark's summary and JSON line, or why it failed.
    Bench(Result<(String, String), String>),
}

impl Command {
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Hello { .. } => "hello",
            Command::Train { .. } => "train",
            Command::Stop => "stop",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Continue { .. } => "continue",
            Command::LoadWeights { .. } => "load-weights",
            Command::SaveWeights { .. } => "save-weights",
            Command::AnotherBatch => "another-batch",
            Command::Explore { .. } => "explore",
            Command::Explain { .. } => "explain",
            Command::LookForSavedRun { .. } => "look-for-saved-run",
            Command::ResumeSavedRun => "resume-saved-run",
            Command::DiscardSavedRun => "discard-saved-run",
            Command::Study { .. } => "study",
            Command::ShowStudyModel { .. } => "show-study-model",
            Command::Bench { .. } => "bench",
            Command::LoseDevice => "lose-device",
        }
    }
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Ready => "ready",
            Event::Status(_) => "status",
            Event::Error(_) => "error",
            Event::Refused(_) => "refused",
            Event::GpuNotice(_) => "gpu-notice",
            Event::Reset => "reset",
            Event::Settings(_) => "settings",
            Event::Backend(_) => "backend",
            Event::Adapter(_) => "adapter",
            Event::Progress(_) => "progress",
            Event::History(_) => "history",
            Event::Log(_) => "log",
            Event::Gallery(_) => "gallery",
            Event::Confusion(_) => "confusion",
            Event::Explorer(_) => "explorer",
            Event::WeightImages(_) => "weight-images",
            Event::ModelReady(_) => "model-ready",
            Event::CanContinue(_) => "can-continue",
            Event::GpuAllocations(_) => "gpu-allocations",
            Event::Found(_) => "found",
            Event::StorageNotice(_) => "storage-notice",
            Event::Study(_) => "study",
            Event::StudyProgress(_) => "study-progress",
            Event::StudyShown(_) => "study-shown",
            Event::Explained { .. } => "explained",
            Event::WeightsFile(_) => "weights-file",
            Event::Bench(_) => "bench",
        }
    }
}

/// Why a message was not understood; the message is dropped, nothing of it applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("a message of another build ({found}; this one speaks {PROTOCOL}): reload the page")]
    OtherBuild { found: String },
    #[error("a message of an unknown kind `{kind}` ({reason})")]
    Unknown { kind: String, reason: String },
    #[error("a message that is not one of fashion-gpu's ({0})")]
    Malformed(String),
}

/// A message ready to post: the envelope and the buffer to transfer with it.
pub struct Posted {
    pub envelope: JsValue,
    pub transfer: Array,
}

/// Wraps `message` into its envelope, its payload in a buffer of its own to transfer.
pub fn encode<M: Serialize>(kind: &str, message: &M) -> Posted {
    let bytes = to_payload(message);
    let payload = Uint8Array::new_with_length(bytes.len() as u32);
    payload.copy_from(&bytes);
    let envelope = Object::new();
    let set = |key: &str, value: &JsValue| {
        let _ = Reflect::set(&envelope, &key.into(), value);
    };
    set("protocol", &PROTOCOL.into());
    set("kind", &kind.into());
    set("payload", &payload.buffer());
    Posted { envelope: envelope.into(), transfer: Array::of1(&payload.buffer()) }
}

/// Reads an envelope of this protocol back into its message.
pub fn decode<M: DeserializeOwned>(envelope: &JsValue) -> Result<M, ProtocolError> {
    let field = |key: &str| Reflect::get(envelope, &key.into()).ok().filter(|v| !v.is_undefined());
    let protocol = field("protocol")
        .and_then(|p| p.as_string())
        .ok_or_else(|| ProtocolError::Malformed("no `protocol` field".into()))?;
    if protocol != PROTOCOL {
        return Err(ProtocolError::OtherBuild { found: protocol });
    }
    let kind = field("kind").and_then(|k| k.as_string()).unwrap_or_else(|| "(none)".into());
    let payload: ArrayBuffer = field("payload")
        .and_then(|p| p.dyn_into().ok())
        .ok_or_else(|| ProtocolError::Malformed(format!("`{kind}` has no payload buffer")))?;
    from_payload(&kind, &Uint8Array::new(&payload).to_vec())
}

/// A message's payload bytes (postcard). Encoding into a `Vec` cannot fail for these types: no
/// maps, no sequences of unknown length.
pub fn to_payload<M: Serialize>(message: &M) -> Vec<u8> {
    postcard::to_allocvec(message).unwrap_or_default()
}

/// The message in `bytes`, which must be exactly one message of type `M`.
pub fn from_payload<M: DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<M, ProtocolError> {
    let unknown = |reason: String| ProtocolError::Unknown { kind: kind.to_string(), reason };
    match postcard::take_from_bytes(bytes) {
        Ok((message, [])) => Ok(message),
        Ok((_, rest)) => Err(unknown(format!("{} bytes past its end", rest.len()))),
        Err(error) => Err(unknown(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_whole_and_anything_else_is_named() {
        let explain = Command::Explain { id: 7, pixels: vec![0.0, 0.5, 1.0] };
        assert_eq!(from_payload::<Command>("explain", &to_payload(&explain)), Ok(explain));
        let event = Event::Explained { id: 7, explanation: None };
        assert_eq!(from_payload::<Event>("explained", &to_payload(&event)), Ok(event));

        // A variant this build does not have (as a newer build would send).
        let unknown = from_payload::<Command>("warp", &[200]).unwrap_err().to_string();
        assert!(unknown.contains("unknown kind `warp`"), "{unknown}");
        let mut long = to_payload(&Command::Stop);
        long.push(0);
        let trailing = from_payload::<Command>("stop", &long).unwrap_err().to_string();
        assert!(trailing.contains("1 bytes past its end"), "{trailing}");
        let cut = to_payload(&Command::Train { settings: "epochs=2".into() });
        assert!(from_payload::<Command>("train", &cut[..cut.len() - 1]).is_err());
    }

    #[test]
    fn the_protocol_names_its_fingerprint() {
        let fingerprint = PROTOCOL.rsplit('/').next().unwrap();
        assert_eq!(fingerprint.len(), 16, "{PROTOCOL}");
        assert!(fingerprint.chars().all(|c| c.is_ascii_hexdigit()), "{PROTOCOL}");
    }
}
