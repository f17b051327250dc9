//! The CNN's kernels — convolution forward and backward, 2×2 max pooling, zero padding — against their CPU
//! twins in `fashion_core::reference` on odd shapes, and the backward kernels against finite
//! differences.

mod common;
mod support;

use common::{assert_close, assert_matches_finite_differences, gpu, values, widen};
use fashion_core::gpu::kernel::{step_buffer, Grid, KernelVariant, LOOP_ITERATIONS_BUDGET};
use fashion_core::gpu::ops::conv::{self, ConvKernelShape};
use fashion_core::model::{ConvLayout, PadLayout, PoolLayout};
use fashion_core::reference;
use support::single_kernel;

/// (rows, height, width, channels, filters, kernel_size): odd sizes, one channel, batch 1,
/// non-square images, the CNN preset's two layers, and batches whose weight gradient takes
/// several chunks of rows (one thread summing all of them would loop past llvmpipe's cap). Those with channels and filters multiples
/// of 4 also run the vec4 kernels, here with image sizes, pixel counts and filter or channel
/// counts that are not multiples of their 16 × 16 blocks, and outputs of a single pixel.
/// (rows, height, width, channels, filters, kernel_size).
type ConvCase = (usize, usize, usize, usize, usize, usize);

const CONVS: &[ConvCase] = &[
    (3, 7, 9, 1, 4, 3),
    (1, 5, 6, 3, 8, 2),
    (2, 28, 28, 1, 32, 3),
    (2, 13, 13, 32, 64, 3),
    (4, 4, 4, 5, 4, 1),
    (3, 7, 9, 4, 4, 3),
    (2, 6, 5, 8, 12, 2),
    (1, 5, 6, 12, 20, 3),
    (5, 3, 3, 20, 8, 3),
    (100, 28, 28, 1, 4, 3),
    (70, 26, 26, 4, 8, 3),
];

/// Every conv case with each implementation (the vec4 one falls back to the scalar kernel where
/// channels or filters are not multiples of 4).
fn variants_and_cases() -> impl Iterator<Item = (KernelVariant, usize, &'static ConvCase)> {
    KernelVariant::ALL.into_iter().flat_map(|variant| CONVS.iter().enumerate().map(move |(i, case)| (variant, i, case)))
}

fn conv_layout(&(_, height, width, channels, filters, kernel_size): &ConvCase) -> ConvLayout {
    ConvLayout { height, width, channels, filters, kernel_size, kernel_offset: 0, bias_offset: 0 }
}

#[test]
fn conv2d_forward_matches_reference() {
    let ctx = gpu();
    for (variant, i, case) in variants_and_cases() {
        let (rows, layout) = (case.0, conv_layout(case));
        let x = values(rows * layout.height * layout.width * layout.channels, 800 + i as u64);
        let kernel = values(layout.kernel_len(), 810 + i as u64);
        let bias = values(layout.filters, 820 + i as u64);
        for relu in [false, true] {
            let gpu_y = pollster::block_on(single_kernel::conv2d_forward_with(
                &ctx, variant, &x, rows, &layout, &kernel, &bias, relu,
            ))
            .unwrap();
            let cpu_y = reference::conv2d_forward(&x, rows, &layout, &kernel, &bias, relu);
            let what = format!("conv2d_forward {} {case:?} relu {relu}", variant.as_str());
            assert_close(&what, &gpu_y, &cpu_y, 1e-4);
        }
    }
}

#[test]
fn conv2d_backward_kernels_match_reference() {
    let ctx = gpu();
    for (variant, i, case) in variants_and_cases() {
        let (rows, layout) = (case.0, conv_layout(case));
        let in_len = rows * layout.height * layout.width * layout.channels;
        let out_len = rows * layout.out_height() * layout.out_width() * layout.filters;
        let x = values(in_len, 830 + i as u64);
        let dz = values(out_len, 840 + i as u64);
        let kernel = values(layout.kernel_len(), 850 + i as u64);
        for mask in [None, Some(x.as_slice())] {
            let gpu_dx = pollster::block_on(single_kernel::conv2d_backward_input_with(
                &ctx, variant, &dz, rows, &layout, &kernel, mask,
            ))
            .unwrap();
            let cpu_dx = reference::conv2d_backward_input(&dz, rows, &layout, &kernel, mask);
            let what = format!("conv2d_backward_input {} {case:?} masked {}", variant.as_str(), mask.is_some());
            assert_close(&what, &gpu_dx, &cpu_dx, 1e-4);
        }
        let (gpu_dk, gpu_db) =
            pollster::block_on(single_kernel::conv2d_backward_weights_with(&ctx, variant, &x, &dz, rows, &layout))
                .unwrap();
        let (cpu_dk, cpu_db) = reference::conv2d_backward_weights(&x, &dz, rows, &layout);
        assert_close(&format!("conv2d dkernel {} {case:?}", variant.as_str()), &gpu_dk, &cpu_dk, 1e-3);
        assert_close(&format!("conv2d dbias {} {case:?}", variant.as_str()), &gpu_db, &cpu_db, 1e-3);
    }
}

/// The GPU set's conv kernels take any filter count (the emulator set needs multiples of 4), and
/// its split weight gradient covers batches of many chunks.
#[test]
fn tiled_conv_kernels_match_reference_on_odd_filter_counts() {
    let ctx = gpu();
    let variant = KernelVariant::Tiled;
    for (i, case) in [(3, 7, 9, 3, 5, 3), (1, 4, 4, 1, 1, 2), (130, 9, 9, 2, 7, 3)].iter().enumerate() {
        let (rows, layout) = (case.0, conv_layout(case));
        let x = values(rows * layout.height * layout.width * layout.channels, 900 + i as u64);
        let kernel = values(layout.kernel_len(), 910 + i as u64);
        let bias = values(layout.filters, 920 + i as u64);
        let dz = values(rows * layout.out_height() * layout.out_width() * layout.filters, 930 + i as u64);
        let gpu_y = pollster::block_on(single_kernel::conv2d_forward_with(
            &ctx, variant, &x, rows, &layout, &kernel, &bias, true,
        ))
        .unwrap();
        let cpu_y = reference::conv2d_forward(&x, rows, &layout, &kernel, &bias, true);
        assert_close(&format!("conv2d_forward tiled {case:?}"), &gpu_y, &cpu_y, 1e-4);
        let (gpu_dk, gpu_db) =
            pollster::block_on(single_kernel::conv2d_backward_weights_with(&ctx, variant, &x, &dz, rows, &layout))
                .unwrap();
        let (cpu_dk, cpu_db) = reference::conv2d_backward_weights(&x, &dz, rows, &layout);
        assert_close(&format!("conv2d dkernel tiled {case:?}"), &gpu_dk, &cpu_dk, 1e-3);
        assert_close(&format!("conv2d dbias tiled {case:?}"), &gpu_db, &cpu_db, 1e-3);
    }
}

/// f64 valid convolution, the ground truth for finite differences.
fn conv_f64(x: &[f64], rows: usize, layout: &ConvLayout, kernel: &[f64], bias: &[f64]) -> Vec<f64> {
    let ConvLayout { height: h, width: w, channels: c, filters: f, kernel_size: k, .. } = *layout;
    let (oh, ow) = (layout.out_height(), layout.out_width());
    let mut y = Vec::with_capacity(rows * oh * ow * f);
    for r in 0..rows {
        for oy in 0..oh {
            for ox in 0..ow {
                for fi in 0..f {
                    let mut acc = bias[fi];
                    for ky in 0..k {
                        for kx in 0..k {
                            for ci in 0..c {
                                acc += x[((r * h + oy + ky) * w + ox + kx) * c + ci]
                                    * kernel[((ky * k + kx) * c + ci) * f + fi];
                            }
                        }
                    }
                    y.push(acc);
                }
            }
        }
    }
    y
}

/// L = Σ g ⊙ conv(x): the GPU's dx, dkernel and dbias must be L's finite differences.
#[test]
fn conv2d_gradients_match_finite_differences() {
    let ctx = gpu();
    // Two channels: the scalar kernels; four: the vec4 ones; three: the tiled ones.
    for (variant, channels) in [(KernelVariant::Scalar, 2), (KernelVariant::Vec4, 4), (KernelVariant::Tiled, 3)] {
        let (rows, layout) = (2, conv_layout(&(2, 5, 6, channels, 4, 3)));
        let x = values(rows * 5 * 6 * channels, 860);
        let kernel = values(layout.kernel_len(), 861);
        let bias = values(layout.filters, 862);
        let g = values(rows * layout.out_height() * layout.out_width() * layout.filters, 863);
        let dx = pollster::block_on(single_kernel::conv2d_backward_input_with(
            &ctx, variant, &g, rows, &layout, &kernel, None,
        ))
        .unwrap();
        let (dkernel, dbias) =
            pollster::block_on(single_kernel::conv2d_backward_weights_with(&ctx, variant, &x, &g, rows, &layout))
                .unwrap();
        let (x64, k64, b64, g64) = (widen(&x), widen(&kernel), widen(&bias), widen(&g));
        let loss = |x: &[f64], k: &[f64], b: &[f64]| -> f64 {
            conv_f64(x, rows, &layout, k, b).iter().zip(&g64).map(|(y, g)| y * g).sum()
        };
        let name = variant.as_str();
        assert_matches_finite_differences(&format!("conv dx {name}"), &dx, &x64, 1e-3, |x| loss(x, &k64, &b64));
        assert_matches_finite_differences(&format!("conv dkernel {name}"), &dkernel, &k64, 1e-3, |k| {
            loss(&x64, k, &b64)
        });
        assert_matches_finite_differences(&format!("conv dbias {name}"), &dbias, &b64, 1e-3, |b| loss(&x64, &k64, b));
    }
}

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

/// (rows, height, width, channels, padding): the CNN preset's two pads, odd sizes, one pixel, a
/// border wider than the image.
const PADS: &[(usize, usize, usize, usize, usize)] =
    &[(2, 28, 28, 1, 1), (3, 13, 13, 32, 1), (1, 1, 1, 1, 1), (2, 5, 7, 3, 2), (1, 2, 3, 5, 4)];

#[test]
fn zero_padding_matches_reference_and_finite_differences() {
    let ctx = gpu();
    for (i, &(rows, height, width, channels, padding)) in PADS.iter().enumerate() {
        let layout = PadLayout { height, width, channels, padding };
        let x = values(rows * height * width * channels, 900 + i as u64);
        let gpu_y = pollster::block_on(single_kernel::zero_pad_forward(&ctx, &x, rows, &layout)).unwrap();
        let cpu_y = reference::zero_pad_forward(&x, rows, &layout);
        assert_eq!(gpu_y, cpu_y, "zero_pad_forward {layout:?}");
        // Every input once, in the middle; zeros around it.
        let (oh, ow) = (height + 2 * padding, width + 2 * padding);
        assert_eq!(cpu_y.len(), rows * oh * ow * channels);
        let at = |r: usize, y: usize, x: usize, c: usize| ((r * oh + y) * ow + x) * channels + c;
        assert_eq!(
            cpu_y[at(rows - 1, padding, padding, channels - 1)],
            x[(rows - 1) * height * width * channels + channels - 1]
        );
        assert_eq!(cpu_y[at(0, 0, ow - 1, 0)], 0.0);
        assert_eq!(cpu_y.iter().filter(|&&v| v != 0.0).count(), x.iter().filter(|&&v| v != 0.0).count());
        let dy = values(gpu_y.len(), 910 + i as u64);
        for below in [None, Some(x.as_slice())] {
            let gpu_dx = pollster::block_on(single_kernel::zero_pad_backward(&ctx, &dy, rows, &layout, below)).unwrap();
            let cpu_dx = reference::zero_pad_backward(&dy, rows, &layout, below);
            assert_eq!(gpu_dx, cpu_dx, "zero_pad_backward {layout:?} masked {}", below.is_some());
        }
    }
    // L = Σ g ⊙ pad(x): dL/dx must be the GPU's dx.
    let layout = PadLayout { height: 3, width: 4, channels: 2, padding: 1 };
    let x = values(2 * 3 * 4 * 2, 920);
    let g = values(2 * 5 * 6 * 2, 921);
    let dx = pollster::block_on(single_kernel::zero_pad_backward(&ctx, &g, 2, &layout, None)).unwrap();
    let g64 = widen(&g);
    // pad_f64(x), written out: output (r, y + 1, x + 1, c) is input (r, y, x, c).
    let loss = |x: &[f64]| -> f64 {
        let mut sum = 0.0;
        for (i, v) in x.iter().enumerate() {
            let (c, xi, yi, r) = (i % 2, (i / 2) % 4, (i / 8) % 3, i / 24);
            sum += v * g64[((r * 5 + yi + 1) * 6 + xi + 1) * 2 + c];
        }
        sum
    };
    assert_matches_finite_differences("zero pad dx", &dx, &widen(&x), 1e-6, loss);
}

/// The vec4 conv kernels bind exactly where channels, filters and the parameter offsets are
/// multiples of 4, whatever the image size: the tests above then cover both implementations.
#[test]
fn vec4_conv_kernels_bind_where_aligned() {
    let ctx = gpu();
    let steps = step_buffer(&ctx, 1);
    let forward = conv::forward(&ctx, KernelVariant::Vec4);
    let bound_label = |channels: usize, filters: usize, kernel_offset: usize| {
        let layout = ConvLayout {
            height: 13,
            width: 11,
            channels,
            filters,
            kernel_size: 3,
            kernel_offset,
            bias_offset: kernel_offset + 9 * channels * filters,
        };
        let x = ctx.storage("x", (2 * 13 * 11 * channels * 4) as u64);
        let params = ctx.storage("params", ((layout.bias_offset + filters) * 4) as u64);
        let y = ctx.storage("y", (2 * 11 * 9 * filters * 4) as u64);
        forward.bind(&ctx, &steps, &ConvKernelShape::forward(&layout, true), &[&x, &params, &y]).label()
    };
    assert_eq!(bound_label(32, 64, 4), "conv2d_forward_vec4");
    assert_eq!(bound_label(1, 32, 4), "conv2d_forward", "one channel");
    assert_eq!(bound_label(32, 6, 4), "conv2d_forward", "filters not a multiple of 4");
    assert_eq!(bound_label(32, 64, 3), "conv2d_forward", "odd offsets");
    // 16 pixels per thread, 64 threads per workgroup: 2 images of 11×9 outputs need one group.
    let blocks = Grid::PixelBlocks { pixels_per_row: 99, pixels_per_thread: 16, y: 4 };
    assert_eq!(blocks.workgroups(2), [1, 4, 1]);
    assert_eq!(blocks.workgroups(11), [2, 4, 1]);
}

/// The weight gradient's chunks of rows cover any batch in order, the first overwriting and the
/// others adding, each within the loop budget.
#[test]
fn conv_weight_gradient_chunks_cover_the_batch_within_the_loop_budget() {
    for case in CONVS {
        let layout = conv_layout(case);
        for max_rows in [1, 7, 100, 256] {
            let shapes = ConvKernelShape::backward_weights_chunks(&layout, max_rows);
            let chunk = shapes[0].shape.row_count as usize;
            let per_row = 2 * layout.out_height() * (layout.out_width() + 1) + 1;
            assert!(chunk * per_row <= LOOP_ITERATIONS_BUDGET || chunk == 1, "{case:?}");
            assert!(shapes.len() * chunk >= max_rows && (shapes.len() - 1) * chunk < max_rows, "{case:?}");
            for (i, shape) in shapes.iter().enumerate() {
                assert_eq!(
                    (shape.shape.first_row as usize, shape.shape.accumulate),
                    (i * chunk, u32::from(i > 0)),
                    "{case:?}"
                );
            }
        }
    }
    // The CNN's first layer at batch 100: 70,200 loop iterations in one thread; 5 chunks of 21 rows.
    let conv1 = conv_layout(&(100, 28, 28, 1, 32, 3));
    assert_eq!(ConvKernelShape::backward_weights_chunks(&conv1, 100).len(), 5);
}
