//! Pausing a run, saving it at every epoch's end, and picking it up again after a reload (or a
//! lost device): the run's whole state is the core's [`SavedRun`] (trainer state, history, model,
//! the page's settings), kept in one OPFS file ([`super::opfs`]). A saved run is checked whole
//! (build, model, sizes, run identity) before anything of it is used, so a refused one leaves
//! the page as it was.

use std::rc::Rc;

use fashion_core::gpu::ops::KernelChoice;
use fashion_core::train::{limit, SavedRun};
use fashion_core::trainer::CPU_KERNELS;
use fashion_core::ModelSpec;
use futures::lock::Mutex;
use wasm_bindgen_futures::spawn_local;

use super::engine::{Engine, Run};
use super::opfs::{self, StorageError};
use crate::protocol::{Event, Found, Status};
use crate::settings::{BackendChoice, Settings};

/// The saved run's file.
const SAVED_RUN: &str = "fashion-gpu-saved-run.bin";

/// A saved run read and checked whole: the settings and model it reproduces.
struct Checked {
    saved: SavedRun,
    settings: Settings,
    spec: ModelSpec,
}

/// Reads `bytes` as a saved run of this build and of a model this build defines the same way.
fn check(bytes: &[u8]) -> Result<Checked, String> {
    let saved = SavedRun::from_bytes(bytes).map_err(|e| e.to_string())?;
    let (settings, notices) = Settings::parse_query(&saved.settings);
    if let Some(notice) = notices.first() {
        return Err(format!("the saved run's settings do not read back: {notice}"));
    }
    let spec = settings.model_spec().map_err(|e| format!("the saved run's model: {e}"))?;
    saved.check_model(&spec).map_err(|e| e.to_string())?;
    if saved.state.epoch >= settings.epochs {
        return Err(format!("the saved run has trained all its {} epochs already", settings.epochs));
    }
    Ok(Checked { saved, settings, spec })
}

impl Engine {
    /// Asks the running epoch to hold after its current chunk.
    pub(crate) fn pause_training(&self) {
        if self.status.get() == Status::Training {
            self.pause.pause();
        }
    }

    /// Runs one epoch's future under the pause switch; the status says `paused` while it holds.
    pub(super) async fn pausable<F: std::future::Future>(&self, epoch: F) -> F::Output {
        self.pause
            .run(epoch, |holding| {
                self.set_status(if holding { Status::Paused } else { Status::Training });
                if holding {
                    self.log("Paused after the current chunk.".into());
                }
            })
            .await
    }

    /// Saves the run as it stands after an epoch (weights, Adam, history, settings); a storage
    /// that fails is named once and the run goes on unsaved.
    pub(super) async fn save_run(&self, run: &Run) {
        if self.saving_off.get() {
            return;
        }
        let saved = {
            let trainer = run.trainer.lock().await;
            let identity = trainer.run_identity(&run.spec.name);
            match trainer.state(identity).await {
                Ok(state) => SavedRun::new(&run.spec, run.settings.to_query(), self.history.borrow().clone(), state),
                Err(error) => return self.stop_saving(format!("the run's state could not be read back: {error}")),
            }
        };
        if let Err(error) = opfs::write(SAVED_RUN, &saved.to_bytes()).await {
            self.stop_saving(error.to_string());
        }
    }

    fn stop_saving(&self, why: String) {
        self.saving_off.set(true);
        self.log(format!("Not saving this run: {why}"));
        self.emit(Event::StorageNotice(Some(why)));
    }

    /// A new run replaces the saved one (forgotten before the new run's first epoch), and is
    /// saved again even where saving the last one failed.
    pub(super) async fn start_saving_anew(&self) {
        self.emit(Event::StorageNotice(None));
        self.saving_off.set(false);
        self.forget_saved_run().await;
    }

    /// Forgets the saved run: it was replaced, discarded or trained to its end.
    pub(crate) async fn forget_saved_run(&self) {
        self.emit(Event::Found(None));
        if let Err(error) = opfs::remove(SAVED_RUN).await {
            // The next save replaces it anyway; only a reload before then would offer it.
            web_sys::console::warn_1(&format!("fashion-gpu: could not remove the saved run: {error}").into());
        }
    }

    /// What is saved, and whether it is the run of the settings at hand.
    async fn find_saved_run(&self) -> (Option<Found>, bool) {
        match opfs::read(SAVED_RUN).await {
            Ok(None) | Err(StorageError::Unavailable(_)) => (None, false),
            Ok(Some(bytes)) => match check(&bytes) {
                Ok(c) => {
                    let own = c.saved.settings == self.settings.borrow().to_query();
                    let what = format!(
                        "`{}` on {}, {} of {} epochs trained",
                        c.spec.name, c.settings.dataset, c.saved.state.epoch, c.settings.epochs
                    );
                    (Some(Found::Resumable(what)), own)
                }
                Err(why) => (Some(Found::Refused(why)), false),
            },
            Err(error) => (Some(Found::Refused(error.to_string())), false),
        }
    }

    /// Looks for a run saved by an earlier visit and offers it (or says why not); then starts
    /// training when the link asks to (`autostart`), unless the saved run is this link's own:
    /// a reload mid-run offers to resume instead of starting over.
    pub(crate) async fn look_for_saved_run(&self, autostart: bool) {
        let (found, own) = self.find_saved_run().await;
        // Training started meanwhile (the Train button): the saved run is being replaced.
        if self.status.get() != Status::Idle {
            return;
        }
        self.emit(Event::Found(found));
        if autostart && own {
            self.log("This link's run was saved mid-way: resume it, or press Train to start over.".into());
        } else if autostart {
            if let Err(message) = self.train().await {
                self.fail_naming_device_loss(message).await;
            }
        }
    }

    /// After the device was lost mid-run: offers the run's last saved epoch.
    pub(crate) fn offer_saved_run(&self) {
        let engine = self.clone();
        spawn_local(async move {
            let (found, _) = engine.find_saved_run().await;
            engine.emit(Event::Found(found));
        });
    }

    /// Goes on with the saved run: its settings, weights, Adam's state and history, for the
    /// epochs still to go.
    pub(crate) async fn go_on_with_saved_run(&self) -> Result<(), String> {
        let result = self.resume_saved_run().await;
        if let Err(message) = &result {
            self.emit(Event::Found(Some(Found::Refused(message.clone()))));
        }
        result
    }

    async fn resume_saved_run(&self) -> Result<(), String> {
        let bytes = opfs::read(SAVED_RUN).await.map_err(|e| e.to_string())?.ok_or("there is no saved run any more")?;
        let Checked { saved, settings, spec } = check(&bytes)?;
        self.reset();
        self.emit(Event::Found(None));
        self.saving_off.set(false);
        self.emit(Event::StorageNotice(None));
        self.set_status(Status::Loading);
        self.change_settings(settings.clone());
        // The run goes on with the kernels it started with (they sum in their own order); a
        // run that trained on the CPU goes on there.
        let kernels = KernelChoice::from_description(&saved.state.run.kernels);
        let mut backend_settings = settings.clone();
        if saved.state.run.kernels == CPU_KERNELS {
            backend_settings.backend = BackendChoice::Cpu;
        }
        let splits = self.load_data(&settings).await?;
        let train = limit(&splits.train, settings.train_limit);
        let test = limit(&splits.test, settings.test_limit);
        let mut trainer = self.make_trainer(&backend_settings, &spec, &train, &test, kernels).await?;
        let identity = trainer.run_identity(&spec.name);
        trainer.restore(&saved.state, &identity).map_err(|e| format!("cannot resume the saved run: {e}"))?;
        self.note_gpu_allocations();
        self.log(format!(
            "Resuming `{}` on {} after epoch {} of {} ({} backend, kernels: {})",
            spec.name,
            settings.dataset,
            saved.state.epoch,
            settings.epochs,
            trainer.backend().as_str(),
            identity.kernels
        ));
        for stats in &saved.history {
            self.log(stats.study_line());
        }
        self.set_history(saved.history);
        let run = Rc::new(Run { spec, trainer: Mutex::new(trainer), test, settings: settings.clone() });
        *self.run.borrow_mut() = Some(run.clone());
        self.set_model_ready(true);
        self.refresh_predictions(&run).await?;
        self.train_epochs(&run, settings.epochs - saved.state.epoch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fashion_core::train::{RunIdentity, TrainerState};
    use fashion_core::EpochStats;

    /// The bytes of a saved `baseline` run after `epochs` epochs of the page's `query`.
    fn saved(query: &str, epochs: usize) -> Vec<u8> {
        let spec = ModelSpec::preset("baseline").unwrap();
        let stats = |epoch| EpochStats {
            epoch,
            loss: 1.0,
            train_accuracy: 0.5,
            test_loss: 1.0,
            test_accuracy: 0.5,
            train_samples: 100,
            seconds: 1.0,
        };
        let state = TrainerState {
            run: RunIdentity {
                model: spec.name.clone(),
                seed: 1,
                batch: 100,
                kernels: CPU_KERNELS.into(),
                metrics: "step".into(),
            },
            epoch: epochs,
            global_step: epochs as u64,
            learning_rate: 1e-3,
            params: vec![0.0; spec.total_params()],
            adam_m: vec![0.0; spec.trainable_params()],
            adam_v: vec![0.0; spec.trainable_params()],
        };
        SavedRun::new(&spec, query.into(), (1..=epochs).map(stats).collect(), state).to_bytes()
    }

    #[test]
    fn a_saved_run_is_offered_only_when_it_reproduces_and_has_epochs_to_go() {
        let query = Settings::from_query("epochs=3&train_limit=100").to_query();
        let checked = check(&saved(&query, 1)).unwrap();
        assert_eq!((checked.settings.epochs, checked.spec.name.as_str()), (3, "baseline"));

        let done = check(&saved(&query, 3)).err().unwrap();
        assert!(done.contains("trained all its 3 epochs"), "{done}");
        let unreadable = check(&saved("epochs=3&model=nope", 1)).err().unwrap();
        assert!(unreadable.contains("settings do not read back"), "{unreadable}");
        // The same preset with another L2 factor is another model.
        let other = check(&saved("epochs=3&l2=0.5", 1)).err().unwrap();
        assert!(other.contains("is of another model"), "{other}");
    }
}
