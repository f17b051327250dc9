//! Everything that talks to the GPU.

pub mod autotune;
pub mod context;
pub mod kernels;
pub mod oneshot;
pub mod trainer;
