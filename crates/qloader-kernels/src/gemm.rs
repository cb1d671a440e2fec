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
/// caller is neither a pool worker nor inside a team job or serial section:
/// either means the work has already been divided at a coarser grain
/// (tensors, samples, heads), and a nested parallel GEMM there only makes
/// threads contend for the same cores.
fn parallelism(flops: usize) -> Par {
    let threads = rayon::current_num_threads().min(crate::team::threads());
    let on_worker = rayon::current_thread_index().is_some() || crate::team::is_serial();
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
    let threads = crate::team::threads();
    if threads > 1 && !crate::team::is_serial() && m * n * k >= PARALLEL_MIN_FLOPS {
        // Columns of y (rows of w) in chunks over the thread team, each a
        // sequential faer product: one pool for every product of a pass.
        let grain = n.div_ceil(2 * threads).next_multiple_of(16);
        let base = crate::team::SendPtr(y.as_mut_ptr());
        crate::team::for_each_chunk(n, grain, |cols| {
            let xm = MatRef::from_row_major_slice(x, m, k);
            let wm = MatRef::from_row_major_slice(&w[cols.start * k..cols.end * k], cols.len(), k);
            // SAFETY: the view is columns `cols` of the row-major m × n `y`
            // (row stride n), inside `y`, which is borrowed mutably for this
            // whole call; chunks are disjoint, so no element is written by
            // two threads.
            let ym = unsafe {
                MatMut::from_raw_parts_mut(base.get().add(cols.start), m, cols.len(), n as isize, 1)
            };
            faer::linalg::matmul::matmul(ym, Accum::Replace, xm, wm.transpose(), 1.0f32, Par::Seq);
        });
        return;
    }
    let xm = MatRef::from_row_major_slice(x, m, k);
    let wm = MatRef::from_row_major_slice(w, n, k);
    let ym = MatMut::from_row_major_slice_mut(y, m, n);
    let par = parallelism(m * n * k);
    faer::linalg::matmul::matmul(ym, Accum::Replace, xm, wm.transpose(), 1.0f32, par);
}

/// A row-major `rows × cols` view whose row `r` starts at `data[r·stride]`.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    /// The values, from the first row's first.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Values from one row's start to the next's.
    pub stride: usize,
}

impl<'a> Strided<'a> {
    fn mat(self) -> MatRef<'a, f32> {
        MatRef::from_row_major_slice_with_stride(self.data, self.rows, self.cols, self.stride)
    }
}

/// `y = a·bᵀ` (`transpose_b`) or `y = a·b` for strided row-major `a` and
/// `b`, into `y`, `a.rows × n` with row stride `ldy`. Runs on this thread
/// unless the product is large and the caller is not already parallel (see
/// [`gemm_f32`]).
///
/// # Panics
/// If the shapes disagree or a slice is too short for its view.
pub fn gemm_strided(a: Strided<'_>, b: Strided<'_>, transpose_b: bool, y: &mut [f32], ldy: usize) {
    let bm = if transpose_b { b.mat().transpose() } else { b.mat() };
    assert_eq!(a.cols, bm.nrows(), "inner dimensions differ");
    let (m, n) = (a.rows, bm.ncols());
    // The transpose of a column-major view: faer 0.24's
    // `from_row_major_slice_with_stride_mut` swaps its strides (it builds a
    // column-major view, writing outside `y`).
    let ym = MatMut::from_column_major_slice_with_stride_mut(y, n, m, ldy).transpose_mut();
    let par = parallelism(m * n * a.cols);
    faer::linalg::matmul::matmul(ym, Accum::Replace, a.mat(), bm, 1.0f32, par);
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
    fn strided_products() {
        // a: rows 1..4 of a 6-wide matrix, columns 2..5; b: 5 × 3.
        let big = values(6 * 6, 6);
        let a = Strided { data: &big[6 + 2..], rows: 3, cols: 3, stride: 6 };
        let b = values(5 * 3, 7);
        let mut y = vec![f32::NAN; 3 * 7];
        gemm_strided(a, Strided { data: &b, rows: 5, cols: 3, stride: 3 }, true, &mut y, 7);
        for i in 0..3 {
            for j in 0..5 {
                let want: f32 = (0..3).map(|t| big[(i + 1) * 6 + 2 + t] * b[j * 3 + t]).sum();
                assert!((y[i * 7 + j] - want).abs() < 1e-5);
            }
        }
        let c = values(3 * 4, 8);
        let mut z = vec![0.0; 3 * 4];
        gemm_strided(a, Strided { data: &c, rows: 3, cols: 4, stride: 4 }, false, &mut z, 4);
        for i in 0..3 {
            for j in 0..4 {
                let want: f32 = (0..3).map(|t| big[(i + 1) * 6 + 2 + t] * c[t * 4 + j]).sum();
                assert!((z[i * 4 + j] - want).abs() < 1e-5);
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
#[cfg(test)]
mod guard_tests {
    use super::*;

    #[test]
    fn products_write_only_their_output() {
        for (m, k, n) in [(10, 10, 64), (10, 64, 10), (17, 33, 64), (1, 64, 5), (64, 100, 64)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32).collect();
            let mut y = vec![f32::NAN; m * n + 64];
            y[m * n..].fill(7.0);
            matmul_nn_f32(&a, m, k, &b, n, &mut y[..m * n]);
            assert!(y[m * n..].iter().all(|&v| v == 7.0), "nn {m}×{k}×{n} wrote past its output");
            let bt: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32).collect();
            y[m * n..].fill(7.0);
            gemm_f32(&a, m, k, &bt, n, &mut y[..m * n]);
            assert!(y[m * n..].iter().all(|&v| v == 7.0), "nt {m}×{k}×{n} wrote past its output");
        }
    }
}
