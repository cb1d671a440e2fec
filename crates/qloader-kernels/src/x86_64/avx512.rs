//! AVX-512 VNNI row kernels (tier `avx512vnni`): the integer products with
//! int8 activations. `vpdpbusd` multiplies 64 unsigned weight codes by 64
//! signed activation codes and adds each four products into one `i32` lane
//! in a single instruction, exactly (no 16-bit intermediate, so no
//! saturation even for 8-bit codes). Of the float-activation kernels, the
//! batch-1 products of `f32` and int8 weights take four weight rows at a time
//! here (the activations, wider than L1 for large layers, are loaded once per
//! four rows); grouped weights with `f32` activations are in
//! [`super::avx512_grouped`]; the other float kernels are the AVX2 ones.
//!
//! Grouped rows are read 64 bytes at a time: four packed int4 blocks, eight
//! int2 blocks, or two blocks of one-byte codes (int8, codes expanded in
//! advance, or int3 unpacked in registers). The activations meet them in the
//! matching order ([`ActivationRow::int4_wide_codes`],
//! [`ActivationRow::int2_wide_codes`], or plain). Each lane's integer sum
//! belongs to one group; up to sixteen groups at a time, the lanes are
//! converted to `f32` and multiplied by their group's scale (one permute of
//! the sixteen scales per vector), and the offsets' part
//! `Σ_g offset_g · Σ_{c∈g} a_c` is added from the activations' precomputed
//! group sums, sixteen groups per instruction. Blocks after the last whole
//! vector go one at a time through 32-byte `vpdpbusd`. The codes, scales and
//! offsets are prefetched `PREFETCH_BYTES` ahead into L1, the codes also
//! `L2_PREFETCH_BYTES` ahead into L2.
//!
//! Safety: every `unsafe fn` here needs AVX-512 F, BW, VL and VNNI plus AVX2,
//! FMA and F16C; the dispatch table only exposes the safe wrappers after
//! `is_x86_feature_detected!` confirmed all of them.

use std::arch::x86_64::*;

use qloader_format::grouped::BLOCK;

use super::avx2::{f16_to_f32, hsum_i32, unpack_2bit, unpack_block};
use super::{L2_PREFETCH_BYTES, PREFETCH_BYTES};
use crate::activations::ActivationRow;
use crate::quantize::GroupedRow;

/// `Σ a·q` over int8 activation codes and int8 weight codes in `-127..=127`,
/// exact: `vpdpbusd(|a|, q negated where a < 0)` (the unsigned operand must
/// be non-negative; four products of at most 127² never overflow `i32`).
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn avx512_dot_int8_a8(a: &[i8], q: &[i8]) -> i32 {
    let n = a.len().min(q.len());
    let mut acc = [_mm512_setzero_si512(); 2];
    let step = |acc: __m512i, va: __m512i, vq: __m512i| {
        let negative = _mm512_movepi8_mask(va);
        let signed = _mm512_mask_sub_epi8(vq, negative, _mm512_setzero_si512(), vq);
        _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(va), signed)
    };
    let mut i = 0;
    while i + 128 <= n {
        for (h, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 64·h + 64 ≤ i + 128 ≤ n, within both slices.
            let (va, vq) = unsafe {
                (
                    _mm512_loadu_si512(a.as_ptr().add(i + 64 * h) as *const __m512i),
                    _mm512_loadu_si512(q.as_ptr().add(i + 64 * h) as *const __m512i),
                )
            };
            *acc = step(*acc, va, vq);
        }
        i += 128;
    }
    while i < n {
        // The last (up to 64) codes through masked loads: masked-off bytes
        // are neither read nor counted (they load as zero).
        let left = n - i;
        let mask: __mmask64 = if left >= 64 { u64::MAX } else { (1u64 << left) - 1 };
        // SAFETY: the mask covers only bytes i..n of both slices.
        let (va, vq) = unsafe {
            (
                _mm512_maskz_loadu_epi8(mask, a.as_ptr().add(i)),
                _mm512_maskz_loadu_epi8(mask, q.as_ptr().add(i)),
            )
        };
        acc[0] = step(acc[0], va, vq);
        i += 64;
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(acc[0], acc[1]))
}

/// `Σ x·q` of one `f32` activation row with four int8 code rows at once: each
/// sixteen activations are loaded once and multiplied into all four rows
/// (at batch 1 the activations, larger than L1 for wide layers, would
/// otherwise be streamed from L2 once per weight row). Codes are widened
/// with a sign-extending load and converted to `f32` in registers; each row
/// keeps two accumulators. The last `< 32` columns go through masked loads.
///
/// # Safety
/// The CPU must support AVX-512 F (and this tier's other features); every
/// code row must be at least as long as `x`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn avx512_dot_int8_w4(x: &[f32], qs: &[&[i8]; 4], out: &mut [f32; 4]) {
    let n = x.len();
    assert!(qs.iter().all(|q| q.len() >= n), "code rows shorter than the activations");
    let px = x.as_ptr();
    let pq = qs.map(<[i8]>::as_ptr);
    let mut acc = [[_mm512_setzero_ps(); 2]; 4];
    let widen = |p: *const i8| {
        // SAFETY: the callers below pass 16 readable code bytes.
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(unsafe { _mm_loadu_si128(p as *const __m128i) }))
    };
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 ≤ n: columns i..i+32 lie within x and every row.
        unsafe {
            let x0 = _mm512_loadu_ps(px.add(i));
            let x1 = _mm512_loadu_ps(px.add(i + 16));
            for r in 0..4 {
                if i % 64 == 0 {
                    _mm_prefetch::<_MM_HINT_T0>(pq[r].wrapping_add(i + PREFETCH_BYTES));
                    _mm_prefetch::<_MM_HINT_T1>(pq[r].wrapping_add(i + L2_PREFETCH_BYTES));
                }
                acc[r][0] = _mm512_fmadd_ps(x0, widen(pq[r].add(i)), acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(x1, widen(pq[r].add(i + 16)), acc[r][1]);
            }
        }
        i += 32;
    }
    while i < n {
        let left = n - i;
        let mask: __mmask16 = if left >= 16 { u16::MAX } else { (1u16 << left) - 1 };
        // SAFETY: the mask covers only columns i..n of x and of every row.
        unsafe {
            let xv = _mm512_maskz_loadu_ps(mask, px.add(i));
            for r in 0..4 {
                let q = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, pq[r].add(i)));
                acc[r][0] = _mm512_fmadd_ps(xv, _mm512_cvtepi32_ps(q), acc[r][0]);
            }
        }
        i += 16;
    }
    for r in 0..4 {
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
    }
}

/// `Σ x·w` of one `f32` activation row with four `f32` weight rows at once
/// (each sixteen activations loaded once for the four rows, two
/// accumulators per row, masked loads for the last `< 32` columns).
///
/// # Safety
/// The CPU must support AVX-512 F (and this tier's other features); every
/// weight row must be at least as long as `x`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn avx512_dot_f32_w4(x: &[f32], ws: &[&[f32]; 4], out: &mut [f32; 4]) {
    let n = x.len();
    assert!(ws.iter().all(|w| w.len() >= n), "weight rows shorter than the activations");
    let px = x.as_ptr();
    let pw = ws.map(<[f32]>::as_ptr);
    let mut acc = [[_mm512_setzero_ps(); 2]; 4];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 ≤ n: columns i..i+32 lie within x and every row.
        unsafe {
            let x0 = _mm512_loadu_ps(px.add(i));
            let x1 = _mm512_loadu_ps(px.add(i + 16));
            for r in 0..4 {
                // The two lines of this step, PREFETCH_BYTES ahead into L1
                // and L2_PREFETCH_BYTES ahead into L2.
                for line in [i, i + 16] {
                    let at = pw[r].wrapping_add(line) as *const i8;
                    _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(PREFETCH_BYTES));
                    _mm_prefetch::<_MM_HINT_T1>(at.wrapping_add(L2_PREFETCH_BYTES));
                }
                acc[r][0] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(pw[r].add(i)), acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(pw[r].add(i + 16)), acc[r][1]);
            }
        }
        i += 32;
    }
    while i < n {
        let left = n - i;
        let mask: __mmask16 = if left >= 16 { u16::MAX } else { (1u16 << left) - 1 };
        // SAFETY: the mask covers only columns i..n of x and of every row.
        unsafe {
            let xv = _mm512_maskz_loadu_ps(mask, px.add(i));
            for r in 0..4 {
                let wv = _mm512_maskz_loadu_ps(mask, pw[r].add(i));
                acc[r][0] = _mm512_fmadd_ps(xv, wv, acc[r][0]);
            }
        }
        i += 16;
    }
    for r in 0..4 {
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
    }
}

/// Blocks of 32 codes per 64-byte vector: four packed int4 blocks, eight
/// packed int2 blocks, or two blocks of one-byte codes (8-bit codes, codes
/// expanded in advance (`BITS = 0`), or int3 unpacked in registers).
const fn blocks_per_vector(bits: u8) -> usize {
    match bits {
        4 => 4,
        2 => 8,
        _ => 2,
    }
}

/// Adds the integer dot products of vector `v` (blocks
/// `v·V..(v+1)·V`, `V = blocks_per_vector(BITS)`) with every activation row
/// into `dots`. Lane `l` of the result belongs to block `v·V + l·V/16`.
///
/// # Safety
/// The CPU must support this tier; the vector's blocks must lie within the
/// row's codes (`block_bytes` each) and within every activation row's codes
/// (and, for int4 and int2, its wide interleaved codes).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn vector_dots<const BITS: u8, const R: usize>(
    xs: &[ActivationRow<'_>; R],
    codes: *const u8,
    block_bytes: usize,
    v: usize,
    dots: &mut [__m512i; R],
) {
    match BITS {
        4 => {
            // SAFETY: the caller guarantees the vector's 64 code bytes.
            let packed = unsafe { _mm512_loadu_si512(codes.add(v * 64) as *const __m512i) };
            let mask = _mm512_set1_epi8(0x0f);
            let lo = _mm512_and_si512(packed, mask);
            let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(packed), mask);
            for r in 0..R {
                // SAFETY: the caller guarantees the run's 128 wide codes.
                let (a_lo, a_hi) = unsafe {
                    let a = xs[r].int4_wide_codes.as_ptr().add(v * 128);
                    (
                        _mm512_loadu_si512(a as *const __m512i),
                        _mm512_loadu_si512(a.add(64) as *const __m512i),
                    )
                };
                dots[r] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(dots[r], lo, a_lo), hi, a_hi);
            }
        }
        2 => {
            // SAFETY: the caller guarantees the vector's 64 code bytes.
            let packed = unsafe { _mm512_loadu_si512(codes.add(v * 64) as *const __m512i) };
            let mask = _mm512_set1_epi8(3);
            let planes = [
                _mm512_and_si512(packed, mask),
                _mm512_and_si512(_mm512_srli_epi16::<2>(packed), mask),
                _mm512_and_si512(_mm512_srli_epi16::<4>(packed), mask),
                _mm512_and_si512(_mm512_srli_epi16::<6>(packed), mask),
            ];
            for r in 0..R {
                // SAFETY: the caller guarantees the run's 256 wide codes.
                let a = unsafe { xs[r].int2_wide_codes.as_ptr().add(v * 256) };
                for (p, plane) in planes.iter().enumerate() {
                    // SAFETY: as above; plane p is bytes 64p..64p+64.
                    let ap = unsafe { _mm512_loadu_si512(a.add(64 * p) as *const __m512i) };
                    dots[r] = _mm512_dpbusd_epi32(dots[r], *plane, ap);
                }
            }
        }
        _ => {
            let w = if BITS == 3 {
                // The low two bits as int2 blocks. The third bit of value r
                // is bit r of the u32 after the low plane: the two blocks'
                // u32s are the byte mask of the codes that get 4 added
                // (their low bits are 0..=3).
                // SAFETY: the caller guarantees blocks 2v and 2v+1 (12 bytes
                // each: 8 of low plane, then the high-bit word).
                unsafe {
                    let (p0, p1) =
                        (codes.add(2 * v * block_bytes), codes.add((2 * v + 1) * block_bytes));
                    let low = _mm512_inserti64x4::<1>(
                        _mm512_castsi256_si512(unpack_2bit(p0)),
                        unpack_2bit(p1),
                    );
                    let high0 = (p0.add(8) as *const u32).read_unaligned() as u64;
                    let high1 = (p1.add(8) as *const u32).read_unaligned() as u64;
                    _mm512_mask_add_epi8(low, high0 | (high1 << 32), low, _mm512_set1_epi8(4))
                }
            } else {
                // One-byte codes: two blocks are 64 consecutive bytes.
                // SAFETY: the caller guarantees the vector's 64 code bytes.
                unsafe { _mm512_loadu_si512(codes.add(v * 64) as *const __m512i) }
            };
            for r in 0..R {
                // SAFETY: the caller guarantees the two blocks' activations.
                let a = unsafe {
                    _mm512_loadu_si512(xs[r].codes.as_ptr().add(v * 64) as *const __m512i)
                };
                dots[r] = _mm512_dpbusd_epi32(dots[r], w, a);
            }
        }
    }
}

/// The grouped·a8 product of one weight row with `R` activation rows.
///
/// The row is cut into units of `max(V, PER_GROUP)` blocks (one vector
/// holding several groups, or one group spanning two vectors), sixteen
/// groups' worth of units at a time; the blocks after the last whole unit
/// (fewer than a unit, starting on a group boundary) go block by block.
///
/// # Safety
/// The CPU must support this tier; every activation row must have the same
/// (padded) length.
// Per-row arrays are indexed by activation row inside loops over vectors.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn dot_grouped_a8_rows<const BITS: u8, const R: usize, const PER_GROUP: usize>(
    xs: &[ActivationRow<'_>; R],
    row: GroupedRow<'_>,
    out: &mut [f32; R],
) {
    debug_assert_eq!(PER_GROUP, row.layout.group() / BLOCK);
    let super::GroupedA8Shape { block_bytes, blocks, groups, act } =
        super::GroupedA8Shape::check::<BITS>(xs, row);

    let per_vector = blocks_per_vector(BITS);
    let unit_blocks = per_vector.max(PER_GROUP);
    let vectors_per_unit = unit_blocks / per_vector;
    let groups_per_unit = unit_blocks / PER_GROUP;
    let units = blocks / unit_blocks;
    let whole_groups = units * groups_per_unit;
    let wide_len = |x: &ActivationRow<'_>| match BITS {
        4 => x.int4_wide_codes.len(),
        2 => x.int2_wide_codes.len(),
        _ => x.codes.len(),
    };
    assert!(xs.iter().all(|x| wide_len(x) >= units * unit_blocks * BLOCK));

    let codes = row.codes.as_ptr();
    // Lane l of a unit's sums belongs to its group l / (16 / groups_per_unit).
    let lanes_per_group = (16 / groups_per_unit) as i32;
    let first_lane_groups = lane_groups(lanes_per_group);
    let mut scaled = [_mm512_setzero_ps(); R];
    let mut offset = [_mm512_setzero_ps(); R];
    let mut g0 = 0;
    while g0 < whole_groups {
        let n = (whole_groups - g0).min(16);
        let mask: __mmask16 = if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
        // SAFETY: the mask covers groups g0..g0 + n < groups, within the
        // scales, offsets and every row's group sums (asserted above).
        let (scales, offsets) = unsafe {
            (
                _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(
                    mask,
                    row.scales.as_ptr().add(g0) as *const i16,
                )),
                _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(
                    mask,
                    row.offsets.as_ptr().add(g0) as *const i16,
                )),
            )
        };
        // Per activation row, the groups' weight scale times activation scale.
        let mut both_scales = [_mm512_setzero_ps(); R];
        for r in 0..R {
            // SAFETY: as above.
            let (a_sums, a_scales) = unsafe {
                (
                    _mm512_maskz_loadu_ps(mask, act.sums[r].as_ptr().add(g0)),
                    _mm512_maskz_loadu_ps(mask, act.scales[r].as_ptr().add(g0)),
                )
            };
            offset[r] = _mm512_fmadd_ps(offsets, a_sums, offset[r]);
            both_scales[r] = _mm512_mul_ps(scales, a_scales);
        }
        if g0 % 32 == 0 {
            // One 64-byte line of scales (and of offsets) per 32 groups.
            let ahead = g0 + PREFETCH_BYTES / 8;
            _mm_prefetch::<_MM_HINT_T0>(row.scales.as_ptr().wrapping_add(ahead) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(row.offsets.as_ptr().wrapping_add(ahead) as *const i8);
        }
        let mut lane_groups = first_lane_groups;
        let step = _mm512_set1_epi32(groups_per_unit as i32);
        let first_unit = g0 / groups_per_unit;
        for u in first_unit..first_unit + n / groups_per_unit {
            // The row's codes, and past its end the next row's, are read in
            // order: ask for the line PREFETCH_BYTES ahead into L1 and the
            // one L2_PREFETCH_BYTES ahead into L2 (hints: they never fault,
            // hence `wrapping_add`).
            let at = codes.wrapping_add(u * unit_blocks * block_bytes);
            _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(PREFETCH_BYTES) as *const i8);
            _mm_prefetch::<_MM_HINT_T1>(at.wrapping_add(L2_PREFETCH_BYTES) as *const i8);
            let mut dots = [_mm512_setzero_si512(); R];
            for k in 0..vectors_per_unit {
                // SAFETY: unit u < units: its vectors' blocks lie within
                // the row's codes and every activation row (asserted above).
                unsafe {
                    vector_dots::<BITS, R>(
                        xs,
                        codes,
                        block_bytes,
                        u * vectors_per_unit + k,
                        &mut dots,
                    )
                };
            }
            for r in 0..R {
                let lane_scales = _mm512_permutexvar_ps(lane_groups, both_scales[r]);
                scaled[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[r]), lane_scales, scaled[r]);
            }
            lane_groups = _mm512_add_epi32(lane_groups, step);
        }
        g0 += n;
    }

    // The blocks after the last whole unit, one at a time.
    let mut tail = [0.0f32; R];
    for g in whole_groups..groups {
        let mut dots = [_mm256_setzero_si256(); R];
        for b in g * PER_GROUP..((g + 1) * PER_GROUP).min(blocks) {
            // SAFETY: b < blocks: block b lies within the row's codes.
            let w = unsafe { unpack_block::<BITS>(codes.add(b * block_bytes)) };
            for r in 0..R {
                // SAFETY: each activation row holds `blocks` whole blocks.
                let a = unsafe {
                    _mm256_loadu_si256(xs[r].codes.as_ptr().add(b * BLOCK) as *const __m256i)
                };
                dots[r] = _mm256_dpbusd_epi32(dots[r], w, a);
            }
        }
        let (scale, offset) = (f16_to_f32(row.scales[g]), f16_to_f32(row.offsets[g]));
        for r in 0..R {
            tail[r] +=
                hsum_i32(dots[r]) as f32 * scale * act.scales[r][g] + offset * act.sums[r][g];
        }
    }
    for r in 0..R {
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(scaled[r], offset[r])) + tail[r];
    }
}

/// `[0, …, 0, 1, …, 1, …]`: lane `l` holds `l / lanes_per_group`.
#[inline]
#[target_feature(enable = "avx512f")]
fn lane_groups(lanes_per_group: i32) -> __m512i {
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    match lanes_per_group {
        1 => lanes,
        2 => _mm512_srli_epi32::<1>(lanes),
        4 => _mm512_srli_epi32::<2>(lanes),
        8 => _mm512_srli_epi32::<3>(lanes),
        _ => _mm512_srli_epi32::<4>(lanes),
    }
}

/// Picks the specialisation of [`dot_grouped_a8_rows`] for the row's bit
/// width (`EXPANDED`: codes one byte each) and group size, once per row.
///
/// # Safety
/// The CPU must support this tier.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn grouped_a8_rows<const R: usize, const EXPANDED: bool>(
    xs: &[ActivationRow<'_>; R],
    row: GroupedRow<'_>,
    out: &mut [f32; R],
) {
    macro_rules! by_group {
        ($bits:literal) => {
            // SAFETY: same features as this function.
            unsafe {
                match row.layout.group() {
                    32 => dot_grouped_a8_rows::<$bits, R, 1>(xs, row, out),
                    64 => dot_grouped_a8_rows::<$bits, R, 2>(xs, row, out),
                    _ => dot_grouped_a8_rows::<$bits, R, 4>(xs, row, out),
                }
            }
        };
    }
    // Expanded 8-bit codes are the same bytes as packed ones.
    match (row.layout.bits(), EXPANDED) {
        (8, _) => by_group!(8),
        (_, true) => by_group!(0),
        (2, false) => by_group!(2),
        (3, false) => by_group!(3),
        _ => by_group!(4),
    }
}

/// `Σ x·w` for one grouped weight row and one int8 activation row.
///
/// # Safety
/// The CPU must support this tier.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn avx512_dot_grouped_a8(x: ActivationRow<'_>, row: GroupedRow<'_>) -> f32 {
    let mut out = [0.0f32];
    // SAFETY: same features as this function.
    unsafe { grouped_a8_rows::<1, false>(&[x], row, &mut out) };
    out[0]
}

/// [`avx512_dot_grouped_a8`] for four activation rows at once (each vector
/// of codes is unpacked once).
///
/// # Safety
/// The CPU must support this tier.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn avx512_dot_grouped_a8_x4(
    xs: &[ActivationRow<'_>; 4],
    row: GroupedRow<'_>,
    out: &mut [f32; 4],
) {
    // SAFETY: same features as this function.
    unsafe { grouped_a8_rows::<4, false>(xs, row, out) }
}

/// [`avx512_dot_grouped_a8`] over a row of an `ExpandedMatrix` (codes one
/// byte each: no unpacking, otherwise the same kernel).
///
/// # Safety
/// The CPU must support this tier.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn avx512_dot_expanded_a8(x: ActivationRow<'_>, row: GroupedRow<'_>) -> f32 {
    let mut out = [0.0f32];
    // SAFETY: same features as this function.
    unsafe { grouped_a8_rows::<1, true>(&[x], row, &mut out) };
    out[0]
}

/// [`avx512_dot_expanded_a8`] for four activation rows at once.
///
/// # Safety
/// The CPU must support this tier.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn avx512_dot_expanded_a8_x4(
    xs: &[ActivationRow<'_>; 4],
    row: GroupedRow<'_>,
    out: &mut [f32; 4],
) {
    // SAFETY: same features as this function.
    unsafe { grouped_a8_rows::<4, true>(xs, row, out) }
}
