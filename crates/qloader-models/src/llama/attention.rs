//! Causal grouped-query attention over the KV cache: each of `heads` query
//! heads attends with key/value head `head / (heads / kv_heads)` to every
//! position up to its own. One new token takes dot products per position;
//! a run of new tokens (prefill, perplexity windows) takes two GEMMs per
//! head, `S = Q·Kᵀ` and `O = softmax(S)·V`.

use qloader_kernels::gemm::{gemm_f32, matmul_nn_f32, GEMM_MIN_ROWS};
use rayon::prelude::*;

use crate::ops;

/// Shapes of one attention call.
pub(crate) struct AttentionShape {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
}

impl AttentionShape {
    fn width(&self) -> usize {
        self.heads * self.head_dim
    }

    fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// Attention of `n` new tokens at positions `start..start + n`: `q` is
/// `n × heads·d`, `keys`/`values` hold positions `0..start + n`
/// (`× kv_heads·d`), the result is `n × heads·d`.
pub(crate) fn causal_attention(
    s: &AttentionShape,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n: usize,
    start: usize,
) -> Vec<f32> {
    if n >= GEMM_MIN_ROWS {
        batched(s, q, keys, values, n, start)
    } else {
        per_token(s, q, keys, values, n, start)
    }
}

/// Token by token, dot products against each visible position.
fn per_token(
    s: &AttentionShape,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n: usize,
    start: usize,
) -> Vec<f32> {
    let (width, kv_width, d) = (s.width(), s.kv_width(), s.head_dim);
    let group = s.heads / s.kv_heads;
    let scale = 1.0 / (d as f32).sqrt();
    let mut attended = vec![0.0f32; n * width];
    attended.par_chunks_mut(width).zip(q.par_chunks(width)).enumerate().for_each(
        |(t, (out, qt))| {
            let visible = start + t + 1;
            let mut scores = vec![0.0f32; visible];
            for head in 0..s.heads {
                let kv = head / group;
                let qh = &qt[head * d..(head + 1) * d];
                for (p, score) in scores.iter_mut().enumerate() {
                    let kp = &keys[p * kv_width + kv * d..p * kv_width + (kv + 1) * d];
                    *score = qh.iter().zip(kp).map(|(a, b)| a * b).sum::<f32>() * scale;
                }
                ops::softmax(&mut scores);
                let oh = &mut out[head * d..(head + 1) * d];
                for (p, &w) in scores.iter().enumerate() {
                    let vp = &values[p * kv_width + kv * d..p * kv_width + (kv + 1) * d];
                    for (o, v) in oh.iter_mut().zip(vp) {
                        *o += w * v;
                    }
                }
            }
        },
    );
    attended
}

/// Copies columns `col..col + d` of the `rows × stride` matrix `m`.
fn columns(m: &[f32], rows: usize, stride: usize, col: usize, d: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * d);
    for r in 0..rows {
        out.extend_from_slice(&m[r * stride + col..r * stride + col + d]);
    }
    out
}

/// Per head: `S = Q·Kᵀ/√d`, causal mask, row softmax, `O = S·V`.
fn batched(
    s: &AttentionShape,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n: usize,
    start: usize,
) -> Vec<f32> {
    let (width, kv_width, d) = (s.width(), s.kv_width(), s.head_dim);
    let group = s.heads / s.kv_heads;
    let total = start + n;
    let scale = 1.0 / (d as f32).sqrt();
    let mut attended = vec![0.0f32; n * width];
    let mut scores = vec![0.0f32; n * total];
    let mut out = vec![0.0f32; n * d];
    for kv in 0..s.kv_heads {
        let kh = columns(keys, total, kv_width, kv * d, d);
        let vh = columns(values, total, kv_width, kv * d, d);
        for head in kv * group..(kv + 1) * group {
            let qh = columns(q, n, width, head * d, d);
            gemm_f32(&qh, n, d, &kh, total, &mut scores);
            scores.par_chunks_mut(total).enumerate().for_each(|(t, row)| {
                let visible = start + t + 1;
                row[..visible].iter_mut().for_each(|v| *v *= scale);
                ops::softmax(&mut row[..visible]);
                row[visible..].fill(0.0);
            });
            matmul_nn_f32(&scores, n, total, &vh, d, &mut out);
            for (t, o) in out.chunks_exact(d).enumerate() {
                attended[t * width + head * d..t * width + (head + 1) * d].copy_from_slice(o);
            }
        }
    }
    attended
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 997) as f32 - 498.0) / 400.0).collect()
    }

    #[test]
    fn batched_equals_per_token() {
        let s = AttentionShape { heads: 6, kv_heads: 2, head_dim: 8 };
        for (n, start) in [(9, 0), (12, 5), (40, 3)] {
            let total = start + n;
            let q = values(n * s.width(), 1);
            let keys = values(total * s.kv_width(), 2);
            let vals = values(total * s.kv_width(), 3);
            let a = batched(&s, &q, &keys, &vals, n, start);
            let b = per_token(&s, &q, &keys, &vals, n, start);
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "n {n} start {start}: {worst}");
        }
    }
}
