//! Int4 in groups of 32 along the input dimension, asymmetric:
//! `w ≈ scale · q + offset`, `q ∈ 0..=15`, `scale` and `offset` stored as
//! `f16`. Each group's grid is searched to minimise squared error (optionally
//! weighted per input column); codes are always computed against the
//! *rounded* `f16` values, so the grid that is stored is the grid that was
//! scored.
//! Bit layout: [`qloader_format::int4`].

use half::f16;
use qloader_format::int4::{BlockInt4, INT4_GROUP, INT4_MAX_CODE};

use super::DenseMatrix;

/// A `rows × cols` matrix stored as rows of int4 groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Int4Matrix {
    rows: usize,
    cols: usize,
    groups_per_row: usize,
    blocks: Vec<BlockInt4>,
}

impl Int4Matrix {
    /// Quantizes `w` group by group, each group's grid chosen to minimise its
    /// squared error.
    pub fn quantize(w: &DenseMatrix) -> Self {
        Self::quantize_weighted(w, None)
    }

    /// Like [`Int4Matrix::quantize`], but the squared error of column `c` is
    /// weighted by `importance[c]` (e.g. the mean square of input feature
    /// `c`), so the grid favours the inputs that move the output most.
    ///
    /// # Panics
    /// If `importance` is given and its length is not `w.cols()`.
    pub fn quantize_weighted(w: &DenseMatrix, importance: Option<&[f32]>) -> Self {
        let (rows, cols) = (w.rows(), w.cols());
        let uniform;
        let importance = match importance {
            Some(imp) => {
                assert_eq!(imp.len(), cols, "one importance per input column");
                imp
            }
            None => {
                uniform = vec![1.0f32; cols];
                &uniform
            }
        };
        let groups_per_row = cols.div_ceil(INT4_GROUP);
        let mut blocks = Vec::with_capacity(rows * groups_per_row);
        for r in 0..rows {
            for (group, imp) in w.row(r).chunks(INT4_GROUP).zip(importance.chunks(INT4_GROUP)) {
                blocks.push(quantize_group(group, imp));
            }
        }
        Self { rows, cols, groups_per_row, blocks }
    }

    /// Builds a matrix from raw blocks; `None` if the count is not
    /// `rows · ceil(cols / 32)`.
    pub fn from_blocks(rows: usize, cols: usize, blocks: Vec<BlockInt4>) -> Option<Self> {
        let groups_per_row = cols.div_ceil(INT4_GROUP);
        (rows.checked_mul(groups_per_row) == Some(blocks.len())).then_some(Self {
            rows,
            cols,
            groups_per_row,
            blocks,
        })
    }

    /// Number of rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Groups in each row (the last may be partial).
    pub fn groups_per_row(&self) -> usize {
        self.groups_per_row
    }

    /// The groups of row `r`.
    pub fn row_blocks(&self, r: usize) -> &[BlockInt4] {
        &self.blocks[r * self.groups_per_row..(r + 1) * self.groups_per_row]
    }

    /// Back to `f32`.
    pub fn dequantize(&self) -> DenseMatrix {
        let mut data = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            let mut row = Vec::with_capacity(self.groups_per_row * INT4_GROUP);
            for b in self.row_blocks(r) {
                row.extend_from_slice(&dequantize_block(b));
            }
            data.extend_from_slice(&row[..self.cols]);
        }
        DenseMatrix::new(self.rows, self.cols, data).expect("shape is preserved")
    }

    /// Bytes of storage (20 per group).
    pub fn storage_bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<BlockInt4>()
    }
}

/// The 32 values a block stands for (the tail of a partial group decodes to
/// `offset`, and is never read as a weight).
#[inline]
pub fn dequantize_block(b: &BlockInt4) -> [f32; INT4_GROUP] {
    let (d, m) = (b.scale.to_f32(), b.offset.to_f32());
    let codes = b.unpack();
    let mut out = [0.0f32; INT4_GROUP];
    for (o, &q) in out.iter_mut().zip(codes.iter()) {
        *o = d * q as f32 + m;
    }
    out
}

/// Candidate grids tried per group: the code range is stretched from 14 to
/// 16 steps in tenths, i.e. the clipping range from slightly wider to
/// slightly narrower than the group's min..max.
const SEARCH_STEPS: i32 = 20;
/// Alternating re-quantize / least-squares refits after the grid search.
const REFINE_ITERATIONS: usize = 2;

/// Quantizes one group, choosing `(scale, offset)` to minimise the weighted
/// squared error `Σ wᵢ (xᵢ − (scale·qᵢ + offset))²` of the *stored* (f16)
/// grid: a grid search over the clipping range with a least-squares refit of
/// scale and offset for each candidate's codes (the approach of llama.cpp's
/// k-quant `make_qkx2_quants`), then a few alternating refinements.
fn quantize_group(x: &[f32], importance: &[f32]) -> BlockInt4 {
    debug_assert_eq!(x.len(), importance.len());
    let (lo, hi) =
        x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let mut codes = [0u8; INT4_GROUP];
    let codes = &mut codes[..x.len()];
    let range = hi - lo;
    if range.is_nan() || range <= 0.0 || range.is_infinite() {
        // Constant (or non-finite) group: every code 0, offset carries the value.
        return BlockInt4::pack(f16::ZERO, f16::from_f32(lo), codes);
    }
    let max_code = INT4_MAX_CODE as f32;
    let mut best = Grid::stored(range / max_code, lo);
    let mut best_err = best.assign(x, importance, codes);
    let mut trial = [0u8; INT4_GROUP];
    let trial = &mut trial[..x.len()];
    for step in 0..=SEARCH_STEPS {
        let steps = max_code - 1.0 + 2.0 * step as f32 / SEARCH_STEPS as f32;
        Grid { scale: range / steps, offset: lo }.assign(x, importance, trial);
        let Some(mut grid) = least_squares(x, importance, trial) else { continue };
        for _ in 0..=REFINE_ITERATIONS {
            let err = grid.assign(x, importance, trial);
            if err < best_err {
                best_err = err;
                best = grid;
                codes.copy_from_slice(trial);
            }
            match least_squares(x, importance, trial) {
                Some(next) => grid = next,
                None => break,
            }
        }
    }
    BlockInt4::pack(f16::from_f32(best.scale), f16::from_f32(best.offset), codes)
}

/// A grid `scale · q + offset`, q ∈ 0..=15.
#[derive(Clone, Copy)]
struct Grid {
    scale: f32,
    offset: f32,
}

impl Grid {
    /// The grid as it will be stored (both values rounded to f16).
    fn stored(scale: f32, offset: f32) -> Self {
        Self { scale: f16::from_f32(scale).to_f32(), offset: f16::from_f32(offset).to_f32() }
    }

    /// Rounds each value to its nearest code on this grid (as stored) and
    /// returns the weighted squared error.
    fn assign(self, x: &[f32], importance: &[f32], codes: &mut [u8]) -> f32 {
        let g = Grid::stored(self.scale, self.offset);
        let inv = if g.scale > 0.0 { 1.0 / g.scale } else { 0.0 };
        let mut err = 0.0;
        for ((&v, &w), q) in x.iter().zip(importance).zip(codes.iter_mut()) {
            let c = ((v - g.offset) * inv).round().clamp(0.0, INT4_MAX_CODE as f32);
            *q = c as u8;
            let e = g.scale * c + g.offset - v;
            err += w * e * e;
        }
        err
    }
}

/// The `(scale, offset)` minimising `Σ wᵢ (scale·qᵢ + offset − xᵢ)²` for fixed
/// codes (the 2×2 normal equations), or `None` if the codes do not determine
/// both (all equal) or the scale comes out non-positive.
fn least_squares(x: &[f32], importance: &[f32], codes: &[u8]) -> Option<Grid> {
    let (mut sw, mut sq, mut sqq, mut sx, mut sqx) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for ((&v, &w), &q) in x.iter().zip(importance).zip(codes) {
        let (w, q, v) = (w as f64, q as f64, v as f64);
        sw += w;
        sq += w * q;
        sqq += w * q * q;
        sx += w * v;
        sqx += w * q * v;
    }
    let det = sw * sqq - sq * sq;
    if det <= f64::EPSILON * sw * sqq {
        return None;
    }
    let scale = (sw * sqx - sq * sx) / det;
    let offset = (sqq * sx - sq * sqx) / det;
    (scale > 0.0 && scale.is_finite() && offset.is_finite())
        .then_some(Grid { scale: scale as f32, offset: offset as f32 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The searched grid is never worse than plain min/max rounding (the
        /// search starts from it), in plain or weighted squared error, and
        /// every group's error is below that of the min/max grid's half step.
        #[test]
        fn search_never_worse_than_min_max(
            rows in 1usize..5, cols in 1usize..100,
            seed in proptest::collection::vec(-4.0f32..4.0, 500),
            weights in proptest::collection::vec(0.01f32..10.0, 100),
        ) {
            let data: Vec<f32> = (0..rows * cols).map(|i| seed[(i * 7) % seed.len()]).collect();
            let w = DenseMatrix::new(rows, cols, data).unwrap();
            let imp = &weights[..cols];
            for (q, imp) in [(Int4Matrix::quantize(&w), vec![1.0; cols]),
                             (Int4Matrix::quantize_weighted(&w, Some(imp)), imp.to_vec())] {
                prop_assert_eq!(q.storage_bytes(), rows * cols.div_ceil(32) * 20);
                let back = q.dequantize();
                for r in 0..rows {
                    for (g, group) in w.row(r).chunks(32).enumerate() {
                        let gi = &imp[g * 32..g * 32 + group.len()];
                        let got = &back.row(r)[g * 32..g * 32 + group.len()];
                        let err: f32 = group.iter().zip(got).zip(gi)
                            .map(|((a, b), w)| w * (a - b) * (a - b)).sum();
                        let minmax = min_max_error(group, gi);
                        prop_assert!(err <= minmax * (1.0 + 1e-5) + 1e-9, "{err} > min/max {minmax}");
                    }
                }
            }
        }
    }

    /// Weighted squared error of plain round-to-nearest on the f16 min/max grid.
    fn min_max_error(x: &[f32], w: &[f32]) -> f32 {
        let lo = x.iter().cloned().fold(f32::INFINITY, f32::min);
        let hi = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let d = f16::from_f32((hi - lo) / 15.0).to_f32();
        let m = f16::from_f32(lo).to_f32();
        x.iter()
            .zip(w)
            .map(|(&v, &w)| {
                let q = if d > 0.0 { ((v - m) / d).round().clamp(0.0, 15.0) } else { 0.0 };
                let e = d * q + m - v;
                w * e * e
            })
            .sum()
    }

    #[test]
    fn search_reduces_error_on_gaussian_like_weights() {
        // Bell-shaped values (sum of uniforms): clipping the tails pays off.
        let mut state = 12345u32;
        let mut next = || {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (state >> 8) as f32 / (1u32 << 24) as f32
        };
        let data: Vec<f32> =
            (0..64 * 256).map(|_| (0..4).map(|_| next()).sum::<f32>() - 2.0).collect();
        let w = DenseMatrix::new(64, 256, data).unwrap();
        let back = Int4Matrix::quantize(&w).dequantize();
        let searched: f32 = w.data().iter().zip(back.data()).map(|(a, b)| (a - b) * (a - b)).sum();
        let plain: f32 = w.data().chunks(32).map(|g| min_max_error(g, &[1.0; 32])).sum();
        assert!(searched < 0.9 * plain, "searched {searched} vs min/max {plain}");
    }

    #[test]
    fn constant_group_is_exact() {
        let w = DenseMatrix::new(1, 40, vec![0.25; 40]).unwrap();
        let back = Int4Matrix::quantize(&w).dequantize();
        assert!(back.data().iter().all(|&v| v == 0.25));
    }

    #[test]
    fn extremes_map_to_code_0_and_15() {
        let mut row: Vec<f32> = (0..32).map(|i| i as f32 / 31.0).collect();
        row[3] = -1.0;
        row[7] = 2.0;
        let q = Int4Matrix::quantize(&DenseMatrix::new(1, 32, row).unwrap());
        let b = &q.row_blocks(0)[0];
        assert_eq!(b.code(3), 0);
        assert_eq!(b.code(7), 15);
    }
}
