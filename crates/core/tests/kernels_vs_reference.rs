//! Every WGSL kernel against its CPU twin in `fashion_core::reference`, on odd shapes (not
//! multiples of the 32×32 tile or of 4), batch 1, and batches larger than a workgroup; and every
//! backward kernel against finite differences of the forward maths. The dense kernels are checked
//! in every [`KernelVariant`], on shapes the vec4 kernels take (sizes multiples of 4, odd batch
//! rows) and on shapes where they must fall back to the 4×4 ones.

mod common;
mod support;

use common::{assert_close, assert_matches_finite_differences, central_difference, gpu, values, widen};
use fashion_core::gpu::kernel::{step_buffer, Grid, KernelShape, KernelVariant};
use fashion_core::gpu::ops::dense::{self, DenseBackwardInputShape, DenseForwardShape, VEC4_TILE};
use fashion_core::model::{Activation, DenseLayout};
use fashion_core::reference;
use fashion_core::AdamConfig;
use fashion_data::PIXELS_PER_IMAGE;
use support::single_kernel::{self, AdamState};

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
fn gather_batch_matches_reference() {
    let ctx = gpu();
    let count = 7;
    let mut rng = fashion_data::SplitMix64::new(5);
    let images: Vec<u8> = (0..count * PIXELS_PER_IMAGE).map(|_| rng.next_u32() as u8).collect();
    let labels: Vec<u8> = (0..count as u8).map(|i| (i * 3) % 10).collect();
    let mut images = images;
    // Every byte value: WGSL allows 2.5 ulp for `/`, and GPUs often compute k / 255 as
    // k · (1/255), which differs from the correctly rounded quotient for 126 of the 256 values.
    images[..256].iter_mut().enumerate().for_each(|(k, p)| *p = k as u8);
    let order = [6, 2, 0, 5, 1, 3, 4];
    for (start, rows) in [(0, 7), (2, 3), (6, 1), (2, 1)] {
        let (x, y) =
            pollster::block_on(single_kernel::gather_batch(&ctx, &images, &labels, &order, start, rows)).unwrap();
        let (x_ref, y_ref) = reference::gather_batch(&images, &labels, PIXELS_PER_IMAGE, &order, start, rows);
        assert_eq!(x.len(), x_ref.len());
        for (i, (&a, &e)) in x.iter().zip(&x_ref).enumerate() {
            // One ulp of a value in (0, 1] is at most f32::EPSILON / 2 · 2 = f32::EPSILON · e.
            assert!((a - e).abs() <= f32::EPSILON * e, "pixel {i} of batch at {start}: GPU {a} vs reference {e}");
        }
        assert_eq!(y, y_ref, "labels of batch at {start}");
    }
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

#[test]
fn softmax_cross_entropy_matches_reference() {
    let ctx = gpu();
    // 2,500 rows: three dispatches of at most 1,000 (one invocation looping over all of them
    // would stop early on lavapipe).
    // The per-row kernel and its tally: rows past one 256-thread tally workgroup too.
    let cases = [(1, 10), (37, 10), (300, 10), (5, 7), (2500, 10)];
    for (variant, (rows, classes)) in
        [KernelVariant::Scalar, KernelVariant::Tiled].into_iter().flat_map(|v| cases.map(|c| (v, c)))
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
        [(KernelVariant::Scalar, (5, 7, 6)), (KernelVariant::Vec4, (5, 8, 12)), (KernelVariant::Tiled, (5, 33, 7))]
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
        [(KernelVariant::Scalar, (3, 9, 4)), (KernelVariant::Vec4, (3, 8, 4)), (KernelVariant::Tiled, (3, 9, 4))]
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

/// The GPU's dlogits must be the finite differences of the batch-mean cross-entropy.
#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    let ctx = gpu();
    let (rows, classes) = (4, 10);
    let logits: Vec<f32> = values(rows * classes, 91).iter().map(|v| v * 3.0).collect();
    let labels = [0, 9, 4, 4];
    for variant in [KernelVariant::Scalar, KernelVariant::Tiled] {
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
