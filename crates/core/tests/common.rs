//! Shared by the GPU test binaries: one device per process, and seeded test data.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use fashion_core::GpuContext;

/// The process-wide GPU (lavapipe in CI). Fails loudly when there is none: CI installs
/// `mesa-vulkan-drivers`, so a missing adapter is a broken setup, not a reason to skip.
pub fn gpu() -> Arc<GpuContext> {
    static CONTEXT: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| match pollster::block_on(GpuContext::new()) {
            Ok(ctx) => {
                eprintln!("GPU tests run on {}", ctx.adapter);
                Arc::new(ctx)
            }
            Err(e) => panic!("{e}"),
        })
        .clone()
}

/// Uniform values in [-1, 1), reproducible.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = fashion_data::SplitMix64::new(seed);
    (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
}

/// Asserts `actual ≈ expected` element-wise within `tolerance · max(1, |expected|)`.
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let bound = tolerance * e.abs().max(1.0);
        assert!((a - e).abs() <= bound, "{what}[{i}]: GPU {a} vs reference {e}");
    }
}
