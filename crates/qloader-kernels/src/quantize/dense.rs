//! An unquantized `f32` matrix.

use crate::storage::Storage;

/// A row-major `rows × cols` matrix of `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseMatrix {
    rows: usize,
    cols: usize,
    data: Storage<f32>,
}

impl DenseMatrix {
    /// Wraps `data`; `None` if its length is not `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Option<Self> {
        Self::from_storage(rows, cols, Storage::owned(data))
    }

    /// Like [`DenseMatrix::new`], with the values owned or shared
    /// ([`Storage`]).
    pub fn from_storage(rows: usize, cols: usize, data: Storage<f32>) -> Option<Self> {
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

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Bytes of storage.
    pub fn storage_bytes(&self) -> usize {
        self.data.len() * 4
    }
}
