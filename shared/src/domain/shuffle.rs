//! The pre-queue draw: a seeded, reproducible permutation of arrival numbers `0..size`.
//!
//! It is a keyed Feistel network over the smallest even-bit domain holding `size`, with
//! cycle-walking to stay inside `0..size`. Any one visitor's place is computed from its arrival
//! number, the size and the seed alone, so a Lambda never needs the list of visitors, and anyone
//! holding the published seed can recompute the whole draw.

/// Feistel rounds: four make a pseudorandom permutation from a good round function.
const ROUNDS: u64 = 6;

/// SplitMix64's finaliser: a fixed, well-mixed 64-bit function. Fixed here (not a std hasher,
/// whose output may change between Rust versions) so a draw replays identically forever.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// One pass of the Feistel network over `2 * half_bits` bits.
fn feistel(value: u64, half_bits: u32, seed: u64) -> u64 {
    let mask = (1u64 << half_bits) - 1;
    let (mut left, mut right) = (value >> half_bits, value & mask);
    for round in 0..ROUNDS {
        let f = mix(seed ^ mix(right ^ (round << 56))) & mask;
        (left, right) = (right, left ^ f);
    }
    (left << half_bits) | right
}

/// The place (`0..size`) drawn for arrival number `index` (`0..size`).
pub fn permute(index: u64, size: u64, seed: u64) -> u64 {
    debug_assert!(index < size);
    if size <= 1 {
        return index;
    }
    let bits = 64 - (size - 1).leading_zeros();
    let half_bits = bits.div_ceil(2).max(1);
    // The domain is at most 4 * size, so a walk ends after a few steps on average.
    let mut value = index;
    loop {
        value = feistel(value, half_bits, seed);
        if value < size {
            return value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_gets_a_permutation() {
        for size in [1u64, 2, 3, 7, 64, 100, 1_000, 4_097] {
            for seed in [0u64, 1, 0xDEAD_BEEF] {
                let mut seen = vec![false; size as usize];
                for i in 0..size {
                    let p = permute(i, size, seed) as usize;
                    assert!(!seen[p], "place {p} drawn twice (size {size}, seed {seed})");
                    seen[p] = true;
                }
            }
        }
    }

    /// One frozen draw: the places of `indices` (all of `0..size` when absent).
    #[derive(serde::Deserialize)]
    struct Vector {
        size: u64,
        /// A decimal string, as the page reads it (64 bits do not fit a JavaScript number).
        seed: String,
        indices: Option<Vec<u64>>,
        places: Vec<u64>,
    }

    /// Frozen vectors: if one changes, published draws can no longer be verified. The visitor
    /// page's copy of the permutation (`web/assets/queue.js`) is checked on the same file.
    #[test]
    fn the_draw_replays_from_its_seed() {
        let vectors: Vec<Vector> =
            serde_json::from_str(include_str!("shuffle-vectors.json")).unwrap();
        assert!(vectors.len() >= 5);
        for v in &vectors {
            let seed: u64 = v.seed.parse().unwrap();
            let indices = v.indices.clone().unwrap_or_else(|| (0..v.size).collect());
            let draw: Vec<u64> = indices.iter().map(|&i| permute(i, v.size, seed)).collect();
            assert_eq!(draw, v.places, "size {}, seed {}", v.size, v.seed);
        }
        let draw: Vec<u64> = (0..10).map(|i| permute(i, 10, 42)).collect();
        let other: Vec<u64> = (0..10).map(|i| permute(i, 10, 43)).collect();
        assert_ne!(draw, other, "another seed, another draw");
    }

    /// Chi-square over many draws: the earliest arrivals land in every fifth of the line
    /// equally often, so arriving first buys nothing.
    #[test]
    fn early_arrivals_have_no_advantage() {
        let size = 1_000u64;
        let draws = 4_000u64;
        let buckets = 5usize;
        let mut counts = vec![0u64; buckets];
        for seed in 0..draws {
            // The first 5 arrivals of the pre-queue in each draw.
            for arrival in 0..5 {
                let place = permute(arrival, size, mix(seed));
                counts[(place * buckets as u64 / size) as usize] += 1;
            }
        }
        let expected = (draws * 5) as f64 / buckets as f64;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        // 4 degrees of freedom: p = 0.001 at 18.47.
        assert!(chi2 < 18.47, "chi2 {chi2:.2}, counts {counts:?}");
    }
}
