//! A batch too large for the adapter is refused before anything is allocated, naming the limit.

use std::sync::Arc;

use fashion_core::train::MAX_BATCH;
use fashion_core::{
    Activation, BackendError, BackendFailure, GpuContext, GpuTrainer, Layer, ModelSpec, TrainConfig, TrainError,
};
use fashion_data::{load_splits, DatasetName, PIXELS_PER_IMAGE};

#[test]
fn a_batch_over_the_adapters_limits_names_the_limit() {
    let gpu = Arc::new(pollster::block_on(GpuContext::new()).unwrap_or_else(|e| panic!("{e}")));
    let splits = load_splits(DatasetName::Fashion, None).unwrap_or_else(|e| panic!("{e}"));
    let (train, test) = (splits.train.take(300), splits.test.take(100));
    let limit = gpu.limits().max_storage_buffer_binding_size.min(gpu.limits().max_buffer_size);
    // The largest batch a trainer takes, and a hidden layer just wide enough that one batch of
    // its f32 outputs passes the limit.
    let batch = MAX_BATCH;
    let units = (limit / (batch as u64 * 4) + 1) as usize;
    let layers = vec![
        Layer::Dense { units, activation: Activation::Relu },
        Layer::Dense { units: 10, activation: Activation::Softmax },
    ];
    let spec = ModelSpec::new("wide", PIXELS_PER_IMAGE, layers).unwrap();
    let config = TrainConfig { batch, ..TrainConfig::default() };
    let before = gpu.allocations();
    let error = GpuTrainer::new(gpu.clone(), &spec, config, &train, &test).err().expect("the batch must be refused");
    assert!(matches!(error, TrainError::Backend(BackendError { failure: BackendFailure::TooLarge, .. })), "{error}");
    let message = error.to_string();
    assert!(message.contains("maxStorageBufferBindingSize") || message.contains("maxBufferSize"), "{message}");
    assert_eq!(gpu.allocations(), before, "nothing was allocated");
}

/// The 10,000-row cap is lavapipe's loop guard: it applies to CPU adapters (refused before any
/// allocation, naming why), not to GPUs, whose binding limits bound a batch.
#[test]
fn the_batch_cap_applies_to_cpu_adapters_only() {
    use fashion_core::gpu::context::AdapterSummary;
    use fashion_core::gpu::trainer::batch_cap;
    let adapter = |name: &str, device_type: &str| AdapterSummary {
        name: name.into(),
        backend: "Vulkan".into(),
        device_type: device_type.into(),
        driver: String::new(),
    };
    assert_eq!(batch_cap(&adapter("llvmpipe (LLVM 15.0.6, 256 bits)", "Cpu")), Some(MAX_BATCH));
    assert_eq!(batch_cap(&adapter("google swiftshader", "Other")), Some(MAX_BATCH), "named, with no type (the web)");
    assert_eq!(batch_cap(&adapter("NVIDIA H100 80GB HBM3", "DiscreteGpu")), None);

    let gpu = Arc::new(pollster::block_on(GpuContext::new()).unwrap_or_else(|e| panic!("{e}")));
    let splits = load_splits(DatasetName::Fashion, None).unwrap_or_else(|e| panic!("{e}"));
    let (train, test) = (splits.train.take(300), splits.test.take(100));
    let spec = ModelSpec::preset("baseline").unwrap();
    let config = TrainConfig { batch: MAX_BATCH + 1, ..TrainConfig::default() };
    let before = gpu.allocations();
    let built = GpuTrainer::new(gpu.clone(), &spec, config, &train, &test);
    if gpu.adapter.is_cpu() {
        let error = built.err().expect("a CPU adapter refuses the batch");
        assert!(error.to_string().contains("at most 10000 on a CPU implementation of a GPU"), "{error}");
        assert_eq!(gpu.allocations(), before, "nothing was allocated");
    } else if let Err(error) = built {
        assert!(!error.to_string().contains("at most 10000"), "a GPU has no such cap: {error}");
    }
}
