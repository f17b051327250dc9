//! Every training kernel compiled for a device, in the implementations a [`KernelChoice`] names.

use super::{adam, batch_norm, conv, dense, dropout, gather, l2, partials, pool, saliency, softmax, zero_pad};
use crate::gpu::context::{AdapterSummary, GpuContext};
use crate::gpu::kernel::{Kernel, KernelVariant};
use crate::model::BatchNormLayout;

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
    /// Softmax + cross-entropy: one invocation for the batch, or one per row (Tiled).
    pub softmax: KernelVariant,
    /// BatchNorm: a thread per feature walking the batch, or the batch split into chunks of rows
    /// (Tiled).
    pub batch_norm: KernelVariant,
    /// The L2 term: one workgroup walking the weights, or a workgroup per 1,024 (Tiled).
    pub l2: KernelVariant,
}

impl Default for KernelChoice {
    /// The emulator set: [`KernelChoice::emulator`].
    fn default() -> Self {
        KernelChoice::emulator()
    }
}

impl KernelChoice {
    /// The vec4 kernels and the one-invocation softmax: 2–5× faster than the scalar kernels
    /// (3–7× for conv) on the CPU implementations this app meets without a GPU (lavapipe,
    /// SwiftShader), where every loaded lane costs more than a multiply-add and each invocation
    /// or barrier costs more than a long loop.
    pub fn emulator() -> Self {
        let variant = KernelVariant::Vec4;
        KernelChoice {
            dense_forward: variant,
            dense_backward_input: variant,
            dense_backward_weights: variant,
            adam: variant,
            conv: variant,
            softmax: KernelVariant::Scalar,
            batch_norm: KernelVariant::Scalar,
            l2: KernelVariant::Scalar,
        }
    }

    /// The GPU set: tiled matrix products, an invocation per softmax row, the conv weight
    /// gradient and BatchNorm's sums split over the batch, the L2 term over many workgroups (Adam
    /// stays vec4: it is elementwise either way).
    pub fn gpu() -> Self {
        let variant = KernelVariant::Tiled;
        KernelChoice {
            dense_forward: variant,
            dense_backward_input: variant,
            dense_backward_weights: variant,
            adam: KernelVariant::Vec4,
            conv: variant,
            softmax: variant,
            batch_norm: variant,
            l2: variant,
        }
    }

    /// Every choice by the kernel (family) it is for, as reports name them.
    pub fn entries(&self) -> [(&'static str, KernelVariant); 8] {
        [
            ("dense_forward", self.dense_forward),
            ("dense_backward_input", self.dense_backward_input),
            ("dense_backward_weights", self.dense_backward_weights),
            ("adam", self.adam),
            ("conv", self.conv),
            ("softmax", self.softmax),
            ("batch_norm", self.batch_norm),
            ("l2", self.l2),
        ]
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
            let slot = match kernel {
                "dense_forward" => &mut choice.dense_forward,
                "dense_backward_input" => &mut choice.dense_backward_input,
                "dense_backward_weights" => &mut choice.dense_backward_weights,
                "adam" => &mut choice.adam,
                "conv" => &mut choice.conv,
                "softmax" => &mut choice.softmax,
                "batch_norm" => &mut choice.batch_norm,
                "l2" => &mut choice.l2,
                _ => return None,
            };
            *slot = variant;
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

/// Every training kernel, compiled once per trainer.
pub struct Kernels {
    pub gather_batch: Kernel,
    pub dense_forward: Kernel,
    pub dense_backward_input: Kernel,
    pub dense_backward_weights: Kernel,
    pub softmax_cross_entropy: Kernel,
    /// The per-row softmax's second stage.
    pub metrics_tally: Kernel,
    /// The split conv weight gradient's second stage.
    pub sum_partials: Kernel,
    pub adam: Kernel,
    pub dropout_forward: Kernel,
    pub dropout_backward: Kernel,
    pub batch_norm_forward: Kernel,
    pub batch_norm_backward: Kernel,
    /// The GPU set's split BatchNorm sums (bound only with it).
    pub batch_norm_statistics_partials: Kernel,
    pub batch_norm_statistics_combine: Kernel,
    pub batch_norm_backward_partials: Kernel,
    /// BatchNorm's evaluation-mode gradient at its input (the saliency's backward pass).
    pub batch_norm_backward_eval: Kernel,
    /// The split BatchNorm's elementwise passes in any set: a BatchNorm over an image's channels
    /// has too many rows (batch × positions) for one thread to walk (see [`Kernels::batch_norm`]).
    pub batch_norm_normalize: Kernel,
    pub batch_norm_backward_input: Kernel,
    pub l2_regularizer: Kernel,
    /// The GPU set's L2 second stage.
    pub l2_penalty_tally: Kernel,
    pub conv2d_forward: Kernel,
    pub conv2d_backward_input: Kernel,
    pub conv2d_backward_weights: Kernel,
    pub max_pool_forward: Kernel,
    pub max_pool_backward: Kernel,
    pub zero_pad_forward: Kernel,
    pub zero_pad_backward: Kernel,
    /// The saliency's start: ∂p_c/∂logits.
    pub saliency_seed: Kernel,
}

impl Kernels {
    pub fn new(ctx: &GpuContext, choice: &KernelChoice) -> Self {
        Kernels {
            gather_batch: gather::kernel(ctx),
            dense_forward: dense::forward(ctx, choice.dense_forward),
            dense_backward_input: dense::backward_input(ctx, choice.dense_backward_input),
            dense_backward_weights: dense::backward_weights(ctx, choice.dense_backward_weights),
            softmax_cross_entropy: softmax::kernel(ctx, choice.softmax),
            metrics_tally: softmax::tally_kernel(ctx),
            sum_partials: partials::kernel(ctx),
            adam: adam::kernel(ctx, choice.adam),
            dropout_forward: dropout::forward(ctx),
            dropout_backward: dropout::backward(ctx),
            batch_norm_forward: batch_norm::forward(ctx, choice.batch_norm),
            batch_norm_backward: batch_norm::backward(ctx, choice.batch_norm),
            batch_norm_statistics_partials: batch_norm::statistics_partials(ctx),
            batch_norm_statistics_combine: batch_norm::statistics_combine(ctx),
            batch_norm_backward_partials: batch_norm::backward_partials(ctx),
            batch_norm_backward_eval: batch_norm::backward_eval(ctx),
            batch_norm_normalize: batch_norm::forward(ctx, KernelVariant::Tiled),
            batch_norm_backward_input: batch_norm::backward(ctx, KernelVariant::Tiled),
            l2_regularizer: l2::kernel(ctx, choice.l2),
            l2_penalty_tally: l2::tally_kernel(ctx),
            conv2d_forward: conv::forward(ctx, choice.conv),
            conv2d_backward_input: conv::backward_input(ctx, choice.conv),
            conv2d_backward_weights: conv::backward_weights(ctx, choice.conv),
            max_pool_forward: pool::forward(ctx),
            max_pool_backward: pool::backward(ctx),
            zero_pad_forward: zero_pad::forward(ctx),
            zero_pad_backward: zero_pad::backward(ctx),
            saliency_seed: saliency::seed_kernel(ctx),
        }
    }

    /// Every kernel, by its field's name.
    pub fn all(&self) -> Vec<(&'static str, &Kernel)> {
        // Destructured in full: a kernel added to the struct fails to compile until it is listed.
        let Kernels {
            gather_batch,
            dense_forward,
            dense_backward_input,
            dense_backward_weights,
            softmax_cross_entropy,
            metrics_tally,
            sum_partials,
            adam,
            dropout_forward,
            dropout_backward,
            batch_norm_forward,
            batch_norm_backward,
            batch_norm_statistics_partials,
            batch_norm_statistics_combine,
            batch_norm_backward_partials,
            batch_norm_backward_eval,
            batch_norm_normalize,
            batch_norm_backward_input,
            l2_regularizer,
            l2_penalty_tally,
            conv2d_forward,
            conv2d_backward_input,
            conv2d_backward_weights,
            max_pool_forward,
            max_pool_backward,
            zero_pad_forward,
            zero_pad_backward,
            saliency_seed,
        } = self;
        vec![
            ("gather_batch", gather_batch),
            ("dense_forward", dense_forward),
            ("dense_backward_input", dense_backward_input),
            ("dense_backward_weights", dense_backward_weights),
            ("softmax_cross_entropy", softmax_cross_entropy),
            ("metrics_tally", metrics_tally),
            ("sum_partials", sum_partials),
            ("adam", adam),
            ("dropout_forward", dropout_forward),
            ("dropout_backward", dropout_backward),
            ("batch_norm_forward", batch_norm_forward),
            ("batch_norm_backward", batch_norm_backward),
            ("batch_norm_statistics_partials", batch_norm_statistics_partials),
            ("batch_norm_statistics_combine", batch_norm_statistics_combine),
            ("batch_norm_backward_partials", batch_norm_backward_partials),
            ("batch_norm_backward_eval", batch_norm_backward_eval),
            ("batch_norm_normalize", batch_norm_normalize),
            ("batch_norm_backward_input", batch_norm_backward_input),
            ("l2_regularizer", l2_regularizer),
            ("l2_penalty_tally", l2_penalty_tally),
            ("conv2d_forward", conv2d_forward),
            ("conv2d_backward_input", conv2d_backward_input),
            ("conv2d_backward_weights", conv2d_backward_weights),
            ("max_pool_forward", max_pool_forward),
            ("max_pool_backward", max_pool_backward),
            ("zero_pad_forward", zero_pad_forward),
            ("zero_pad_backward", zero_pad_backward),
            ("saliency_seed", saliency_seed),
        ]
    }

    /// How a BatchNorm layer runs: split (the statistics and the gradient sums as partials per
    /// chunk of rows, then elementwise passes) in the GPU set, and in any set over an image's
    /// channels; else one thread per feature walking the batch. Its forward and backward kernels.
    pub fn batch_norm(&self, layout: &BatchNormLayout) -> (bool, &Kernel, &Kernel) {
        if layout.positions > 1 {
            (true, &self.batch_norm_normalize, &self.batch_norm_backward_input)
        } else {
            let split = self.batch_norm_forward.variant() == KernelVariant::Tiled;
            (split, &self.batch_norm_forward, &self.batch_norm_backward)
        }
    }
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
