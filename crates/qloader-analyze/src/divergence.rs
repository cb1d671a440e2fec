//! End-to-end measures of how far a perturbed model's output is from the
//! reference: the KL divergence of next-token distributions for decoders,
//! `1 − cosine` of embeddings for encoders.

use qloader_kernels::log_sum_exp::log_normaliser;
use rayon::prelude::*;

/// A decoder's reference next-token distributions, kept as probabilities
/// with each row's `Σ p log p`.
#[derive(Debug, Clone)]
pub struct ReferenceDistributions {
    vocab: usize,
    probs: Vec<f32>,
    neg_entropy: Vec<f64>,
}

impl ReferenceDistributions {
    /// From `rows × vocab` logits.
    pub fn from_logits(logits: &[f32], vocab: usize) -> Self {
        let mut probs = vec![0.0f32; logits.len()];
        let neg_entropy = probs
            .par_chunks_mut(vocab)
            .zip(logits.par_chunks(vocab))
            .map(|(p, row)| {
                let (max, log_z) = log_normaliser(row);
                for (pi, &v) in p.iter_mut().zip(row) {
                    *pi = ((v - max) as f64 - log_z).exp() as f32;
                }
                // With the stored (rounded) probabilities and the same sum
                // as `kl_sum`, so that identical rows give exactly zero.
                cross_entropy_sum(p, row, max, log_z)
            })
            .collect();
        Self { vocab, probs, neg_entropy }
    }

    /// Rows (positions) held.
    pub fn rows(&self) -> usize {
        self.neg_entropy.len()
    }

    /// Sum over rows of `KL(reference ‖ softmax(logits))` (nats); `logits`
    /// must have as many rows as the reference.
    pub fn kl_sum(&self, logits: &[f32]) -> f64 {
        debug_assert_eq!(logits.len(), self.probs.len());
        self.probs
            .par_chunks(self.vocab)
            .zip(logits.par_chunks(self.vocab))
            .zip(self.neg_entropy.par_iter())
            .map(|((p, row), &neg_h)| {
                let (max, log_z) = log_normaliser(row);
                (neg_h - cross_entropy_sum(p, row, max, log_z)).max(0.0)
            })
            .sum()
    }
}

/// `Σ pᵢ · log qᵢ` with `log qᵢ = (vᵢ − max) − log_z`, in 8 interleaved
/// partial sums (so the loop vectorises) added at the end.
fn cross_entropy_sum(p: &[f32], row: &[f32], max: f32, log_z: f64) -> f64 {
    const LANES: usize = 8;
    let term = |pi: f32, v: f32| pi as f64 * ((v - max) as f64 - log_z);
    let mut acc = [0.0f64; LANES];
    let body = p.len().min(row.len()) / LANES * LANES;
    for (ps, vs) in p[..body].chunks_exact(LANES).zip(row[..body].chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += term(ps[l], vs[l]);
        }
    }
    let tail: f64 = p[body..].iter().zip(&row[body..]).map(|(&pi, &v)| term(pi, v)).sum();
    acc.iter().sum::<f64>() + tail
}

/// `1 − cos(a, b)` (1 if either is zero).
pub fn one_minus_cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    if aa == 0.0 || bb == 0.0 {
        return 1.0;
    }
    (1.0 - ab / (aa * bb).sqrt()).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_of_identical_rows_is_zero_and_known_otherwise() {
        let logits = [0.0f32, 1.0, 2.0, 2.0, 1.0, 0.0];
        let r = ReferenceDistributions::from_logits(&logits, 3);
        assert_eq!(r.rows(), 2);
        assert_eq!(r.kl_sum(&logits), 0.0);
        // Shifting a row's logits by a constant changes nothing.
        let shifted: Vec<f32> = logits.iter().map(|v| v + 5.0).collect();
        assert!(r.kl_sum(&shifted) < 1e-6);
        // Uniform q against p: KL = log 3 − H(p).
        let uniform = [0.0f32; 6];
        let p: Vec<f64> = {
            let z: f64 = [0.0f64, 1.0, 2.0].iter().map(|v| v.exp()).sum();
            [0.0f64, 1.0, 2.0].iter().map(|v| v.exp() / z).collect()
        };
        let h: f64 = -p.iter().map(|q| q * q.ln()).sum::<f64>();
        let want = 2.0 * (3f64.ln() - h);
        assert!((r.kl_sum(&uniform) - want).abs() < 1e-6);
    }

    #[test]
    fn cosine_distance() {
        assert!(one_minus_cosine(&[1.0, 0.0], &[2.0, 0.0]).abs() < 1e-12);
        assert!((one_minus_cosine(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        assert_eq!(one_minus_cosine(&[0.0, 0.0], &[1.0, 0.0]), 1.0);
    }
}
