//! 2×2 max pooling (`pool/*.wgsl`) against its twins on odd sizes, and its gradient against
//! finite differences.

use crate::common::{assert_matches_finite_differences, gpu, values, widen};
use crate::single_kernel;
use fashion_core::model::PoolLayout;
use fashion_core::reference;

/// (rows, height, width, channels): odd sizes drop a trailing row/column.
const POOLS: &[(usize, usize, usize, usize)] =
    &[(3, 7, 9, 5), (2, 26, 26, 32), (1, 11, 11, 64), (1, 2, 2, 1), (2, 6, 7, 3), (1, 3, 5, 2)];

#[test]
fn max_pool_matches_reference_and_finite_differences() {
    let ctx = gpu();
    for (i, &(rows, height, width, channels)) in POOLS.iter().enumerate() {
        let layout = PoolLayout { height, width, channels };
        let x = values(rows * height * width * channels, 870 + i as u64);
        let gpu_y = pollster::block_on(single_kernel::max_pool_forward(&ctx, &x, rows, &layout)).unwrap();
        assert_eq!(gpu_y, reference::max_pool_forward(&x, rows, &layout), "max_pool_forward {layout:?}");
        let dy = values(gpu_y.len(), 880 + i as u64);
        for relu_below in [false, true] {
            let gpu_dx =
                pollster::block_on(single_kernel::max_pool_backward(&ctx, &x, &dy, rows, &layout, relu_below)).unwrap();
            let cpu_dx = reference::max_pool_backward(&x, &dy, rows, &layout, relu_below);
            assert_eq!(gpu_dx, cpu_dx, "max_pool_backward {layout:?} relu_below {relu_below}");
        }
    }
    // L = Σ g ⊙ maxpool(x) with distinct x (no ties): dL/dx must be the GPU's dx.
    let layout = PoolLayout { height: 5, width: 4, channels: 2 };
    let x = values(2 * 5 * 4 * 2, 890);
    let y = reference::max_pool_forward(&x, 2, &layout);
    let g = values(y.len(), 891);
    let dx = pollster::block_on(single_kernel::max_pool_backward(&ctx, &x, &g, 2, &layout, false)).unwrap();
    let g64 = widen(&g);
    let loss = |x: &[f64]| -> f64 {
        let narrowed: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        // The winners do not move for a step of 1e-4 when the values are distinct.
        let winners = reference::max_pool_forward(&narrowed, 2, &layout);
        let picked: Vec<f64> = winners
            .iter()
            .map(|&w| x[narrowed.iter().position(|&v| v == w).expect("the winner is an input")])
            .collect();
        picked.iter().zip(&g64).map(|(p, g)| p * g).sum()
    };
    assert_matches_finite_differences("max pool dx", &dx, &widen(&x), 1e-6, loss);
}
