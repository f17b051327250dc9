//! The kernels, one module per family beside its WGSL in `shaders/<family>/`: each owns its `Shape`
//! uniforms (built from the model's layer, with named fields), their grids, the WGSL it compiles
//! and the rule for its vec4 implementation. [`Kernels`] compiles every training kernel for a
//! device in the implementations a [`KernelChoice`] names.

pub mod adam;
pub mod batch_norm;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod gather;
pub mod l2;
pub mod partials;
pub mod pool;
mod registry;
pub mod saliency;
mod shaders;
pub mod softmax;
pub mod tanh;
pub mod zero_pad;

pub use registry::{KernelChoice, KernelSet, Kernels};
pub use softmax::TALLY_WORDS;
