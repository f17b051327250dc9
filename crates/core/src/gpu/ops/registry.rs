//! Every training kernel compiled for a device, in the implementations a [`KernelChoice`] names.

use super::{adam, batch_norm, conv, dense, dropout, gather, l2, partials, pool, saliency, softmax, tanh, zero_pad};
use crate::gpu::context::{AdapterSummary, GpuContext};
use crate::gpu::kernel::{Kernel, KernelVariant};

/// Declares [`KernelChoice`] from one table: each kernel (family) with several implementations,
/// and its variant in the emulator and GPU sets.
macro_rules! kernel_choices {
    ($($(#[$doc:meta])* $field:ident: emulator $emulator:ident, gpu $gpu:ident;)+) => {
        /// The implementation each kernel with several uses: what [`super::autotune`] measures and
        /// a trainer is given.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct KernelChoice {
            $($(#[$doc])* pub $field: KernelVariant,)+
        }

        impl KernelChoice {
            /// The vec4 kernels and the one-invocation softmax, BatchNorm and L2 term: 2–5× faster
            /// than the scalar kernels (3–7× for conv) on the CPU implementations this app meets
            /// without a GPU (lavapipe, SwiftShader), where every loaded lane costs more than a
            /// multiply-add and each invocation or barrier costs more than a long loop.
            pub fn emulator() -> Self {
                KernelChoice { $($field: KernelVariant::$emulator,)+ }
            }

            /// The GPU set: tiled matrix products, an invocation per softmax row, the conv weight
            /// gradient and BatchNorm's sums split over the batch, the L2 term over many
            /// workgroups (Adam stays vec4: it is elementwise either way).
            pub fn gpu() -> Self {
                KernelChoice { $($field: KernelVariant::$gpu,)+ }
            }

            /// Every choice by the kernel (family) it is for, as reports name them.
            pub fn entries(&self) -> Vec<(&'static str, KernelVariant)> {
                vec![$((stringify!($field), self.$field),)+]
            }

            /// The choice for the kernel named `name` in [`KernelChoice::entries`].
            fn entry_mut(&mut self, name: &str) -> Option<&mut KernelVariant> {
                match name {
                    $(stringify!($field) => Some(&mut self.$field),)+
                    _ => None,
                }
            }
        }
    };
}

kernel_choices! {
    dense_forward: emulator Vec4, gpu Gpu;
    dense_backward_input: emulator Vec4, gpu Gpu;
    dense_backward_weights: emulator Vec4, gpu Gpu;
    adam: emulator Vec4, gpu Vec4;
    /// The three conv kernels (not tuned).
    conv: emulator Vec4, gpu Gpu;
    /// Softmax + cross-entropy: one invocation for the batch, or one per row (Gpu).
    softmax: emulator Scalar, gpu Gpu;
    /// BatchNorm: a thread per feature walking the batch, or the batch split into chunks of rows
    /// (Gpu).
    batch_norm: emulator Scalar, gpu Gpu;
    /// The L2 term: one workgroup walking the weights, or a workgroup per 1,024 (Gpu).
    l2: emulator Scalar, gpu Gpu;
}

impl Default for KernelChoice {
    /// The emulator set: [`KernelChoice::emulator`].
    fn default() -> Self {
        KernelChoice::emulator()
    }
}

impl KernelChoice {
    /// Every entry as `kernel=variant`, comma-separated: how a page stores a tuning.
    pub fn to_text(&self) -> String {
        self.entries().iter().map(|(k, v)| format!("{k}={}", v.as_str())).collect::<Vec<_>>().join(",")
    }

    /// Reads what [`Display`](std::fmt::Display) writes (a set's name, or every entry).
    pub fn from_description(text: &str) -> Option<Self> {
        match text {
            "emulator set" => Some(KernelChoice::emulator()),
            "gpu set" => Some(KernelChoice::gpu()),
            _ => KernelChoice::from_text(text),
        }
    }

    /// Reads [`KernelChoice::to_text`]; `None` unless it names every entry once with a variant.
    pub fn from_text(text: &str) -> Option<Self> {
        let mut choice = KernelChoice::emulator();
        let mut seen = Vec::new();
        for pair in text.split(',') {
            let (kernel, variant) = pair.split_once('=')?;
            let variant = KernelVariant::parse(variant.trim())?;
            let kernel = kernel.trim();
            *choice.entry_mut(kernel)? = variant;
            (!seen.contains(&kernel)).then_some(())?;
            seen.push(kernel);
        }
        (seen.len() == choice.entries().len()).then_some(choice)
    }
}

impl std::fmt::Display for KernelChoice {
    /// `emulator set`, `gpu set`, or each kernel's variant ([`KernelChoice::to_text`]); read
    /// back by [`KernelChoice::from_description`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == KernelChoice::emulator() {
            write!(f, "emulator set")
        } else if *self == KernelChoice::gpu() {
            write!(f, "gpu set")
        } else {
            write!(f, "{}", self.to_text())
        }
    }
}

/// Which kernel set to train with (`--kernels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelSet {
    /// [`KernelChoice::gpu`].
    Gpu,
    /// [`KernelChoice::emulator`].
    Emulator,
    /// The emulator set on an adapter that is a CPU (lavapipe, SwiftShader: where it wins by
    /// measurement), the GPU set elsewhere.
    Auto,
}

impl KernelSet {
    pub const NAMES: [&'static str; 3] = ["gpu", "emulator", "auto"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "gpu" => Some(KernelSet::Gpu),
            "emulator" => Some(KernelSet::Emulator),
            "auto" => Some(KernelSet::Auto),
            _ => None,
        }
    }

    /// The choice for an adapter.
    pub fn choice(self, adapter: &AdapterSummary) -> KernelChoice {
        match self {
            KernelSet::Gpu => KernelChoice::gpu(),
            KernelSet::Emulator => KernelChoice::emulator(),
            KernelSet::Auto if adapter.is_cpu() => KernelChoice::emulator(),
            KernelSet::Auto => KernelChoice::gpu(),
        }
    }
}

/// Declares [`Kernels`] from one table: each training kernel, and how it is compiled from the
/// device `$ctx` and the [`KernelChoice`] `$choice`.
macro_rules! kernels {
    (($ctx:ident, $choice:ident) $($(#[$doc:meta])* $field:ident: $make:expr;)+) => {
        /// Every training kernel, compiled once per trainer.
        pub struct Kernels {
            $($(#[$doc])* pub $field: Kernel,)+
        }

        impl Kernels {
            pub fn new($ctx: &GpuContext, $choice: &KernelChoice) -> Self {
                Kernels { $($field: $make,)+ }
            }

            /// Every kernel, by its field's name.
            pub fn all(&self) -> Vec<(&'static str, &Kernel)> {
                vec![$((stringify!($field), &self.$field),)+]
            }
        }
    };
}

kernels! {
    (ctx, choice)
    gather_batch: gather::kernel(ctx);
    dense_forward: dense::forward(ctx, choice.dense_forward);
    dense_backward_input: dense::backward_input(ctx, choice.dense_backward_input);
    dense_backward_weights: dense::backward_weights(ctx, choice.dense_backward_weights);
    softmax_cross_entropy: softmax::kernel(ctx, choice.softmax);
    /// The per-row softmax's second stage.
    metrics_tally: softmax::tally_kernel(ctx);
    /// The split sums' second stage (conv weight gradient, BatchNorm's dγ and dβ).
    sum_partials: partials::kernel(ctx);
    adam: adam::kernel(ctx, choice.adam);
    dropout_forward: dropout::forward(ctx);
    dropout_backward: dropout::backward(ctx);
    batch_norm_forward: batch_norm::forward(ctx, choice.batch_norm);
    batch_norm_backward: batch_norm::backward(ctx, choice.batch_norm);
    /// The split BatchNorm's sums (bound only where it runs split: [`batch_norm::kernels_for`]).
    batch_norm_statistics_partials: batch_norm::statistics_partials(ctx);
    batch_norm_statistics_combine: batch_norm::statistics_combine(ctx);
    batch_norm_backward_partials: batch_norm::backward_partials(ctx);
    /// BatchNorm's evaluation-mode gradient at its input (the saliency's backward pass).
    batch_norm_backward_eval: batch_norm::backward_eval(ctx);
    /// The split BatchNorm's elementwise passes in any set: a BatchNorm over an image's channels
    /// has too many rows (batch × positions) for one thread to walk.
    batch_norm_normalize: batch_norm::forward(ctx, KernelVariant::Gpu);
    batch_norm_backward_input: batch_norm::backward(ctx, KernelVariant::Gpu);
    l2_regularizer: l2::kernel(ctx, choice.l2);
    /// The GPU set's L2 second stage.
    l2_penalty_tally: l2::tally_kernel(ctx);
    conv2d_forward: conv::forward(ctx, choice.conv);
    conv2d_backward_input: conv::backward_input(ctx, choice.conv);
    conv2d_backward_weights: conv::backward_weights(ctx, choice.conv);
    max_pool_forward: pool::forward(ctx);
    max_pool_backward: pool::backward(ctx);
    zero_pad_forward: zero_pad::forward(ctx);
    zero_pad_backward: zero_pad::backward(ctx);
    /// The saliency's start: ∂p_c/∂logits.
    saliency_seed: saliency::seed_kernel(ctx);
    tanh_forward: tanh::forward(ctx);
    tanh_backward: tanh::backward(ctx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_round_trips_through_its_text() {
        for choice in [
            KernelChoice::emulator(),
            KernelChoice::gpu(),
            KernelChoice { adam: KernelVariant::Scalar, ..KernelChoice::gpu() },
        ] {
            assert_eq!(KernelChoice::from_text(&choice.to_text()), Some(choice));
            assert_eq!(KernelChoice::from_description(&choice.to_string()), Some(choice));
        }
        let text = KernelChoice::gpu().to_text();
        assert!(text.starts_with("dense_forward=tiled,"), "{text}");
        for bad in [
            "",
            "dense_forward=tiled",
            "dense_forward=fast",
            &text.replace("adam=vec4", "adam=vec4,adam=vec4"),
            &text.replace("l2=", "l3="),
        ] {
            assert_eq!(KernelChoice::from_text(bad), None, "{bad}");
        }
    }
}
