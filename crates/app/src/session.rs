//! The page's state and the one training loop behind it: load the data, build a GPU (or CPU)
//! trainer, run epochs while reporting progress, and refresh the predictions after each.

use std::rc::Rc;
use std::sync::Arc;

use fashion_core::frontend::{first_layer_weight_images, limit, trainer_with_cpu_fallback, weights_for_any_preset};
use fashion_core::gpu::autotune::{autotune, tunes_by_default, tuning_key};
use fashion_core::gpu::ops::KernelChoice;
use fashion_core::platform::yield_now;
use fashion_core::weights::to_safetensors;
use fashion_core::{
    Allocations, Backend, EpochStats, Explanation, GpuContext, ModelSpec, Progress, TrainError, Trainer,
};
use fashion_data::{Dataset, NUM_CLASSES, PIXELS_PER_IMAGE};
use futures::channel::oneshot;
use futures::future::{select, Either};
use futures::lock::Mutex;
use gloo_storage::Storage as _;
use leptos::prelude::*;
use leptos::task::spawn_local;

mod resume;

pub use resume::{Found, RunKeeping};

use crate::data::{load_splits, Splits};
use crate::settings::{BackendChoice, SettingNotice, Settings};

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

pub const GALLERY_SIZE: usize = 15;
/// Test images the error explorer shows of one confusion cell.
pub const EXPLORER_SIZE: usize = 30;
/// Rows per forward pass when predicting the whole test set.
const GPU_PREDICT_CHUNK: usize = 1000;
const CPU_PREDICT_CHUNK: usize = 250;

/// One test image with the model's opinion of it.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryItem {
    pub index: usize,
    pub pixels: Vec<u8>,
    pub label: usize,
    pub probs: Vec<f32>,
}

/// The test images of one confusion cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Explorer {
    pub truth: usize,
    pub predicted: usize,
    /// Test images in the cell (the items are the most confident [`EXPLORER_SIZE`]).
    pub total: usize,
    pub items: Vec<GalleryItem>,
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

    /// Times the kernel variants on this model's shapes and batch, after training (never
    /// before a first step), and stores the winners for the next training on this adapter.
    async fn tune_for_next_time(self, spec: &ModelSpec, batch: usize) {
        let (Some(key), Some(gpu)) = (self.pending_tuning.get_value(), self.gpu.get_value()) else {
            return;
        };
        self.pending_tuning.set_value(None);
        match autotune(&gpu, spec, batch).await {
            Ok(tuning) => {
                store_tuning(&key, &tuning.choice);
                self.log(format!("Kernels tuned for the next training on this adapter: {}", tuning.choice));
            }
            Err(error) => self.log(format!("Kernel tuning failed ({error}); the adapter's set stays")),
        }
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

    /// Reads what the GPU context holds now (the previous model's buffers are gone once its run
    /// is dropped).
    pub(crate) fn note_gpu_allocations(self) {
        let allocations = self.gpu.with_value(|gpu| gpu.as_ref().map(|gpu| gpu.allocations()));
        self.gpu_allocations.set(allocations);
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

    /// A GPU trainer where WebGPU works, otherwise a CPU one (and the banner says why).
    pub(crate) async fn make_trainer(
        self,
        settings: &Settings,
        spec: &ModelSpec,
        train: &Dataset,
        test: &Dataset,
        // The kernels a resumed run started with; otherwise a stored tuning or the adapter's set.
        resumed_kernels: Option<KernelChoice>,
    ) -> Result<Trainer, String> {
        let gpu = match settings.backend {
            BackendChoice::Cpu => Err("The CPU backend was chosen (backend=cpu).".to_string()),
            BackendChoice::Gpu => self.gpu_context().await,
        };
        // Tuned kernels: stored by an earlier visit (never timed before the first step), or
        // timed once this training is done, for the next.
        self.pending_tuning.set_value(None);
        let mut stored = None;
        if let Some(kernels) = resumed_kernels {
            stored = Some(kernels);
        } else if let Ok(ctx) = &gpu {
            if settings.autotune.unwrap_or_else(|| tunes_by_default(&ctx.adapter)) {
                let described = self.adapter_described.get_value().unwrap_or_else(|| ctx.adapter.to_string());
                let key = tuning_key(&described, spec, settings.batch);
                stored = stored_tuning(&key);
                if stored.is_none() {
                    self.pending_tuning.set_value(Some(key));
                }
            }
        }
        let (trainer, why_cpu) = trainer_with_cpu_fallback(
            gpu,
            stored,
            spec,
            settings.train_config(true).map_err(|e| e.to_string())?,
            settings.train_config(false).map_err(|e| e.to_string())?,
            train,
            test,
        )
        .map_err(|e| e.to_string())?;
        if settings.backend == BackendChoice::Gpu {
            self.gpu_notice.set(why_cpu);
        }
        if let (Some(kernels), Some(described)) = (trainer.kernels(), self.adapter_described.get_value()) {
            let how = match (resumed_kernels.is_some(), stored.is_some()) {
                (true, _) => ", as the resumed run started",
                (false, true) => ", tuned on an earlier visit",
                (false, false) => "",
            };
            self.adapter.set(Some(format!("{described} · {kernels} kernels{how}")));
        }
        self.backend.set(Some(trainer.backend()));
        Ok(trainer)
    }

    async fn gpu_context(self) -> Result<Arc<GpuContext>, String> {
        if let Some(gpu) = self.gpu.get_value() {
            match gpu.lost() {
                None => return Ok(gpu),
                // Training restarts without reloading the page: a fresh adapter and device.
                Some(reason) => {
                    self.log(format!("The GPU device was lost ({reason}); asking for a new one"));
                    self.gpu.set_value(None);
                }
            }
        }
        if !browser_has_webgpu() {
            let secure = web_sys::window().is_some_and(|w| w.is_secure_context());
            return Err(if secure {
                "This browser does not offer WebGPU (navigator.gpu is missing).".into()
            } else {
                "WebGPU needs a secure context: open the page over https or from localhost.".into()
            });
        }
        // The core's trainer takes an `Arc`; on the web (one thread) WebGPU handles are !Send.
        #[allow(clippy::arc_with_non_send_sync)]
        let gpu = Arc::new(GpuContext::new().await.map_err(|e| e.to_string())?);
        let described = browser_adapter_info().await.unwrap_or_else(|| gpu.adapter.to_string());
        self.adapter.set(Some(described.clone()));
        self.adapter_described.set_value(Some(described));
        self.gpu.set_value(Some(gpu.clone()));
        Ok(gpu)
    }

    /// Makes `run`, trained elsewhere (the study mode) for `history`, the model the page shows:
    /// its epochs, predictions, confusion matrix, weights and draw pad.
    pub(crate) async fn show(self, run: Rc<Run>, history: Vec<EpochStats>) -> Result<(), String> {
        self.history.set(history);
        self.run.set_value(Some(run.clone()));
        self.model_ready.set(true);
        self.refresh_predictions(&run).await
    }

    /// The gallery and the confusion matrix for the current weights.
    async fn refresh_predictions(self, run: &Run) -> Result<(), String> {
        self.refresh_gallery(run).await?;
        let trainer = run.trainer.lock().await;
        let params = trainer.params().await.map_err(|e| e.to_string())?;
        self.weight_images.set(first_layer_weight_images(&run.spec, &params));
        // The CPU predicts synchronously: small chunks and a yield between them keep the page live.
        let chunk = if trainer.backend() == Backend::Gpu { GPU_PREDICT_CHUNK } else { CPU_PREDICT_CHUNK };
        let mut confusion = vec![0u32; NUM_CLASSES * NUM_CLASSES];
        let mut all_probs = Vec::with_capacity(run.test.len() * NUM_CLASSES);
        for start in (0..run.test.len()).step_by(chunk) {
            yield_now().await;
            let rows = chunk.min(run.test.len() - start);
            let pixels = to_unit(&run.test.images()[start * PIXELS_PER_IMAGE..(start + rows) * PIXELS_PER_IMAGE]);
            let probs = trainer.predict(&pixels).await.map_err(|e| e.to_string())?;
            for (row, p) in probs.chunks_exact(NUM_CLASSES).enumerate() {
                let truth = usize::from(run.test.label(start + row));
                confusion[truth * NUM_CLASSES + argmax(p)] += 1;
            }
            all_probs.extend(probs);
        }
        self.confusion.set(Some(confusion));
        self.test_probs.set_value(all_probs);
        // An open explorer follows the new weights.
        if let Some(open) = self.explorer.get_untracked() {
            self.explore(open.truth, open.predicted);
        }
        Ok(())
    }

    async fn refresh_gallery(self, run: &Run) -> Result<(), String> {
        let len = run.test.len();
        let start = self.gallery_start.get_value() % len.max(1);
        let indices: Vec<usize> = (0..GALLERY_SIZE.min(len)).map(|i| (start + i) % len).collect();
        let pixels: Vec<u8> = indices.iter().flat_map(|&i| run.test.image(i).iter().copied()).collect();
        let probs = run.trainer.lock().await.predict(&to_unit(&pixels)).await.map_err(|e| e.to_string())?;
        let items = indices
            .iter()
            .zip(probs.chunks_exact(NUM_CLASSES))
            .map(|(&index, p)| GalleryItem {
                index,
                pixels: run.test.image(index).to_vec(),
                label: usize::from(run.test.label(index)),
                probs: p.to_vec(),
            })
            .collect();
        self.gallery.set(items);
        Ok(())
    }

    /// Opens the error explorer on the test images of true class `truth` predicted as
    /// `predicted`, most confident first.
    pub fn explore(self, truth: usize, predicted: usize) {
        let Some(run) = self.run.get_value() else { return };
        let mut matches: Vec<(usize, f32)> = self.test_probs.with_value(|probs| {
            probs
                .chunks_exact(NUM_CLASSES)
                .enumerate()
                .filter(|&(index, p)| usize::from(run.test.label(index)) == truth && argmax(p) == predicted)
                .map(|(index, p)| (index, p[predicted]))
                .collect()
        });
        matches.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total = matches.len();
        let items = self.test_probs.with_value(|probs| {
            matches
                .iter()
                .take(EXPLORER_SIZE)
                .map(|&(index, _)| GalleryItem {
                    index,
                    pixels: run.test.image(index).to_vec(),
                    label: truth,
                    probs: probs[index * NUM_CLASSES..(index + 1) * NUM_CLASSES].to_vec(),
                })
                .collect()
        });
        self.explorer.set(Some(Explorer { truth, predicted, total, items }));
    }

    /// Shows 15 other test images.
    pub fn another_batch(self) {
        let Some(run) = self.run.get_value() else { return };
        let len = run.test.len().max(1);
        self.gallery_start.set_value((js_sys::Math::random() * len as f64) as usize);
        spawn_local(async move {
            if let Err(message) = self.refresh_gallery(&run).await {
                self.fail(message);
            }
        });
    }

    /// Class probabilities for one 28×28 image with every layer's activations and the saliency
    /// ([`Trainer::explain`]), when a model is ready and not busy training.
    pub async fn explain_one(self, pixels: &[f32]) -> Option<Explanation> {
        if !self.model_ready.get_untracked() {
            return None;
        }
        let run = self.run.get_value()?;
        let trainer = run.trainer.try_lock()?;
        trainer.explain(pixels).await.ok()
    }

    /// The current weights as a `.safetensors` file, named after the model.
    pub async fn weights_file(self) -> Result<(String, Vec<u8>), String> {
        let run = self.run.get_value().ok_or("train or load a model first")?;
        let params = run.trainer.lock().await.params().await.map_err(|e| e.to_string())?;
        let dataset = self.settings.get_untracked().dataset;
        Ok((format!("{}-{}.safetensors", dataset, run.spec.name), to_safetensors(&run.spec, &params)))
    }

    /// Uses weights from a `.safetensors` file instead of training; the model preset is the one
    /// selected, or whichever preset the file fits.
    pub fn load_weights(self, bytes: Vec<u8>) {
        if self.status.get_untracked().busy() {
            return;
        }
        spawn_local(async move {
            if let Err(message) = self.use_weights(bytes).await {
                self.fail(message);
            }
        });
    }

    async fn use_weights(self, bytes: Vec<u8>) -> Result<(), String> {
        self.reset();
        self.status.set(Status::Loading);
        let mut settings = self.settings.get_untracked();
        let chosen = settings.model_spec().map_err(|e| e.to_string())?;
        let (spec, params) = weights_for_any_preset(&chosen, &bytes)
            .map_err(|error| format!("cannot use this weights file: {error}"))?;
        if spec.name != settings.model {
            settings.model = spec.name.clone();
            self.settings.set(settings.clone());
        }
        let splits = self.load_data(&settings).await?;
        let train = limit(&splits.train, settings.train_limit);
        let test = limit(&splits.test, settings.test_limit);
        let mut trainer = self.make_trainer(&settings, &spec, &train, &test, None).await?;
        trainer.set_params(&params).map_err(|e| e.to_string())?;
        self.note_gpu_allocations();
        self.log(format!(
            "Loaded weights for `{}` ({} parameters); predicting without training",
            spec.name,
            params.len()
        ));
        let run = Rc::new(Run { spec, trainer: Mutex::new(trainer), test, settings: settings.clone() });
        self.run.set_value(Some(run.clone()));
        self.model_ready.set(true);
        self.refresh_predictions(&run).await?;
        self.status.set(Status::Done);
        Ok(())
    }
}

fn to_unit(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
}

pub fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

pub(crate) fn browser_has_webgpu() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"gpu".into()).ok())
        .is_some_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}

/// Where the page keeps its tunings (`localStorage` through gloo, one entry per [`tuning_key`]).
const TUNING_STORAGE_PREFIX: &str = "fashion-gpu kernels: ";

/// A tuning an earlier visit stored for `key`; `None` when there is none or it does not read
/// back (it is then tuned again and overwritten).
fn stored_tuning(key: &str) -> Option<KernelChoice> {
    let text: String = gloo_storage::LocalStorage::get(format!("{TUNING_STORAGE_PREFIX}{key}")).ok()?;
    KernelChoice::from_text(&text)
}

fn store_tuning(key: &str, choice: &KernelChoice) {
    // A full or refused storage only means tuning again next time.
    let _ = gloo_storage::LocalStorage::set(format!("{TUNING_STORAGE_PREFIX}{key}"), choice.to_text());
}

/// What the browser says about its WebGPU adapter, e.g. `google swiftshader (fallback adapter)`:
/// wgpu leaves the adapter's name empty on the web.
pub(crate) async fn browser_adapter_info() -> Option<String> {
    use js_sys::Reflect;
    use wasm_bindgen::JsCast;
    let gpu = Reflect::get(&web_sys::window()?.navigator(), &"gpu".into()).ok()?;
    let request: js_sys::Function = Reflect::get(&gpu, &"requestAdapter".into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok().filter(|a| a.is_object())?;
    let info = Reflect::get(&adapter, &"info".into()).ok().filter(|i| i.is_object())?;
    let field = |object: &wasm_bindgen::JsValue, name: &str| Reflect::get(object, &name.into()).ok();
    let words: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|name| field(&info, name)?.as_string().filter(|s| !s.is_empty()))
        .collect();
    if words.is_empty() {
        return None;
    }
    let fallback = field(&info, "isFallbackAdapter")
        .and_then(|v| v.as_bool())
        .or_else(|| field(&adapter, "isFallbackAdapter")?.as_bool())
        .unwrap_or(false);
    Some(format!("{}{}", words.join(" "), if fallback { " (fallback adapter)" } else { "" }))
}

/// Milliseconds since the page started loading.
pub fn now_ms() -> Option<f64> {
    Some(web_sys::window()?.performance()?.now())
}
