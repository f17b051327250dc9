//! A model's buffers on the device, and every kernel of a training step, an evaluation and a
//! prediction bound to them once, in the order they are dispatched.

use fashion_data::{Dataset, NUM_CLASSES};

use super::context::{GpuContext, GpuError, TrackedBuffer};
use super::kernel::{step_buffer, BoundKernel, Kernel, KernelShape, KernelVariant, PlannedDispatch};
use super::ops::adam::AdamShape;
use super::ops::batch_norm::{
    BatchNormBackwardEvalShape, BatchNormBackwardPartialsShape, BatchNormBackwardShape, BatchNormForwardShape,
    BatchNormStatisticsShape, StatisticsStage,
};
use super::ops::conv::ConvKernelShape;
use super::ops::dense::{DenseBackwardInputShape, DenseBackwardWeightsShape, DenseForwardShape};
use super::ops::dropout::{DropoutBackwardShape, DropoutForwardShape};
use super::ops::gather::GatherShape;
use super::ops::l2::{self, L2PenaltyTallyShape, L2RegularizerShape};
use super::ops::partials::SumPartialsShape;
use super::ops::pool::{MaxPoolBackwardShape, MaxPoolForwardShape};
use super::ops::saliency::SaliencySeedShape;
use super::ops::softmax::{MetricsTallyShape, SoftmaxCrossEntropyShape};
use super::ops::zero_pad::{ZeroPadBackwardShape, ZeroPadForwardShape};
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
        // The per-row softmax's losses and hits, shared by its three uses (run one after another).
        let row_metrics = (kernels.softmax_cross_entropy.variant() == KernelVariant::Tiled)
            .then(|| ctx.storage("row metrics", (2 * work.capacity * 4) as u64));
        let binder = Binder { ctx, kernels, work, row_metrics };
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
            adam: binder.bind(
                &kernels.adam,
                &AdamShape::new(layout.trainable, &config.adam),
                &[&work.params, &work.grads, &work.adam_m, &work.adam_v],
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

/// Binds kernels to one workspace.
struct Binder<'a> {
    ctx: &'a GpuContext,
    kernels: &'a Kernels,
    work: &'a Workspace,
    /// Where the per-row softmax writes each row's loss and hit, when that is the one bound.
    row_metrics: Option<TrackedBuffer>,
}

impl Binder<'_> {
    fn bind(&self, kernel: &Kernel, shape: &dyn KernelShape, storage: &[&TrackedBuffer]) -> BoundKernel {
        kernel.bind(self.ctx, &self.work.steps, shape, storage)
    }

    fn gather(&self, pixels: usize, split: &ResidentSplit) -> BoundKernel {
        let w = self.work;
        let storage = [&split.images, &split.labels, &split.order, &w.x, &w.batch_labels];
        self.bind(&self.kernels.gather_batch, &GatherShape::new(pixels), &storage)
    }

    /// Every op's forward kernels, in order, for batches of up to `batch` rows.
    fn forward_pass(&self, ops: &[Op], batch: usize, mode: ForwardMode) -> Vec<BoundKernel> {
        ops.iter().enumerate().flat_map(|(i, op)| self.forward(i, op, batch, mode)).collect()
    }

    /// Op `i`'s forward kernels for batches of up to `batch` rows.
    fn forward(&self, i: usize, op: &Op, batch: usize, mode: ForwardMode) -> Vec<BoundKernel> {
        let (k, w) = (self.kernels, self.work);
        let input = w.input_of(i);
        let split_batch_norm = match op {
            Op::BatchNorm { layout, .. } if mode != ForwardMode::Evaluation && k.batch_norm(layout).0 => Some(layout),
            _ => None,
        };
        if let Some(layout) = split_batch_norm {
            // The batch statistics as partials per chunk of rows, merged, then the output.
            let stats = &w.batch_norm_stats[i];
            let partials_shape = BatchNormStatisticsShape::new(layout, batch, StatisticsStage::Partials);
            let mut combine_shape = BatchNormStatisticsShape::new(layout, batch, StatisticsStage::Combine);
            if mode == ForwardMode::AfterStep {
                combine_shape = combine_shape.keeping_moving_statistics();
            }
            let partials =
                self.ctx.storage("batch norm statistics partials", (partials_shape.partial_floats() * 4) as u64);
            return vec![
                self.bind(&k.batch_norm_statistics_partials, &partials_shape, &[input, &partials]),
                self.bind(&k.batch_norm_statistics_combine, &combine_shape, &[&partials, &w.params, stats]),
                self.forward_one(i, op, mode),
            ];
        }
        vec![self.forward_one(i, op, mode)]
    }

    fn forward_one(&self, i: usize, op: &Op, mode: ForwardMode) -> BoundKernel {
        let (k, w) = (self.kernels, self.work);
        let training = mode != ForwardMode::Evaluation;
        let (input, output) = (w.input_of(i), &w.outputs[i]);
        match op {
            Op::Dense { layout, relu } => {
                self.bind(&k.dense_forward, &DenseForwardShape::new(layout, *relu), &[input, &w.params, output])
            }
            Op::Dropout { width, rate, index } => {
                let index = if mode == ForwardMode::AfterStep { after_step_dropout_index(*index) } else { *index };
                let shape = DropoutForwardShape::new(*width, *rate, index, training);
                self.bind(&k.dropout_forward, &shape, &[input, output])
            }
            Op::Conv2D { layout, relu } => {
                self.bind(&k.conv2d_forward, &ConvKernelShape::forward(layout, *relu), &[input, &w.params, output])
            }
            Op::MaxPool2D { layout } => {
                self.bind(&k.max_pool_forward, &MaxPoolForwardShape::new(layout), &[input, output])
            }
            Op::ZeroPad2D { layout } => {
                self.bind(&k.zero_pad_forward, &ZeroPadForwardShape::new(layout), &[input, output])
            }
            Op::BatchNorm { layout, relu } => {
                let mut shape = BatchNormForwardShape::new(layout, *relu, training);
                if mode == ForwardMode::AfterStep {
                    shape = shape.keeping_moving_statistics();
                }
                let (_, forward, _) = k.batch_norm(layout);
                self.bind(forward, &shape, &[input, &w.params, output, &w.batch_norm_stats[i]])
            }
        }
    }

    /// The per-row softmax then its tally; or one dispatch per chunk of rows a single invocation
    /// may loop over (lavapipe caps loops).
    fn loss(&self, tally: u32, write_gradient: bool, max_rows: usize) -> Vec<BoundKernel> {
        let (k, w) = (self.kernels, self.work);
        let last = w.outputs.len() - 1;
        let (logits, dlogits) = (&w.outputs[last], &w.gradients[last]);
        if let Some(row_metrics) = &self.row_metrics {
            let shape = SoftmaxCrossEntropyShape::whole_batch(NUM_CLASSES, tally, write_gradient);
            let storage = [logits, &w.batch_labels, &w.probs, dlogits, row_metrics];
            let tally_shape = MetricsTallyShape { tally, _pad: [0; 3] };
            return vec![
                self.bind(&k.softmax_cross_entropy, &shape, &storage),
                self.bind(&k.metrics_tally, &tally_shape, &[row_metrics, &w.metrics]),
            ];
        }
        let storage = [logits, &w.batch_labels, &w.probs, dlogits, &w.metrics];
        SoftmaxCrossEntropyShape::chunks(NUM_CLASSES, tally, write_gradient, max_rows)
            .iter()
            .map(|shape| self.bind(&k.softmax_cross_entropy, shape, &storage))
            .collect()
    }

    /// Op `i`'s gradient kernels: to its parameters, then to its input (none for the first op,
    /// whose input is the images), masked by the ReLU of the op below when it has one.
    fn backward(&self, ops: &[Op], i: usize, op: &Op, batch: usize) -> Vec<BoundKernel> {
        let (k, w) = (self.kernels, self.work);
        let (input, dy) = (w.input_of(i), &w.gradients[i]);
        let mut kernels = Vec::new();
        match op {
            Op::Dense { layout, .. } => {
                let shape = DenseBackwardWeightsShape::new(layout);
                kernels.push(self.bind(&k.dense_backward_weights, &shape, &[input, dy, &w.grads]));
            }
            Op::Conv2D { layout, .. } => {
                if k.conv2d_backward_weights.variant() == KernelVariant::Tiled {
                    // Partial sums over chunks of the batch's positions, then their sum in order.
                    let shape = ConvKernelShape::backward_weights_split(layout, batch);
                    let partials = self.ctx.storage("conv weight partials", (shape.partial_floats() * 4) as u64);
                    kernels.push(self.bind(&k.conv2d_backward_weights, &shape, &[input, dy, &partials]));
                    let sum = SumPartialsShape::kernel_and_bias(
                        shape.shape.result_rows() as usize * layout.filters,
                        shape.shape.chunks as usize,
                        layout.kernel_len(),
                        layout.kernel_offset,
                        layout.bias_offset,
                    );
                    kernels.push(self.bind(&k.sum_partials, &sum, &[&partials, &w.grads]));
                } else {
                    // One dispatch per chunk of the batch's rows (lavapipe caps loop lengths).
                    for shape in ConvKernelShape::backward_weights_chunks(layout, batch) {
                        kernels.push(self.bind(&k.conv2d_backward_weights, &shape, &[input, dy, &w.grads]));
                    }
                }
            }
            Op::BatchNorm { layout, .. } => {
                // dx comes with dγ and dβ (from the batch statistics), the first op's included.
                let dx = if i == 0 { &w.input_gradient } else { &w.gradients[i - 1] };
                let relu_below = i > 0 && ops[i - 1].relu();
                let stats = &w.batch_norm_stats[i];
                let (split, _, backward) = k.batch_norm(layout);
                if split {
                    // dγ and dβ as partial sums per chunk of rows, summed in order into grads.
                    let shape = BatchNormBackwardPartialsShape::new(layout, batch);
                    let partials =
                        self.ctx.storage("batch norm gradient partials", (shape.partial_floats() * 4) as u64);
                    kernels.push(self.bind(&k.batch_norm_backward_partials, &shape, &[input, dy, stats, &partials]));
                    let sum = SumPartialsShape::kernel_and_bias(
                        2 * layout.width,
                        shape.chunks as usize,
                        layout.width,
                        layout.gamma_offset,
                        layout.beta_offset,
                    );
                    kernels.push(self.bind(&k.sum_partials, &sum, &[&partials, &w.grads]));
                }
                let shape = BatchNormBackwardShape::new(layout, relu_below);
                let storage = [input, dy, &w.params, stats, input, dx, &w.grads];
                kernels.push(self.bind(backward, &shape, &storage));
                return kernels;
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
        let (k, w) = (self.kernels, self.work);
        let last = w.outputs.len() - 1;
        let seed = self.bind(&k.saliency_seed, &SaliencySeedShape::new(NUM_CLASSES), &[&w.probs, &w.gradients[last]]);
        let backward = (0..ops.len()).rev().map(|i| self.input_gradient(ops, i, GradientMode::Evaluation));
        std::iter::once(seed).chain(backward).collect()
    }

    /// Op `i`'s kernel from the gradient at its output to the gradient at its input, masked by
    /// the ReLU of the op below when it has one: in training, dropout with the step's mask; in
    /// evaluation, dropout the identity and BatchNorm the affine map of its moving statistics.
    /// (A training BatchNorm's dx comes with its dγ and dβ: [`Binder::backward`].)
    fn input_gradient(&self, ops: &[Op], i: usize, mode: GradientMode) -> BoundKernel {
        let (k, w) = (self.kernels, self.work);
        let (input, dy) = (w.input_of(i), &w.gradients[i]);
        let dx = if i == 0 { &w.input_gradient } else { &w.gradients[i - 1] };
        let relu_below = i > 0 && ops[i - 1].relu();
        match &ops[i] {
            Op::Dense { layout, .. } => {
                let shape = DenseBackwardInputShape::new(layout, relu_below);
                self.bind(&k.dense_backward_input, &shape, &[dy, &w.params, input, dx])
            }
            Op::Dropout { width, rate, index } => {
                // At rate 0 the kernel keeps every element unscaled (draws lie in [0, 1)) and
                // applies the ReLU mask: evaluation-mode dropout.
                let rate = if mode == GradientMode::Training { *rate } else { 0.0 };
                let shape = DropoutBackwardShape::new(*width, rate, *index, relu_below);
                self.bind(&k.dropout_backward, &shape, &[dy, input, dx])
            }
            Op::Conv2D { layout, .. } => {
                let shape = ConvKernelShape::backward_input(layout, relu_below);
                self.bind(&k.conv2d_backward_input, &shape, &[dy, &w.params, input, dx])
            }
            Op::MaxPool2D { layout } => {
                let shape = MaxPoolBackwardShape::new(layout, relu_below);
                self.bind(&k.max_pool_backward, &shape, &[input, dy, dx])
            }
            Op::ZeroPad2D { layout } => {
                let shape = ZeroPadBackwardShape::new(layout, relu_below);
                self.bind(&k.zero_pad_backward, &shape, &[input, dy, dx])
            }
            Op::BatchNorm { layout, .. } => {
                debug_assert_eq!(mode, GradientMode::Evaluation, "a training BatchNorm's dx comes with dγ and dβ");
                let shape = BatchNormBackwardEvalShape::new(layout, relu_below);
                self.bind(&k.batch_norm_backward_eval, &shape, &[dy, &w.params, input, dx])
            }
        }
    }

    /// The one-workgroup L2 term, or the GPU set's partial penalties then their tally, the
    /// penalty added to `tally`.
    fn l2(&self, layout: &ParamLayout, l2: f32, tally: u32) -> Vec<BoundKernel> {
        let (k, w) = (self.kernels, self.work);
        let ranges = self.ctx.storage_with("l2 ranges", bytemuck::cast_slice(&l2::kernel_ranges(layout)));
        let shape = L2RegularizerShape::new(layout, l2, tally);
        if k.l2_regularizer.variant() == KernelVariant::Tiled {
            let partials = self.ctx.storage("l2 partials", (shape.partials() * 4) as u64);
            return vec![
                self.bind(&k.l2_regularizer, &shape, &[&ranges, &w.params, &w.grads, &partials]),
                self.bind(&k.l2_penalty_tally, &L2PenaltyTallyShape::new(&shape), &[&partials, &w.metrics]),
            ];
        }
        vec![self.bind(&k.l2_regularizer, &shape, &[&ranges, &w.params, &w.grads, &w.metrics])]
    }
}
