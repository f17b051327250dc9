//! A small seeded RNG whose output is identical on every platform (native and wasm), and
//! the per-epoch shuffle built on it.

/// SplitMix64 (Steele, Lea & Flood 2014): 64 bits of state, full period, good enough
/// for shuffling and weight initialisation, and bit-for-bit reproducible everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(Self::GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The high 32 bits of [`next_u64`](Self::next_u64).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `[0, 1)`, with 24 random bits (every value exactly representable).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Uniform integer in `0..bound`, without modulo bias (Lemire 2019). Returns 0 when
    /// `bound` is 0.
    pub fn next_below(&mut self, bound: u32) -> u32 {
        if bound == 0 {
            return 0;
        }
        let mut m = u64::from(self.next_u32()) * u64::from(bound);
        if (m as u32) < bound {
            let threshold = bound.wrapping_neg() % bound;
            while (m as u32) < threshold {
                m = u64::from(self.next_u32()) * u64::from(bound);
            }
        }
        (m >> 32) as u32
    }
}

/// A permutation of `0..count` that depends only on `seed` and `epoch` (a fresh order
/// every epoch, the same on every platform).
///
/// # Panics
/// If `count` does not fit in a `u32`.
pub fn shuffled_indices(count: usize, seed: u64, epoch: u64) -> Vec<u32> {
    let n = u32::try_from(count).expect("shuffled_indices: count must fit in u32");
    let mut rng = SplitMix64::new(seed ^ epoch.wrapping_mul(SplitMix64::GOLDEN_GAMMA));
    let mut indices: Vec<u32> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.next_below(i + 1);
        indices.swap(i as usize, j as usize);
    }
    indices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_reference_values() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut rng = SplitMix64::new(1234567);
        let got: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(got, [6457827717110365317, 3203168211198807973, 9817491932198370423]);
    }

    #[test]
    fn next_f32_is_in_unit_interval() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..10_000 {
            let x = rng.next_f32();
            assert!((0.0..1.0).contains(&x), "{x}");
        }
    }

    #[test]
    fn next_below_stays_below_bound() {
        let mut rng = SplitMix64::new(3);
        for bound in [1, 2, 3, 7, 10, 1000, u32::MAX] {
            for _ in 0..1000 {
                assert!(rng.next_below(bound) < bound);
            }
        }
        assert_eq!(rng.next_below(0), 0);
    }
}
