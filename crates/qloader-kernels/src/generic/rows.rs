//! Portable row kernels: the dot product of one activation row with one
//! weight row, per format. Written with eight independent accumulators so the
//! compiler vectorises them for the baseline target; they are the `generic`
//! tier of the dispatch table.

use half::f16;
use qloader_format::grouped::{unpack_block, BLOCK};

use crate::quantize::GroupedRow;

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

/// `Σ x[i]·w[i]` with `f16` weights.
pub fn dot_f16(x: &[f32], w: &[f16]) -> f32 {
    debug_assert_eq!(x.len(), w.len());
    let mut acc = [0.0f32; 8];
    let (xc, xt) = x.split_at(x.len() / 8 * 8);
    let (wc, wt) = w.split_at(xc.len());
    for (a, b) in xc.chunks_exact(8).zip(wc.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += a[l] * b[l].to_f32();
        }
    }
    let tail: f32 = xt.iter().zip(wt).map(|(a, b)| a * b.to_f32()).sum();
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

/// [`dot_f32`] of one activation row with four weight rows.
pub fn dot_f32_w4(x: &[f32], ws: &[&[f32]; 4], out: &mut [f32; 4]) {
    for (o, w) in out.iter_mut().zip(ws) {
        *o = dot_f32(x, w);
    }
}

/// [`dot_int8`] of one activation row with four code rows.
pub fn dot_int8_w4(x: &[f32], qs: &[&[i8]; 4], out: &mut [f32; 4]) {
    for (o, q) in out.iter_mut().zip(qs) {
        *o = dot_int8(x, q);
    }
}

/// Writes the `f32` values of a grouped row into `out` (`out.len()` ≤ the
/// row's columns; the row is expanded from its start).
pub fn unpack_grouped(row: GroupedRow<'_>, out: &mut [f32]) {
    let layout = row.layout;
    let blocks_per_group = layout.group() / BLOCK;
    // Groups are 1, 2 or 4 blocks: a shift, not a division, per block.
    let group_shift = blocks_per_group.trailing_zeros();
    let blocks = row.codes.chunks_exact(layout.block_bytes());
    for (b, (ob, packed)) in out.chunks_mut(BLOCK).zip(blocks).enumerate() {
        let g = b >> group_shift;
        let (d, m) = (row.scales[g].to_f32(), row.offsets[g].to_f32());
        let codes = unpack_block(layout.bits(), packed);
        for (o, &q) in ob.iter_mut().zip(codes.iter()) {
            *o = d * q as f32 + m;
        }
    }
}

/// Writes the `f32` values of an `f16` row into `out`.
pub fn unpack_f16(w: &[f16], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(w) {
        *o = v.to_f32();
    }
}

/// `Σ a[i]·q[i]` over int8 activation codes and int8 weight codes, exact.
pub fn dot_int8_codes(a: &[i8], q: &[i8]) -> i32 {
    a.iter().zip(q).map(|(&x, &w)| x as i32 * w as i32).sum()
}

/// `Σ_g s_g · Σ_{i ∈ g} a[i]·q[i]` over int8 activation codes quantized in
/// groups of `group` columns with one scale `s_g` each, and int8 weight
/// codes: each group's integer sum exact, the scaled sums added in order.
pub fn dot_int8_a8(a: &[i8], q: &[i8], scales: &[f32], group: usize) -> f32 {
    let n = a.len().min(q.len());
    a[..n]
        .chunks(group)
        .zip(q[..n].chunks(group))
        .zip(scales)
        .map(|((a, q), &s)| dot_int8_codes(a, q) as f32 * s)
        .sum()
}
