//! Every training kernel compiled for a device, in the implementations a [`KernelChoice`] names.

use super::{adam, batch_norm, conv, dense, dropout, gather, l2, pool, softmax};
use crate::gpu::context::GpuContext;
use crate::gpu::kernel::{Kernel, KernelVariant};

/// The implementation each kernel with several uses: what [`super::autotune`] measures and a
/// trainer is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelChoice {
    pub dense_forward: KernelVariant,
    pub dense_backward_input: KernelVariant,
    pub dense_backward_weights: KernelVariant,
    pub adam: KernelVariant,
    /// The three conv kernels (not tuned).
    pub conv: KernelVariant,
}

impl Default for KernelChoice {
    /// The vec4 kernels: 2–5× faster than the scalar ones (3–7× for conv) on the CPU
    /// implementations this app meets without a GPU (lavapipe, SwiftShader), where every loaded
    /// lane costs more than a multiply-add.
    fn default() -> Self {
        let variant = KernelVariant::Vec4;
        KernelChoice {
            dense_forward: variant,
            dense_backward_input: variant,
            dense_backward_weights: variant,
            adam: variant,
            conv: variant,
        }
    }
}

/// Every training kernel, compiled once per trainer.
pub struct Kernels {
    pub gather_batch: Kernel,
    pub dense_forward: Kernel,
    pub dense_backward_input: Kernel,
    pub dense_backward_weights: Kernel,
    pub softmax_cross_entropy: Kernel,
    pub adam: Kernel,
    pub dropout_forward: Kernel,
    pub dropout_backward: Kernel,
    pub batch_norm_forward: Kernel,
    pub batch_norm_backward: Kernel,
    pub l2_regularizer: Kernel,
    pub conv2d_forward: Kernel,
    pub conv2d_backward_input: Kernel,
    pub conv2d_backward_weights: Kernel,
    pub max_pool_forward: Kernel,
    pub max_pool_backward: Kernel,
}

impl Kernels {
    pub fn new(ctx: &GpuContext, choice: &KernelChoice) -> Self {
        Kernels {
            gather_batch: gather::kernel(ctx),
            dense_forward: dense::forward(ctx, choice.dense_forward),
            dense_backward_input: dense::backward_input(ctx, choice.dense_backward_input),
            dense_backward_weights: dense::backward_weights(ctx, choice.dense_backward_weights),
            softmax_cross_entropy: softmax::kernel(ctx),
            adam: adam::kernel(ctx, choice.adam),
            dropout_forward: dropout::forward(ctx),
            dropout_backward: dropout::backward(ctx),
            batch_norm_forward: batch_norm::forward(ctx),
            batch_norm_backward: batch_norm::backward(ctx),
            l2_regularizer: l2::kernel(ctx),
            conv2d_forward: conv::forward(ctx, choice.conv),
            conv2d_backward_input: conv::backward_input(ctx, choice.conv),
            conv2d_backward_weights: conv::backward_weights(ctx, choice.conv),
            max_pool_forward: pool::forward(ctx),
            max_pool_backward: pool::backward(ctx),
        }
    }
}
