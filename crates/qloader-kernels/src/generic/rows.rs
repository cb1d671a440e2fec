//! Portable row kernels: the dot product of one activation row with one
//! weight row, per format. Written with eight independent accumulators so the
//! compiler vectorises them for the baseline target; they are the `generic`
//! tier of the dispatch table.

use qloader_format::int4::{BlockInt4, INT4_GROUP};

use crate::quantize::int4_dequantize_block;

/// `Σ a[i]·b[i]`.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let (ac, at) = a.split_at(a.len() / 8 * 8);
    let (bc, bt) = b.split_at(ac.len());
    for (x, w) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += x[l] * w[l];
        }
    }
    let tail: f32 = at.iter().zip(bt).map(|(x, w)| x * w).sum();
    acc.iter().sum::<f32>() + tail
}

/// `Σ x[i]·q[i]` (the caller applies the row scale).
pub fn dot_int8(x: &[f32], q: &[i8]) -> f32 {
    debug_assert_eq!(x.len(), q.len());
    let mut acc = [0.0f32; 8];
    let (xc, xt) = x.split_at(x.len() / 8 * 8);
    let (qc, qt) = q.split_at(xc.len());
    for (a, w) in xc.chunks_exact(8).zip(qc.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += a[l] * w[l] as f32;
        }
    }
    let tail: f32 = xt.iter().zip(qt).map(|(a, &w)| a * w as f32).sum();
    acc.iter().sum::<f32>() + tail
}

/// `Σ x[i]·w[i]` where `w` is one row of int4 groups covering `x.len()`
/// columns (the last group may be partial).
pub fn dot_int4(x: &[f32], blocks: &[BlockInt4]) -> f32 {
    debug_assert_eq!(blocks.len(), x.len().div_ceil(INT4_GROUP));
    let mut total = 0.0f32;
    for (xg, block) in x.chunks(INT4_GROUP).zip(blocks) {
        let values = int4_dequantize_block(block);
        total += dot_f32(xg, &values[..xg.len()]);
    }
    total
}
