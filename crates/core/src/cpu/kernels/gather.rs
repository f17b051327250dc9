//! The batch gathered from the training set: [`crate::reference::gather_batch`]'s values (the
//! same division by 255), written image by image into one buffer, over rayon's threads once a
//! batch is large (12% of a baseline step at batch 1,000 on one thread): batch 1,000 of
//! 784-pixel images is, batch 100 is not ([`super::for_each_image`]'s threshold; waking the
//! threads costs more than a tenth of a millisecond saves).

/// [`crate::reference::gather_batch`], fast: pixels/255 and labels of `order[start..start + rows]`,
/// into `x` (`rows · pixels` values) and `y` (`rows`).
pub fn gather_batch(
    images: &[u8],
    labels: &[u8],
    pixels: usize,
    order: &[u32],
    (start, rows): (usize, usize),
    x: &mut [f32],
    y: &mut [u32],
) {
    let order = &order[start..start + rows];
    for (label, &sample) in y[..rows].iter_mut().zip(order) {
        *label = u32::from(labels[sample as usize]);
    }
    super::for_each_image(&mut x[..rows * pixels], pixels, |r, out| {
        let sample = order[r] as usize;
        for (o, &p) in out.iter_mut().zip(&images[sample * pixels..(sample + 1) * pixels]) {
            *o = f32::from(p) / 255.0;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    /// The twin's values and labels, for a batch gathered on one thread and one large enough to
    /// be threaded, from an odd image size and a shuffled order.
    #[test]
    fn gather_matches_the_reference_twin() {
        for (pixels, count, rows) in [(1, 5, 3), (13, 40, 17), (785, 700, 401)] {
            let images: Vec<u8> = (0..pixels * count).map(|i| (i * 37 % 256) as u8).collect();
            let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
            let order: Vec<u32> = (0..count as u32).map(|i| (i * 7 + 3) % count as u32).collect();
            let start = count - rows - 1;
            let (mut x, mut y) = (vec![f32::NAN; rows * pixels], vec![99; rows]);
            gather_batch(&images, &labels, pixels, &order, (start, rows), &mut x, &mut y);
            assert_eq!(
                (x, y),
                reference::gather_batch(&images, &labels, pixels, &order, start, rows),
                "{pixels} pixels, {rows} of {count}"
            );
        }
    }
}
