//! One weight matrix in one storage format, and the product through it.

use qloader_format::WeightFormat;
use qloader_kernels::matmul::{matmul_f32, matmul_int4, matmul_int8};
use qloader_kernels::{DenseMatrix, Int4Matrix, Int8Matrix};

/// A linear layer's `out × in` weight, stored in one format.
#[derive(Debug, Clone)]
pub enum LinearWeight {
    /// Unquantized.
    F32(DenseMatrix),
    /// Int8, one scale per output channel.
    Int8(Int8Matrix),
    /// Int4, groups of 32 along the input dimension.
    Int4(Int4Matrix),
}

impl LinearWeight {
    /// Stores `w` in `format`.
    pub fn quantize(w: DenseMatrix, format: WeightFormat) -> Self {
        match format {
            WeightFormat::Int8PerChannel => LinearWeight::Int8(Int8Matrix::quantize(&w)),
            WeightFormat::Int4Group32 => LinearWeight::Int4(Int4Matrix::quantize(&w)),
            _ => LinearWeight::F32(w),
        }
    }

    /// The storage format.
    pub fn format(&self) -> WeightFormat {
        match self {
            LinearWeight::F32(_) => WeightFormat::F32,
            LinearWeight::Int8(_) => WeightFormat::Int8PerChannel,
            LinearWeight::Int4(_) => WeightFormat::Int4Group32,
        }
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        match self {
            LinearWeight::F32(w) => w.rows(),
            LinearWeight::Int8(w) => w.rows(),
            LinearWeight::Int4(w) => w.rows(),
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        match self {
            LinearWeight::F32(w) => w.cols(),
            LinearWeight::Int8(w) => w.cols(),
            LinearWeight::Int4(w) => w.cols(),
        }
    }

    /// Bytes of storage, scales and offsets included.
    pub fn storage_bytes(&self) -> usize {
        match self {
            LinearWeight::F32(w) => w.storage_bytes(),
            LinearWeight::Int8(w) => w.storage_bytes(),
            LinearWeight::Int4(w) => w.storage_bytes(),
        }
    }

    /// `y = x·Wᵀ` for `m` rows of `x` (`m × in`), into `y` (`m × out`).
    pub fn matmul(&self, x: &[f32], m: usize, y: &mut [f32]) {
        match self {
            LinearWeight::F32(w) => matmul_f32(x, m, w, y),
            LinearWeight::Int8(w) => matmul_int8(x, m, w, y),
            LinearWeight::Int4(w) => matmul_int4(x, m, w, y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_format_formula() {
        let w = DenseMatrix::new(8, 64, (0..512).map(|i| i as f32 / 100.0).collect()).unwrap();
        for f in WeightFormat::ALL {
            let lw = LinearWeight::quantize(w.clone(), f);
            assert_eq!(lw.format(), f);
            assert_eq!(lw.storage_bytes(), f.storage_bytes(8, 64), "{f}");
            assert_eq!((lw.out_features(), lw.in_features()), (8, 64));
        }
    }
}
