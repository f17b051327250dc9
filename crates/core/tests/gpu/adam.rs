//! Adam (`adam/*.wgsl`) in every variant against its twin over several steps, and its flush of
//! subnormal results.

use crate::common::{assert_close, gpu, values};
use crate::single_kernel::{self, AdamState};
use fashion_core::gpu::kernel::KernelVariant;
use fashion_core::reference;
use fashion_core::AdamConfig;

#[test]
fn adam_matches_reference_over_several_steps() {
    let ctx = gpu();
    let config = AdamConfig { learning_rate: 0.01, ..AdamConfig::default() };
    // Counts that are and are not multiples of 4; 3 more values after them (like BatchNorm's
    // moving statistics after the trainable parameters) that Adam must leave alone.
    for (variant, count) in KernelVariant::ALL.into_iter().flat_map(|v| [(v, 1001), (v, 1000), (v, 2)]) {
        let len = count + 3;
        let mut gpu_state = AdamState { params: values(len, 1), m: vec![0.0; len], v: vec![0.0; len] };
        let mut cpu_state = gpu_state.clone();
        for step in 1..=3u64 {
            let grads = values(count, 10 + step);
            gpu_state =
                pollster::block_on(single_kernel::adam_update_with(&ctx, variant, &gpu_state, &grads, &config, step))
                    .unwrap();
            reference::adam_update(
                &mut cpu_state.params[..count],
                &grads,
                &mut cpu_state.m[..count],
                &mut cpu_state.v[..count],
                &config,
                config.learning_rate,
                step,
            );
        }
        let what = format!("adam {} count {count}", variant.as_str());
        assert_close(&format!("{what} params"), &gpu_state.params, &cpu_state.params, 1e-5);
        assert_close(&format!("{what} m"), &gpu_state.m, &cpu_state.m, 1e-6);
        assert_close(&format!("{what} v"), &gpu_state.v, &cpu_state.v, 1e-6);
    }
}

/// A weight that Adam's step leaves below 2⁻⁵⁰ (subnormal or not) comes out 0 in every variant and
/// in the twin (lavapipe and other CPU implementations compute on subnormals many times slower,
/// and what is computed from such a weight is subnormal), and so do subnormal moments; other
/// values are untouched.
#[test]
fn adam_flushes_subnormal_results_to_zero() {
    let ctx = gpu();
    let config = AdamConfig::default();
    let subnormal = f32::MIN_POSITIVE / 8.0;
    assert!(subnormal > 0.0 && !subnormal.is_normal());
    // No gradient and no moments: the step moves nothing, so only the flush can zero a weight.
    let negligible = reference::NEGLIGIBLE_PARAMETER;
    assert_eq!(negligible, 2f32.powi(-50));
    let just_below = f32::from_bits(negligible.to_bits() - 1);
    let params =
        vec![subnormal, -subnormal, 0.5, -f32::MIN_POSITIVE, 1e-30, 0.0, subnormal, 2.0, -just_below, negligible];
    let count = params.len();
    let grads = vec![0.0; count];
    let weights = AdamState { params, m: vec![0.0; count], v: vec![0.0; count] };
    let expected = vec![0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, negligible];
    // Subnormal moments (and no gradient): they decay further, and come out 0.
    let moments = AdamState { params: vec![1.0; count], m: vec![subnormal; count], v: vec![subnormal; count] };
    let twin = |state: &AdamState| {
        let mut state = state.clone();
        reference::adam_update(&mut state.params, &grads, &mut state.m, &mut state.v, &config, config.learning_rate, 1);
        state
    };
    let zeros = vec![0.0; count];
    assert_eq!(twin(&weights).params, expected, "twin: weights");
    assert_eq!((twin(&moments).m, twin(&moments).v), (zeros.clone(), zeros.clone()), "twin: moments");
    for variant in KernelVariant::ALL {
        let run = |state: &AdamState| {
            pollster::block_on(single_kernel::adam_update_with(&ctx, variant, state, &grads, &config, 1)).unwrap()
        };
        let what = variant.as_str();
        assert_eq!(run(&weights).params, expected, "{what}: weights");
        let after = run(&moments);
        assert_eq!((after.m, after.v), (zeros.clone(), zeros.clone()), "{what}: moments");
        assert_eq!(after.params, vec![1.0; count], "{what}: normal weights untouched");
    }
}
