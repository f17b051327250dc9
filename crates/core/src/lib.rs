//! fashion-gpu's core, in layers: the model spec and the study's presets (`model`), the
//! backend-neutral training contract and what a user sets of it (`train`), the plain-Rust twin
//! of every kernel (`reference`), the two backends (`cpu`, `gpu`, whose kernels live in
//! `shaders/`), one `Trainer` over both (which also explains a prediction: `explain`), the
//! side-by-side comparison of several models (`study`), the training benchmark (`bench`) and
//! trained weights as a file (`weights`). It computes; what the front-ends show of it (history
//! files, the study's colours, the benchmark's report) is crates/report's.

pub mod bench;
pub mod cpu;
pub mod explain;
pub mod gpu;
pub mod init;
pub mod model;
pub mod optimizer;
pub mod platform;
pub mod reference;
pub mod study;
pub mod train;
pub mod trainer;
pub mod weights;

pub use cpu::{CpuKernels, CpuTrainer};
pub use explain::{Explanation, LayerActivations};
pub use gpu::context::{AdapterSummary, Allocations, GpuContext, GpuError, TrackedBuffer};
pub use gpu::ops::KernelChoice;
pub use gpu::trainer::GpuTrainer;
pub use model::{Activation, Layer, ModelError, ModelSpec, PRESETS};
pub use optimizer::AdamConfig;
pub use train::{
    Backend, BackendError, BackendFailure, EpochMetrics, EpochStats, Evaluation, Progress, TrainConfig, TrainError,
};
pub use trainer::Trainer;
