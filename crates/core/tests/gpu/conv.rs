//! Convolution (`conv/*.wgsl`) forward and backward, scalar, vec4 and the GPU set's, against the
//! twins on odd, non-square shapes, one channel, the CNN's own layers and batches whose weight
//! gradient takes several dispatches; the gradients against finite differences.

use crate::common::{assert_close, assert_matches_finite_differences, gpu, values, widen};
use crate::single_kernel;
use fashion_core::gpu::kernel::{step_buffer, Grid, KernelVariant, LOOP_ITERATIONS_BUDGET};
use fashion_core::gpu::ops::conv::{self, ConvKernelShape};
use fashion_core::model::ConvLayout;
use fashion_core::reference;

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
    let variant = KernelVariant::Gpu;
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
    for (variant, channels) in [(KernelVariant::Scalar, 2), (KernelVariant::Vec4, 4), (KernelVariant::Gpu, 3)] {
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
