//! Shared by the GPU test binaries: one device per process, and seeded test data.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use fashion_core::GpuContext;
use fashion_data::{Dataset, SplitMix64, PIXELS_PER_IMAGE};

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

/// The values in f64, for finite differences.
pub fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Central difference of `f` with respect to element `i` of `at`.
pub fn central_difference(at: &[f64], i: usize, f: impl Fn(&[f64]) -> f64) -> f64 {
    let h = 1e-4;
    let mut plus = at.to_vec();
    plus[i] += h;
    let mut minus = at.to_vec();
    minus[i] -= h;
    (f(&plus) - f(&minus)) / (2.0 * h)
}

/// Asserts that every element of the GPU's gradient `gpu` matches the central difference of `f`
/// around `at`, within `tolerance`.
pub fn assert_matches_finite_differences(
    name: &str,
    gpu: &[f32],
    at: &[f64],
    tolerance: f64,
    f: impl Fn(&[f64]) -> f64,
) {
    assert_eq!(gpu.len(), at.len(), "{name}: gradient length");
    for (i, &g) in gpu.iter().enumerate() {
        let fd = central_difference(at, i, &f);
        assert!((fd - f64::from(g)).abs() < tolerance, "{name}[{i}]: finite difference {fd} vs GPU {g}");
    }
}

/// Class `c` lights up band `c` of the image, plus noise everywhere.
pub fn banded_dataset(count: usize, seed: u64) -> Dataset {
    let mut rng = SplitMix64::new(seed);
    let mut images = Vec::with_capacity(count * PIXELS_PER_IMAGE);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let label = (i * 7 % 10) as u8;
        for p in 0..PIXELS_PER_IMAGE {
            let band = p * 10 / PIXELS_PER_IMAGE == usize::from(label);
            let noise = (rng.next_u32() % 96) as u8;
            images.push(if band { 150 + noise } else { noise });
        }
        labels.push(label);
    }
    Dataset::new(images, labels).unwrap()
}
