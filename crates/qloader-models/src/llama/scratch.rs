//! The decoder's working buffers for one forward pass — normalised input,
//! projections, attention output, feed-forward activations — and the rotary
//! table of the pass's positions. They live in the [`super::KvCache`] of the
//! sequence, so decoding token after token reuses them instead of
//! allocating.

/// Buffers reused across forward passes of one sequence.
#[derive(Default)]
pub(crate) struct Scratch {
    pub h: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub attended: Vec<f32>,
    pub proj: Vec<f32>,
    pub gate: Vec<f32>,
    pub up: Vec<f32>,
    pub rope: RopeTable,
}

/// `len` values of `buf`, grown (never shrunk) as needed; contents are
/// whatever was there.
pub(crate) fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// `cos` and `sin` of every rotary angle of a run of positions: position
/// `start + t`, pair `i` at `t·pairs + i`, in `f64` as the rotation is
/// applied.
#[derive(Default)]
pub(crate) struct RopeTable {
    pairs: usize,
    cos: Vec<f64>,
    sin: Vec<f64>,
}

impl RopeTable {
    /// Fills the table for positions `start..start + n` with `inv_freq`
    /// (`base^(−2i/d)` per pair `i`).
    pub fn fill(&mut self, start: usize, n: usize, inv_freq: &[f64]) {
        self.pairs = inv_freq.len();
        self.cos.clear();
        self.sin.clear();
        for t in 0..n {
            for &f in inv_freq {
                let (sin, cos) = ((start + t) as f64 * f).sin_cos();
                self.cos.push(cos);
                self.sin.push(sin);
            }
        }
    }

    /// Rotates adjacent pairs `(x[2i], x[2i+1])` of one head vector of the
    /// pass's token `t` (the pairing GGUF's Llama tensors are stored for).
    pub fn rotate(&self, x: &mut [f32], t: usize) {
        let (cos, sin) = (&self.cos[t * self.pairs..], &self.sin[t * self.pairs..]);
        for ((pair, &c), &s) in x.chunks_exact_mut(2).zip(cos).zip(sin) {
            let (a, b) = (pair[0] as f64, pair[1] as f64);
            pair[0] = (a * c - b * s) as f32;
            pair[1] = (a * s + b * c) as f32;
        }
    }
}

/// `base^(−2i/d)` for each of the `d/2` pairs of a head.
pub(crate) fn rope_inv_freq(base: f32, d: usize) -> Vec<f64> {
    (0..d / 2).map(|i| (base as f64).powf(-2.0 * i as f64 / d as f64)).collect()
}
