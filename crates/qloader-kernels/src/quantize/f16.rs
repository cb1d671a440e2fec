//! An `f16` (IEEE half) matrix: half the bytes of `f32`, no scales.

use half::f16;

use super::DenseMatrix;
use crate::storage::Storage;

/// A row-major `rows × cols` matrix of `f16`.
#[derive(Debug, Clone, PartialEq)]
pub struct HalfMatrix {
    rows: usize,
    cols: usize,
    data: Storage<f16>,
}

impl HalfMatrix {
    /// Rounds `w` to the nearest `f16` (values beyond ±65504 become ±∞).
    pub fn quantize(w: &DenseMatrix) -> Self {
        let mut data = vec![f16::ZERO; w.data().len()];
        crate::f16_convert::f32_to_f16_slice(w.data(), &mut data);
        Self { rows: w.rows(), cols: w.cols(), data: data.into() }
    }

    /// Wraps `data`; `None` if its length is not `rows * cols`.
    pub fn from_parts(rows: usize, cols: usize, data: impl Into<Storage<f16>>) -> Option<Self> {
        let data = data.into();
        (rows.checked_mul(cols) == Some(data.len())).then_some(Self { rows, cols, data })
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
