//! The grid search of the grouped quantizer: for one group of at most 128
//! weights, the `(scale, offset)` whose *stored* (`f16`) grid minimises the
//! (optionally weighted) squared error — a search over the clipping range
//! with a least-squares refit of scale and offset for each candidate's codes
//! (the approach of llama.cpp's k-quant `make_qkx2_quants`), then a few
//! alternating refinements.
//!
//! The search is written once, generic over a [`Tier`]: how a candidate grid
//! is scored (its error and the sums of the normal equations) and how values
//! round to `f16`. [`Scalar`] is the reference; the x86-64 tiers
//! (`grid_search_x86`) compute the same sums with the same operations in the
//! same order (8 interleaved partial sums, no fused multiply-add), so every
//! tier returns the same bits. Grids are rounded to `f16` once per candidate,
//! and codes are written once, for the winner.

use half::f16;

/// The largest group size of any layout.
pub(super) const MAX_GROUP: usize = 128;

/// Independent partial sums of a candidate's score: element `i` goes to lane
/// `i % LANES`, the lanes are added in order, then the tail (`len % LANES`
/// elements) one by one. Fixed: it decides the rounding of every score.
pub(super) const LANES: usize = 8;

/// Candidate grids tried per group: the code range is stretched from
/// `max_code − 1` to `max_code + 1` steps in 10 increments, i.e. the clipping
/// range from slightly wider to slightly narrower than the group's min..max.
/// (20 increments lower the error of real weights by under 0.3% on average,
/// at twice the cost.)
const SEARCH_STEPS: i32 = 10;
/// Alternating re-quantize / least-squares refits after the grid search.
const REFINE_ITERATIONS: usize = 2;
/// Candidate clipping ranges per group.
const CANDIDATES: usize = SEARCH_STEPS as usize + 1;

/// A grid `scale · q + offset`, q ∈ 0..=max_code, as stored: both values
/// are `f16` values (held as `f32`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Grid {
    pub(super) scale: f32,
    pub(super) offset: f32,
}

impl Grid {
    /// `1 / scale`, or 0 for a zero scale (every code 0).
    #[inline(always)]
    pub(super) fn inverse_scale(self) -> f32 {
        if self.scale > 0.0 {
            1.0 / self.scale
        } else {
            0.0
        }
    }
}

/// What one assignment of codes yields: its weighted squared error and the
/// code-dependent sums of the least-squares normal equations, `Σwq`, `Σwq²`
/// and `Σwqx`, gathered in the same pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Fit {
    pub(super) err: f32,
    pub(super) sq: f32,
    pub(super) sqq: f32,
    pub(super) sqx: f32,
}

/// Up to [`BATCH`] candidates' code-dependent sums side by side, one lane
/// per candidate (lanes beyond the candidates hold zeros).
#[derive(Clone, Copy)]
struct Sums {
    sq: [f32; BATCH],
    sqq: [f32; BATCH],
    sqx: [f32; BATCH],
}

/// Lanes of the batched least-squares refit (the candidates, padded).
pub(super) const BATCH: usize = 16;

impl Sums {
    /// Per lane, the `(scale, offset)` minimising `Σ wᵢ (scale·qᵢ + offset −
    /// xᵢ)²` for that candidate's codes (the 2×2 normal equations, with `sw
    /// = Σw`, `sx = Σwx`), rounded to `f16` by tier `T`, and whether there is
    /// one: not if the codes do not determine both (all equal) or the scale
    /// comes out non-positive. Lane by lane the same operations as one
    /// candidate at a time; plain loops over the lanes, so they vectorise.
    #[inline(always)]
    fn least_squares<T: Tier>(
        &self,
        sw: f64,
        sx: f64,
    ) -> ([f32; BATCH], [f32; BATCH], [bool; BATCH]) {
        let mut scale = [0.0f32; BATCH];
        let mut offset = [0.0f32; BATCH];
        let mut ok = [false; BATCH];
        for l in 0..BATCH {
            let (sq, sqq, sqx) = (self.sq[l] as f64, self.sqq[l] as f64, self.sqx[l] as f64);
            let det = sw * sqq - sq * sq;
            let s = (sw * sqx - sq * sx) / det;
            let o = (sqq * sx - sq * sqx) / det;
            // The sums are f32: a determinant this small relative to its
            // terms is rounding, not signal. (A NaN determinant fails here
            // or makes the scale NaN.)
            ok[l] = det > 1e-6 * sw * sqq && s > 0.0 && s.is_finite() && o.is_finite();
            scale[l] = s as f32;
            offset[l] = o as f32;
        }
        T::round(&mut scale);
        T::round(&mut offset);
        (scale, offset, ok)
    }
}

/// The code of `v` on a grid with inverse scale `inv` and offset `offset`:
/// clamped first, so the value is non-negative and adding ½ then truncating
/// rounds half away from zero like `round` (a libm call on baseline x86-64);
/// NaN becomes code 0.
#[inline(always)]
pub(super) fn code(v: f32, offset: f32, inv: f32, max_code: f32) -> u8 {
    (((v - offset) * inv).clamp(0.0, max_code) + 0.5) as u8
}

/// One instruction tier of the search: scoring a grid and rounding to `f16`.
/// Every implementation must give exactly [`Scalar`]'s bits.
pub(super) trait Tier {
    /// Each value rounded to the nearest `f16` and back.
    fn round(v: &mut [f32; BATCH]);
    /// The score of grid `g` on `x` (weights `importance` if `WEIGHTED`,
    /// else 1 and `importance` is not read).
    fn fit<const WEIGHTED: bool>(g: Grid, x: &[f32], importance: &[f32], max_code: f32) -> Fit;
    /// Each value's code on grid `g`.
    fn codes(g: Grid, x: &[f32], max_code: f32, out: &mut [u8]);
}

/// The portable reference tier.
pub(super) struct Scalar;

impl Tier for Scalar {
    #[inline(always)]
    fn round(v: &mut [f32; BATCH]) {
        for v in v {
            *v = crate::f16_convert::round_trip_scalar(*v);
        }
    }

    #[inline(always)]
    fn fit<const WEIGHTED: bool>(g: Grid, x: &[f32], importance: &[f32], max_code: f32) -> Fit {
        let inv = g.inverse_scale();
        let ones = [1.0f32; LANES];
        let mut err = [0.0f32; LANES];
        let mut sq = [0.0f32; LANES];
        let mut sqq = [0.0f32; LANES];
        let mut sqx = [0.0f32; LANES];
        let done = x.len() / LANES * LANES;
        for (c, xs) in x[..done].chunks_exact(LANES).enumerate() {
            let ws = if WEIGHTED { &importance[c * LANES..(c + 1) * LANES] } else { &ones[..] };
            for l in 0..LANES {
                let q = code(xs[l], g.offset, inv, max_code) as f32;
                let w = ws[l];
                let e = g.scale * q + g.offset - xs[l];
                err[l] += w * e * e;
                let wq = w * q;
                sq[l] += wq;
                sqq[l] += wq * q;
                sqx[l] += wq * xs[l];
            }
        }
        let mut fit = Fit { err: sum(err), sq: sum(sq), sqq: sum(sqq), sqx: sum(sqx) };
        let rest = &importance[done.min(importance.len())..];
        fit_tail::<WEIGHTED>(&mut fit, g, inv, &x[done..], rest, max_code);
        fit
    }

    #[inline(always)]
    fn codes(g: Grid, x: &[f32], max_code: f32, out: &mut [u8]) {
        let inv = g.inverse_scale();
        for (o, &v) in out.iter_mut().zip(x) {
            *o = code(v, g.offset, inv, max_code);
        }
    }
}

/// The lanes of a partial sum, added in order.
#[inline(always)]
pub(super) fn sum(lanes: [f32; LANES]) -> f32 {
    lanes.iter().sum::<f32>()
}

/// Adds the tail (the last `len % LANES` values, after the lanes are
/// summed) to `fit`, one value at a time.
#[inline(always)]
pub(super) fn fit_tail<const WEIGHTED: bool>(
    fit: &mut Fit,
    g: Grid,
    inv: f32,
    x: &[f32],
    importance: &[f32],
    max_code: f32,
) {
    for (i, &v) in x.iter().enumerate() {
        let w = if WEIGHTED { importance[i] } else { 1.0 };
        let qf = code(v, g.offset, inv, max_code) as f32;
        let e = g.scale * qf + g.offset - v;
        fit.err += w * e * e;
        fit.sq += w * qf;
        fit.sqq += w * qf * qf;
        fit.sqx += w * qf * v;
    }
}

/// Quantizes one group `x` into `codes`, returning the stored `(scale,
/// offset)` chosen to minimise `Σ wᵢ (xᵢ − (scale·qᵢ + offset))²` with `wᵢ =
/// importance[i]` if `WEIGHTED`, else 1.
#[inline(always)]
pub(super) fn search<T: Tier, const WEIGHTED: bool>(
    x: &[f32],
    importance: &[f32],
    max_code: u8,
    codes: &mut [u8],
) -> (f16, f16) {
    debug_assert!(!WEIGHTED || x.len() == importance.len());
    debug_assert_eq!(codes.len(), x.len());
    let (lo, hi) =
        x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = hi - lo;
    if range.is_nan() || range <= 0.0 || range.is_infinite() {
        // Constant (or non-finite) group: every code 0, offset carries the value.
        codes.fill(0);
        let offset = if lo.is_finite() { lo } else { 0.0 };
        return (f16::ZERO, f16::from_f32(offset));
    }
    let top = max_code as f32;
    // Σw and Σwx do not depend on the codes; the code-dependent sums of the
    // normal equations come with each assignment.
    let (sw, sx) = if WEIGHTED {
        x.iter()
            .zip(importance)
            .fold((0.0f64, 0.0f64), |(sw, sx), (&v, &w)| (sw + w as f64, sx + (w * v) as f64))
    } else {
        x.iter().fold((0.0f64, 0.0f64), |(sw, sx), &v| (sw + 1.0, sx + v as f64))
    };
    let fit = |g: Grid| T::fit::<WEIGHTED>(g, x, importance, top);
    // The search visits, in this order: the min/max grid; then for each
    // step a candidate clipping range, whose codes' least-squares grid is
    // scored and refitted up to twice (stopping early when a refit fails or
    // stores the same grid). The first grid with the lowest error wins.
    // The steps do not depend on each other, so they advance in lockstep, a
    // round at a time: the fits of one round are independent (the core
    // overlaps them), and their refits are solved side by side.
    let mut first =
        [range / top, lo, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    T::round(&mut first);
    let first = Grid { scale: first[0], offset: first[1] };
    let first_err = fit(first).err;
    // Round 0: the candidates' clipping ranges.
    let mut scale = [0.0f32; BATCH];
    let mut offset = [0.0f32; BATCH];
    for (step, (s, o)) in scale.iter_mut().zip(&mut offset).take(CANDIDATES).enumerate() {
        let steps = top - 1.0 + 2.0 * step as f32 / SEARCH_STEPS as f32;
        (*s, *o) = (range / steps, lo);
    }
    T::round(&mut scale);
    T::round(&mut offset);
    let mut live = [false; BATCH];
    live[..CANDIDATES].fill(true);
    // `scored[refit][step]`: the grid of each refit and its error (NaN
    // where there was none: never chosen).
    let none = (Grid { scale: 0.0, offset: 0.0 }, f32::NAN);
    let mut scored = [[none; CANDIDATES]; REFINE_ITERATIONS + 1];
    for round in 0..=REFINE_ITERATIONS + 1 {
        let mut sums = Sums { sq: [0.0; BATCH], sqq: [0.0; BATCH], sqx: [0.0; BATCH] };
        for step in 0..CANDIDATES {
            if !live[step] {
                continue;
            }
            let grid = Grid { scale: scale[step], offset: offset[step] };
            let fit = fit(grid);
            if round > 0 {
                scored[round - 1][step] = (grid, fit.err);
            }
            (sums.sq[step], sums.sqq[step], sums.sqx[step]) = (fit.sq, fit.sqq, fit.sqx);
        }
        if round > REFINE_ITERATIONS {
            break;
        }
        let (next_scale, next_offset, ok) = sums.least_squares::<T>(sw, sx);
        for l in 0..BATCH {
            // A refit that stores the same grid would assign the same codes
            // again.
            let same = next_scale[l] == scale[l] && next_offset[l] == offset[l];
            live[l] &= ok[l] && (round == 0 || !same);
        }
        (scale, offset) = (next_scale, next_offset);
    }
    let (mut best, mut best_err) = (first, first_err);
    for step in 0..CANDIDATES {
        for scored in &scored {
            let (grid, err) = scored[step];
            if err < best_err {
                (best, best_err) = (grid, err);
            }
        }
    }
    T::codes(best, x, top, codes);
    // Exact: both are f16 values already.
    (f16::from_f32_const(best.scale), f16::from_f32_const(best.offset))
}
