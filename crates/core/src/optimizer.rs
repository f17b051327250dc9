//! Adam, as Keras defines it. The per-step bias correction is folded into the learning rate on
//! the host, so `adam/adam.wgsl` applies `p -= lr_t · m / (√v + ε)`.

/// Adam hyper-parameters; the defaults are Keras's (`epsilon` 1e-7, not PyTorch's 1e-8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub learning_rate: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { learning_rate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }
    }
}

impl AdamConfig {
    /// `lr · √(1 − β2^t) / (1 − β1^t)` for the 1-based step `t`.
    pub fn corrected_learning_rate(&self, learning_rate: f32, step: u64) -> f32 {
        let t = step.min(i32::MAX as u64) as i32;
        let b1 = f64::from(self.beta1).powi(t);
        let b2 = f64::from(self.beta2).powi(t);
        (f64::from(learning_rate) * (1.0 - b2).sqrt() / (1.0 - b1)) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_correction_tends_to_one() {
        let adam = AdamConfig::default();
        assert!((adam.corrected_learning_rate(1e-3, 1) - 1e-3 * (0.001f32).sqrt() / 0.1).abs() < 1e-7);
        assert!((adam.corrected_learning_rate(1e-3, 1_000_000) - 1e-3).abs() < 1e-7);
    }
}
