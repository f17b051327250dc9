//! Model files: the current model as `.safetensors`, Keras, ONNX or TF.js for download, and a
//! loaded `.safetensors` or Keras `.keras` file used instead of training.

use std::rc::Rc;

use fashion_core::train::limit;
use fashion_core::weights::{to_safetensors, weights_for_any_preset};
use fashion_core::{ModelSpec, PRESETS};
use fashion_interop::Format;
use futures::lock::Mutex;

use super::engine::{Engine, Run};
use crate::protocol::Status;
use crate::settings::Settings;

/// The model and weights of a file: a Keras `.keras` model (a zip) as it is, or for a
/// `.safetensors` file the preset the page's `settings` select, or whichever preset it fits; why
/// not, in words.
pub(crate) fn fitting(settings: &str, bytes: &[u8]) -> Result<(ModelSpec, Vec<f32>), String> {
    if fashion_interop::looks_like_keras(bytes) {
        return fashion_interop::import_keras(bytes).map_err(|error| format!("cannot use this Keras file: {error}"));
    }
    let chosen = Settings::from_query(settings).model_spec().map_err(|e| e.to_string())?;
    weights_for_any_preset(&chosen, bytes).map_err(|error| format!("cannot use this weights file: {error}"))
}

impl Engine {
    /// The current model as `.safetensors`, or exported as `export`, named after the dataset and
    /// the model.
    pub(crate) async fn weights_file(&self, export: Option<Format>) -> Result<(String, Vec<u8>), String> {
        let run = self.run.borrow().clone().ok_or("train or load a model first")?;
        let params = run.trainer.lock().await.params().await.map_err(|e| e.to_string())?;
        let stem = format!("{}-{}", self.settings.borrow().dataset, run.spec.name);
        match export {
            None => Ok((format!("{stem}.safetensors"), to_safetensors(&run.spec, &params))),
            Some(format) => fashion_interop::export(&run.spec, &params, format)
                .map(|bytes| (format.file_name(&stem), bytes))
                .map_err(|error| format!("cannot export the model as {}: {error}", format.title())),
        }
    }

    /// Uses `params` of `spec` (from [`fitting`]) instead of training.
    pub(crate) async fn use_weights(&self, spec: ModelSpec, params: Vec<f32>) -> Result<(), String> {
        let mut settings = self.settings();
        self.reset();
        self.set_status(Status::Loading);
        // A Keras model that is none of the presets keeps the settings' preset for the next Train.
        if spec.name != settings.model && PRESETS.contains(&spec.name.as_str()) {
            settings.model = spec.name.clone();
            self.change_settings(settings.clone());
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
        *self.run.borrow_mut() = Some(run.clone());
        self.set_model_ready(true);
        self.refresh_predictions(&run).await?;
        self.set_status(Status::Done);
        Ok(())
    }
}
