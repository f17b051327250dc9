//! Plain-Rust twins of every WGSL kernel, written for clarity rather than speed. The GPU tests
//! compare each kernel against these, and these against finite differences; the CPU backend
//! ([`crate::cpu`]) trains with them.

use crate::model::{ConvLayout, PadLayout, ParamLayout, PoolLayout, BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM};
use crate::optimizer::AdamConfig;

/// Twin of `gather/batch.wgsl`: pixels/255 and labels of `order[start..start + rows]`.
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

/// Twin of `dense/forward.wgsl`: `y[rows, units] = act(x[rows, inputs] · kernel + bias)`.
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

/// Twin of `dense/backward_input.wgsl`: `dx = dz · kernelᵀ`, times ReLU' of the layer below
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

/// Twin of `dense/backward_weights.wgsl`: `dkernel = xᵀ · dz`, `dbias = Σ_rows dz`.
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

/// What `softmax/cross_entropy.wgsl` produces for one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxCrossEntropy {
    pub probs: Vec<f32>,
    /// d(mean loss)/d(logits) = (p − onehot) / rows.
    pub dlogits: Vec<f32>,
    pub loss_sum: f64,
    pub correct: u32,
}

/// Twin of `softmax/cross_entropy.wgsl`: softmax, categorical cross-entropy per sample (via
/// log-sum-exp), its gradient for the batch mean, and the count of argmax hits.
pub fn softmax_cross_entropy(logits: &[f32], labels: &[u32], classes: usize) -> SoftmaxCrossEntropy {
    softmax_cross_entropy_of_rows(logits, labels, classes, labels.len())
}

/// [`softmax_cross_entropy`] of some rows (a shard) of a batch of `batch_rows`: the gradient is
/// that of the whole batch's mean loss, `(p − onehot) / batch_rows`, value for value.
pub fn softmax_cross_entropy_of_rows(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    batch_rows: usize,
) -> SoftmaxCrossEntropy {
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
            dlogits[r * classes + c] = (p - target) / batch_rows as f32;
        }
    }
    SoftmaxCrossEntropy { probs, dlogits, loss_sum, correct }
}

/// Twin of `conv/forward.wgsl`: a valid 3×3 (or k×k) convolution of NHWC `x`
/// `[rows, h, w, c]` with `kernel [k, k, c, f]` plus `bias [f]`, ReLU when `relu`.
pub fn conv2d_forward(
    x: &[f32],
    rows: usize,
    layout: &ConvLayout,
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
) -> Vec<f32> {
    let ConvLayout { height: h, width: w, channels: c, filters: f, kernel_size: k, .. } = *layout;
    let (oh, ow) = (layout.out_height(), layout.out_width());
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

/// Twin of `conv/backward_input.wgsl`: the gradient at the convolution's input from `dz`
/// at its pre-activation output, times ReLU' of the layer below (read from `below`) when given.
pub fn conv2d_backward_input(
    dz: &[f32],
    rows: usize,
    layout: &ConvLayout,
    kernel: &[f32],
    below: Option<&[f32]>,
) -> Vec<f32> {
    let ConvLayout { height: h, width: w, channels: c, filters: f, kernel_size: k, .. } = *layout;
    let (oh, ow) = (layout.out_height(), layout.out_width());
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

/// Twin of `conv/backward_weights.wgsl`: `(dkernel [k, k, c, f], dbias [f])`.
pub fn conv2d_backward_weights(x: &[f32], dz: &[f32], rows: usize, layout: &ConvLayout) -> (Vec<f32>, Vec<f32>) {
    let ConvLayout { height: h, width: w, channels: c, filters: f, kernel_size: k, .. } = *layout;
    let (oh, ow) = (layout.out_height(), layout.out_width());
    let mut dkernel = vec![0.0; layout.kernel_len()];
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
/// channel `ci`: the first maximum in row-major order, as `pool/*.wgsl` pick it.
fn max_pool_winner(image: &[f32], layout: &PoolLayout, oy: usize, ox: usize, ci: usize) -> usize {
    let (w, c) = (layout.width, layout.channels);
    let mut best = (2 * oy * w + 2 * ox) * c + ci;
    for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
        let at = ((2 * oy + dy) * w + 2 * ox + dx) * c + ci;
        if image[at] > image[best] {
            best = at;
        }
    }
    best
}

/// Twin of `zero_pad/forward.wgsl`: `x`'s NHWC images with `padding` zeros on every side.
pub fn zero_pad_forward(x: &[f32], rows: usize, layout: &PadLayout) -> Vec<f32> {
    let (w, c, p) = (layout.width, layout.channels, layout.padding);
    let out_row = layout.out_width() * c;
    let mut y = vec![0.0; rows * layout.out_height() * out_row];
    for (image, padded) in x.chunks(layout.height * w * c).zip(y.chunks_mut(layout.out_height() * out_row)) {
        for (line, out) in image.chunks(w * c).zip(padded.chunks_mut(out_row).skip(p)) {
            out[p * c..(p + w) * c].copy_from_slice(line);
        }
    }
    y
}

/// Twin of `zero_pad/backward.wgsl`: the middle of each padded image's gradient `dy`, times
/// ReLU' of the layer below (`x > 0`, `x` being that layer's output and this op's input) when
/// `below` is given.
pub fn zero_pad_backward(dy: &[f32], rows: usize, layout: &PadLayout, below: Option<&[f32]>) -> Vec<f32> {
    let (w, c, p) = (layout.width, layout.channels, layout.padding);
    let out_row = layout.out_width() * c;
    let mut dx = Vec::with_capacity(rows * layout.height * w * c);
    for padded in dy.chunks(layout.out_height() * out_row).take(rows) {
        for line in padded.chunks(out_row).skip(p).take(layout.height) {
            dx.extend_from_slice(&line[p * c..(p + w) * c]);
        }
    }
    if let Some(below) = below {
        dx.iter_mut().zip(below).filter(|(_, &b)| b <= 0.0).for_each(|(d, _)| *d = 0.0);
    }
    dx
}

/// Twin of `pool/forward.wgsl`: 2×2 max pooling, stride 2, of NHWC `x`.
pub fn max_pool_forward(x: &[f32], rows: usize, layout: &PoolLayout) -> Vec<f32> {
    let (oh, ow, c) = (layout.out_height(), layout.out_width(), layout.channels);
    let image_len = layout.height * layout.width * c;
    let mut y = Vec::with_capacity(rows * oh * ow * c);
    for image in x.chunks(image_len).take(rows) {
        for oy in 0..oh {
            for ox in 0..ow {
                for ci in 0..c {
                    y.push(image[max_pool_winner(image, layout, oy, ox, ci)]);
                }
            }
        }
    }
    y
}

/// Twin of `pool/backward.wgsl`: each window's gradient goes to its winner (the others,
/// and a trailing odd row or column, get 0), times ReLU' of the layer below (`x > 0`, `x` being
/// that layer's output) when `relu_below`.
pub fn max_pool_backward(x: &[f32], dy: &[f32], rows: usize, layout: &PoolLayout, relu_below: bool) -> Vec<f32> {
    let (oh, ow, c) = (layout.out_height(), layout.out_width(), layout.channels);
    let image_len = layout.height * layout.width * c;
    let mut dx = vec![0.0; x.len()];
    for r in 0..rows {
        let image = &x[r * image_len..(r + 1) * image_len];
        for oy in 0..oh {
            for ox in 0..ow {
                for ci in 0..c {
                    let winner = max_pool_winner(image, layout, oy, ox, ci);
                    if !relu_below || image[winner] > 0.0 {
                        dx[r * image_len + winner] = dy[((r * oh + oy) * ow + ox) * c + ci];
                    }
                }
            }
        }
    }
    dx
}

/// Twin of the hash in `dropout/*.wgsl` (Wellons's lowbias32): a counter-based PRNG, so the
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

/// Twin of `dropout/forward.wgsl`: in training `x · keep / (1 − rate)`, at evaluation `x`.
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

/// Twin of `dropout/backward.wgsl`: `dy · keep / (1 − rate)`, times ReLU' of the layer below
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

/// Twin of `tanh/forward.wgsl`: `tanh(x)`, elementwise.
pub fn tanh_forward(x: &[f32]) -> Vec<f32> {
    x.iter().map(|v| v.tanh()).collect()
}

/// Twin of `tanh/backward.wgsl`: `dy · (1 − y²)` from the forward pass's output `y`.
pub fn tanh_backward(y: &[f32], dy: &[f32]) -> Vec<f32> {
    y.iter().zip(dy).map(|(&y, &g)| g * (1.0 - y * y)).collect()
}

/// One BatchNormalization layer's tensors, borrowed from the flat parameter buffer.
pub struct BatchNormTensors<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub moving_mean: &'a [f32],
    pub moving_variance: &'a [f32],
}

/// What `batch_norm/forward.wgsl` produces in training mode besides `y`.
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

/// Twin of `batch_norm/forward.wgsl`. Training: normalise with the batch's statistics and
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
        // Row by row, in f64: an image's channels have rows × positions rows (67,600 for the
        // CNN's first conv), more than an f32 running sum keeps to the kernels' precision (they
        // sum in chunks).
        let batch = &x[..rows * width];
        let mut sums = vec![0.0f64; width];
        for row in batch.chunks_exact(width) {
            sums.iter_mut().zip(row).for_each(|(m, &v)| *m += f64::from(v));
        }
        mean.iter_mut().zip(&sums).for_each(|(m, s)| *m = (s / rows as f64) as f32);
        let mut squares = vec![0.0f64; width];
        for row in batch.chunks_exact(width) {
            squares.iter_mut().zip(row).zip(&mean).for_each(|((q, v), m)| *q += f64::from((v - m) * (v - m)));
        }
        for j in 0..width {
            let (m, var) = (mean[j], (squares[j] / rows as f64) as f32);
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

/// Twin of `batch_norm/backward.wgsl` (training mode): with x̂ = (x − μ)·s,
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
    let (mean, inv_std) = (&stats.mean, &stats.inv_std);
    let xhat = |i: usize| (x[i] - mean[i % width]) * inv_std[i % width];
    // Row by row, in f64 (see `batch_norm_forward`).
    let mut sum_dy_xhat = vec![0.0f64; width];
    let mut sum_dy = vec![0.0f64; width];
    for (i, &d) in dy[..rows * width].iter().enumerate() {
        let j = i % width;
        sum_dy[j] += f64::from(d);
        sum_dy_xhat[j] += f64::from(d * xhat(i));
    }
    let dgamma: Vec<f32> = sum_dy_xhat.iter().map(|&v| v as f32).collect();
    let dbeta: Vec<f32> = sum_dy.iter().map(|&v| v as f32).collect();
    let n = rows as f32;
    let dx = (0..rows * width)
        .map(|i| {
            let j = i % width;
            let open = below.is_none_or(|a| a[i] > 0.0);
            let g = gamma[j] * inv_std[j] / n * (n * dy[i] - dbeta[j] - xhat(i) * dgamma[j]);
            if open {
                g
            } else {
                0.0
            }
        })
        .collect();
    (dx, dgamma, dbeta)
}

/// Twin of `batch_norm/backward_eval.wgsl` (evaluation mode: the moving statistics are
/// constants, so BatchNorm is a per-feature affine map): `dx = dy · γ/√(moving_variance + ε)`,
/// times ReLU' of the layer below when given.
pub fn batch_norm_backward_eval(dy: &[f32], gamma: &[f32], moving_variance: &[f32], below: Option<&[f32]>) -> Vec<f32> {
    let width = gamma.len();
    dy.iter()
        .enumerate()
        .map(|(i, &d)| {
            let j = i % width;
            let open = below.is_none_or(|a| a[i] > 0.0);
            let scale = gamma[j] / (moving_variance[j] + BATCH_NORM_EPSILON).sqrt();
            if open {
                d * scale
            } else {
                0.0
            }
        })
        .collect()
}

/// Twin of `saliency/seed.wgsl`: per row of softmax probabilities `p`, with `c` its most
/// probable class (the first of equals), the gradient of `p_c` at the logits:
/// `∂p_c/∂z_j = p_c·(δ_cj − p_j)`.
pub fn saliency_seed(probs: &[f32], classes: usize) -> Vec<f32> {
    probs
        .chunks(classes)
        .flat_map(|row| {
            let c = argmax(row);
            let pc = row[c];
            row.iter().enumerate().map(move |(j, &pj)| pc * (f32::from(u8::from(j == c)) - pj))
        })
        .collect()
}

/// The index of the largest value (the first of equals; 0 for an empty slice).
pub fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

/// Twin of `l2/regularizer.wgsl`: adds `2λW` to the gradient of every Dense kernel and returns
/// the penalty `λ·ΣW²`.
pub fn l2_regularizer(params: &[f32], grads: &mut [f32], layout: &ParamLayout, l2: f32) -> f32 {
    for dense in &layout.dense {
        let range = dense.kernel_offset..dense.kernel_offset + dense.kernel_len();
        for (g, &w) in grads[range.clone()].iter_mut().zip(&params[range]) {
            *g += 2.0 * l2 * w;
        }
    }
    l2_penalty(params, layout, l2)
}

/// The penalty alone, λ·ΣW² over every Dense kernel (the sum in [`l2_regularizer`]'s order).
pub fn l2_penalty(params: &[f32], layout: &ParamLayout, l2: f32) -> f32 {
    let mut penalty = 0.0f32;
    for dense in &layout.dense {
        for &w in &params[dense.kernel_offset..dense.kernel_offset + dense.kernel_len()] {
            penalty += w * w;
        }
    }
    l2 * penalty
}

/// `x`, or 0 when it is subnormal: what Adam writes for its moments (flush to zero, as
/// TensorFlow's CPU kernels do).
pub fn flush_subnormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// Below this magnitude (2⁻⁵⁰ ≈ 8.9e-16) Adam writes a parameter as 0. L2 shrinks the weights of
/// silent units geometrically; long before they are subnormal themselves, what is computed from
/// them is: their squares in the penalty (below 2⁻⁶³), their products with the backward pass's
/// gradients, and the square of their L2 gradient in Adam's second moment ((1−β2)·(2λw)² with
/// λ = 0.002 is subnormal below 2⁻⁵⁰). CPU implementations of a GPU (lavapipe) compute those many
/// times slower. Such a weight adds less than 2⁻⁵⁰·|x| to a sum that carries 24 bits, so zeroing it
/// changes no result a test or a figure can see.
pub const NEGLIGIBLE_PARAMETER: f32 = 8.881784e-16;

/// `x`, or 0 when its magnitude is below [`NEGLIGIBLE_PARAMETER`]: what Adam writes for a parameter.
pub fn flush_negligible(x: f32) -> f32 {
    if x.abs() < NEGLIGIBLE_PARAMETER {
        0.0
    } else {
        x
    }
}

/// Twin of `adam/adam.wgsl`: one Adam step over flat buffers, Keras's formulation, with the
/// learning rate `learning_rate` (the schedule's value for this step); a parameter below
/// [`NEGLIGIBLE_PARAMETER`] and a subnormal moment are written as 0.
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
        let m_new = config.beta1 * m[i] + (1.0 - config.beta1) * g;
        let v_new = config.beta2 * v[i] + (1.0 - config.beta2) * g * g;
        params[i] = flush_negligible(params[i] - lr_t * m_new / (v_new.sqrt() + config.epsilon));
        m[i] = flush_subnormal(m_new);
        v[i] = flush_subnormal(v_new);
    }
}
