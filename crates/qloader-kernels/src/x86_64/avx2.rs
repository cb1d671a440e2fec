//! AVX2 + FMA row kernels (tier `avx2`). Each weight is expanded to `f32` in
//! registers — bytes to 32-bit lanes, then `scale·q + offset` for int4 — and
//! multiplied into four independent 8-lane accumulators; nothing is written
//! back to memory but the final sum. Tails shorter than a vector use the
//! generic code.
//!
//! Safety: every `unsafe fn` here needs `avx2` and `fma`; the dispatch table
//! only exposes the safe wrappers after `is_x86_feature_detected!` confirmed
//! both.

use std::arch::x86_64::*;

use qloader_format::int4::{BlockInt4, INT4_GROUP};

use crate::generic;

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

/// `Σ x[i]·w[i]` for one row of int4 groups; full groups are expanded in
/// registers, a partial last group goes through the generic code.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot_int4(x: &[f32], blocks: &[BlockInt4]) -> f32 {
    debug_assert_eq!(blocks.len(), x.len().div_ceil(INT4_GROUP));
    let full = (x.len() / INT4_GROUP).min(blocks.len());
    let mask = _mm_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); 4];
    for (g, block) in blocks[..full].iter().enumerate() {
        let scale = _mm256_set1_ps(block.scale.to_f32());
        let offset = _mm256_set1_ps(block.offset.to_f32());
        // SAFETY: `codes` is 16 bytes.
        let bytes = unsafe { _mm_loadu_si128(block.codes.as_ptr() as *const __m128i) };
        let lo = _mm_and_si128(bytes, mask);
        let hi = _mm_and_si128(_mm_srli_epi16::<4>(bytes), mask);
        // Byte i holds values 2i (low nibble) and 2i+1 (high nibble):
        // interleaving restores element order 0..15 and 16..31.
        let first = _mm_unpacklo_epi8(lo, hi);
        let second = _mm_unpackhi_epi8(lo, hi);
        let quarters = [first, _mm_srli_si128::<8>(first), second, _mm_srli_si128::<8>(second)];
        let xg = x[g * INT4_GROUP..].as_ptr();
        for (l, (acc, codes)) in acc.iter_mut().zip(quarters).enumerate() {
            let q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes));
            let w = _mm256_fmadd_ps(q, scale, offset);
            // SAFETY: group g is full, so 32 activations from g·32 exist.
            let vx = unsafe { _mm256_loadu_ps(xg.add(8 * l)) };
            *acc = _mm256_fmadd_ps(vx, w, *acc);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let tail_start = full * INT4_GROUP;
    hsum(sum) + generic::dot_int4(&x[tail_start..], &blocks[full..])
}
