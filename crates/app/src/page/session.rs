//! What the page shows, as signals the components read, and the remote control behind its
//! buttons: every action is a [`Command`] to the training worker ([`crate::worker`]), and every
//! [`Event`] it sends back sets the signal it names ([`Session::apply`]). Nothing here computes.

use std::rc::Rc;

pub use fashion_core::reference::argmax;
use fashion_core::{Allocations, Backend, EpochStats, Explanation, Progress};
use fashion_data::NUM_CLASSES;
use fashion_interop::Format;
use futures::channel::oneshot;
use leptos::prelude::*;

use super::link::{WorkerBuild, WorkerLink};
use super::study::StudySession;
use crate::protocol::{Command, Event};
pub use crate::protocol::{Explorer, Found, GalleryItem, Status};
use crate::settings::{SettingNotice, Settings};

/// The saved run the worker found and what saving says; `Copy`: every field is a handle.
#[derive(Clone, Copy)]
pub struct RunKeeping {
    pub found: RwSignal<Option<Found>>,
    /// Why the current run is not being saved, when it is not (storage full or missing).
    pub storage_notice: RwSignal<Option<String>>,
}

/// A request to the worker waiting for its answer.
type Waiting<T> = StoredValue<Option<oneshot::Sender<T>>, LocalStorage>;

/// The newest drawing's request (its id) waiting for its explanation.
type WaitingExplanation = StoredValue<Option<(u32, oneshot::Sender<Option<Explanation>>)>, LocalStorage>;

/// Signals the components read, and the link to the worker. `Copy`: every field is a handle.
#[derive(Clone, Copy)]
pub struct Session {
    pub settings: RwSignal<Settings>,
    pub status: RwSignal<Status>,
    pub error: RwSignal<Option<String>>,
    /// A command the worker did not carry out, and why; what was running goes on.
    pub refused: RwSignal<Option<String>>,
    /// Why training runs on the CPU although the GPU was asked for.
    pub gpu_notice: RwSignal<Option<String>>,
    /// Settings of the page's link it could not use (and what it used instead).
    pub settings_notices: RwSignal<Vec<SettingNotice>>,
    pub backend: RwSignal<Option<Backend>>,
    pub adapter: RwSignal<Option<String>>,
    pub progress: RwSignal<Option<Progress>>,
    pub history: RwSignal<Vec<EpochStats>>,
    pub log: RwSignal<Vec<String>>,
    /// Milliseconds from page load to the first reported training step.
    pub first_step_ms: RwSignal<Option<f64>>,
    pub gallery: RwSignal<Vec<GalleryItem>>,
    /// `confusion[true * 10 + predicted]` counts over the test set.
    pub confusion: RwSignal<Option<Vec<u32>>>,
    /// The test images of one confusion cell, most confident first (the error explorer).
    pub explorer: RwSignal<Option<Explorer>>,
    /// The first layer's weights per unit (or filter) as `side × side` images in [-1, 1].
    pub weight_images: RwSignal<Option<(usize, Vec<Vec<f32>>)>>,
    pub class_names: RwSignal<[&'static str; NUM_CLASSES]>,
    /// A trained or loaded model can predict.
    pub model_ready: RwSignal<bool>,
    /// Training stopped because the loss blew up; the last good weights are kept and training
    /// can continue (with a lower learning rate) from them.
    pub can_continue: RwSignal<bool>,
    /// What the worker holds on the GPU (`None` until a GPU is used); must not grow from one
    /// training to the next.
    pub gpu_allocations: RwSignal<Option<Allocations>>,
    pub keeping: RunKeeping,
    /// The benchmark's summary and JSON line (`?bench=1`).
    pub bench: RwSignal<Option<Result<(String, String), String>>>,
    study: StudySession,
    link: StoredValue<Option<Rc<WorkerLink>>, LocalStorage>,
    next_request: StoredValue<u32>,
    explanation: WaitingExplanation,
    weights_file: Waiting<Result<(String, Vec<u8>), String>>,
}

impl Session {
    pub fn new(settings: Settings, study: StudySession) -> Self {
        Session {
            class_names: RwSignal::new(settings.dataset.class_names()),
            settings: RwSignal::new(settings),
            status: RwSignal::new(Status::Idle),
            error: RwSignal::new(None),
            refused: RwSignal::new(None),
            gpu_notice: RwSignal::new(None),
            settings_notices: RwSignal::new(Vec::new()),
            backend: RwSignal::new(None),
            adapter: RwSignal::new(None),
            progress: RwSignal::new(None),
            history: RwSignal::new(Vec::new()),
            log: RwSignal::new(Vec::new()),
            first_step_ms: RwSignal::new(None),
            gallery: RwSignal::new(Vec::new()),
            confusion: RwSignal::new(None),
            explorer: RwSignal::new(None),
            weight_images: RwSignal::new(None),
            model_ready: RwSignal::new(false),
            can_continue: RwSignal::new(false),
            gpu_allocations: RwSignal::new(None),
            keeping: RunKeeping { found: RwSignal::new(None), storage_notice: RwSignal::new(None) },
            bench: RwSignal::new(None),
            study,
            link: StoredValue::new_local(None),
            next_request: StoredValue::new(0),
            explanation: StoredValue::new_local(None),
            weights_file: StoredValue::new_local(None),
        }
    }

    /// Sends `command` to the worker, starting one if there is none (or the last one died).
    pub(crate) fn send(self, command: Command) {
        let alive = self.link.with_value(|link| link.as_ref().is_some_and(|l| !l.failed()));
        if !alive {
            let build = WorkerBuild::choose(self.settings.with_untracked(|settings| settings.threads));
            let link = WorkerLink::start(build, move |event| self.apply(event), move |why| self.worker_failed(why));
            // The worker takes over tunings an older build kept in this page's localStorage.
            link.send(Command::Hello { stored_tunings: stored_tunings() });
            self.link.set_value(Some(link));
        }
        self.link.with_value(|link| {
            if let Some(link) = link {
                link.send(command);
            }
        });
    }

    fn settings_query(self) -> String {
        self.settings.with_untracked(Settings::to_query)
    }

    pub fn start_training(self) {
        self.refused.set(None);
        self.send(Command::Train { settings: self.settings_query() });
    }

    /// Ends the running epoch (or the study's) early; the weights keep what they learnt so far.
    pub fn stop_training(self) {
        self.send(Command::Stop);
    }

    /// Asks the running epoch to hold after its current chunk.
    pub fn pause_training(self) {
        if self.status.get_untracked() == Status::Training {
            self.send(Command::Pause);
        }
    }

    pub fn resume_training(self) {
        self.send(Command::Resume);
    }

    /// After a divergence: the same model from its last good weights, with the rate now set.
    pub fn continue_training(self) {
        if self.can_continue.get_untracked() {
            self.send(Command::Continue { settings: self.settings_query() });
        }
    }

    /// Uses weights from a `.safetensors` file instead of training.
    pub fn load_weights(self, bytes: Vec<u8>) {
        self.refused.set(None);
        self.send(Command::LoadWeights { settings: self.settings_query(), bytes });
    }

    /// The current model as `.safetensors`, or exported as `export`, named after the model.
    pub async fn weights_file(self, export: Option<Format>) -> Result<(String, Vec<u8>), String> {
        let (answer, answered) = oneshot::channel();
        self.weights_file.set_value(Some(answer));
        self.send(Command::SaveWeights { export });
        answered.await.map_err(|_| "the training worker stopped before answering".to_string())?
    }

    /// Shows 15 other test images.
    pub fn another_batch(self) {
        self.send(Command::AnotherBatch);
    }

    /// Opens the error explorer on the test images of true class `truth` predicted as
    /// `predicted`, most confident first.
    pub fn explore(self, truth: usize, predicted: usize) {
        self.send(Command::Explore { truth, predicted });
    }

    /// Class probabilities for one 28×28 image with every layer's activations and the saliency,
    /// when a model is ready (during training: the last finished epoch's weights). A newer
    /// request replaces one still waiting.
    pub async fn explain_one(self, pixels: &[f32]) -> Option<Explanation> {
        if !self.model_ready.get_untracked() {
            return None;
        }
        let id = self.next_request.get_value().wrapping_add(1);
        self.next_request.set_value(id);
        let (answer, answered) = oneshot::channel();
        self.explanation.set_value(Some((id, answer)));
        self.send(Command::Explain { id, pixels: pixels.to_vec() });
        answered.await.ok().flatten()
    }

    /// Asks the worker for a run saved by an earlier visit; it offers it, or starts the link's
    /// training (`autostart`) unless the saved run is this link's own.
    pub fn look_for_saved_run(self, autostart: bool) {
        self.send(Command::LookForSavedRun { settings: self.settings_query(), autostart });
    }

    pub fn resume_saved_run(self) {
        self.send(Command::ResumeSavedRun);
    }

    pub fn discard_saved_run(self) {
        self.send(Command::DiscardSavedRun);
    }

    pub fn run_bench(self) {
        self.send(Command::Bench { settings: self.settings_query() });
    }

    /// Test hook (`?test_hooks=1`): the worker destroys its WebGPU device.
    pub fn lose_device(self) {
        self.send(Command::LoseDevice);
    }

    /// Test hook: posts `value` to the worker as it is (a message of no known kind or build).
    pub fn post_raw(self, value: &wasm_bindgen::JsValue) {
        self.link.with_value(|link| {
            if let Some(link) = link {
                link.post_raw(value);
            }
        });
    }

    pub fn log(self, line: String) {
        self.log.update(|log| log.push(line));
    }

    /// The worker is gone: named as an error, and nothing waits on it.
    fn worker_failed(self, why: String) {
        self.log(format!("Error: {why}"));
        self.error.set(Some(why));
        self.status.set(Status::Error);
        self.explanation.set_value(None);
        self.weights_file.set_value(None);
    }

    /// Shows what the worker says.
    fn apply(self, event: Event) {
        match event {
            Event::Ready => {}
            Event::Status(status) => self.status.set(status),
            Event::Error(error) => self.error.set(error),
            Event::Refused(why) => {
                self.log(format!("Not done: {why}"));
                self.refused.set(Some(why));
            }
            Event::GpuNotice(notice) => self.gpu_notice.set(notice),
            Event::Reset => self.reset(),
            Event::Settings(query) => {
                let settings = Settings::from_query(&query);
                self.class_names.set(settings.dataset.class_names());
                self.settings.set(settings);
            }
            Event::Backend(backend) => self.backend.set(backend),
            Event::Adapter(adapter) => self.adapter.set(adapter),
            Event::Progress(progress) => {
                if progress.is_some() && self.first_step_ms.get_untracked().is_none() {
                    self.first_step_ms.set(now_ms());
                }
                self.progress.set(progress);
            }
            Event::History(history) => self.history.set(history),
            Event::Log(line) => self.log(line),
            Event::Gallery(items) => self.gallery.set(items),
            Event::Confusion(confusion) => self.confusion.set(confusion),
            Event::Explorer(explorer) => self.explorer.set(explorer),
            Event::WeightImages(images) => self.weight_images.set(images),
            Event::ModelReady(ready) => self.model_ready.set(ready),
            Event::CanContinue(can) => self.can_continue.set(can),
            Event::GpuAllocations(allocations) => self.gpu_allocations.set(allocations),
            Event::Found(found) => self.keeping.found.set(found),
            Event::StorageNotice(notice) => self.keeping.storage_notice.set(notice),
            Event::Study(study) => self.study.study.set(study),
            Event::StudyProgress(progress) => self.study.progress.set(progress),
            Event::StudyShown(model) => self.study.shown.set(model),
            Event::Explained { id, explanation } => {
                let waiting = self.explanation.try_update_value(Option::take).flatten();
                match waiting {
                    Some((waiting_id, answer)) if waiting_id == id => drop(answer.send(explanation)),
                    // An older request's answer: the newer one still waits.
                    other => self.explanation.set_value(other),
                }
            }
            Event::WeightsFile(file) => {
                if let Some(answer) = self.weights_file.try_update_value(Option::take).flatten() {
                    let _ = answer.send(file);
                }
            }
            Event::Bench(report) => self.bench.set(Some(report)),
        }
    }

    /// A new model: nothing of the last one stays on the page.
    fn reset(self) {
        self.progress.set(None);
        self.history.set(Vec::new());
        self.gallery.set(Vec::new());
        self.confusion.set(None);
        self.explorer.set(None);
        self.weight_images.set(None);
        self.model_ready.set(false);
        self.class_names.set(self.settings.get_untracked().dataset.class_names());
    }
}

/// Milliseconds since the page started loading.
pub fn now_ms() -> Option<f64> {
    Some(web_sys::window()?.performance()?.now())
}

/// Where builds before the worker kept kernel tunings: the page's `localStorage`, one entry per
/// tuning key under this prefix, the choice as a JSON string (gloo-storage's form).
const OLD_TUNING_PREFIX: &str = "fashion-gpu kernels: ";

/// Those older tunings as (key, choice text), for the worker to take over.
fn stored_tunings() -> Vec<(String, String)> {
    let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) else { return Vec::new() };
    let count = storage.length().unwrap_or(0);
    (0..count)
        .filter_map(|i| storage.key(i).ok().flatten())
        .filter_map(|name| {
            let key = name.strip_prefix(OLD_TUNING_PREFIX)?.to_string();
            let value = storage.get_item(&name).ok().flatten()?;
            let choice = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(&value).to_string();
            Some((key, choice))
        })
        .collect()
}
