//! BatchNorm (`batch_norm/*.wgsl`), in training and evaluation, as one kernel and split (the GPU
//! set's, and over an image's channels in any set), against its twins: the statistics, moving
//! statistics as Keras, and the backward pass against finite differences.

use crate::common::{assert_close, assert_matches_finite_differences, gpu, values, widen};
use crate::single_kernel;
use fashion_core::gpu::kernel::KernelVariant;
use fashion_core::model::{BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM};
use fashion_core::reference::{self, BatchNormStatistics, BatchNormTensors};

/// (rows, width): batch 1, widths that are not multiples of a workgroup, a full batch.
const SHAPES: &[(usize, usize)] = &[(37, 53), (1, 5), (3, 300), (100, 256), (64, 10)];

/// Odd γ, β and moving statistics of `width` features.
fn batch_norm_tensors(width: usize, seed: u64) -> [Vec<f32>; 4] {
    let gamma = values(width, seed).iter().map(|v| 1.0 + 0.5 * v).collect();
    let beta = values(width, seed + 1);
    let moving_mean = values(width, seed + 2);
    let moving_variance = values(width, seed + 3).iter().map(|v| 1.0 + 0.5 * v).collect();
    [gamma, beta, moving_mean, moving_variance]
}

fn borrow(t: &[Vec<f32>; 4]) -> BatchNormTensors<'_> {
    BatchNormTensors { gamma: &t[0], beta: &t[1], moving_mean: &t[2], moving_variance: &t[3] }
}

#[test]
fn batch_norm_forward_matches_reference_in_training_and_evaluation() {
    let ctx = gpu();
    // The emulator set's thread per feature, and the GPU set's chunks of rows (16 a chunk:
    // 1,000 rows are 63 chunks, the last short) merged, then the elementwise output.
    let shapes = SHAPES.iter().chain(&[(1000, 10)]).enumerate();
    for (variant, (i, &(rows, width))) in
        [KernelVariant::Scalar, KernelVariant::Gpu].into_iter().flat_map(|v| shapes.clone().map(move |s| (v, s)))
    {
        let x: Vec<f32> = values(rows * width, 500 + i as u64).iter().map(|v| 3.0 * v + 1.0).collect();
        let owned = batch_norm_tensors(width, 510 + i as u64);
        let tensors = borrow(&owned);
        for relu in [false, true] {
            let what = format!("batch_norm_forward {} {rows}x{width} relu {relu}", variant.as_str());
            let (gpu_y, gpu_stats) = pollster::block_on(single_kernel::batch_norm_forward_with(
                &ctx, variant, &x, rows, &tensors, true, relu,
            ))
            .unwrap();
            let (cpu_y, cpu_stats) = reference::batch_norm_forward(&x, rows, &tensors, true, relu);
            let cpu_stats = cpu_stats.unwrap();
            assert_close(&format!("{what} training y"), &gpu_y, &cpu_y, 1e-4);
            assert_close(&format!("{what} mean"), &gpu_stats.mean, &cpu_stats.mean, 1e-5);
            assert_close(&format!("{what} 1/std"), &gpu_stats.inv_std, &cpu_stats.inv_std, 1e-4);
            assert_close(&format!("{what} moving mean"), &gpu_stats.moving_mean, &cpu_stats.moving_mean, 1e-5);
            assert_close(&format!("{what} moving var"), &gpu_stats.moving_variance, &cpu_stats.moving_variance, 1e-5);

            let (gpu_eval, gpu_untouched) = pollster::block_on(single_kernel::batch_norm_forward_with(
                &ctx, variant, &x, rows, &tensors, false, relu,
            ))
            .unwrap();
            let (cpu_eval, _) = reference::batch_norm_forward(&x, rows, &tensors, false, relu);
            assert_close(&format!("{what} evaluation y"), &gpu_eval, &cpu_eval, 1e-4);
            assert_eq!(gpu_untouched.moving_mean, owned[2], "{what}: evaluation leaves the moving mean alone");
            if rows > 1 {
                assert_ne!(gpu_y, gpu_eval, "{what}: training and evaluation must differ");
            }
        }
    }
}

/// f64 training-mode batch norm: the ground truth for finite differences.
fn batch_norm_f64(x: &[f64], rows: usize, gamma: &[f64], beta: &[f64]) -> Vec<f64> {
    let width = gamma.len();
    let mut y = vec![0.0; x.len()];
    for j in 0..width {
        let mean = (0..rows).map(|r| x[r * width + j]).sum::<f64>() / rows as f64;
        let var = (0..rows).map(|r| (x[r * width + j] - mean).powi(2)).sum::<f64>() / rows as f64;
        let inv_std = 1.0 / (var + f64::from(BATCH_NORM_EPSILON)).sqrt();
        for r in 0..rows {
            y[r * width + j] = gamma[j] * (x[r * width + j] - mean) * inv_std + beta[j];
        }
    }
    y
}

#[test]
fn batch_norm_backward_matches_reference_and_finite_differences() {
    let ctx = gpu();
    let variants = [KernelVariant::Scalar, KernelVariant::Gpu];
    for (variant, (i, &(rows, width))) in
        variants.into_iter().flat_map(|v| SHAPES.iter().chain(&[(1000, 10)]).enumerate().map(move |s| (v, s)))
    {
        let x = values(rows * width, 600 + i as u64);
        let dy = values(rows * width, 610 + i as u64);
        let below = values(rows * width, 620 + i as u64);
        let owned = batch_norm_tensors(width, 630 + i as u64);
        let (_, stats) = reference::batch_norm_forward(&x, rows, &borrow(&owned), true, false);
        let stats = stats.unwrap();
        for mask in [None, Some(below.as_slice())] {
            let what = format!("batch_norm_backward {} {rows}x{width} masked {}", variant.as_str(), mask.is_some());
            let (gpu_dx, gpu_dgamma, gpu_dbeta) = pollster::block_on(single_kernel::batch_norm_backward_with(
                &ctx, variant, &x, &dy, rows, &owned[0], &stats, mask,
            ))
            .unwrap();
            let (cpu_dx, cpu_dgamma, cpu_dbeta) =
                reference::batch_norm_backward(&x, &dy, rows, &owned[0], &stats, mask);
            assert_close(&format!("{what} dx"), &gpu_dx, &cpu_dx, 1e-4);
            assert_close(&format!("{what} dgamma"), &gpu_dgamma, &cpu_dgamma, 1e-4);
            assert_close(&format!("{what} dbeta"), &gpu_dbeta, &cpu_dbeta, 1e-4);
        }
    }

    // L = Σ g ⊙ BN(x): the GPU's dx, dγ, dβ must be L's finite differences (with the GPU set:
    // 37 rows, three chunks of rows, the last short).
    for (variant, rows) in [(KernelVariant::Scalar, 5), (KernelVariant::Gpu, 37)] {
        let width = 3;
        let x = values(rows * width, 640);
        let g = values(rows * width, 641);
        let owned = batch_norm_tensors(width, 642);
        let (_, stats) = reference::batch_norm_forward(&x, rows, &borrow(&owned), true, false);
        let (dx, dgamma, dbeta) = pollster::block_on(single_kernel::batch_norm_backward_with(
            &ctx,
            variant,
            &x,
            &g,
            rows,
            &owned[0],
            &stats.unwrap(),
            None,
        ))
        .unwrap();
        let (x64, g64, gamma64, beta64) = (widen(&x), widen(&g), widen(&owned[0]), widen(&owned[1]));
        let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| -> f64 {
            batch_norm_f64(x, rows, gamma, beta).iter().zip(&g64).map(|(y, g)| y * g).sum()
        };
        assert_matches_finite_differences("bn dx", &dx, &x64, 1e-3, |x| loss(x, &gamma64, &beta64));
        assert_matches_finite_differences("bn dgamma", &dgamma, &gamma64, 1e-4, |gm| loss(&x64, gm, &beta64));
        assert_matches_finite_differences("bn dbeta", &dbeta, &beta64, 1e-4, |b| loss(&x64, &gamma64, b));
    }
}

/// BatchNorm after a conv layer normalises each channel over the batch and the image's
/// positions (Keras's `axis=-1` on NHWC): `rows` samples of `positions` rows of `channels` are
/// `rows · positions` rows to the reference. (rows, positions, channels): a conv output of the
/// CNN (100 × 26·26 rows: 256 chunks of 265), odd ones, one sample.
#[test]
fn batch_norm_over_image_channels_matches_reference_and_finite_differences() {
    let ctx = gpu();
    let cases = [
        (KernelVariant::Gpu, 100, 26 * 26, 32),
        (KernelVariant::Gpu, 3, 5 * 7, 12),
        (KernelVariant::Gpu, 1, 11 * 11, 4),
    ];
    let scalar = [(KernelVariant::Scalar, 3, 5 * 7, 12), (KernelVariant::Scalar, 2, 13 * 13, 8)];
    for (i, &(variant, rows, positions, channels)) in cases.iter().chain(&scalar).enumerate() {
        let n = rows * positions * channels;
        let x: Vec<f32> = values(n, 700 + i as u64).iter().map(|v| 2.0 * v + 0.5).collect();
        let dy = values(n, 710 + i as u64);
        let below = values(n, 720 + i as u64);
        let owned = batch_norm_tensors(channels, 730 + i as u64);
        let tensors = borrow(&owned);
        let what = format!("batch_norm {} {rows}x{positions}x{channels}", variant.as_str());
        for training in [true, false] {
            let (gpu_y, gpu_stats) = pollster::block_on(single_kernel::batch_norm_forward_with(
                &ctx, variant, &x, rows, &tensors, training, true,
            ))
            .unwrap();
            let (cpu_y, cpu_stats) = reference::batch_norm_forward(&x, rows * positions, &tensors, training, true);
            assert_close(&format!("{what} training {training} y"), &gpu_y, &cpu_y, 1e-4);
            if let Some(cpu_stats) = cpu_stats {
                assert_close(&format!("{what} mean"), &gpu_stats.mean, &cpu_stats.mean, 1e-5);
                assert_close(&format!("{what} 1/std"), &gpu_stats.inv_std, &cpu_stats.inv_std, 1e-4);
                assert_close(
                    &format!("{what} moving var"),
                    &gpu_stats.moving_variance,
                    &cpu_stats.moving_variance,
                    1e-5,
                );
            }
        }
        let (_, stats) = reference::batch_norm_forward(&x, rows * positions, &tensors, true, false);
        let stats = stats.unwrap();
        for mask in [None, Some(below.as_slice())] {
            let (gpu_dx, gpu_dgamma, gpu_dbeta) = pollster::block_on(single_kernel::batch_norm_backward_with(
                &ctx, variant, &x, &dy, rows, &owned[0], &stats, mask,
            ))
            .unwrap();
            let (cpu_dx, cpu_dgamma, cpu_dbeta) =
                reference::batch_norm_backward(&x, &dy, rows * positions, &owned[0], &stats, mask);
            let what = format!("{what} masked {}", mask.is_some());
            assert_close(&format!("{what} dx"), &gpu_dx, &cpu_dx, 1e-4);
            // Sums over up to 67,600 rows, in chunks on the GPU and in one run on the CPU.
            assert_close(&format!("{what} dgamma"), &gpu_dgamma, &cpu_dgamma, 1e-3);
            assert_close(&format!("{what} dbeta"), &gpu_dbeta, &cpu_dbeta, 1e-3);
        }
        let eval_dx =
            pollster::block_on(single_kernel::batch_norm_backward_eval(&ctx, &dy, rows, &tensors, Some(&below)))
                .unwrap();
        let cpu_eval_dx =
            reference::batch_norm_backward_eval(&dy, tensors.gamma, tensors.moving_variance, Some(&below));
        assert_close(&format!("{what} evaluation dx"), &eval_dx, &cpu_eval_dx, 1e-5);
    }

    // L = Σ g ⊙ BN(x) over 2 samples of 3×3 positions of 2 channels (GPU set: 18 rows, two
    // chunks): the GPU's dx, dγ, dβ are L's finite differences, with the statistics per channel.
    let (rows, positions, channels) = (2, 9, 2);
    let n = rows * positions * channels;
    let x = values(n, 740);
    let g = values(n, 741);
    let owned = batch_norm_tensors(channels, 742);
    let (_, stats) = reference::batch_norm_forward(&x, rows * positions, &borrow(&owned), true, false);
    let stats = stats.unwrap();
    assert_eq!(stats.mean.len(), channels, "one mean per channel");
    let (dx, dgamma, dbeta) = pollster::block_on(single_kernel::batch_norm_backward_with(
        &ctx,
        KernelVariant::Gpu,
        &x,
        &g,
        rows,
        &owned[0],
        &stats,
        None,
    ))
    .unwrap();
    let (x64, g64, gamma64, beta64) = (widen(&x), widen(&g), widen(&owned[0]), widen(&owned[1]));
    let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| -> f64 {
        batch_norm_f64(x, rows * positions, gamma, beta).iter().zip(&g64).map(|(y, g)| y * g).sum()
    };
    assert_matches_finite_differences("image bn dx", &dx, &x64, 1e-3, |x| loss(x, &gamma64, &beta64));
    assert_matches_finite_differences("image bn dgamma", &dgamma, &gamma64, 1e-4, |gm| loss(&x64, gm, &beta64));
    assert_matches_finite_differences("image bn dbeta", &dbeta, &beta64, 1e-4, |b| loss(&x64, &gamma64, b));
}

#[test]
fn batch_norm_moving_statistics_follow_keras() {
    // One training step from the Keras initial state (mean 0, variance 1) with momentum 0.99.
    let ctx = gpu();
    let x = [2.0, 4.0, 6.0];
    let owned = [vec![1.0], vec![0.0], vec![0.0], vec![1.0]];
    let (_, stats): (_, BatchNormStatistics) =
        pollster::block_on(single_kernel::batch_norm_forward(&ctx, &x, 3, &borrow(&owned), true, false)).unwrap();
    let (mean, variance) = (4.0, 8.0 / 3.0);
    let keep = BATCH_NORM_MOMENTUM;
    assert!((stats.moving_mean[0] - (1.0 - keep) * mean).abs() < 1e-6);
    assert!((stats.moving_variance[0] - (keep + (1.0 - keep) * variance)).abs() < 1e-6);
}
