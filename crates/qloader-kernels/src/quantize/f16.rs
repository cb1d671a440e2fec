//! An `f16` (IEEE half) matrix: half the bytes of `f32`, no scales; and its
//! values re-laid in panels of 16 rows for the batched products.

use std::sync::OnceLock;

use half::f16;

use super::DenseMatrix;
use crate::storage::Storage;

/// Rows per panel of [`HalfMatrix::panels`].
pub const HALF_PANEL_ROWS: usize = 16;

/// A row-major `rows × cols` matrix of `f16`.
#[derive(Debug, Clone)]
pub struct HalfMatrix {
    rows: usize,
    cols: usize,
    data: Storage<f16>,
    /// The same values in panels, made at the first batched product.
    panels: OnceLock<Vec<f16>>,
}

impl PartialEq for HalfMatrix {
    fn eq(&self, other: &Self) -> bool {
        (self.rows, self.cols, &self.data) == (other.rows, other.cols, &other.data)
    }
}

impl HalfMatrix {
    /// Rounds `w` to the nearest `f16` (values beyond ±65504 become ±∞).
    pub fn quantize(w: &DenseMatrix) -> Self {
        let mut data = vec![f16::ZERO; w.data().len()];
        crate::f16_convert::f32_to_f16_slice(w.data(), &mut data);
        Self { rows: w.rows(), cols: w.cols(), data: data.into(), panels: OnceLock::new() }
    }

    /// Wraps `data`; `None` if its length is not `rows * cols`.
    pub fn from_parts(rows: usize, cols: usize, data: impl Into<Storage<f16>>) -> Option<Self> {
        let data = data.into();
        (rows.checked_mul(cols) == Some(data.len())).then_some(Self {
            rows,
            cols,
            data,
            panels: OnceLock::new(),
        })
    }

    /// Whether the arrays are views of shared bytes (a memory-mapped model)
    /// rather than owned copies.
    pub fn is_mapped(&self) -> bool {
        self.data.is_shared()
    }

    /// Number of rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Every value, row-major.
    pub fn data(&self) -> &[f16] {
        &self.data
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f16] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// The values in panels of [`HALF_PANEL_ROWS`] rows, each panel column
    /// by column: row `16p + l`, column `c` at `[(p·cols + c)·16 + l]`, rows
    /// past the last zero. Made once, at the first call (an owned copy as
    /// large as the matrix), so that a batched product loads 16 rows of a
    /// column with one contiguous read instead of a gather.
    pub fn panels(&self) -> &[f16] {
        self.panels.get_or_init(|| {
            let (rows, cols) = (self.rows, self.cols);
            let mut out = vec![f16::ZERO; rows.div_ceil(HALF_PANEL_ROWS) * HALF_PANEL_ROWS * cols];
            for r in 0..rows {
                let (p, l) = (r / HALF_PANEL_ROWS, r % HALF_PANEL_ROWS);
                let panel = &mut out[p * cols * HALF_PANEL_ROWS..(p + 1) * cols * HALF_PANEL_ROWS];
                for (c, &v) in self.row(r).iter().enumerate() {
                    panel[c * HALF_PANEL_ROWS + l] = v;
                }
            }
            out
        })
    }

    /// Back to `f32` (exact).
    pub fn dequantize(&self) -> DenseMatrix {
        let mut data = vec![0.0f32; self.data.len()];
        self.dequantize_into(&mut data);
        DenseMatrix::new(self.rows, self.cols, data).expect("shape is preserved")
    }

    /// [`HalfMatrix::dequantize`] into `out` (`rows × cols`, row-major).
    ///
    /// # Panics
    /// If `out` does not hold `rows × cols` values.
    pub fn dequantize_into(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.data.len(), "one value per weight");
        (crate::Kernels::detect().unpack_f16)(&self.data, out);
    }

    /// Bytes of storage.
    pub fn storage_bytes(&self) -> usize {
        self.data.len() * 2
    }
}
