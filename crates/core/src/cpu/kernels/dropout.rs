//! Dropout as one tight loop a pass: the twins' hash and rule exactly (the same mask, the same
//! bits), with the op's stream hashed once rather than once a value, and no closure per value
//! (the twins' `map(..).collect()` was 13% of a CNN step).

use crate::reference::mix;

/// [`crate::reference::dropout_keeps`]'s stream of op `index` in the step seeded `seed`.
fn stream(seed: u32, index: u32) -> u32 {
    mix(seed ^ index.wrapping_mul(0x9e37_79b9))
}

/// [`crate::reference::dropout_keeps`] with its stream given.
#[inline(always)]
fn keeps(stream: u32, element: u32, rate: f32) -> bool {
    (mix(stream ^ element) >> 8) as f32 * (1.0 / 16_777_216.0) >= rate
}

/// [`crate::reference::dropout_forward`] in training, fast, into `y` (as long as `x`); `x` is
/// the op's input from element `first` on (a shard of the batch: the mask is the whole batch's).
pub fn dropout_forward(x: &[f32], rate: f32, (seed, index, first): (u32, u32, u32), y: &mut [f32]) {
    let y = &mut y[..x.len()];
    let pass = Pass { stream: stream(seed, index), first, rate, scale: 1.0 / (1.0 - rate) };
    with_best_simd(|| pass.apply(y, x, None));
}

/// [`crate::reference::dropout_backward`], fast, into `dx` (as long as `dy`), `dy` from element
/// `first` of the op's output on.
pub fn dropout_backward(
    dy: &[f32],
    below: Option<&[f32]>,
    rate: f32,
    (seed, index, first): (u32, u32, u32),
    dx: &mut [f32],
) {
    if let Some(below) = below {
        assert_eq!(below.len(), dy.len(), "the layer below's output is as wide as the gradient");
    }
    let dx = &mut dx[..dy.len()];
    let pass = Pass { stream: stream(seed, index), first, rate, scale: 1.0 / (1.0 - rate) };
    with_best_simd(|| pass.apply(dx, dy, below));
}

/// One op's mask in one step from element `first` on, and its scale.
#[derive(Clone, Copy)]
struct Pass {
    stream: u32,
    first: u32,
    rate: f32,
    scale: f32,
}

impl Pass {
    /// `out = values · keep · scale`, and 0 where `below` (the layer below's output, after its
    /// ReLU) is not positive.
    #[inline(always)]
    fn apply(self, out: &mut [f32], values: &[f32], below: Option<&[f32]>) {
        let Pass { stream, first, rate, scale } = self;
        match below {
            None => {
                for ((o, &v), element) in out.iter_mut().zip(values).zip(first..) {
                    *o = if keeps(stream, element, rate) { v * scale } else { 0.0 };
                }
            }
            Some(below) => {
                for (((o, &v), &a), element) in out.iter_mut().zip(values).zip(below).zip(first..) {
                    *o = if a > 0.0 && keeps(stream, element, rate) { v * scale } else { 0.0 };
                }
            }
        }
    }
}

/// Runs `f` (inlined) compiled for AVX2 where the CPU has it: the hash's 32-bit multiplies then
/// go eight lanes at once (x86-64's baseline, SSE2, has no 32-bit lane multiply, so it stays
/// scalar there). Elsewhere `f` as compiled.
#[inline(always)]
fn with_best_simd(f: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn with_avx2(f: impl FnOnce()) {
            f()
        }
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { with_avx2(f) };
        return;
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::tests::pseudo;
    use crate::reference;

    /// The same bits as the twins on odd lengths, several rates (0 and a rate that drops
    /// almost all included), seeds and op indices, with and without a ReLU below.
    #[test]
    fn dropout_matches_the_reference_twins_to_the_bit() {
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (n, rate, seed, index) in [(1, 0.5, 1, 0), (7, 0.0, 2, 1), (1001, 0.25, 0xdead_beef, 3), (4097, 0.99, 5, 7)]
        {
            let x = pseudo(n, 9);
            let dy = pseudo(n, 10);
            let below = pseudo(n, 11);
            let name = format!("n {n} rate {rate} seed {seed} index {index}");
            let mut y = vec![f32::NAN; n];
            dropout_forward(&x, rate, (seed, index, 0), &mut y);
            assert_eq!(bits(&y), bits(&reference::dropout_forward(&x, rate, seed, index, true)), "forward {name}");
            for below in [None, Some(below.as_slice())] {
                let mut dx = vec![f32::NAN; n];
                dropout_backward(&dy, below, rate, (seed, index, 0), &mut dx);
                assert_eq!(
                    bits(&dx),
                    bits(&reference::dropout_backward(&dy, below, rate, seed, index)),
                    "backward {name}, relu below {}",
                    below.is_some()
                );
            }
        }
    }

    /// A shard of a batch (its elements from `first` on) gets the whole batch's mask there.
    #[test]
    fn a_shard_gets_the_whole_batchs_mask() {
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let (n, first) = (1001, 389);
        let (x, below) = (pseudo(n, 12), pseudo(n, 13));
        let mut whole = vec![f32::NAN; n];
        dropout_forward(&x, 0.3, (7, 2, 0), &mut whole);
        let mut shard = vec![f32::NAN; n - first];
        dropout_forward(&x[first..], 0.3, (7, 2, first as u32), &mut shard);
        assert_eq!(bits(&shard), bits(&whole[first..]), "forward");
        dropout_backward(&x, Some(&below), 0.3, (7, 2, 0), &mut whole);
        dropout_backward(&x[first..], Some(&below[first..]), 0.3, (7, 2, first as u32), &mut shard);
        assert_eq!(bits(&shard), bits(&whole[first..]), "backward");
    }
}
