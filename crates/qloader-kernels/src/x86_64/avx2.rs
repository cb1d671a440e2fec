//! AVX2 + FMA (+ F16C) row kernels (tier `avx2`). Each weight is expanded to
//! `f32` in registers — packed codes to bytes with a few shifts and masks,
//! bytes to 32-bit lanes, then `scale·q + offset` — and
//! multiplied into four independent 8-lane accumulators; nothing is written
//! back to memory but the final sum. The codes of the batch-1 products are
//! prefetched (`super::prefetch_codes`). `f32` and int8 weights also have `_w4`
//! kernels: four weight rows against one activation row, each activation
//! loaded once for the four (batch 1). Tails shorter than a vector use the
//! generic code.
//!
//! Safety: every `unsafe fn` here needs `avx2`, `fma` and (for f16) `f16c`;
//! the dispatch table only exposes the safe wrappers after
//! `is_x86_feature_detected!` confirmed all three.

use std::arch::x86_64::*;

use half::f16;
use qloader_format::grouped::BLOCK;

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

/// `Σ x·w` of one activation row with four `f32` weight rows at once: each
/// eight activations are loaded once for the four rows (two accumulators per
/// row); the last `< 16` columns go through the generic code.
///
/// # Safety
/// The CPU must support AVX2 and FMA; every weight row must be at least as
/// long as `x`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot_f32_w4(x: &[f32], ws: &[&[f32]; 4], out: &mut [f32; 4]) {
    let n = x.len();
    assert!(ws.iter().all(|w| w.len() >= n), "weight rows shorter than the activations");
    let body = n / 16 * 16;
    let px = x.as_ptr();
    let pw = ws.map(<[f32]>::as_ptr);
    let mut acc = [[_mm256_setzero_ps(); 2]; 4];
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 ≤ body ≤ n: within x and every row.
        unsafe {
            let x0 = _mm256_loadu_ps(px.add(i));
            let x1 = _mm256_loadu_ps(px.add(i + 8));
            for r in 0..4 {
                super::prefetch_codes(pw[r] as *const u8, 4 * i, 64);
                acc[r][0] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(pw[r].add(i)), acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(pw[r].add(i + 8)), acc[r][1]);
            }
        }
        i += 16;
    }
    for r in 0..4 {
        out[r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1]))
            + generic::dot_f32(&x[body..n], &ws[r][body..n]);
    }
}

/// `Σ x·q` of one activation row with four int8 code rows at once (each
/// eight activations loaded once for the four rows; codes widened and
/// converted in registers); the last `< 16` columns go through the generic
/// code.
///
/// # Safety
/// The CPU must support AVX2 and FMA; every code row must be at least as
/// long as `x`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot_int8_w4(x: &[f32], qs: &[&[i8]; 4], out: &mut [f32; 4]) {
    let n = x.len();
    assert!(qs.iter().all(|q| q.len() >= n), "code rows shorter than the activations");
    let body = n / 16 * 16;
    let px = x.as_ptr();
    let pq = qs.map(<[i8]>::as_ptr);
    let mut acc = [[_mm256_setzero_ps(); 2]; 4];
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 ≤ body ≤ n: within x and every row.
        unsafe {
            let x0 = _mm256_loadu_ps(px.add(i));
            let x1 = _mm256_loadu_ps(px.add(i + 8));
            for r in 0..4 {
                if i % 64 == 0 {
                    super::prefetch_codes(pq[r] as *const u8, i, 64);
                }
                let codes = _mm_loadu_si128(pq[r].add(i) as *const __m128i);
                let w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes));
                let w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(codes)));
                acc[r][0] = _mm256_fmadd_ps(x0, w0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x1, w1, acc[r][1]);
            }
        }
        i += 16;
    }
    for r in 0..4 {
        out[r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1]))
            + generic::dot_int8(&x[body..n], &qs[r][body..n]);
    }
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
pub(super) unsafe fn unpack_block<const BITS: u8>(packed: *const u8) -> __m256i {
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
pub(super) unsafe fn unpack_2bit(packed: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 8 readable bytes.
    let word = unsafe { (packed as *const u64).read_unaligned() };
    let lanes = _mm256_srlv_epi64(_mm256_set1_epi64x(word as i64), _mm256_setr_epi64x(0, 2, 4, 6));
    _mm256_and_si256(lanes, _mm256_set1_epi8(3))
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
pub(super) fn f16_to_f32(h: f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h.to_bits() as i32)))
}

/// `Σ_g s_g · Σ a·q` over int8 activation codes in `-127..=127`, quantized
/// in groups of `group` columns with scale `s_g`, and int8 weight codes:
/// each group's sum exact by `maddubs(|a|, sign(q, a))` (the sign trick
/// keeps the unsigned operand non-negative; |a|·|q| ≤ 127², so pair sums
/// never saturate), then converted and scaled into one `f32` accumulator.
/// A group's last `< 32` columns are summed by the scalar reference.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `scales` must hold one scale per
/// group of the row.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot_int8_a8(a: &[i8], q: &[i8], scales: &[f32], group: usize) -> f32 {
    let n = a.len().min(q.len());
    assert!(group > 0 && scales.len() >= n.div_ceil(group), "one scale per group");
    let ones = _mm256_set1_epi16(1);
    let mut total = _mm256_setzero_ps();
    let mut tails = 0.0f32;
    let mut start = 0;
    for &scale in scales.iter().take(n.div_ceil(group)) {
        let end = (start + group).min(n);
        let body = start + (end - start) / 32 * 32;
        let mut isum = _mm256_setzero_si256();
        let mut i = start;
        while i < body {
            // SAFETY: i + 32 ≤ body ≤ n, within both slices.
            let (va, vq) = unsafe {
                (
                    _mm256_loadu_si256(a.as_ptr().add(i) as *const __m256i),
                    _mm256_loadu_si256(q.as_ptr().add(i) as *const __m256i),
                )
            };
            let p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(va), _mm256_sign_epi8(vq, va));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, ones));
            i += 32;
        }
        total = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(scale), total);
        if body < end {
            tails += generic::dot_int8_codes(&a[body..end], &q[body..end]) as f32 * scale;
        }
        start = end;
    }
    hsum(total) + tails
}
