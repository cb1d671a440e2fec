//! How far one quantized tensor is from its original: the mean squared
//! weight error, and the second-order proxy `tr(ΔW H ΔWᵀ)` with
//! `H = E[x xᵀ]` of the layer's input, which is `E‖ΔW x‖²`, the expected
//! squared error the change adds to the layer's output per token.

use qloader_kernels::gemm::gemm_f32;

/// `W − Q`, element-wise.
pub fn difference(w: &[f32], q: &[f32]) -> Vec<f32> {
    w.iter().zip(q).map(|(a, b)| a - b).collect()
}

/// `values[i] = w[i] − values[i]`: `W − Q` in place of `Q`.
pub fn subtract_from(w: &[f32], values: &mut [f32]) {
    for (v, &a) in values.iter_mut().zip(w) {
        *v = a - *v;
    }
}

/// Mean of the squared entries of `delta`.
pub fn mean_square(delta: &[f32]) -> f64 {
    if delta.is_empty() {
        return 0.0;
    }
    delta.iter().map(|&d| d as f64 * d as f64).sum::<f64>() / delta.len() as f64
}

/// `tr(Δ H Δᵀ)` for `Δ` of `rows × cols` and a symmetric positive
/// semi-definite `H` of `cols × cols` (clamped at zero against rounding).
pub fn proxy(delta: &[f32], rows: usize, cols: usize, h: &[f32]) -> f64 {
    let mut dh = vec![0.0f32; rows * cols];
    // H is symmetric, so Δ·Hᵀ = Δ·H.
    gemm_f32(delta, rows, cols, h, cols, &mut dh);
    dh.iter().zip(delta).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>().max(0.0)
}

/// The proxy of an embedding table: `Σ_r f_r ‖Δ_r‖²` for `Δ` of rows of
/// `cols` and row (token) frequencies `f` — the same `E‖ΔW x‖²` with a
/// one-hot `x`, whose second moment is `diag(f)`.
pub fn lookup_proxy(delta: &[f32], cols: usize, frequencies: &[f32]) -> f64 {
    delta
        .chunks_exact(cols.max(1))
        .zip(frequencies)
        .filter(|(_, &f)| f > 0.0)
        .map(|(row, &f)| f as f64 * row.iter().map(|&d| d as f64 * d as f64).sum::<f64>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_proxy_is_the_dense_proxy_of_one_hot_inputs() {
        let delta = [0.5f32, -1.0, 2.0, 0.0, 1.0, 1.0];
        let f = [0.25f32, 0.0, 0.75];
        let mut h = vec![0.0f32; 9];
        for (r, &fr) in f.iter().enumerate() {
            h[r * 3 + r] = fr;
        }
        // As a linear layer: Δᵀ is cols × rows, input one-hot over rows.
        let mut dt = vec![0.0f32; 6];
        for r in 0..3 {
            for c in 0..2 {
                dt[c * 3 + r] = delta[r * 2 + c];
            }
        }
        let want = proxy(&dt, 2, 3, &h);
        assert!((lookup_proxy(&delta, 2, &f) - want).abs() < 1e-6);
        assert!((want - (0.25 * 1.25 + 0.75 * 2.0)).abs() < 1e-6);
    }

    #[test]
    fn proxy_is_expected_output_error() {
        // Two inputs x1 = (1, 0, 2), x2 = (0, 1, -1); H = (x1x1ᵀ + x2x2ᵀ)/2.
        let xs = [[1.0f32, 0.0, 2.0], [0.0, 1.0, -1.0]];
        let mut h = vec![0.0f32; 9];
        for x in xs {
            for a in 0..3 {
                for b in 0..3 {
                    h[a * 3 + b] += x[a] * x[b] / 2.0;
                }
            }
        }
        let delta = [0.5f32, -1.0, 0.25, 0.0, 2.0, 1.0];
        let want: f64 = xs
            .iter()
            .map(|x| {
                (0..2)
                    .map(|r| {
                        let y: f32 = (0..3).map(|c| delta[r * 3 + c] * x[c]).sum();
                        (y * y) as f64
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            / 2.0;
        assert!((proxy(&delta, 2, 3, &h) - want).abs() < 1e-5);
    }

    #[test]
    fn weight_error() {
        let d = difference(&[1.0, 2.0, 3.0], &[1.0, 1.5, 4.0]);
        assert_eq!(d, vec![0.0, 0.5, -1.0]);
        let mut q = vec![1.0, 1.5, 4.0];
        subtract_from(&[1.0, 2.0, 3.0], &mut q);
        assert_eq!(q, d);
        assert!((mean_square(&d) - 1.25 / 3.0).abs() < 1e-12);
        assert_eq!(mean_square(&[]), 0.0);
    }
}
