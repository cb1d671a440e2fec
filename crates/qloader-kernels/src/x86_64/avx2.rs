//! AVX2 + FMA (+ F16C) row kernels (tier `avx2`). Each weight is expanded to
//! `f32` in registers — packed codes to bytes with a few shifts and masks,
//! bytes to 32-bit lanes, then `scale·q + offset` — and
//! multiplied into four independent 8-lane accumulators; nothing is written
//! back to memory but the final sum. Tails shorter than a vector use the
//! generic code.
//!
//! Safety: every `unsafe fn` here needs `avx2`, `fma` and (for f16) `f16c`;
//! the dispatch table only exposes the safe wrappers after
//! `is_x86_feature_detected!` confirmed all three.

use std::arch::x86_64::*;

use half::f16;
use qloader_format::grouped::BLOCK;

use crate::activations::ActivationRow;
use crate::generic;
use crate::quantize::GroupedRow;

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// `Σ a[i]·b[i]`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let body = n / 32 * 32;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < body {
        for (l, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 8·l + 8 ≤ body ≤ n, within both slices.
            let (va, vb) =
                unsafe { (_mm256_loadu_ps(pa.add(i + 8 * l)), _mm256_loadu_ps(pb.add(i + 8 * l))) };
            *acc = _mm256_fmadd_ps(va, vb, *acc);
        }
        i += 32;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum(sum) + generic::dot_f32(&a[body..n], &b[body..n])
}

/// `Σ x[i]·q[i]`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot_int8(x: &[f32], q: &[i8]) -> f32 {
    debug_assert_eq!(x.len(), q.len());
    let n = x.len().min(q.len());
    let body = n / 32 * 32;
    let (px, pq) = (x.as_ptr(), q.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < body {
        // SAFETY: 32 codes and 32 activations from i lie within the slices.
        let codes = unsafe { _mm256_loadu_si256(pq.add(i) as *const __m256i) };
        let halves = [_mm256_castsi256_si128(codes), _mm256_extracti128_si256::<1>(codes)];
        for (l, acc) in acc.iter_mut().enumerate() {
            let h = halves[l / 2];
            let h = if l % 2 == 0 { h } else { _mm_srli_si128::<8>(h) };
            let w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(h));
            // SAFETY: i + 8·l + 8 ≤ body.
            let vx = unsafe { _mm256_loadu_ps(px.add(i + 8 * l)) };
            *acc = _mm256_fmadd_ps(vx, w, *acc);
        }
        i += 32;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum(sum) + generic::dot_int8(&x[body..n], &q[body..n])
}

/// `Σ x[i]·w[i]` with `f16` weights (converted with F16C).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_f16(x: &[f32], w: &[f16]) -> f32 {
    debug_assert_eq!(x.len(), w.len());
    let n = x.len().min(w.len());
    let body = n / 32 * 32;
    let (px, pw) = (x.as_ptr(), w.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < body {
        for (l, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 8·l + 8 ≤ body ≤ n; 8 halves are 16 bytes.
            let (vx, vw) = unsafe {
                (
                    _mm256_loadu_ps(px.add(i + 8 * l)),
                    _mm256_cvtph_ps(_mm_loadu_si128(pw.add(i + 8 * l) as *const __m128i)),
                )
            };
            *acc = _mm256_fmadd_ps(vx, vw, *acc);
        }
        i += 32;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum(sum) + generic::dot_f16(&x[body..n], &w[body..n])
}

/// Unpacks one block of 32 codes (layout of `qloader_format::grouped`) into
/// 32 bytes in value order.
///
/// # Safety
/// `packed` must hold at least `4 · BITS` bytes; the CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn unpack_block<const BITS: u8>(packed: *const u8) -> __m256i {
    match BITS {
        // 8-bit codes, or (BITS = 0) codes already expanded to bytes.
        // SAFETY: the caller guarantees 32 readable bytes.
        0 | 8 => unsafe { _mm256_loadu_si256(packed as *const __m256i) },
        4 => {
            // SAFETY: the caller guarantees 16 readable bytes.
            let bytes = unsafe { _mm_loadu_si128(packed as *const __m128i) };
            let mask = _mm_set1_epi8(0x0f);
            let lo = _mm_and_si128(bytes, mask);
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(bytes), mask);
            _mm256_set_m128i(hi, lo)
        }
        // SAFETY: the caller guarantees 8 readable bytes.
        2 => unsafe { unpack_2bit(packed) },
        3 => {
            // SAFETY: the caller guarantees 12 readable bytes: 8 of low
            // plane, then the 4-byte high-bit word.
            let low = unsafe { unpack_2bit(packed) };
            // SAFETY: as above.
            let high = unsafe { (packed.add(8) as *const u32).read_unaligned() };
            // Byte r of the result gets byte r/8 of the high-bit word, then
            // keeps only bit r%8 of it.
            let spread = _mm256_shuffle_epi8(
                _mm256_set1_epi32(high as i32),
                _mm256_setr_epi8(
                    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
                    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
                ),
            );
            let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
            _mm256_or_si256(low, _mm256_and_si256(set, _mm256_set1_epi8(4)))
        }
        _ => unreachable!("grouped formats have 2, 3, 4 or 8 bits"),
    }
}

/// The 2-bit plane: byte `i` holds values `i, i+8, i+16, i+24`.
///
/// # Safety
/// `packed` must hold 8 readable bytes; the CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn unpack_2bit(packed: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 8 readable bytes.
    let word = unsafe { (packed as *const u64).read_unaligned() };
    let lanes = _mm256_srlv_epi64(_mm256_set1_epi64x(word as i64), _mm256_setr_epi64x(0, 2, 4, 6));
    _mm256_and_si256(lanes, _mm256_set1_epi8(3))
}

/// `Σ x[i]·w[i]` for one row of a grouped matrix; the row's bit width picks a
/// specialised loop once per row.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_grouped(x: &[f32], row: GroupedRow<'_>) -> f32 {
    // SAFETY: same features as this function.
    unsafe {
        match row.layout.bits() {
            2 => dot_grouped_bits::<2>(x, row),
            3 => dot_grouped_bits::<3>(x, row),
            4 => dot_grouped_bits::<4>(x, row),
            _ => dot_grouped_bits::<8>(x, row),
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_grouped_bits<const BITS: u8>(x: &[f32], row: GroupedRow<'_>) -> f32 {
    let layout = row.layout;
    debug_assert_eq!(layout.bits(), BITS);
    let block_bytes = layout.block_bytes();
    let blocks = x.len().div_ceil(BLOCK);
    assert!(row.codes.len() >= blocks * block_bytes, "row codes shorter than x");
    let blocks_per_group = layout.group() / BLOCK;
    // Groups are 1, 2 or 4 blocks: a shift, not a division, per block.
    let group_shift = blocks_per_group.trailing_zeros();
    assert!(row.scales.len() >= blocks.div_ceil(blocks_per_group));
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut tail = [0.0f32; BLOCK];
    for b in 0..blocks {
        let g = b >> group_shift;
        let scale = _mm256_set1_ps(f16_to_f32(row.scales[g]));
        let offset = _mm256_set1_ps(f16_to_f32(row.offsets[g]));
        // SAFETY: block b's bytes lie within `row.codes` (asserted above).
        let codes = unsafe { unpack_block::<BITS>(row.codes.as_ptr().add(b * block_bytes)) };
        let start = b * BLOCK;
        let xb = if start + BLOCK <= x.len() {
            &x[start..start + BLOCK]
        } else {
            // Partial last block: zero activations meet the padding codes.
            tail[..x.len() - start].copy_from_slice(&x[start..]);
            &tail[..]
        };
        let halves = [_mm256_castsi256_si128(codes), _mm256_extracti128_si256::<1>(codes)];
        for (l, acc) in acc.iter_mut().enumerate() {
            let h = halves[l / 2];
            let h = if l % 2 == 0 { h } else { _mm_srli_si128::<8>(h) };
            let q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(h));
            let w = _mm256_fmadd_ps(q, scale, offset);
            // SAFETY: `xb` has 32 values.
            let vx = unsafe { _mm256_loadu_ps(xb.as_ptr().add(8 * l)) };
            *acc = _mm256_fmadd_ps(vx, w, *acc);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum(sum)
}

/// Writes the `f32` values of a grouped row into `out` (from the row's start).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_unpack_grouped(row: GroupedRow<'_>, out: &mut [f32]) {
    // SAFETY: same features as this function.
    unsafe {
        match row.layout.bits() {
            2 => unpack_grouped_bits::<2>(row, out),
            3 => unpack_grouped_bits::<3>(row, out),
            4 => unpack_grouped_bits::<4>(row, out),
            _ => unpack_grouped_bits::<8>(row, out),
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_grouped_bits<const BITS: u8>(row: GroupedRow<'_>, out: &mut [f32]) {
    let layout = row.layout;
    let block_bytes = layout.block_bytes();
    let blocks = out.len().div_ceil(BLOCK);
    assert!(row.codes.len() >= blocks * block_bytes, "row codes shorter than out");
    let blocks_per_group = layout.group() / BLOCK;
    // Groups are 1, 2 or 4 blocks: a shift, not a division, per block.
    let group_shift = blocks_per_group.trailing_zeros();
    assert!(row.scales.len() >= blocks.div_ceil(blocks_per_group));
    let mut tail = [0.0f32; BLOCK];
    for b in 0..blocks {
        let g = b >> group_shift;
        let scale = _mm256_set1_ps(f16_to_f32(row.scales[g]));
        let offset = _mm256_set1_ps(f16_to_f32(row.offsets[g]));
        // SAFETY: block b's bytes lie within `row.codes` (asserted above).
        let codes = unsafe { unpack_block::<BITS>(row.codes.as_ptr().add(b * block_bytes)) };
        let start = b * BLOCK;
        let full = start + BLOCK <= out.len();
        let dst = if full { out[start..start + BLOCK].as_mut_ptr() } else { tail.as_mut_ptr() };
        let halves = [_mm256_castsi256_si128(codes), _mm256_extracti128_si256::<1>(codes)];
        for l in 0..4 {
            let h = halves[l / 2];
            let h = if l % 2 == 0 { h } else { _mm_srli_si128::<8>(h) };
            let q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(h));
            // SAFETY: `dst` points at 32 writable floats.
            unsafe { _mm256_storeu_ps(dst.add(8 * l), _mm256_fmadd_ps(q, scale, offset)) };
        }
        if !full {
            let n = out.len() - start;
            out[start..].copy_from_slice(&tail[..n]);
        }
    }
}

/// Writes the `f32` values of an `f16` row into `out`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_unpack_f16(w: &[f16], out: &mut [f32]) {
    let n = w.len().min(out.len());
    let body = n / 8 * 8;
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 ≤ body ≤ both lengths.
        unsafe {
            let v = _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().add(i) as *const __m128i));
            _mm256_storeu_ps(out.as_mut_ptr().add(i), v);
        }
        i += 8;
    }
    generic::unpack_f16(&w[body..n], &mut out[body..n]);
}

/// An `f16` to `f32` with F16C (the `half` crate's conversion may take a
/// software path when the binary is not built for F16C).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_to_f32(h: f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h.to_bits() as i32)))
}

/// Sum of the 8 `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
    _mm_cvtsi128_si32(s)
}

/// `Σ a·q` over int8 activation codes and int8 weight codes in `-127..=127`,
/// exact: `maddubs(|a|, sign(q, a))` (the sign trick keeps the unsigned
/// operand non-negative; |a|·|q| ≤ 127², so pair sums never saturate).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot_int8_a8(a: &[i8], q: &[i8]) -> i32 {
    let n = a.len().min(q.len());
    let body = n / 32 * 32;
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i < body {
        // SAFETY: i + 32 ≤ body ≤ both lengths.
        let (va, vq) = unsafe {
            (
                _mm256_loadu_si256(a.as_ptr().add(i) as *const __m256i),
                _mm256_loadu_si256(q.as_ptr().add(i) as *const __m256i),
            )
        };
        let p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(va), _mm256_sign_epi8(vq, va));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p16, ones));
        i += 32;
    }
    hsum_i32(acc) + generic::dot_int8_a8(&a[body..n], &q[body..n])
}

/// `Σ x·w` for one grouped weight row and one int8 activation row, with
/// integer block dot products (`maddubs` for 2–4-bit codes, 16-bit `madd`
/// for 8-bit codes, which could saturate `maddubs`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_grouped_a8(x: ActivationRow<'_>, row: GroupedRow<'_>) -> f32 {
    let mut out = [0.0f32];
    // SAFETY: same features as this function.
    unsafe { grouped_a8_rows::<1>(&[x], row, &mut out) };
    out[0]
}

/// Integer dot product of one 32-value block of codes with 32 int8
/// activations, as eight `i32` partial sums.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn block_dot_a8<const BITS: u8>(codes: __m256i, a: __m256i) -> __m256i {
    if BITS == 8 {
        // 8-bit codes could saturate maddubs' 16-bit pair sums: widen first.
        let lo = _mm256_madd_epi16(
            _mm256_cvtepu8_epi16(_mm256_castsi256_si128(codes)),
            _mm256_cvtepi8_epi16(_mm256_castsi256_si128(a)),
        );
        let hi = _mm256_madd_epi16(
            _mm256_cvtepu8_epi16(_mm256_extracti128_si256::<1>(codes)),
            _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(a)),
        );
        _mm256_add_epi32(lo, hi)
    } else {
        // Codes ≤ 4 bits (packed, or expanded to bytes with BITS = 0) times
        // int8: pair sums ≤ 2·15·127, no saturation.
        _mm256_madd_epi16(_mm256_maddubs_epi16(codes, a), _mm256_set1_epi16(1))
    }
}

/// Up to eight `f16` values from `src` as `f32`, in an array (missing
/// entries are zero).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn eight_f16(src: &[f16]) -> [f32; 8] {
    let mut bits = [0u16; 8];
    for (b, h) in bits.iter_mut().zip(src) {
        *b = h.to_bits();
    }
    let mut out = [0.0f32; 8];
    // SAFETY: `bits` is 16 readable bytes, `out` 32 writable bytes.
    unsafe {
        let v = _mm256_cvtph_ps(_mm_loadu_si128(bits.as_ptr() as *const __m128i));
        _mm256_storeu_ps(out.as_mut_ptr(), v);
    }
    out
}

/// `Σ_g offset_g · sums_g` over one weight row's groups (the offsets' part
/// of a grouped·a8 product), eight groups per step.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn offsets_dot(offsets: &[f16], sums: &[f32]) -> f32 {
    let n = offsets.len().min(sums.len());
    let body = n / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    let mut g = 0;
    while g < body {
        // SAFETY: g + 8 ≤ body ≤ both lengths.
        let (o, s) = unsafe {
            (
                _mm256_cvtph_ps(_mm_loadu_si128(offsets.as_ptr().add(g) as *const __m128i)),
                _mm256_loadu_ps(sums.as_ptr().add(g)),
            )
        };
        acc = _mm256_fmadd_ps(o, s, acc);
        g += 8;
    }
    let tail: f32 = offsets[body..n].iter().zip(&sums[body..n]).map(|(o, s)| o.to_f32() * s).sum();
    hsum(acc) + tail
}

/// The grouped·a8 product of one weight row with `R` activation rows at once:
/// each block is unpacked once and multiplied into every row. Within a group
/// the block dots are summed exactly in `i32` and scaled once; the offsets'
/// part, `Σ_g offset_g · Σ_{c∈g} a_c`, is a separate vector dot over the
/// activations' precomputed group sums.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; every activation row must have
/// the same (padded) length.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_grouped_a8_rows<const BITS: u8, const R: usize, const PER_GROUP: usize>(
    xs: &[ActivationRow<'_>; R],
    row: GroupedRow<'_>,
    out: &mut [f32; R],
) {
    let layout = row.layout;
    let block_bytes = if BITS == 0 { BLOCK } else { layout.block_bytes() };
    let blocks = xs[0].codes.len() / BLOCK;
    // A compile-time group size lets the block loop below unroll fully.
    let per_group = PER_GROUP;
    debug_assert_eq!(per_group, layout.group() / BLOCK);
    let groups = blocks.div_ceil(per_group);
    assert!(xs.iter().all(|x| x.codes.len() == blocks * BLOCK));
    assert!(xs.iter().all(|x| x.group_sums(layout.group()).len() >= groups));
    assert!(row.codes.len() >= blocks * block_bytes, "row codes shorter than activations");
    assert!(row.scales.len() >= groups && row.offsets.len() >= groups);
    // Two accumulators per row, alternating by group, to halve the FMA
    // dependency chain.
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let mut scales = [0.0f32; 8];
    for g in 0..groups {
        if g % 8 == 0 {
            scales = eight_f16(&row.scales[g..(g + 8).min(groups)]);
        }
        let scale = _mm256_set1_ps(scales[g % 8]);
        let first = g * per_group;
        let last = (first + per_group).min(blocks);
        let mut dots = [_mm256_setzero_si256(); R];
        for b in first..last {
            // SAFETY: block b's codes lie within `row.codes` (asserted above).
            let codes = unsafe { unpack_block::<BITS>(row.codes.as_ptr().add(b * block_bytes)) };
            for r in 0..R {
                // SAFETY: each activation row holds `blocks` whole blocks.
                let a = unsafe {
                    _mm256_loadu_si256(xs[r].codes.as_ptr().add(b * BLOCK) as *const __m256i)
                };
                dots[r] = _mm256_add_epi32(dots[r], block_dot_a8::<BITS>(codes, a));
            }
        }
        for r in 0..R {
            let lane = g & 1;
            acc[r][lane] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[r]), scale, acc[r][lane]);
        }
    }
    for r in 0..R {
        // SAFETY: same features as this function.
        let offsets =
            unsafe { offsets_dot(&row.offsets[..groups], xs[r].group_sums(layout.group())) };
        out[r] = xs[r].scale * (hsum(_mm256_add_ps(acc[r][0], acc[r][1])) + offsets);
    }
}

/// [`avx2_dot_grouped_a8`] for four activation rows at once.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_grouped_a8_x4(
    xs: &[ActivationRow<'_>; 4],
    row: GroupedRow<'_>,
    out: &mut [f32; 4],
) {
    // SAFETY: same features as this function.
    unsafe { grouped_a8_rows::<4>(xs, row, out) }
}

/// Picks the specialisation of [`dot_grouped_a8_rows`] for the row's bit
/// width and group size (once per row).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn grouped_a8_rows<const R: usize>(
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
    match row.layout.bits() {
        2 => by_group!(2),
        3 => by_group!(3),
        4 => by_group!(4),
        _ => by_group!(8),
    }
}

/// [`avx2_dot_grouped_a8`] over a row of an `ExpandedMatrix` (codes one byte
/// each: no unpacking, otherwise the same kernel).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_expanded_a8(x: ActivationRow<'_>, row: GroupedRow<'_>) -> f32 {
    let mut out = [0.0f32];
    // SAFETY: same features as this function.
    unsafe { expanded_a8_rows::<1>(&[x], row, &mut out) };
    out[0]
}

/// [`avx2_dot_expanded_a8`] for four activation rows at once.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_expanded_a8_x4(
    xs: &[ActivationRow<'_>; 4],
    row: GroupedRow<'_>,
    out: &mut [f32; 4],
) {
    // SAFETY: same features as this function.
    unsafe { expanded_a8_rows::<4>(xs, row, out) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn expanded_a8_rows<const R: usize>(
    xs: &[ActivationRow<'_>; R],
    row: GroupedRow<'_>,
    out: &mut [f32; R],
) {
    // 8-bit codes are not expanded differently from packed ones (and could
    // saturate maddubs): use the packed 8-bit kernel for them.
    // SAFETY: same features as this function.
    unsafe {
        match (row.layout.bits(), row.layout.group()) {
            (8, _) => grouped_a8_rows::<R>(xs, row, out),
            (_, 32) => dot_grouped_a8_rows::<0, R, 1>(xs, row, out),
            (_, 64) => dot_grouped_a8_rows::<0, R, 2>(xs, row, out),
            _ => dot_grouped_a8_rows::<0, R, 4>(xs, row, out),
        }
    }
}
