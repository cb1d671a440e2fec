//! AVX-512 VNNI row kernels (tier `avx512vnni`) for the per-channel int8
//! product with int8 activations (`vpdpbusd`: 64 unsigned × signed byte
//! products, each four summed into one `i32` lane exactly) and the batch-1
//! products of `f32` and int8 weights with `f32` activations, four weight
//! rows at a time (the activations, wider than L1 for large layers, are
//! loaded once per four rows). Grouped weights run as tiles
//! ([`super::avx512_tiles`]) and batches of `f32` activations through the
//! expanded GEMM ([`super::avx512_expanded`]); the other float kernels are
//! the AVX2 ones.
//!
//! Safety: every `unsafe fn` here needs AVX-512 F, BW, VL and VNNI plus AVX2,
//! FMA and F16C; the dispatch table only exposes the safe wrappers after
//! `is_x86_feature_detected!` confirmed all of them.

use std::arch::x86_64::*;

use super::{L2_PREFETCH_BYTES, PREFETCH_BYTES};

/// `Σ_g s_g · Σ a·q` over int8 activation codes in `-127..=127`, quantized
/// in groups of `group` columns with scale `s_g`, and int8 weight codes:
/// each group's sum exact in `i32` lanes by `vpdpbusd(|a|, q negated where
/// a < 0)` (the unsigned operand must be non-negative; four products of at
/// most 127² never overflow), then converted and scaled into one `f32`
/// accumulator — no horizontal sum per group. Groups are read 64 bytes at a
/// time through masked loads (masked-off bytes are neither read nor
/// counted), so any group width and row length work; the weight codes are
/// prefetched a group at a time.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI; `scales` must hold one scale
/// per group of the row.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn avx512_dot_int8_a8(a: &[i8], q: &[i8], scales: &[f32], group: usize) -> f32 {
    let n = a.len().min(q.len());
    assert!(group > 0 && scales.len() >= n.div_ceil(group), "one scale per group");
    let step = |acc: __m512i, va: __m512i, vq: __m512i| {
        let negative = _mm512_movepi8_mask(va);
        let signed = _mm512_mask_sub_epi8(vq, negative, _mm512_setzero_si512(), vq);
        _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(va), signed)
    };
    let mut total = _mm512_setzero_ps();
    let mut start = 0;
    for &scale in scales.iter().take(n.div_ceil(group)) {
        let end = (start + group).min(n);
        super::prefetch_codes(q.as_ptr() as *const u8, start, end - start);
        let mut isum = _mm512_setzero_si512();
        let mut i = start;
        while i < end {
            let left = end - i;
            let mask: __mmask64 = if left >= 64 { u64::MAX } else { (1u64 << left) - 1 };
            // SAFETY: the mask covers only bytes i..end ⊆ 0..n of both slices.
            let (va, vq) = unsafe {
                (
                    _mm512_maskz_loadu_epi8(mask, a.as_ptr().add(i)),
                    _mm512_maskz_loadu_epi8(mask, q.as_ptr().add(i)),
                )
            };
            isum = step(isum, va, vq);
            i += 64;
        }
        total = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(scale), total);
        start = end;
    }
    _mm512_reduce_add_ps(total)
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
