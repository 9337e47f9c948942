//! SplitMix64 (Steele, Lea, Flood 2014), the workspace's one pseudo-random generator.
//!
//! It lives in `mr-corpus` because that crate depends on nothing: the corpus generator, the
//! benchmark's data (`mr-bench`) and `mr-io`'s `random:` input all use it without a dependency
//! pointing upwards (`mr-codec` is the SDK's wire format, shared with guests, and no place for a
//! PRNG). Its outputs are part of what the same seed promises (a corpus, a `random:` input), so
//! they must never change.

/// The golden-ratio increment of SplitMix64's state.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a bijective 64-bit mixer (also a good hash of an integer).
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: one addition and one [`mix64`] per draw. Not cryptographic; fast, and good
/// enough for test data and sampling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose first draw is `mix64(seed + GAMMA)`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 pseudo-random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (the bias is negligible for small `n`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // The first outputs of the reference implementation (Vigna's splitmix64.c) seeded with 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn below_and_range_stay_in_bounds() {
        let mut rng = SplitMix64::new(42);
        for n in 1..100 {
            assert!(rng.below(n) < n);
            let r = rng.range(n, n + 3);
            assert!((n..=n + 3).contains(&r));
        }
    }
}
