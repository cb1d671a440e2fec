//! The x86-64 tiers of the grouped quantizer's grid search
//! (`grid_search`): a candidate grid scored 8 weights per instruction with
//! AVX2, or 16 with AVX-512 (the 16 products then added to the 8 partial
//! sums as two halves, in order), `f16` rounding with F16C. The operations
//! and their order are those of the scalar reference — the same 8
//! interleaved partial sums, added lane after lane, no fused multiply-add —
//! so the scores, and hence the chosen grids, are bit-identical to it.
//!
//! Safety: every function here needs AVX2 and F16C (and AVX-512F for the
//! `Avx512` tier); `grouped::row_quantizer` hands out the tiers only after
//! `Isa::is_available` confirmed them.

use std::arch::x86_64::*;

use super::grid_search::{fit_tail, Fit, Grid, Scalar, Tier, BATCH, LANES};

/// AVX2 + F16C.
pub(super) struct Avx2;

/// AVX-512F (besides AVX2 + F16C).
pub(super) struct Avx512;

impl Tier for Avx2 {
    #[inline(always)]
    fn round(v: &mut [f32; BATCH]) {
        // SAFETY: this tier runs only where F16C is present (module docs).
        unsafe { round_f16c(v) }
    }

    #[inline(always)]
    fn fit<const WEIGHTED: bool>(g: Grid, x: &[f32], importance: &[f32], max_code: f32) -> Fit {
        // SAFETY: this tier runs only where AVX2 is present (module docs).
        unsafe { fit_avx2::<WEIGHTED>(g, x, importance, max_code) }
    }

    #[inline(always)]
    fn codes(g: Grid, x: &[f32], max_code: f32, out: &mut [u8]) {
        Scalar::codes(g, x, max_code, out)
    }
}

impl Tier for Avx512 {
    #[inline(always)]
    fn round(v: &mut [f32; BATCH]) {
        // SAFETY: this tier runs only where AVX-512F is present (module docs).
        unsafe { round_avx512(v) }
    }

    #[inline(always)]
    fn fit<const WEIGHTED: bool>(g: Grid, x: &[f32], importance: &[f32], max_code: f32) -> Fit {
        // SAFETY: this tier runs only where AVX-512F is present (module docs).
        unsafe { fit_avx512::<WEIGHTED>(g, x, importance, max_code) }
    }

    #[inline(always)]
    fn codes(g: Grid, x: &[f32], max_code: f32, out: &mut [u8]) {
        Scalar::codes(g, x, max_code, out)
    }
}

/// Each value rounded to `f16` and back, 8 per instruction.
#[inline]
#[target_feature(enable = "avx,f16c")]
fn round_f16c(v: &mut [f32; BATCH]) {
    for half in v.chunks_exact_mut(8) {
        // SAFETY: `half` holds 8 floats.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(half.as_ptr()));
            _mm256_storeu_ps(half.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
    }
}

/// Each value rounded to `f16` and back, 16 per instruction.
#[inline]
#[target_feature(enable = "avx512f")]
fn round_avx512(v: &mut [f32; BATCH]) {
    // SAFETY: `v` holds 16 floats.
    unsafe {
        let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm512_loadu_ps(v.as_ptr()));
        _mm512_storeu_ps(v.as_mut_ptr(), _mm512_cvtph_ps(h));
    }
}

/// The grid's constants, broadcast.
#[derive(Clone, Copy)]
struct Consts {
    scale: __m256,
    offset: __m256,
    inv: __m256,
    top: __m256,
}

impl Consts {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new(g: Grid, inv: f32, max_code: f32) -> Self {
        Self {
            scale: _mm256_set1_ps(g.scale),
            offset: _mm256_set1_ps(g.offset),
            inv: _mm256_set1_ps(inv),
            top: _mm256_set1_ps(max_code),
        }
    }
}

/// The codes of 8 values as `f32`: `((v − offset)·inv)` clamped to
/// `0..=top` (NaN kept, as `f32::clamp` does: `max`/`min` return their
/// second operand when one is NaN), plus ½, truncated; NaN (truncated to
/// `i32::MIN`) becomes 0, as `as u8` makes it.
#[inline]
#[target_feature(enable = "avx2")]
fn codes8(c: Consts, xs: __m256) -> __m256 {
    let t = _mm256_mul_ps(_mm256_sub_ps(xs, c.offset), c.inv);
    let t = _mm256_min_ps(c.top, _mm256_max_ps(_mm256_setzero_ps(), t));
    let q = _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_set1_ps(0.5)));
    _mm256_cvtepi32_ps(_mm256_max_epi32(q, _mm256_setzero_si256()))
}

/// Adds the four products of 8 values to the four partial sums
/// `[err, sq, sqq, sqx]`: `w·e·e`, `w·q`, `w·q·q`, `w·q·x` with `e = scale·q
/// + offset − x`, each product rounded as the scalar code rounds it.
#[inline]
#[target_feature(enable = "avx2")]
fn accumulate8<const WEIGHTED: bool>(
    acc: &mut [__m256; 4],
    c: Consts,
    xs: __m256,
    q: __m256,
    ws: __m256,
) {
    let e = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(c.scale, q), c.offset), xs);
    let (we, wq) = if WEIGHTED { (_mm256_mul_ps(ws, e), _mm256_mul_ps(ws, q)) } else { (e, q) };
    acc[0] = _mm256_add_ps(acc[0], _mm256_mul_ps(we, e));
    acc[1] = _mm256_add_ps(acc[1], wq);
    acc[2] = _mm256_add_ps(acc[2], _mm256_mul_ps(wq, q));
    acc[3] = _mm256_add_ps(acc[3], _mm256_mul_ps(wq, xs));
}

/// Each of the four partial sums' lanes added in lane order, lane 0 plus
/// lane 1 plus lane 2 and so on (as the scalar code adds them), all four at
/// once: a 4 × 8 transpose, then seven vertical adds.
#[inline]
#[target_feature(enable = "avx2")]
fn lane_sums(acc: [__m256; 4]) -> Fit {
    let t0 = _mm256_unpacklo_ps(acc[0], acc[1]);
    let t1 = _mm256_unpackhi_ps(acc[0], acc[1]);
    let t2 = _mm256_unpacklo_ps(acc[2], acc[3]);
    let t3 = _mm256_unpackhi_ps(acc[2], acc[3]);
    let pd = _mm256_castps_pd;
    // u[l] holds lane l of each sum in its low half, lane l + 4 in its high.
    let u = [
        _mm256_castpd_ps(_mm256_unpacklo_pd(pd(t0), pd(t2))),
        _mm256_castpd_ps(_mm256_unpackhi_pd(pd(t0), pd(t2))),
        _mm256_castpd_ps(_mm256_unpacklo_pd(pd(t1), pd(t3))),
        _mm256_castpd_ps(_mm256_unpackhi_pd(pd(t1), pd(t3))),
    ];
    let mut s = _mm256_castps256_ps128(u[0]);
    for v in &u[1..] {
        s = _mm_add_ps(s, _mm256_castps256_ps128(*v));
    }
    for v in &u {
        s = _mm_add_ps(s, _mm256_extractf128_ps::<1>(*v));
    }
    let mut out = [0.0f32; 4];
    // SAFETY: `out` holds 4 floats.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), s) };
    Fit { err: out[0], sq: out[1], sqq: out[2], sqx: out[3] }
}

/// `Scalar::fit` with AVX2, 8 values per instruction.
#[inline]
#[target_feature(enable = "avx2")]
fn fit_avx2<const WEIGHTED: bool>(g: Grid, x: &[f32], importance: &[f32], max_code: f32) -> Fit {
    debug_assert!(!WEIGHTED || importance.len() == x.len());
    let inv = g.inverse_scale();
    let c = Consts::new(g, inv, max_code);
    let body = x.len() / LANES * LANES;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 ≤ body ≤ x.len() (and importance.len() if read).
        let (xs, ws) = unsafe {
            let ws = if WEIGHTED {
                _mm256_loadu_ps(importance.as_ptr().add(i))
            } else {
                _mm256_setzero_ps()
            };
            (_mm256_loadu_ps(x.as_ptr().add(i)), ws)
        };
        accumulate8::<WEIGHTED>(&mut acc, c, xs, codes8(c, xs), ws);
        i += LANES;
    }
    let mut fit = lane_sums(acc);
    let rest = &importance[body.min(importance.len())..];
    fit_tail::<WEIGHTED>(&mut fit, g, inv, &x[body..], rest, max_code);
    fit
}

/// `Scalar::fit` with AVX-512: codes and products of 16 values per
/// instruction, added to the 8-lane partial sums as two halves in order.
#[inline]
#[target_feature(enable = "avx512f,avx2")]
fn fit_avx512<const WEIGHTED: bool>(g: Grid, x: &[f32], importance: &[f32], max_code: f32) -> Fit {
    debug_assert!(!WEIGHTED || importance.len() == x.len());
    let inv = g.inverse_scale();
    let c = Consts::new(g, inv, max_code);
    let (scale, offset) = (_mm512_set1_ps(g.scale), _mm512_set1_ps(g.offset));
    let (vinv, top) = (_mm512_set1_ps(inv), _mm512_set1_ps(max_code));
    let (zero, half) = (_mm512_setzero_ps(), _mm512_set1_ps(0.5));
    let wide = x.len() / 16 * 16;
    let body = x.len() / LANES * LANES;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < wide {
        // SAFETY: i + 16 ≤ wide ≤ x.len() (and importance.len() if read).
        let (xs, ws) = unsafe {
            let ws = if WEIGHTED { _mm512_loadu_ps(importance.as_ptr().add(i)) } else { zero };
            (_mm512_loadu_ps(x.as_ptr().add(i)), ws)
        };
        let t = _mm512_mul_ps(_mm512_sub_ps(xs, offset), vinv);
        let t = _mm512_min_ps(top, _mm512_max_ps(zero, t));
        let q = _mm512_cvttps_epi32(_mm512_add_ps(t, half));
        let q = _mm512_cvtepi32_ps(_mm512_max_epi32(q, _mm512_setzero_si512()));
        let e = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(scale, q), offset), xs);
        let (we, wq) = if WEIGHTED { (_mm512_mul_ps(ws, e), _mm512_mul_ps(ws, q)) } else { (e, q) };
        let terms = [_mm512_mul_ps(we, e), wq, _mm512_mul_ps(wq, q), _mm512_mul_ps(wq, xs)];
        for (a, t) in acc.iter_mut().zip(terms) {
            let lo = _mm512_castps512_ps256(t);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(t)));
            *a = _mm256_add_ps(_mm256_add_ps(*a, lo), hi);
        }
        i += 16;
    }
    while i < body {
        // SAFETY: i + 8 ≤ body ≤ x.len() (and importance.len() if read).
        let (xs, ws) = unsafe {
            let ws = if WEIGHTED {
                _mm256_loadu_ps(importance.as_ptr().add(i))
            } else {
                _mm256_setzero_ps()
            };
            (_mm256_loadu_ps(x.as_ptr().add(i)), ws)
        };
        accumulate8::<WEIGHTED>(&mut acc, c, xs, codes8(c, xs), ws);
        i += LANES;
    }
    let mut fit = lane_sums(acc);
    let rest = &importance[body.min(importance.len())..];
    fit_tail::<WEIGHTED>(&mut fit, g, inv, &x[body..], rest, max_code);
    fit
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Isa;

    /// The bits of a fit (NaN as one value).
    fn bits(f: Fit) -> [u32; 4] {
        [f.err, f.sq, f.sqq, f.sqx].map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() })
    }

    /// Scores `g` with every tier this CPU has and the scalar reference.
    fn agree(g: Grid, x: &[f32], w: &[f32], top: f32) -> Result<(), TestCaseError> {
        let plain = bits(Scalar::fit::<false>(g, x, w, top));
        let weighted = bits(Scalar::fit::<true>(g, x, w, top));
        if Isa::Avx2.is_available() {
            prop_assert_eq!(bits(Avx2::fit::<false>(g, x, w, top)), plain, "avx2 {:?}", g);
            prop_assert_eq!(bits(Avx2::fit::<true>(g, x, w, top)), weighted, "avx2 {:?}", g);
            let mut v = [
                g.scale,
                g.offset,
                -g.scale,
                x[0],
                1e-7,
                65519.0,
                65520.0,
                f32::NAN,
                x[x.len() - 1],
                0.0,
                -0.0,
                3e-5,
                6.1e-5,
                1.0009766,
                2.0,
                -1e9,
            ];
            let mut want = v;
            Scalar::round(&mut want);
            let mut wide = v;
            Avx2::round(&mut v);
            prop_assert_eq!(v.map(f32::to_bits), want.map(f32::to_bits));
            if Isa::Avx512Vnni.is_available() {
                Avx512::round(&mut wide);
                prop_assert_eq!(wide.map(f32::to_bits), want.map(f32::to_bits));
            }
        }
        if Isa::Avx512Vnni.is_available() {
            prop_assert_eq!(bits(Avx512::fit::<false>(g, x, w, top)), plain, "avx512 {:?}", g);
            prop_assert_eq!(bits(Avx512::fit::<true>(g, x, w, top)), weighted, "avx512 {:?}", g);
        }
        Ok(())
    }

    proptest! {
        /// Every tier scores a grid with exactly the scalar reference's
        /// bits, at every length from 1 to 128 (ragged against 8 and 16),
        /// for ordinary grids and degenerate ones (zero or infinite scale,
        /// infinite offset), with a NaN among the values or not.
        #[test]
        fn every_tier_scores_as_the_reference(
            len in 1usize..=128,
            x in proptest::collection::vec(-2.0f32..2.0, 128),
            w in proptest::collection::vec(0.01f32..10.0, 128),
            scale in 0.001f32..1.0,
            offset in -2.0f32..0.0,
            nan in proptest::option::of(0usize..128),
            top in prop_oneof![Just(3.0f32), Just(7.0), Just(15.0), Just(255.0)],
        ) {
            let mut x = x[..len].to_vec();
            if let Some(i) = nan {
                x[i % len] = f32::NAN;
            }
            let w = &w[..len];
            for g in [
                Grid { scale, offset },
                Grid { scale: 0.0, offset },
                Grid { scale: f32::INFINITY, offset },
                Grid { scale, offset: f32::NEG_INFINITY },
            ] {
                agree(g, &x, w, top)?;
            }
        }
    }
}
