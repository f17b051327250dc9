//! The page's study mode: several models trained with one recipe on the page's one GPU context,
//! their epochs interleaved chunk by chunk (the core's [`Study`] drives them, as it drives
//! `fashion-gpu compare`), and which of them the rest of the page shows.

use std::rc::Rc;

use fashion_core::frontend::limit;
use fashion_core::study::Study;
use fashion_core::trainer::kernels_name;
use fashion_core::{Progress, Trainer};
use futures::channel::oneshot;
use futures::future::{join_all, select, Either};
use futures::lock::Mutex;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::session::{Run, Session, Status};

/// The study's signals and the trainers behind them. `Copy`: every field is a handle.
#[derive(Clone, Copy)]
pub struct StudySession {
    /// The runs and their epochs so far (`None` before a study starts).
    pub study: RwSignal<Option<Study>>,
    /// Each run's place in the epoch it trains now.
    pub progress: RwSignal<Vec<Option<Progress>>>,
    /// The model the rest of the page shows: the user's pick, else the best so far.
    pub shown: RwSignal<Option<String>>,
    /// The user picked [`StudySession::shown`]; the best no longer replaces it.
    picked: StoredValue<bool>,
    runs: StoredValue<Vec<Rc<Run>>, LocalStorage>,
    stop: StoredValue<Option<oneshot::Sender<()>>, LocalStorage>,
}

impl StudySession {
    pub fn new() -> Self {
        StudySession {
            study: RwSignal::new(None),
            progress: RwSignal::new(Vec::new()),
            shown: RwSignal::new(None),
            picked: StoredValue::new(false),
            runs: StoredValue::new_local(Vec::new()),
            stop: StoredValue::new_local(None),
        }
    }

    /// Trains the settings' study models, each with the settings' recipe, on the same data.
    pub fn start(self, s: Session) {
        if s.status.get_untracked().busy() {
            return;
        }
        spawn_local(async move {
            if let Err(message) = self.train(s).await {
                s.fail(message);
            }
        });
    }

    /// Ends the study's running epochs early; each model keeps what it learnt so far.
    pub fn stop(self) {
        if let Some(stop) = self.stop.try_update_value(Option::take).flatten() {
            let _ = stop.send(());
        }
    }

    /// Shows `model` in the rest of the page, from now on.
    pub fn pick(self, s: Session, model: String) {
        self.picked.set_value(true);
        self.shown.set(Some(model));
        spawn_local(async move {
            if let Err(message) = self.show(s).await {
                s.fail(message);
            }
        });
    }

    async fn train(self, s: Session) -> Result<(), String> {
        s.reset();
        self.study.set(None);
        self.shown.set(None);
        self.picked.set_value(false);
        self.runs.set_value(Vec::new());
        s.status.set(Status::Loading);
        let settings = s.settings.get_untracked();
        let specs = settings.study_specs().map_err(|e| e.to_string())?;
        let seed = settings.train_config(true).map_err(|e| e.to_string())?.seed;
        let splits = s.load_data(&settings).await?;
        let train = limit(&splits.train, settings.train_limit);
        let test = limit(&splits.test, settings.test_limit);
        let mut study = Study::new(settings.epochs);
        let mut runs = Vec::with_capacity(specs.len());
        for spec in specs {
            let trainer = s.make_trainer(&settings, &spec, &train, &test, None).await?;
            let kernels = kernels_name(trainer.kernels());
            study.add_run(&spec, seed, kernels, Vec::new());
            runs.push(Rc::new(Run {
                spec,
                trainer: Mutex::new(trainer),
                test: test.clone(),
                settings: settings.clone(),
            }));
        }
        s.note_gpu_allocations();
        let names: Vec<&str> = runs.iter().map(|r| r.spec.name.as_str()).collect();
        s.log(format!(
            "Study of {} on {} ({} training / {} test images), batch {}, lr {}, {} epochs, interleaved",
            names.join(", "),
            settings.dataset,
            train.len(),
            test.len(),
            settings.batch,
            settings.learning_rate,
            settings.epochs
        ));
        self.runs.set_value(runs.clone());
        self.progress.set(vec![None; runs.len()]);
        self.study.set(Some(study.clone()));
        s.status.set(Status::Training);
        let (stop, mut stopped) = oneshot::channel();
        self.stop.set_value(Some(stop));
        while !study.is_finished() {
            let round = {
                let mut trainers = join_all(runs.iter().map(|run| run.trainer.lock())).await;
                let mut slots: Vec<Option<&mut Trainer>> = trainers.iter_mut().map(|t| Some(&mut **t)).collect();
                let on_progress = |run: usize, p: &Progress| {
                    self.progress.update(|all| all[run] = Some(*p));
                    // The page's progress bar follows the run furthest behind.
                    let behind = self.progress.with_untracked(|all| {
                        all.iter().flatten().min_by_key(|p| (p.epoch, p.step * 1000 / p.steps.max(1))).copied()
                    });
                    s.progress.set(behind);
                };
                let round = std::pin::pin!(study.train_round(&mut slots, on_progress));
                match select(round, &mut stopped).await {
                    Either::Left((outcome, _)) => Some(outcome),
                    Either::Right(_) => None,
                }
            };
            let Some(outcome) = round else {
                s.log("Study stopped; each model keeps what it learnt so far.".into());
                break;
            };
            for run in outcome.as_ref().map(Vec::as_slice).unwrap_or_default() {
                let history = &study.runs()[*run].history;
                if let Some(stats) = history.epochs.last() {
                    s.log(format!("{:<10} {}", history.model, stats.study_line()));
                }
            }
            self.study.set(Some(study.clone()));
            outcome.map_err(|e| e.to_string())?;
            self.show(s).await?;
            s.note_gpu_allocations();
        }
        self.stop.set_value(None);
        if s.history.with_untracked(Vec::is_empty) {
            self.show(s).await?;
        }
        s.status.set(Status::Done);
        Ok(())
    }

    /// Shows the picked model, else the best one so far, in the rest of the page.
    async fn show(self, s: Session) -> Result<(), String> {
        let Some(study) = self.study.get_untracked() else { return Ok(()) };
        let model = match self.shown.get_untracked() {
            Some(model) if self.picked.get_value() => Some(model),
            _ => study.best_model().or_else(|| study.runs().first().map(|r| r.history.model.clone())),
        };
        let Some(model) = model else { return Ok(()) };
        self.shown.set(Some(model.clone()));
        let Some(index) = study.runs().iter().position(|r| r.history.model == model) else { return Ok(()) };
        let Some(run) = self.runs.with_value(|runs| runs.get(index).cloned()) else { return Ok(()) };
        s.show(run, study.runs()[index].history.epochs.clone()).await
    }
}
