//! The dense kernels (`dense/*.wgsl`) against their twins on odd shapes (not multiples of the
//! 32×32 tile or of 4), batch 1, and batches larger than a workgroup, in every [`KernelVariant`]:
//! on shapes the vec4 kernels take (sizes multiples of 4, odd batch rows) and on shapes where they
//! must fall back to the 4×4 ones; the backward kernels against finite differences.

use crate::common::{assert_close, assert_matches_finite_differences, central_difference, gpu, values, widen};
use crate::single_kernel::{self};
use fashion_core::gpu::kernel::{step_buffer, Grid, KernelShape, KernelVariant};
use fashion_core::gpu::ops::dense::{self, DenseBackwardInputShape, DenseForwardShape, VEC4_TILE};
use fashion_core::model::{Activation, DenseLayout};
use fashion_core::reference;

/// (rows, inputs, units)
const SHAPES: &[(usize, usize, usize)] =
    &[(37, 53, 29), (1, 5, 3), (1, 1, 1), (33, 17, 65), (100, 784, 256), (64, 128, 10)];

/// Shapes the vec4 kernels take: sizes multiples of 4, rows not a multiple of 4 or of their
/// 128×128 tile, more than one tile along each axis.
const ALIGNED_SHAPES: &[(usize, usize, usize)] =
    &[(37, 52, 28), (1, 4, 4), (5, 8, 12), (67, 132, 68), (100, 256, 128), (130, 136, 260)];

/// Every variant on every shape.
fn variants_and_shapes() -> impl Iterator<Item = (KernelVariant, usize, (usize, usize, usize))> {
    KernelVariant::ALL
        .into_iter()
        .flat_map(|variant| SHAPES.iter().chain(ALIGNED_SHAPES).enumerate().map(move |(i, &shape)| (variant, i, shape)))
}

#[test]
fn dense_forward_matches_reference() {
    let ctx = gpu();
    for (variant, i, (rows, inputs, units)) in variants_and_shapes() {
        let seed = i as u64 * 10;
        let x = values(rows * inputs, seed);
        let kernel = values(inputs * units, seed + 1);
        let bias = values(units, seed + 2);
        for relu in [false, true] {
            let gpu_y = pollster::block_on(single_kernel::dense_forward_with(
                &ctx, variant, &x, rows, &kernel, &bias, inputs, relu,
            ))
            .unwrap();
            let cpu_y = reference::dense_forward(&x, rows, &kernel, &bias, inputs, relu);
            let what = format!("dense_forward {} {rows}x{inputs}x{units} relu={relu}", variant.as_str());
            assert_close(&what, &gpu_y, &cpu_y, 1e-4);
        }
    }
}

#[test]
fn dense_backward_input_matches_reference() {
    let ctx = gpu();
    for (variant, i, (rows, inputs, units)) in variants_and_shapes() {
        let seed = 100 + i as u64 * 10;
        let dz = values(rows * units, seed);
        let kernel = values(inputs * units, seed + 1);
        let below = values(rows * inputs, seed + 2);
        for mask in [None, Some(below.as_slice())] {
            let gpu_dx = pollster::block_on(single_kernel::dense_backward_input_with(
                &ctx, variant, &dz, rows, &kernel, inputs, units, mask,
            ))
            .unwrap();
            let cpu_dx = reference::dense_backward_input(&dz, rows, &kernel, inputs, units, mask);
            let what = format!("dense_backward_input {} {rows}x{inputs}x{units}", variant.as_str());
            assert_close(&what, &gpu_dx, &cpu_dx, 1e-4);
        }
    }
}

#[test]
fn dense_backward_weights_matches_reference() {
    let ctx = gpu();
    for (variant, i, (rows, inputs, units)) in variants_and_shapes() {
        let seed = 200 + i as u64 * 10;
        let x = values(rows * inputs, seed);
        let dz = values(rows * units, seed + 1);
        let (gpu_dk, gpu_db) =
            pollster::block_on(single_kernel::dense_backward_weights_with(&ctx, variant, &x, &dz, rows, inputs, units))
                .unwrap();
        let (cpu_dk, cpu_db) = reference::dense_backward_weights(&x, &dz, rows, inputs, units);
        let what = format!("{} {rows}x{inputs}x{units}", variant.as_str());
        assert_close(&format!("dkernel {what}"), &gpu_dk, &cpu_dk, 1e-4);
        assert_close(&format!("dbias {what}"), &gpu_db, &cpu_db, 1e-4);
    }
}

/// The vec4 kernels are used exactly where their alignment holds: the tests above then cover
/// both them and the fallback.
#[test]
fn vec4_kernels_bind_where_aligned_and_fall_back_elsewhere() {
    let layer = |inputs: usize, units: usize, kernel_offset: usize, bias_offset: usize| DenseLayout {
        inputs,
        units,
        activation: Activation::Relu,
        kernel_offset,
        bias_offset,
    };
    assert!(DenseForwardShape::new(&layer(52, 28, 4, 1460), true).vec4_fits());
    assert!(!DenseForwardShape::new(&layer(53, 28, 4, 1488), true).vec4_fits(), "inputs not a multiple of 4");
    assert!(!DenseForwardShape::new(&layer(52, 28, 3, 1459), true).vec4_fits(), "odd offsets");
    assert!(DenseBackwardInputShape::new(&layer(52, 28, 4, 1), true).vec4_fits(), "it reads no bias");

    let ctx = gpu();
    let steps = step_buffer(&ctx, 1);
    let compiled = dense::forward(&ctx, KernelVariant::Vec4);
    // `y_tail`: bytes past the output, so the buffer can end inside a vec4.
    let bound_label = |inputs: usize, units: usize, y_tail: u64| {
        let shape = DenseForwardShape::new(&layer(inputs, units, 4, 4 + inputs * units), false);
        let x = ctx.storage("x", (7 * inputs * 4) as u64);
        let params = ctx.storage("params", ((4 + inputs * units + units) * 4) as u64);
        let y = ctx.create_buffer(&wgpu::BufferDescriptor {
            label: Some("y"),
            size: (7 * units * 4) as u64 + y_tail,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        compiled.bind(&ctx, &steps, &shape, &[&x, &params, &y]).label()
    };
    assert_eq!(bound_label(52, 28, 4), "dense_forward", "a buffer cut inside a vec4");
    assert_eq!(bound_label(52, 28, 0), "dense_forward_vec4");
    assert_eq!(bound_label(53, 28, 0), "dense_forward");
    assert_eq!(bound_label(52, 10, 0), "dense_forward");
    let grid = Grid::Tiles { cols: 100, rows: None, tile: VEC4_TILE };
    assert_eq!(grid.workgroups(129), [1, 2, 1]);
}

/// f64 forward of a dense layer, the ground truth for finite differences.
fn dense_f64(x: &[f64], rows: usize, kernel: &[f64], bias: &[f64], inputs: usize, relu: bool) -> Vec<f64> {
    let units = bias.len();
    let mut y = vec![0.0; rows * units];
    for r in 0..rows {
        for n in 0..units {
            let z = bias[n] + (0..inputs).map(|k| x[r * inputs + k] * kernel[k * units + n]).sum::<f64>();
            y[r * units + n] = if relu { z.max(0.0) } else { z };
        }
    }
    y
}
/// For L = Σ g ⊙ relu(x·W + b) the GPU's dkernel, dbias and dx (dz = g ⊙ relu') must equal
/// L's finite differences.
#[test]
fn dense_backward_kernels_match_finite_differences() {
    let ctx = gpu();
    // An odd shape for the 4×4 kernels, one the vec4 kernels take (5 rows: not a multiple of 4),
    // and for the tiled ones inputs past one 32-wide tile (the bias is the row after them).
    for (variant, (rows, inputs, units)) in
        [(KernelVariant::Scalar, (5, 7, 6)), (KernelVariant::Vec4, (5, 8, 12)), (KernelVariant::Gpu, (5, 33, 7))]
    {
        let x = values(rows * inputs, 71);
        let kernel = values(inputs * units, 72);
        let bias = values(units, 73);
        let g = values(rows * units, 74);
        let y = reference::dense_forward(&x, rows, &kernel, &bias, inputs, true);
        let dz: Vec<f32> = g.iter().zip(&y).map(|(&g, &y)| if y > 0.0 { g } else { 0.0 }).collect();
        let (dkernel, dbias) =
            pollster::block_on(single_kernel::dense_backward_weights_with(&ctx, variant, &x, &dz, rows, inputs, units))
                .unwrap();
        let dx = pollster::block_on(single_kernel::dense_backward_input_with(
            &ctx, variant, &dz, rows, &kernel, inputs, units, None,
        ))
        .unwrap();

        let (x64, k64, b64, g64) = (widen(&x), widen(&kernel), widen(&bias), widen(&g));
        let loss = |x: &[f64], k: &[f64], b: &[f64]| -> f64 {
            dense_f64(x, rows, k, b, inputs, true).iter().zip(&g64).map(|(y, g)| y * g).sum()
        };
        let name = variant.as_str();
        assert_matches_finite_differences(&format!("dkernel {name}"), &dkernel, &k64, 1e-3, |k| loss(&x64, k, &b64));
        assert_matches_finite_differences(&format!("dbias {name}"), &dbias, &b64, 1e-3, |b| loss(&x64, &k64, b));
        assert_matches_finite_differences(&format!("dx {name}"), &dx, &x64, 1e-3, |x| loss(x, &k64, &b64));
    }
}

/// dx through a ReLU below: L = Σ g ⊙ (relu(a)·W) with respect to a, where dx is masked by a > 0.
#[test]
fn relu_mask_of_backward_input_matches_finite_differences() {
    let ctx = gpu();
    for (variant, (rows, inputs, units)) in
        [(KernelVariant::Scalar, (3, 9, 4)), (KernelVariant::Vec4, (3, 8, 4)), (KernelVariant::Gpu, (3, 9, 4))]
    {
        let a = values(rows * inputs, 81);
        let kernel = values(inputs * units, 82);
        let g = values(rows * units, 83);
        let below: Vec<f32> = a.iter().map(|v| v.max(0.0)).collect();
        let dx = pollster::block_on(single_kernel::dense_backward_input_with(
            &ctx,
            variant,
            &g,
            rows,
            &kernel,
            inputs,
            units,
            Some(&below),
        ))
        .unwrap();
        let (k64, g64) = (widen(&kernel), widen(&g));
        let zeros = vec![0.0; units];
        for i in 0..a.len() {
            if f64::from(a[i]).abs() < 1e-3 {
                continue; // the kink of ReLU has no derivative
            }
            let fd = central_difference(&widen(&a), i, |a| {
                let relu: Vec<f64> = a.iter().map(|v| v.max(0.0)).collect();
                dense_f64(&relu, rows, &k64, &zeros, inputs, false).iter().zip(&g64).map(|(y, g)| y * g).sum()
            });
            assert!((fd - f64::from(dx[i])).abs() < 1e-3, "dx[{i}] {}: fd {fd} vs GPU {}", variant.as_str(), dx[i]);
        }
    }
}
