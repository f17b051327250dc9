//! What both front-ends (the native harness and the page) do around the trainers, written once:
//! cutting the datasets to the user's limits, turning a recipe into a checked [`TrainConfig`],
//! building a trainer on the GPU with the CPU as fallback, the per-epoch history rows
//! (JSON, CSV), and loading a weights file into whichever preset it fits.

use std::sync::Arc;

use fashion_data::Dataset;
use serde_json::{json, Value};

use crate::gpu::context::GpuContext;
use crate::gpu::ops::KernelChoice;
use crate::gpu::trainer::GpuTrainer;
use crate::model::{ModelSpec, Op, PRESETS};
use crate::optimizer::AdamConfig;
use crate::train::{EpochMetrics, EpochStats, TrainConfig, TrainError};
use crate::trainer::Trainer;
use crate::weights::{from_safetensors, WeightsError};

/// The first `n` samples of `dataset` (all of them without a limit or past its end).
pub fn limit(dataset: &Dataset, n: Option<usize>) -> Dataset {
    match n {
        Some(n) if n < dataset.len() => dataset.take(n),
        _ => dataset.clone(),
    }
}

/// What a user sets of the training recipe; the defaults are the study's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recipe {
    pub epochs: usize,
    pub batch: usize,
    /// Adam's learning rate (the initial one when the model has a decay schedule).
    pub learning_rate: f32,
    /// Seeds the weight init, every epoch's shuffle and dropout's masks.
    pub seed: u64,
    /// What the epoch's training loss and accuracy measure (`--metrics`, the page's `metrics=`).
    pub metrics: EpochMetrics,
}

impl Default for Recipe {
    fn default() -> Self {
        let study = TrainConfig::default();
        Recipe {
            epochs: study.epochs,
            batch: study.batch,
            learning_rate: study.adam.learning_rate,
            seed: study.seed,
            metrics: study.metrics,
        }
    }
}

impl Recipe {
    /// The training settings, checked: a setting no trainer can run is named.
    pub fn config(&self) -> Result<TrainConfig, TrainError> {
        let config = TrainConfig {
            epochs: self.epochs,
            batch: self.batch,
            adam: AdamConfig { learning_rate: self.learning_rate, ..AdamConfig::default() },
            seed: self.seed,
            metrics: self.metrics,
            ..TrainConfig::default()
        };
        config.validate()?;
        Ok(config)
    }
}

/// A GPU trainer on `gpu` when there is one and it can hold the model (with `kernels`, else the
/// adapter's set), otherwise a CPU trainer, with the reason the GPU was not used.
pub fn trainer_with_cpu_fallback(
    gpu: Result<Arc<GpuContext>, String>,
    kernels: Option<KernelChoice>,
    spec: &ModelSpec,
    gpu_config: TrainConfig,
    cpu_config: TrainConfig,
    train: &Dataset,
    test: &Dataset,
) -> Result<(Trainer, Option<String>), TrainError> {
    let why_cpu = match gpu {
        Ok(gpu) => match match kernels {
            Some(kernels) => GpuTrainer::with_kernels(gpu, spec, gpu_config, kernels, train, test),
            None => GpuTrainer::new(gpu, spec, gpu_config, train, test),
        } {
            Ok(trainer) => return Ok((Trainer::Gpu(trainer), None)),
            Err(error) => format!("The GPU trainer could not start ({error})."),
        },
        Err(reason) => reason,
    };
    Ok((Trainer::cpu(spec, cpu_config, train, test)?, Some(why_cpu)))
}

/// Loads a `.safetensors` file for the `chosen` model, or, when it does not fit, for whichever
/// preset it fits; the error is the chosen model's.
pub fn weights_for_any_preset(chosen: &ModelSpec, bytes: &[u8]) -> Result<(ModelSpec, Vec<f32>), WeightsError> {
    match from_safetensors(chosen, bytes) {
        Ok(params) => Ok((chosen.clone(), params)),
        Err(error) => PRESETS
            .iter()
            .filter_map(|name| ModelSpec::preset(name).ok())
            .find_map(|spec| from_safetensors(&spec, bytes).ok().map(|params| (spec, params)))
            .ok_or(error),
    }
}

/// What the first layer learned, as images: for a Dense layer on square images, each unit's
/// weights over the input pixels; for a Conv2D layer, each filter's taps on the first channel.
/// Each image is `side × side`, row-major, scaled by its largest |w| into [-1, 1] (0 stays 0, so
/// a diverging colour map shows sign and relative strength). `None` for other first layers.
pub fn first_layer_weight_images(spec: &ModelSpec, params: &[f32]) -> Option<(usize, Vec<Vec<f32>>)> {
    let scaled = |w: Vec<f32>| {
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        w.into_iter().map(|v| if max > 0.0 { v / max } else { 0.0 }).collect::<Vec<f32>>()
    };
    // Zero padding has no weights: the first layer is the conv it pads for.
    match spec.ops().into_iter().find(|op| !matches!(op, Op::ZeroPad2D { .. }))? {
        Op::Dense { layout, .. } => {
            let side = (layout.inputs as f64).sqrt() as usize;
            if side * side != layout.inputs {
                return None;
            }
            let kernel = params.get(layout.kernel_offset..layout.kernel_offset + layout.kernel_len())?;
            let images = (0..layout.units)
                .map(|unit| scaled((0..layout.inputs).map(|k| kernel[k * layout.units + unit]).collect()))
                .collect();
            Some((side, images))
        }
        Op::Conv2D { layout, .. } => {
            let (k, channels, filters) = (layout.kernel_size, layout.channels, layout.filters);
            let kernel = params.get(layout.kernel_offset..layout.kernel_offset + layout.kernel_len())?;
            let images = (0..filters)
                .map(|filter| scaled((0..k * k).map(|tap| kernel[tap * channels * filters + filter]).collect()))
                .collect();
            Some((k, images))
        }
        _ => None,
    }
}

/// The columns of a training history as CSV (`fashion-gpu compare`'s `history.csv`).
pub const HISTORY_CSV_HEADER: &str = "model,seed,epoch,loss,train_accuracy,test_loss,test_accuracy,seconds";

/// One epoch of `model` trained with `seed`, as a row under [`HISTORY_CSV_HEADER`].
pub fn history_csv_row(model: &str, seed: u64, stats: &EpochStats) -> String {
    format!(
        "{model},{seed},{},{},{},{},{},{:.3}",
        stats.epoch, stats.loss, stats.train_accuracy, stats.test_loss, stats.test_accuracy, stats.seconds
    )
}

/// One epoch as a JSON object (`fashion-gpu train --log-json`, the history JSON), with what its
/// training loss and accuracy measure.
pub fn epoch_json(stats: &EpochStats, metrics: EpochMetrics) -> Value {
    json!({
        "epoch": stats.epoch,
        "metrics": metrics.as_str(),
        "loss": stats.loss,
        "train_accuracy": stats.train_accuracy,
        "test_loss": stats.test_loss,
        "test_accuracy": stats.test_accuracy,
        "seconds": stats.seconds,
        "samples_per_second": stats.samples_per_second(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> EpochStats {
        EpochStats {
            epoch: 2,
            loss: 0.5,
            train_accuracy: 0.75,
            test_loss: 0.25,
            test_accuracy: 0.875,
            train_samples: 100,
            seconds: 1.23456,
        }
    }

    #[test]
    fn history_rows_have_the_header_columns() {
        let row = history_csv_row("deep", 3, &stats());
        assert_eq!(row, "deep,3,2,0.5,0.75,0.25,0.875,1.235");
        assert_eq!(row.split(',').count(), HISTORY_CSV_HEADER.split(',').count());
        let json = epoch_json(&stats(), EpochMetrics::AfterStep);
        assert_eq!((json["epoch"].as_u64(), json["test_accuracy"].as_f64()), (Some(2), Some(0.875)));
        assert_eq!(json["metrics"], "study");
    }

    #[test]
    fn recipes_are_checked_and_limits_cut() {
        assert_eq!(Recipe::default().config().unwrap(), TrainConfig::default());
        let bad = Recipe { batch: 0, ..Recipe::default() }.config().unwrap_err().to_string();
        assert!(bad.contains("batch size must be at least 1"), "{bad}");
        let data = crate::bench::synthetic_dataset(5, 1);
        assert_eq!(limit(&data, Some(3)).len(), 3);
        assert_eq!(limit(&data, Some(9)).len(), 5);
        assert_eq!(limit(&data, None).len(), 5);
    }

    #[test]
    fn first_layer_images_are_each_units_column_scaled_by_its_largest_weight() {
        let baseline = ModelSpec::preset("baseline").unwrap();
        let mut params = vec![0.0; baseline.total_params()];
        let units = 256;
        // Unit 2: −3 at pixel 0, +1.5 at pixel 783.
        params[2] = -3.0;
        params[783 * units + 2] = 1.5;
        let (side, images) = first_layer_weight_images(&baseline, &params).unwrap();
        assert_eq!((side, images.len(), images[2].len()), (28, 256, 784));
        assert_eq!((images[2][0], images[2][783], images[2][1]), (-1.0, 0.5, 0.0));
        assert!(images[0].iter().all(|&v| v == 0.0), "an all-zero unit stays 0");
        let cnn = ModelSpec::preset("cnn").unwrap();
        let params = crate::init::glorot_uniform_params(&cnn, 1);
        let (side, filters) = first_layer_weight_images(&cnn, &params).unwrap();
        assert_eq!((side, filters.len()), (3, 32));
        let conv = cnn.param_layout().conv[0];
        let tap = |filter: usize, tap: usize| params[conv.kernel_offset + tap * 32 + filter];
        let max = (0..9).map(|t| tap(5, t).abs()).fold(0.0, f32::max);
        assert!((filters[5][4] - tap(5, 4) / max).abs() < 1e-6);
    }

    #[test]
    fn weights_load_into_the_preset_they_fit() {
        let baseline = ModelSpec::preset("baseline").unwrap();
        let params = crate::init::glorot_uniform_params(&baseline, 1);
        let bytes = crate::weights::to_safetensors(&baseline, &params);
        let deep = ModelSpec::preset("deep").unwrap();
        let (spec, loaded) = weights_for_any_preset(&deep, &bytes).unwrap();
        assert_eq!((spec.name.as_str(), loaded), ("baseline", params));
        assert!(weights_for_any_preset(&deep, b"not a weights file").is_err());
    }
}
