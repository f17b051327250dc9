//! The CPU backend: the same epoch as the GPU trainer, computed with the reference twins. It is
//! the fallback where there is no GPU adapter; on the web it yields to the event loop between
//! steps so the page stays responsive.

use fashion_data::{shuffled_indices, Dataset, PIXELS_PER_IMAGE};
use web_time::Instant;

use crate::epoch::{batches, EpochStats, Evaluation, Progress, TrainConfig, TrainError};
use crate::init::glorot_uniform_params;
use crate::model::ModelSpec;
use crate::reference::{gather_batch, CpuModel};

/// Trains one model on the CPU.
pub struct CpuTrainer {
    config: TrainConfig,
    model: CpuModel,
    /// The model at the start of the last chunk of steps whose losses were all finite.
    last_good: Option<CpuModel>,
    inputs: usize,
    train: Dataset,
    test: Dataset,
    epoch: usize,
}

impl CpuTrainer {
    pub fn new(spec: &ModelSpec, config: TrainConfig, train: &Dataset, test: &Dataset) -> Result<Self, TrainError> {
        config.validate()?;
        if train.is_empty() || test.is_empty() {
            return Err(TrainError::Config("the training and test sets must not be empty".into()));
        }
        let model = CpuModel::new(spec, glorot_uniform_params(spec, config.seed), config.adam, config.seed);
        Ok(CpuTrainer {
            config,
            model,
            last_good: None,
            inputs: spec.inputs,
            train: train.clone(),
            test: test.clone(),
            epoch: 0,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Trains one epoch over the same shuffle the GPU trainer would use, then evaluates.
    pub async fn run_epoch(&mut self, mut on_progress: impl FnMut(&Progress)) -> Result<EpochStats, TrainError> {
        let started = Instant::now();
        let epoch = self.epoch + 1;
        let order = shuffled_indices(self.train.len(), self.config.seed, epoch as u64);
        let train_batches: Vec<_> = batches(self.train.len(), self.config.batch).collect();
        let (mut loss_sum, mut hits) = (0.0f64, 0u64);
        let mut done = 0;
        // Checked per chunk of steps, as the GPU trainer does, with the same undo.
        for chunk in train_batches.chunks(self.config.steps_per_submit) {
            let chunk_start = self.model.clone();
            for &(start, rows) in chunk {
                let (x, labels) =
                    gather_batch(self.train.images(), self.train.labels(), PIXELS_PER_IMAGE, &order, start, rows);
                let outcome = self.model.train_step(&x, &labels);
                loss_sum += outcome.loss_sum;
                hits += u64::from(outcome.correct);
                done += 1;
                let seconds = started.elapsed().as_secs_f64();
                on_progress(&Progress {
                    epoch,
                    step: done,
                    steps: train_batches.len(),
                    samples_done: start + rows,
                    seconds,
                });
                yield_now().await;
            }
            if !loss_sum.is_finite() {
                let last_step = self.model.step();
                self.model = self.last_good.take().unwrap_or(chunk_start);
                self.model.set_learning_rate(self.config.adam.learning_rate);
                return Err(TrainError::Diverged {
                    epoch,
                    first_step: self.model.step() + 1,
                    last_step,
                    loss: loss_sum as f32,
                    learning_rate: self.config.adam.learning_rate,
                });
            }
            self.last_good = Some(chunk_start);
        }
        let train_seconds = started.elapsed().as_secs_f64();

        let test = self.evaluate().await;
        self.epoch = epoch;
        let train_n = self.train.len() as f64;
        let loss = (loss_sum / train_n) as f32;
        Ok(EpochStats {
            epoch,
            loss,
            train_accuracy: (hits as f64 / train_n) as f32,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            train_samples: self.train.len(),
            seconds: train_seconds,
        })
    }

    /// The test set's loss and accuracy for the current weights (what an epoch ends with).
    pub async fn evaluate(&self) -> Evaluation {
        let identity: Vec<u32> = (0..self.test.len() as u32).collect();
        let (mut loss_sum, mut hits) = (0.0f64, 0u64);
        for (start, rows) in batches(self.test.len(), self.config.eval_batch) {
            let (x, labels) =
                gather_batch(self.test.images(), self.test.labels(), PIXELS_PER_IMAGE, &identity, start, rows);
            let outcome = self.model.evaluate(&x, &labels);
            loss_sum += outcome.loss_sum;
            hits += u64::from(outcome.correct);
            yield_now().await;
        }
        let n = self.test.len() as f64;
        Evaluation { loss: (loss_sum / n) as f32, accuracy: (hits as f64 / n) as f32 }
    }

    /// Softmax probabilities `[rows, classes]` for images given as pixels in [0, 1].
    pub fn predict(&self, pixels: &[f32]) -> Result<Vec<f32>, TrainError> {
        let inputs = self.inputs;
        if pixels.is_empty() || !pixels.len().is_multiple_of(inputs) {
            return Err(TrainError::Config(format!(
                "predict needs whole images of {inputs} pixels, got {} values",
                pixels.len()
            )));
        }
        Ok(self.model.predict(pixels, pixels.len() / inputs))
    }

    /// Changes Adam's learning rate for the steps to come (e.g. after [`TrainError::Diverged`]).
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<(), TrainError> {
        self.config.set_learning_rate(learning_rate)?;
        self.model.set_learning_rate(learning_rate);
        Ok(())
    }

    pub fn params(&self) -> Vec<f32> {
        self.model.params.clone()
    }

    pub fn set_params(&mut self, params: &[f32]) -> Result<(), TrainError> {
        if params.len() != self.model.params.len() {
            return Err(TrainError::Config(format!(
                "expected {} parameters, got {}",
                self.model.params.len(),
                params.len()
            )));
        }
        self.model.params.copy_from_slice(params);
        Ok(())
    }
}

/// Lets the browser run its event loop (a zero-delay timer); natively there is nothing to yield.
#[cfg(target_arch = "wasm32")]
async fn yield_now() {
    use wasm_bindgen::{JsCast, JsValue};
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let set_timeout = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("setTimeout"))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let scheduled = set_timeout.map(|f| f.call2(&JsValue::NULL, &resolve, &JsValue::from(0)).is_ok());
        if scheduled != Some(true) {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

#[cfg(not(target_arch = "wasm32"))]
async fn yield_now() {}
