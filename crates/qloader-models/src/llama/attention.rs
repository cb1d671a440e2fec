//! Causal grouped-query attention over the KV cache: each of `heads` query
//! heads attends with key/value head `head / (heads / kv_heads)` to every
//! position up to its own (or, with a sliding window of `w`, to the last `w`
//! of them). One new token takes dot products per position;
//! a run of new tokens (prefill, perplexity windows) takes two GEMMs per
//! head, `S = Q·Kᵀ` and `O = softmax(S)·V`. Heads (and single tokens' heads)
//! are spread over the thread team.

use qloader_kernels::attention::{attend, HeadView};
use qloader_kernels::gemm::{gemm_strided, Strided, GEMM_MIN_ROWS};
use qloader_kernels::{rowwise, team};

use super::kv_cache::HeadMajor;
use crate::ops::soft_cap;

/// Shapes of one attention call.
pub(crate) struct AttentionShape {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Positions a token sees, itself included; `None`: all before it.
    pub window: Option<usize>,
    /// Factor on the scores (usually `1/√head_dim`).
    pub scale: f32,
    /// Scores soft-capped at this, `cap·tanh(s/cap)`, before the softmax.
    pub softcap: Option<f32>,
}

impl AttentionShape {
    /// The first position a token at `pos` sees.
    fn first_seen(&self, pos: usize) -> usize {
        self.window.map_or(0, |w| (pos + 1).saturating_sub(w))
    }

    fn width(&self) -> usize {
        self.heads * self.head_dim
    }

    #[cfg(test)]
    fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// Attention of `n` new tokens at positions `start..start + n`: `q` is
/// `n × heads·d`, `keys`/`values` hold positions `0..start + n` head-major,
/// the result goes to `out` (`n × heads·d`). Heads (and tokens) are spread
/// over the thread team.
pub(crate) fn causal_attention(
    s: &AttentionShape,
    q: &[f32],
    keys: HeadMajor<'_>,
    values: HeadMajor<'_>,
    n: usize,
    start: usize,
    out: &mut [f32],
) {
    // The per-token kernel has no soft-capping: capped scores take the
    // GEMM path, which writes every score out.
    if n >= GEMM_MIN_ROWS || s.softcap.is_some() {
        batched(s, q, keys, values, n, start, out)
    } else {
        per_token(s, q, keys, values, n, start, out)
    }
}

/// Token by token, one key/value head and its query heads at a time: scores
/// against each visible position, softmax, weighted sum of values (one
/// vectorised pass each). The query heads of a group read the same keys and
/// values, which stay in cache between them.
fn per_token(
    s: &AttentionShape,
    q: &[f32],
    keys: HeadMajor<'_>,
    values: HeadMajor<'_>,
    n: usize,
    start: usize,
    out: &mut [f32],
) {
    let d = s.head_dim;
    let group = s.heads / s.kv_heads;
    let scale = s.scale;
    // Items are (token, key/value head) pairs: `group·d` outputs each, in
    // `out`'s order.
    team::for_each_item_mut(&mut out[..n * s.width()], group * d, |item, o| {
        let (t, kv) = (item / s.kv_heads, item % s.kv_heads);
        let first = s.first_seen(start + t);
        let visible = start + t + 1 - first;
        let (k, v) = (&keys.head(kv)[first * d..], &values.head(kv)[first * d..]);
        let (k, v) = (
            HeadView { data: k, stride: d, offset: 0, d },
            HeadView { data: v, stride: d, offset: 0, d },
        );
        let qs = &q[item * group * d..(item + 1) * group * d];
        // One scores buffer per thread, kept between tokens (no allocation
        // per token once it has grown to the context length).
        SCORES.with_borrow_mut(|scores| {
            scores.resize(scores.len().max(group * visible), 0.0);
            attend(qs, k, v, visible, scale, &mut scores[..group * visible], o);
        });
    });
}

thread_local! {
    /// The attention scores of one (token, key head) item.
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Query rows per block of the batched path: a block's scores (`64 ×
/// visible`) stay in cache, and keys past its last row are never touched.
const QUERY_BLOCK: usize = 64;

/// Per head (spread over the team), per block of query rows: `S =
/// Q·Kᵀ/√d` over the positions the block's rows see (from the first row's
/// first to the last row's own), causal and window mask, row softmax, `O =
/// S·V`.
fn batched(
    s: &AttentionShape,
    q: &[f32],
    keys: HeadMajor<'_>,
    values: HeadMajor<'_>,
    n: usize,
    start: usize,
    out: &mut [f32],
) {
    let (width, d) = (s.width(), s.head_dim);
    let group = s.heads / s.kv_heads;
    let softmax = rowwise::ops().scaled_softmax;
    // Head-major results (`heads × n × d`), spread into `out` at the end.
    let mut by_head = vec![0.0f32; s.heads * n * d];
    team::for_each_item_mut(&mut by_head, n * d, |head, o| {
        let (kh, vh) = (keys.head(head / group), values.head(head / group));
        let mut scores = vec![0.0f32; QUERY_BLOCK.min(n) * (start + n)];
        for r0 in (0..n).step_by(QUERY_BLOCK) {
            let rows = QUERY_BLOCK.min(n - r0);
            let lo = s.first_seen(start + r0);
            let seen = start + r0 + rows - lo;
            let qb = Strided { data: &q[r0 * width + head * d..], rows, cols: d, stride: width };
            let kb = Strided { data: &kh[lo * d..], rows: seen, cols: d, stride: d };
            let sb = &mut scores[..rows * seen];
            gemm_strided(qb, kb, true, sb, seen);
            for (t, row) in sb.chunks_exact_mut(seen).enumerate() {
                let pos = start + r0 + t;
                let (first, end) = (s.first_seen(pos) - lo, pos + 1 - lo);
                let seen = &mut row[first..end];
                match s.softcap {
                    Some(cap) => {
                        seen.iter_mut().for_each(|v| *v *= s.scale);
                        soft_cap(seen, cap);
                        softmax(seen, 1.0);
                    }
                    None => softmax(seen, s.scale),
                }
                row[..first].fill(0.0);
                row[end..].fill(0.0);
            }
            let sv = Strided { data: sb, rows, cols: seen, stride: seen };
            let vb = Strided { data: &vh[lo * d..], rows: seen, cols: d, stride: d };
            gemm_strided(sv, vb, false, &mut o[r0 * d..(r0 + rows) * d], d);
        }
    });
    for (head, o) in by_head.chunks_exact(n * d).enumerate() {
        for (t, v) in o.chunks_exact(d).enumerate() {
            out[t * width + head * d..t * width + (head + 1) * d].copy_from_slice(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama::KvCache;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 997) as f32 - 498.0) / 400.0).collect()
    }

    /// Plain attention over position-major keys and values, in `f64`.
    fn reference(
        s: &AttentionShape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        n: usize,
        start: usize,
    ) -> Vec<f32> {
        let (d, group) = (s.head_dim, s.heads / s.kv_heads);
        let mut out = vec![0.0f32; n * s.width()];
        for t in 0..n {
            for head in 0..s.heads {
                let kv = head / group;
                let visible = start + t + 1;
                let first = s.first_seen(start + t);
                let scores: Vec<f64> = (0..visible)
                    .map(|p| {
                        (0..d)
                            .map(|c| {
                                q[t * s.width() + head * d + c] as f64
                                    * k[p * s.kv_width() + kv * d + c] as f64
                            })
                            .sum::<f64>()
                            * s.scale as f64
                    })
                    .map(|x| s.softcap.map_or(x, |c| c as f64 * (x / c as f64).tanh()))
                    .collect();
                let seen = |p: usize| p >= first;
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 =
                    (0..visible).filter(|&p| seen(p)).map(|p| (scores[p] - max).exp()).sum();
                for c in 0..d {
                    let o: f64 = (0..visible)
                        .filter(|&p| seen(p))
                        .map(|p| {
                            (scores[p] - max).exp() / z * v[p * s.kv_width() + kv * d + c] as f64
                        })
                        .sum();
                    out[t * s.width() + head * d + c] = o as f32;
                }
            }
        }
        out
    }

    fn shape(
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        window: Option<usize>,
        softcap: Option<f32>,
    ) -> AttentionShape {
        let scale = 1.0 / (head_dim as f32).sqrt();
        AttentionShape { heads, kv_heads, head_dim, window, scale, softcap }
    }

    #[test]
    fn batched_and_per_token_equal_plain_attention() {
        let shapes = [
            shape(6, 2, 8, None, None),
            shape(9, 3, 64, None, None),
            shape(6, 2, 8, Some(5), None),
            shape(4, 4, 16, Some(70), None),
            shape(4, 2, 16, Some(9), Some(1.5)),
        ];
        for (s, n, start) in shapes.iter().flat_map(|s| {
            [(1, 0), (3, 7), (9, 0), (10, 0), (12, 5), (40, 3), (70, 2)].map(|(n, st)| (s, n, st))
        }) {
            let total = start + n;
            let q = values(n * s.width(), 1);
            let keys = values(total * s.kv_width(), 2);
            let vals = values(total * s.kv_width(), 3);
            let mut cache = KvCache::new(1, s.kv_heads, s.head_dim, total + 2);
            // The cached positions, then the new ones, as a decoder appends them.
            let split = start * s.kv_width();
            cache.append(0, &keys[..split], &vals[..split]);
            cache.append(0, &keys[split..], &vals[split..]);
            let (kc, vc) = cache.layer(0);
            let want = reference(s, &q, &keys, &vals, n, start);
            let mut a = vec![f32::NAN; n * s.width()];
            batched(s, &q, kc, vc, n, start, &mut a);
            let mut b = vec![f32::NAN; n * s.width()];
            per_token(s, &q, kc, vc, n, start, &mut b);
            // Capped scores never take the per-token kernel.
            let checked = if s.softcap.is_some() { 1 } else { 2 };
            for (what, got) in [("batched", &a), ("per token", &b)].into_iter().take(checked) {
                let worst =
                    got.iter().zip(&want).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                assert!(worst < 1e-5, "{what}: n {n} start {start}: {worst}");
            }
        }
    }
}
