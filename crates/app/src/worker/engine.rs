//! The worker's state and the one training loop behind the page: load the data, build a
//! trainer, run epochs while reporting progress, and refresh the predictions after each. What
//! the page shows is sent to it as [`Event`]s the moment it changes (`set_*`, `emit`). Beside it,
//! by responsibility: where training runs (`device`), what is shown of the current weights
//! (`predictions`), weights files (`weights`), keeping a run across pauses and reloads
//! (`resume`), the study mode (`study`) and the benchmark (`bench`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use fashion_core::train::limit;
use fashion_core::{Backend, EpochStats, GpuContext, ModelSpec, Progress, TrainError, Trainer};
use fashion_data::Dataset;
use futures::channel::oneshot;
use futures::future::{select, Either};
use futures::lock::Mutex;

use super::data::{load_splits, Splits};
use super::pause::PauseSwitch;
use super::study::StudyState;
use crate::protocol::{Event, Explorer, Status};
use crate::settings::Settings;

/// The model being trained or used, with the data it is evaluated on.
pub(crate) struct Run {
    pub(crate) spec: ModelSpec,
    pub(crate) trainer: Mutex<Trainer>,
    pub(crate) test: Dataset,
    /// The settings it started with: what a saved run of it reproduces.
    pub(crate) settings: Settings,
}

/// Everything the worker holds. One per worker; every task shares it ([`Engine`]).
pub(crate) struct State {
    /// Sends an event to the page.
    post: Box<dyn Fn(Event)>,
    pub(crate) settings: RefCell<Settings>,
    pub(crate) status: Cell<Status>,
    pub(crate) history: RefCell<Vec<EpochStats>>,
    pub(crate) model_ready: Cell<bool>,
    pub(crate) can_continue: Cell<bool>,
    pub(crate) explorer: Cell<Option<(usize, usize)>>,
    pub(crate) run: RefCell<Option<Rc<Run>>>,
    splits: RefCell<Option<Splits>>,
    pub(crate) gpu: RefCell<Option<Arc<GpuContext>>>,
    /// What the browser says about its adapter (the adapter line, and the key of stored tunings).
    pub(crate) adapter_described: RefCell<Option<String>>,
    /// The CPU path's threads, as the adapter line names them (`CPU, 2 threads`).
    pub(crate) cpu_described: RefCell<String>,
    /// The stored-tuning key to tune for once the current training is done.
    pub(crate) pending_tuning: RefCell<Option<String>>,
    pub(crate) stop: RefCell<Option<oneshot::Sender<()>>>,
    pub(crate) gallery_start: Cell<usize>,
    /// The current weights' probabilities for every test image, `[test images, classes]`.
    pub(crate) test_probs: RefCell<Vec<f32>>,
    /// The last finished epoch's weights, which explain drawings while an epoch runs.
    pub(crate) snapshot: RefCell<Option<(ModelSpec, Vec<f32>)>>,
    pub(crate) pause: PauseSwitch,
    /// Saving failed during this run: the rest of it is not saved (training goes on).
    pub(crate) saving_off: Cell<bool>,
    pub(crate) study: StudyState,
}

/// A handle on the worker's [`State`]; clones share it.
#[derive(Clone)]
pub(crate) struct Engine(Rc<State>);

impl std::ops::Deref for Engine {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}

impl Engine {
    pub(crate) fn new(post: impl Fn(Event) + 'static) -> Self {
        Engine(Rc::new(State {
            post: Box::new(post),
            settings: RefCell::new(Settings::default()),
            status: Cell::new(Status::Idle),
            history: RefCell::new(Vec::new()),
            model_ready: Cell::new(false),
            can_continue: Cell::new(false),
            explorer: Cell::new(None),
            run: RefCell::new(None),
            splits: RefCell::new(None),
            gpu: RefCell::new(None),
            adapter_described: RefCell::new(None),
            cpu_described: RefCell::new(String::new()),
            pending_tuning: RefCell::new(None),
            stop: RefCell::new(None),
            gallery_start: Cell::new(0),
            test_probs: RefCell::new(Vec::new()),
            snapshot: RefCell::new(None),
            pause: PauseSwitch::default(),
            saving_off: Cell::new(false),
            study: StudyState::default(),
        }))
    }

    pub(crate) fn emit(&self, event: Event) {
        (self.post)(event);
    }

    pub(crate) fn set_status(&self, status: Status) {
        self.status.set(status);
        self.emit(Event::Status(status));
    }

    pub(crate) fn set_model_ready(&self, ready: bool) {
        self.model_ready.set(ready);
        self.emit(Event::ModelReady(ready));
    }

    pub(crate) fn set_can_continue(&self, can: bool) {
        self.can_continue.set(can);
        self.emit(Event::CanContinue(can));
    }

    pub(crate) fn set_history(&self, history: Vec<EpochStats>) {
        self.emit(Event::History(history.clone()));
        *self.history.borrow_mut() = history;
    }

    /// Adopts the page's settings for the command at hand (the page owns them).
    pub(crate) fn take_settings(&self, query: &str) {
        *self.settings.borrow_mut() = Settings::from_query(query);
    }

    /// Changes the settings on the worker's side and tells the page.
    pub(crate) fn change_settings(&self, settings: Settings) {
        self.emit(Event::Settings(settings.to_query()));
        *self.settings.borrow_mut() = settings;
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings.borrow().clone()
    }

    pub(crate) fn log(&self, line: String) {
        self.emit(Event::Log(line));
    }

    pub(crate) fn busy(&self) -> bool {
        self.status.get().busy()
    }

    pub(crate) async fn train(&self) -> Result<(), String> {
        self.reset();
        self.start_saving_anew().await;
        self.set_status(Status::Loading);
        let settings = self.settings();
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
        *self.run.borrow_mut() = Some(run.clone());
        self.train_epochs(&run, settings.epochs).await?;
        self.tune_for_next_time(&run.spec, settings.batch).await;
        Ok(())
    }

    /// After a divergence: the same model, from its last good weights, with the learning rate
    /// now in the settings, for the epochs still to go.
    pub(crate) async fn go_on(&self) -> Result<(), String> {
        let run = self.run.borrow().clone().ok_or("there is no model to continue")?;
        let settings = self.settings();
        run.trainer.lock().await.set_learning_rate(settings.learning_rate).map_err(|e| e.to_string())?;
        self.emit(Event::Error(None));
        self.set_can_continue(false);
        self.log(format!("Continuing from the last good weights with lr {}", settings.learning_rate));
        let remaining = settings.epochs.saturating_sub(self.history.borrow().len()).max(1);
        self.train_epochs(&run, remaining).await
    }

    pub(crate) async fn train_epochs(&self, run: &Rc<Run>, epochs: usize) -> Result<(), String> {
        self.set_status(Status::Training);
        // A pause asked for before (then Stop) does not carry over.
        self.pause.resume();
        let (stop, mut stopped) = oneshot::channel();
        *self.stop.borrow_mut() = Some(stop);
        for _ in 0..epochs {
            let outcome = {
                let mut trainer = run.trainer.lock().await;
                let epoch = std::pin::pin!(self.pausable(trainer.run_epoch(|p| self.on_progress(p))));
                match select(epoch, &mut stopped).await {
                    Either::Left((Ok(stats), _)) => Some(stats),
                    Either::Left((Err(error), _)) => {
                        self.set_can_continue(matches!(error, TrainError::Diverged { .. }));
                        return Err(error.to_string());
                    }
                    Either::Right(_) => None,
                }
            };
            let Some(stats) = outcome else {
                self.log("Stopped; the model keeps what it learnt so far.".into());
                break;
            };
            let mut history = self.history.borrow().clone();
            history.push(stats);
            self.set_history(history);
            self.log(format!("{}  ({:.0} samples/s)", stats.study_line(), stats.samples_per_second()));
            self.save_run(run).await;
            self.set_model_ready(true);
            self.refresh_predictions(run).await?;
            self.note_gpu_allocations();
        }
        self.stop.borrow_mut().take();
        if self.history.borrow().len() >= run.settings.epochs {
            self.forget_saved_run().await;
        }
        self.set_model_ready(true);
        if self.test_probs.borrow().is_empty() {
            self.refresh_predictions(run).await?;
        }
        self.set_status(Status::Done);
        Ok(())
    }

    /// Ends the running epoch early; the weights keep what they learnt so far.
    pub(crate) fn stop_training(&self) {
        if let Some(stop) = self.stop.borrow_mut().take() {
            let _ = stop.send(());
        }
        self.study.stop();
    }

    pub(crate) fn reset(&self) {
        self.emit(Event::Reset);
        self.emit(Event::Error(None));
        self.set_can_continue(false);
        self.history.borrow_mut().clear();
        self.explorer.set(None);
        self.test_probs.borrow_mut().clear();
        self.snapshot.borrow_mut().take();
        self.model_ready.set(false);
        self.run.borrow_mut().take();
        self.note_gpu_allocations();
    }

    pub(crate) fn fail(&self, message: String) {
        self.log(format!("Error: {message}"));
        self.emit(Event::Error(Some(message)));
        self.stop.borrow_mut().take();
        self.set_status(Status::Error);
    }

    fn on_progress(&self, progress: &Progress) {
        self.pause.chunk_done();
        self.emit(Event::Progress(Some(*progress)));
    }

    pub(crate) async fn load_data(&self, settings: &Settings) -> Result<Splits, String> {
        let cached = self
            .splits
            .borrow()
            .as_ref()
            .filter(|s| s.name == settings.dataset && s.data_url == settings.data_url)
            .cloned();
        if let Some(splits) = cached {
            return Ok(splits);
        }
        self.log(format!("Loading {} from {}", settings.dataset, settings.data_url));
        let splits = load_splits(&settings.data_url, settings.dataset).await.map_err(|e| e.to_string())?;
        *self.splits.borrow_mut() = Some(splits.clone());
        Ok(splits)
    }

    /// Makes `run`, trained elsewhere (the study mode) for `history`, the model the page shows:
    /// its epochs, predictions, confusion matrix, weights and draw pad.
    pub(crate) async fn show(&self, run: Rc<Run>, history: Vec<EpochStats>) -> Result<(), String> {
        self.set_history(history);
        *self.run.borrow_mut() = Some(run.clone());
        self.set_model_ready(true);
        self.refresh_predictions(&run).await
    }

    pub(crate) fn set_explorer(&self, explorer: Option<Explorer>) {
        self.explorer.set(explorer.as_ref().map(|e| (e.truth, e.predicted)));
        self.emit(Event::Explorer(explorer));
    }

    pub(crate) fn set_backend(&self, backend: Backend) {
        self.emit(Event::Backend(Some(backend)));
    }
}
