//! The products the runtime calls: `Y = X·Wᵀ` per weight format, unpacking
//! quantized weights group by group into registers-sized buffers (never a full
//! `f32` copy of `W`), with eight independent accumulators so the compiler
//! vectorises the inner loops on any target, and rows of `X` split over the
//! rayon pool.
//!
//! These are portable kernels; ISA-specific ones (AVX2, NEON) will sit beside
//! them behind a dispatch table and be tested against the same reference.

use qloader_format::int4::INT4_GROUP;
use rayon::prelude::*;

use crate::quantize::{int4_dequantize_block, DenseMatrix, Int4Matrix, Int8Matrix};

/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_THRESHOLD: usize = 1 << 16;

/// `Y = X·Wᵀ` with `f32` weights; `x` is `m × k`, `y` is `m × n`.
pub fn matmul_f32(x: &[f32], m: usize, w: &DenseMatrix, y: &mut [f32]) {
    check(x, m, w.cols(), w.rows(), y);
    for_each_output(x, m, w.cols(), w.rows(), y, |xr, j| dot_f32(xr, w.row(j)));
}

/// `Y = X·Wᵀ` with int8 per-channel weights.
pub fn matmul_int8(x: &[f32], m: usize, w: &Int8Matrix, y: &mut [f32]) {
    check(x, m, w.cols(), w.rows(), y);
    for_each_output(x, m, w.cols(), w.rows(), y, |xr, j| {
        dot_f32_i8(xr, w.row_codes(j)) * w.scale(j)
    });
}

/// `Y = X·Wᵀ` with int4 group-32 weights.
pub fn matmul_int4(x: &[f32], m: usize, w: &Int4Matrix, y: &mut [f32]) {
    check(x, m, w.cols(), w.rows(), y);
    let k = w.cols();
    for_each_output(x, m, k, w.rows(), y, |xr, j| {
        let mut total = 0.0f32;
        for (g, block) in w.row_blocks(j).iter().enumerate() {
            let start = g * INT4_GROUP;
            let end = (start + INT4_GROUP).min(k);
            let values = int4_dequantize_block(block);
            total += dot_f32(&xr[start..end], &values[..end - start]);
        }
        total
    });
}

fn check(x: &[f32], m: usize, k: usize, n: usize, y: &[f32]) {
    assert_eq!(x.len(), m * k, "x has {} values, expected m·k = {m}·{k}", x.len());
    assert_eq!(y.len(), m * n, "y has {} values, expected m·n = {m}·{n}", y.len());
}

/// Runs `dot(x_row, j)` for every output element, in parallel over rows of
/// `X` when there is enough work.
fn for_each_output(
    x: &[f32],
    m: usize,
    k: usize,
    n: usize,
    y: &mut [f32],
    dot: impl Fn(&[f32], usize) -> f32 + Sync,
) {
    if n == 0 || m == 0 {
        return;
    }
    let row = |(i, yr): (usize, &mut [f32])| {
        let xr = &x[i * k..(i + 1) * k];
        for (j, out) in yr.iter_mut().enumerate() {
            *out = dot(xr, j);
        }
    };
    if m * n * k < PARALLEL_THRESHOLD {
        y.chunks_mut(n).enumerate().for_each(row);
    } else if m > 1 {
        y.par_chunks_mut(n).enumerate().for_each(row);
    } else {
        // One row of X: split the outputs instead.
        let chunk = n.div_ceil(rayon::current_num_threads()).max(1);
        y.par_chunks_mut(chunk).enumerate().for_each(|(c, ys)| {
            for (o, out) in ys.iter_mut().enumerate() {
                *out = dot(x, c * chunk + o);
            }
        });
    }
}

/// Dot product with eight independent partial sums.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let (ac, at) = a.split_at(a.len() / 8 * 8);
    let (bc, bt) = b.split_at(ac.len());
    for (x, w) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += x[l] * w[l];
        }
    }
    let tail: f32 = at.iter().zip(bt).map(|(x, w)| x * w).sum();
    acc.iter().sum::<f32>() + tail
}

#[inline]
fn dot_f32_i8(a: &[f32], q: &[i8]) -> f32 {
    debug_assert_eq!(a.len(), q.len());
    let mut acc = [0.0f32; 8];
    let (ac, at) = a.split_at(a.len() / 8 * 8);
    let (qc, qt) = q.split_at(ac.len());
    for (x, w) in ac.chunks_exact(8).zip(qc.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += x[l] * w[l] as f32;
        }
    }
    let tail: f32 = at.iter().zip(qt).map(|(x, &w)| x * w as f32).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::*;
    use proptest::prelude::*;

    fn matrix(rows: usize, cols: usize, seed: &[f32]) -> DenseMatrix {
        let data = (0..rows * cols)
            .map(|i| seed[(i * 7 + 3) % seed.len()] * (1.0 + (i % 5) as f32))
            .collect();
        DenseMatrix::new(rows, cols, data).unwrap()
    }

    /// Float sums in a different order differ by a few ulps per term; bound
    /// the difference by k·ε·Σ|x·w| (the standard dot-product error bound).
    fn assert_close(got: &[f32], want: &[f32], x: &[f32], m: usize, w: &DenseMatrix) {
        let k = w.cols();
        for i in 0..m {
            for j in 0..w.rows() {
                let mag: f32 = (0..k).map(|c| (x[i * k + c] * w.row(j)[c]).abs()).sum();
                let tol = (k as f32 + 2.0) * f32::EPSILON * mag + 1e-6;
                let (g, r) = (got[i * w.rows() + j], want[i * w.rows() + j]);
                assert!((g - r).abs() <= tol, "y[{i},{j}] = {g}, reference {r}, tol {tol}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn kernels_match_reference(
            m in 1usize..5, n in 1usize..20, k in 1usize..150,
            seed in proptest::collection::vec(-2.0f32..2.0, 64)
        ) {
            let x: Vec<f32> = (0..m * k).map(|i| seed[(i * 11) % seed.len()]).collect();
            let w = matrix(n, k, &seed);
            let mut y = vec![0.0; m * n];

            matmul_f32(&x, m, &w, &mut y);
            assert_close(&y, &matmul_f32_reference(&x, m, &w), &x, m, &w);

            let q8 = Int8Matrix::quantize(&w);
            matmul_int8(&x, m, &q8, &mut y);
            assert_close(&y, &matmul_int8_reference(&x, m, &q8), &x, m, &q8.dequantize());

            let q4 = Int4Matrix::quantize(&w);
            matmul_int4(&x, m, &q4, &mut y);
            assert_close(&y, &matmul_int4_reference(&x, m, &q4), &x, m, &q4.dequantize());
        }
    }

    #[test]
    fn parallel_paths_match_reference() {
        // Large enough to cross PARALLEL_THRESHOLD, both for m = 1 and m > 1.
        let seed: Vec<f32> = (0..97).map(|i| ((i * 37) % 97) as f32 / 48.0 - 1.0).collect();
        let w = matrix(300, 260, &seed);
        let q4 = Int4Matrix::quantize(&w);
        for m in [1, 3] {
            let x: Vec<f32> = (0..m * 260).map(|i| seed[(i * 5) % 97]).collect();
            let mut y = vec![0.0; m * 300];
            matmul_int4(&x, m, &q4, &mut y);
            assert_close(&y, &matmul_int4_reference(&x, m, &q4), &x, m, &q4.dequantize());
        }
    }

    #[test]
    fn quantized_products_approximate_f32() {
        // Tolerances of the quantized product against the exact f32 one,
        // relative to ‖x‖·‖w_j‖: int8 per channel ≤ 1 %, int4 group-32 ≤ 10 %.
        let seed: Vec<f32> = (0..101).map(|i| ((i * 53) % 101) as f32 / 50.0 - 1.0).collect();
        let (m, n, k) = (4, 64, 384);
        let w = matrix(n, k, &seed);
        let x: Vec<f32> = (0..m * k).map(|i| seed[(i * 13) % 101]).collect();
        let exact = matmul_f32_reference(&x, m, &w);
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
        for (name, y, bound) in [
            ("int8", matmul_int8_reference(&x, m, &Int8Matrix::quantize(&w)), 0.01),
            ("int4", matmul_int4_reference(&x, m, &Int4Matrix::quantize(&w)), 0.10),
        ] {
            for i in 0..m {
                for j in 0..n {
                    let rel = (y[i * n + j] - exact[i * n + j]).abs()
                        / (norm(&x[i * k..(i + 1) * k]) * norm(w.row(j)));
                    assert!(rel <= bound, "{name}: y[{i},{j}] relative error {rel}");
                }
            }
        }
    }
}
