//! The reference products. `x` is `m × k` row-major, `W` is `n × k`, the
//! result `y` is `m × n` row-major. Each weight is de-quantized by the
//! format's documented formula, one element at a time (codes unpacked by the
//! format crate's scalar unpacker), and summed in `f64` so that the reference
//! is more accurate than what it checks.

use crate::activations::QuantizedActivations;
use crate::quantize::{DenseMatrix, GroupedMatrix, HalfMatrix, Int8Matrix};

/// `Y = X·Wᵀ` for `f32` weights.
pub fn matmul_f32_reference(x: &[f32], m: usize, w: &DenseMatrix) -> Vec<f32> {
    reference(x, m, w.rows(), w.cols(), |j, c| w.row(j)[c] as f64)
}

/// `Y = X·Wᵀ` for `f16` weights.
pub fn matmul_f16_reference(x: &[f32], m: usize, w: &HalfMatrix) -> Vec<f32> {
    reference(x, m, w.rows(), w.cols(), |j, c| w.row(j)[c].to_f64())
}

/// `Y = X·Wᵀ` for int8 per-channel weights.
pub fn matmul_int8_reference(x: &[f32], m: usize, w: &Int8Matrix) -> Vec<f32> {
    reference(x, m, w.rows(), w.cols(), |j, c| w.row_codes(j)[c] as f64 * w.scale(j) as f64)
}

/// `Y = X·Wᵀ` for grouped weights of any layout.
pub fn matmul_grouped_reference(x: &[f32], m: usize, w: &GroupedMatrix) -> Vec<f32> {
    let codes: Vec<Vec<u8>> = (0..w.rows()).map(|r| w.row_codes(r)).collect();
    let group = w.layout().group();
    reference(x, m, w.rows(), w.cols(), |j, c| {
        let row = w.row(j);
        let g = c / group;
        row.scales[g].to_f64() * codes[j][c] as f64 + row.offsets[g].to_f64()
    })
}

fn reference(
    x: &[f32],
    m: usize,
    n: usize,
    k: usize,
    weight: impl Fn(usize, usize) -> f64,
) -> Vec<f32> {
    assert_eq!(x.len(), m * k, "x must be m × k");
    let mut y = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|c| x[i * k + c] as f64 * weight(j, c)).sum();
            y[i * n + j] = dot as f32;
        }
    }
    y
}

/// The values int8-quantized activations stand for: each code times its
/// group's scale (`m × cols`).
pub fn dequantize_activations(x: &QuantizedActivations) -> Vec<f32> {
    let (k, group) = (x.cols(), x.group());
    (0..x.rows())
        .flat_map(|i| {
            let (codes, scales, _) = x.row(i);
            (0..k).map(move |c| codes[c] as f32 * scales[c / group])
        })
        .collect()
}

/// `Y = X·Wᵀ` for grouped weights with int8-quantized activations: the
/// activation codes times their group scales are the exact inputs.
pub fn matmul_grouped_a8_reference(x: &QuantizedActivations, w: &GroupedMatrix) -> Vec<f32> {
    matmul_grouped_reference(&dequantize_activations(x), x.rows(), w)
}

/// `Y = X·Wᵀ` for int8 per-channel weights with int8-quantized activations.
pub fn matmul_int8_a8_reference(x: &QuantizedActivations, w: &Int8Matrix) -> Vec<f32> {
    matmul_int8_reference(&dequantize_activations(x), x.rows(), w)
}
