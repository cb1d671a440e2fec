//! Activations quantized on the fly to int8 for the integer-dot kernels
//! (W8A8, W4A8, W3A8, W2A8), with one symmetric scale per group of `group`
//! values (32, 64 or 128: the weight layout's group, so that a group's
//! integer dot product needs one scale from each side): `x ≈ scale_g · a`,
//! `a ∈ -127..=127`, `scale_g = max|x_g| / 127`. A scale per group rather
//! than per row keeps the few outlier features of a hidden state from
//! flattening every other feature's codes (llama.cpp's `Q8_0` makes the same
//! choice with 32 values per scale).
//!
//! Rows are padded with zeros to whole 32-value blocks (so kernels never need
//! a tail case); each group's `scale_g · Σ a` is kept, because a grouped
//! weight's offset contributes `offset · Σ a` to the group's dot product.
//! Many rows are coded on the thread team, each row by code compiled for the
//! widest vector tier this CPU has.

use qloader_format::grouped::{BLOCK, GROUPS};

/// `m` rows of int8 activations.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedActivations {
    rows: usize,
    cols: usize,
    padded: usize,
    group: usize,
    codes: Vec<i8>,
    /// Per row, one scale per group.
    scales: Vec<f32>,
    /// Per row and group, `scale_g · Σ code`.
    scaled_sums: Vec<f32>,
}

impl QuantizedActivations {
    /// Quantizes `m` rows of `x` (`m × cols`, row-major) with one scale per
    /// `group` values.
    ///
    /// # Panics
    /// If `x` is not `m × cols` or `group` is not 32, 64 or 128.
    pub fn quantize(x: &[f32], m: usize, cols: usize, group: usize) -> Self {
        assert_eq!(x.len(), m * cols, "x must be m × cols");
        assert!(GROUPS.contains(&group), "activation groups are 32, 64 or 128 values");
        let blocks = cols.div_ceil(BLOCK);
        let padded = blocks * BLOCK;
        let groups = cols.div_ceil(group);
        let mut codes = vec![0i8; m * padded];
        // The codes, row by row (on the team for many rows)…
        let code_row = row_coder();
        let rows_per_item = (PARALLEL_MIN_VALUES / padded.max(1)).max(1);
        if m * padded >= PARALLEL_MIN_VALUES && padded > 0 {
            crate::team::for_each_item_mut(&mut codes, rows_per_item * padded, |item, out| {
                for (r, o) in out.chunks_exact_mut(padded).enumerate() {
                    let i = item * rows_per_item + r;
                    code_row(&x[i * cols..(i + 1) * cols], group, o);
                }
            });
        } else {
            for (i, o) in codes.chunks_exact_mut(padded.max(1)).take(m).enumerate() {
                code_row(&x[i * cols..(i + 1) * cols], group, o);
            }
        }
        // …then the scales (the same formula again) and the sums.
        let mut scales = Vec::with_capacity(m * groups);
        let mut scaled_sums = Vec::with_capacity(m * groups);
        for i in 0..m {
            let row = &x[i * cols..(i + 1) * cols];
            let out = &codes[i * padded..(i + 1) * padded];
            for (xg, og) in row.chunks(group).zip(out.chunks(group)) {
                let scale = group_scale(xg);
                scales.push(scale);
                let sum: i32 = og.iter().map(|&a| a as i32).sum();
                scaled_sums.push(scale * sum as f32);
            }
        }
        Self { rows: m, cols, padded, group, codes, scales, scaled_sums }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (before padding).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Values per scale.
    pub fn group(&self) -> usize {
        self.group
    }

    /// Row `i`'s codes (padded to whole blocks), group scales and scaled
    /// group sums.
    pub fn row(&self, i: usize) -> (&[i8], &[f32], &[f32]) {
        let groups = self.cols.div_ceil(self.group);
        (
            &self.codes[i * self.padded..(i + 1) * self.padded],
            &self.scales[i * groups..(i + 1) * groups],
            &self.scaled_sums[i * groups..(i + 1) * groups],
        )
    }
}

/// Activations of at least this many values are coded on the team.
const PARALLEL_MIN_VALUES: usize = 1 << 15;

/// `max|x| / 127` for a group of values (0 for an all-zero or non-finite
/// group).
#[inline(always)]
fn group_scale(x: &[f32]) -> f32 {
    let max_abs = max_abs(x);
    if max_abs > 0.0 && max_abs.is_finite() {
        max_abs / 127.0
    } else {
        0.0
    }
}

/// Codes one row (`out` is its padded length; the padding stays as it is).
type RowCoder = fn(&[f32], usize, &mut [i8]);

/// [`code_row`] compiled for the widest tier this CPU has.
fn row_coder() -> RowCoder {
    static CHOSEN: std::sync::OnceLock<RowCoder> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| match crate::Kernels::detect().isa {
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx512Vnni => |row, group, out| {
            #[target_feature(enable = "avx512f,avx512bw,avx2")]
            fn wide(row: &[f32], group: usize, out: &mut [i8]) {
                code_row::<true>(row, group, out)
            }
            // SAFETY: the tier (which includes these features) was detected.
            unsafe { wide(row, group, out) }
        },
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx2 => |row, group, out| {
            #[target_feature(enable = "avx2")]
            fn wide(row: &[f32], group: usize, out: &mut [i8]) {
                code_row::<true>(row, group, out)
            }
            // SAFETY: the tier (which includes AVX2) was detected.
            unsafe { wide(row, group, out) }
        },
        _ => code_row::<false>,
    })
}

/// The codes of one row, group by group: `round(x / scale_g)`. `ROUND`: with
/// `f32::round` (vector rounding in the AVX2/AVX-512 builds), else
/// [`round_to_code`]; both round half away from zero, clamp to ±127 and code
/// NaN as 0.
#[inline(always)]
fn code_row<const ROUND: bool>(row: &[f32], group: usize, out: &mut [i8]) {
    for (xg, og) in row.chunks(group).zip(out.chunks_mut(group)) {
        let scale = group_scale(xg);
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        for (o, &v) in og.iter_mut().zip(xg) {
            *o = if ROUND {
                // Through i32: a vector conversion (NaN → 0 as well).
                ((v * inv).round().clamp(-127.0, 127.0) as i32) as i8
            } else {
                round_to_code(v * inv)
            };
        }
    }
}

/// `max |v|` over `row` (NaN ignored), eight lanes at a time so that it
/// vectorises.
fn max_abs(row: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(0.0f32, |a, &v| a.max(v.abs()));
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            let v = v.abs();
            *l = if v > *l { v } else { *l };
        }
    }
    lanes.iter().fold(tail, |a, &v| a.max(v))
}

/// `r` rounded half away from zero (as `f32::round`) and clamped to
/// `-127..=127`, without a call to `roundf` (the baseline x86-64 target has no
/// rounding instruction): `|r|` is truncated by the conversion, and one more
/// is added where the dropped fraction is at least a half (exact: both the
/// truncation and the difference are exact for `|r| ≤ 127`).
#[inline(always)]
fn round_to_code(r: f32) -> i8 {
    let t = r.abs();
    // NaN codes as 0 (like `f32::round` followed by a saturating cast).
    let t = if t <= 127.0 {
        t
    } else if t.is_nan() {
        0.0
    } else {
        127.0
    };
    let whole = t as i32;
    let q = whole + (t - whole as f32 >= 0.5) as i32;
    (if r < 0.0 { -q } else { q }) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_within_half_step_and_padding_is_zero() {
        // Feature 3 is an outlier: only its own group's scale grows.
        let x: Vec<f32> = (0..2 * 100)
            .map(|i| if i % 100 == 3 { 90.0 } else { (i as f32 * 0.37).sin() * 3.0 })
            .collect();
        for group in [32, 64, 128] {
            let q = QuantizedActivations::quantize(&x, 2, 100, group);
            assert_eq!((q.rows(), q.cols(), q.group()), (2, 100, group));
            for i in 0..2 {
                let (codes, scales, scaled_sums) = q.row(i);
                assert_eq!(codes.len(), 128);
                assert_eq!(scales.len(), 100usize.div_ceil(group));
                assert!(codes[100..].iter().all(|&c| c == 0));
                for (c, &v) in x[i * 100..(i + 1) * 100].iter().enumerate() {
                    let s = scales[c / group];
                    assert!((codes[c] as f32 * s - v).abs() <= s / 2.0 + 1e-6, "{c}");
                }
                let max0 =
                    x[i * 100..i * 100 + group.min(100)].iter().fold(0f32, |a, v| a.max(v.abs()));
                assert_eq!(scales[0], max0 / 127.0);
                if group < 100 {
                    assert!(scales[1] < 3.0 / 127.0 + 1e-6, "the outlier stays in group 0");
                }
                let scaled: Vec<f32> = codes
                    .chunks(group)
                    .zip(scales)
                    .map(|(g, s)| s * g.iter().map(|&a| a as i32).sum::<i32>() as f32)
                    .collect();
                assert_eq!(scaled_sums, &scaled[..]);
            }
        }
    }

    #[test]
    fn both_roundings_agree() {
        let special = [0.5f32, -0.5, 1.5, -2.5, 126.5, -126.49, 127.6, -300.0, f32::NAN, 3.4999];
        let sweep = (-60_000..60_000).map(|i| i as f32 / 400.0);
        for v in special.into_iter().chain(sweep) {
            let wide = (v.round().clamp(-127.0, 127.0) as i32) as i8;
            assert_eq!(wide, round_to_code(v), "{v}");
        }
        let row: Vec<f32> = (0..100).map(|i| (i as f32 * 0.77).sin() * 9.0).collect();
        let (mut a, mut b) = ([0i8; 128], [0i8; 128]);
        code_row::<true>(&row, 64, &mut a);
        code_row::<false>(&row, 64, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn zero_row_has_zero_scale() {
        let q = QuantizedActivations::quantize(&[0.0; 5], 1, 5, 32);
        assert_eq!(q.row(0).1, &[0.0]);
        assert!(q.row(0).0.iter().all(|&c| c == 0));
    }
}
