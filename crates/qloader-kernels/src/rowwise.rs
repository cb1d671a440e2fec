//! The row-wise operations between a decoder's products — RMS
//! normalisation, SwiGLU's gating, a scaled softmax — written once in plain
//! Rust that vectorises (sixteen-lane accumulators, the branch-free
//! [`crate::attention::exp`]) and compiled for the baseline, AVX2 + FMA and
//! AVX-512, the widest this CPU has picked once at run time. Many rows at
//! once are spread over the thread team.

use std::sync::OnceLock;

use crate::attention::{exp, madd, tree_sum};
use crate::dispatch::Isa;
use crate::team;

/// The operations of one tier.
#[derive(Clone, Copy)]
pub struct RowOps {
    /// `x · γ / √(mean(x²) + ε)` for one row, in place.
    pub rms_norm: fn(&mut [f32], &[f32], f32),
    /// `gate = gate·σ(gate) · up`, in place.
    pub silu_mul: fn(&mut [f32], &[f32]),
    /// `softmax(scale · x)`, in place.
    pub scaled_softmax: fn(&mut [f32], f32),
}

/// The operations of the best tier this CPU has.
pub fn ops() -> &'static RowOps {
    static CHOSEN: OnceLock<RowOps> = OnceLock::new();
    CHOSEN.get_or_init(|| ops_for(crate::Kernels::detect().isa))
}

/// The operations compiled for `isa` (the baseline where it is not
/// available).
pub fn ops_for(isa: Isa) -> RowOps {
    macro_rules! tier {
        ($features:literal) => {{
            #[target_feature(enable = $features)]
            fn rms_norm(x: &mut [f32], gamma: &[f32], eps: f32) {
                rms_norm_body::<true>(x, gamma, eps)
            }
            #[target_feature(enable = $features)]
            fn silu_mul(gate: &mut [f32], up: &[f32]) {
                silu_mul_body::<true>(gate, up)
            }
            #[target_feature(enable = $features)]
            fn scaled_softmax(x: &mut [f32], scale: f32) {
                scaled_softmax_body(x, scale)
            }
            // The tier's features are available: checked where this macro
            // is used.
            RowOps {
                // SAFETY: see above.
                rms_norm: |x, g, e| unsafe { rms_norm(x, g, e) },
                // SAFETY: see above.
                silu_mul: |g, u| unsafe { silu_mul(g, u) },
                // SAFETY: see above.
                scaled_softmax: |x, s| unsafe { scaled_softmax(x, s) },
            }
        }};
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni if isa.is_available() => tier!("avx512f,avx2,fma"),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512Vnni if Isa::Avx2.is_available() => tier!("avx2,fma"),
        _ => RowOps {
            rms_norm: rms_norm_body::<false>,
            silu_mul: silu_mul_body::<false>,
            scaled_softmax: scaled_softmax_body,
        },
    }
}

/// Rows of at least this many values in all are spread over the team.
const PARALLEL_MIN_VALUES: usize = 1 << 15;

/// RMS normalisation of every row of `x` (width `gamma.len()`), in place.
pub fn rms_norm(x: &mut [f32], gamma: &[f32], eps: f32) {
    let f = ops().rms_norm;
    by_rows(x, gamma.len(), |row| f(row, gamma, eps));
}

/// SwiGLU's gating over every value, in place: `gate = SiLU(gate) · up`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "gate and up differ in length");
    let f = ops().silu_mul;
    if gate.len() < PARALLEL_MIN_VALUES {
        return f(gate, up);
    }
    let chunk = gate.len().div_ceil(4 * team::threads()).next_multiple_of(16);
    team::for_each_item_mut(gate, chunk, |i, g| f(g, &up[i * chunk..i * chunk + g.len()]));
}

/// `f(row)` for every `width`-wide row of `x`, on the team when large.
fn by_rows(x: &mut [f32], width: usize, f: impl Fn(&mut [f32]) + Sync) {
    if width == 0 {
        return;
    }
    if x.len() < PARALLEL_MIN_VALUES {
        x.chunks_exact_mut(width).for_each(f);
        return;
    }
    let rows = (x.len() / width).div_ceil(4 * team::threads()).max(1);
    team::for_each_item_mut(x, rows * width, |_, block| block.chunks_exact_mut(width).for_each(&f));
}

/// `Σ x²` over sixteen lanes, then a tree of halvings.
#[inline(always)]
fn sum_squares<const FMA: bool>(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    for c in chunks {
        for l in 0..16 {
            acc[l] = madd::<FMA>(c[l], c[l], acc[l]);
        }
    }
    tree_sum(&mut acc) + tail
}

#[inline(always)]
fn rms_norm_body<const FMA: bool>(x: &mut [f32], gamma: &[f32], eps: f32) {
    let mean_sq = sum_squares::<FMA>(x) / x.len().max(1) as f32;
    let inv = 1.0 / (mean_sq + eps).sqrt();
    for (v, g) in x.iter_mut().zip(gamma) {
        *v *= inv * g;
    }
}

#[inline(always)]
fn silu_mul_body<const FMA: bool>(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

#[inline(always)]
fn scaled_softmax_body(x: &mut [f32], scale: f32) {
    for v in x.iter_mut() {
        *v *= scale;
    }
    crate::attention::softmax(x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tier_matches_the_formulas() {
        let x: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 / 20.0 - 2.5).collect();
        let gamma: Vec<f32> = (0..100).map(|i| 0.5 + (i % 7) as f32 / 10.0).collect();
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            let ops = ops_for(isa);
            let mut a = x[..100].to_vec();
            (ops.rms_norm)(&mut a, &gamma, 1e-5);
            let ms = x[..100].iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / 100.0;
            for (i, v) in a.iter().enumerate() {
                let want = x[i] as f64 / (ms + 1e-5).sqrt() * gamma[i] as f64;
                assert!((*v as f64 - want).abs() < 1e-5, "{isa} rms_norm [{i}]");
            }
            let mut g = x.clone();
            (ops.silu_mul)(&mut g, &x[..]);
            for (i, v) in g.iter().enumerate() {
                let z = x[i] as f64;
                let want = z / (1.0 + (-z).exp()) * z;
                assert!((*v as f64 - want).abs() < 1e-5 * (1.0 + want.abs()), "{isa} silu [{i}]");
            }
            let mut s = x[..37].to_vec();
            (ops.scaled_softmax)(&mut s, 0.5);
            let z: f64 = x[..37].iter().map(|v| (0.5 * *v as f64).exp()).sum();
            for (i, v) in s.iter().enumerate() {
                let want = (0.5 * x[i] as f64).exp() / z;
                assert!((*v as f64 - want).abs() < 1e-6, "{isa} softmax [{i}]");
            }
        }
    }

    #[test]
    fn large_inputs_are_split_over_the_team_with_the_same_result() {
        let x: Vec<f32> = (0..64 * 1024).map(|i| ((i * 13) % 97) as f32 / 30.0 - 1.5).collect();
        let gamma = vec![1.25f32; 1024];
        let (mut a, mut b) = (x.clone(), x.clone());
        rms_norm(&mut a, &gamma, 1e-6);
        team::serial(|| rms_norm(&mut b, &gamma, 1e-6));
        assert_eq!(a, b);
        let (mut a, mut b) = (x.clone(), x.clone());
        silu_mul(&mut a, &x);
        team::serial(|| silu_mul(&mut b, &x));
        assert_eq!(a, b);
    }
}
