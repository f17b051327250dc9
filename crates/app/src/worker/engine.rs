//! The page's state and the one training loop behind it: load the data, build a trainer, run
//! epochs while reporting progress, and refresh the predictions after each. Beside it, by
//! responsibility: where training runs (`device`: the WebGPU device and its recovery, the
//! trainer on it or on the CPU, the stored kernel tunings), what the page shows of the current
//! weights (`predictions`: gallery, confusion matrix, explorer, the drawing's explanation),
//! weights files (`weights`) and keeping a run across pauses and reloads (`resume`).

use std::rc::Rc;
use std::sync::Arc;

use fashion_core::frontend::limit;
use fashion_core::{Allocations, Backend, EpochStats, GpuContext, ModelSpec, Progress, TrainError, Trainer};
use fashion_data::{Dataset, NUM_CLASSES};
use futures::channel::oneshot;
use futures::future::{select, Either};
use futures::lock::Mutex;
use leptos::prelude::*;
use leptos::task::spawn_local;

mod device;
mod predictions;
mod resume;
mod weights;

pub(crate) use device::{browser_adapter_info, browser_has_webgpu};
pub use predictions::{argmax, Explorer, GalleryItem};
pub use resume::{Found, RunKeeping};

use crate::data::{load_splits, Splits};
use crate::settings::{SettingNotice, Settings};

/// What the page is doing; shown as `data-testid="status"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The model being trained or used, with the data it is evaluated on.
pub(crate) struct Run {
    pub(crate) spec: ModelSpec,
    pub(crate) trainer: Mutex<Trainer>,
    pub(crate) test: Dataset,
    /// The settings it started with: what a saved run of it reproduces.
    pub(crate) settings: Settings,
}

/// Signals the components read, and the non-reactive state behind them. `Copy`: every field is
/// a handle.
#[derive(Clone, Copy)]
pub struct Session {
    pub settings: RwSignal<Settings>,
    pub status: RwSignal<Status>,
    pub error: RwSignal<Option<String>>,
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
    /// What the page holds on the GPU (`None` until a GPU is used); must not grow from one
    /// training to the next.
    pub gpu_allocations: RwSignal<Option<Allocations>>,
    /// The saved run (after each epoch, offered after a reload) and the pause switch.
    pub keeping: RunKeeping,
    run: StoredValue<Option<Rc<Run>>, LocalStorage>,
    splits: StoredValue<Option<Splits>, LocalStorage>,
    gpu: StoredValue<Option<Arc<GpuContext>>, LocalStorage>,
    /// What the browser says about its adapter (the adapter line, and the key of stored tunings).
    adapter_described: StoredValue<Option<String>>,
    /// The stored-tuning key to tune for once the current training is done (no stored tuning
    /// was found for it).
    pending_tuning: StoredValue<Option<String>>,
    stop: StoredValue<Option<oneshot::Sender<()>>, LocalStorage>,
    gallery_start: StoredValue<usize>,
    /// The current weights' probabilities for every test image, `[test images, classes]`.
    test_probs: StoredValue<Vec<f32>>,
}

impl Session {
    pub fn new(settings: Settings) -> Self {
        Session {
            class_names: RwSignal::new(settings.dataset.class_names()),
            settings: RwSignal::new(settings),
            status: RwSignal::new(Status::Idle),
            error: RwSignal::new(None),
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
            keeping: RunKeeping::new(),
            run: StoredValue::new_local(None),
            splits: StoredValue::new_local(None),
            gpu: StoredValue::new_local(None),
            adapter_described: StoredValue::new(None),
            pending_tuning: StoredValue::new(None),
            stop: StoredValue::new_local(None),
            gallery_start: StoredValue::new(0),
            test_probs: StoredValue::new(Vec::new()),
        }
    }

    pub fn start_training(self) {
        if self.status.get_untracked().busy() {
            return;
        }
        spawn_local(async move {
            if let Err(message) = self.train().await {
                self.fail(message);
            }
        });
    }

    /// Ends the running epoch early; the weights keep what they learnt so far.
    pub fn stop_training(self) {
        if let Some(stop) = self.stop.try_update_value(Option::take).flatten() {
            let _ = stop.send(());
        }
    }

    async fn train(self) -> Result<(), String> {
        self.reset();
        self.start_saving_anew().await;
        self.status.set(Status::Loading);
        let settings = self.settings.get_untracked();
        let spec = settings.model_spec().map_err(|e| e.to_string())?;
        let splits = self.load_data(&settings).await?;
        let train = limit(&splits.train, settings.train_limit);
        let test = limit(&splits.test, settings.test_limit);
        let trainer = self.make_trainer(&settings, &spec, &train, &test, None).await?;
        self.note_gpu_allocations();
        self.log(format!(
            "Training `{}` on {} ({} training / {} test images), {} backend, batch {}, lr {}, train figures: {}",
            spec.name,
            settings.dataset,
            train.len(),
            test.len(),
            trainer.backend().as_str(),
            settings.batch,
            settings.learning_rate,
            settings.metrics.as_str()
        ));
        let run = Rc::new(Run { spec, trainer: Mutex::new(trainer), test, settings: settings.clone() });
        self.run.set_value(Some(run.clone()));
        self.train_epochs(&run, settings.epochs).await?;
        self.tune_for_next_time(&run.spec, settings.batch).await;
        Ok(())
    }

    /// After a divergence: the same model, from its last good weights, with the learning rate
    /// now in the settings, for the epochs still to go.
    pub fn continue_training(self) {
        if self.status.get_untracked().busy() || !self.can_continue.get_untracked() {
            return;
        }
        spawn_local(async move {
            if let Err(message) = self.resume().await {
                self.fail(message);
            }
        });
    }

    async fn resume(self) -> Result<(), String> {
        let run = self.run.get_value().ok_or("there is no model to continue")?;
        let settings = self.settings.get_untracked();
        run.trainer.lock().await.set_learning_rate(settings.learning_rate).map_err(|e| e.to_string())?;
        self.error.set(None);
        self.can_continue.set(false);
        self.log(format!("Continuing from the last good weights with lr {}", settings.learning_rate));
        let remaining = settings.epochs.saturating_sub(self.history.with_untracked(Vec::len)).max(1);
        self.train_epochs(&run, remaining).await
    }

    async fn train_epochs(self, run: &Rc<Run>, epochs: usize) -> Result<(), String> {
        self.status.set(Status::Training);
        // A pause asked for before (then Stop) does not carry over.
        self.resume_training();
        let (stop, mut stopped) = oneshot::channel();
        self.stop.set_value(Some(stop));
        for _ in 0..epochs {
            let outcome = {
                let mut trainer = run.trainer.lock().await;
                let epoch = std::pin::pin!(self.pausable(trainer.run_epoch(|p| self.on_progress(p))));
                match select(epoch, &mut stopped).await {
                    Either::Left((Ok(stats), _)) => Some(stats),
                    Either::Left((Err(error), _)) => {
                        self.can_continue.set(matches!(error, TrainError::Diverged { .. }));
                        return Err(error.to_string());
                    }
                    Either::Right(_) => None,
                }
            };
            let Some(stats) = outcome else {
                self.log("Stopped; the model keeps what it learnt so far.".into());
                break;
            };
            self.history.update(|h| h.push(stats));
            self.log(format!("{}  ({:.0} samples/s)", stats.study_line(), stats.samples_per_second()));
            self.save_run(run).await;
            self.model_ready.set(true);
            self.refresh_predictions(run).await?;
            self.note_gpu_allocations();
        }
        self.stop.set_value(None);
        if self.history.with_untracked(Vec::len) >= run.settings.epochs {
            self.forget_saved_run().await;
        }
        self.model_ready.set(true);
        if self.gallery.with_untracked(Vec::is_empty) {
            self.refresh_predictions(run).await?;
        }
        self.status.set(Status::Done);
        Ok(())
    }

    pub(crate) fn reset(self) {
        self.error.set(None);
        self.can_continue.set(false);
        self.progress.set(None);
        self.history.set(Vec::new());
        self.gallery.set(Vec::new());
        self.confusion.set(None);
        self.explorer.set(None);
        self.weight_images.set(None);
        self.test_probs.set_value(Vec::new());
        self.model_ready.set(false);
        self.run.set_value(None);
        self.note_gpu_allocations();
        self.class_names.set(self.settings.get_untracked().dataset.class_names());
    }

    pub(crate) fn fail(self, message: String) {
        self.log(format!("Error: {message}"));
        self.error.set(Some(message));
        self.stop.set_value(None);
        self.status.set(Status::Error);
    }

    pub fn log(self, line: String) {
        self.log.update(|log| log.push(line));
    }

    fn on_progress(self, progress: &Progress) {
        if self.first_step_ms.get_untracked().is_none() {
            self.first_step_ms.set(now_ms());
        }
        self.keeping.chunk_done();
        self.progress.set(Some(*progress));
    }

    pub(crate) async fn load_data(self, settings: &Settings) -> Result<Splits, String> {
        let cached = self.splits.with_value(|s| {
            s.as_ref().filter(|s| s.name == settings.dataset && s.data_url == settings.data_url).cloned()
        });
        if let Some(splits) = cached {
            return Ok(splits);
        }
        self.log(format!("Loading {} from {}", settings.dataset, settings.data_url));
        let splits = load_splits(&settings.data_url, settings.dataset).await.map_err(|e| e.to_string())?;
        self.splits.set_value(Some(splits.clone()));
        Ok(splits)
    }

    /// Makes `run`, trained elsewhere (the study mode) for `history`, the model the page shows:
    /// its epochs, predictions, confusion matrix, weights and draw pad.
    pub(crate) async fn show(self, run: Rc<Run>, history: Vec<EpochStats>) -> Result<(), String> {
        self.history.set(history);
        self.run.set_value(Some(run.clone()));
        self.model_ready.set(true);
        self.refresh_predictions(&run).await
    }
}

/// Milliseconds since the page started loading.
pub fn now_ms() -> Option<f64> {
    Some(web_sys::window()?.performance()?.now())
}
