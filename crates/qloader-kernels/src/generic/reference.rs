//! The reference products. `x` is `m × k` row-major, `W` is `n × k`, the
//! result `y` is `m × n` row-major. Each weight is de-quantized by the same
//! formula as the format's documentation, one element at a time, and summed
//! in `f64` so that the reference is more accurate than what it checks.

use crate::quantize::{DenseMatrix, Int4Matrix, Int8Matrix};
use qloader_format::int4::INT4_GROUP;

/// `Y = X·Wᵀ` for `f32` weights.
pub fn matmul_f32_reference(x: &[f32], m: usize, w: &DenseMatrix) -> Vec<f32> {
    let (n, k) = (w.rows(), w.cols());
    assert_eq!(x.len(), m * k, "x must be m × k");
    reference(m, n, |i, j| (0..k).map(|c| x[i * k + c] as f64 * w.row(j)[c] as f64).sum())
}

/// `Y = X·Wᵀ` for int8 per-channel weights.
pub fn matmul_int8_reference(x: &[f32], m: usize, w: &Int8Matrix) -> Vec<f32> {
    let (n, k) = (w.rows(), w.cols());
    assert_eq!(x.len(), m * k, "x must be m × k");
    reference(m, n, |i, j| {
        let codes = w.row_codes(j);
        (0..k).map(|c| x[i * k + c] as f64 * (codes[c] as f64 * w.scale(j) as f64)).sum()
    })
}

/// `Y = X·Wᵀ` for int4 group-32 weights.
pub fn matmul_int4_reference(x: &[f32], m: usize, w: &Int4Matrix) -> Vec<f32> {
    let (n, k) = (w.rows(), w.cols());
    assert_eq!(x.len(), m * k, "x must be m × k");
    reference(m, n, |i, j| {
        let blocks = w.row_blocks(j);
        (0..k)
            .map(|c| {
                let b = &blocks[c / INT4_GROUP];
                let weight = b.scale.to_f32() as f64 * b.code(c % INT4_GROUP) as f64
                    + b.offset.to_f32() as f64;
                x[i * k + c] as f64 * weight
            })
            .sum()
    })
}

fn reference(m: usize, n: usize, dot: impl Fn(usize, usize) -> f64) -> Vec<f32> {
    let mut y = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            y[i * n + j] = dot(i, j) as f32;
        }
    }
    y
}
