//! Dense `f32` matrix products for batches: `Y = X·Wᵀ` and the Gram matrix
//! `G += Xᵀ·X`, through faer's blocked, cache-aware kernels. The runtime's
//! own kernels serve batch-1 products and every quantized format; a batch of
//! `f32` rows is a plain GEMM, where a blocked library does better than
//! row-by-row dot products.

use faer::{Accum, MatMut, MatRef, Par};

/// From this many rows of `X` on, [`crate::matmul::matmul_f32`] uses
/// [`gemm_f32`].
pub const GEMM_MIN_ROWS: usize = 8;

/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN_FLOPS: usize = 1 << 20;

/// Splits a product across the rayon pool when it is large enough and the
/// caller is not itself a pool worker: a worker means the work has already
/// been divided at a coarser grain (tensors, samples), and a nested parallel
/// GEMM there only makes the workers contend for the same cores.
fn parallelism(flops: usize) -> Par {
    let threads = rayon::current_num_threads();
    let on_worker = rayon::current_thread_index().is_some();
    if threads > 1 && !on_worker && flops >= PARALLEL_MIN_FLOPS {
        Par::rayon(threads)
    } else {
        Par::Seq
    }
}

/// `y = x·wᵀ`: `x` is `m × k`, `w` is `n × k`, `y` is `m × n`, all row-major.
///
/// # Panics
/// If a slice's length does not match its shape.
pub fn gemm_f32(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, y: &mut [f32]) {
    assert_eq!(x.len(), m * k, "x is not {m} × {k}");
    assert_eq!(w.len(), n * k, "w is not {n} × {k}");
    assert_eq!(y.len(), m * n, "y is not {m} × {n}");
    let xm = MatRef::from_row_major_slice(x, m, k);
    let wm = MatRef::from_row_major_slice(w, n, k);
    let ym = MatMut::from_row_major_slice_mut(y, m, n);
    let par = parallelism(m * n * k);
    faer::linalg::matmul::matmul(ym, Accum::Replace, xm, wm.transpose(), 1.0f32, par);
}

/// `g += xᵀ·x` for `x` of `m × k` rows; `g` is `k × k`, row-major (the
/// unnormalised second moment of the rows).
///
/// # Panics
/// If a slice's length does not match its shape.
pub fn gram_add_f32(x: &[f32], m: usize, k: usize, g: &mut [f32]) {
    assert_eq!(x.len(), m * k, "x is not {m} × {k}");
    assert_eq!(g.len(), k * k, "g is not {k} × {k}");
    let xm = MatRef::from_row_major_slice(x, m, k);
    let gm = MatMut::from_row_major_slice_mut(g, k, k);
    let par = parallelism(m * k * k);
    faer::linalg::matmul::matmul(gm, Accum::Add, xm.transpose(), xm, 1.0f32, par);
}

/// `y = a·b`: `a` is `m × k`, `b` is `k × n`, `y` is `m × n`, all row-major.
///
/// # Panics
/// If a slice's length does not match its shape.
pub fn matmul_nn_f32(a: &[f32], m: usize, k: usize, b: &[f32], n: usize, y: &mut [f32]) {
    assert_eq!(a.len(), m * k, "a is not {m} × {k}");
    assert_eq!(b.len(), k * n, "b is not {k} × {n}");
    assert_eq!(y.len(), m * n, "y is not {m} × {n}");
    let am = MatRef::from_row_major_slice(a, m, k);
    let bm = MatRef::from_row_major_slice(b, k, n);
    let ym = MatMut::from_row_major_slice_mut(y, m, n);
    let par = parallelism(m * n * k);
    faer::linalg::matmul::matmul(ym, Accum::Replace, am, bm, 1.0f32, par);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 - 500.0) / 700.0).collect()
    }

    #[test]
    fn gemm_matches_dot_products() {
        for (m, k, n) in [(1, 1, 1), (9, 33, 17), (40, 130, 7)] {
            let (x, w) = (values(m * k, 1), values(n * k, 2));
            let mut y = vec![f32::NAN; m * n];
            gemm_f32(&x, m, k, &w, n, &mut y);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = x[i * k..(i + 1) * k]
                        .iter()
                        .zip(&w[j * k..(j + 1) * k])
                        .map(|(a, b)| a * b)
                        .sum();
                    assert!(
                        (y[i * n + j] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{m}×{k}×{n}"
                    );
                }
            }
        }
    }

    #[test]
    fn gram_accumulates() {
        let (m, k) = (13, 5);
        let x = values(m * k, 3);
        let mut g = vec![1.0f32; k * k];
        gram_add_f32(&x, m, k, &mut g);
        for a in 0..k {
            for b in 0..k {
                let want = 1.0 + (0..m).map(|r| x[r * k + a] * x[r * k + b]).sum::<f32>();
                assert!((g[a * k + b] - want).abs() < 1e-4, "({a}, {b})");
            }
        }
    }

    #[test]
    fn plain_product() {
        let (m, k, n) = (3, 4, 5);
        let (a, b) = (values(m * k, 4), values(k * n, 5));
        let mut y = vec![0.0; m * n];
        matmul_nn_f32(&a, m, k, &b, n, &mut y);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
                assert!((y[i * n + j] - want).abs() < 1e-5);
            }
        }
    }
}
