//! The quantizer of `nl4k` (codes on the non-uniform grid
//! [`NL4_LEVELS`], one signed 6-bit scale per 32 values under an `f16`
//! super-scale per 256; bit layout in [`qloader_format::compact`]).
//!
//! Each super-block is fitted in three steps:
//! 1. each sub-block's own scale: for candidate scales that put the value
//!    of largest magnitude near either end of the grid, every value takes
//!    its nearest level and the scale is then re-fitted by least squares
//!    (`Σ w·x·L / Σ w·L²`); the candidate whose re-fitted scale leaves the
//!    least (weighted) squared error wins;
//! 2. the super-scale `d` = the largest-magnitude sub-block scale / −32
//!    (rounded to `f16`), so that scale is exactly the step `−32` and every
//!    other lies within the signed 6-bit range;
//! 3. for each sub-block, the integer step within one of its rounded scale
//!    whose codes (each the nearest level) give the least weighted error;
//! 4. `d` re-fitted by least squares to the chosen steps and codes, the
//!    codes re-chosen, kept if the error drops.

use half::f16;
use qloader_format::compact::{CompactLayout, SuperBlock, NL4_LEVELS, NL4_SCALE_BIAS, SUBS};
use qloader_format::grouped::BLOCK;

/// Candidate scales per end of the grid in step 1.
const CANDIDATES: i32 = 8;

/// Steps of the sub-block scales: `−32..=31` times `d`.
const STEPS: (i32, i32) = (-NL4_SCALE_BIAS, 63 - NL4_SCALE_BIAS);

/// For each `⌊2v⌋ + 256` in `0..512`, the nearest level's index (ties go
/// up): the levels' midpoints are all multiples of ½, so `⌊2v⌋` decides.
const NEAREST: [u8; 512] = {
    let mut table = [0u8; 512];
    let mut i = 0;
    while i < 512 {
        // Distances in half units: |2v − 2L| with 2v = i − 256.
        let h = i as i32 - 256;
        let mut best = 0;
        let mut k = 1;
        while k < 16 {
            if (h - 2 * NL4_LEVELS[k] as i32).abs() <= (h - 2 * NL4_LEVELS[best] as i32).abs() {
                best = k;
            }
            k += 1;
        }
        table[i] = best as u8;
        i += 1;
    }
    table
};

/// The nearest level's index for `v` in grid units (ties go up).
pub fn nearest_level(v: f32) -> u8 {
    let at = (2.0 * v).floor().clamp(-256.0, 255.0);
    // NaN clamps to NaN, which `as` turns into 0.
    NEAREST[(at as i32 + 256) as usize]
}

/// The code of `v` on a sub-block of `scale` (the nearest level).
pub fn nonuniform_code(v: f32, scale: f32) -> u8 {
    if scale == 0.0 {
        return nearest_level(0.0);
    }
    nearest_level(v / scale)
}

/// `Σ w (scale · L[q] − x)²` with each `q` the nearest level.
fn error(x: &[f32], w: &[f32], scale: f32) -> f32 {
    x.iter()
        .zip(w)
        .map(|(&v, &wt)| {
            let e = scale * NL4_LEVELS[nonuniform_code(v, scale) as usize] as f32 - v;
            wt * e * e
        })
        .sum()
}

/// Step 1: a sub-block's own scale.
fn fit_scale(x: &[f32], w: &[f32]) -> f32 {
    let far = x.iter().copied().fold(0.0f32, |m, v| if v.abs() > m.abs() { v } else { m });
    if far == 0.0 || !far.is_finite() {
        return 0.0;
    }
    let (lo, hi) = (NL4_LEVELS[0] as i32, NL4_LEVELS[15] as i32);
    let mut best = (f32::INFINITY, 0.0f32);
    for end in [lo, hi] {
        for k in -CANDIDATES..=CANDIDATES {
            let scale = far / (end + k) as f32;
            let (mut xl, mut ll) = (0.0f32, 0.0f32);
            for (&v, &wt) in x.iter().zip(w) {
                let l = NL4_LEVELS[nearest_level(v / scale) as usize] as f32;
                xl += wt * v * l;
                ll += wt * l * l;
            }
            let refit = if ll > 0.0 { xl / ll } else { scale };
            let err = error(x, w, refit);
            if err < best.0 {
                best = (err, refit);
            }
        }
    }
    best.1
}

/// The `nl4k` super-block of values `x` (at most 256; a short last
/// sub-block padded with zeros of weight 0) with weights `w`.
pub(super) fn fit_nonuniform_super_block(x: &[f32], w: &[f32]) -> SuperBlock {
    let layout = CompactLayout::nl4();
    let subs = x.len().div_ceil(BLOCK);
    let sub = |s: usize| {
        let range = s * BLOCK..((s + 1) * BLOCK).min(x.len());
        (&x[range.clone()], &w[range])
    };
    let mut scales = [0.0f32; SUBS];
    for (s, scale) in scales.iter_mut().enumerate().take(subs) {
        let (xs, ws) = sub(s);
        *scale = fit_scale(xs, ws);
    }
    let far = scales.iter().copied().fold(0.0f32, |m, v| if v.abs() > m.abs() { v } else { m });
    let d = f16::from_f32(far / STEPS.0 as f32);
    let df = d.to_f32();
    let mut block = SuperBlock {
        d,
        dmin: f16::ZERO,
        scales: [NL4_SCALE_BIAS as u8; SUBS],
        mins: [0; SUBS],
        codes: vec![0u8; subs * BLOCK],
    };
    for (s, &scale) in scales.iter().enumerate().take(subs) {
        let (xs, ws) = sub(s);
        let step0 = if df != 0.0 && df.is_finite() { (scale / df).round() as i32 } else { 0 };
        let mut best = (f32::INFINITY, 0i32);
        for step in (step0 - 1).max(STEPS.0)..=(step0 + 1).min(STEPS.1) {
            let err = error(xs, ws, df * step as f32);
            if err < best.0 {
                best = (err, step);
            }
        }
        block.scales[s] = (best.1 + NL4_SCALE_BIAS) as u8;
        let (scale, _) = block.sub_grid(layout, s);
        for (q, &v) in block.codes[s * BLOCK..].iter_mut().zip(xs) {
            *q = nonuniform_code(v, scale);
        }
    }
    refit_super_scale(x, w, &mut block);
    block
}

/// Step 4: with the integer steps and codes fixed, the least-squares `d`
/// (rounded to `f16`), codes re-chosen for it; kept if the error drops.
fn refit_super_scale(x: &[f32], w: &[f32], block: &mut SuperBlock) {
    let layout = CompactLayout::nl4();
    let total = |b: &SuperBlock| -> f32 {
        (0..x.len())
            .map(|i| {
                let (scale, offset) = b.sub_grid(layout, i / BLOCK);
                let e = layout.value(scale, offset, b.codes[i]) - x[i];
                w[i] * e * e
            })
            .sum()
    };
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (i, (&v, &wt)) in x.iter().zip(w).enumerate() {
        let step = block.scales[i / BLOCK] as i32 - NL4_SCALE_BIAS;
        let u = (step as f32 * layout.level(block.codes[i])) as f64;
        num += (wt * v) as f64 * u;
        den += wt as f64 * u * u;
    }
    if den <= 0.0 {
        return;
    }
    let mut trial = block.clone();
    trial.d = f16::from_f32((num / den) as f32);
    if trial.d == block.d || !trial.d.is_finite() {
        return;
    }
    for (i, &v) in x.iter().enumerate() {
        let (scale, _) = trial.sub_grid(layout, i / BLOCK);
        trial.codes[i] = nonuniform_code(v, scale);
    }
    if total(&trial) < total(block) {
        *block = trial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_level_is_the_nearest() {
        for i in -3000..3000 {
            let v = i as f32 / 20.0 + 0.013;
            let q = nearest_level(v) as usize;
            let d = (v - NL4_LEVELS[q] as f32).abs();
            assert!(NL4_LEVELS.iter().all(|&l| (v - l as f32).abs() >= d), "{v}: {q}");
        }
        assert_eq!((nearest_level(f32::NAN), nearest_level(1e9), nearest_level(-1e9)), (8, 15, 0));
    }

    #[test]
    fn a_sub_block_on_the_grid_is_fitted_exactly() {
        // Values that are levels × 0.001 come back (to the f16 rounding of
        // the super-scale).
        let x: Vec<f32> = (0..256).map(|i| NL4_LEVELS[i * 7 % 16] as f32 * 0.001).collect();
        let w = vec![1.0; 256];
        let block = fit_nonuniform_super_block(&x, &w);
        let layout = CompactLayout::nl4();
        for (i, &v) in x.iter().enumerate() {
            let (scale, offset) = block.sub_grid(layout, i / BLOCK);
            let back = layout.value(scale, offset, block.codes[i]);
            assert!((back - v).abs() < 1e-4, "{i}: {back} vs {v}");
        }
    }
}
