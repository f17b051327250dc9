//! Adam in one pass over the parameters, their gradients and both moments, as slices zipped
//! together so the compiler vectorises it (the reference indexes four buffers, and the bounds
//! checks keep it scalar). The same operations in the same order as
//! [`crate::reference::adam_update`], so the same bits.

use crate::optimizer::AdamConfig;
use crate::reference::{flush_negligible, flush_subnormal};

pub fn adam_update(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    config: &AdamConfig,
    learning_rate: f32,
    step: u64,
) {
    assert!(grads.len() == params.len() && m.len() == params.len() && v.len() == params.len());
    let lr_t = config.corrected_learning_rate(learning_rate, step);
    let (beta1, beta2, epsilon) = (config.beta1, config.beta2, config.epsilon);
    let update = |params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]| {
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
            let m_new = beta1 * *m + (1.0 - beta1) * g;
            let v_new = beta2 * *v + (1.0 - beta2) * g * g;
            *p = flush_negligible(*p - lr_t * m_new / (v_new.sqrt() + epsilon));
            *m = flush_subnormal(m_new);
            *v = flush_subnormal(v_new);
        }
    };
    // A part per thread kept awake for the step, each element's update the same wherever it runs.
    #[cfg(cpu_threads)]
    if let parts @ 2.. = (super::awake::awake() + 1).min(params.len() / SPLIT_PARAMS_AT_LEAST) {
        let len = params.len().div_ceil(parts);
        let mut pieces: Vec<_> =
            params.chunks_mut(len).zip(grads.chunks(len)).zip(m.chunks_mut(len)).zip(v.chunks_mut(len)).collect();
        super::awake::for_each_chunk_mut(&mut pieces, 1, |_, piece| {
            for (((params, grads), m), v) in piece.iter_mut() {
                update(params, grads, m, v);
            }
        });
        return;
    }
    update(params, grads, m, v);
}

/// The fewest parameters each thread kept awake for a step ([`super::awake`]) updates.
#[cfg(cpu_threads)]
const SPLIT_PARAMS_AT_LEAST: usize = 1 << 14;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::tests::pseudo;
    use crate::reference;

    /// Bit for bit the reference, subnormal flushes included, over an odd length.
    #[test]
    fn adam_matches_the_reference_to_the_bit() {
        let n = 1001;
        let mut params = pseudo(n, 1);
        params[7] = f32::MIN_POSITIVE * 1.5; // flushed once the step moves it below the normal range
        let grads: Vec<f32> = pseudo(n, 2).iter().map(|g| g * 1e-3).collect();
        let (mut m, mut v) = (pseudo(n, 3), pseudo(n, 4).iter().map(|x| x.abs()).collect::<Vec<_>>());
        let (mut params2, mut m2, mut v2) = (params.clone(), m.clone(), v.clone());
        let config = AdamConfig::default();
        for step in 1..=3 {
            adam_update(&mut params, &grads, &mut m, &mut v, &config, 1e-3, step);
            reference::adam_update(&mut params2, &grads, &mut m2, &mut v2, &config, 1e-3, step);
        }
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&params), bits(&params2));
        assert_eq!((bits(&m), bits(&v)), (bits(&m2), bits(&v2)));
    }
}
