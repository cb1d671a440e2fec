//! The decoder's working buffers for one forward pass — normalised input,
//! projections, attention output, feed-forward activations — and the rotary
//! table of the pass's positions. They live in the [`super::KvCache`] of the
//! sequence, so decoding token after token reuses them instead of
//! allocating.

use super::config::RopeStyle;

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
    /// The local layers' table, for models whose local layers have their
    /// own RoPE base.
    pub rope_local: RopeTable,
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
    style: RopeStyle,
    pairs: usize,
    cos: Vec<f64>,
    sin: Vec<f64>,
}

impl RopeTable {
    /// Fills the table for positions `start..start + n` with `inv_freq`
    /// (`base^(−2i/d)` per pair `i`), for heads paired as `style` says.
    pub fn fill(&mut self, start: usize, n: usize, inv_freq: &[f64], style: RopeStyle) {
        self.style = style;
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

    /// Rotates the pairs of one head vector of the pass's token `t`: pair
    /// `i` is `(x[2i], x[2i+1])` ([`RopeStyle::Interleaved`]) or `(x[i],
    /// x[i + d/2])` ([`RopeStyle::Halves`]).
    pub fn rotate(&self, x: &mut [f32], t: usize) {
        let (cos, sin) = (&self.cos[t * self.pairs..], &self.sin[t * self.pairs..]);
        let turn = |a: &mut f32, b: &mut f32, c: f64, s: f64| {
            let (x0, x1) = (*a as f64, *b as f64);
            *a = (x0 * c - x1 * s) as f32;
            *b = (x0 * s + x1 * c) as f32;
        };
        match self.style {
            RopeStyle::Interleaved => {
                for ((pair, &c), &s) in x.chunks_exact_mut(2).zip(cos).zip(sin) {
                    if let [a, b] = pair {
                        turn(a, b, c, s);
                    }
                }
            }
            RopeStyle::Halves => {
                let (lo, hi) = x.split_at_mut(x.len() / 2);
                for (((a, b), &c), &s) in lo.iter_mut().zip(hi).zip(cos).zip(sin) {
                    turn(a, b, c, s);
                }
            }
        }
    }
}

/// `base^(−2i/d) / scale` for each of the `d/2` pairs of a head (`scale`:
/// linear RoPE scaling, positions divided by it).
pub(crate) fn rope_inv_freq(base: f32, d: usize, scale: Option<f32>) -> Vec<f64> {
    let scale = scale.map_or(1.0, f64::from);
    (0..d / 2).map(|i| (base as f64).powf(-2.0 * i as f64 / d as f64) / scale).collect()
}
