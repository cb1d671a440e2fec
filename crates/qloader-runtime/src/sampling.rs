//! Choosing the next token from a row of logits: greedy (arg-max), or
//! sampled with temperature, top-k and nucleus (top-p) filtering from a
//! seeded generator, so a run is reproducible.

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 = greedy; otherwise logits are divided by this before softmax.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches
    /// `top_p` (1 = all).
    pub top_p: f32,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Sampling {
    /// Always the most likely token.
    pub const GREEDY: Sampling = Sampling { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 };
}

/// A picker with its random state.
pub struct Sampler {
    config: Sampling,
    state: u64,
}

impl Sampler {
    /// A sampler for `config`.
    pub fn new(config: Sampling) -> Self {
        Self { config, state: config.seed ^ 0x9e37_79b9_7f4a_7c15 }
    }

    /// Uniform in `[0, 1)` (SplitMix64).
    fn uniform(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    /// The next token for one row of logits.
    pub fn pick(&mut self, logits: &[f32]) -> u32 {
        if self.config.temperature <= 0.0 || logits.len() < 2 {
            return argmax(logits);
        }
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
        if self.config.top_k > 0 {
            order.truncate(self.config.top_k);
        }
        let max = logits[order[0] as usize];
        let t = self.config.temperature;
        let mut probs: Vec<f32> =
            order.iter().map(|&i| ((logits[i as usize] - max) / t).exp()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        // Nucleus: the shortest prefix whose mass reaches top_p.
        let mut mass = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            mass += p;
            if mass >= self.config.top_p {
                keep = i + 1;
                break;
            }
        }
        let kept: f32 = probs[..keep].iter().sum();
        let mut r = self.uniform() * kept;
        for (i, p) in probs[..keep].iter().enumerate() {
            r -= p;
            if r < 0.0 {
                return order[i];
            }
        }
        order[keep - 1]
    }
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_arg_max() {
        assert_eq!(Sampler::new(Sampling::GREEDY).pick(&[0.1, 3.0, -1.0, 3.0]), 1);
    }

    #[test]
    fn sampling_follows_the_distribution_and_respects_top_k() {
        let logits = [2.0f32.ln(), 1.0f32.ln(), 1.0f32.ln(), -100.0];
        let cfg = Sampling { temperature: 1.0, top_k: 0, top_p: 1.0, seed: 7 };
        let mut s = Sampler::new(cfg);
        let mut counts = [0usize; 4];
        for _ in 0..20_000 {
            counts[s.pick(&logits) as usize] += 1;
        }
        // Probabilities 1/2, 1/4, 1/4, ~0.
        assert!((counts[0] as f32 / 20_000.0 - 0.5).abs() < 0.02, "{counts:?}");
        assert!((counts[1] as f32 / 20_000.0 - 0.25).abs() < 0.02, "{counts:?}");
        assert_eq!(counts[3], 0);
        let mut top1 = Sampler::new(Sampling { top_k: 1, ..cfg });
        assert!((0..100).all(|_| top1.pick(&logits) == 0));
        let mut nucleus = Sampler::new(Sampling { top_p: 0.5, ..cfg });
        assert!((0..100).all(|_| nucleus.pick(&logits) == 0));
    }

    #[test]
    fn same_seed_same_choices() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let cfg = Sampling { temperature: 0.8, top_k: 20, top_p: 0.9, seed: 42 };
        let (mut a, mut b) = (Sampler::new(cfg), Sampler::new(cfg));
        let run_a: Vec<u32> = (0..30).map(|_| a.pick(&logits)).collect();
        let run_b: Vec<u32> = (0..30).map(|_| b.pick(&logits)).collect();
        assert_eq!(run_a, run_b);
    }
}
