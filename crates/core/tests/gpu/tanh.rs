//! Tanh (`tanh/*.wgsl`) against its twins on odd shapes, and its gradient against finite
//! differences.

use crate::common::{assert_close, assert_matches_finite_differences, gpu, values, widen};
use crate::single_kernel;
use fashion_core::reference;

/// (rows, width): batch 1, widths that are not multiples of a workgroup, a full batch.
const SHAPES: &[(usize, usize)] = &[(37, 53), (1, 5), (3, 300), (100, 256), (64, 10)];

#[test]
fn tanh_matches_reference() {
    let ctx = gpu();
    for (i, &(rows, width)) in SHAPES.iter().enumerate() {
        // Values up to ±12: past where e^(2x) would overflow a naive formula's f32, and 0 itself.
        let mut x: Vec<f32> = values(rows * width, 900 + i as u64).iter().map(|v| v * 12.0).collect();
        x[0] = 0.0;
        let gpu_y = pollster::block_on(single_kernel::tanh_forward(&ctx, &x, rows)).unwrap();
        assert_close(&format!("tanh y {rows}x{width}"), &gpu_y, &reference::tanh_forward(&x), 1e-6);

        let dy = values(rows * width, 950 + i as u64);
        let gpu_dx = pollster::block_on(single_kernel::tanh_backward(&ctx, &gpu_y, &dy, rows)).unwrap();
        assert_close(&format!("tanh dx {rows}x{width}"), &gpu_dx, &reference::tanh_backward(&gpu_y, &dy), 1e-6);
    }
}

/// L = Σ g ⊙ tanh(x): the GPU's dx (from the GPU's own y) must be L's finite differences.
#[test]
fn tanh_gradient_matches_finite_differences() {
    let ctx = gpu();
    let (rows, width) = (3, 7);
    let x: Vec<f32> = values(rows * width, 960).iter().map(|v| v * 3.0).collect();
    let g = values(rows * width, 961);
    let y = pollster::block_on(single_kernel::tanh_forward(&ctx, &x, rows)).unwrap();
    let dx = pollster::block_on(single_kernel::tanh_backward(&ctx, &y, &g, rows)).unwrap();
    let g64 = widen(&g);
    let loss = |x: &[f64]| -> f64 { x.iter().zip(&g64).map(|(v, g)| g * v.tanh()).sum() };
    assert_matches_finite_differences("tanh dx", &dx, &widen(&x), 1e-6, loss);
}
