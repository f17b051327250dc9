//! The GPU tests of the core, one binary (each test binary links wgpu: slow on two cores). A
//! module per op family, named as its kernels (`shaders/<family>/`) and its binding
//! (`gpu/ops/<family>.rs`): every kernel against its CPU twin in `fashion_core::reference` on odd
//! shapes, in every variant, and its gradients against finite differences, through the op's own
//! bind functions ([`single_kernel`] only uploads inputs and reads outputs); then every struct a
//! kernel binds against its Rust partner.

#[path = "../common/mod.rs"]
mod common;
mod single_kernel;

mod adam;
mod batch_norm;
mod conv;
mod dense;
mod dropout;
mod gather;
mod l2;
mod pool;
mod saliency;
mod shader_structs;
mod softmax;
mod tanh;
mod zero_pad;
