//! Plain-Rust twins of every WGSL kernel, written for clarity rather than speed. The GPU tests
//! compare each kernel against these, and these against finite differences.

use crate::model::{Activation, DenseSlot, ModelSpec, ParamLayout};
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

/// Twin of `adam.wgsl`: one Adam step over flat buffers, Keras's formulation.
pub fn adam_update(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], config: &AdamConfig, step: u64) {
    let lr_t = config.corrected_learning_rate(config.learning_rate, step);
    for i in 0..params.len() {
        let g = grads[i];
        m[i] = config.beta1 * m[i] + (1.0 - config.beta1) * g;
        v[i] = config.beta2 * v[i] + (1.0 - config.beta2) * g * g;
        params[i] -= lr_t * m[i] / (v[i].sqrt() + config.epsilon);
    }
}

/// A whole MLP trained on the CPU with the twins above: the reference the GPU trainer is
/// checked against, and the slow path where there is no GPU.
#[derive(Debug, Clone)]
pub struct CpuMlp {
    pub layout: ParamLayout,
    pub params: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    step: u64,
    adam: AdamConfig,
}

/// Loss and hits of one batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchOutcome {
    pub loss_sum: f64,
    pub correct: u32,
}

impl CpuMlp {
    pub fn new(spec: &ModelSpec, params: Vec<f32>, adam: AdamConfig) -> Self {
        let layout = spec.param_layout();
        assert_eq!(params.len(), layout.total, "parameter count must match the model");
        let zeros = vec![0.0; layout.total];
        CpuMlp { layout, params, m: zeros.clone(), v: zeros, step: 0, adam }
    }

    fn slot_tensors<'a>(&self, params: &'a [f32], slot: &DenseSlot) -> (&'a [f32], &'a [f32]) {
        (
            &params[slot.kernel_offset..slot.kernel_offset + slot.kernel_len()],
            &params[slot.bias_offset..slot.bias_offset + slot.units],
        )
    }

    /// Outputs of every layer, the input first; the last is the logits.
    fn forward_all(&self, x: &[f32], rows: usize) -> Vec<Vec<f32>> {
        let mut outputs = vec![x.to_vec()];
        for slot in &self.layout.dense {
            let (kernel, bias) = self.slot_tensors(&self.params, slot);
            let input = outputs.last().map(Vec::as_slice).unwrap_or_default();
            let relu = slot.activation == Activation::Relu;
            outputs.push(dense_forward(input, rows, kernel, bias, slot.inputs, relu));
        }
        outputs
    }

    /// Softmax probabilities, `[rows, classes]`.
    pub fn predict(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let outputs = self.forward_all(x, rows);
        let logits = outputs.last().map(Vec::as_slice).unwrap_or_default();
        let classes = logits.len() / rows.max(1);
        softmax_cross_entropy(logits, &vec![0; rows], classes).probs
    }

    /// Loss and hits of a batch without training.
    pub fn evaluate(&self, x: &[f32], labels: &[u32]) -> BatchOutcome {
        let outputs = self.forward_all(x, labels.len());
        let logits = outputs.last().map(Vec::as_slice).unwrap_or_default();
        let ce = softmax_cross_entropy(logits, labels, logits.len() / labels.len().max(1));
        BatchOutcome { loss_sum: ce.loss_sum, correct: ce.correct }
    }

    /// Gradient of the batch-mean loss with respect to every parameter (flat layout).
    pub fn gradients(&self, x: &[f32], labels: &[u32]) -> (Vec<f32>, BatchOutcome) {
        let rows = labels.len();
        let outputs = self.forward_all(x, rows);
        let logits = &outputs[outputs.len() - 1];
        let ce = softmax_cross_entropy(logits, labels, logits.len() / rows);
        let mut grads = vec![0.0; self.layout.total];
        let mut dz = ce.dlogits.clone();
        for (i, slot) in self.layout.dense.iter().enumerate().rev() {
            let (dkernel, dbias) = dense_backward_weights(&outputs[i], &dz, rows, slot.inputs, slot.units);
            grads[slot.kernel_offset..slot.kernel_offset + slot.kernel_len()].copy_from_slice(&dkernel);
            grads[slot.bias_offset..slot.bias_offset + slot.units].copy_from_slice(&dbias);
            if i > 0 {
                let (kernel, _) = self.slot_tensors(&self.params, slot);
                let below = (self.layout.dense[i - 1].activation == Activation::Relu).then_some(outputs[i].as_slice());
                dz = dense_backward_input(&dz, rows, kernel, slot.inputs, slot.units, below);
            }
        }
        (grads, BatchOutcome { loss_sum: ce.loss_sum, correct: ce.correct })
    }

    /// One Adam step on a batch.
    pub fn train_step(&mut self, x: &[f32], labels: &[u32]) -> BatchOutcome {
        let (grads, outcome) = self.gradients(x, labels);
        self.step += 1;
        adam_update(&mut self.params, &grads, &mut self.m, &mut self.v, &self.adam, self.step);
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

    /// Mean loss of a model on a batch, in f64 for finite differences.
    fn mean_loss(mlp: &CpuMlp, x: &[f32], labels: &[u32]) -> f64 {
        mlp.evaluate(x, labels).loss_sum / labels.len() as f64
    }

    #[test]
    fn mlp_gradients_match_finite_differences() {
        use crate::model::{Layer, ModelSpec};
        let layers = vec![
            Layer::Dense { units: 7, activation: Activation::Relu },
            Layer::Dense { units: 10, activation: Activation::Softmax },
        ];
        let spec = ModelSpec::new("tiny", 5, layers).unwrap();
        let params = glorot_uniform_params(&spec, 3);
        let mlp = CpuMlp::new(&spec, params, AdamConfig::default());
        let rows = 3;
        let x = pseudo(rows * 5, 11);
        let labels = vec![1, 4, 9];
        let (grads, _) = mlp.gradients(&x, &labels);
        let h = 1e-2f32;
        for i in (0..mlp.params.len()).step_by(3) {
            let mut plus = mlp.clone();
            plus.params[i] += h;
            let mut minus = mlp.clone();
            minus.params[i] -= h;
            let fd = (mean_loss(&plus, &x, &labels) - mean_loss(&minus, &x, &labels)) / (2.0 * f64::from(h));
            assert!((fd - f64::from(grads[i])).abs() < 2e-3, "param {i}: fd {fd} vs analytic {}", grads[i]);
        }
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
        adam_update(&mut p, &[0.5, -2.0], &mut m, &mut v, &config, 1);
        assert!((p[0] - (1.0 - 1e-3)).abs() < 1e-6, "{}", p[0]);
        assert!((p[1] - (-1.0 + 1e-3)).abs() < 1e-6, "{}", p[1]);
    }
}
