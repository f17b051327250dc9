//! The CPU backend: the fallback where there is no GPU adapter (and the page's `backend=cpu`),
//! training with the fast kernels of [`kernels`] (or the kernel twins, the reference).

pub mod kernels;
mod model;
mod trainer;

pub use kernels::CpuKernels;
pub use model::{BatchOutcome, CpuModel, Mode};
pub use trainer::CpuTrainer;
