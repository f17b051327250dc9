//! The study mode: several models trained with one recipe on the worker's one GPU context,
//! their epochs interleaved chunk by chunk (the core's [`Study`] drives them, as it drives
//! `fashion-gpu compare`), and which of them the rest of the page shows.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use fashion_core::study::Study;
use fashion_core::train::limit;
use fashion_core::trainer::kernels_name;
use fashion_core::{Progress, Trainer};
use futures::channel::oneshot;
use futures::future::{join_all, select, Either};
use futures::lock::Mutex;

use super::engine::{Engine, Run};
use crate::protocol::{Event, Status};

/// The study's runs and the trainers behind them.
#[derive(Default)]
pub(crate) struct StudyState {
    study: RefCell<Option<Study>>,
    /// Each run's place in the epoch it trains now.
    progress: RefCell<Vec<Option<Progress>>>,
    /// The model the rest of the page shows: the user's pick, else the best so far.
    shown: RefCell<Option<String>>,
    /// The user picked [`StudyState::shown`]; the best no longer replaces it.
    picked: Cell<bool>,
    runs: RefCell<Vec<Rc<Run>>>,
    stop: RefCell<Option<oneshot::Sender<()>>>,
}

impl StudyState {
    pub(crate) fn is_running(&self) -> bool {
        self.stop.borrow().is_some()
    }

    /// Ends the study's running epochs early; each model keeps what it learnt so far.
    pub(crate) fn stop(&self) {
        if let Some(stop) = self.stop.borrow_mut().take() {
            let _ = stop.send(());
        }
    }
}

impl Engine {
    fn set_study(&self, study: Option<Study>) {
        self.emit(Event::Study(study.clone()));
        *self.study.study.borrow_mut() = study;
    }

    fn set_shown(&self, model: Option<String>) {
        self.emit(Event::StudyShown(model.clone()));
        *self.study.shown.borrow_mut() = model;
    }

    /// Shows `model` in the rest of the page, from now on.
    pub(crate) async fn pick_study_model(&self, model: String) -> Result<(), String> {
        self.study.picked.set(true);
        self.set_shown(Some(model));
        self.show_study_model().await
    }

    /// Trains the settings' study models, each with the settings' recipe, on the same data.
    pub(crate) async fn train_study(&self) -> Result<(), String> {
        self.reset();
        self.set_study(None);
        self.set_shown(None);
        self.study.picked.set(false);
        self.study.runs.borrow_mut().clear();
        self.set_status(Status::Loading);
        let settings = self.settings();
        let specs = settings.study_specs().map_err(|e| e.to_string())?;
        let seed = settings.train_config(true).map_err(|e| e.to_string())?.seed;
        let splits = self.load_data(&settings).await?;
        let train = limit(&splits.train, settings.train_limit);
        let test = limit(&splits.test, settings.test_limit);
        let mut study = Study::new(settings.epochs);
        let mut runs = Vec::with_capacity(specs.len());
        for spec in specs {
            let trainer = self.make_trainer(&settings, &spec, &train, &test, None).await?;
            let kernels = kernels_name(trainer.kernels());
            study.add_run(&spec, seed, kernels, Vec::new());
            runs.push(Rc::new(Run {
                spec,
                trainer: Mutex::new(trainer),
                test: test.clone(),
                settings: settings.clone(),
            }));
        }
        self.note_gpu_allocations();
        let names: Vec<&str> = runs.iter().map(|r| r.spec.name.as_str()).collect();
        self.log(format!(
            "Study of {} on {} ({} training / {} test images), batch {}, lr {}, {} epochs, interleaved",
            names.join(", "),
            settings.dataset,
            train.len(),
            test.len(),
            settings.batch,
            settings.learning_rate,
            settings.epochs
        ));
        *self.study.runs.borrow_mut() = runs.clone();
        *self.study.progress.borrow_mut() = vec![None; runs.len()];
        self.emit(Event::StudyProgress(vec![None; runs.len()]));
        self.set_study(Some(study.clone()));
        self.set_status(Status::Training);
        let (stop, mut stopped) = oneshot::channel();
        *self.study.stop.borrow_mut() = Some(stop);
        while !study.is_finished() {
            let round = {
                let mut trainers = join_all(runs.iter().map(|run| run.trainer.lock())).await;
                let mut slots: Vec<Option<&mut Trainer>> = trainers.iter_mut().map(|t| Some(&mut **t)).collect();
                let on_progress = |run: usize, p: &Progress| {
                    let all = {
                        let mut all = self.study.progress.borrow_mut();
                        all[run] = Some(*p);
                        all.clone()
                    };
                    // The page's progress bar follows the run furthest behind.
                    let behind =
                        all.iter().flatten().min_by_key(|p| (p.epoch, p.step * 1000 / p.steps.max(1))).copied();
                    self.emit(Event::StudyProgress(all));
                    self.emit(Event::Progress(behind));
                };
                let round = std::pin::pin!(study.train_round(&mut slots, on_progress));
                match select(round, &mut stopped).await {
                    Either::Left((outcome, _)) => Some(outcome),
                    Either::Right(_) => None,
                }
            };
            let Some(outcome) = round else {
                self.log("Study stopped; each model keeps what it learnt so far.".into());
                break;
            };
            for run in outcome.as_ref().map(Vec::as_slice).unwrap_or_default() {
                let history = &study.runs()[*run].history;
                if let Some(stats) = history.epochs.last() {
                    self.log(format!("{:<10} {}", history.model, stats.study_line()));
                }
            }
            self.set_study(Some(study.clone()));
            outcome.map_err(|e| e.to_string())?;
            self.show_study_model().await?;
            self.note_gpu_allocations();
        }
        self.study.stop.borrow_mut().take();
        if self.history.borrow().is_empty() {
            self.show_study_model().await?;
        }
        self.set_status(Status::Done);
        Ok(())
    }

    /// Shows the picked model, else the best one so far, in the rest of the page.
    async fn show_study_model(&self) -> Result<(), String> {
        let Some(study) = self.study.study.borrow().clone() else { return Ok(()) };
        let shown = self.study.shown.borrow().clone();
        let model = match shown {
            Some(model) if self.study.picked.get() => Some(model),
            _ => study.best_model().or_else(|| study.runs().first().map(|r| r.history.model.clone())),
        };
        let Some(model) = model else { return Ok(()) };
        self.set_shown(Some(model.clone()));
        let Some(index) = study.runs().iter().position(|r| r.history.model == model) else { return Ok(()) };
        let Some(run) = self.study.runs.borrow().get(index).cloned() else { return Ok(()) };
        self.show(run, study.runs()[index].history.epochs.clone()).await
    }
}
