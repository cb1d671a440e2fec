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
pub(super) fn f16_to_f32(h: f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h.to_bits() as i32)))
}

/// Sum of the 8 `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn hsum_i32(v: __m256i) -> i32 {
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

/// Horizontal sums of eight `i32` vectors, reduced in pairs: lane `g` of the
/// result is the sum of all lanes of `d[g]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn transpose_sum8(d: [__m256i; 8]) -> __m256i {
    // Within each 128-bit half, hadd(a, b) = [a0+a1, a2+a3, b0+b1, b2+b3].
    let h01 = _mm256_hadd_epi32(d[0], d[1]);
    let h23 = _mm256_hadd_epi32(d[2], d[3]);
    let h45 = _mm256_hadd_epi32(d[4], d[5]);
    let h67 = _mm256_hadd_epi32(d[6], d[7]);
    // Low half: the low-half sums of d0..d3; high half: their high-half sums.
    let q0 = _mm256_hadd_epi32(h01, h23);
    let q1 = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(q0, q1),
        _mm256_permute2x128_si256::<0x31>(q0, q1),
    )
}

/// Per activation row: the scaled group dots and the offsets' part.
struct Accumulators<const R: usize> {
    scaled: [__m256; R],
    offset: [__m256; R],
}

impl<const R: usize> Accumulators<R> {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn new() -> Self {
        Self { scaled: [_mm256_setzero_ps(); R], offset: [_mm256_setzero_ps(); R] }
    }
}

/// The integer dot products of group `g` with every activation row; with
/// `CHECKED`, blocks at or past `blocks` count as zero.
///
/// # Safety
/// The CPU must support AVX2; unless `CHECKED`, the group's blocks must all
/// be below `blocks`; the row and activations must hold `blocks` blocks.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_dots<
    const BITS: u8,
    const R: usize,
    const PER_GROUP: usize,
    const CHECKED: bool,
>(
    xs: &[ActivationRow<'_>; R],
    codes: *const u8,
    block_bytes: usize,
    g: usize,
    blocks: usize,
) -> [__m256i; R] {
    let mut dots = [_mm256_setzero_si256(); R];
    let first = g * PER_GROUP;
    let last = if CHECKED { (first + PER_GROUP).min(blocks) } else { first + PER_GROUP };
    for b in first..last {
        // SAFETY: b < blocks: block b lies within the row's codes.
        let w = unsafe { unpack_block::<BITS>(codes.add(b * block_bytes)) };
        for r in 0..R {
            // SAFETY: each activation row holds `blocks` whole blocks.
            let a = unsafe {
                _mm256_loadu_si256(xs[r].codes.as_ptr().add(b * BLOCK) as *const __m256i)
            };
            dots[r] = _mm256_add_epi32(dots[r], block_dot_a8::<BITS>(w, a));
        }
    }
    dots
}

/// Groups `g0..g0 + 8`, all whole, into `acc`: their block dots, reduced
/// to one vector of group sums, scaled and offset eight at a time.
///
/// # Safety
/// As for [`group_dots`] unchecked; the CPU must also support FMA and F16C;
/// `g0 + 8` must not exceed the group count.
// Results are indexed [activation row][group]; the loops run over groups.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn eight_groups<const BITS: u8, const R: usize, const PER_GROUP: usize>(
    xs: &[ActivationRow<'_>; R],
    row: GroupedRow<'_>,
    act: &super::ActGroups<'_, R>,
    g0: usize,
    acc: &mut Accumulators<R>,
) {
    let block_bytes = if BITS == 0 { BLOCK } else { row.layout.block_bytes() };
    let mut dots = [[_mm256_setzero_si256(); 8]; R];
    for i in 0..8 {
        // SAFETY: forwarded from the caller (whole groups: `blocks` unused).
        let d = unsafe {
            group_dots::<BITS, R, PER_GROUP, false>(
                xs,
                row.codes.as_ptr(),
                block_bytes,
                g0 + i,
                usize::MAX,
            )
        };
        for r in 0..R {
            dots[r][i] = d[r];
        }
    }
    let mut group_sums = [_mm256_setzero_si256(); R];
    for r in 0..R {
        group_sums[r] = transpose_sum8(dots[r]);
    }
    // SAFETY: forwarded from the caller.
    unsafe { scale_eight_groups(row, act, g0, group_sums, acc) };
}

/// Adds eight groups' integer sums times their weight and activation scales,
/// and their offsets times the activations' scaled group sums, into `acc`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `g0 + 8` must not exceed the
/// row's scales, offsets or any of the activations' groups.
// Per-row arrays (sums, scales, accumulators) are indexed by activation row.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_eight_groups<const R: usize>(
    row: GroupedRow<'_>,
    act: &super::ActGroups<'_, R>,
    g0: usize,
    group_sums: [__m256i; R],
    acc: &mut Accumulators<R>,
) {
    debug_assert!(g0 + 8 <= row.scales.len().min(row.offsets.len()));
    // SAFETY: g0 + 8 ≤ the group count (the caller's contract).
    let (scales, offsets) = unsafe {
        (
            _mm256_cvtph_ps(_mm_loadu_si128(row.scales.as_ptr().add(g0) as *const __m128i)),
            _mm256_cvtph_ps(_mm_loadu_si128(row.offsets.as_ptr().add(g0) as *const __m128i)),
        )
    };
    for r in 0..R {
        debug_assert!(g0 + 8 <= act.sums[r].len().min(act.scales[r].len()));
        let s = _mm256_cvtepi32_ps(group_sums[r]);
        // SAFETY: as above, for the activations' group scales and sums.
        let (a_scales, a_sums) = unsafe {
            (
                _mm256_loadu_ps(act.scales[r].as_ptr().add(g0)),
                _mm256_loadu_ps(act.sums[r].as_ptr().add(g0)),
            )
        };
        acc.scaled[r] = _mm256_fmadd_ps(s, _mm256_mul_ps(scales, a_scales), acc.scaled[r]);
        acc.offset[r] = _mm256_fmadd_ps(offsets, a_sums, acc.offset[r]);
    }
}

/// Blocks read per 32-byte load by [`vector_dots`]: two int4 blocks or four
/// int2 blocks (0: no such kernel for this width).
const fn blocks_per_vector(bits: u8) -> usize {
    match bits {
        4 => 2,
        2 => 4,
        _ => 0,
    }
}

/// The integer dot products of `V = blocks_per_vector(BITS)` packed blocks
/// `V·v..V·v + V`, read as one 32-byte vector, with every activation row.
/// The vector's `V` bit planes (`and` after a shift) each meet the matching
/// activations of [`ActivationRow::paired_codes`] (int4) or
/// [`ActivationRow::quad_codes`] (int2); the planes' `maddubs` results are
/// added in `i16` (|sum| ≤ 2·2·15·127 or 4·2·3·127, both < 2¹⁵) before one
/// widening `madd`. Result lanes: block `j` of the vector owns lanes
/// `8j/V..8(j+1)/V`.
///
/// # Safety
/// The CPU must support AVX2; the vector's 32 code bytes must be readable and
/// every activation row's interleaved codes must hold its blocks.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn vector_dots<const BITS: u8, const R: usize>(
    xs: &[ActivationRow<'_>; R],
    codes: *const u8,
    v: usize,
) -> [__m256i; R] {
    debug_assert!(blocks_per_vector(BITS) > 0);
    // SAFETY: the caller guarantees the vector's 32 bytes.
    let packed = unsafe { _mm256_loadu_si256(codes.add(v * 32) as *const __m256i) };
    let mask = _mm256_set1_epi8(((1u16 << BITS) - 1) as i8);
    let planes: [__m256i; 4] = if BITS == 4 {
        let hi = _mm256_srli_epi16::<4>(packed);
        [_mm256_and_si256(packed, mask), _mm256_and_si256(hi, mask), packed, packed]
    } else {
        [
            _mm256_and_si256(packed, mask),
            _mm256_and_si256(_mm256_srli_epi16::<2>(packed), mask),
            _mm256_and_si256(_mm256_srli_epi16::<4>(packed), mask),
            _mm256_and_si256(_mm256_srli_epi16::<6>(packed), mask),
        ]
    };
    let n = blocks_per_vector(BITS).max(1);
    let mut dots = [_mm256_setzero_si256(); R];
    for r in 0..R {
        let interleaved = if BITS == 4 { xs[r].paired_codes } else { xs[r].quad_codes };
        // SAFETY: the caller guarantees the vector's n·32 activation codes.
        let a = unsafe { interleaved.as_ptr().add(v * n * BLOCK) as *const __m256i };
        let mut sum16 = _mm256_setzero_si256();
        for (p, plane) in planes.iter().enumerate().take(n) {
            // SAFETY: as above.
            let ap = unsafe { _mm256_loadu_si256(a.add(p)) };
            sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(*plane, ap));
        }
        dots[r] = _mm256_madd_epi16(sum16, _mm256_set1_epi16(1));
    }
    dots
}

/// [`eight_groups`] for packed int4 or int2 codes, several blocks per load
/// ([`vector_dots`]), over whole groups only. A vector holds 1, 2 or 4
/// groups' partial sums (or a group spans several vectors); either way eight
/// groups reduce to one vector of group sums in group order.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; groups `g0..g0 + 8` must lie
/// wholly within the row, the row's codes and every activation row's
/// interleaved codes must hold their blocks, and `g0` must be a multiple of 8.
// Results are indexed [activation row][group]; the loops run over groups.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn eight_packed_groups<const BITS: u8, const R: usize, const PER_GROUP: usize>(
    xs: &[ActivationRow<'_>; R],
    row: GroupedRow<'_>,
    act: &super::ActGroups<'_, R>,
    g0: usize,
    acc: &mut Accumulators<R>,
) {
    let codes = row.codes.as_ptr();
    // (`max(1)`: other widths never get here, but are still instantiated.)
    let per_vector = blocks_per_vector(BITS).max(1);
    let first = g0 * PER_GROUP / per_vector;
    let mut group_sums = [_mm256_setzero_si256(); R];
    if PER_GROUP >= per_vector {
        // A group spans one or more whole vectors.
        let vectors_per_group = PER_GROUP / per_vector;
        let mut dots = [[_mm256_setzero_si256(); 8]; R];
        for i in 0..8 {
            for k in 0..vectors_per_group {
                // SAFETY: forwarded from the caller.
                let d =
                    unsafe { vector_dots::<BITS, R>(xs, codes, first + i * vectors_per_group + k) };
                for r in 0..R {
                    dots[r][i] = _mm256_add_epi32(dots[r][i], d[r]);
                }
            }
        }
        for r in 0..R {
            group_sums[r] = transpose_sum8(dots[r]);
        }
    } else if per_vector / PER_GROUP == 2 {
        // Four vectors, each [group 2i (4 lanes) | group 2i+1 (4 lanes)]:
        // hadd twice gives [g0 g2 g4 g6 | g1 g3 g5 g7].
        let mut d = [[_mm256_setzero_si256(); 4]; R];
        for i in 0..4 {
            // SAFETY: forwarded from the caller.
            let v = unsafe { vector_dots::<BITS, R>(xs, codes, first + i) };
            for r in 0..R {
                d[r][i] = v[r];
            }
        }
        for r in 0..R {
            let q = _mm256_hadd_epi32(
                _mm256_hadd_epi32(d[r][0], d[r][1]),
                _mm256_hadd_epi32(d[r][2], d[r][3]),
            );
            group_sums[r] =
                _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        }
    } else {
        // Two vectors, each [g4i g4i g4i+1 g4i+1 | g4i+2 g4i+2 g4i+3 g4i+3]:
        // one hadd gives [g0 g1 g4 g5 | g2 g3 g6 g7].
        // SAFETY: forwarded from the caller.
        let (v0, v1) = unsafe {
            (vector_dots::<BITS, R>(xs, codes, first), vector_dots::<BITS, R>(xs, codes, first + 1))
        };
        for r in 0..R {
            let q = _mm256_hadd_epi32(v0[r], v1[r]);
            group_sums[r] =
                _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7));
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { scale_eight_groups(row, act, g0, group_sums, acc) };
}

/// Prefetches the codes of groups `g0..g0 + 8` (`group_bytes` each) and, once
/// per 32 groups, the line of scales and of offsets as far ahead.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch_eight_groups(row: GroupedRow<'_>, group_bytes: usize, g0: usize) {
    super::prefetch_codes(row.codes.as_ptr(), g0 * group_bytes, 8 * group_bytes);
    if g0.is_multiple_of(32) {
        let ahead = g0 + super::PREFETCH_BYTES / 8;
        _mm_prefetch::<_MM_HINT_T0>(row.scales.as_ptr().wrapping_add(ahead) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(row.offsets.as_ptr().wrapping_add(ahead) as *const i8);
    }
}

/// The grouped·a8 product of one weight row with `R` activation rows at once:
/// each block is unpacked once and multiplied into every row. Within a group
/// the block dots are summed exactly in `i32`; eight groups at a time are
/// then reduced to one vector of group sums, converted once and multiplied by
/// the eight groups' weight and activation scales, and the offsets' part,
/// `Σ_g offset_g · scale_x,g · Σ_{c∈g} a_c`, is added from the activations'
/// precomputed scaled group sums in the same step. Every accumulator stays in a register.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; every activation row must have
/// the same (padded) length.
// The tail loop indexes scales, offsets and per-row sums by group.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_grouped_a8_rows<const BITS: u8, const R: usize, const PER_GROUP: usize>(
    xs: &[ActivationRow<'_>; R],
    row: GroupedRow<'_>,
    out: &mut [f32; R],
) {
    debug_assert_eq!(PER_GROUP, row.layout.group() / BLOCK);
    let super::GroupedA8Shape { block_bytes, blocks, groups, act } =
        super::GroupedA8Shape::check::<BITS>(xs, row);

    let mut acc = Accumulators::<R>::new();
    // Chunks of eight groups whose blocks all exist, then the rest.
    let full = (blocks / (8 * PER_GROUP)) * 8;
    let mut g0 = 0;
    if BITS == 4 || BITS == 2 {
        let per_vector = blocks_per_vector(BITS);
        let interleaved = |x: &ActivationRow<'_>| {
            if BITS == 4 {
                x.paired_codes.len()
            } else {
                x.quad_codes.len()
            }
        };
        assert!(xs
            .iter()
            .all(|x| interleaved(x) >= full * PER_GROUP / per_vector * per_vector * BLOCK));
        while g0 < full {
            prefetch_eight_groups(row, block_bytes * PER_GROUP, g0);
            // SAFETY: the assertions above: whole groups, a multiple of 8
            // (so of 8·PER_GROUP blocks, whole vectors), which the codes and
            // interleaved activations hold.
            unsafe { eight_packed_groups::<BITS, R, PER_GROUP>(xs, row, &act, g0, &mut acc) };
            g0 += 8;
        }
    }
    while g0 < full {
        prefetch_eight_groups(row, block_bytes * PER_GROUP, g0);
        // SAFETY: the assertions above; same features as this function.
        unsafe { eight_groups::<BITS, R, PER_GROUP>(xs, row, &act, g0, &mut acc) };
        g0 += 8;
    }
    // The last (fewer than eight) groups one at a time, in scalar.
    let mut tail = [0.0f32; R];
    for g in g0..groups {
        // SAFETY: as above; blocks past the row's end are skipped.
        let dots = unsafe {
            group_dots::<BITS, R, PER_GROUP, true>(xs, row.codes.as_ptr(), block_bytes, g, blocks)
        };
        let (scale, offset) = (f16_to_f32(row.scales[g]), f16_to_f32(row.offsets[g]));
        for r in 0..R {
            tail[r] +=
                hsum_i32(dots[r]) as f32 * scale * act.scales[r][g] + offset * act.sums[r][g];
        }
    }
    let Accumulators { scaled, offset } = acc;
    for r in 0..R {
        out[r] = hsum(_mm256_add_ps(scaled[r], offset[r])) + tail[r];
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
