//! Weights files: the current weights as `.safetensors` for download, and a loaded file used
//! instead of training.

use std::rc::Rc;

use fashion_core::frontend::{limit, weights_for_any_preset};
use fashion_core::weights::to_safetensors;
use futures::lock::Mutex;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{Run, Session, Status};

impl Session {
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

    pub(super) async fn use_weights(self, bytes: Vec<u8>) -> Result<(), String> {
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
