//! AVX-512 product of grouped (int8/int4/int3/int2) weights with `f32`
//! activations at small batch, four weight rows at a time (tier
//! `avx512vnni`).
//!
//! Each group contributes `scale · Σ x·q + offset · Σ x`. The offsets' part
//! comes from the activations' group sums, computed once per product by the
//! caller and applied sixteen groups per instruction. For the scales' part,
//! every 32-value block of a row is unpacked in registers into two vectors
//! of sixteen `f32` codes (the block's first and second halves, as the
//! packing in [`qloader_format::grouped`] lays them out), multiplied by the
//! block's 32 activations, and the block's partial sums are multiplied by
//! the group's scale: four float operations and two conversions per block
//! and row. The activations of a block are loaded once for the four rows
//! (at batch 1 they are wider than L1 for large layers and would otherwise
//! stream from L2 once per weight row). Codes are prefetched as in the
//! other kernels of this tier.
//!
//! Safety: every `unsafe fn` here needs AVX-512 F, BW, VL and VNNI plus AVX2,
//! FMA and F16C; the dispatch table only exposes the safe wrapper after
//! `is_x86_feature_detected!` confirmed all of them.

use std::arch::x86_64::*;

use qloader_format::grouped::BLOCK;

use super::avx2::f16_to_f32;
use super::prefetch_codes;
use crate::quantize::GroupedRow;

/// `Σ x·w` of one `f32` activation row with four rows of one grouped
/// matrix; `sums[g]` is `Σ x` over group `g` of `x` (the layout's group
/// size), and `x` covers the rows' columns.
///
/// # Safety
/// The CPU must support this tier.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn avx512_dot_grouped_w4(
    x: &[f32],
    sums: &[f32],
    rows: &[GroupedRow<'_>; 4],
    out: &mut [f32; 4],
) {
    // SAFETY: same features as this function.
    unsafe {
        match rows[0].layout.bits() {
            2 => dot_grouped_w4_bits::<2>(x, sums, rows, out),
            3 => dot_grouped_w4_bits::<3>(x, sums, rows, out),
            4 => dot_grouped_w4_bits::<4>(x, sums, rows, out),
            _ => dot_grouped_w4_bits::<8>(x, sums, rows, out),
        }
    }
}

/// The codes of one 32-value block as `f32`: values `0..16` and `16..32`.
///
/// # Safety
/// `packed` must hold the block's `4 · BITS` bytes; the CPU must support
/// this tier.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn block_codes<const BITS: u8>(packed: *const u8) -> (__m512, __m512) {
    let (lo, hi) = match BITS {
        4 => {
            // Byte i holds value i (low nibble) and value 16 + i (high).
            // SAFETY: the caller guarantees 16 readable bytes.
            let bytes = _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(packed as *const __m128i) });
            (_mm512_and_si512(bytes, _mm512_set1_epi32(0x0f)), _mm512_srli_epi32::<4>(bytes))
        }
        2 | 3 => {
            // Byte i holds values i, 8 + i, 16 + i and 24 + i, two bits each.
            // SAFETY: the caller guarantees the block's 8 (int2) or 12
            // (int3) readable bytes.
            let word = unsafe { _mm_loadl_epi64(packed as *const __m128i) };
            let bytes = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(word, word));
            let three = _mm512_set1_epi32(3);
            let shifts =
                |a: i32, b: i32| _mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b);
            let lo = _mm512_and_si512(_mm512_srlv_epi32(bytes, shifts(0, 2)), three);
            let hi = _mm512_and_si512(_mm512_srlv_epi32(bytes, shifts(4, 6)), three);
            if BITS == 2 {
                (lo, hi)
            } else {
                // The third bit of value r is bit r of the u32 after the
                // low planes: its halves are the lane masks that add 4.
                // SAFETY: as above (bytes 8..12).
                let high = unsafe { (packed.add(8) as *const u32).read_unaligned() };
                let four = _mm512_set1_epi32(4);
                (
                    _mm512_mask_or_epi32(lo, high as __mmask16, lo, four),
                    _mm512_mask_or_epi32(hi, (high >> 16) as __mmask16, hi, four),
                )
            }
        }
        _ => {
            // One byte per value.
            // SAFETY: the caller guarantees 32 readable bytes.
            unsafe {
                (
                    _mm512_cvtepu8_epi32(_mm_loadu_si128(packed as *const __m128i)),
                    _mm512_cvtepu8_epi32(_mm_loadu_si128(packed.add(16) as *const __m128i)),
                )
            }
        }
    };
    (_mm512_cvtepi32_ps(lo), _mm512_cvtepi32_ps(hi))
}

/// [`avx512_dot_grouped_w4`] for one bit width.
///
/// # Safety
/// The CPU must support this tier.
// Per-row arrays are indexed by weight row inside loops over blocks.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn dot_grouped_w4_bits<const BITS: u8>(
    x: &[f32],
    sums: &[f32],
    rows: &[GroupedRow<'_>; 4],
    out: &mut [f32; 4],
) {
    let layout = rows[0].layout;
    debug_assert_eq!(layout.bits(), BITS);
    let block_bytes = layout.block_bytes();
    let n = x.len();
    let blocks = n.div_ceil(BLOCK);
    let whole_blocks = n / BLOCK;
    let per_group = layout.group() / BLOCK;
    // Groups are 1, 2 or 4 blocks: a shift, not a division, per block.
    let group_shift = per_group.trailing_zeros();
    let groups = blocks.div_ceil(per_group);
    assert!(sums.len() >= groups, "group sums shorter than the activations' groups");
    for row in rows {
        assert_eq!(row.layout, layout, "the four rows have different layouts");
        assert!(row.codes.len() >= blocks * block_bytes, "row codes shorter than x");
        assert!(row.scales.len() >= groups && row.offsets.len() >= groups);
    }
    // Bit widths whose blocks tile a cache line prefetch once per line.
    let blocks_per_line = if 64 % block_bytes == 0 { 64 / block_bytes } else { 1 };
    let px = x.as_ptr();
    let codes = rows.map(|r| r.codes.as_ptr());
    let mut scaled = [_mm512_setzero_ps(); 4];
    let mut offset = [_mm512_setzero_ps(); 4];
    // The scales of sixteen groups at a time, per row, as f32.
    let mut scales = [[0.0f32; 16]; 4];
    let mut b = 0;
    let mut g0 = 0;
    while g0 < groups {
        let ng = (groups - g0).min(16);
        let mask: __mmask16 = if ng == 16 { u16::MAX } else { (1u16 << ng) - 1 };
        // SAFETY: the mask covers groups g0..g0 + ng ≤ groups, within the
        // sums and every row's scales and offsets (asserted above).
        unsafe {
            let s = _mm512_maskz_loadu_ps(mask, sums.as_ptr().add(g0));
            for r in 0..4 {
                let load = |h: &[half::f16]| {
                    _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(
                        mask,
                        h.as_ptr().add(g0) as *const i16,
                    ))
                };
                _mm512_storeu_ps(scales[r].as_mut_ptr(), load(rows[r].scales));
                offset[r] = _mm512_fmadd_ps(load(rows[r].offsets), s, offset[r]);
            }
        }
        let end = ((g0 + ng) * per_group).min(whole_blocks);
        while b < end {
            // SAFETY: b < whole_blocks: columns 32b..32b+32 lie within x.
            let (x0, x1) = unsafe {
                (_mm512_loadu_ps(px.add(b * BLOCK)), _mm512_loadu_ps(px.add(b * BLOCK + 16)))
            };
            let lane = (b >> group_shift) - g0;
            for r in 0..4 {
                if b % blocks_per_line == 0 {
                    prefetch_codes(codes[r], b * block_bytes, 1);
                }
                // SAFETY: b < blocks: the block lies within the row's codes.
                let (q0, q1) = unsafe { block_codes::<BITS>(codes[r].add(b * block_bytes)) };
                let dot = _mm512_fmadd_ps(q1, x1, _mm512_mul_ps(q0, x0));
                scaled[r] = _mm512_fmadd_ps(dot, _mm512_set1_ps(scales[r][lane]), scaled[r]);
            }
            b += 1;
        }
        g0 += ng;
    }
    // A partial last block: masked activations (zero past the end) meet the
    // padding codes.
    if whole_blocks < blocks {
        let left = n - whole_blocks * BLOCK;
        let m0: __mmask16 = if left >= 16 { u16::MAX } else { (1u16 << left) - 1 };
        let m1: __mmask16 = if left > 16 { (1u16 << (left - 16)) - 1 } else { 0 };
        let at = whole_blocks * BLOCK;
        // SAFETY: the masks cover only columns at..n of x.
        let (x0, x1) = unsafe {
            (_mm512_maskz_loadu_ps(m0, px.add(at)), _mm512_maskz_loadu_ps(m1, px.add(at + 16)))
        };
        let g = whole_blocks >> group_shift;
        for r in 0..4 {
            // SAFETY: the block lies within the row's codes (asserted above).
            let (q0, q1) = unsafe { block_codes::<BITS>(codes[r].add(whole_blocks * block_bytes)) };
            let dot = _mm512_fmadd_ps(q1, x1, _mm512_mul_ps(q0, x0));
            let scale = _mm512_set1_ps(f16_to_f32(rows[r].scales[g]));
            scaled[r] = _mm512_fmadd_ps(dot, scale, scaled[r]);
        }
    }
    for r in 0..4 {
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(scaled[r], offset[r]));
    }
}
