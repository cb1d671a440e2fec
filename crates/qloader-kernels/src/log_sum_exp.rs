//! The log-normaliser of a row of logits, `(max, ln Σ exp(vᵢ − max))` with
//! the sum in `f64`: what a softmax, a cross-entropy or a KL divergence over
//! a vocabulary needs once per row. With a 49152-token vocabulary it is one
//! `f64` exponential per logit, and libm's scalar `exp` made it the largest
//! cost of the analyzer's end-to-end runs. Here the exponential is
//! vectorised (AVX-512: 8 lanes, AVX2 + FMA: 4), with a degree-13
//! polynomial after a Cody–Waite reduction, accurate to about 1 ulp; the
//! scalar reference is libm's `exp` summed in order. Tiers differ from the
//! reference only by rounding (a few ulp per term; see the tests).
//! Terms below `exp(−708)` are dropped: the sum holds `exp(0) = 1` (the
//! maximum's own term), so they cannot change it.

use crate::Isa;

/// `(max, ln Σ exp(vᵢ − max))` of `row`, on the best tier of this CPU. An
/// empty row gives `(−∞, −∞)`; a NaN or `+∞` logit makes the sum NaN, as in
/// the reference.
pub fn log_normaliser(row: &[f32]) -> (f32, f64) {
    log_normaliser_on(crate::Kernels::detect().isa, row)
}

/// [`log_normaliser`] on tier `isa` (the reference where the CPU lacks it).
pub fn log_normaliser_on(isa: Isa, row: &[f32]) -> (f32, f64) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum = match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier is available on this CPU (checked): AVX-512F,
        // besides the AVX2 and FMA of the tier below.
        Isa::Avx512Vnni if isa.is_available() => unsafe { x86::sum_exp_avx512(row, max) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier is available on this CPU (checked): AVX2 and FMA.
        Isa::Avx2 if isa.is_available() => unsafe { x86::sum_exp_avx2(row, max) },
        _ => sum_exp_scalar(row, max),
    };
    (max, sum.ln())
}

/// The reference: `Σ exp(vᵢ − max)` with libm's `exp`, in order.
pub fn sum_exp_scalar(row: &[f32], max: f32) -> f64 {
    row.iter().map(|&v| ((v - max) as f64).exp()).sum()
}

/// The x86-64 tiers. Each function needs the features it is compiled with;
/// callers check the CPU.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::sum_exp_scalar;

    /// `ln 2` split so that `n · LN2_HI` is exact for |n| < 2¹¹.
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    /// Below this, `exp` is under 3.3e-308 and dropped (module docs).
    const FLOOR: f64 = -708.0;
    /// `1/k!` for k = 13 down to 2: the Taylor series of `exp` on
    /// |r| ≤ ln2/2, whose remainder (< 4e-18 relative) is far below an ulp.
    const COEFFS: [f64; 12] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
    ];

    /// `exp(x)` of 8 values `x ≤ 0` (0 below [`FLOOR`], NaN kept).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn exp8(x: __m512d) -> __m512d {
        let n = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_pd(x, _mm512_set1_pd(std::f64::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_pd(n, _mm512_set1_pd(LN2_HI), x);
        let r = _mm512_fnmadd_pd(n, _mm512_set1_pd(LN2_LO), r);
        let mut p = _mm512_set1_pd(COEFFS[0]);
        for &c in &COEFFS[1..] {
            p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c));
        }
        let one = _mm512_set1_pd(1.0);
        p = _mm512_fmadd_pd(p, r, one);
        p = _mm512_fmadd_pd(p, r, one);
        let e = _mm512_scalef_pd(p, n);
        // Zero where x < FLOOR (−∞ included); NaN compares false and stays.
        let low = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(x, _mm512_set1_pd(FLOOR));
        _mm512_mask_mov_pd(e, low, _mm512_setzero_pd())
    }

    /// `exp(x)` of 4 values `x ≤ 0` (0 below [`FLOOR`], NaN kept).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn exp4(x: __m256d) -> __m256d {
        let n = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_pd(x, _mm256_set1_pd(std::f64::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(LN2_HI), x);
        let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(LN2_LO), r);
        let mut p = _mm256_set1_pd(COEFFS[0]);
        for &c in &COEFFS[1..] {
            p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
        }
        let one = _mm256_set1_pd(1.0);
        p = _mm256_fmadd_pd(p, r, one);
        p = _mm256_fmadd_pd(p, r, one);
        // 2ⁿ from its exponent bits; n ≥ −1022 wherever x ≥ FLOOR (NaN
        // lanes convert to i32::MIN, but their p is NaN already).
        let low = _mm256_cmp_pd::<_CMP_LT_OQ>(x, _mm256_set1_pd(FLOOR));
        let n = _mm256_blendv_pd(n, _mm256_setzero_pd(), low);
        let bits = _mm256_add_epi64(
            _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)),
            _mm256_set1_epi64x(1023),
        );
        let scale = _mm256_castsi256_pd(_mm256_slli_epi64::<52>(bits));
        _mm256_blendv_pd(_mm256_mul_pd(p, scale), _mm256_setzero_pd(), low)
    }

    /// `Σ exp(vᵢ − max)`, 16 values per step in two 8-lane sums.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sum_exp_avx512(row: &[f32], max: f32) -> f64 {
        let body = row.len() / 16 * 16;
        let (mut a, mut b) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut i = 0;
        while i < body {
            // SAFETY: i + 16 ≤ body ≤ row.len().
            let v = unsafe { _mm512_loadu_ps(row.as_ptr().add(i)) };
            // (v − max) in f32 first, as the reference rounds it.
            let d = _mm512_sub_ps(v, _mm512_set1_ps(max));
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(d));
            let hi =
                _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(d))));
            a = _mm512_add_pd(a, exp8(lo));
            b = _mm512_add_pd(b, exp8(hi));
            i += 16;
        }
        _mm512_reduce_add_pd(_mm512_add_pd(a, b)) + sum_exp_scalar(&row[body..], max)
    }

    /// `Σ exp(vᵢ − max)`, 8 values per step in two 4-lane sums.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sum_exp_avx2(row: &[f32], max: f32) -> f64 {
        let body = row.len() / 8 * 8;
        let (mut a, mut b) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut i = 0;
        while i < body {
            // SAFETY: i + 8 ≤ body ≤ row.len().
            let v = unsafe { _mm256_loadu_ps(row.as_ptr().add(i)) };
            // (v − max) in f32 first, as the reference rounds it.
            let d = _mm256_sub_ps(v, _mm256_set1_ps(max));
            a = _mm256_add_pd(a, exp4(_mm256_cvtps_pd(_mm256_castps256_ps128(d))));
            b = _mm256_add_pd(b, exp4(_mm256_cvtps_pd(_mm256_extractf128_ps::<1>(d))));
            i += 8;
        }
        let s = _mm256_add_pd(a, b);
        let s = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd::<1>(s));
        let s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
        _mm_cvtsd_f64(s) + sum_exp_scalar(&row[body..], max)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every tier's normaliser agrees with the reference to rounding:
    /// logits of a 49152 vocabulary, ragged lengths, extreme spreads.
    #[test]
    fn every_tier_matches_the_reference() {
        let mut state = 7u32;
        let mut next = || {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (state >> 8) as f32 / (1u32 << 24) as f32
        };
        let vocab: Vec<f32> = (0..49152).map(|_| next() * 30.0 - 20.0).collect();
        let wide: Vec<f32> = (0..1000).map(|i| -1000.0 + 2.0 * i as f32 * next()).collect();
        let cases: Vec<&[f32]> =
            vec![&vocab, &wide, &vocab[..1], &vocab[..7], &vocab[..15], &vocab[..17], &vocab[..33]];
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for row in &cases {
                let (m, want) = log_normaliser_on(Isa::Generic, row);
                let (m2, got) = log_normaliser_on(isa, row);
                assert_eq!(m, m2);
                // Summed in another order: 49152 terms may differ by a few
                // ulp of the sum.
                assert!(
                    (got - want).abs() <= 1e-13 * want.abs().max(1.0),
                    "{isa}, {} logits: {got} vs {want}",
                    row.len()
                );
            }
        }
    }

    /// Special values behave as the reference's: −∞ logits add nothing,
    /// NaN and +∞ make the sum NaN, an empty row is (−∞, −∞).
    #[test]
    fn special_values() {
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            let mut row = vec![0.5f32; 40];
            row[3] = f32::NEG_INFINITY;
            row[20] = -800.0;
            let (m, l) = log_normaliser_on(isa, &row);
            assert_eq!(m, 0.5);
            assert!((l - 38f64.ln()).abs() < 1e-14, "{isa}: {l}");
            row[30] = f32::NAN;
            assert!(log_normaliser_on(isa, &row).1.is_nan(), "{isa}");
            row[30] = f32::INFINITY;
            assert!(log_normaliser_on(isa, &row).1.is_nan(), "{isa}");
            assert_eq!(log_normaliser_on(isa, &[]), (f32::NEG_INFINITY, f64::NEG_INFINITY));
        }
    }

    /// The vector exponentials are within 2 ulp of libm's over the range
    /// they serve, x in [−708, 0], and 0 below it.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_exp_is_accurate() {
        use std::arch::x86_64::*;
        let ulps = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
        let xs: Vec<f64> = (0..=200_000)
            .map(|i| -708.0 * i as f64 / 200_000.0)
            .chain([-0.0, -1e-300, -709.0, -1e4, f64::NEG_INFINITY])
            .collect();
        for chunk in xs.chunks_exact(8) {
            let mut got8 = [0.0f64; 8];
            let mut got4 = [0.0f64; 8];
            if Isa::Avx512Vnni.is_available() {
                // SAFETY: AVX-512F is present (checked); 8 values in, 8 out.
                unsafe {
                    _mm512_storeu_pd(got8.as_mut_ptr(), x86::exp8(_mm512_loadu_pd(chunk.as_ptr())))
                };
            }
            if Isa::Avx2.is_available() {
                for h in 0..2 {
                    // SAFETY: AVX2 and FMA are present (checked); 4 in, 4 out.
                    unsafe {
                        _mm256_storeu_pd(
                            got4[4 * h..].as_mut_ptr(),
                            x86::exp4(_mm256_loadu_pd(chunk[4 * h..].as_ptr())),
                        )
                    };
                }
            }
            for (i, &x) in chunk.iter().enumerate() {
                let want = if x < -708.0 { 0.0 } else { x.exp() };
                if Isa::Avx512Vnni.is_available() {
                    assert!(ulps(got8[i], want) <= 2, "avx512 exp({x}) = {} vs {want}", got8[i]);
                }
                if Isa::Avx2.is_available() {
                    assert!(ulps(got4[i], want) <= 2, "avx2 exp({x}) = {} vs {want}", got4[i]);
                }
            }
        }
    }

    proptest! {
        /// Rows of any length (ragged against 8 and 16) sum as the
        /// reference does, to rounding.
        #[test]
        fn ragged_rows(xs in proptest::collection::vec(-60.0f32..10.0, 1..100)) {
            for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
                let (m, want) = log_normaliser_on(Isa::Generic, &xs);
                let (m2, got) = log_normaliser_on(isa, &xs);
                prop_assert_eq!(m, m2);
                prop_assert!((got - want).abs() <= 1e-14 * want.abs().max(1.0), "{}: {} vs {}", isa, got, want);
            }
        }
    }
}
