//! Softmax + cross-entropy (`softmax/*.wgsl`), the one-invocation kernel and the GPU set's per-row
//! kernel with its tally, against the twin; its gradient against finite differences.

use crate::common::{assert_close, assert_matches_finite_differences, gpu, values, widen};
use crate::single_kernel::{self};
use fashion_core::gpu::kernel::KernelVariant;
use fashion_core::reference;

#[test]
fn softmax_cross_entropy_matches_reference() {
    let ctx = gpu();
    // 2,500 rows: three dispatches of at most 1,000 (one invocation looping over all of them
    // would stop early on lavapipe).
    // The per-row kernel and its tally: rows past one 256-thread tally workgroup too.
    let cases = [(1, 10), (37, 10), (300, 10), (5, 7), (2500, 10)];
    for (variant, (rows, classes)) in
        [KernelVariant::Scalar, KernelVariant::Gpu].into_iter().flat_map(|v| cases.map(|c| (v, c)))
    {
        let logits: Vec<f32> = values(rows * classes, rows as u64).iter().map(|v| v * 8.0).collect();
        let labels: Vec<u32> = (0..rows as u32).map(|r| (r * 7 + 3) % classes as u32).collect();
        let gpu_ce =
            pollster::block_on(single_kernel::softmax_cross_entropy_with(&ctx, variant, &logits, &labels, classes))
                .unwrap();
        let cpu_ce = reference::softmax_cross_entropy(&logits, &labels, classes);
        let what = format!("softmax_cross_entropy {} {rows}x{classes}", variant.as_str());
        assert_close(&format!("{what} probs"), &gpu_ce.probs, &cpu_ce.probs, 1e-5);
        assert_close(&format!("{what} dlogits"), &gpu_ce.dlogits, &cpu_ce.dlogits, 1e-5);
        assert_eq!(gpu_ce.correct, cpu_ce.correct, "{what} hits");
        assert!(
            (gpu_ce.loss_sum - cpu_ce.loss_sum).abs() <= 1e-4 * cpu_ce.loss_sum.max(1.0),
            "{what} loss {} vs {}",
            gpu_ce.loss_sum,
            cpu_ce.loss_sum
        );
    }
}

/// The GPU's dlogits must be the finite differences of the batch-mean cross-entropy.
#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    let ctx = gpu();
    let (rows, classes) = (4, 10);
    let logits: Vec<f32> = values(rows * classes, 91).iter().map(|v| v * 3.0).collect();
    let labels = [0, 9, 4, 4];
    for variant in [KernelVariant::Scalar, KernelVariant::Gpu] {
        let gpu_ce =
            pollster::block_on(single_kernel::softmax_cross_entropy_with(&ctx, variant, &logits, &labels, classes))
                .unwrap();
        let mean_loss = |z: &[f64]| -> f64 {
            (0..rows)
                .map(|r| {
                    let row = &z[r * classes..(r + 1) * classes];
                    row.iter().map(|v| v.exp()).sum::<f64>().ln() - row[labels[r] as usize]
                })
                .sum::<f64>()
                / rows as f64
        };
        let z64 = widen(&logits);
        assert!((mean_loss(&z64) - gpu_ce.loss_sum / rows as f64).abs() < 1e-5);
        assert_matches_finite_differences(
            &format!("dlogits {}", variant.as_str()),
            &gpu_ce.dlogits,
            &z64,
            1e-4,
            mean_loss,
        );
    }
}
