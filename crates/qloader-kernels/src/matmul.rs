//! The products the runtime calls: `Y = X·Wᵀ` per weight format. Quantized
//! weights are expanded group by group in registers (never a full `f32` copy
//! of `W`), the row kernel comes from the dispatch table (one look-up per
//! product, never per block), and ranges of weight rows are split over the
//! thread team ([`crate::team`]) so each weight row is read once per product
//! whatever the batch.

use crate::activations::QuantizedActivations;
use crate::dispatch::Kernels;
use crate::expanded_gemm::{matmul_expanded, PanelWeights};
use crate::gemm::{gemm_f32, GEMM_MIN_ROWS};
use crate::quantize::{DenseMatrix, GroupedMatrix, HalfMatrix, Int8Matrix};
use crate::team;
use crate::tiles::{
    matmul_tiled_a8, matmul_tiled_a8_with, matmul_tiled_f32_glu, matmul_tiled_f32_with, TiledMatrix,
};

/// Below this many outputs a product runs on the calling thread.
const PARALLEL_MIN_OUTPUTS: usize = 256;

/// `Y = X·Wᵀ` with `f32` weights; `x` is `m × k`, `y` is `m × n`.
///
/// From [`GEMM_MIN_ROWS`] rows of `x` on this is a blocked GEMM
/// ([`gemm_f32`]); below, row-by-row dot products.
pub fn matmul_f32(x: &[f32], m: usize, w: &DenseMatrix, y: &mut [f32]) {
    if m >= GEMM_MIN_ROWS {
        check(x, m, w.cols(), w.rows(), y);
        gemm_f32(x, m, w.cols(), w.data(), w.rows(), y);
    } else {
        matmul_f32_with(Kernels::detect(), x, m, w, y)
    }
}

/// `Y = X·Wᵀ` with int8 per-channel weights.
pub fn matmul_int8(x: &[f32], m: usize, w: &Int8Matrix, y: &mut [f32]) {
    matmul_int8_with(Kernels::detect(), x, m, w, y)
}

/// `Y = X·Wᵀ` with `f16` weights.
pub fn matmul_f16(x: &[f32], m: usize, w: &HalfMatrix, y: &mut [f32]) {
    matmul_f16_with(Kernels::detect(), x, m, w, y)
}

/// `Y = X·Wᵀ` with grouped (int8/int4/int3/int2) weights.
pub fn matmul_grouped(x: &[f32], m: usize, w: &GroupedMatrix, y: &mut [f32]) {
    matmul_tiles(x, m, w.tiles(), y)
}

/// `Y = X·Wᵀ` with weights in tiles (grouped or compact) and `f32`
/// activations, with this CPU's kernels (see [`matmul_tiles_with`]).
pub fn matmul_tiles(x: &[f32], m: usize, w: &TiledMatrix, y: &mut [f32]) {
    matmul_tiles_with(Kernels::detect(), x, m, w, y)
}

/// Values per activation scale for int8 per-channel weights (which have no
/// groups of their own): the integer dot product runs over this many values
/// before it is scaled.
pub const INT8_ACTIVATION_GROUP: usize = 128;

/// `Y = X·Wᵀ` with int8 per-channel weights and activations quantized to
/// int8 on the fly, one scale per [`INT8_ACTIVATION_GROUP`] values (W8A8,
/// exact integer dot products within a group).
pub fn matmul_int8_a8(x: &[f32], m: usize, w: &Int8Matrix, y: &mut [f32]) {
    let xq = QuantizedActivations::quantize(x, m, w.cols(), INT8_ACTIVATION_GROUP);
    matmul_int8_a8_with(Kernels::detect(), &xq, w, y)
}

/// `Y = X·Wᵀ` with grouped weights and activations quantized to int8 on the
/// fly in the weight's groups (W8A8, W4A8, W3A8, W2A8), through the
/// weight's tiles.
pub fn matmul_grouped_a8(x: &[f32], m: usize, w: &GroupedMatrix, y: &mut [f32]) {
    let xq = QuantizedActivations::quantize(x, m, w.cols(), w.layout().group());
    matmul_tiled_a8(&xq, w.tiles(), y)
}

/// [`matmul_f32`] with the kernels of a given tier: weight rows four at a
/// time through the w4 kernel (each activation loaded once per four rows).
pub fn matmul_f32_with(k: &Kernels, x: &[f32], m: usize, w: &DenseMatrix, y: &mut [f32]) {
    let kk = w.cols();
    check(x, m, kk, w.rows(), y);
    let (dot, dot_w4) = (k.dot_f32, k.dot_f32_w4);
    let x = |i: usize| &x[i * kk..(i + 1) * kk];
    four_rows_at_a_time(
        m,
        w.rows(),
        y,
        |i, j, out| dot_w4(x(i), &[w.row(j), w.row(j + 1), w.row(j + 2), w.row(j + 3)], out),
        |i, j| dot(x(i), w.row(j)),
    );
}

/// [`matmul_int8`] with the kernels of a given tier. Fused, weight rows go
/// four at a time through the w4 kernel, so each activation is loaded once
/// per four rows.
pub fn matmul_int8_with(k: &Kernels, x: &[f32], m: usize, w: &Int8Matrix, y: &mut [f32]) {
    let kk = w.cols();
    check(x, m, kk, w.rows(), y);
    let (dot, dot_w4) = (k.dot_int8, k.dot_int8_w4);
    if m >= UNPACK_MIN_ROWS {
        if expanded(k, x, m, PanelWeights::Int8(w), y) {
            return;
        }
        return expanded_rows(x, m, w.rows(), y, |j, row| {
            let s = w.scale(j);
            for (v, &q) in row.iter_mut().zip(w.row_codes(j)) {
                *v = q as f32 * s;
            }
        });
    }
    let x = |i: usize| &x[i * kk..(i + 1) * kk];
    four_rows_at_a_time(
        m,
        w.rows(),
        y,
        |i, j, out| {
            let codes =
                [w.row_codes(j), w.row_codes(j + 1), w.row_codes(j + 2), w.row_codes(j + 3)];
            dot_w4(x(i), &codes, out);
            for (t, o) in out.iter_mut().enumerate() {
                *o *= w.scale(j + t);
            }
        },
        |i, j| dot(x(i), w.row_codes(j)) * w.scale(j),
    );
}

/// [`matmul_f16`] with the kernels of a given tier. From
/// [`UNPACK_MIN_ROWS`] activation rows on, the tier's expanded GEMM (from
/// the matrix's panels); tiers without one expand each weight row to `f32`
/// once, then multiply it into four activation rows at a time by the w4
/// kernel below [`GEMM_MIN_ROWS`] rows, or run expanded blocks of rows
/// through faer from there.
pub fn matmul_f16_with(k: &Kernels, x: &[f32], m: usize, w: &HalfMatrix, y: &mut [f32]) {
    let kk = w.cols();
    check(x, m, kk, w.rows(), y);
    let (dot, dot_f32, dot_w4, unpack) = (k.dot_f16, k.dot_f32, k.dot_f32_w4, k.unpack_f16);
    let x_row = |i: usize| &x[i * kk..(i + 1) * kk];
    if m >= UNPACK_MIN_ROWS && expanded(k, x, m, PanelWeights::Half(w), y) {
        return;
    }
    if m >= GEMM_MIN_ROWS {
        return expanded_rows(x, m, w.rows(), y, |j, row| unpack(w.row(j), row));
    }
    if m >= UNPACK_MIN_ROWS {
        return tiled(m, w.rows(), y, |j, out, row| {
            row.resize(kk, 0.0);
            unpack(w.row(j), row);
            let quads = m / 4;
            for q in 0..quads {
                let xs = [x_row(4 * q), x_row(4 * q + 1), x_row(4 * q + 2), x_row(4 * q + 3)];
                let mut dots = [0.0f32; 4];
                dot_w4(row, &xs, &mut dots);
                out[4 * q..4 * q + 4].copy_from_slice(&dots);
            }
            for (i, o) in out.iter_mut().enumerate().skip(4 * quads) {
                *o = dot_f32(row, x_row(i));
            }
        });
    }
    tiled(m, w.rows(), y, |j, out, _| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(x_row(i), w.row(j));
        }
    });
}

/// [`matmul_grouped`] with the kernels of a given tier: through the
/// weight's tiles, whatever the batch (one stream of codes per panel of 16
/// rows; at batch 1 this beat row kernels reading four rows' codes, scales
/// and offsets as separate streams: 4096×11008 at 1 thread, int4 3.4 against
/// 4.0 ms, int3 3.1 against 4.9, int2 2.5 against 3.3 on the AVX-512 tier,
/// 5.2–5.3 against 6.8–7.5 ms on AVX2), and from [`EXPANDED_MIN_ROWS`]
/// rows on through the tier's expanded GEMM where it has one.
pub fn matmul_grouped_with(k: &Kernels, x: &[f32], m: usize, w: &GroupedMatrix, y: &mut [f32]) {
    matmul_tiles_with(k, x, m, w.tiles(), y)
}

/// `Y = X·Wᵀ` with weights in tiles and `f32` activations, with the kernels
/// of a given tier: the tier's expanded GEMM from [`EXPANDED_MIN_ROWS`]
/// rows, else the tile kernels.
pub fn matmul_tiles_with(k: &Kernels, x: &[f32], m: usize, w: &TiledMatrix, y: &mut [f32]) {
    check(x, m, w.cols(), w.rows(), y);
    if m >= EXPANDED_MIN_ROWS && expanded(k, x, m, PanelWeights::Tiles(w), y) {
        return;
    }
    matmul_tiled_f32_with(k, x, m, w, y)
}

/// `y = SiLU(x·Gᵀ) ⊙ (x·Uᵀ)` (SwiGLU's gate and up products and its
/// gating) with grouped weights of one shape and layout and `f32`
/// activations: from [`UNPACK_MIN_ROWS`] rows, one fused pass over the
/// tiles, until the products go through the tier's expanded GEMM (from
/// [`EXPANDED_MIN_ROWS`]); else the two products (up into `scratch`) and
/// the gating.
pub fn matmul_grouped_glu(
    x: &[f32],
    m: usize,
    gate: &GroupedMatrix,
    up: &GroupedMatrix,
    y: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    matmul_tiles_glu(x, m, gate.tiles(), up.tiles(), y, scratch)
}

/// [`matmul_grouped_glu`] with the gate and up weights in tiles (of one
/// shape and layout).
pub fn matmul_tiles_glu(
    x: &[f32],
    m: usize,
    gate: &TiledMatrix,
    up: &TiledMatrix,
    y: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let k = Kernels::detect();
    let expanded = m >= EXPANDED_MIN_ROWS && k.expanded_gemm.is_some();
    if m >= UNPACK_MIN_ROWS && !expanded {
        return matmul_tiled_f32_glu(x, m, gate, up, y);
    }
    matmul_tiles_with(k, x, m, gate, y);
    scratch.resize(y.len(), 0.0);
    matmul_tiles_with(k, x, m, up, scratch);
    crate::rowwise::silu_mul(y, scratch);
}

/// [`matmul_int8_a8`] with the kernels of a given tier and activations
/// already quantized (in groups of any size): exact integer dot products per
/// activation group, each times its scale.
pub fn matmul_int8_a8_with(k: &Kernels, x: &QuantizedActivations, w: &Int8Matrix, y: &mut [f32]) {
    assert_eq!(x.cols(), w.cols(), "activation and weight widths differ");
    assert_eq!(y.len(), x.rows() * w.rows(), "y must be m × n");
    let dot = k.dot_int8_a8;
    let (kk, group) = (w.cols(), x.group());
    tiled(x.rows(), w.rows(), y, |j, out, _| {
        let q = w.row_codes(j);
        for (i, o) in out.iter_mut().enumerate() {
            let (codes, scales, _) = x.row(i);
            *o = dot(&codes[..kk], q, scales, group) * w.scale(j);
        }
    });
}

/// [`matmul_grouped_a8`] with the kernels of a given tier and activations
/// already quantized in the weight's groups (through the weight's tiles).
pub fn matmul_grouped_a8_with(
    k: &Kernels,
    x: &QuantizedActivations,
    w: &GroupedMatrix,
    y: &mut [f32],
) {
    matmul_tiled_a8_with(k, x, w.tiles(), y)
}

/// From this many activation rows on, grouped weights with `f32`
/// activations go through the tier's expanded GEMM (where it has one);
/// below, the fused tile kernels, which read each code once and need no
/// expanded copy, are faster.
pub const EXPANDED_MIN_ROWS: usize = 32;

/// The product through the tier's expanded GEMM; `false` if the tier has
/// none or it cannot address these weights.
fn expanded(k: &Kernels, x: &[f32], m: usize, w: PanelWeights<'_>, y: &mut [f32]) -> bool {
    k.expanded_gemm.is_some_and(|g| matmul_expanded(g, x, m, w, y))
}

fn check(x: &[f32], m: usize, k: usize, n: usize, y: &[f32]) {
    assert_eq!(x.len(), m * k, "x has {} values, expected m·k = {m}·{k}", x.len());
    assert_eq!(y.len(), m * n, "y has {} values, expected m·n = {m}·{n}", y.len());
}

/// From this many activation rows on, the f32-activation kernels expand a
/// quantized weight row once into an `f32` buffer and reuse it for every
/// activation row; below it, each product unpacks in registers (fused).
pub const UNPACK_MIN_ROWS: usize = 4;

/// The product loop. Tasks own ranges of weight rows, so each weight row is
/// read from memory once whatever `m` is; `row_products(j, out, scratch)`
/// fills `out[i]` with the product of weight row `j` and activation row `i`
/// for every `i` (`scratch` is a per-task buffer it may use).
fn tiled(
    m: usize,
    n: usize,
    y: &mut [f32],
    row_products: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Sync,
) {
    tiled_blocks(m, n, y, 1, |rows, out, scratch| {
        for (t, j) in rows.enumerate() {
            row_products(j, &mut out[t * m..(t + 1) * m], scratch);
        }
    })
}

/// Weight rows expanded to `f32` together by [`expanded_rows`], then
/// multiplied by the whole batch as one small GEMM.
const EXPAND_BLOCK: usize = 64;

/// The products from [`UNPACK_MIN_ROWS`] activation rows on: `expand(j,
/// row)` writes weight row `j` as `f32` into `row` (k values); blocks of
/// [`EXPAND_BLOCK`] rows are expanded once into the task's buffer and
/// multiplied by every activation row with a register-blocked GEMM (faer,
/// on this thread), so a batch costs what the same product with `f32`
/// weights costs, plus one conversion per weight.
fn expanded_rows(
    x: &[f32],
    m: usize,
    n: usize,
    y: &mut [f32],
    expand: impl Fn(usize, &mut [f32]) + Sync,
) {
    let kk = x.len().checked_div(m).unwrap_or(0);
    tiled_blocks(m, n, y, EXPAND_BLOCK, |rows, out, buf| {
        buf.resize(rows.len() * kk, 0.0);
        for (t, j) in rows.clone().enumerate() {
            expand(j, &mut buf[t * kk..(t + 1) * kk]);
        }
        // out is j-major (rows.len() × m): W_block · Xᵀ.
        crate::team::serial(|| gemm_f32(buf, rows.len(), kk, x, m, out));
    });
}

/// [`tiled_blocks`] for the batch-1 kernels that take four weight rows at
/// once: `four(i, j, out)` fills `out[t]` with the product of activation row
/// `i` and weight row `j + t`; `one(i, j)` is a single product, for the rows
/// after the last block of four.
fn four_rows_at_a_time(
    m: usize,
    n: usize,
    y: &mut [f32],
    four: impl Fn(usize, usize, &mut [f32; 4]) + Sync,
    one: impl Fn(usize, usize) -> f32 + Sync,
) {
    tiled_blocks(m, n, y, 4, |rows, out, _| {
        for i in 0..m {
            if rows.len() == 4 {
                let mut dots = [0.0f32; 4];
                four(i, rows.start, &mut dots);
                for (t, d) in dots.into_iter().enumerate() {
                    out[t * m + i] = d;
                }
            } else {
                for (t, j) in rows.clone().enumerate() {
                    out[t * m + i] = one(i, j);
                }
            }
        }
    })
}

/// [`tiled`] handing out `block` weight rows at a time (fewer only at the
/// end): `block_products(rows, out, scratch)` fills `out[t·m + i]` with the
/// product of weight row `rows.start + t` and activation row `i`.
fn tiled_blocks(
    m: usize,
    n: usize,
    y: &mut [f32],
    block: usize,
    block_products: impl Fn(std::ops::Range<usize>, &mut [f32], &mut Vec<f32>) + Sync,
) {
    if n == 0 || m == 0 {
        return;
    }
    let block = block.max(1);
    let threads = team::threads();
    let serial = m * n < PARALLEL_MIN_OUTPUTS || threads == 1;
    let chunk = if serial { n } else { n.div_ceil(8 * threads).next_multiple_of(block) };
    // `out` holds weight rows `first..first + out.len() / m`, j-major.
    let fill = |first: usize, out: &mut [f32]| {
        let end = first + out.len() / m;
        let mut scratch = Vec::new();
        for start in (first..end).step_by(block) {
            let stop = (start + block).min(end);
            let at = (start - first) * m;
            block_products(start..stop, &mut out[at..at + (stop - start) * m], &mut scratch);
        }
    };
    let run = |j_major: &mut [f32]| {
        if serial {
            fill(0, j_major)
        } else {
            team::for_each_item_mut(j_major, chunk * m, |c, item| fill(c * chunk, item))
        }
    };
    if m == 1 {
        // One activation row: y is already j-major (no copy, no allocation).
        return run(y);
    }
    let mut j_major = vec![0.0f32; n * m];
    run(&mut j_major);
    for (j, products) in j_major.chunks_exact(m).enumerate() {
        for (i, &v) in products.iter().enumerate() {
            y[i * n + j] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::QuantizedActivations;
    use crate::generic::*;
    use proptest::prelude::*;
    use qloader_format::grouped::{GroupedLayout, BITS, GROUPS};

    use crate::test_support::{assert_close, available, grouped_magnitude, matrix};

    fn check_all_formats(x: &[f32], m: usize, w: &DenseMatrix) {
        let n = w.rows();
        let mut y = vec![0.0; m * n];
        let q8 = Int8Matrix::quantize(w);
        let h = HalfMatrix::quantize(w);
        let grouped: Vec<GroupedMatrix> = BITS
            .iter()
            .flat_map(|&b| {
                GROUPS.map(|g| GroupedMatrix::quantize(w, GroupedLayout::new(b, g).unwrap()))
            })
            .collect();
        for k in available() {
            let isa = k.isa;
            matmul_f32_with(k, x, m, w, &mut y);
            assert_close(&format!("{isa} f32"), &y, &matmul_f32_reference(x, m, w), x, m, w);
            matmul_f16_with(k, x, m, &h, &mut y);
            assert_close(
                &format!("{isa} f16"),
                &y,
                &matmul_f16_reference(x, m, &h),
                x,
                m,
                &h.dequantize(),
            );
            matmul_int8_with(k, x, m, &q8, &mut y);
            assert_close(
                &format!("{isa} int8"),
                &y,
                &matmul_int8_reference(x, m, &q8),
                x,
                m,
                &q8.dequantize(),
            );
            for g in &grouped {
                matmul_grouped_with(k, x, m, g, &mut y);
                let what = format!("{isa} {:?}", g.layout());
                assert_close(
                    &what,
                    &y,
                    &matmul_grouped_reference(x, m, g),
                    x,
                    m,
                    &grouped_magnitude(g),
                );
            }
            // Int8 activations: the kernels see exactly the de-quantized codes.
            let xq = QuantizedActivations::quantize(x, m, w.cols(), INT8_ACTIVATION_GROUP);
            let xs = dequantize_activations(&xq);
            matmul_int8_a8_with(k, &xq, &q8, &mut y);
            let what = format!("{isa} int8·a8");
            assert_close(&what, &y, &matmul_int8_a8_reference(&xq, &q8), &xs, m, &q8.dequantize());
            for g in &grouped {
                let xq = QuantizedActivations::quantize(x, m, w.cols(), g.layout().group());
                let xs = dequantize_activations(&xq);
                matmul_grouped_a8_with(k, &xq, g, &mut y);
                let what = format!("{isa} {:?}·a8", g.layout());
                let want = matmul_grouped_a8_reference(&xq, g);
                assert_close(&what, &y, &want, &xs, m, &grouped_magnitude(g));
            }
        }
    }

    #[test]
    fn int8_a8_group_sums_are_exact() {
        // Extreme codes: ±127 everywhere, groups wide and narrow, ragged
        // against the vector widths; with power-of-two scales every group's
        // integer sum must come through exactly on every tier.
        let a: Vec<i8> = (0..1000).map(|i| if i % 3 == 0 { -127 } else { 127 }).collect();
        let q: Vec<i8> = (0..1000).map(|i| if i % 5 == 0 { 127 } else { -127 }).collect();
        for group in [1000, 128, 64, 50, 32, 7] {
            let scales: Vec<f32> =
                (0..1000usize.div_ceil(group)).map(|g| [1.0, 0.5, 2.0][g % 3]).collect();
            let want = crate::generic::dot_int8_a8(&a, &q, &scales, group);
            let exact: f64 = a
                .chunks(group)
                .zip(q.chunks(group))
                .zip(&scales)
                .map(|((a, q), &s)| {
                    s as f64 * a.iter().zip(q).map(|(&x, &w)| x as f64 * w as f64).sum::<f64>()
                })
                .sum();
            assert_eq!(want as f64, exact, "reference, groups of {group}");
            for k in available() {
                assert_eq!(
                    (k.dot_int8_a8)(&a, &q, &scales, group),
                    want,
                    "{} groups of {group}",
                    k.isa
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Every tier and format equals the scalar reference on ragged shapes
        /// (columns not a multiple of the block, group or vector width), on
        /// both the fused (m < 4) and the unpack-once (m ≥ 4) paths.
        #[test]
        fn kernels_match_reference(
            m in 1usize..7, n in 1usize..9, k in 1usize..300,
            seed in proptest::collection::vec(-2.0f32..2.0, 64)
        ) {
            let x: Vec<f32> = (0..m * k).map(|i| seed[(i * 11) % seed.len()]).collect();
            check_all_formats(&x, m, &matrix(n, k, &seed));
        }
    }

    #[test]
    fn fixed_edge_shapes() {
        let seed: Vec<f32> = (0..97).map(|i| ((i * 37) % 97) as f32 / 48.0 - 1.0).collect();
        for (m, n, k) in [
            (1, 1, 1),
            (1, 3, 31),
            (2, 2, 32),
            (1, 2, 33),
            (3, 4, 128),
            (1, 2, 129),
            (2, 1, 1000),
            (4, 3, 77),
            (8, 2, 257),
            // Whole chunks of eight 128-groups plus a tail, through the x4 kernel.
            (5, 2, 2100),
            // The expanded GEMM: several column chunks, a ragged last panel
            // and a last register tile of one row.
            (EXPANDED_MIN_ROWS + 1, 40, 1400),
            (GEMM_MIN_ROWS, 33, 90),
        ] {
            let x: Vec<f32> = (0..m * k).map(|i| seed[(i * 5) % 97]).collect();
            check_all_formats(&x, m, &matrix(n, k, &seed));
        }
    }

    #[test]
    fn parallel_paths_match_reference() {
        // Large enough to cross PARALLEL_THRESHOLD, both for m = 1 and m > 1.
        let seed: Vec<f32> = (0..97).map(|i| ((i * 37) % 97) as f32 / 48.0 - 1.0).collect();
        let w = matrix(300, 260, &seed);
        let q = GroupedMatrix::quantize(&w, GroupedLayout::new(3, 64).unwrap());
        let q8 = Int8Matrix::quantize(&w);
        for m in [1, 3, 6] {
            let x: Vec<f32> = (0..m * 260).map(|i| seed[(i * 5) % 97]).collect();
            let mut y = vec![0.0; m * 300];
            for k in available() {
                // f32 and int8 go through blocks of four weight rows.
                matmul_f32_with(k, &x, m, &w, &mut y);
                assert_close("parallel f32", &y, &matmul_f32_reference(&x, m, &w), &x, m, &w);
                matmul_int8_with(k, &x, m, &q8, &mut y);
                let want = matmul_int8_reference(&x, m, &q8);
                assert_close("parallel int8", &y, &want, &x, m, &q8.dequantize());
                matmul_grouped_with(k, &x, m, &q, &mut y);
                assert_close(
                    "parallel",
                    &y,
                    &matmul_grouped_reference(&x, m, &q),
                    &x,
                    m,
                    &grouped_magnitude(&q),
                );
            }
        }
    }

    #[test]
    fn quantized_products_approximate_f32() {
        // Tolerances of the quantized product against the exact f32 one,
        // relative to ‖x‖·‖w_j‖ (Cauchy–Schwarz scale of the error):
        // f16 ≤ 0.1 %, int8 per channel ≤ 1 %, int4 g32 ≤ 10 %.
        let seed: Vec<f32> = (0..101).map(|i| ((i * 53) % 101) as f32 / 50.0 - 1.0).collect();
        let (m, n, k) = (4, 64, 384);
        let w = matrix(n, k, &seed);
        let x: Vec<f32> = (0..m * k).map(|i| seed[(i * 13) % 101]).collect();
        let exact = matmul_f32_reference(&x, m, &w);
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
        let int4 = GroupedLayout::new(4, 32).unwrap();
        for (name, y, bound) in [
            ("f16", matmul_f16_reference(&x, m, &HalfMatrix::quantize(&w)), 0.001),
            ("int8", matmul_int8_reference(&x, m, &Int8Matrix::quantize(&w)), 0.01),
            ("int4", matmul_grouped_reference(&x, m, &GroupedMatrix::quantize(&w, int4)), 0.10),
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
