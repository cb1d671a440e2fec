//! The inner loop of attention for one query vector and one head: scores
//! against every visible cached key, a softmax, and the weighted sum of the
//! cached values. Written once in plain Rust (16 independent accumulators,
//! an exponential without branches or calls) and compiled three times —
//! baseline, AVX2 + FMA and AVX-512 — so that the compiler vectorises it for
//! the widest tier this CPU has, picked once at run time.

use std::sync::OnceLock;

use crate::dispatch::Isa;

/// Where one key/value head's vectors sit in a KV cache: position `p`'s
/// vector is `data[p·stride + offset ..][..d]`.
#[derive(Debug, Clone, Copy)]
pub struct HeadView<'a> {
    /// The cache (keys or values), `positions × stride`.
    pub data: &'a [f32],
    /// Values per position.
    pub stride: usize,
    /// The head's first value within a position.
    pub offset: usize,
    /// Values per head.
    pub d: usize,
}

impl HeadView<'_> {
    #[inline(always)]
    fn at(&self, p: usize) -> &[f32] {
        &self.data[p * self.stride + self.offset..][..self.d]
    }
}

type AttendFn = fn(&[f32], HeadView<'_>, HeadView<'_>, usize, f32, &mut [f32], &mut [f32]);

/// `out = Σ_p softmax(scale · q·k_p)_p · v_p` over positions `0..visible`
/// for each of the query heads in `q` (`heads × d`, `d = out.len() /
/// heads`), all reading the same keys and values (grouped-query
/// attention): each key and value vector is loaded once for all of them.
/// `scores` is scratch of at least `heads × visible` values.
///
/// # Panics
/// If a view is shorter than `visible` positions, `scores` than `heads ×
/// visible`, or `q` and `out` differ in length.
pub fn attend(
    q: &[f32],
    keys: HeadView<'_>,
    values: HeadView<'_>,
    visible: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    static CHOSEN: OnceLock<AttendFn> = OnceLock::new();
    let f = CHOSEN.get_or_init(|| attend_for(crate::Kernels::detect().isa));
    f(q, keys, values, visible, scale, scores, out)
}

/// The compilation of [`attend`] for `isa`.
pub fn attend_for(isa: Isa) -> AttendFn {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni if isa.is_available() => |q, k, v, n, s, sc, o| {
            // SAFETY: the tier is available on this CPU (checked above).
            unsafe { attend_avx512(q, k, v, n, s, sc, o) }
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512Vnni if Isa::Avx2.is_available() => |q, k, v, n, s, sc, o| {
            // SAFETY: AVX2 and FMA are available on this CPU (checked above).
            unsafe { attend_avx2(q, k, v, n, s, sc, o) }
        },
        _ => attend_heads::<false>,
    }
}

/// [`attend_heads`] built with AVX-512.
///
/// # Safety
/// The CPU must support AVX-512 F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn attend_avx512(
    q: &[f32],
    keys: HeadView<'_>,
    values: HeadView<'_>,
    visible: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    attend_heads::<true>(q, keys, values, visible, scale, scores, out)
}

/// [`attend_heads`] built with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_avx2(
    q: &[f32],
    keys: HeadView<'_>,
    values: HeadView<'_>,
    visible: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    attend_heads::<true>(q, keys, values, visible, scale, scores, out)
}

/// Query heads four (then fewer) at a time through [`attend_group`].
#[inline(always)]
fn attend_heads<const FMA: bool>(
    q: &[f32],
    keys: HeadView<'_>,
    values: HeadView<'_>,
    visible: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    assert_eq!(q.len(), out.len(), "one output per query value");
    let d = keys.d;
    assert!(d > 0 && q.len().is_multiple_of(d), "whole heads");
    let heads = q.len() / d;
    let mut h = 0;
    while h < heads {
        let (q, o) = (&q[h * d..], &mut out[h * d..]);
        let args = (keys, values, visible, scale);
        h += match heads - h {
            1 => attend_group::<1, FMA>(q, args, scores, o),
            2 => attend_group::<2, FMA>(q, args, scores, o),
            3 => attend_group::<3, FMA>(q, args, scores, o),
            _ => attend_group::<4, FMA>(q, args, scores, o),
        };
    }
}

/// `a·b + c`, fused where the build has FMA.
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Attention of `G` query heads (the first `G·d` values of `q`) into the
/// first `G·d` values of `out`; returns `G`.
#[inline(always)]
fn attend_group<const G: usize, const FMA: bool>(
    q: &[f32],
    (keys, values, visible, scale): (HeadView<'_>, HeadView<'_>, usize, f32),
    scores: &mut [f32],
    out: &mut [f32],
) -> usize {
    let d = keys.d;
    let scores = &mut scores[..G * visible];
    for p in 0..visible {
        let k = keys.at(p);
        for g in 0..G {
            scores[g * visible + p] = dot::<FMA>(&q[g * d..(g + 1) * d], k) * scale;
        }
    }
    let mut inv = [0.0f32; G];
    for (g, inv) in inv.iter_mut().enumerate() {
        *inv = 1.0 / exp_shifted(&mut scores[g * visible..(g + 1) * visible]);
    }
    // The weighted sums of values, 64 columns at a time in local
    // accumulators (registers), position after position.
    let mut c0 = 0;
    while c0 < d {
        let w = (d - c0).min(64);
        let mut acc = [[0.0f32; 64]; G];
        for p in 0..visible {
            let v = &values.at(p)[c0..c0 + w];
            for (g, acc) in acc.iter_mut().enumerate() {
                let s = scores[g * visible + p];
                if let Ok(v) = <&[f32; 64]>::try_from(v) {
                    for c in 0..64 {
                        acc[c] = madd::<FMA>(s, v[c], acc[c]);
                    }
                } else {
                    for (a, &x) in acc.iter_mut().zip(v) {
                        *a = madd::<FMA>(s, x, *a);
                    }
                }
            }
        }
        for (g, acc) in acc.iter().enumerate() {
            for (o, a) in out[g * d + c0..g * d + c0 + w].iter_mut().zip(acc) {
                *o = a * inv[g];
            }
        }
        c0 += w;
    }
    G
}

/// `f` folded over `x`, sixteen lanes at a time.
#[inline(always)]
fn lanes_fold(x: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [init; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder().iter().fold(init, |a, &v| f(a, v));
    for c in chunks {
        for l in 0..16 {
            lanes[l] = f(lanes[l], c[l]);
        }
    }
    lanes.iter().fold(tail, |a, &v| f(a, v))
}

/// `Σ a·b`: 64 values at a time in four independent 16-lane sums.
#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 64];
    let mut ac = a.chunks_exact(64);
    let mut bc = b.chunks_exact(64);
    for (x, y) in (&mut ac).zip(&mut bc) {
        for l in 0..64 {
            acc[l] = madd::<FMA>(x[l], y[l], acc[l]);
        }
    }
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    tree_sum(&mut acc) + tail
}

/// The sum of `acc` (a power-of-two number of lanes) by a tree of halvings:
/// vector shuffles, not a chain of scalar adds.
#[inline(always)]
pub(crate) fn tree_sum(acc: &mut [f32]) -> f32 {
    let mut width = acc.len() / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0]
}

/// `x ← exp(x − max x)` in place; returns the sum of the new values (at
/// least 1 for a non-empty row).
#[inline(always)]
fn exp_shifted(x: &mut [f32]) -> f32 {
    let max = lanes_fold(x, f32::NEG_INFINITY, f32::max);
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    lanes_fold(x, 0.0, |a, b| a + b)
}

/// Softmax in place: `exp(x − max) / Σ`.
#[inline(always)]
pub fn softmax(x: &mut [f32]) {
    if x.is_empty() {
        return;
    }
    let inv = 1.0 / exp_shifted(x);
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `e^x` for `x ≤ 0` (and up to 88), within 2 ulp, with no branches or
/// calls so that loops over it vectorise: `x = k·ln 2 + r`, `|r| ≤ ln 2 / 2`,
/// `e^x = 2^k · e^r` with a degree-6 Taylor polynomial for `e^r`; below
/// `−87.3` the result is 0.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let underflow = x < -87.336_54;
    let x = x.clamp(-87.336_54, 88.376_26);
    // Round to nearest without a call: adding 1.5·2²³ leaves the integer in
    // the low mantissa bits (read back as bits: a vector integer op, where a
    // float-to-int conversion would not vectorise as well).
    const MAGIC: f32 = 12_582_912.0;
    let t = x * LOG2E + MAGIC;
    let k = t - MAGIC;
    let k_int = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let two_k = f32::from_bits(((k_int + 127) as u32) << 23);
    if underflow {
        0.0
    } else {
        p * two_k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_softmax_range() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 87.0 * i as f32 / 200_000.0;
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn every_tier_matches_a_plain_attention() {
        let (d, stride, offset, visible) = (64, 192, 64, 37);
        let keys: Vec<f32> =
            (0..visible * stride).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
        let values: Vec<f32> =
            (0..visible * stride).map(|i| ((i * 53) % 97) as f32 / 40.0 - 1.2).collect();
        let q: Vec<f32> = (0..d).map(|i| ((i * 11) % 13) as f32 / 6.0 - 1.0).collect();
        let scale = 0.125;
        // Plain f64 attention.
        let s: Vec<f64> = (0..visible)
            .map(|p| {
                (0..d).map(|c| q[c] as f64 * keys[p * stride + offset + c] as f64).sum::<f64>()
                    * scale as f64
            })
            .collect();
        let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = s.iter().map(|v| (v - max).exp()).sum();
        let want: Vec<f64> = (0..d)
            .map(|c| {
                (0..visible)
                    .map(|p| (s[p] - max).exp() / z * values[p * stride + offset + c] as f64)
                    .sum()
            })
            .collect();
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            // Six query heads (groups of four and two), all equal to `q`.
            let heads = 6;
            let qs: Vec<f32> = (0..heads).flat_map(|_| q.iter().copied()).collect();
            let mut scores = vec![0.0; heads * visible];
            let mut out = vec![f32::NAN; heads * d];
            let k = HeadView { data: &keys, stride, offset, d };
            let v = HeadView { data: &values, stride, offset, d };
            attend_for(isa)(&qs, k, v, visible, scale, &mut scores, &mut out);
            for (i, o) in out.iter().enumerate() {
                let c = i % d;
                assert!((*o as f64 - want[c]).abs() < 1e-5, "{isa} [{i}]: {o} vs {}", want[c]);
            }
        }
    }
}
