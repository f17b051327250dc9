//! fashion-gpu's core: the model spec and the study's presets, plain-Rust reference maths, and
//! the wgpu trainer whose kernels live in `shaders/`. Both front-ends (the native harness and
//! the web app) train through this crate.

pub mod bench;
pub mod cpu_trainer;
pub mod epoch;
pub mod gpu;
pub mod init;
pub mod model;
pub mod optimizer;
pub mod reference;
pub mod trainer;
pub mod weights;

pub use cpu_trainer::CpuTrainer;
pub use epoch::{EpochStats, Evaluation, Progress, TrainConfig, TrainError};
pub use gpu::context::{AdapterSummary, Allocations, GpuContext, GpuError, TrackedBuffer};
pub use gpu::trainer::GpuTrainer;
pub use model::{Activation, Layer, ModelError, ModelSpec, PRESETS};
pub use optimizer::AdamConfig;
pub use trainer::{Backend, Trainer};
