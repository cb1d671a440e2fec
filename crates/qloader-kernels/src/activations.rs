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
//! a tail case); each block's code sum `Σ a` is kept, and each group's
//! `scale_g · Σ a`, because a grouped weight's offset contributes
//! `offset · Σ a` to the group's dot product.

use qloader_format::grouped::{BLOCK, GROUPS};

/// `m` rows of int8 activations.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedActivations {
    rows: usize,
    cols: usize,
    padded: usize,
    group: usize,
    codes: Vec<i8>,
    /// Whether the interleaved orders below were made.
    interleaved: bool,
    /// Per row, `codes` of whole block pairs in the [`ActivationRow::paired_codes`] order.
    paired_codes: Vec<i8>,
    /// Per row, `codes` of whole block quads in the [`ActivationRow::quad_codes`] order.
    quad_codes: Vec<i8>,
    /// Per row, [`ActivationRow::int4_wide_codes`].
    int4_wide_codes: Vec<i8>,
    /// Per row, [`ActivationRow::int2_wide_codes`].
    int2_wide_codes: Vec<i8>,
    /// Per row, one scale per group.
    scales: Vec<f32>,
    block_sums: Vec<i32>,
    /// Per row and group, `scale_g · Σ code`.
    scaled_sums: Vec<f32>,
}

/// One row of [`QuantizedActivations`], as the kernels see it.
#[derive(Debug, Clone, Copy)]
pub struct ActivationRow<'a> {
    /// Codes, padded with zeros to a multiple of 32.
    pub codes: &'a [i8],
    /// The codes of each pair of blocks `(2k, 2k+1)` reordered as: block
    /// `2k` values 0..16, block `2k+1` values 0..16, block `2k` values 16..32,
    /// block `2k+1` values 16..32 — the order of the low and high nibbles of
    /// two packed int4 blocks read as one 32-byte vector. A last unpaired
    /// block is left out.
    pub paired_codes: &'a [i8],
    /// The codes of each run of four blocks `4k..4k+4` reordered to meet
    /// the four 2-bit planes of four packed int2 blocks read as one 32-byte
    /// vector: for plane `p` in 0..4, for block `j` in 0..4, block `j`'s
    /// values `8p..8p+8`. Blocks past the last whole quad are left out.
    pub quad_codes: &'a [i8],
    /// The 64-byte form of [`Self::paired_codes`]: each run of four blocks
    /// `4k..4k+4` as, for plane `p` in 0..2, for block `j` in 0..4, block
    /// `j`'s values `16p..16p+16` — the nibble planes of four packed int4
    /// blocks read as one 64-byte vector. Blocks past the last whole run
    /// are left out.
    pub int4_wide_codes: &'a [i8],
    /// The 64-byte form of [`Self::quad_codes`]: each run of eight blocks as,
    /// for plane `p` in 0..4, for block `j` in 0..8, block `j`'s values
    /// `8p..8p+8` — the 2-bit planes of eight packed int2 blocks read as one
    /// 64-byte vector. Blocks past the last whole run are left out.
    pub int2_wide_codes: &'a [i8],
    /// Values per scale (32, 64 or 128).
    pub group: usize,
    /// `x ≈ scales[c / group] · code`, one per group.
    pub scales: &'a [f32],
    /// `Σ code` per 32-value block.
    pub block_sums: &'a [i32],
    /// `scales[g] · Σ code` over group `g`.
    pub scaled_sums: &'a [f32],
}

impl QuantizedActivations {
    /// Quantizes `m` rows of `x` (`m × cols`, row-major) with one scale per
    /// `group` values.
    ///
    /// # Panics
    /// If `x` is not `m × cols` or `group` is not 32, 64 or 128.
    pub fn quantize(x: &[f32], m: usize, cols: usize, group: usize) -> Self {
        let mut q = Self::quantize_plain(x, m, cols, group);
        q.paired_codes = interleave_blocks::<16>(&q.codes, q.padded, 2);
        q.quad_codes = interleave_blocks::<8>(&q.codes, q.padded, 4);
        q.int4_wide_codes = interleave_blocks::<16>(&q.codes, q.padded, 4);
        q.int2_wide_codes = interleave_blocks::<8>(&q.codes, q.padded, 8);
        q.interleaved = true;
        q
    }

    /// Like [`QuantizedActivations::quantize`], without the interleaved
    /// orders of the codes (their rows' interleaved slices are empty): what
    /// the tiled products need, which read the codes in plain order.
    ///
    /// # Panics
    /// As [`QuantizedActivations::quantize`].
    pub fn quantize_plain(x: &[f32], m: usize, cols: usize, group: usize) -> Self {
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
        let mut block_sums = Vec::with_capacity(m * blocks);
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
            block_sums
                .extend(out.chunks_exact(BLOCK).map(|b| b.iter().map(|&a| a as i32).sum::<i32>()));
        }
        Self {
            rows: m,
            cols,
            padded,
            group,
            codes,
            interleaved: false,
            paired_codes: Vec::new(),
            quad_codes: Vec::new(),
            int4_wide_codes: Vec::new(),
            int2_wide_codes: Vec::new(),
            scales,
            block_sums,
            scaled_sums,
        }
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

    /// Row `i`'s codes (padded), group scales and scaled group sums: what
    /// the tiled products read.
    pub fn plain_row(&self, i: usize) -> (&[i8], &[f32], &[f32]) {
        let groups = self.cols.div_ceil(self.group);
        (
            &self.codes[i * self.padded..(i + 1) * self.padded],
            &self.scales[i * groups..(i + 1) * groups],
            &self.scaled_sums[i * groups..(i + 1) * groups],
        )
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> ActivationRow<'_> {
        let blocks = self.padded / BLOCK;
        let groups = self.cols.div_ceil(self.group);
        let on = usize::from(self.interleaved);
        let paired = on * blocks / 2 * 2 * BLOCK;
        let quads = on * blocks / 4 * 4 * BLOCK;
        let octets = on * blocks / 8 * 8 * BLOCK;
        ActivationRow {
            codes: &self.codes[i * self.padded..(i + 1) * self.padded],
            paired_codes: &self.paired_codes[i * paired..(i + 1) * paired],
            quad_codes: &self.quad_codes[i * quads..(i + 1) * quads],
            int4_wide_codes: &self.int4_wide_codes[i * quads..(i + 1) * quads],
            int2_wide_codes: &self.int2_wide_codes[i * octets..(i + 1) * octets],
            group: self.group,
            scales: &self.scales[i * groups..(i + 1) * groups],
            block_sums: &self.block_sums[i * blocks..(i + 1) * blocks],
            scaled_sums: &self.scaled_sums[i * groups..(i + 1) * groups],
        }
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

/// Every row's whole runs of `run` blocks (`padded` codes per row) with each
/// run's codes in plane order, planes `WIDTH` codes wide: for plane `p` in
/// 0..32/WIDTH, for block `j` in 0..run, block `j`'s values
/// `p·WIDTH..(p+1)·WIDTH`. Runs of 2 and 4 blocks in planes of 16 and 8 are
/// [`ActivationRow::paired_codes`] and [`ActivationRow::quad_codes`]; runs of
/// 4 and 8 blocks their 64-byte forms.
fn interleave_blocks<const WIDTH: usize>(codes: &[i8], padded: usize, run: usize) -> Vec<i8> {
    let planes = BLOCK / WIDTH;
    let mut out = Vec::with_capacity(codes.len());
    for row in codes.chunks_exact(padded.max(1)) {
        for blocks in row.chunks_exact(run * BLOCK) {
            for p in 0..planes {
                for block in blocks.chunks_exact(BLOCK) {
                    // A fixed-size piece: a move, not a call to memmove.
                    let piece: &[i8; WIDTH] =
                        block[p * WIDTH..(p + 1) * WIDTH].try_into().expect("WIDTH codes");
                    out.extend_from_slice(piece);
                }
            }
        }
    }
    out
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
                let r = q.row(i);
                assert_eq!(r.codes.len(), 128);
                assert_eq!(r.scales.len(), 100usize.div_ceil(group));
                assert!(r.codes[100..].iter().all(|&c| c == 0));
                for (c, &v) in x[i * 100..(i + 1) * 100].iter().enumerate() {
                    let s = r.scales[c / group];
                    assert!((r.codes[c] as f32 * s - v).abs() <= s / 2.0 + 1e-6, "{c}");
                }
                let max0 =
                    x[i * 100..i * 100 + group.min(100)].iter().fold(0f32, |a, v| a.max(v.abs()));
                assert_eq!(r.scales[0], max0 / 127.0);
                if group < 100 {
                    assert!(r.scales[1] < 3.0 / 127.0 + 1e-6, "the outlier stays in group 0");
                }
                let sums: Vec<i32> =
                    r.codes.chunks(32).map(|b| b.iter().map(|&a| a as i32).sum()).collect();
                assert_eq!(r.block_sums, &sums[..]);
                let scaled: Vec<f32> = r
                    .codes
                    .chunks(group)
                    .zip(r.scales)
                    .map(|(g, s)| s * g.iter().map(|&a| a as i32).sum::<i32>() as f32)
                    .collect();
                assert_eq!(r.scaled_sums, &scaled[..]);
                // 128 codes = two whole block pairs: halves interleaved.
                assert_eq!(r.paired_codes.len(), 128);
                assert_eq!(r.paired_codes[..16], r.codes[..16]);
                assert_eq!(r.paired_codes[16..32], r.codes[32..48]);
                assert_eq!(r.paired_codes[32..48], r.codes[16..32]);
                assert_eq!(r.paired_codes[48..64], r.codes[48..64]);
                assert_eq!(r.quad_codes.len(), 128, "four blocks make one quad");
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
        assert_eq!(q.row(0).scales, &[0.0]);
        assert!(q.row(0).paired_codes.is_empty(), "one block has no pair");
        assert!(q.row(0).codes.iter().all(|&c| c == 0));
    }

    #[test]
    fn wide_runs_follow_the_64_byte_planes() {
        let x: Vec<f32> = (0..9 * 32).map(|i| ((i * 7) % 200) as f32 - 100.0).collect();
        let q = QuantizedActivations::quantize(&x, 1, 9 * 32, 32);
        let r = q.row(0);
        // Nine blocks: two int4 runs of four, one int2 run of eight.
        assert_eq!(r.int4_wide_codes.len(), 8 * 32);
        assert_eq!(r.int2_wide_codes.len(), 8 * 32);
        for (wide, run, planes) in [(r.int4_wide_codes, 4, 2), (r.int2_wide_codes, 8, 4)] {
            let width = 32 / planes;
            for k in 0..wide.len() / (run * 32) {
                for p in 0..planes {
                    for j in 0..run {
                        let at = k * run * 32 + p * run * width + j * width;
                        let from = (k * run + j) * 32 + p * width;
                        assert_eq!(wide[at..at + width], r.codes[from..from + width]);
                    }
                }
            }
        }
    }

    #[test]
    fn quads_follow_the_int2_planes() {
        let x: Vec<f32> = (0..130).map(|i| (i % 100) as f32 - 50.0).collect();
        let q = QuantizedActivations::quantize(&x, 1, 130, 32);
        let r = q.row(0);
        // Five blocks: one whole quad, and the fifth left out.
        assert_eq!(r.quad_codes.len(), 128);
        for p in 0..4 {
            for j in 0..4 {
                let at = p * 32 + j * 8;
                let from = j * 32 + p * 8;
                assert_eq!(
                    r.quad_codes[at..at + 8],
                    r.codes[from..from + 8],
                    "plane {p}, block {j}"
                );
            }
        }
    }
}
