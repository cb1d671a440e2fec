//! One weight matrix in one storage format, and the product through it.

use qloader_format::{ActivationFormat, WeightFormat};
use qloader_kernels::matmul::{
    matmul_f16, matmul_f32, matmul_grouped, matmul_grouped_a8, matmul_int8, matmul_int8_a8,
};
use qloader_kernels::{DenseMatrix, GroupedMatrix, HalfMatrix, Int8Matrix};

/// A linear layer's `out × in` weight, stored in one format.
#[derive(Debug, Clone)]
pub enum LinearWeight {
    /// Unquantized.
    F32(DenseMatrix),
    /// IEEE half precision.
    F16(HalfMatrix),
    /// Int8, one symmetric scale per output channel.
    Int8(Int8Matrix),
    /// Int8/int4/int3/int2 in groups along the input dimension.
    Grouped(GroupedMatrix),
}

impl LinearWeight {
    /// Stores `w` in `format`.
    pub fn quantize(w: DenseMatrix, format: WeightFormat) -> Self {
        match format {
            WeightFormat::F16 | WeightFormat::Int8PerChannel | WeightFormat::Grouped(_) => {
                Self::quantize_borrowed(&w, format)
            }
            _ => LinearWeight::F32(w),
        }
    }

    /// Like [`LinearWeight::quantize`], from a borrowed matrix (copied only
    /// when `format` keeps `f32`).
    pub fn quantize_borrowed(w: &DenseMatrix, format: WeightFormat) -> Self {
        match format {
            WeightFormat::F16 => LinearWeight::F16(HalfMatrix::quantize(w)),
            WeightFormat::Int8PerChannel => LinearWeight::Int8(Int8Matrix::quantize(w)),
            WeightFormat::Grouped(layout) => {
                LinearWeight::Grouped(GroupedMatrix::quantize(w, layout))
            }
            _ => LinearWeight::F32(w.clone()),
        }
    }

    /// The storage format.
    pub fn format(&self) -> WeightFormat {
        match self {
            LinearWeight::F32(_) => WeightFormat::F32,
            LinearWeight::F16(_) => WeightFormat::F16,
            LinearWeight::Int8(_) => WeightFormat::Int8PerChannel,
            LinearWeight::Grouped(w) => WeightFormat::Grouped(w.layout()),
        }
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        match self {
            LinearWeight::F32(w) => w.rows(),
            LinearWeight::F16(w) => w.rows(),
            LinearWeight::Int8(w) => w.rows(),
            LinearWeight::Grouped(w) => w.rows(),
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        match self {
            LinearWeight::F32(w) => w.cols(),
            LinearWeight::F16(w) => w.cols(),
            LinearWeight::Int8(w) => w.cols(),
            LinearWeight::Grouped(w) => w.cols(),
        }
    }

    /// The `f32` matrix this weight stands for (its codes times its scales,
    /// plus offsets): what the products compute with.
    pub fn dequantize(&self) -> DenseMatrix {
        match self {
            LinearWeight::F32(w) => w.clone(),
            LinearWeight::F16(w) => w.dequantize(),
            LinearWeight::Int8(w) => w.dequantize(),
            LinearWeight::Grouped(w) => w.dequantize(),
        }
    }

    /// [`LinearWeight::dequantize`] into `out` (`out_features ×
    /// in_features` values, row-major), without allocating.
    ///
    /// # Panics
    /// If `out` does not hold one value per weight.
    pub fn dequantize_into(&self, out: &mut [f32]) {
        match self {
            LinearWeight::F32(w) => out.copy_from_slice(w.data()),
            LinearWeight::F16(w) => w.dequantize_into(out),
            LinearWeight::Int8(w) => w.dequantize_into(out),
            LinearWeight::Grouped(w) => w.dequantize_into(out),
        }
    }

    /// Whether the weight reads its values in place from a memory-mapped
    /// model (see [`LinearWeight::from_mapped_parts`]) instead of owning them.
    pub fn is_mapped(&self) -> bool {
        match self {
            LinearWeight::F32(w) => w.is_mapped(),
            LinearWeight::F16(w) => w.is_mapped(),
            LinearWeight::Int8(w) => w.is_mapped(),
            LinearWeight::Grouped(w) => w.is_mapped(),
        }
    }

    /// Bytes of storage, scales and offsets included.
    pub fn storage_bytes(&self) -> usize {
        match self {
            LinearWeight::F32(w) => w.storage_bytes(),
            LinearWeight::F16(w) => w.storage_bytes(),
            LinearWeight::Int8(w) => w.storage_bytes(),
            LinearWeight::Grouped(w) => w.storage_bytes(),
        }
    }

    /// `y = x·Wᵀ` for `m` rows of `x` (`m × in`), into `y` (`m × out`).
    pub fn matmul(&self, x: &[f32], m: usize, y: &mut [f32]) {
        match self {
            LinearWeight::F32(w) => matmul_f32(x, m, w, y),
            LinearWeight::F16(w) => matmul_f16(x, m, w, y),
            LinearWeight::Int8(w) => matmul_int8(x, m, w, y),
            LinearWeight::Grouped(w) => matmul_grouped(x, m, w, y),
        }
    }

    /// Like [`LinearWeight::matmul`], but integer formats quantize `x` to int8
    /// per row first and use integer dot products (W8A8, W4A8, …); float
    /// formats multiply in `f32` as usual.
    pub fn matmul_a8(&self, x: &[f32], m: usize, y: &mut [f32]) {
        match self {
            LinearWeight::Int8(w) => matmul_int8_a8(x, m, w, y),
            LinearWeight::Grouped(w) => matmul_grouped_a8(x, m, w, y),
            _ => self.matmul(x, m, y),
        }
    }

    /// `y = x·Wᵀ` with activations in `act`.
    pub fn matmul_with(&self, act: ActivationFormat, x: &[f32], m: usize, y: &mut [f32]) {
        match act {
            ActivationFormat::F32 => self.matmul(x, m, y),
            ActivationFormat::Int8 => self.matmul_a8(x, m, y),
        }
    }

    /// Whether [`LinearWeight::matmul_a8`] uses int8 activations here.
    pub fn has_a8_kernel(&self) -> bool {
        matches!(self, LinearWeight::Int8(_) | LinearWeight::Grouped(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_format_formula() {
        let w = DenseMatrix::new(8, 96, (0..768).map(|i| i as f32 / 100.0).collect()).unwrap();
        for name in ["f32", "f16", "int8", "int4", "int3g64", "int2g128", "int8g32"] {
            let f: WeightFormat = name.parse().unwrap();
            let lw = LinearWeight::quantize(w.clone(), f);
            assert_eq!(lw.format(), f);
            assert_eq!(lw.storage_bytes(), f.storage_bytes(8, 96), "{f}");
            assert_eq!((lw.out_features(), lw.in_features()), (8, 96));
            let back = lw.dequantize();
            assert_eq!(LinearWeight::quantize_borrowed(&w, f).dequantize(), back, "{f}");
            let mut into = vec![f32::NAN; 768];
            lw.dequantize_into(&mut into);
            assert_eq!(into, back.data(), "{f}");
            let worst =
                back.data().iter().zip(w.data()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            // Worst case int2g128: 4 levels over a group spanning 1.27,
            // half a step is under 0.22.
            assert!(worst < 0.22, "{f}: {worst}");
        }
    }
}
