//! De-quantization of ggml's lattice and ternary types, one 256-element
//! super-block at a time: IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S,
//! IQ1_M, TQ1_0 and TQ2_0. [`dequantize`](super::dequantize) dispatches here.
//!
//! The IQ types store, per group of eight (or four) elements, an index into
//! one of ggml's fixed grids ([`super::iq_grids`]) whose entries are the
//! group's magnitudes (IQ1: signed values), plus sign bits and small
//! sub-block scales under an f16 super-block scale. The TQ types store
//! ternary digits. As in [`super::dequant`], each function takes exactly one
//! block's bytes, every grid index is masked to the grid's size, and the
//! arithmetic is ggml's reference de-quantizers' (same operations in the same
//! order), so results match llama.cpp bit for bit.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use half::f16;

use super::dequant::half_at;
use super::iq_grids::{
    IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS,
};

/// The offset IQ1_S and IQ1_M add to every grid value (ggml's `IQ1S_DELTA`),
/// negated by a per-group bit.
const IQ1_DELTA: f32 = 0.125;

/// The little-endian u16 at `b[i..i + 2]`.
fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

/// The little-endian u32 at `b[i..i + 4]`.
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// `y[j] = scale * grid[j]`, times −1 where bit `j` of `signs` is set.
fn signed_group(y: &mut [f32], scale: f32, grid: &[u8], signs: u8) {
    for (j, (v, &g)) in y.iter_mut().zip(grid).enumerate() {
        let sign = if signs & (1 << j) != 0 { -1.0 } else { 1.0 };
        *v = scale * f32::from(g) * sign;
    }
}

/// `y[j] = scale * (grid[j] + delta)`, the grid's bytes read as `i8`.
fn iq1_group(y: &mut [f32], scale: f32, grid: u64, delta: f32) {
    for (v, g) in y.iter_mut().zip(grid.to_le_bytes()) {
        *v = scale * (f32::from(g as i8) + delta);
    }
}

/// The scale `d * (0.5 + s) * k` of an IQ2/IQ3_XXS sub-block with 4-bit
/// scale `s` (`k` is 1/4 for IQ2, 1/2 for IQ3_XXS).
fn half_step_scale(d: f32, s: u32, k: f32) -> f32 {
    d * (0.5 + s as f32) * k
}

/// IQ2_XXS: f16 `d`, then per 32 elements eight bytes: four grid indices
/// (one per group of eight, into [`IQ2XXS_GRID`]) and a little-endian u32
/// whose bits `7l..7l + 7` index [`KSIGNS_IQ2XS`] for group `l`'s signs and
/// whose top four bits are the scale `s`. Value
/// `d * (0.5 + s) * 0.25 * grid * ±1`.
pub(super) fn iq2_xxs(b: &[u8; 66], y: &mut [f32; 256]) {
    let d = half_at(b, 0);
    for (q, out) in b[2..].chunks_exact(8).zip(y.chunks_exact_mut(32)) {
        let aux = u32_at(q, 4);
        let db = half_step_scale(d, aux >> 28, 0.25);
        for (l, (&index, group)) in q[..4].iter().zip(out.chunks_exact_mut(8)).enumerate() {
            let grid = IQ2XXS_GRID[usize::from(index)].to_le_bytes();
            let signs = KSIGNS_IQ2XS[((aux >> (7 * l)) & 127) as usize];
            signed_group(group, db, &grid, signs);
        }
    }
}

/// IQ2_XS: f16 `d`, 32 little-endian u16 codes (one per group of eight: low
/// nine bits index [`IQ2XS_GRID`], high seven bits index [`KSIGNS_IQ2XS`]),
/// then one byte per 32 elements whose low nibble scales its first 16
/// elements and high nibble the rest. Value `d * (0.5 + s) * 0.25 * grid * ±1`.
pub(super) fn iq2_xs(b: &[u8; 74], y: &mut [f32; 256]) {
    let d = half_at(b, 0);
    let (codes, scales) = (&b[2..66], &b[66..]);
    for ((q, &s), out) in codes.chunks_exact(8).zip(scales).zip(y.chunks_exact_mut(32)) {
        let db = [
            half_step_scale(d, u32::from(s & 0x0f), 0.25),
            half_step_scale(d, u32::from(s >> 4), 0.25),
        ];
        for (l, (code, group)) in q.chunks_exact(2).zip(out.chunks_exact_mut(8)).enumerate() {
            let code = u16_at(code, 0);
            let grid = IQ2XS_GRID[usize::from(code & 511)].to_le_bytes();
            let signs = KSIGNS_IQ2XS[usize::from(code >> 9)];
            signed_group(group, db[l / 2], &grid, signs);
        }
    }
}

/// IQ2_S: f16 `d`, 32 low index bytes, 32 sign bytes (bit `j` negates element
/// `j` of the group), 8 high-bit bytes and 8 scale bytes. Group `l` (0..4) of
/// sub-block `i` (32 elements) indexes [`IQ2S_GRID`] with low byte `4i + l`
/// and bits `2l..2l + 2` of high byte `i` as bits 8 and 9; its scale nibble
/// is the low (`l` < 2) or high one of scale byte `i`. Value
/// `d * (0.5 + s) * 0.25 * grid * ±1`.
pub(super) fn iq2_s(b: &[u8; 82], y: &mut [f32; 256]) {
    let d = half_at(b, 0);
    let (low, signs, high, scales) = (&b[2..34], &b[34..66], &b[66..74], &b[74..]);
    for (i, out) in y.chunks_exact_mut(32).enumerate() {
        let db = [
            half_step_scale(d, u32::from(scales[i] & 0x0f), 0.25),
            half_step_scale(d, u32::from(scales[i] >> 4), 0.25),
        ];
        for (l, group) in out.chunks_exact_mut(8).enumerate() {
            let index =
                usize::from(low[4 * i + l]) | ((usize::from(high[i]) << (8 - 2 * l)) & 0x300);
            let grid = IQ2S_GRID[index].to_le_bytes();
            signed_group(group, db[l / 2], &grid, signs[4 * i + l]);
        }
    }
}

/// IQ3_XXS: f16 `d`, 64 index bytes into [`IQ3XXS_GRID`] (one per group of
/// four), then per 32 elements a little-endian u32 whose bits `7l..7l + 7`
/// index [`KSIGNS_IQ2XS`] for its eight-element group `l` and whose top four
/// bits are the scale `s`. Value `d * (0.5 + s) * 0.5 * grid * ±1`.
pub(super) fn iq3_xxs(b: &[u8; 98], y: &mut [f32; 256]) {
    let d = half_at(b, 0);
    let (indices, scales_and_signs) = (&b[2..66], &b[66..]);
    for (i, (q, out)) in indices.chunks_exact(8).zip(y.chunks_exact_mut(32)).enumerate() {
        let aux = u32_at(scales_and_signs, 4 * i);
        let db = half_step_scale(d, aux >> 28, 0.5);
        for (l, group) in out.chunks_exact_mut(8).enumerate() {
            let signs = KSIGNS_IQ2XS[((aux >> (7 * l)) & 127) as usize];
            let first = IQ3XXS_GRID[usize::from(q[2 * l])].to_le_bytes();
            let second = IQ3XXS_GRID[usize::from(q[2 * l + 1])].to_le_bytes();
            let (lo, hi) = group.split_at_mut(4);
            signed_group(lo, db, &first, signs);
            signed_group(hi, db, &second, signs >> 4);
        }
    }
}

/// IQ3_S: f16 `d`, 64 low index bytes (one per group of four), 8 high-bit
/// bytes, 32 sign bytes (one per eight elements, bit `j` negates element `j`)
/// and 4 scale bytes (a nibble per 32 elements, low nibble first). Group
/// `k` (0..8) of sub-block `i` indexes [`IQ3S_GRID`] with low byte `8i + k`
/// and bit `k` of high byte `i` as bit 8. Value `d * (1 + 2s) * grid * ±1`.
pub(super) fn iq3_s(b: &[u8; 110], y: &mut [f32; 256]) {
    let d = half_at(b, 0);
    let (low, high, signs, scales) = (&b[2..66], &b[66..74], &b[74..106], &b[106..]);
    for (i, out) in y.chunks_exact_mut(32).enumerate() {
        let s = (scales[i / 2] >> (4 * (i % 2))) & 0x0f;
        let db = d * f32::from(1 + 2 * u16::from(s));
        let h = usize::from(high[i]);
        for (l, group) in out.chunks_exact_mut(8).enumerate() {
            let first = usize::from(low[8 * i + 2 * l]) | ((h << (8 - 2 * l)) & 256);
            let second = usize::from(low[8 * i + 2 * l + 1]) | ((h << (7 - 2 * l)) & 256);
            let sign = signs[4 * i + l];
            let (lo, hi) = group.split_at_mut(4);
            signed_group(lo, db, &IQ3S_GRID[first].to_le_bytes(), sign);
            signed_group(hi, db, &IQ3S_GRID[second].to_le_bytes(), sign >> 4);
        }
    }
}

/// IQ1_S: f16 `d`, 32 low index bytes (one per group of eight), then per 32
/// elements a little-endian u16: bits `3l..3l + 3` are bits 8..11 of group
/// `l`'s index into [`IQ1S_GRID`], bits 12..15 the scale `s` and bit 15 the
/// sign of the offset `δ` = ±1/8. Value `d * (2s + 1) * (grid + δ)`.
pub(super) fn iq1_s(b: &[u8; 50], y: &mut [f32; 256]) {
    let d = half_at(b, 0);
    let (low, high) = (&b[2..34], &b[34..]);
    for (i, out) in y.chunks_exact_mut(32).enumerate() {
        let h = u16_at(high, 2 * i);
        let dl = d * f32::from(2 * ((h >> 12) & 7) + 1);
        let delta = if h & 0x8000 != 0 { -IQ1_DELTA } else { IQ1_DELTA };
        for (l, group) in out.chunks_exact_mut(8).enumerate() {
            let index = usize::from(low[4 * i + l]) | (usize::from((h >> (3 * l)) & 7) << 8);
            iq1_group(group, dl, IQ1S_GRID[index], delta);
        }
    }
}

/// IQ1_M: 32 low index bytes (one per group of eight), 16 high bytes (a
/// nibble per group: bits 8..11 of its index into [`IQ1S_GRID`], then the
/// sign of its offset `δ` = ±1/8), 8 scale bytes read as four little-endian u16s: 3-bit scales
/// `s`, four per u16 (one per 16 elements), and in their top nibbles the
/// bits of the f16 `d`. Value `d * (2s + 1) * (grid + δ)`.
pub(super) fn iq1_m(b: &[u8; 56], y: &mut [f32; 256]) {
    let (low, high) = (&b[..32], &b[32..48]);
    let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
    let d_bits =
        (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
    let d = f16::from_bits(d_bits).to_f32();
    for (i, out) in y.chunks_exact_mut(32).enumerate() {
        let shift = 6 * (i % 2);
        let dl = [
            d * f32::from(2 * ((sc[i / 2] >> shift) & 7) + 1),
            d * f32::from(2 * ((sc[i / 2] >> (shift + 3)) & 7) + 1),
        ];
        let (h0, h1) = (u16::from(high[2 * i]), u16::from(high[2 * i + 1]));
        let index = [(h0 << 8) & 0x700, (h0 << 4) & 0x700, (h1 << 8) & 0x700, (h1 << 4) & 0x700];
        let offset_bit = [h0 & 0x08, h0 & 0x80, h1 & 0x08, h1 & 0x80];
        for (l, group) in out.chunks_exact_mut(8).enumerate() {
            let grid = IQ1S_GRID[usize::from(u16::from(low[4 * i + l]) | index[l])];
            let delta = if offset_bit[l] != 0 { -IQ1_DELTA } else { IQ1_DELTA };
            iq1_group(group, dl[l / 2], grid, delta);
        }
    }
}

/// The ternary digit `n` places from the top of a TQ1_0 byte `q` (five
/// digits in base 3, stored as `q = ceil(x * 256 / 243)`): `q * 3^n` keeps
/// the digits from `n` on (mod 256), and `(q * 3) >> 8` takes the top one;
/// minus 1, times `d`.
fn trit(q: u8, pow3: u8, d: f32) -> f32 {
    let q = q.wrapping_mul(pow3);
    let digit = ((u16::from(q) * 3) >> 8) as i16;
    f32::from(digit - 1) * d
}

/// TQ1_0: 48 bytes of five ternary digits each, 4 bytes of four, f16 `d`.
/// Digit `n` of bytes 0..32 gives elements `32n..32n + 32`, digit `n` of
/// bytes 32..48 elements `160 + 16n..`, digit `n` of the last four bytes
/// elements `240 + 4n..`. Value `(digit - 1) * d`.
pub(super) fn tq1_0(b: &[u8; 54], y: &mut [f32; 256]) {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let d = half_at(b, 52);
    let (head, rest) = y.split_at_mut(160);
    let (middle, tail) = rest.split_at_mut(80);
    for (out, &p) in head.chunks_exact_mut(32).zip(&POW3) {
        for (v, &q) in out.iter_mut().zip(&b[..32]) {
            *v = trit(q, p, d);
        }
    }
    for (out, &p) in middle.chunks_exact_mut(16).zip(&POW3) {
        for (v, &q) in out.iter_mut().zip(&b[32..48]) {
            *v = trit(q, p, d);
        }
    }
    for (out, &p) in tail.chunks_exact_mut(4).zip(&POW3[..4]) {
        for (v, &q) in out.iter_mut().zip(&b[48..52]) {
            *v = trit(q, p, d);
        }
    }
}

/// TQ2_0: 64 bytes of four 2-bit codes each, f16 `d`. Each half of 128
/// elements uses 32 bytes; its quarter `l` (32 elements) takes bits
/// `2l..2l + 2` of those bytes in order. Value `(q - 1) * d`.
pub(super) fn tq2_0(b: &[u8; 66], y: &mut [f32; 256]) {
    let d = half_at(b, 64);
    for (codes, half) in b[..64].chunks_exact(32).zip(y.chunks_exact_mut(128)) {
        for (l, out) in half.chunks_exact_mut(32).enumerate() {
            for (v, &q) in out.iter_mut().zip(codes) {
                let q = i16::from((q >> (2 * l)) & 3);
                *v = f32::from(q - 1) * d;
            }
        }
    }
}
