//! A whole model on the CPU, computed with the kernel twins of [`crate::reference`] (the
//! reference the GPU trainer is checked against step for step) or, for the CPU backend, with
//! the fast kernels of [`super::kernels`] where they exist.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use super::kernels::CpuKernels;
use crate::model::{BatchNormLayout, DenseLayout, LrSchedule, ModelSpec, Op, ParamLayout};
use crate::optimizer::AdamConfig;
use crate::reference::{
    batch_norm_backward, batch_norm_backward_eval, batch_norm_forward, l2_penalty, l2_regularizer, saliency_seed,
    softmax_cross_entropy, softmax_cross_entropy_of_rows, BatchNormStatistics, BatchNormTensors,
};
use crate::train::{after_step_dropout_index, step_seed};

/// Rows a shard of a training step gets at least (see [`CpuModel::shards`]): a batch of 100
/// is two shards, one of 1,000 eight.
const SHARD_ROWS_AT_LEAST: usize = 50;
const SHARDS_AT_MOST: usize = 8;

/// Loss and hits of one batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchOutcome {
    /// Σ over the batch of the per-sample loss (cross-entropy + the L2 penalty in training).
    pub loss_sum: f64,
    pub correct: u32,
}

/// Whether a forward pass trains (batch statistics, dropout with this step's seed) or evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train {
        seed: u32,
    },
    /// Training mode after the update of the step seeded `seed`, with fresh dropout masks
    /// ([`crate::train::EpochMetrics::AfterStep`]'s loss).
    AfterStep {
        seed: u32,
    },
    Eval,
}

impl Mode {
    /// The seed and stream of dropout op `index`'s mask, for the op's values from element
    /// `first` on (a shard of the batch); `None` at evaluation.
    fn dropout_mask(self, index: u32, first: usize) -> Option<(u32, u32, u32)> {
        let first = u32::try_from(first).expect("a batch of fewer than 2³² values");
        match self {
            Mode::Train { seed } => Some((seed, index, first)),
            Mode::AfterStep { seed } => Some((seed, after_step_dropout_index(index), first)),
            Mode::Eval => None,
        }
    }
}

/// The buffers of a pass, which a model keeps from pass to pass: allocated per step, the CNN's
/// at batch 100 (tens of megabytes) were mapped and unmapped every step, and the page faults
/// and TLB shootdowns took a third of the step. Each is resized to the pass's batch ([`sized`]),
/// so it holds what the last pass left: every kernel writes all of what it is given.
#[derive(Default)]
struct Workspace {
    /// Every op's output; the last is the logits.
    outputs: Vec<Vec<f32>>,
    /// Per op, where the fast max pooling kept each output's winner (see
    /// [`CpuKernels::max_pool_forward`]); empty for every other op and with the twins.
    winners: Vec<Vec<u8>>,
    backward: Backward,
}

/// The backward pass's buffers.
#[derive(Default)]
struct Backward {
    /// The gradient at the current op's output, and at its input (swapped op by op).
    dz: Vec<f32>,
    dx: Vec<f32>,
    /// The gradient of every trainable parameter.
    grads: Vec<f32>,
}

/// A model's [`Workspace`]s, kept between passes: one per shard of a training step (see
/// [`CpuModel::shards`]), the last kept on top. A clone (a snapshot) starts without any, and a
/// pass that finds none (a pass within a pass) works in a fresh one.
#[derive(Default)]
struct KeptWorkspace(Mutex<Vec<Workspace>>);

impl KeptWorkspace {
    fn take(&self) -> Workspace {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default()
    }

    /// `count` workspaces, the last kept first.
    fn take_many(&self, count: usize) -> Vec<Workspace> {
        (0..count).map(|_| self.take()).collect()
    }

    fn keep(&self, work: Workspace) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(work);
    }

    /// NaN in every kept value (and winners no window has), so a pass that reads a value it
    /// did not write shows.
    #[cfg(test)]
    fn poison(&self) {
        for work in self.0.lock().unwrap_or_else(PoisonError::into_inner).iter_mut() {
            let Backward { dz, dx, grads } = &mut work.backward;
            for buffer in work.outputs.iter_mut().chain([dz, dx, grads]) {
                buffer.fill(f32::NAN);
            }
            work.winners.iter_mut().for_each(|w| w.fill(9));
        }
    }
}

impl Clone for KeptWorkspace {
    fn clone(&self) -> Self {
        KeptWorkspace::default()
    }
}

impl std::fmt::Debug for KeptWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeptWorkspace")
    }
}

/// `buffer` resized to `len` values (its allocation kept when it shrinks), as a slice.
pub(super) fn sized<T: Copy + Default>(buffer: &mut Vec<T>, len: usize) -> &mut [T] {
    buffer.resize(len, T::default());
    buffer
}

/// The disjoint ranges `a` and `b` of `values`, both mutable.
fn two_ranges(values: &mut [f32], a: Range<usize>, b: Range<usize>) -> (&mut [f32], &mut [f32]) {
    if a.end <= b.start {
        let (low, high) = values.split_at_mut(b.start);
        (&mut low[a], &mut high[..b.len()])
    } else {
        assert!(b.end <= a.start, "overlapping ranges {a:?} and {b:?}");
        let (low, high) = values.split_at_mut(a.start);
        (&mut high[..a.len()], &mut low[b])
    }
}

/// Everything a forward pass leaves for the backward pass.
struct Forward<'a> {
    /// The images, borrowed (not copied: 3 MB a step at batch 1,000).
    input: &'a [f32],
    /// The batch's row the images start at (0, or a shard's first row): where dropout's masks
    /// start.
    first_row: usize,
    /// The workspace, with every op's output and the pooling winners of this pass.
    work: Workspace,
    /// Per BatchNorm op (in order), its batch statistics in training.
    batch_norm: Vec<Option<BatchNormStatistics>>,
}

impl Forward<'_> {
    /// Op `i`'s input.
    fn input_of(&self, i: usize) -> &[f32] {
        if i == 0 {
            self.input
        } else {
            &self.work.outputs[i - 1]
        }
    }

    fn logits(&self) -> &[f32] {
        self.work.outputs.last().map_or(self.input, Vec::as_slice)
    }
}

/// A whole model trained on the CPU: with [`CpuKernels::Reference`] the reference the GPU
/// trainer is checked against, with [`CpuKernels::Fast`] the CPU backend.
#[derive(Debug, Clone)]
pub struct CpuModel {
    pub layout: ParamLayout,
    pub ops: Vec<Op>,
    /// Every tensor, trainable ones first (see [`ParamLayout`]).
    pub params: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    step: u64,
    adam: AdamConfig,
    l2: f32,
    schedule: LrSchedule,
    seed: u64,
    kernels: CpuKernels,
    workspace: KeptWorkspace,
}

impl CpuModel {
    /// A model computed with the reference twins; `seed` is the training seed: each step's
    /// dropout stream derives from it and the step.
    pub fn new(spec: &ModelSpec, params: Vec<f32>, adam: AdamConfig, seed: u64) -> Self {
        let layout = spec.param_layout();
        assert_eq!(params.len(), layout.total, "parameter count must match the model");
        let zeros = vec![0.0; layout.trainable];
        CpuModel {
            ops: spec.ops(),
            layout,
            params,
            m: zeros.clone(),
            v: zeros,
            step: 0,
            adam,
            l2: spec.l2,
            schedule: spec.schedule,
            seed,
            kernels: CpuKernels::Reference,
            workspace: KeptWorkspace::default(),
        }
    }

    /// The same model computed with `kernels`.
    pub fn with_kernels(self, kernels: CpuKernels) -> Self {
        CpuModel { kernels, ..self }
    }

    pub fn kernels(&self) -> CpuKernels {
        self.kernels
    }

    fn dense_tensors<'a>(params: &'a [f32], layout: &DenseLayout) -> (&'a [f32], &'a [f32]) {
        (
            &params[layout.kernel_offset..layout.kernel_offset + layout.kernel_len()],
            &params[layout.bias_offset..layout.bias_offset + layout.units],
        )
    }

    fn batch_norm_tensors<'a>(params: &'a [f32], layout: &BatchNormLayout) -> BatchNormTensors<'a> {
        let at = |offset: usize| &params[offset..offset + layout.width];
        BatchNormTensors {
            gamma: at(layout.gamma_offset),
            beta: at(layout.beta_offset),
            moving_mean: at(layout.moving_mean_offset),
            moving_variance: at(layout.moving_variance_offset),
        }
    }

    fn forward<'x>(&self, x: &'x [f32], rows: usize, mode: Mode) -> Forward<'x> {
        self.forward_in(self.workspace.take(), x, rows, mode, 0)
    }

    /// The forward pass of `rows` images in `work`, the batch's from row `first_row` on.
    fn forward_in<'x>(
        &self,
        mut work: Workspace,
        x: &'x [f32],
        rows: usize,
        mode: Mode,
        first_row: usize,
    ) -> Forward<'x> {
        let _float_mode = self.kernels.float_mode();
        let kernels = self.kernels;
        work.outputs.resize_with(self.ops.len(), Vec::new);
        work.winners.resize_with(self.ops.len(), Vec::new);
        let mut batch_norm = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            let (done, rest) = work.outputs.split_at_mut(i);
            let input = done.last().map_or(x, Vec::as_slice);
            let y = sized(&mut rest[0], rows * op.width());
            match *op {
                Op::Dense { layout, relu } => {
                    let tensors = Self::dense_tensors(&self.params, &layout);
                    kernels.dense_forward(input, rows, tensors, layout.inputs, relu, y);
                }
                Op::Dropout { rate, index, .. } => match mode.dropout_mask(index, first_row * op.width()) {
                    Some(mask) => kernels.dropout_forward(&input[..y.len()], rate, mask, y),
                    None => y.copy_from_slice(&input[..y.len()]),
                },
                Op::Conv2D { layout, relu } => {
                    let kernel = &self.params[layout.kernel_offset..layout.kernel_offset + layout.kernel_len()];
                    let bias = &self.params[layout.bias_offset..layout.bias_offset + layout.filters];
                    kernels.conv2d_forward(input, rows, &layout, (kernel, bias), relu, y);
                }
                Op::MaxPool2D { layout } => kernels.max_pool_forward(input, rows, &layout, y, &mut work.winners[i]),
                Op::ZeroPad2D { layout } => kernels.zero_pad_forward(input, rows, &layout, y),
                Op::BatchNorm { layout, relu } => {
                    let tensors = Self::batch_norm_tensors(&self.params, &layout);
                    let (out, stats) =
                        batch_norm_forward(input, rows * layout.positions, &tensors, mode != Mode::Eval, relu);
                    y.copy_from_slice(&out);
                    batch_norm.push(stats);
                }
            }
        }
        Forward { input: x, first_row, work, batch_norm }
    }

    /// Softmax probabilities, `[rows, classes]`.
    pub fn predict(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let forward = self.forward(x, rows, Mode::Eval);
        let logits = forward.logits();
        let probs = softmax_cross_entropy(logits, &vec![0; rows], logits.len() / rows.max(1)).probs;
        self.workspace.keep(forward.work);
        probs
    }

    /// For `rows` images in evaluation mode: the softmax probabilities `[rows, classes]`, every
    /// op's output (in op order), and the saliency `[rows, inputs]`: the gradient of each row's
    /// most probable class's probability with respect to its pixels. Dropout is the identity and
    /// BatchNorm, with its moving statistics, a per-feature affine map, so its gradient is a
    /// per-feature scale. The twin of the GPU trainer's `Dispatches::explanation`.
    pub fn explain(&self, x: &[f32], rows: usize) -> (Vec<f32>, Vec<Vec<f32>>, Vec<f32>) {
        let forward = self.forward(x, rows, Mode::Eval);
        let _float_mode = self.kernels.float_mode();
        let logits = forward.logits();
        let classes = logits.len() / rows.max(1);
        let probs = softmax_cross_entropy(logits, &vec![0; rows], classes).probs;
        let mut dz = saliency_seed(&probs, classes);
        let mut dx = Vec::new();
        for (i, op) in self.ops.iter().enumerate().rev() {
            self.input_gradient(i, op, &forward, &dz, rows, Mode::Eval, &mut dx);
            std::mem::swap(&mut dz, &mut dx);
        }
        let outputs = forward.work.outputs.clone();
        self.workspace.keep(forward.work);
        (probs, outputs, dz)
    }

    /// Op `i`'s gradient at its input (`forward`'s output `i`) from `dz`, the gradient at its
    /// output, into `dx`, masked by the ReLU of the op below when it has one: dropout with
    /// `mode`'s mask (the identity in evaluation), and in evaluation BatchNorm the per-feature
    /// scale of its moving statistics. (A training BatchNorm's dx comes with its dγ and dβ:
    /// `gradients_and_moving`.)
    // The op, what the forward pass left, the gradient, the batch, the mode and the output.
    #[allow(clippy::too_many_arguments)]
    fn input_gradient(
        &self,
        i: usize,
        op: &Op,
        forward: &Forward,
        dz: &[f32],
        rows: usize,
        mode: Mode,
        dx: &mut Vec<f32>,
    ) {
        let kernels = self.kernels;
        let input = forward.input_of(i);
        let below = (i > 0 && self.ops[i - 1].relu()).then_some(input);
        let dx = sized(dx, input.len());
        match *op {
            Op::Dense { layout, .. } => {
                let (kernel, _) = Self::dense_tensors(&self.params, &layout);
                kernels.dense_backward_input(dz, rows, kernel, layout.inputs, layout.units, below, dx);
            }
            Op::Dropout { rate, index, .. } => match mode.dropout_mask(index, forward.first_row * op.width()) {
                Some(mask) => kernels.dropout_backward(dz, below, rate, mask, dx),
                // Rate 0: the identity, masked by the ReLU below as every op's gradient is.
                None => kernels.dropout_backward(dz, below, 0.0, (0, index, 0), dx),
            },
            Op::Conv2D { layout, .. } => {
                let kernel = &self.params[layout.kernel_offset..layout.kernel_offset + layout.kernel_len()];
                kernels.conv2d_backward_input(dz, rows, &layout, kernel, below, dx);
            }
            Op::MaxPool2D { layout } => {
                let pooled = (forward.work.outputs[i].as_slice(), forward.work.winners[i].as_slice());
                kernels.max_pool_backward(input, pooled, dz, rows, &layout, below.is_some(), dx);
            }
            Op::ZeroPad2D { layout } => kernels.zero_pad_backward(dz, rows, &layout, below, dx),
            Op::BatchNorm { layout, .. } => {
                debug_assert_eq!(mode, Mode::Eval, "a training BatchNorm's dx comes with dγ and dβ");
                let tensors = Self::batch_norm_tensors(&self.params, &layout);
                dx.copy_from_slice(&batch_norm_backward_eval(dz, tensors.gamma, tensors.moving_variance, below));
            }
        }
    }

    /// Loss and hits of a batch without training.
    pub fn evaluate(&self, x: &[f32], labels: &[u32]) -> BatchOutcome {
        let forward = self.forward(x, labels.len(), Mode::Eval);
        let logits = forward.logits();
        let ce = softmax_cross_entropy(logits, labels, logits.len() / labels.len().max(1));
        self.workspace.keep(forward.work);
        BatchOutcome { loss_sum: ce.loss_sum, correct: ce.correct }
    }

    /// [`crate::train::EpochMetrics::AfterStep`]'s figures of a batch for the weights as the last
    /// step left them: the loss of a training-mode forward pass (fresh dropout masks, BatchNorm on
    /// the batch's statistics, the moving ones untouched) with the L2 penalty, and the hits of an
    /// evaluation-mode one.
    pub fn after_step_outcome(&self, x: &[f32], labels: &[u32]) -> BatchOutcome {
        let rows = labels.len();
        let forward = self.forward(x, rows, Mode::AfterStep { seed: step_seed(self.seed, self.step) });
        let logits = forward.logits();
        let ce = softmax_cross_entropy(logits, labels, logits.len() / rows.max(1));
        self.workspace.keep(forward.work);
        let penalty = if self.l2 > 0.0 { l2_penalty(&self.params, &self.layout, self.l2) } else { 0.0 };
        let loss_sum = ce.loss_sum + f64::from(penalty) * rows as f64;
        BatchOutcome { loss_sum, correct: self.evaluate(x, labels).correct }
    }

    /// Shards a training step of `rows` images is computed in: each shard's rows through the
    /// whole forward and backward pass, on rayon's threads where there are several, and the
    /// shards' gradients summed in shard order. The count depends on the model and the batch
    /// alone, never on the threads, so the sums and the results are the same on any number of
    /// threads. Convolutional models only: their per-image passes and products, split op by op,
    /// left the second thread idle half the time (the CNN on 2 threads natively 1.5× faster in
    /// shards), while an MLP's step is a few products that bands already split (in shards the
    /// baseline on one thread was 10–17 % slower and on two no faster). One with the twins (the
    /// reference the GPU trainer is checked against) and with BatchNorm (its statistics are the
    /// whole batch's).
    fn shards(&self, rows: usize) -> usize {
        let has = |wanted: fn(&Op) -> bool| self.ops.iter().any(wanted);
        let convolutional = has(|op| matches!(op, Op::Conv2D { .. }));
        let batch_norm = has(|op| matches!(op, Op::BatchNorm { .. }));
        if self.kernels == CpuKernels::Reference || batch_norm || !convolutional {
            1
        } else {
            (rows / SHARD_ROWS_AT_LEAST).clamp(1, SHARDS_AT_MOST)
        }
    }

    /// The training-mode loss of a batch (cross-entropy mean + L2 penalty), and the forward pass
    /// with, in its workspace, the gradient of that loss with respect to every trainable
    /// parameter (`backward.grads`) and the moving statistics this step would leave behind.
    fn gradients_and_moving<'x>(&self, x: &'x [f32], labels: &[u32], mode: Mode) -> (BatchOutcome, Forward<'x>) {
        let rows = labels.len();
        let shards = self.shards(rows);
        let (mut outcome, mut forward) = if shards == 1 {
            self.shard_gradients(self.workspace.take(), x, labels, mode, 0, rows)
        } else {
            self.sharded_gradients(x, labels, mode, shards)
        };
        let _float_mode = self.kernels.float_mode();
        let grads = &mut forward.work.backward.grads[..self.layout.trainable];
        let penalty = if self.l2 > 0.0 { l2_regularizer(&self.params, grads, &self.layout, self.l2) } else { 0.0 };
        outcome.loss_sum += f64::from(penalty) * rows as f64;
        (outcome, forward)
    }

    /// [`CpuModel::gradients_and_moving`] in `shards` shards: each one's gradient of the batch's
    /// cross-entropy mean, summed in shard order into the first shard's workspace, whose
    /// forward pass is returned; the others' workspaces are kept.
    fn sharded_gradients<'x>(
        &self,
        x: &'x [f32],
        labels: &[u32],
        mode: Mode,
        shards: usize,
    ) -> (BatchOutcome, Forward<'x>) {
        let rows = labels.len();
        let (per_shard, inputs) = (rows.div_ceil(shards), x.len() / rows);
        let shard = |(s, work): (usize, Workspace)| {
            let range = s * per_shard..((s + 1) * per_shard).min(rows);
            let images = &x[range.start * inputs..range.end * inputs];
            self.shard_gradients(work, images, &labels[range.clone()], mode, range.start, rows)
        };
        let works = self.workspace.take_many(shards);
        #[cfg(cpu_threads)]
        let passes: Vec<_> = if super::kernels::threads() > 1 {
            use rayon::prelude::*;
            works.into_par_iter().enumerate().map(shard).collect()
        } else {
            works.into_iter().enumerate().map(shard).collect()
        };
        #[cfg(not(cpu_threads))]
        let passes: Vec<_> = works.into_iter().enumerate().map(shard).collect();
        let mut passes = passes.into_iter();
        let (mut outcome, mut forward) = passes.next().expect("at least one shard");
        let trainable = self.layout.trainable;
        let grads = &mut forward.work.backward.grads[..trainable];
        for (shard_outcome, shard_forward) in passes {
            outcome.loss_sum += shard_outcome.loss_sum;
            outcome.correct += shard_outcome.correct;
            grads.iter_mut().zip(&shard_forward.work.backward.grads[..trainable]).for_each(|(sum, &g)| *sum += g);
            self.workspace.keep(shard_forward.work);
        }
        (outcome, forward)
    }

    /// The cross-entropy part of [`CpuModel::gradients_and_moving`] for the `labels.len()`
    /// images `x`, rows `first_row..` of a batch of `batch_rows`, in `work`: the loss summed
    /// over these rows, and the gradient of the batch's mean loss through them (no L2).
    fn shard_gradients<'x>(
        &self,
        work: Workspace,
        x: &'x [f32],
        labels: &[u32],
        mode: Mode,
        first_row: usize,
        batch_rows: usize,
    ) -> (BatchOutcome, Forward<'x>) {
        let rows = labels.len();
        let mut forward = self.forward_in(work, x, rows, mode, first_row);
        let _float_mode = self.kernels.float_mode();
        let kernels = self.kernels;
        let logits = forward.logits();
        let ce = softmax_cross_entropy_of_rows(logits, labels, logits.len() / rows, batch_rows);
        let Backward { mut dz, mut dx, mut grads } = std::mem::take(&mut forward.work.backward);
        // Every trainable tensor is some op's, and written below.
        let grads_of = sized(&mut grads, self.layout.trainable);
        dz.clear();
        dz.extend_from_slice(&ce.dlogits);
        let mut batch_norm_index = forward.batch_norm.len();
        let first_trainable = self
            .ops
            .iter()
            .position(|op| matches!(op, Op::Dense { .. } | Op::Conv2D { .. } | Op::BatchNorm { .. }))
            .unwrap_or(self.ops.len());
        for (i, op) in self.ops.iter().enumerate().rev() {
            let input = forward.input_of(i);
            match *op {
                Op::Dense { layout, .. } => {
                    let tensors = two_ranges(
                        grads_of,
                        layout.kernel_offset..layout.kernel_offset + layout.kernel_len(),
                        layout.bias_offset..layout.bias_offset + layout.units,
                    );
                    kernels.dense_backward_weights(input, &dz, rows, layout.inputs, tensors);
                }
                Op::Conv2D { layout, .. } => {
                    let tensors = two_ranges(
                        grads_of,
                        layout.kernel_offset..layout.kernel_offset + layout.kernel_len(),
                        layout.bias_offset..layout.bias_offset + layout.filters,
                    );
                    kernels.conv2d_backward_weights(input, &dz, rows, &layout, tensors);
                }
                Op::BatchNorm { layout, .. } => {
                    // dx comes with dγ and dβ, from the batch statistics.
                    batch_norm_index -= 1;
                    let below = (i > 0 && self.ops[i - 1].relu()).then_some(input);
                    let gamma = &self.params[layout.gamma_offset..layout.gamma_offset + layout.width];
                    let stats = forward.batch_norm[batch_norm_index].as_ref().expect("training-mode statistics");
                    let (bn_dx, dgamma, dbeta) =
                        batch_norm_backward(input, &dz, rows * layout.positions, gamma, stats, below);
                    grads_of[layout.gamma_offset..layout.gamma_offset + layout.width].copy_from_slice(&dgamma);
                    grads_of[layout.beta_offset..layout.beta_offset + layout.width].copy_from_slice(&dbeta);
                    dz.clear();
                    dz.extend_from_slice(&bn_dx);
                    continue;
                }
                Op::Dropout { .. } | Op::MaxPool2D { .. } | Op::ZeroPad2D { .. } => {}
            }
            // Nothing below the first op with parameters needs a gradient (the CNN's first
            // convolution would otherwise scatter one back onto its zero-padded images).
            if i > first_trainable {
                self.input_gradient(i, op, &forward, &dz, rows, mode, &mut dx);
                std::mem::swap(&mut dz, &mut dx);
            }
        }
        forward.work.backward = Backward { dz, dx, grads };
        (BatchOutcome { loss_sum: ce.loss_sum, correct: ce.correct }, forward)
    }

    /// Gradient of the batch's training loss with respect to every trainable parameter, for
    /// the step seeded `seed` (dropout's mask).
    pub fn gradients(&self, x: &[f32], labels: &[u32], seed: u32) -> (Vec<f32>, BatchOutcome) {
        let (outcome, forward) = self.gradients_and_moving(x, labels, Mode::Train { seed });
        let grads = forward.work.backward.grads.clone();
        self.workspace.keep(forward.work);
        (grads, outcome)
    }

    /// Optimizer steps taken so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Adam's first and second moments (one per trainable parameter).
    pub fn moments(&self) -> (&[f32], &[f32]) {
        (&self.m, &self.v)
    }

    /// Puts Adam back where a saved run left it: its moments (sized as [`CpuModel::moments`]
    /// returns them: the caller checks) after `step` steps.
    pub fn set_optimizer(&mut self, m: &[f32], v: &[f32], step: u64) {
        self.m.copy_from_slice(m);
        self.v.copy_from_slice(v);
        self.step = step;
    }

    /// Changes Adam's learning rate for the steps to come.
    pub fn set_learning_rate(&mut self, learning_rate: f32) {
        self.adam.learning_rate = learning_rate;
    }

    /// Whether the steps' products are best split over threads kept awake for them
    /// ([`ThreadsAwake`]): a batch trained whole, with the fast kernels (a batch in shards
    /// already keeps every thread busy).
    pub fn wants_threads_awake(&self, rows: usize) -> bool {
        self.kernels == CpuKernels::Fast && self.shards(rows) == 1
    }

    /// One Adam step on a batch; the moving statistics of BatchNorm layers are updated too.
    pub fn train_step(&mut self, x: &[f32], labels: &[u32]) -> BatchOutcome {
        let seed = step_seed(self.seed, self.step + 1);
        let (outcome, forward) = self.gradients_and_moving(x, labels, Mode::Train { seed });
        for (layout, stats) in self.layout.batch_norm.iter().zip(&forward.batch_norm) {
            let stats = stats.as_ref().expect("training-mode statistics");
            let w = layout.width;
            self.params[layout.moving_mean_offset..layout.moving_mean_offset + w].copy_from_slice(&stats.moving_mean);
            self.params[layout.moving_variance_offset..layout.moving_variance_offset + w]
                .copy_from_slice(&stats.moving_variance);
        }
        let learning_rate = self.schedule.learning_rate(self.adam.learning_rate, self.step);
        self.step += 1;
        let trainable = self.layout.trainable;
        self.kernels.adam_update(
            &mut self.params[..trainable],
            &forward.work.backward.grads,
            &mut self.m,
            &mut self.v,
            &self.adam,
            learning_rate,
            self.step,
        );
        self.workspace.keep(forward.work);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::glorot_uniform_params;

    fn pseudo(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = fashion_data::SplitMix64::new(seed);
        (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    /// Training-mode mean loss (with the step's dropout mask and the L2 penalty).
    fn mean_loss(model: &CpuModel, x: &[f32], labels: &[u32], seed: u32) -> f64 {
        model.gradients(x, labels, seed).1.loss_sum / labels.len() as f64
    }

    /// Every op in one model: the analytic gradient must be the loss's finite differences, with
    /// either kernel set.
    #[test]
    fn model_gradients_match_finite_differences() {
        for kernels in [CpuKernels::Reference, CpuKernels::Fast] {
            model_gradients_match_finite_differences_with(kernels);
        }
    }

    fn model_gradients_match_finite_differences_with(kernels: CpuKernels) {
        use crate::model::{Activation, Layer, ModelSpec};
        let layers = vec![
            Layer::Dense { units: 7, activation: Activation::Linear },
            Layer::BatchNorm,
            Layer::Activation(Activation::Relu),
            Layer::Dropout { rate: 0.3 },
            Layer::Dense { units: 6, activation: Activation::Relu },
            Layer::Dense { units: 10, activation: Activation::Linear },
            Layer::BatchNorm,
            Layer::Activation(Activation::Softmax),
        ];
        let spec = ModelSpec::new("tiny", 5, layers).unwrap().with_l2(0.01).unwrap();
        let mut params = glorot_uniform_params(&spec, 3);
        // γ and β away from 1 and 0 so their gradients are not special.
        for (i, p) in params[spec.param_layout().dense[1].bias_offset..].iter_mut().enumerate() {
            *p += 0.1 * (i % 5) as f32;
        }
        let model = CpuModel::new(&spec, params, AdamConfig::default(), 1).with_kernels(kernels);
        let rows = 6;
        let x = pseudo(rows * 5, 11);
        let labels = vec![1, 4, 9, 0, 4, 7];
        let seed = 0x1234_5678;
        let (grads, _) = model.gradients(&x, &labels, seed);
        assert_eq!(grads.len(), spec.param_layout().trainable);
        let h = 1e-2f32;
        for (i, &g) in grads.iter().enumerate() {
            let mut plus = model.clone();
            plus.params[i] += h;
            let mut minus = model.clone();
            minus.params[i] -= h;
            let fd =
                (mean_loss(&plus, &x, &labels, seed) - mean_loss(&minus, &x, &labels, seed)) / (2.0 * f64::from(h));
            assert!((fd - f64::from(g)).abs() < 3e-3, "{kernels:?} param {i}: fd {fd} vs analytic {g}");
        }
    }

    /// A model that keeps its workspace from pass to pass (resized between training batches of
    /// several sizes and a larger evaluation batch, and filled with NaN between passes) trains to
    /// the same bits as copies that start each step without one, with either kernel set.
    #[test]
    fn a_kept_workspace_trains_to_the_bits_of_fresh_ones() {
        use crate::model::{Activation, Layer, ModelSpec};
        let layers = vec![
            Layer::ZeroPadding2D { padding: 1 },
            Layer::Conv2D { filters: 4, kernel_size: 3, activation: Activation::Relu },
            Layer::MaxPool2D,
            Layer::Dropout { rate: 0.3 },
            Layer::Flatten,
            Layer::Dense { units: 8, activation: Activation::Linear },
            Layer::BatchNorm,
            Layer::Activation(Activation::Relu),
            Layer::Dense { units: 10, activation: Activation::Softmax },
        ];
        let spec = ModelSpec::new("tiny-kept", 36, layers).unwrap().with_l2(0.01).unwrap();
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for kernels in [CpuKernels::Reference, CpuKernels::Fast] {
            let params = glorot_uniform_params(&spec, 9);
            let mut kept = CpuModel::new(&spec, params, AdamConfig::default(), 4).with_kernels(kernels);
            for (step, rows) in [5, 3, 7, 2, 7].into_iter().enumerate() {
                let x = pseudo(rows * 36, step as u64);
                let labels: Vec<u32> = (0..rows as u32).map(|r| (r * 3 + step as u32) % 10).collect();
                let mut fresh = kept.clone();
                kept.workspace.poison();
                let outcome = kept.train_step(&x, &labels);
                assert_eq!(outcome, fresh.train_step(&x, &labels), "{kernels:?} step {step}");
                assert_eq!(bits(&kept.params), bits(&fresh.params), "{kernels:?} step {step}");
                kept.workspace.poison();
                assert_eq!(kept.after_step_outcome(&x, &labels), fresh.clone().after_step_outcome(&x, &labels));
                kept.workspace.poison();
                let test = pseudo(11 * 36, 100 + step as u64);
                let test_labels = vec![3; 11];
                assert_eq!(kept.evaluate(&test, &test_labels), fresh.clone().evaluate(&test, &test_labels));
            }
        }
    }

    /// A model of `layers` on `inputs` inputs with L2 factor `l2` and the fast kernels, and a
    /// batch of `rows` pseudo-random inputs with their labels.
    fn fast_model_and_batch(
        layers: Vec<crate::model::Layer>,
        inputs: usize,
        l2: f32,
        rows: usize,
    ) -> (CpuModel, Vec<f32>, Vec<u32>) {
        let spec = crate::model::ModelSpec::new("test", inputs, layers).unwrap().with_l2(l2).unwrap();
        let model = CpuModel::new(&spec, glorot_uniform_params(&spec, 8), AdamConfig::default(), 2)
            .with_kernels(CpuKernels::Fast);
        let labels = (0..rows as u32).map(|r| (r * 7) % 10).collect();
        (model, pseudo(rows * inputs, 31), labels)
    }

    /// A convolutional model trains in shards (two at 100 rows, with dropout after the pooling
    /// and an L2 factor): to the same bits on 1 and 3 threads, and to the unsharded twins'
    /// gradient within rounding (a shard given the wrong dropout mask, mean or L2 would not be).
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_convolutional_model_trains_in_shards_to_the_same_bits_on_any_thread_count() {
        use crate::model::{Activation, Layer};
        let layers = vec![
            Layer::Conv2D { filters: 4, kernel_size: 3, activation: Activation::Relu },
            Layer::MaxPool2D,
            Layer::Dropout { rate: 0.4 },
            Layer::Flatten,
            Layer::Dense { units: 10, activation: Activation::Softmax },
        ];
        let rows = 107;
        let (fast, x, labels) = fast_model_and_batch(layers, 36, 0.01, rows);
        assert_eq!(fast.shards(rows), 2);
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let on_threads = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut model = fast.clone();
                let outcomes: Vec<_> = (0..3).map(|_| model.train_step(&x, &labels)).collect();
                (outcomes, bits(&model.params), fast.gradients(&x, &labels, 5))
            })
        };
        let (one, three) = (on_threads(1), on_threads(3));
        assert_eq!(one.0, three.0, "losses and hits");
        assert_eq!(one.1, three.1, "weights after 3 steps");
        let (grads, outcome) = one.2;
        let reference = fast.clone().with_kernels(CpuKernels::Reference);
        assert_eq!(reference.shards(rows), 1);
        let (want, want_outcome) = reference.gradients(&x, &labels, 5);
        assert!((outcome.loss_sum - want_outcome.loss_sum).abs() < 1e-4 * want_outcome.loss_sum.abs());
        assert_eq!(outcome.correct, want_outcome.correct);
        for (i, (&g, &w)) in grads.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-5 + 1e-4 * w.abs(), "param {i}: sharded {g} vs whole {w}");
        }
    }

    /// A model trained whole, its products and Adam split over the threads kept awake for its
    /// steps, gets one thread's bits (L2 and dropout included).
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_model_trained_with_threads_awake_gets_one_threads_bits() {
        use crate::cpu::kernels::awake::{self, Session};
        use crate::model::{Activation, Layer};
        let layers = vec![
            Layer::Dense { units: 509, activation: Activation::Relu },
            Layer::Dropout { rate: 0.3 },
            Layer::Dense { units: 10, activation: Activation::Softmax },
        ];
        let rows = 107;
        let (model, x, labels) = fast_model_and_batch(layers, 301, 0.002, rows);
        assert!(model.wants_threads_awake(rows));
        let train = |mut model: CpuModel| {
            let outcomes: Vec<_> = (0..3).map(|_| model.train_step(&x, &labels)).collect();
            (outcomes, model.params.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        };
        let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let alone = one_thread.install(|| train(model.clone()));
        let session = Session::waited_for();
        assert_eq!(awake::awake(), crate::cpu::kernels::threads() - 1, "the other threads are kept awake");
        let split = train(model);
        drop(session);
        assert_eq!(alone.0, split.0, "losses and hits");
        assert_eq!(alone.1, split.1, "weights after 3 steps");
    }

    /// A small CNN (conv → pool → dense) on 6×6 images: analytic gradient = finite differences,
    /// with either kernel set.
    #[test]
    fn cnn_gradients_match_finite_differences() {
        for kernels in [CpuKernels::Reference, CpuKernels::Fast] {
            cnn_gradients_match_finite_differences_with(kernels);
        }
    }

    fn cnn_gradients_match_finite_differences_with(kernels: CpuKernels) {
        use crate::model::{Activation, Layer, ModelSpec};
        let layers = vec![
            Layer::Conv2D { filters: 4, kernel_size: 3, activation: Activation::Relu },
            Layer::MaxPool2D,
            Layer::Flatten,
            Layer::Dense { units: 10, activation: Activation::Softmax },
        ];
        let spec = ModelSpec::new("tiny-cnn", 36, layers).unwrap();
        assert_eq!(spec.total_params(), 3 * 3 * 4 + 4 + 2 * 2 * 4 * 10 + 10);
        let mut params = glorot_uniform_params(&spec, 5);
        let conv = spec.param_layout().conv[0];
        params[conv.bias_offset..conv.bias_offset + 4].copy_from_slice(&[0.1, 0.2, 0.3, 0.4]);
        let model = CpuModel::new(&spec, params, AdamConfig::default(), 1).with_kernels(kernels);
        let x = pseudo(3 * 36, 21);
        let labels = vec![2, 5, 8];
        let (grads, _) = model.gradients(&x, &labels, 0);
        // Small: a larger step can flip a pooling window's winner or cross a ReLU kink.
        let h = 1e-3f32;
        for (i, &g) in grads.iter().enumerate() {
            let mut plus = model.clone();
            plus.params[i] += h;
            let mut minus = model.clone();
            minus.params[i] -= h;
            let fd = (mean_loss(&plus, &x, &labels, 0) - mean_loss(&minus, &x, &labels, 0)) / (2.0 * f64::from(h));
            assert!((fd - f64::from(g)).abs() < 3e-3, "{kernels:?} param {i}: fd {fd} vs analytic {g}");
        }
    }
}
