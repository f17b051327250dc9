//! Zero padding (`zero_pad/*.wgsl`) against its twins, a border wider than the image included, and
//! its gradient against finite differences.

use crate::common::{assert_matches_finite_differences, gpu, values, widen};
use crate::single_kernel;
use fashion_core::model::PadLayout;
use fashion_core::reference;

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
