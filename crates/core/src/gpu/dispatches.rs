//! A model's buffers on the device, and every kernel of a training step, an evaluation and a
//! prediction bound to them once, in the order they are dispatched.

use fashion_data::{Dataset, NUM_CLASSES};

use super::context::{GpuContext, GpuError, TrackedBuffer};
use super::kernel::{step_buffer, Binder, BoundKernel, PlannedDispatch};
use super::ops::adam::{self, AdamIo};
use super::ops::batch_norm::{self, BatchNormBackwardEvalIo, BatchNormBackwardIo, BatchNormForwardIo, BatchNormMode};
use super::ops::conv::{self, ConvBackwardInputIo, ConvBackwardWeightsIo, ConvForwardIo};
use super::ops::dense::{self, DenseBackwardInputIo, DenseBackwardWeightsIo, DenseForwardIo};
use super::ops::dropout::{self, DropoutBackwardIo, DropoutForwardIo};
use super::ops::gather::{self, GatherIo};
use super::ops::l2::{self, L2Io};
use super::ops::pool::{self, MaxPoolBackwardIo, MaxPoolForwardIo};
use super::ops::saliency::{self, SaliencySeedIo};
use super::ops::softmax::{self, SoftmaxCrossEntropyIo};
use super::ops::zero_pad::{self, ZeroPadBackwardIo, ZeroPadForwardIo};
use super::ops::{Kernels, TALLY_WORDS};
use crate::init::glorot_uniform_params;
use crate::model::{ModelSpec, Op, ParamLayout};
use crate::train::{after_step_dropout_index, EpochMetrics, TrainConfig};

/// The metrics tallies: the epoch's training steps, the test set, predictions (whose loss is
/// never read).
pub const TRAIN_TALLY: u32 = 0;
pub const TEST_TALLY: u32 = 1;
const PREDICT_TALLY: u32 = 2;
/// [`EpochMetrics::AfterStep`]'s figures, measured after each step's update: the training-mode
/// loss (its hits unused), and the evaluation-mode hits (its loss unused).
pub const AFTER_STEP_LOSS_TALLY: u32 = 3;
pub const AFTER_STEP_HITS_TALLY: u32 = 4;
pub const TALLIES: usize = 5;

/// A split of the dataset living on the GPU.
pub struct ResidentSplit {
    pub images: TrackedBuffer,
    pub labels: TrackedBuffer,
    pub order: TrackedBuffer,
    pub len: usize,
}

impl ResidentSplit {
    pub fn upload(ctx: &GpuContext, name: &str, data: &Dataset) -> Result<Self, GpuError> {
        // u8 pixels packed four to a u32 word: a whole 60k split is 47 MB, under WebGPU's
        // default 128 MiB binding limit (as f32 it would not be).
        let mut pixels = data.images().to_vec();
        pixels.resize(pixels.len().next_multiple_of(4), 0);
        ctx.check_binding_size(&format!("the {name} images"), pixels.len() as u64)?;
        let labels: Vec<u32> = data.labels().iter().map(|&l| u32::from(l)).collect();
        let identity: Vec<u32> = (0..data.len() as u32).collect();
        Ok(ResidentSplit {
            images: ctx.storage_with(&format!("{name} images"), &pixels),
            labels: ctx.storage_with(&format!("{name} labels"), bytemuck::cast_slice(&labels)),
            order: ctx.storage_with(&format!("{name} order"), bytemuck::cast_slice(&identity)),
            len: data.len(),
        })
    }
}

/// Every device buffer a model's dispatches read and write, sized for `capacity` samples (the
/// larger of the training and evaluation batches).
pub struct Workspace {
    pub capacity: usize,
    pub params: TrackedBuffer,
    pub grads: TrackedBuffer,
    pub adam_m: TrackedBuffer,
    pub adam_v: TrackedBuffer,
    /// The batch's input (gathered, or written by the host to predict).
    pub x: TrackedBuffer,
    pub batch_labels: TrackedBuffer,
    /// Each op's output.
    pub outputs: Vec<TrackedBuffer>,
    /// Each op's gradient, at its pre-ReLU output.
    pub gradients: Vec<TrackedBuffer>,
    /// The gradient with respect to the input: the saliency's backward pass ends there (training
    /// never computes it, except a first BatchNorm op's, which computes one anyway).
    pub input_gradient: TrackedBuffer,
    /// Per op: the batch mean and 1/std of a BatchNorm op (a 4-byte stub for other ops).
    pub batch_norm_stats: Vec<TrackedBuffer>,
    pub probs: TrackedBuffer,
    /// [`TALLIES`] metrics tallies of [`TALLY_WORDS`] words.
    pub metrics: TrackedBuffer,
    /// One step slot per training step of a chunk, or per test batch.
    pub steps: TrackedBuffer,
}

impl Workspace {
    /// Checks the model fits the device's limits before allocating anything, then allocates its
    /// buffers, the parameters initialised from `config.seed`.
    pub fn new(ctx: &GpuContext, spec: &ModelSpec, config: &TrainConfig, test_len: usize) -> Result<Self, GpuError> {
        let layout = spec.param_layout();
        let ops = spec.ops();
        let capacity = config.batch.max(config.eval_batch);
        let floats = |n: usize| (n * 4) as u64;
        for (what, n) in
            [("one batch of the widest layer", capacity * spec.widest_layer()), ("the parameters", layout.total)]
        {
            ctx.check_binding_size(what, floats(n))?;
        }
        let initial = glorot_uniform_params(spec, config.seed);
        let trainable = floats(layout.trainable.max(1));
        Ok(Workspace {
            capacity,
            params: ctx.storage_with("params", bytemuck::cast_slice(&initial)),
            grads: ctx.storage("grads", trainable),
            adam_m: ctx.storage("adam m", trainable),
            adam_v: ctx.storage("adam v", trainable),
            x: ctx.storage("x", floats(capacity * spec.inputs)),
            batch_labels: ctx.storage("batch labels", floats(capacity)),
            outputs: ops.iter().map(|op| ctx.storage("op output", floats(capacity * op.width()))).collect(),
            gradients: ops.iter().map(|op| ctx.storage("op gradient", floats(config.batch * op.width()))).collect(),
            input_gradient: ctx.storage("input gradient", floats(config.batch * spec.inputs)),
            batch_norm_stats: ops
                .iter()
                .map(|op| match op {
                    Op::BatchNorm { layout, .. } => ctx.storage("batch norm stats", floats(2 * layout.width)),
                    _ => ctx.storage("no stats", 4),
                })
                .collect(),
            probs: ctx.storage("probs", floats(capacity * NUM_CLASSES)),
            metrics: ctx.storage("metrics", (TALLIES * TALLY_WORDS * 4) as u64),
            steps: step_buffer(ctx, config.steps_per_submit.max(test_len.div_ceil(config.eval_batch))),
        })
    }

    /// The input of op `i`: the batch, or the output of the op before.
    fn input_of(&self, i: usize) -> &TrackedBuffer {
        if i == 0 {
            &self.x
        } else {
            &self.outputs[i - 1]
        }
    }
}

/// Which part of a training step a dispatch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Gather, every op forward, and the loss.
    Forward,
    /// Every gradient, and the L2 term.
    Backward,
    /// Adam.
    Optimizer,
    /// [`EpochMetrics::AfterStep`]'s forward passes after the update, and their figures.
    Metrics,
}

/// How a forward pass runs its Dropout and BatchNorm ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForwardMode {
    /// The step's own: dropout with the step's masks, BatchNorm on the batch's statistics,
    /// moving statistics updated.
    Training,
    /// [`EpochMetrics::AfterStep`]'s loss: training mode with fresh dropout masks, and the moving
    /// statistics left as they are.
    AfterStep,
    /// No dropout, BatchNorm on the moving statistics.
    Evaluation,
}

/// Which backward pass an op's gradient at its input belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GradientMode {
    /// The training step's: dropout with the step's masks.
    Training,
    /// The saliency's: no dropout, BatchNorm on the moving statistics.
    Evaluation,
}

/// The bound kernels of each pass through the model, in dispatch order.
pub struct Dispatches {
    pub gather_train: BoundKernel,
    pub gather_test: BoundKernel,
    /// Every op's kernels (one, or BatchNorm's three in the GPU set): training mode (batch
    /// statistics, dropout masks).
    pub forward_train: Vec<BoundKernel>,
    /// One kernel per op: evaluation mode (moving statistics, no dropout).
    pub forward_eval: Vec<BoundKernel>,
    pub loss_train: Vec<BoundKernel>,
    pub loss_test: Vec<BoundKernel>,
    /// Softmax only: the input is written by the host, labels are ignored.
    pub predict: Vec<BoundKernel>,
    /// Every backward kernel in the order they run, from the loss down to the first op.
    pub backward: Vec<BoundKernel>,
    /// The L2 term's kernels (none without L2).
    pub l2: Vec<BoundKernel>,
    pub adam: BoundKernel,
    /// After Adam, with [`EpochMetrics::AfterStep`] only: a training-mode forward pass on the
    /// batch just trained and its loss (with the L2 term), then an evaluation-mode one and its
    /// hits.
    pub after_step: Vec<BoundKernel>,
    /// After a prediction, the gradient of the predicted class's probability carried back to the
    /// input in evaluation mode (no dropout, moving BatchNorm statistics): the saliency seed, then
    /// every op's gradient at its input, the first op's included.
    pub saliency: Vec<BoundKernel>,
}

impl Dispatches {
    /// Binds every kernel of `spec` to `work` and the two resident splits.
    pub fn bind(
        ctx: &GpuContext,
        kernels: &Kernels,
        spec: &ModelSpec,
        config: &TrainConfig,
        work: &Workspace,
        train: &ResidentSplit,
        test: &ResidentSplit,
    ) -> Self {
        let b = Binder { ctx, steps: &work.steps };
        // The per-row softmax's losses and hits, shared by its three uses (run one after another).
        let row_metrics = softmax::row_metrics(&b, kernels, work.capacity);
        let binder = ModelBinder { b, kernels, work, row_metrics };
        let ops = spec.ops();
        let layout = spec.param_layout();
        Dispatches {
            gather_train: binder.gather(spec.inputs, train),
            gather_test: binder.gather(spec.inputs, test),
            forward_train: binder.forward_pass(&ops, config.batch, ForwardMode::Training),
            forward_eval: binder.forward_pass(&ops, config.batch, ForwardMode::Evaluation),
            loss_train: binder.loss(TRAIN_TALLY, true, config.batch),
            loss_test: binder.loss(TEST_TALLY, false, config.eval_batch),
            predict: binder.loss(PREDICT_TALLY, false, work.capacity),
            backward: ops
                .iter()
                .enumerate()
                .rev()
                .flat_map(|(i, op)| binder.backward(&ops, i, op, config.batch))
                .collect(),
            l2: if spec.l2 > 0.0 { binder.l2(&layout, spec.l2, TRAIN_TALLY) } else { Vec::new() },
            adam: adam::bind(
                &b,
                &kernels.adam,
                layout.trainable,
                &config.adam,
                AdamIo { params: &work.params, grads: &work.grads, m: &work.adam_m, v: &work.adam_v },
            ),
            after_step: match config.metrics {
                EpochMetrics::Step => Vec::new(),
                EpochMetrics::AfterStep => {
                    // The gather's batch is still in x and the batch labels. The L2 term adds
                    // 2λW to grads again, harmlessly: the next step's backward pass overwrites
                    // every gradient before anything reads one.
                    let mut kernels = binder.forward_pass(&ops, config.batch, ForwardMode::AfterStep);
                    kernels.extend(binder.loss(AFTER_STEP_LOSS_TALLY, false, config.batch));
                    if spec.l2 > 0.0 {
                        kernels.extend(binder.l2(&layout, spec.l2, AFTER_STEP_LOSS_TALLY));
                    }
                    kernels.extend(binder.forward_pass(&ops, config.batch, ForwardMode::Evaluation));
                    kernels.extend(binder.loss(AFTER_STEP_HITS_TALLY, false, config.batch));
                    kernels
                }
            },
            saliency: binder.saliency(&ops),
        }
    }

    /// Every dispatch of one training step, in order, with the part of the step it belongs to.
    pub fn train_step_phases(&self) -> impl Iterator<Item = (&BoundKernel, Phase)> {
        [&self.gather_train]
            .into_iter()
            .chain(&self.forward_train)
            .chain(&self.loss_train)
            .map(|kernel| (kernel, Phase::Forward))
            .chain(self.backward.iter().chain(&self.l2).map(|kernel| (kernel, Phase::Backward)))
            .chain([(&self.adam, Phase::Optimizer)])
            .chain(self.after_step.iter().map(|kernel| (kernel, Phase::Metrics)))
    }

    /// Every dispatch of one training step, in order.
    pub fn train_step(&self) -> impl Iterator<Item = &BoundKernel> {
        self.train_step_phases().map(|(kernel, _)| kernel)
    }

    /// Every dispatch of one test batch.
    pub fn test_step(&self) -> impl Iterator<Item = &BoundKernel> {
        [&self.gather_test].into_iter().chain(&self.forward_eval).chain(&self.loss_test)
    }

    /// Every dispatch of a prediction on host-written input.
    pub fn prediction(&self) -> impl Iterator<Item = &BoundKernel> {
        self.forward_eval.iter().chain(&self.predict)
    }

    /// Every dispatch of a prediction on host-written input followed by its saliency.
    pub fn explanation(&self) -> impl Iterator<Item = &BoundKernel> {
        self.prediction().chain(&self.saliency)
    }

    /// The dispatches of one training step of `rows` rows, in order, as they are recorded.
    pub fn train_step_plan(&self, rows: u32) -> Vec<PlannedDispatch> {
        self.train_step().map(|kernel| kernel.plan(rows)).collect()
    }
}

/// Binds kernels to one workspace, each op through its own bind functions (`ops/<family>.rs`).
struct ModelBinder<'a> {
    b: Binder<'a>,
    kernels: &'a Kernels,
    work: &'a Workspace,
    /// Where the per-row softmax writes each row's loss and hit, when that is the one bound.
    row_metrics: Option<TrackedBuffer>,
}

impl ModelBinder<'_> {
    fn gather(&self, pixels: usize, split: &ResidentSplit) -> BoundKernel {
        let w = self.work;
        let io = GatherIo {
            images: &split.images,
            labels: &split.labels,
            order: &split.order,
            x: &w.x,
            batch_labels: &w.batch_labels,
        };
        gather::bind(&self.b, &self.kernels.gather_batch, pixels, io)
    }

    /// Every op's forward kernels, in order, for batches of up to `batch` rows.
    fn forward_pass(&self, ops: &[Op], batch: usize, mode: ForwardMode) -> Vec<BoundKernel> {
        ops.iter().enumerate().flat_map(|(i, op)| self.forward(i, op, batch, mode)).collect()
    }

    /// Op `i`'s forward kernels for batches of up to `batch` rows.
    fn forward(&self, i: usize, op: &Op, batch: usize, mode: ForwardMode) -> Vec<BoundKernel> {
        let (b, k, w) = (&self.b, self.kernels, self.work);
        let training = mode != ForwardMode::Evaluation;
        let (x, y) = (w.input_of(i), &w.outputs[i]);
        let one = match op {
            Op::Dense { layout, relu } => {
                dense::bind_forward(b, &k.dense_forward, layout, *relu, DenseForwardIo { x, params: &w.params, y })
            }
            Op::Dropout { width, rate, index } => {
                let index = if mode == ForwardMode::AfterStep { after_step_dropout_index(*index) } else { *index };
                dropout::bind_forward(b, &k.dropout_forward, *width, *rate, index, training, DropoutForwardIo { x, y })
            }
            Op::Conv2D { layout, relu } => {
                conv::bind_forward(b, &k.conv2d_forward, layout, *relu, ConvForwardIo { x, params: &w.params, y })
            }
            Op::MaxPool2D { layout } => pool::bind_forward(b, &k.max_pool_forward, layout, MaxPoolForwardIo { x, y }),
            Op::ZeroPad2D { layout } => {
                zero_pad::bind_forward(b, &k.zero_pad_forward, layout, ZeroPadForwardIo { x, y })
            }
            Op::BatchNorm { layout, relu } => {
                let mode = match mode {
                    ForwardMode::Training => BatchNormMode::Training,
                    ForwardMode::AfterStep => BatchNormMode::TrainingKeepingMovingStatistics,
                    ForwardMode::Evaluation => BatchNormMode::Evaluation,
                };
                let io = BatchNormForwardIo { x, params: &w.params, y, stats: &w.batch_norm_stats[i] };
                return batch_norm::bind_forward(b, k, layout, *relu, mode, batch, io);
            }
        };
        vec![one]
    }

    /// The loss on the last op's output for batches of up to `max_rows` rows, into `tally`.
    fn loss(&self, tally: u32, write_gradient: bool, max_rows: usize) -> Vec<BoundKernel> {
        let w = self.work;
        let last = w.outputs.len() - 1;
        let io = SoftmaxCrossEntropyIo {
            logits: &w.outputs[last],
            labels: &w.batch_labels,
            probs: &w.probs,
            dlogits: &w.gradients[last],
            metrics: &w.metrics,
            row_metrics: self.row_metrics.as_ref(),
        };
        softmax::bind_loss(&self.b, self.kernels, NUM_CLASSES, tally, write_gradient, max_rows, io)
    }

    /// Op `i`'s gradient kernels: to its parameters, then to its input (none for the first op,
    /// whose input is the images), masked by the ReLU of the op below when it has one.
    fn backward(&self, ops: &[Op], i: usize, op: &Op, batch: usize) -> Vec<BoundKernel> {
        let (b, k, w) = (&self.b, self.kernels, self.work);
        let (x, dy) = (w.input_of(i), &w.gradients[i]);
        let mut kernels = Vec::new();
        match op {
            Op::Dense { layout, .. } => {
                let io = DenseBackwardWeightsIo { x, dy, grads: &w.grads };
                kernels.push(dense::bind_backward_weights(b, &k.dense_backward_weights, layout, io));
            }
            Op::Conv2D { layout, .. } => {
                let io = ConvBackwardWeightsIo { x, dy, grads: &w.grads };
                kernels.extend(conv::bind_backward_weights(b, k, layout, batch, io));
            }
            Op::BatchNorm { layout, .. } => {
                // dx comes with dγ and dβ (from the batch statistics), the first op's included.
                let dx = if i == 0 { &w.input_gradient } else { &w.gradients[i - 1] };
                let relu_below = i > 0 && ops[i - 1].relu();
                let stats = &w.batch_norm_stats[i];
                let io = BatchNormBackwardIo { x, dy, params: &w.params, stats, below: x, dx, grads: &w.grads };
                return batch_norm::bind_backward(b, k, layout, relu_below, batch, io);
            }
            Op::Dropout { .. } | Op::MaxPool2D { .. } | Op::ZeroPad2D { .. } => {}
        }
        if i > 0 {
            kernels.push(self.input_gradient(ops, i, GradientMode::Training));
        }
        kernels
    }

    /// The saliency's backward pass: the seed ∂p_c/∂logits from the prediction's probabilities,
    /// then each op's evaluation-mode gradient at its input, from the last op down to the
    /// images (each masked by the ReLU of the op below when it has one, as in training).
    fn saliency(&self, ops: &[Op]) -> Vec<BoundKernel> {
        let w = self.work;
        let last = w.outputs.len() - 1;
        let io = SaliencySeedIo { probs: &w.probs, dlogits: &w.gradients[last] };
        let seed = saliency::bind_seed(&self.b, &self.kernels.saliency_seed, NUM_CLASSES, io);
        let backward = (0..ops.len()).rev().map(|i| self.input_gradient(ops, i, GradientMode::Evaluation));
        std::iter::once(seed).chain(backward).collect()
    }

    /// Op `i`'s kernel from the gradient at its output to the gradient at its input, masked by
    /// the ReLU of the op below when it has one: in training, dropout with the step's mask; in
    /// evaluation, dropout the identity and BatchNorm the affine map of its moving statistics.
    /// (A training BatchNorm's dx comes with its dγ and dβ: [`ModelBinder::backward`].)
    fn input_gradient(&self, ops: &[Op], i: usize, mode: GradientMode) -> BoundKernel {
        let (b, k, w) = (&self.b, self.kernels, self.work);
        let (below, dy) = (w.input_of(i), &w.gradients[i]);
        let dx = if i == 0 { &w.input_gradient } else { &w.gradients[i - 1] };
        let relu_below = i > 0 && ops[i - 1].relu();
        let params = &w.params;
        match &ops[i] {
            Op::Dense { layout, .. } => {
                let io = DenseBackwardInputIo { dy, params, below, dx };
                dense::bind_backward_input(b, &k.dense_backward_input, layout, relu_below, io)
            }
            Op::Dropout { width, rate, index } => {
                // At rate 0 the kernel keeps every element unscaled (draws lie in [0, 1)) and
                // applies the ReLU mask: evaluation-mode dropout.
                let rate = if mode == GradientMode::Training { *rate } else { 0.0 };
                let io = DropoutBackwardIo { dy, below, dx };
                dropout::bind_backward(b, &k.dropout_backward, *width, rate, *index, relu_below, io)
            }
            Op::Conv2D { layout, .. } => {
                let io = ConvBackwardInputIo { dy, params, below, dx };
                conv::bind_backward_input(b, &k.conv2d_backward_input, layout, relu_below, io)
            }
            Op::MaxPool2D { layout } => {
                let io = MaxPoolBackwardIo { x: below, dy, dx };
                pool::bind_backward(b, &k.max_pool_backward, layout, relu_below, io)
            }
            Op::ZeroPad2D { layout } => {
                let io = ZeroPadBackwardIo { below, dy, dx };
                zero_pad::bind_backward(b, &k.zero_pad_backward, layout, relu_below, io)
            }
            Op::BatchNorm { layout, .. } => {
                debug_assert_eq!(mode, GradientMode::Evaluation, "a training BatchNorm's dx comes with dγ and dβ");
                let io = BatchNormBackwardEvalIo { dy, params, below, dx };
                batch_norm::bind_backward_eval(b, &k.batch_norm_backward_eval, layout, relu_below, io)
            }
        }
    }

    /// The L2 term, the penalty added to `tally`.
    fn l2(&self, layout: &ParamLayout, l2: f32, tally: u32) -> Vec<BoundKernel> {
        let w = self.work;
        l2::bind(
            &self.b,
            self.kernels,
            layout,
            l2,
            tally,
            L2Io { params: &w.params, grads: &w.grads, metrics: &w.metrics },
        )
    }
}
