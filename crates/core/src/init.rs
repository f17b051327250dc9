//! Weight initialisation as Keras does it: Glorot-uniform kernels, zero biases; BatchNorm
//! γ = 1, β = 0, moving mean 0, moving variance 1.

use fashion_data::SplitMix64;

use crate::model::ModelSpec;

/// A flat parameter vector laid out by [`ModelSpec::param_layout`], seeded and reproducible.
pub fn glorot_uniform_params(spec: &ModelSpec, seed: u64) -> Vec<f32> {
    let layout = spec.param_layout();
    let mut params = vec![0.0f32; layout.total];
    let mut rng = SplitMix64::new(seed ^ 0x6c6f_7261_6e64_6f6d);
    for dense in &layout.dense {
        let limit = (6.0 / (dense.inputs + dense.units) as f32).sqrt();
        for w in &mut params[dense.kernel_offset..dense.kernel_offset + dense.kernel_len()] {
            *w = (rng.next_f32() * 2.0 - 1.0) * limit;
        }
    }
    for conv in &layout.conv {
        // Keras's fan-in and fan-out of a k×k kernel: k·k·channels and k·k·filters.
        let taps = conv.kernel_size * conv.kernel_size;
        let limit = (6.0 / (taps * (conv.channels + conv.filters)) as f32).sqrt();
        for w in &mut params[conv.kernel_offset..conv.kernel_offset + conv.kernel_len()] {
            *w = (rng.next_f32() * 2.0 - 1.0) * limit;
        }
    }
    for bn in &layout.batch_norm {
        params[bn.gamma_offset..bn.gamma_offset + bn.width].fill(1.0);
        params[bn.moving_variance_offset..bn.moving_variance_offset + bn.width].fill(1.0);
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_bounds_and_zero_biases() {
        let spec = ModelSpec::preset("baseline").unwrap();
        let params = glorot_uniform_params(&spec, 1);
        let layout = spec.param_layout();
        let first = layout.dense[0];
        let limit = (6.0f32 / (784.0 + 256.0)).sqrt();
        let kernel = &params[first.kernel_offset..first.kernel_offset + first.kernel_len()];
        assert!(kernel.iter().all(|w| w.abs() <= limit));
        let mean = kernel.iter().sum::<f32>() / kernel.len() as f32;
        assert!(mean.abs() < 0.01 * limit);
        assert!(params[first.bias_offset..first.bias_offset + 256].iter().all(|&b| b == 0.0));
        assert_eq!(params, glorot_uniform_params(&spec, 1));
        assert_ne!(params, glorot_uniform_params(&spec, 2));
    }
}
