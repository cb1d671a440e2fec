//! Int8 with one symmetric scale per output channel: `w ≈ scale[r] · q`, with
//! `q ∈ -127..=127` and `scale[r] = max|w[r, :]| / 127` (round to nearest).
//! The code -128 is never produced, so the grid is symmetric around zero.

use super::DenseMatrix;
use crate::storage::Storage;

/// Largest magnitude of an int8 code.
const INT8_MAX_CODE: f32 = 127.0;

/// A `rows × cols` matrix of int8 codes with one `f32` scale per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    codes: Storage<i8>,
    scales: Storage<f32>,
}

impl Int8Matrix {
    /// Quantizes `w` per row, round to nearest.
    pub fn quantize(w: &DenseMatrix) -> Self {
        let (rows, cols) = (w.rows(), w.cols());
        let mut codes = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(rows);
        for r in 0..rows {
            let row = w.row(r);
            let max_abs = row.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
            let scale = if max_abs > 0.0 { max_abs / INT8_MAX_CODE } else { 0.0 };
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            codes.extend(
                row.iter().map(|&v| (v * inv).round().clamp(-INT8_MAX_CODE, INT8_MAX_CODE) as i8),
            );
            scales.push(scale);
        }
        Self { rows, cols, codes: codes.into(), scales: scales.into() }
    }

    /// Builds a matrix from raw parts; `None` if the lengths disagree.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        codes: impl Into<Storage<i8>>,
        scales: impl Into<Storage<f32>>,
    ) -> Option<Self> {
        let (codes, scales) = (codes.into(), scales.into());
        let ok = rows.checked_mul(cols) == Some(codes.len()) && scales.len() == rows;
        ok.then_some(Self { rows, cols, codes, scales })
    }

    /// Whether the arrays are views of shared bytes (a memory-mapped model)
    /// rather than owned copies.
    pub fn is_mapped(&self) -> bool {
        self.codes.is_shared()
    }

    /// Number of rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Codes of row `r`.
    pub fn row_codes(&self, r: usize) -> &[i8] {
        &self.codes[r * self.cols..(r + 1) * self.cols]
    }

    /// Scale of row `r`.
    pub fn scale(&self, r: usize) -> f32 {
        self.scales[r]
    }

    /// All scales, one per row.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Every code, row-major.
    pub fn codes(&self) -> &[i8] {
        &self.codes
    }

    /// Back to `f32`.
    pub fn dequantize(&self) -> DenseMatrix {
        let mut data = vec![0.0f32; self.rows * self.cols];
        self.dequantize_into(&mut data);
        DenseMatrix::new(self.rows, self.cols, data).expect("shape is preserved")
    }

    /// [`Int8Matrix::dequantize`] into `out` (`rows × cols`, row-major).
    ///
    /// # Panics
    /// If `out` does not hold `rows × cols` values.
    pub fn dequantize_into(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.rows * self.cols, "one value per weight");
        for (r, out) in out.chunks_exact_mut(self.cols.max(1)).enumerate().take(self.rows) {
            let s = self.scales[r];
            for (o, &q) in out.iter_mut().zip(self.row_codes(r)) {
                *o = q as f32 * s;
            }
        }
    }

    /// Bytes of storage: one byte per weight and four per row scale.
    pub fn storage_bytes(&self) -> usize {
        self.codes.len() + self.scales.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Round-trip error of every weight is at most half a step of its row.
        #[test]
        fn round_trip_within_half_step(
            rows in 1usize..6, cols in 1usize..70,
            seed in proptest::collection::vec(-3.0f32..3.0, 420)
        ) {
            let data: Vec<f32> = (0..rows * cols).map(|i| seed[i % seed.len()] * (1.0 + i as f32 * 0.01)).collect();
            let w = DenseMatrix::new(rows, cols, data).unwrap();
            let q = Int8Matrix::quantize(&w);
            let back = q.dequantize();
            for r in 0..rows {
                // Codes are rounded from `v · (1 / scale)`: the rounded
                // reciprocal moves a value up to about 127 ulps (2·10⁻⁵ of a
                // half step) across a tie, so the bound allows 10⁻⁴.
                let half_step = q.scale(r) / 2.0 * (1.0 + 1e-4);
                for (a, b) in w.row(r).iter().zip(back.row(r)) {
                    prop_assert!((a - b).abs() <= half_step, "{a} vs {b}, step {}", q.scale(r));
                }
            }
        }
    }

    #[test]
    fn zero_row_stays_zero_and_max_maps_to_127() {
        let w = DenseMatrix::new(2, 3, vec![0.0, 0.0, 0.0, -2.0, 1.0, 0.5]).unwrap();
        let q = Int8Matrix::quantize(&w);
        assert_eq!(q.row_codes(0), &[0, 0, 0]);
        assert_eq!(q.row_codes(1)[0], -127);
        assert_eq!(q.dequantize().row(0), &[0.0, 0.0, 0.0]);
    }
}
