//! A learning rate that blows the loss up stops training at the end of the chunk where it
//! happened, names the epoch and steps, keeps the last good weights, and lets training continue
//! with a lower rate — on the GPU and on the CPU.

mod common;

use common::gpu;
use fashion_core::{CpuTrainer, GpuTrainer, ModelSpec, TrainConfig, TrainError, Trainer};
use fashion_data::{load_splits, DatasetName};

fn silly_config() -> TrainConfig {
    let mut config = TrainConfig { batch: 50, steps_per_submit: 4, eval_batch: 250, ..TrainConfig::default() };
    config.adam.learning_rate = 1e20;
    config
}

fn check_divergence_and_recovery(mut trainer: Trainer) {
    let before = pollster::block_on(trainer.params()).unwrap();
    let error = pollster::block_on(trainer.run_epoch(|_| {})).unwrap_err();
    let TrainError::Diverged { epoch, first_step, last_step, loss, learning_rate } = error.clone() else {
        panic!("expected a divergence, got {error}");
    };
    let message = error.to_string();
    assert_eq!((epoch, learning_rate), (1, 1e20), "{message}");
    assert!(!loss.is_finite(), "{message}");
    assert!(first_step >= 1 && last_step >= first_step && last_step <= 10, "{message}");
    assert!(message.contains("lower the learning rate") && message.contains(&format!("step {first_step}")));

    let kept = pollster::block_on(trainer.params()).unwrap();
    assert!(kept.iter().all(|p| p.is_finite()), "the kept weights must be finite");
    if first_step == 1 {
        assert_eq!(kept, before, "undone back to the start: the initial weights");
    }

    trainer.set_learning_rate(1e-3).unwrap();
    let stats = pollster::block_on(trainer.run_epoch(|_| {})).unwrap();
    assert!(stats.loss.is_finite() && stats.test_accuracy > 0.5, "continued: {}", stats.study_line());
    assert!(matches!(trainer.set_learning_rate(-1.0), Err(TrainError::Config(_))));
}

fn data() -> (fashion_data::Dataset, fashion_data::Dataset) {
    let splits = load_splits(DatasetName::Fashion, None)
        .unwrap_or_else(|e| panic!("{e}\n(the tests need the real data: run scripts/install-data.sh)"));
    (splits.train.take(1000), splits.test.take(500))
}

#[test]
fn gpu_training_stops_keeps_good_weights_and_continues() {
    let (train, test) = data();
    let spec = ModelSpec::preset("baseline").unwrap();
    let trainer = GpuTrainer::new(gpu(), &spec, silly_config(), &train, &test).unwrap();
    check_divergence_and_recovery(Trainer::Gpu(trainer));
}

#[test]
fn cpu_training_stops_keeps_good_weights_and_continues() {
    let (train, test) = data();
    let spec = ModelSpec::preset("baseline").unwrap();
    let trainer = CpuTrainer::new(&spec, silly_config(), &train, &test).unwrap();
    check_divergence_and_recovery(Trainer::Cpu(trainer));
}
