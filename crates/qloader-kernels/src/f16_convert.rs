//! `f32 → f16` rounding of whole slices, and `f16` rounding of single values
//! in code that is already compiled for a tier. `half`'s per-value
//! conversions check the CPU on every call and cannot be inlined into a
//! vector loop; these round 16 values per instruction with AVX-512, 8 with
//! F16C (the `avx2` tier), and use `half`'s portable software conversion (the
//! scalar reference) on the generic tier and for tails. Every tier gives the
//! same bits: rounding is to nearest, ties to even (NaN payloads aside).
//! (The other way, `f16 → f32` slices, is the dispatched
//! [`Kernels::unpack_f16`](crate::Kernels).)

use half::f16;

use crate::Isa;

/// `dst[i] = src[i]` rounded to the nearest `f16` (ties to even; beyond
/// ±65504 becomes ±∞), on the best tier of this CPU.
///
/// # Panics
/// If the slices differ in length.
pub fn f32_to_f16_slice(src: &[f32], dst: &mut [f16]) {
    f32_to_f16_slice_on(crate::Kernels::detect().isa, src, dst);
}

/// [`f32_to_f16_slice`] on tier `isa` (the generic code where the CPU lacks
/// it).
///
/// # Panics
/// If the slices differ in length.
pub fn f32_to_f16_slice_on(isa: Isa, src: &[f32], dst: &mut [f16]) {
    assert_eq!(src.len(), dst.len(), "f32 → f16: slices differ in length");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier is available on this CPU (checked): AVX-512F,
        // and F16C with the avx2 tier it includes.
        Isa::Avx512Vnni if isa.is_available() => unsafe { x86::narrow_avx512(src, dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier is available on this CPU (checked); it includes F16C.
        Isa::Avx2 if isa.is_available() => unsafe { x86::narrow_f16c(src, dst) },
        _ => narrow_scalar(src, dst),
    }
}

/// The scalar reference: `half`'s software conversion, value by value.
pub fn narrow_scalar(src: &[f32], dst: &mut [f16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16::from_f32_const(s);
    }
}

/// `v` rounded to `f16` and back, in portable code (inlinable, no CPU
/// check).
#[inline(always)]
pub fn round_trip_scalar(v: f32) -> f32 {
    f16::from_f32_const(v).to_f32_const()
}

/// The x86-64 forms. Every function needs F16C (and AVX-512F for the `512`
/// ones); callers check the CPU.
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    /// `v` as `f16` bits, with F16C.
    #[inline]
    #[target_feature(enable = "f16c")]
    pub(crate) fn to_f16_f16c(v: f32) -> f16 {
        let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(v));
        f16::from_bits(_mm_extract_epi16::<0>(h) as u16)
    }

    /// F16C, 8 values per instruction.
    ///
    /// # Safety
    /// The CPU must support AVX and F16C; the slices must be equally long.
    #[target_feature(enable = "avx,f16c")]
    pub(crate) unsafe fn narrow_f16c(src: &[f32], dst: &mut [f16]) {
        let body = src.len().min(dst.len()) / 8 * 8;
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr() as *mut u16);
        let mut i = 0;
        while i < body {
            // SAFETY: i + 8 ≤ body, within both slices.
            unsafe {
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(s.add(i)));
                _mm_storeu_si128(d.add(i) as *mut __m128i, h);
            }
            i += 8;
        }
        for (o, &v) in dst[body..].iter_mut().zip(&src[body..]) {
            *o = to_f16_f16c(v);
        }
    }

    /// AVX-512F, 16 values per instruction; the tail with F16C.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and F16C; the slices must be equally
    /// long.
    #[target_feature(enable = "avx512f,avx,f16c")]
    pub(crate) unsafe fn narrow_avx512(src: &[f32], dst: &mut [f16]) {
        let body = src.len().min(dst.len()) / 16 * 16;
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr() as *mut u16);
        let mut i = 0;
        while i < body {
            // SAFETY: i + 16 ≤ body, within both slices.
            unsafe {
                let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm512_loadu_ps(s.add(i)));
                _mm256_storeu_si256(d.add(i) as *mut __m256i, h);
            }
            i += 16;
        }
        // SAFETY: the caller's CPU has F16C and AVX.
        unsafe { narrow_f16c(&src[body..], &mut dst[body..]) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every f16 bit pattern, and f32 values around every f16 rounding
    /// boundary, plus specials.
    fn f32_cases() -> Vec<f32> {
        let mut v =
            vec![0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, 65504.0, 65520.0, 1e-8, -1e-8];
        for bits in (0..=u16::MAX).step_by(7) {
            let h = f16::from_bits(bits).to_f32_const();
            if h.is_finite() {
                let b = h.to_bits();
                v.extend([h, f32::from_bits(b + 1), f32::from_bits(b.wrapping_sub(1))]);
                // Halfway to the next f16 (a tie) and either side of it.
                let next = f16::from_bits(bits.wrapping_add(1)).to_f32_const();
                if next.is_finite() {
                    let mid = (h as f64 + next as f64) / 2.0;
                    let mid32 = mid as f32;
                    v.extend([mid32, f32::from_bits(mid32.to_bits() + 1)]);
                }
            }
        }
        v
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// Every tier this CPU has rounds exactly as the scalar reference, at
    /// every length up to 40 (ragged against 8 and 16) and on a long slice.
    #[test]
    fn every_tier_matches_the_scalar_reference() {
        let values = f32_cases();
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            let lengths = (0..=40).chain([values.len()]);
            for n in lengths {
                let src = &values[values.len() - n..];
                let (mut want, mut got) = (vec![f16::ZERO; n], vec![f16::ZERO; n]);
                narrow_scalar(src, &mut want);
                f32_to_f16_slice_on(isa, src, &mut got);
                for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                    assert!(
                        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                        "{isa} narrows {} to {b:?}, reference {a:?}",
                        src[i]
                    );
                }
            }
        }
    }

    /// The scalar reference is IEEE rounding: it agrees with `half`'s own
    /// conversion (hardware where present) and is exact on the way back.
    #[test]
    fn scalar_reference_rounds_to_nearest_even() {
        for v in f32_cases() {
            let r = f16::from_f32_const(v);
            assert!(same(r.to_f32(), f16::from_f32(v).to_f32()), "{v}");
            assert!(same(round_trip_scalar(v), r.to_f32()), "{v}");
        }
        // 1 + 2⁻¹¹ is halfway between 1 and the next f16: ties go to even (1).
        assert_eq!(round_trip_scalar(1.0 + 2f32.powi(-11)), 1.0);
        assert_eq!(round_trip_scalar(1.0 + 3.0 * 2f32.powi(-11)), 1.0 + 2.0 * 2f32.powi(-10));
    }

    /// The single-value F16C forms agree with the reference.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn single_value_forms_match() {
        if !Isa::Avx2.is_available() {
            return;
        }
        for v in f32_cases() {
            // SAFETY: F16C is present (the avx2 tier includes it).
            let h = unsafe { x86::to_f16_f16c(v) };
            assert!(same(h.to_f32_const(), round_trip_scalar(v)), "{v}");
        }
    }
}
