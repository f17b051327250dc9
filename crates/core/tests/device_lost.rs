//! A GPU device lost in the middle of training gives a named error, never a hang or a panic,
//! and training starts again on a fresh device.

use std::sync::Arc;

use fashion_core::{BackendError, BackendFailure, GpuContext, GpuTrainer, ModelSpec, TrainConfig, TrainError};
use fashion_data::{load_splits, DatasetName};

fn fresh_gpu() -> Arc<GpuContext> {
    Arc::new(pollster::block_on(GpuContext::new()).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn a_lost_device_is_named_and_a_fresh_one_trains() {
    let splits = load_splits(DatasetName::Fashion, None).unwrap_or_else(|e| panic!("{e}"));
    let (train, test) = (splits.train.take(600), splits.test.take(300));
    let spec = ModelSpec::preset("baseline").unwrap();
    let config = TrainConfig { steps_per_submit: 2, ..TrainConfig::default() };

    let gpu = fresh_gpu();
    let mut trainer = GpuTrainer::new(gpu.clone(), &spec, config.clone(), &train, &test).unwrap();
    pollster::block_on(trainer.run_epoch(|_| {})).unwrap();
    gpu.destroy_device();
    assert!(gpu.lost().is_some(), "the context knows its device is gone");
    let error = pollster::block_on(trainer.run_epoch(|_| {})).unwrap_err();
    assert!(matches!(error, TrainError::Backend(BackendError { failure: BackendFailure::DeviceLost, .. })), "{error}");
    assert!(error.to_string().contains("device was lost"), "{error}");
    assert!(matches!(
        pollster::block_on(trainer.params()),
        Err(TrainError::Backend(BackendError { failure: BackendFailure::DeviceLost, .. }))
    ));
    drop(trainer);

    let mut again = GpuTrainer::new(fresh_gpu(), &spec, config, &train, &test).unwrap();
    let stats = pollster::block_on(again.run_epoch(|_| {})).unwrap();
    assert!(stats.loss.is_finite(), "{}", stats.study_line());
}
