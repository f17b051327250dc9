//! Dropout (`dropout/*.wgsl`): the exact mask of the twin, forward and backward, and the backward
//! pass against finite differences.

use crate::common::{assert_close, assert_matches_finite_differences, gpu, values, widen};
use crate::single_kernel;
use fashion_core::reference::{self};

/// (rows, width): batch 1, widths that are not multiples of a workgroup, a full batch.
const SHAPES: &[(usize, usize)] = &[(37, 53), (1, 5), (3, 300), (100, 256), (64, 10)];

/// The GPU must drop exactly the elements the reference drops.
fn assert_same_mask(what: &str, gpu: &[f32], reference: &[f32]) {
    let dropped = |v: &[f32]| v.iter().map(|&x| x == 0.0).collect::<Vec<_>>();
    assert_eq!(dropped(gpu), dropped(reference), "{what}: dropped elements");
}

#[test]
fn dropout_forward_matches_reference() {
    let ctx = gpu();
    for (i, &(rows, width)) in SHAPES.iter().enumerate() {
        let x = values(rows * width, 300 + i as u64);
        for (rate, training) in [(0.3, true), (0.5, true), (0.0, true), (0.3, false)] {
            let seed = 0xabc0 + i as u32;
            let gpu_y =
                pollster::block_on(single_kernel::dropout_forward(&ctx, &x, rows, rate, seed, 2, training)).unwrap();
            let cpu_y = reference::dropout_forward(&x, rate, seed, 2, training);
            let what = format!("dropout_forward {rows}x{width} rate {rate} training {training}");
            assert_same_mask(&what, &gpu_y, &cpu_y);
            assert_close(&what, &gpu_y, &cpu_y, 1e-6);
        }
    }
}

#[test]
fn dropout_backward_matches_reference_and_finite_differences() {
    let ctx = gpu();
    for (i, &(rows, width)) in SHAPES.iter().enumerate() {
        let dy = values(rows * width, 400 + i as u64);
        let below = values(rows * width, 410 + i as u64);
        for mask in [None, Some(below.as_slice())] {
            let gpu_dx =
                pollster::block_on(single_kernel::dropout_backward(&ctx, &dy, rows, mask, 0.3, 77, 1)).unwrap();
            let cpu_dx = reference::dropout_backward(&dy, mask, 0.3, 77, 1);
            let what = format!("dropout_backward {rows}x{width} masked {}", mask.is_some());
            assert_same_mask(&what, &gpu_dx, &cpu_dx);
            assert_close(&what, &gpu_dx, &cpu_dx, 1e-6);
        }
    }
    // L = Σ g ⊙ dropout(x) with the step's mask: dL/dx must be the GPU's dx.
    let (rows, width) = (3, 11);
    let (x, g) = (values(rows * width, 420), values(rows * width, 421));
    let gpu_dx = pollster::block_on(single_kernel::dropout_backward(&ctx, &g, rows, None, 0.4, 5, 0)).unwrap();
    let g64 = widen(&g);
    let loss = |x: &[f64]| -> f64 {
        x.iter()
            .enumerate()
            .map(|(i, v)| if reference::dropout_keeps(5, 0, i as u32, 0.4) { v / 0.6 * g64[i] } else { 0.0 })
            .sum()
    };
    assert_matches_finite_differences("dropout dx", &gpu_dx, &widen(&x), 1e-6, loss);
}
