//! What the kernel tests share: the tiers this host runs, a deterministic
//! test matrix, and the dot-product error bound every tier is held to.

use crate::dispatch::{Isa, Kernels};
use crate::quantize::{DenseMatrix, GroupedMatrix};

/// Every tier this host can run; the generic tier is always first, so the
/// scalar path is tested everywhere.
pub(crate) fn available() -> Vec<&'static Kernels> {
    let tiers: Vec<_> = Isa::ALL.into_iter().filter_map(Kernels::for_isa).collect();
    assert_eq!(tiers[0].isa, Isa::Generic);
    if std::env::var_os("CI").is_some() && cfg!(target_arch = "x86_64") {
        // The CI machine has AVX2: make sure its tier is really exercised.
        assert!(tiers.iter().any(|k| k.isa == Isa::Avx2), "AVX2 tier missing on CI");
    }
    tiers
}

/// A `rows × cols` matrix of the `seed` values, scaled differently along
/// each row.
pub(crate) fn matrix(rows: usize, cols: usize, seed: &[f32]) -> DenseMatrix {
    let data =
        (0..rows * cols).map(|i| seed[(i * 7 + 3) % seed.len()] * (1.0 + (i % 5) as f32)).collect();
    DenseMatrix::new(rows, cols, data).unwrap()
}

/// Float sums in a different order differ by a few ulps per term; bound
/// the difference by (k + 2)·ε·Σ|x·w| (the standard dot-product error
/// bound), where `w` is the de-quantized weight.
pub(crate) fn assert_close(
    what: &str,
    got: &[f32],
    want: &[f32],
    x: &[f32],
    m: usize,
    w: &DenseMatrix,
) {
    let k = w.cols();
    for i in 0..m {
        for j in 0..w.rows() {
            let mag: f32 = (0..k).map(|c| (x[i * k + c] * w.row(j)[c]).abs()).sum();
            let tol = (k as f32 + 2.0) * f32::EPSILON * mag + 1e-6;
            let (g, r) = (got[i * w.rows() + j], want[i * w.rows() + j]);
            assert!((g - r).abs() <= tol, "{what}: y[{i},{j}] = {g}, reference {r}, tol {tol}");
        }
    }
}

/// What bounds the rounding of a grouped product computed in two parts,
/// `scale · Σ x·q` plus `offset · Σ x` (the tiles' split): `|scale · q| +
/// |offset|` per weight.
/// Where the two parts cancel, `|w|` alone is far smaller than the terms
/// that were rounded, so [`assert_close`] takes this in place of the
/// de-quantized weights.
pub(crate) fn grouped_magnitude(g: &GroupedMatrix) -> DenseMatrix {
    let (rows, cols, group) = (g.rows(), g.cols(), g.layout().group());
    let mut data = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let row = g.row(r);
        for (c, q) in g.row_codes(r).into_iter().enumerate() {
            let (s, o) = (row.scales[c / group].to_f32(), row.offsets[c / group].to_f32());
            data.push((s * q as f32).abs() + o.abs());
        }
    }
    DenseMatrix::new(rows, cols, data).unwrap()
}
