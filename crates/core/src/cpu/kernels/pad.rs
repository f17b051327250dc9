//! Zero padding around NHWC images, the twins' values exactly, written into the caller's buffers
//! (the CNN pads 3 MB a step at batch 100): each padded line is its zero borders and one copy
//! of the image's line, image by image over rayon's threads for a large batch.

use crate::model::PadLayout;

/// [`crate::reference::zero_pad_forward`], fast, into `y`.
pub fn zero_pad_forward(x: &[f32], rows: usize, layout: &PadLayout, y: &mut [f32]) {
    let (w, c, p) = (layout.width, layout.channels, layout.padding);
    let (image_len, out_row) = (layout.height * w * c, layout.out_width() * c);
    let padded_len = layout.out_height() * out_row;
    super::for_each_image(&mut y[..rows * padded_len], padded_len, |r, padded| {
        let image = &x[r * image_len..(r + 1) * image_len];
        for (oy, out) in padded.chunks_exact_mut(out_row).enumerate() {
            match oy.checked_sub(p).filter(|&iy| iy < layout.height) {
                Some(iy) => {
                    let (left, rest) = out.split_at_mut(p * c);
                    let (middle, right) = rest.split_at_mut(w * c);
                    left.fill(0.0);
                    middle.copy_from_slice(&image[iy * w * c..(iy + 1) * w * c]);
                    right.fill(0.0);
                }
                None => out.fill(0.0),
            }
        }
    });
}

/// [`crate::reference::zero_pad_backward`], fast, into `dx`: the middle of each padded image's
/// gradient `dy`, 0 where `below` (the layer below's output) is not positive.
pub fn zero_pad_backward(dy: &[f32], rows: usize, layout: &PadLayout, below: Option<&[f32]>, dx: &mut [f32]) {
    let (w, c, p) = (layout.width, layout.channels, layout.padding);
    let (image_len, out_row) = (layout.height * w * c, layout.out_width() * c);
    let padded_len = layout.out_height() * out_row;
    super::for_each_image(&mut dx[..rows * image_len], image_len, |r, image| {
        let padded = &dy[r * padded_len..(r + 1) * padded_len];
        let lines = image.chunks_exact_mut(w * c).zip(padded.chunks_exact(out_row).skip(p));
        for (line, out) in lines {
            line.copy_from_slice(&out[p * c..(p + w) * c]);
        }
        if let Some(below) = below {
            let below = &below[r * image_len..(r + 1) * image_len];
            // The twin's rule (`b <= 0` closes), so a NaN below keeps its gradient as there.
            image.iter_mut().zip(below).filter(|(_, &b)| b <= 0.0).for_each(|(d, _)| *d = 0.0);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::tests::pseudo;
    use crate::reference;

    /// Odd sizes and channel counts, paddings 0 to 2, and the CNN's second padding (16 images
    /// of 14×14×32: threaded natively), with and without a ReLU below: the twins' bits.
    #[test]
    fn zero_pad_matches_the_reference_twins_on_odd_shapes() {
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (rows, height, width, channels, padding) in
            [(1, 1, 1, 1, 1), (3, 5, 7, 3, 1), (2, 4, 9, 1, 2), (4, 3, 3, 5, 0), (16, 14, 14, 32, 1)]
        {
            let layout = PadLayout { height, width, channels, padding };
            let name = format!("{rows} × {layout:?}");
            let x = pseudo(rows * height * width * channels, 1);
            let mut y = vec![f32::NAN; rows * layout.out_height() * layout.out_width() * channels];
            zero_pad_forward(&x, rows, &layout, &mut y);
            assert_eq!(bits(&y), bits(&reference::zero_pad_forward(&x, rows, &layout)), "forward {name}");
            let dy = pseudo(y.len(), 2);
            let below = pseudo(x.len(), 3);
            for below in [None, Some(below.as_slice())] {
                let mut dx = vec![f32::NAN; x.len()];
                zero_pad_backward(&dy, rows, &layout, below, &mut dx);
                assert_eq!(
                    bits(&dx),
                    bits(&reference::zero_pad_backward(&dy, rows, &layout, below)),
                    "backward {name}, relu below {}",
                    below.is_some()
                );
            }
        }
    }
}
