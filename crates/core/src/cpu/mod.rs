//! The CPU backend: the fallback where there is no GPU adapter (and the page's `backend=cpu`),
//! training with the kernel twins.

mod model;
mod trainer;

pub use model::{BatchOutcome, CpuModel, Mode};
pub use trainer::CpuTrainer;
