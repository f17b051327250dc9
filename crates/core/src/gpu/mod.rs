//! Everything that talks to the GPU: the connection (`context`), the kernel machinery
//! (`kernel`), the kernels one family per module (`ops`), a model's buffers and bound dispatches
//! (`dispatches`), the trainer, its dispatch timing, and kernel tuning (`autotune`, a leaf).

pub mod autotune;
pub mod context;
pub mod dispatches;
pub mod kernel;
pub mod ops;
pub mod timing;
pub mod trainer;
