//! Plain-Rust twins of every WGSL kernel, written for clarity rather than speed. The GPU tests
//! compare each kernel against these, and these against finite differences.

use crate::epoch::step_seed;
use crate::model::{
    BatchNormSlot, ConvSlot, DenseSlot, LrSchedule, ModelSpec, Op, ParamLayout, PoolSlot, BATCH_NORM_EPSILON,
    BATCH_NORM_MOMENTUM,
};
use crate::optimizer::AdamConfig;

/// Twin of `gather_batch.wgsl`: pixels/255 and labels of `order[start..start + rows]`.
pub fn gather_batch(
    images: &[u8],
    labels: &[u8],
    pixels: usize,
    order: &[u32],
    start: usize,
    rows: usize,
) -> (Vec<f32>, Vec<u32>) {
    let mut x = Vec::with_capacity(rows * pixels);
    let mut y = Vec::with_capacity(rows);
    for &sample in &order[start..start + rows] {
        let sample = sample as usize;
        x.extend(images[sample * pixels..(sample + 1) * pixels].iter().map(|&p| f32::from(p) / 255.0));
        y.push(u32::from(labels[sample]));
    }
    (x, y)
}

/// Twin of `dense_forward.wgsl`: `y[rows, units] = act(x[rows, inputs] · kernel + bias)`.
pub fn dense_forward(x: &[f32], rows: usize, kernel: &[f32], bias: &[f32], inputs: usize, relu: bool) -> Vec<f32> {
    let units = bias.len();
    let mut y = Vec::with_capacity(rows * units);
    for r in 0..rows {
        let mut acc = bias.to_vec();
        for k in 0..inputs {
            let xv = x[r * inputs + k];
            for (a, &w) in acc.iter_mut().zip(&kernel[k * units..(k + 1) * units]) {
                *a += xv * w;
            }
        }
        y.extend(acc.into_iter().map(|v| if relu { v.max(0.0) } else { v }));
    }
    y
}

/// Twin of `dense_backward_input.wgsl`: `dx = dz · kernelᵀ`, times ReLU' of the layer below
/// (read from its output `below`) when given.
pub fn dense_backward_input(
    dz: &[f32],
    rows: usize,
    kernel: &[f32],
    inputs: usize,
    units: usize,
    below: Option<&[f32]>,
) -> Vec<f32> {
    let mut dx = vec![0.0; rows * inputs];
    for r in 0..rows {
        for k in 0..inputs {
            let mut acc = 0.0;
            for n in 0..units {
                acc += dz[r * units + n] * kernel[k * units + n];
            }
            let open = below.is_none_or(|a| a[r * inputs + k] > 0.0);
            dx[r * inputs + k] = if open { acc } else { 0.0 };
        }
    }
    dx
}

/// Twin of `dense_backward_weights.wgsl`: `dkernel = xᵀ · dz`, `dbias = Σ_rows dz`.
pub fn dense_backward_weights(x: &[f32], dz: &[f32], rows: usize, inputs: usize, units: usize) -> (Vec<f32>, Vec<f32>) {
    let mut dkernel = vec![0.0; inputs * units];
    let mut dbias = vec![0.0; units];
    for r in 0..rows {
        let g = &dz[r * units..(r + 1) * units];
        for (b, &gn) in dbias.iter_mut().zip(g) {
            *b += gn;
        }
        for k in 0..inputs {
            let xv = x[r * inputs + k];
            for (d, &gn) in dkernel[k * units..(k + 1) * units].iter_mut().zip(g) {
                *d += xv * gn;
            }
        }
    }
    (dkernel, dbias)
}

/// What `softmax_cross_entropy.wgsl` produces for one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxCrossEntropy {
    pub probs: Vec<f32>,
    /// d(mean loss)/d(logits) = (p − onehot) / rows.
    pub dlogits: Vec<f32>,
    pub loss_sum: f64,
    pub correct: u32,
}

/// Twin of `softmax_cross_entropy.wgsl`: softmax, categorical cross-entropy per sample (via
/// log-sum-exp), its gradient for the batch mean, and the count of argmax hits.
pub fn softmax_cross_entropy(logits: &[f32], labels: &[u32], classes: usize) -> SoftmaxCrossEntropy {
    let rows = labels.len();
    let mut probs = vec![0.0; rows * classes];
    let mut dlogits = vec![0.0; rows * classes];
    let mut loss_sum = 0.0f64;
    let mut correct = 0;
    for r in 0..rows {
        let z = &logits[r * classes..(r + 1) * classes];
        let label = labels[r] as usize;
        let (mut best, mut max) = (0, z[0]);
        for (c, &v) in z.iter().enumerate() {
            if v > max {
                best = c;
                max = v;
            }
        }
        let sum: f32 = z.iter().map(|&v| (v - max).exp()).sum();
        loss_sum += f64::from(sum.ln() + max - z[label]);
        correct += u32::from(best == label);
        for c in 0..classes {
            let p = (z[c] - max).exp() / sum;
            probs[r * classes + c] = p;
            let target = if c == label { 1.0 } else { 0.0 };
            dlogits[r * classes + c] = (p - target) / rows as f32;
        }
    }
    SoftmaxCrossEntropy { probs, dlogits, loss_sum, correct }
}

/// Twin of `conv2d_forward.wgsl`: a valid 3×3 (or k×k) convolution of NHWC `x`
/// `[rows, h, w, c]` with `kernel [k, k, c, f]` plus `bias [f]`, ReLU when `relu`.
pub fn conv2d_forward(x: &[f32], rows: usize, slot: &ConvSlot, kernel: &[f32], bias: &[f32], relu: bool) -> Vec<f32> {
    let ConvSlot { height: h, width: w, channels: c, filters: f, kernel_size: k, .. } = *slot;
    let (oh, ow) = (slot.out_height(), slot.out_width());
    let mut y = vec![0.0; rows * oh * ow * f];
    for r in 0..rows {
        for oy in 0..oh {
            for ox in 0..ow {
                let out = ((r * oh + oy) * ow + ox) * f;
                let acc = &mut y[out..out + f];
                acc.copy_from_slice(bias);
                for ky in 0..k {
                    for kx in 0..k {
                        for ci in 0..c {
                            let xv = x[((r * h + oy + ky) * w + ox + kx) * c + ci];
                            let taps = &kernel[((ky * k + kx) * c + ci) * f..][..f];
                            for (a, &t) in acc.iter_mut().zip(taps) {
                                *a += xv * t;
                            }
                        }
                    }
                }
                if relu {
                    acc.iter_mut().for_each(|v| *v = v.max(0.0));
                }
            }
        }
    }
    y
}

/// Twin of `conv2d_backward_input.wgsl`: the gradient at the convolution's input from `dz`
/// at its pre-activation output, times ReLU' of the layer below (read from `below`) when given.
pub fn conv2d_backward_input(
    dz: &[f32],
    rows: usize,
    slot: &ConvSlot,
    kernel: &[f32],
    below: Option<&[f32]>,
) -> Vec<f32> {
    let ConvSlot { height: h, width: w, channels: c, filters: f, kernel_size: k, .. } = *slot;
    let (oh, ow) = (slot.out_height(), slot.out_width());
    let mut dx = vec![0.0; rows * h * w * c];
    for r in 0..rows {
        for oy in 0..oh {
            for ox in 0..ow {
                let g = &dz[((r * oh + oy) * ow + ox) * f..][..f];
                for ky in 0..k {
                    for kx in 0..k {
                        for ci in 0..c {
                            let taps = &kernel[((ky * k + kx) * c + ci) * f..][..f];
                            dx[((r * h + oy + ky) * w + ox + kx) * c + ci] +=
                                g.iter().zip(taps).map(|(a, b)| a * b).sum::<f32>();
                        }
                    }
                }
            }
        }
    }
    if let Some(below) = below {
        dx.iter_mut().zip(below).for_each(|(d, &a)| *d = if a > 0.0 { *d } else { 0.0 });
    }
    dx
}

/// Twin of `conv2d_backward_weights.wgsl`: `(dkernel [k, k, c, f], dbias [f])`.
pub fn conv2d_backward_weights(x: &[f32], dz: &[f32], rows: usize, slot: &ConvSlot) -> (Vec<f32>, Vec<f32>) {
    let ConvSlot { height: h, width: w, channels: c, filters: f, kernel_size: k, .. } = *slot;
    let (oh, ow) = (slot.out_height(), slot.out_width());
    let mut dkernel = vec![0.0; slot.kernel_len()];
    let mut dbias = vec![0.0; f];
    for r in 0..rows {
        for oy in 0..oh {
            for ox in 0..ow {
                let g = &dz[((r * oh + oy) * ow + ox) * f..][..f];
                dbias.iter_mut().zip(g).for_each(|(b, &v)| *b += v);
                for ky in 0..k {
                    for kx in 0..k {
                        for ci in 0..c {
                            let xv = x[((r * h + oy + ky) * w + ox + kx) * c + ci];
                            let d = &mut dkernel[((ky * k + kx) * c + ci) * f..][..f];
                            d.iter_mut().zip(g).for_each(|(d, &v)| *d += xv * v);
                        }
                    }
                }
            }
        }
    }
    (dkernel, dbias)
}

/// The input position (within one image) that wins the 2×2 window at output `(oy, ox)`,
/// channel `ci`: the first maximum in row-major order, as `max_pool_*.wgsl` pick it.
fn max_pool_winner(image: &[f32], slot: &PoolSlot, oy: usize, ox: usize, ci: usize) -> usize {
    let (w, c) = (slot.width, slot.channels);
    let mut best = (2 * oy * w + 2 * ox) * c + ci;
    for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
        let at = ((2 * oy + dy) * w + 2 * ox + dx) * c + ci;
        if image[at] > image[best] {
            best = at;
        }
    }
    best
}

/// Twin of `max_pool_forward.wgsl`: 2×2 max pooling, stride 2, of NHWC `x`.
pub fn max_pool_forward(x: &[f32], rows: usize, slot: &PoolSlot) -> Vec<f32> {
    let (oh, ow, c) = (slot.out_height(), slot.out_width(), slot.channels);
    let image_len = slot.height * slot.width * c;
    let mut y = Vec::with_capacity(rows * oh * ow * c);
    for image in x.chunks(image_len).take(rows) {
        for oy in 0..oh {
            for ox in 0..ow {
                for ci in 0..c {
                    y.push(image[max_pool_winner(image, slot, oy, ox, ci)]);
                }
            }
        }
    }
    y
}

/// Twin of `max_pool_backward.wgsl`: each window's gradient goes to its winner (the others,
/// and a trailing odd row or column, get 0), times ReLU' of the layer below (`x > 0`, `x` being
/// that layer's output) when `relu_below`.
pub fn max_pool_backward(x: &[f32], dy: &[f32], rows: usize, slot: &PoolSlot, relu_below: bool) -> Vec<f32> {
    let (oh, ow, c) = (slot.out_height(), slot.out_width(), slot.channels);
    let image_len = slot.height * slot.width * c;
    let mut dx = vec![0.0; x.len()];
    for r in 0..rows {
        let image = &x[r * image_len..(r + 1) * image_len];
        for oy in 0..oh {
            for ox in 0..ow {
                for ci in 0..c {
                    let winner = max_pool_winner(image, slot, oy, ox, ci);
                    if !relu_below || image[winner] > 0.0 {
                        dx[r * image_len + winner] = dy[((r * oh + oy) * ow + ox) * c + ci];
                    }
                }
            }
        }
    }
    dx
}

/// Twin of the hash in `dropout_*.wgsl` (Wellons's lowbias32): a counter-based PRNG, so the
/// backward pass regenerates the forward pass's mask instead of storing it.
pub fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Whether dropout op `index` keeps `element` (row-major over the batch) in the step seeded
/// `seed`: a uniform 24-bit draw compared with `rate`.
pub fn dropout_keeps(seed: u32, index: u32, element: u32, rate: f32) -> bool {
    let stream = mix(seed ^ index.wrapping_mul(0x9e37_79b9));
    let draw = (mix(stream ^ element) >> 8) as f32 * (1.0 / 16_777_216.0);
    draw >= rate
}

/// Twin of `dropout_forward.wgsl`: in training `x · keep / (1 − rate)`, at evaluation `x`.
pub fn dropout_forward(x: &[f32], rate: f32, seed: u32, index: u32, training: bool) -> Vec<f32> {
    if !training {
        return x.to_vec();
    }
    let scale = 1.0 / (1.0 - rate);
    x.iter()
        .enumerate()
        .map(|(i, &v)| if dropout_keeps(seed, index, i as u32, rate) { v * scale } else { 0.0 })
        .collect()
}

/// Twin of `dropout_backward.wgsl`: `dy · keep / (1 − rate)`, times ReLU' of the layer below
/// (read from its output `below`) when given.
pub fn dropout_backward(dy: &[f32], below: Option<&[f32]>, rate: f32, seed: u32, index: u32) -> Vec<f32> {
    let scale = 1.0 / (1.0 - rate);
    dy.iter()
        .enumerate()
        .map(|(i, &g)| {
            let open = below.is_none_or(|a| a[i] > 0.0);
            if open && dropout_keeps(seed, index, i as u32, rate) {
                g * scale
            } else {
                0.0
            }
        })
        .collect()
}

/// One BatchNormalization layer's tensors, borrowed from the flat parameter buffer.
pub struct BatchNormTensors<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub moving_mean: &'a [f32],
    pub moving_variance: &'a [f32],
}

/// What `batch_norm_forward.wgsl` produces in training mode besides `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormStatistics {
    /// Batch mean per feature.
    pub mean: Vec<f32>,
    /// 1/√(batch variance + ε) per feature (the biased variance, as Keras uses).
    pub inv_std: Vec<f32>,
    /// The moving statistics after this step's update.
    pub moving_mean: Vec<f32>,
    pub moving_variance: Vec<f32>,
}

/// Twin of `batch_norm_forward.wgsl`. Training: normalise with the batch's statistics and
/// return them with the updated moving statistics. Evaluation: normalise with the moving ones.
pub fn batch_norm_forward(
    x: &[f32],
    rows: usize,
    t: &BatchNormTensors<'_>,
    training: bool,
    relu: bool,
) -> (Vec<f32>, Option<BatchNormStatistics>) {
    let width = t.gamma.len();
    let (mean, inv_std, stats) = if training {
        let mut mean = vec![0.0f32; width];
        let mut inv_std = vec![0.0f32; width];
        let mut moving_mean = t.moving_mean.to_vec();
        let mut moving_variance = t.moving_variance.to_vec();
        for j in 0..width {
            let column = || (0..rows).map(|r| x[r * width + j]);
            let m = column().sum::<f32>() / rows as f32;
            let var = column().map(|v| (v - m) * (v - m)).sum::<f32>() / rows as f32;
            mean[j] = m;
            inv_std[j] = 1.0 / (var + BATCH_NORM_EPSILON).sqrt();
            moving_mean[j] = moving_mean[j] * BATCH_NORM_MOMENTUM + m * (1.0 - BATCH_NORM_MOMENTUM);
            moving_variance[j] = moving_variance[j] * BATCH_NORM_MOMENTUM + var * (1.0 - BATCH_NORM_MOMENTUM);
        }
        let stats = BatchNormStatistics { mean: mean.clone(), inv_std: inv_std.clone(), moving_mean, moving_variance };
        (mean, inv_std, Some(stats))
    } else {
        let inv_std = t.moving_variance.iter().map(|v| 1.0 / (v + BATCH_NORM_EPSILON).sqrt()).collect();
        (t.moving_mean.to_vec(), inv_std, None)
    };
    let y = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let j = i % width;
            let out = t.gamma[j] * (v - mean[j]) * inv_std[j] + t.beta[j];
            if relu {
                out.max(0.0)
            } else {
                out
            }
        })
        .collect();
    (y, stats)
}

/// Twin of `batch_norm_backward.wgsl` (training mode): with x̂ = (x − μ)·s,
/// `dx = γ·s/N · (N·dy − Σdy − x̂·Σ(dy·x̂))` (times ReLU' of the layer below when given),
/// `dγ = Σ dy·x̂`, `dβ = Σ dy`.
pub fn batch_norm_backward(
    x: &[f32],
    dy: &[f32],
    rows: usize,
    gamma: &[f32],
    stats: &BatchNormStatistics,
    below: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let width = gamma.len();
    let mut dx = vec![0.0; rows * width];
    let mut dgamma = vec![0.0; width];
    let mut dbeta = vec![0.0; width];
    for j in 0..width {
        let (m, s) = (stats.mean[j], stats.inv_std[j]);
        let xhat = |r: usize| (x[r * width + j] - m) * s;
        let sum_dy: f32 = (0..rows).map(|r| dy[r * width + j]).sum();
        let sum_dy_xhat: f32 = (0..rows).map(|r| dy[r * width + j] * xhat(r)).sum();
        dgamma[j] = sum_dy_xhat;
        dbeta[j] = sum_dy;
        let n = rows as f32;
        for r in 0..rows {
            let i = r * width + j;
            let open = below.is_none_or(|a| a[i] > 0.0);
            let g = gamma[j] * s / n * (n * dy[i] - sum_dy - xhat(r) * sum_dy_xhat);
            dx[i] = if open { g } else { 0.0 };
        }
    }
    (dx, dgamma, dbeta)
}

/// Twin of `l2_regularizer.wgsl`: adds `2λW` to the gradient of every Dense kernel and returns
/// the penalty `λ·ΣW²`.
pub fn l2_regularizer(params: &[f32], grads: &mut [f32], layout: &ParamLayout, l2: f32) -> f32 {
    let mut penalty = 0.0f32;
    for slot in &layout.dense {
        let range = slot.kernel_offset..slot.kernel_offset + slot.kernel_len();
        for (g, &w) in grads[range.clone()].iter_mut().zip(&params[range]) {
            *g += 2.0 * l2 * w;
            penalty += w * w;
        }
    }
    l2 * penalty
}

/// Twin of `adam.wgsl`: one Adam step over flat buffers, Keras's formulation, with the
/// learning rate `learning_rate` (the schedule's value for this step).
pub fn adam_update(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    config: &AdamConfig,
    learning_rate: f32,
    step: u64,
) {
    let lr_t = config.corrected_learning_rate(learning_rate, step);
    for i in 0..params.len() {
        let g = grads[i];
        m[i] = config.beta1 * m[i] + (1.0 - config.beta1) * g;
        v[i] = config.beta2 * v[i] + (1.0 - config.beta2) * g * g;
        params[i] -= lr_t * m[i] / (v[i].sqrt() + config.epsilon);
    }
}

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
    Train { seed: u32 },
    Eval,
}

/// Everything a forward pass leaves for the backward pass.
struct Forward {
    /// The input, then every op's output; the last is the logits.
    outputs: Vec<Vec<f32>>,
    /// Per BatchNorm op (in order), its batch statistics in training.
    batch_norm: Vec<Option<BatchNormStatistics>>,
}

/// A whole model trained on the CPU with the twins above: the reference the GPU trainer is
/// checked against, and the slow path where there is no GPU.
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
}

impl CpuModel {
    /// `seed` is the training seed: each step's dropout stream derives from it and the step.
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
        }
    }

    fn dense_tensors<'a>(params: &'a [f32], slot: &DenseSlot) -> (&'a [f32], &'a [f32]) {
        (
            &params[slot.kernel_offset..slot.kernel_offset + slot.kernel_len()],
            &params[slot.bias_offset..slot.bias_offset + slot.units],
        )
    }

    fn batch_norm_tensors<'a>(params: &'a [f32], slot: &BatchNormSlot) -> BatchNormTensors<'a> {
        let at = |offset: usize| &params[offset..offset + slot.width];
        BatchNormTensors {
            gamma: at(slot.gamma_offset),
            beta: at(slot.beta_offset),
            moving_mean: at(slot.moving_mean_offset),
            moving_variance: at(slot.moving_variance_offset),
        }
    }

    fn forward(&self, x: &[f32], rows: usize, mode: Mode) -> Forward {
        let mut outputs = vec![x.to_vec()];
        let mut batch_norm = Vec::new();
        for op in &self.ops {
            let input = outputs.last().map(Vec::as_slice).unwrap_or_default();
            let output = match *op {
                Op::Dense { slot, relu } => {
                    let (kernel, bias) = Self::dense_tensors(&self.params, &slot);
                    dense_forward(input, rows, kernel, bias, slot.inputs, relu)
                }
                Op::Dropout { rate, index, .. } => match mode {
                    Mode::Train { seed } => dropout_forward(input, rate, seed, index, true),
                    Mode::Eval => input.to_vec(),
                },
                Op::Conv2D { slot, relu } => {
                    let kernel = &self.params[slot.kernel_offset..slot.kernel_offset + slot.kernel_len()];
                    let bias = &self.params[slot.bias_offset..slot.bias_offset + slot.filters];
                    conv2d_forward(input, rows, &slot, kernel, bias, relu)
                }
                Op::MaxPool2D { slot } => max_pool_forward(input, rows, &slot),
                Op::BatchNorm { slot, relu } => {
                    let tensors = Self::batch_norm_tensors(&self.params, &slot);
                    let (y, stats) = batch_norm_forward(input, rows, &tensors, mode != Mode::Eval, relu);
                    batch_norm.push(stats);
                    y
                }
            };
            outputs.push(output);
        }
        Forward { outputs, batch_norm }
    }

    /// Softmax probabilities, `[rows, classes]`.
    pub fn predict(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let forward = self.forward(x, rows, Mode::Eval);
        let logits = forward.outputs.last().map(Vec::as_slice).unwrap_or_default();
        softmax_cross_entropy(logits, &vec![0; rows], logits.len() / rows.max(1)).probs
    }

    /// Loss and hits of a batch without training.
    pub fn evaluate(&self, x: &[f32], labels: &[u32]) -> BatchOutcome {
        let forward = self.forward(x, labels.len(), Mode::Eval);
        let logits = forward.outputs.last().map(Vec::as_slice).unwrap_or_default();
        let ce = softmax_cross_entropy(logits, labels, logits.len() / labels.len().max(1));
        BatchOutcome { loss_sum: ce.loss_sum, correct: ce.correct }
    }

    /// The training-mode loss of a batch (cross-entropy mean + L2 penalty) and the gradient of
    /// it with respect to every trainable parameter, with the moving statistics this step
    /// would leave behind.
    fn gradients_and_moving(&self, x: &[f32], labels: &[u32], mode: Mode) -> (Vec<f32>, BatchOutcome, Forward) {
        let rows = labels.len();
        let forward = self.forward(x, rows, mode);
        let outputs = &forward.outputs;
        let logits = &outputs[outputs.len() - 1];
        let ce = softmax_cross_entropy(logits, labels, logits.len() / rows);
        let mut grads = vec![0.0; self.layout.trainable];
        let mut dz = ce.dlogits.clone();
        let mut batch_norm_index = forward.batch_norm.len();
        for (i, op) in self.ops.iter().enumerate().rev() {
            let input = &outputs[i];
            let below = (i > 0 && self.ops[i - 1].relu()).then_some(input.as_slice());
            dz = match *op {
                Op::Dense { slot, .. } => {
                    let (dkernel, dbias) = dense_backward_weights(input, &dz, rows, slot.inputs, slot.units);
                    grads[slot.kernel_offset..slot.kernel_offset + slot.kernel_len()].copy_from_slice(&dkernel);
                    grads[slot.bias_offset..slot.bias_offset + slot.units].copy_from_slice(&dbias);
                    let (kernel, _) = Self::dense_tensors(&self.params, &slot);
                    dense_backward_input(&dz, rows, kernel, slot.inputs, slot.units, below)
                }
                Op::Dropout { rate, index, .. } => match mode {
                    Mode::Train { seed } => dropout_backward(&dz, below, rate, seed, index),
                    Mode::Eval => dz,
                },
                Op::Conv2D { slot, .. } => {
                    let (dkernel, dbias) = conv2d_backward_weights(input, &dz, rows, &slot);
                    grads[slot.kernel_offset..slot.kernel_offset + slot.kernel_len()].copy_from_slice(&dkernel);
                    grads[slot.bias_offset..slot.bias_offset + slot.filters].copy_from_slice(&dbias);
                    let kernel = &self.params[slot.kernel_offset..slot.kernel_offset + slot.kernel_len()];
                    conv2d_backward_input(&dz, rows, &slot, kernel, below)
                }
                Op::MaxPool2D { slot } => max_pool_backward(input, &dz, rows, &slot, below.is_some()),
                Op::BatchNorm { slot, .. } => {
                    batch_norm_index -= 1;
                    let gamma = &self.params[slot.gamma_offset..slot.gamma_offset + slot.width];
                    let stats = forward.batch_norm[batch_norm_index].as_ref().expect("training-mode statistics");
                    let (dx, dgamma, dbeta) = batch_norm_backward(input, &dz, rows, gamma, stats, below);
                    grads[slot.gamma_offset..slot.gamma_offset + slot.width].copy_from_slice(&dgamma);
                    grads[slot.beta_offset..slot.beta_offset + slot.width].copy_from_slice(&dbeta);
                    dx
                }
            };
        }
        let penalty = if self.l2 > 0.0 { l2_regularizer(&self.params, &mut grads, &self.layout, self.l2) } else { 0.0 };
        let loss_sum = ce.loss_sum + f64::from(penalty) * rows as f64;
        (grads, BatchOutcome { loss_sum, correct: ce.correct }, forward)
    }

    /// Gradient of the batch's training loss with respect to every trainable parameter, for
    /// the step seeded `seed` (dropout's mask).
    pub fn gradients(&self, x: &[f32], labels: &[u32], seed: u32) -> (Vec<f32>, BatchOutcome) {
        let (grads, outcome, _) = self.gradients_and_moving(x, labels, Mode::Train { seed });
        (grads, outcome)
    }

    /// Optimizer steps taken so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Changes Adam's learning rate for the steps to come.
    pub fn set_learning_rate(&mut self, learning_rate: f32) {
        self.adam.learning_rate = learning_rate;
    }

    /// One Adam step on a batch; the moving statistics of BatchNorm layers are updated too.
    pub fn train_step(&mut self, x: &[f32], labels: &[u32]) -> BatchOutcome {
        let seed = step_seed(self.seed, self.step + 1);
        let (grads, outcome, forward) = self.gradients_and_moving(x, labels, Mode::Train { seed });
        for (slot, stats) in self.layout.batch_norm.iter().zip(forward.batch_norm) {
            let stats = stats.expect("training-mode statistics");
            let w = slot.width;
            self.params[slot.moving_mean_offset..slot.moving_mean_offset + w].copy_from_slice(&stats.moving_mean);
            self.params[slot.moving_variance_offset..slot.moving_variance_offset + w]
                .copy_from_slice(&stats.moving_variance);
        }
        let learning_rate = self.schedule.learning_rate(self.adam.learning_rate, self.step);
        self.step += 1;
        let trainable = self.layout.trainable;
        adam_update(
            &mut self.params[..trainable],
            &grads,
            &mut self.m,
            &mut self.v,
            &self.adam,
            learning_rate,
            self.step,
        );
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

    /// Every op in one model: the analytic gradient must be the loss's finite differences.
    #[test]
    fn model_gradients_match_finite_differences() {
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
        let model = CpuModel::new(&spec, params, AdamConfig::default(), 1);
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
            assert!((fd - f64::from(g)).abs() < 3e-3, "param {i}: fd {fd} vs analytic {g}");
        }
    }

    /// A small CNN (conv → pool → dense) on 6×6 images: analytic gradient = finite differences.
    #[test]
    fn cnn_gradients_match_finite_differences() {
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
        let model = CpuModel::new(&spec, params, AdamConfig::default(), 1);
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
            assert!((fd - f64::from(g)).abs() < 3e-3, "param {i}: fd {fd} vs analytic {g}");
        }
    }

    #[test]
    fn dropout_keeps_about_one_minus_rate_and_scales() {
        let x = vec![1.0f32; 10_000];
        let y = dropout_forward(&x, 0.3, 99, 2, true);
        let kept = y.iter().filter(|&&v| v != 0.0).count();
        assert!((6_700..7_300).contains(&kept), "{kept}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        assert_ne!(y, dropout_forward(&x, 0.3, 99, 3, true), "each dropout op has its own mask");
        assert_ne!(y, dropout_forward(&x, 0.3, 100, 2, true), "each step has its own mask");
        assert_eq!(dropout_forward(&x, 0.3, 99, 2, false), x, "identity at evaluation");
    }

    #[test]
    fn batch_norm_trains_with_batch_statistics_and_evaluates_with_moving_ones() {
        let (rows, width) = (4, 2);
        let x = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
        let tensors = BatchNormTensors {
            gamma: &[1.0, 2.0],
            beta: &[0.0, 1.0],
            moving_mean: &[0.0, 0.0],
            moving_variance: &[1.0, 1.0],
        };
        let (y, stats) = batch_norm_forward(&x, rows, &tensors, true, false);
        let stats = stats.unwrap();
        assert_eq!(stats.mean, vec![2.5, 25.0]);
        assert!((stats.inv_std[0] - 1.0 / (1.25f32 + 1e-3).sqrt()).abs() < 1e-6);
        assert!((stats.moving_mean[1] - 0.25).abs() < 1e-6);
        assert!((stats.moving_variance[1] - (0.99 + 0.01 * 125.0)).abs() < 1e-5);
        let column: f32 = (0..rows).map(|r| y[r * width]).sum();
        assert!(column.abs() < 1e-5, "normalised column sums to β·rows = 0");
        let (eval, none) = batch_norm_forward(&x, rows, &tensors, false, false);
        assert!(none.is_none());
        assert!((eval[1] - (2.0 * 10.0 / (1.0f32 + 1e-3).sqrt() + 1.0)).abs() < 1e-4, "{}", eval[1]);
    }

    #[test]
    fn softmax_cross_entropy_of_uniform_logits_is_ln_classes() {
        let ce = softmax_cross_entropy(&[0.0; 20], &[3, 7], 10);
        assert!((ce.loss_sum / 2.0 - 10f64.ln()).abs() < 1e-6);
        assert!((ce.probs.iter().sum::<f32>() - 2.0).abs() < 1e-5);
        assert!((ce.dlogits[3] - (0.1 - 1.0) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn adam_first_step_moves_by_learning_rate() {
        let config = AdamConfig::default();
        let mut p = vec![1.0, -1.0];
        let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
        adam_update(&mut p, &[0.5, -2.0], &mut m, &mut v, &config, config.learning_rate, 1);
        assert!((p[0] - (1.0 - 1e-3)).abs() < 1e-6, "{}", p[0]);
        assert!((p[1] - (-1.0 + 1e-3)).abs() < 1e-6, "{}", p[1]);
    }
}
