//! What a user sets of a training run, checked on its way in: the recipe (epochs, batch,
//! learning rate, seed, what the epoch's figures measure) turned into a [`TrainConfig`], and the
//! datasets cut to the user's limits. Both front-ends (`fashion-gpu`'s flags, the page's link)
//! take their settings through here.

use fashion_data::Dataset;

use crate::optimizer::AdamConfig;
use crate::train::{EpochMetrics, TrainConfig, TrainError};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
