//! The CPU twins themselves, on cases small enough to check by hand: dropout's mask and scale,
//! BatchNorm's two modes, softmax-CE of uniform logits, Adam's first step.

use fashion_core::reference::*;
use fashion_core::AdamConfig;

#[test]
fn dropout_keeps_about_one_minus_rate_and_scales() {
    let x = vec![1.0f32; 10_000];
    let y = dropout_forward(&x, 0.3, 99, 2, true);
    let kept = y.iter().filter(|&&v| v != 0.0).count();
    assert!((6_700..7_300).contains(&kept), "{kept}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    assert_ne!(y, dropout_forward(&x, 0.3, 99, 3, true), "each dropout op has its own mask");
    assert_ne!(y, dropout_forward(&x, 0.3, 100, 2, true), "each step has its own mask");
    assert_eq!(dropout_forward(&x, 0.3, 99, 2, false), x, "identity at evaluation");
}

#[test]
fn batch_norm_trains_with_batch_statistics_and_evaluates_with_moving_ones() {
    let (rows, width) = (4, 2);
    let x = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
    let tensors = BatchNormTensors {
        gamma: &[1.0, 2.0],
        beta: &[0.0, 1.0],
        moving_mean: &[0.0, 0.0],
        moving_variance: &[1.0, 1.0],
    };
    let (y, stats) = batch_norm_forward(&x, rows, &tensors, true, false);
    let stats = stats.unwrap();
    assert_eq!(stats.mean, vec![2.5, 25.0]);
    assert!((stats.inv_std[0] - 1.0 / (1.25f32 + 1e-3).sqrt()).abs() < 1e-6);
    assert!((stats.moving_mean[1] - 0.25).abs() < 1e-6);
    assert!((stats.moving_variance[1] - (0.99 + 0.01 * 125.0)).abs() < 1e-5);
    let column: f32 = (0..rows).map(|r| y[r * width]).sum();
    assert!(column.abs() < 1e-5, "normalised column sums to β·rows = 0");
    let (eval, none) = batch_norm_forward(&x, rows, &tensors, false, false);
    assert!(none.is_none());
    assert!((eval[1] - (2.0 * 10.0 / (1.0f32 + 1e-3).sqrt() + 1.0)).abs() < 1e-4, "{}", eval[1]);
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
    adam_update(&mut p, &[0.5, -2.0], &mut m, &mut v, &config, config.learning_rate, 1);
    assert!((p[0] - (1.0 - 1e-3)).abs() < 1e-6, "{}", p[0]);
    assert!((p[1] - (-1.0 + 1e-3)).abs() < 1e-6, "{}", p[1]);
}
