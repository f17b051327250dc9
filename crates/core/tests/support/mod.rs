//! What the GPU kernel tests share besides `common`: the single-kernel harness.

pub mod single_kernel;
