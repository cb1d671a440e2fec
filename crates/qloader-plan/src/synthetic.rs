//! Deterministic, realistic-looking instances for tests and benchmarks.
//!
//! Item `i` is a weight tensor of 50 k to 15 M parameters (log-uniform), so
//! 0.1 to 30 MB at 16 bits. Choice `j` of `c` stores it at
//! `16 · 8^(−j/(c−1))` bits per weight (16 down to 2), plus one bit per
//! weight of group scales below 16 bits: bytes fall with every choice. Loss
//! follows the quantization noise, ∝ 4^(−bits), times a per-item
//! sensitivity log-uniform over 2.5 decades, with one item in twenty 30×
//! more sensitive, and ±30 % noise per choice (kept strictly increasing as
//! bits fall, but not convex, so hulls have work to do). At 2 bits losses
//! lie between about 1e-4 and 1; at 4 bits between 1e-5 and 0.1. Latency
//! (seconds per token) is the bytes read at 20 GB/s plus an unpacking cost
//! that grows as bits fall.
//!
//! The generator is splitmix64 (Steele, Lea & Flood, "Fast splittable
//! pseudorandom number generators", OOPSLA 2014), so the same arguments give
//! the same problem everywhere.

use crate::problem::{Choice, Item, Problem};

/// splitmix64: a 64-bit state advanced by a constant, output mixed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform in [lo, hi).
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp()
    }
}

/// A problem of `items` items with `choices` choices each (at least 1), the
/// same for the same `seed`. See the module documentation.
pub fn synthetic(items: usize, choices: usize, seed: u64) -> Problem {
    let choices = choices.max(1);
    let mut rng = SplitMix64(seed ^ 0x5107_3A7C_0DE5_EED5);
    let bits: Vec<f64> =
        (0..choices)
            .map(|j| {
                if choices == 1 {
                    16.0
                } else {
                    16.0 * 8f64.powf(-(j as f64) / (choices - 1) as f64)
                }
            })
            .collect();
    let items = (0..items)
        .map(|_| {
            let params = rng.log_uniform(5e4, 1.5e7);
            let mut sensitivity = rng.log_uniform(1e-4, 3e-2);
            if rng.unit() < 0.05 {
                sensitivity *= 30.0;
            }
            let mut previous_loss = 0.0f64;
            let choices = bits
                .iter()
                .map(|&b| {
                    let scales = if b < 16.0 { params / 32.0 * 4.0 } else { 0.0 };
                    let bytes = (params * b / 8.0 + scales).ceil() as u64;
                    let noise = (0.6 * rng.unit() - 0.3).exp();
                    let mut loss = sensitivity * 4f64.powf(2.0 - b) * noise;
                    if loss <= previous_loss {
                        loss = previous_loss * 1.01;
                    }
                    previous_loss = loss;
                    let unpack =
                        if b < 16.0 { 0.02e-9 * (1.0 + (8.0 - b).max(0.0) * 0.15) } else { 0.0 };
                    let latency = bytes as f64 / 20e9 + params * unpack;
                    Choice::new(bytes, latency, loss)
                })
                .collect();
            Item::new(choices)
        })
        .collect();
    Problem::new(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_valid() {
        let a = synthetic(50, 6, 3);
        assert_eq!(a, synthetic(50, 6, 3));
        assert_ne!(a, synthetic(50, 6, 4));
        assert!(a.validate().is_ok());
        assert_eq!(a.items.len(), 50);
    }

    #[test]
    fn bytes_fall_and_loss_rises_with_fewer_bits() {
        let p = synthetic(100, 8, 11);
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for item in &p.items {
            assert_eq!(item.choices.len(), 8);
            for w in item.choices.windows(2) {
                assert!(w[0].bytes > w[1].bytes);
                assert!(w[0].loss < w[1].loss);
            }
            let first = &item.choices[0];
            assert!((100_000..=30_000_000).contains(&first.bytes), "{}", first.bytes);
            lo = lo.min(item.choices[5].loss);
            hi = hi.max(item.choices[5].loss);
        }
        // Losses at ~4 bits spread over several decades.
        assert!(hi / lo > 1e3, "{lo} .. {hi}");
    }

    #[test]
    fn degenerate_sizes() {
        assert!(synthetic(0, 5, 1).items.is_empty());
        let p = synthetic(3, 0, 1);
        assert!(p.items.iter().all(|it| it.choices.len() == 1));
    }
}
