//! De-quantization of GGML tensor data to `f32`, one block at a time.
//!
//! Each block function takes exactly one block's bytes and writes exactly its
//! elements, so the only length checks are the ones [`dequantize`] makes up
//! front. The arithmetic follows ggml's reference de-quantizers (same
//! operations in the same order), so results match llama.cpp bit for bit.
//!
//! Supported: F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K,
//! Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS (Q5_K and IQ4_XS are
//! `int5k`'s and `nl4k`'s super-blocks, see [`crate::compact`]), and the lattice and ternary types
//! IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, TQ1_0, TQ2_0 (in
//! `gguf/dequant_iq.rs`). The FP4 (MXFP4, NVFP4), Q1_0/Q2_0 and integer
//! types are recognised by [`GgmlType`] but not de-quantized.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use half::{bf16, f16};

use super::dequant_iq as iq;
use super::types::GgmlType;
use crate::block32::{self, BlockLayout};
use crate::compact::{dequantize_row, CompactLayout};

/// Whether [`dequantize`] can convert tensors of type `ty`.
pub fn can_dequantize(ty: GgmlType) -> bool {
    use GgmlType as T;
    matches!(
        ty,
        T::F32
            | T::F16
            | T::BF16
            | T::F64
            | T::Q4_0
            | T::Q4_1
            | T::Q5_0
            | T::Q5_1
            | T::Q8_0
            | T::Q8_1
            | T::Q2K
            | T::Q3K
            | T::Q4K
            | T::Q5K
            | T::Q6K
            | T::Q8K
            | T::Iq4Nl
            | T::Iq4Xs
            | T::Iq2Xxs
            | T::Iq2Xs
            | T::Iq2S
            | T::Iq3Xxs
            | T::Iq3S
            | T::Iq1S
            | T::Iq1M
            | T::TQ1_0
            | T::TQ2_0
    )
}

/// Converts `bytes`, the data of `out.len()` elements of type `ty`, to `f32`
/// in `out`. Fails (without writing) if the type is not supported, if
/// `out.len()` is not a whole number of blocks, or if `bytes` is not exactly
/// that many blocks long.
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), String> {
    if !can_dequantize(ty) {
        return Err(format!("type {ty} is recognised but cannot be de-quantized yet"));
    }
    let (per_block, block_bytes) = (ty.block_elements(), ty.block_bytes());
    if !out.len().is_multiple_of(per_block) {
        return Err(format!(
            "{} elements is not a multiple of the {ty} block size {per_block}",
            out.len()
        ));
    }
    let blocks = out.len() / per_block;
    if blocks.checked_mul(block_bytes) != Some(bytes.len()) {
        return Err(format!(
            "{} elements of {ty} take {blocks} blocks of {block_bytes} bytes, but {} bytes were given",
            out.len(),
            bytes.len()
        ));
    }
    use GgmlType as T;
    match ty {
        T::F32 => each_block(bytes, out, |b: &[u8; 4], y: &mut [f32; 1]| {
            y[0] = f32::from_le_bytes(*b);
        }),
        T::F16 => each_block(bytes, out, |b: &[u8; 2], y: &mut [f32; 1]| {
            y[0] = f16::from_le_bytes(*b).to_f32();
        }),
        T::BF16 => each_block(bytes, out, |b: &[u8; 2], y: &mut [f32; 1]| {
            y[0] = bf16::from_le_bytes(*b).to_f32();
        }),
        T::F64 => each_block(bytes, out, |b: &[u8; 8], y: &mut [f32; 1]| {
            y[0] = f64::from_le_bytes(*b) as f32;
        }),
        T::Q4_0 => each_block(bytes, out, q4_0),
        T::Q4_1 => each_block(bytes, out, q4_1),
        T::Q5_0 => each_block(bytes, out, q5_0),
        T::Q5_1 => each_block(bytes, out, q5_1),
        T::Q8_0 => each_block(bytes, out, q8_0),
        T::Q8_1 => each_block(bytes, out, q8_1),
        T::Q2K => each_block(bytes, out, q2_k),
        T::Q3K => each_block(bytes, out, q3_k),
        T::Q4K => each_block(bytes, out, q4_k),
        T::Q5K => each_block(bytes, out, q5_k),
        T::Q6K => each_block(bytes, out, q6_k),
        T::Q8K => each_block(bytes, out, q8_k),
        T::Iq4Nl => each_block(bytes, out, iq4_nl),
        T::Iq4Xs => each_block(bytes, out, iq4_xs),
        T::Iq2Xxs => each_block(bytes, out, iq::iq2_xxs),
        T::Iq2Xs => each_block(bytes, out, iq::iq2_xs),
        T::Iq2S => each_block(bytes, out, iq::iq2_s),
        T::Iq3Xxs => each_block(bytes, out, iq::iq3_xxs),
        T::Iq3S => each_block(bytes, out, iq::iq3_s),
        T::Iq1S => each_block(bytes, out, iq::iq1_s),
        T::Iq1M => each_block(bytes, out, iq::iq1_m),
        T::TQ1_0 => each_block(bytes, out, iq::tq1_0),
        T::TQ2_0 => each_block(bytes, out, iq::tq2_0),
        _ => return Err(format!("type {ty} is recognised but cannot be de-quantized yet")),
    }
    Ok(())
}

/// Applies `f` to each block of `B` bytes and its `E` output elements. The
/// caller has checked that both slices hold the same whole number of blocks,
/// and `B`/`E` (fixed by `f`'s signature) match the type's table entry.
fn each_block<const B: usize, const E: usize>(
    bytes: &[u8],
    out: &mut [f32],
    f: impl Fn(&[u8; B], &mut [f32; E]),
) {
    for (b, y) in bytes.chunks_exact(B).zip(out.chunks_exact_mut(E)) {
        // Both conversions succeed: chunks_exact yields slices of exactly B and E.
        if let (Ok(b), Ok(y)) = (<&[u8; B]>::try_from(b), <&mut [f32; E]>::try_from(y)) {
            f(b, y);
        }
    }
}

/// The little-endian f16 at `b[i..i + 2]`, widened.
pub(super) fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Q4_0: `q4_0`'s block (f16 scale `d`, 16 bytes of nibbles; value
/// `(q − 8) · d`, see [`crate::block32`]).
fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    block32::dequantize_row(BlockLayout::Q4_0, b, 32, y);
}

/// Q4_1: f16 scale `d` and minimum `m`, then codes as in Q4_0; value `q * d + m`.
fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let (d, m) = (half_at(b, 0), half_at(b, 2));
    let (lo, hi) = y.split_at_mut(16);
    for ((&q, l), h) in b[4..].iter().zip(lo).zip(hi) {
        *l = f32::from(q & 0x0f) * d + m;
        *h = f32::from(q >> 4) * d + m;
    }
}

/// The 5-bit codes of elements `j` and `j + 16` of a Q5 block: nibbles of `q`
/// plus bits `j` and `j + 16` of the 32-bit high-bit word.
fn five_bit_pair(q: u8, high: u32, j: usize) -> (u8, u8) {
    let bit = |k: usize| (((high >> k) & 1) as u8) << 4;
    ((q & 0x0f) | bit(j), (q >> 4) | bit(j + 16))
}

/// Q5_0: `q5_0`'s block (f16 scale `d`, a little-endian u32 of fifth
/// bits, 16 bytes of nibbles laid out as in Q4_0; value `(q − 16) · d`).
fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    block32::dequantize_row(BlockLayout::Q5_0, b, 32, y);
}

/// Q5_1: f16 scale `d` and minimum `m`, fifth bits and nibbles as in Q5_0;
/// value `q * d + m`.
fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let (d, m) = (half_at(b, 0), half_at(b, 2));
    let high = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let (lo, hi) = y.split_at_mut(16);
    for (j, ((&q, l), h)) in b[8..].iter().zip(lo).zip(hi).enumerate() {
        let (a, c) = five_bit_pair(q, high, j);
        *l = f32::from(a) * d + m;
        *h = f32::from(c) * d + m;
    }
}

/// Q8_0: `q8_0`'s block (f16 scale `d`, 32 signed bytes; value `q · d`).
fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    block32::dequantize_row(BlockLayout::Q8_0, b, 32, y);
}

/// Q8_1: f16 scale `d`, an f16 `d * sum(q)` (not needed here), 32 signed
/// bytes; value `q * d`.
fn q8_1(b: &[u8; 36], y: &mut [f32; 32]) {
    let d = half_at(b, 0);
    for (&q, v) in b[4..].iter().zip(y) {
        *v = f32::from(q as i8) * d;
    }
}

/// Q8_K: f32 scale `d`, 256 signed bytes, then 16 i16 group sums (not needed
/// here); value `q * d`.
fn q8_k(b: &[u8; 292], y: &mut [f32; 256]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (&q, v) in b[4..260].iter().zip(y) {
        *v = f32::from(q as i8) * d;
    }
}

/// Q2_K: 16 scale bytes (low nibble scale, high nibble minimum, one per 16
/// elements), 64 code bytes, f16 `d`, f16 `dmin`. Each half of 128 elements
/// uses 32 code bytes; element `i` of a half is bits `2 * (i / 32)` of byte
/// `i % 32`. Value `d * scale * q - dmin * min`.
fn q2_k(b: &[u8; 84], y: &mut [f32; 256]) {
    let (scales, codes) = (&b[..16], &b[16..80]);
    let (d, dmin) = (half_at(b, 80), half_at(b, 82));
    for (e, v) in y.iter_mut().enumerate() {
        let (half, i) = (e / 128, e % 128);
        let q = (codes[32 * half + i % 32] >> (2 * (i / 32))) & 3;
        let sm = scales[e / 16];
        *v = d * f32::from(sm & 0x0f) * f32::from(q) - dmin * f32::from(sm >> 4);
    }
}

/// Q3_K: 32 high-bit-mask bytes, 64 code bytes (low two bits, laid out as in
/// Q2_K), 12 bytes packing sixteen 6-bit scales (biased by 32), f16 `d`. The
/// high bit of element `i` of half `h` is bit `4 * h + i / 32` of mask byte
/// `i % 32`; a clear bit subtracts 4. Value `d * (scale - 32) * q`.
fn q3_k(b: &[u8; 110], y: &mut [f32; 256]) {
    let (mask, codes, packed) = (&b[..32], &b[32..96], &b[96..108]);
    let d = half_at(b, 108);
    let mut scales = [0f32; 16];
    for (k, s) in scales.iter_mut().enumerate() {
        // Low four bits: nibbles of bytes 0..8 (low nibbles first); high two
        // bits: 2-bit fields of bytes 8..12.
        let low = if k < 8 { packed[k] & 0x0f } else { packed[k - 8] >> 4 };
        let high = (packed[8 + k % 4] >> (2 * (k / 4))) & 3;
        *s = d * f32::from(i16::from(low | (high << 4)) - 32);
    }
    for (e, v) in y.iter_mut().enumerate() {
        let (half, i) = (e / 128, e % 128);
        let (group, r) = (i / 32, i % 32);
        let low = i16::from((codes[32 * half + r] >> (2 * group)) & 3);
        let high_set = (mask[r] >> (4 * half + group)) & 1 == 1;
        let q = if high_set { low } else { low - 4 };
        *v = scales[e / 16] * f32::from(q);
    }
}

/// Scale and minimum (6 bits each) of sub-block `j` (0..8) of a Q4_K/Q5_K
/// block, from its 12 packed bytes: sub-blocks 0..4 use the low six bits of
/// bytes `j` and `j + 4`; sub-blocks 4..8 take their low nibbles from byte
/// `j + 4` and their top two bits from the spare bits of bytes `j - 4` and `j`.
fn k_scale_min(packed: &[u8], j: usize) -> (f32, f32) {
    let (scale, min) = if j < 4 {
        (packed[j] & 63, packed[j + 4] & 63)
    } else {
        (
            (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4),
            (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
        )
    };
    (f32::from(scale), f32::from(min))
}

/// Q4_K: f16 `d`, f16 `dmin`, 12 packed scale/min bytes, 128 code bytes.
/// Elements come in four chunks of 64: chunk `c` uses code bytes
/// `32c..32c + 32`, low nibbles for its first 32 elements (sub-block `2c`)
/// and high nibbles for the next 32 (sub-block `2c + 1`). Value
/// `d * scale * q - dmin * min`.
fn q4_k(b: &[u8; 144], y: &mut [f32; 256]) {
    let (d, dmin) = (half_at(b, 0), half_at(b, 2));
    let packed = &b[4..16];
    for (c, (codes, out)) in b[16..].chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (s0, m0) = k_scale_min(packed, 2 * c);
        let (s1, m1) = k_scale_min(packed, 2 * c + 1);
        let (d0, m0, d1, m1) = (d * s0, dmin * m0, d * s1, dmin * m1);
        let (lo, hi) = out.split_at_mut(32);
        for ((&q, l), h) in codes.iter().zip(lo).zip(hi) {
            *l = d0 * f32::from(q & 0x0f) - m0;
            *h = d1 * f32::from(q >> 4) - m1;
        }
    }
}

/// IQ4_NL: `iq4_nl`'s block (f16 scale `d`, 4-bit indices into the grid
/// [`NL4_LEVELS`](crate::compact::NL4_LEVELS); value `d · level`).
fn iq4_nl(b: &[u8; 18], y: &mut [f32; 32]) {
    block32::dequantize_row(BlockLayout::Iq4Nl, b, 32, y);
}

/// IQ4_XS: the bytes of one `nl4k` super-block of 256 values (f16 `d`,
/// signed 6-bit sub-block scales, 4-bit indices into [`NL4_LEVELS`](crate::compact::NL4_LEVELS)).
fn iq4_xs(b: &[u8; 136], y: &mut [f32; 256]) {
    dequantize_row(CompactLayout::nl4(), b, 256, y);
}

/// Q5_K: the bytes of one `int5k` super-block of 256 values (as Q4_K,
/// with 32 bytes of fifth bits between the scales and the codes).
fn q5_k(b: &[u8; 176], y: &mut [f32; 256]) {
    dequantize_row(CompactLayout::int5(), b, 256, y);
}

/// Q6_K: 128 low-nibble bytes, 64 high-bit bytes, 16 signed scales (one per
/// 16 elements), f16 `d`. Each half of 128 elements uses 64 low bytes and 32
/// high bytes; its quarter `k` (32 elements, `l` = 0..32) takes the low
/// nibble (`k` < 2) or high nibble of low byte `l + 32 * (k % 2)` and bits
/// `2k..2k + 2` of high byte `l`. Value `d * scale * (q - 32)`.
fn q6_k(b: &[u8; 210], y: &mut [f32; 256]) {
    let (low, high, scales) = (&b[..128], &b[128..192], &b[192..208]);
    let d = half_at(b, 208);
    for (e, v) in y.iter_mut().enumerate() {
        let (half, i) = (e / 128, e % 128);
        let (k, l) = (i / 32, i % 32);
        let byte = low[64 * half + 32 * (k % 2) + l];
        let nibble = if k < 2 { byte & 0x0f } else { byte >> 4 };
        let top = (high[32 * half + l] >> (2 * k)) & 3;
        let q = i16::from(nibble | (top << 4)) - 32;
        *v = d * f32::from(scales[e / 16] as i8) * f32::from(q);
    }
}
