//! `gather/batch.wgsl` against its twin: every byte value, batches from any start of the order.

use crate::common::gpu;
use crate::single_kernel::{self};
use fashion_core::reference;
use fashion_data::PIXELS_PER_IMAGE;

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
