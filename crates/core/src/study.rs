//! A study: several models trained with one recipe on the same data, side by side, as the
//! study we reproduce ran its six MLPs. Written once for `fashion-gpu compare` and the page's
//! study mode: which runs (model × seed, checked before anything trains), their epochs
//! interleaved chunk by chunk on one GPU context ([`Study::train_round`]), each run's history,
//! and the comparison: final and best test accuracy, the study's 30-epoch figure and the
//! difference ([`Study::summaries`]). Its history as CSV and JSON, and its charts' colours, are
//! what the front-ends show of it (crates/report).

use std::borrow::BorrowMut;

use futures_util::future::join_all;

use crate::model::{study_note, study_test_accuracy, ModelError, ModelSpec};
use crate::train::{EpochStats, Progress, TrainError};
use crate::trainer::Trainer;

/// The study's six models, in its order (the CNN may be added; the study did not train it).
pub const STUDY_MODELS: &[&str] = &["baseline", "deep", "dropout", "l2", "batchnorm", "lr-decay"];

/// Why a study cannot run, naming the model and the setting to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StudyError {
    #[error("a study needs at least one model, e.g. {}", STUDY_MODELS.join(","))]
    NoModels,
    #[error("`{0}` is named twice; each model is one run of the study")]
    Repeated(String),
    #[error(transparent)]
    UnknownModel(ModelError),
    #[error("the `{model}` model refuses {setting}: {error}")]
    Refused { model: String, setting: &'static str, error: ModelError },
    #[error("`{model}` (seed {seed}): {error}")]
    Training { model: String, seed: u64, error: TrainError },
}

impl StudyError {
    /// The setting to change: `study` for the list of models, else the one a model refused.
    pub fn setting(&self) -> &'static str {
        match self {
            StudyError::Refused { setting, .. } => setting,
            StudyError::Training { .. } => "training",
            _ => "study",
        }
    }
}

/// The models of a study, each with the dropout rate and L2 factor given (as `fashion-gpu
/// --dropout/--l2` and the page's `dropout=`/`l2=` set them for one model): every name and
/// setting is checked before anything trains, and the first refusal names its model.
pub fn study_specs(
    models: &[impl AsRef<str>],
    dropout: Option<f32>,
    l2: Option<f32>,
) -> Result<Vec<ModelSpec>, StudyError> {
    if models.is_empty() {
        return Err(StudyError::NoModels);
    }
    let names: Vec<&str> = models.iter().map(|m| m.as_ref().trim()).collect();
    // The names first, then what each model makes of the settings.
    for (i, name) in names.iter().enumerate() {
        ModelSpec::preset(name).map_err(StudyError::UnknownModel)?;
        if names[..i].contains(name) {
            return Err(StudyError::Repeated(name.to_string()));
        }
    }
    let mut specs: Vec<ModelSpec> = Vec::with_capacity(names.len());
    for name in names {
        let spec = ModelSpec::choose(name, None, dropout, l2).map_err(|error| {
            let setting = match error {
                ModelError::NoDropout { .. } | ModelError::DropoutRate { .. } => "dropout",
                ModelError::L2Factor(_) => "l2",
                _ => "the model",
            };
            StudyError::Refused { model: name.to_string(), setting, error }
        })?;
        specs.push(spec);
    }
    Ok(specs)
}

/// One training run's epochs (a row of `history.csv` per epoch).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunHistory {
    pub model: String,
    pub seed: u64,
    pub epochs: Vec<EpochStats>,
}

/// One run of a study: a model trained with one seed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StudyRun {
    pub history: RunHistory,
    pub params: usize,
    /// The GPU kernels it trains with (kernels sum in different orders: a history is the
    /// choice's), or `cpu`.
    pub kernels: String,
}

/// A model's figures over its runs (means over seeds), as the table and the charts show them.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    pub model: String,
    pub params: usize,
    pub kernels: String,
    pub seeds: usize,
    /// Epochs every seed has finished.
    pub epochs: usize,
    /// The mean test accuracy and training loss after each epoch.
    pub test_accuracy_curve: Vec<f32>,
    pub loss_curve: Vec<f32>,
    /// After the last epoch.
    pub loss: f32,
    pub train_accuracy: f32,
    pub test_accuracy: f32,
    /// The sample standard deviation of the final test accuracy over seeds (0 for one seed).
    pub test_accuracy_sd: f32,
    /// The highest mean test accuracy and its epoch (1-based; 0 before any epoch).
    pub best_test_accuracy: f32,
    pub best_epoch: usize,
    /// Training seconds per seed.
    pub seconds: f64,
    /// The study's test accuracy after 30 epochs, with what to know about it.
    pub study: Option<f32>,
    pub study_note: Option<&'static str>,
}

impl ModelSummary {
    /// Our final test accuracy minus the study's (meant for 30 epochs, as the study trained).
    pub fn difference(&self) -> Option<f32> {
        self.study.filter(|_| self.epochs > 0).map(|study| self.test_accuracy - study)
    }
}

/// Several runs trained for the same number of epochs, and what they show side by side.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Study {
    runs: Vec<StudyRun>,
    epochs: usize,
}

impl Study {
    /// An empty study whose runs train `epochs` epochs each.
    pub fn new(epochs: usize) -> Self {
        Study { runs: Vec::new(), epochs }
    }

    /// Adds a run of `spec` with `seed`, which may have epochs already (a resumed history,
    /// cut to the study's epochs); returns its index.
    pub fn add_run(&mut self, spec: &ModelSpec, seed: u64, kernels: String, mut done: Vec<EpochStats>) -> usize {
        done.truncate(self.epochs);
        let history = RunHistory { model: spec.name.clone(), seed, epochs: done };
        self.runs.push(StudyRun { history, params: spec.total_params(), kernels });
        self.runs.len() - 1
    }

    pub fn runs(&self) -> &[StudyRun] {
        &self.runs
    }

    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// Run `run` has epochs to go.
    pub fn needs_epoch(&self, run: usize) -> bool {
        self.runs.get(run).is_some_and(|r| r.history.epochs.len() < self.epochs)
    }

    pub fn is_finished(&self) -> bool {
        (0..self.runs.len()).all(|run| !self.needs_epoch(run))
    }

    /// Trains one epoch of every run with epochs to go, all at once: `trainers[i]` trains run
    /// `i` (`None` for a run that needs none). Their epochs interleave chunk by chunk (each
    /// passes its turn after every chunk), so on one GPU context the runs' curves grow together.
    /// Each epoch lands in its run's history; `on_progress` hears `(run, progress)` after each
    /// chunk. Returns the runs that trained; the first failure, naming its run, after the
    /// others' epochs are recorded.
    pub async fn train_round<T: BorrowMut<Trainer>>(
        &mut self,
        trainers: &mut [Option<T>],
        on_progress: impl Fn(usize, &Progress),
    ) -> Result<Vec<usize>, StudyError> {
        assert_eq!(trainers.len(), self.runs.len(), "one trainer slot per run of the study");
        let on_progress = &on_progress;
        let epochs = trainers
            .iter_mut()
            .enumerate()
            .filter(|(run, _)| self.needs_epoch(*run))
            .filter_map(|(run, trainer)| trainer.as_mut().map(|trainer| (run, trainer)))
            .map(|(run, trainer)| async move { (run, trainer.borrow_mut().run_epoch(|p| on_progress(run, p)).await) });
        let mut trained = Vec::new();
        let mut failure = None;
        for (run, outcome) in join_all(epochs).await {
            match outcome {
                Ok(stats) => {
                    self.runs[run].history.epochs.push(stats);
                    trained.push(run);
                }
                Err(error) if failure.is_none() => {
                    let history = &self.runs[run].history;
                    failure = Some(StudyError::Training { model: history.model.clone(), seed: history.seed, error });
                }
                Err(_) => {}
            }
        }
        failure.map_or(Ok(trained), Err)
    }

    /// Per model (in the order its first run was added), its figures over its runs.
    pub fn summaries(&self) -> Vec<ModelSummary> {
        let mut models: Vec<&str> = Vec::new();
        for run in &self.runs {
            if !models.contains(&run.history.model.as_str()) {
                models.push(&run.history.model);
            }
        }
        models.into_iter().map(|model| self.summary(model)).collect()
    }

    fn summary(&self, model: &str) -> ModelSummary {
        let runs: Vec<&StudyRun> = self.runs.iter().filter(|r| r.history.model == model).collect();
        let histories: Vec<&[EpochStats]> = runs.iter().map(|r| r.history.epochs.as_slice()).collect();
        let epochs = histories.iter().map(|h| h.len()).min().unwrap_or(0);
        let mean_at = |epoch: usize, figure: fn(&EpochStats) -> f32| {
            histories.iter().map(|h| figure(&h[epoch])).sum::<f32>() / histories.len() as f32
        };
        let curve = |figure: fn(&EpochStats) -> f32| (0..epochs).map(|e| mean_at(e, figure)).collect::<Vec<f32>>();
        let test_accuracy_curve = curve(|s| s.test_accuracy);
        let (best_epoch, best_test_accuracy) = test_accuracy_curve
            .iter()
            .enumerate()
            .fold((0, 0.0f32), |best, (e, &v)| if v > best.1 { (e + 1, v) } else { best });
        let last = |figure: fn(&EpochStats) -> f32| if epochs == 0 { 0.0 } else { mean_at(epochs - 1, figure) };
        let finals: Vec<f32> = match epochs.checked_sub(1) {
            Some(last) => histories.iter().map(|h| h[last].test_accuracy).collect(),
            None => Vec::new(),
        };
        ModelSummary {
            model: model.to_string(),
            params: runs[0].params,
            kernels: runs[0].kernels.clone(),
            seeds: runs.len(),
            epochs,
            loss_curve: curve(|s| s.loss),
            loss: last(|s| s.loss),
            train_accuracy: last(|s| s.train_accuracy),
            test_accuracy: last(|s| s.test_accuracy),
            test_accuracy_sd: sample_sd(&finals),
            test_accuracy_curve,
            best_test_accuracy,
            best_epoch,
            seconds: histories.iter().flat_map(|h| h.iter().map(|s| s.seconds)).sum::<f64>() / runs.len() as f64,
            study: study_test_accuracy(model),
            study_note: study_note(model),
        }
    }

    /// The model with the highest final test accuracy (the first of equals), once one has an epoch.
    pub fn best_model(&self) -> Option<String> {
        self.summaries()
            .into_iter()
            .filter(|s| s.epochs > 0)
            .fold(None, |best: Option<ModelSummary>, s| match best {
                Some(b) if b.test_accuracy >= s.test_accuracy => Some(b),
                _ => Some(s),
            })
            .map(|s| s.model)
    }
}

/// The sample standard deviation (0 for fewer than two values).
fn sample_sd(values: &[f32]) -> f32 {
    if values.len() < 2 {
        return 0.0;
    }
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n - 1.0)).sqrt()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::bench::synthetic_dataset;
    use crate::train::TrainConfig;

    fn stats(epoch: usize, test_accuracy: f32) -> EpochStats {
        EpochStats {
            epoch,
            loss: 1.0 / epoch as f32,
            train_accuracy: 0.8,
            test_loss: 0.4,
            test_accuracy,
            train_samples: 100,
            seconds: 2.0,
        }
    }

    fn spec(name: &str) -> ModelSpec {
        ModelSpec::preset(name).unwrap()
    }

    #[test]
    fn models_and_their_settings_are_checked_before_training() {
        let names: Vec<String> = study_specs(STUDY_MODELS, None, None).unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, STUDY_MODELS);
        assert_eq!(study_specs(&[] as &[&str], None, None), Err(StudyError::NoModels));
        let error = |models: &[&str], dropout, l2| study_specs(models, dropout, l2).unwrap_err();
        let unknown = error(&["baseline", "huge"], None, None);
        assert!(unknown.to_string().contains("unknown model preset `huge`"), "{unknown}");
        assert_eq!(unknown.setting(), "study");
        assert_eq!(error(&["deep", "deep"], None, None), StudyError::Repeated("deep".into()));
        let refused = error(&["dropout", "baseline"], Some(0.5), None);
        assert_eq!(refused.setting(), "dropout");
        assert!(refused.to_string().starts_with("the `baseline` model refuses dropout: "), "{refused}");
        let l2 = error(&["deep"], None, Some(-1.0));
        assert_eq!((l2.setting(), l2.to_string().contains("`deep`")), ("l2", true), "{l2}");
        let tuned = study_specs(&["dropout", "cnn"], Some(0.25), Some(0.01)).unwrap();
        assert_eq!((tuned[0].layers[1], tuned[1].l2), (crate::Layer::Dropout { rate: 0.25 }, 0.01));
    }

    #[test]
    fn summaries_hold_final_best_and_the_studys_figure() {
        let mut study = Study::new(3);
        study.add_run(&spec("baseline"), 1, "emulator".into(), vec![stats(1, 0.80), stats(2, 0.86), stats(3, 0.84)]);
        study.add_run(&spec("l2"), 1, "emulator".into(), vec![stats(1, 0.82), stats(2, 0.85), stats(3, 0.87)]);
        study.add_run(&spec("l2"), 2, "emulator".into(), vec![stats(1, 0.80), stats(2, 0.85), stats(3, 0.85)]);
        let [baseline, l2] = &study.summaries()[..] else { panic!("two models") };
        assert_eq!((baseline.epochs, baseline.test_accuracy, baseline.best_test_accuracy), (3, 0.84, 0.86));
        assert_eq!((baseline.best_epoch, baseline.study, baseline.study_note), (2, Some(0.8951), None));
        assert!((baseline.difference().unwrap() - (0.84 - 0.8951)).abs() < 1e-6);
        assert_eq!((l2.seeds, l2.epochs, l2.best_epoch), (2, 3, 3));
        assert!((l2.test_accuracy - 0.86).abs() < 1e-6 && (l2.test_accuracy_sd - 0.02f32.sqrt() / 10.0).abs() < 1e-5);
        assert_eq!(l2.study, Some(0.8939));
        assert!(l2.study_note.is_some_and(|n| n.contains("0.861")));
        assert_eq!((l2.seconds, l2.test_accuracy_curve.len()), (6.0, 3));
        assert_eq!(study.best_model().as_deref(), Some("l2"));
        assert!(study.is_finished());
    }

    #[test]
    fn a_resumed_history_is_cut_to_the_studys_epochs() {
        let mut study = Study::new(1);
        let run = study.add_run(&spec("deep"), 1, "gpu".into(), vec![stats(1, 0.8), stats(2, 0.9)]);
        assert_eq!((study.runs()[run].history.epochs.len(), study.needs_epoch(run)), (1, false));
        assert_eq!(Study::new(2).best_model(), None);
    }

    /// Two CPU trainers in one round: their chunks alternate, and each run's figures are the ones
    /// it reaches trained alone.
    #[test]
    fn a_round_interleaves_runs_chunk_by_chunk_and_changes_no_figure() {
        let train = synthetic_dataset(120, 3);
        let test = synthetic_dataset(40, 4);
        let config = TrainConfig { epochs: 2, batch: 20, steps_per_submit: 1, ..TrainConfig::default() };
        let specs = study_specs(&["baseline", "dropout"], None, None).unwrap();
        let alone: Vec<Vec<EpochStats>> = specs
            .iter()
            .map(|spec| {
                let mut trainer = Trainer::cpu(spec, config.clone(), &train, &test).unwrap();
                (0..2).map(|_| pollster::block_on(trainer.run_epoch(|_| {})).unwrap()).collect()
            })
            .collect();

        let mut study = Study::new(2);
        let mut trainers: Vec<Option<Box<Trainer>>> = specs
            .iter()
            .map(|spec| {
                study.add_run(spec, 1, "cpu".into(), Vec::new());
                Some(Box::new(Trainer::cpu(spec, config.clone(), &train, &test).unwrap()))
            })
            .collect();
        let heard = RefCell::new(Vec::new());
        while !study.is_finished() {
            let trained =
                pollster::block_on(study.train_round(&mut trainers, |run, p| heard.borrow_mut().push((run, p.step))))
                    .unwrap();
            assert_eq!(trained, [0, 1]);
        }
        let heard = heard.into_inner();
        assert_eq!(&heard[..4], [(0, 1), (1, 1), (0, 2), (1, 2)], "chunk by chunk, in turn");
        for (run, alone) in study.runs().iter().zip(&alone) {
            let without_time = |s: &EpochStats| EpochStats { seconds: 0.0, ..*s };
            let together: Vec<_> = run.history.epochs.iter().map(without_time).collect();
            assert_eq!(together, alone.iter().map(without_time).collect::<Vec<_>>(), "{}", run.history.model);
        }
    }

    #[test]
    fn a_failing_run_is_named_after_the_others_are_recorded() {
        let train = synthetic_dataset(60, 3);
        let test = synthetic_dataset(20, 4);
        let good = TrainConfig { epochs: 1, batch: 20, ..TrainConfig::default() };
        let mut bad = good.clone();
        bad.adam.learning_rate = 1e9;
        let mut study = Study::new(1);
        let mut trainers: Vec<Option<Box<Trainer>>> = [("baseline", good), ("deep", bad)]
            .into_iter()
            .map(|(name, config)| {
                study.add_run(&spec(name), 1, "cpu".into(), Vec::new());
                Some(Box::new(Trainer::cpu(&spec(name), config, &train, &test).unwrap()))
            })
            .collect();
        let error = pollster::block_on(study.train_round(&mut trainers, |_, _| {})).unwrap_err();
        assert!(error.to_string().starts_with("`deep` (seed 1): training diverged"), "{error}");
        assert_eq!((study.runs()[0].history.epochs.len(), study.runs()[1].history.epochs.len()), (1, 0));
    }
}
