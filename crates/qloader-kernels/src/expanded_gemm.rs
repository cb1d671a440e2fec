//! Batched products of quantized or `f16` weights with `f32` activations as
//! a blocked GEMM of our own: the weights take the place of the packed
//! operand of a BLIS-style GEMM, expanded to `f32` in cache-sized chunks of
//! a weight panel (`nr` weight rows × at most [`KC`] columns, column-major), and the
//! activations are packed once per product into register-tile-high strips.
//! A tier supplies the expansion (from tiles, `f16` panels or int8 rows) and
//! the register-tile kernel; this module owns the schedule: packing the
//! activations, the loops over panels, column chunks and tiles, the split
//! over the thread team, and writing the results.
//!
//! Against a library GEMM on a de-quantized copy this never holds more than
//! one chunk of `f32` weights per thread, and the activations are packed
//! once rather than once per block of weight rows.

use std::cell::Cell;
use std::ops::Range;

use qloader_format::grouped::BLOCK;

use crate::quantize::{HalfMatrix, Int8Matrix};
use crate::team;
use crate::tiles::TiledMatrix;

/// Weight columns per expanded chunk at most: a chunk of a 32-row panel is
/// then at most 80 KiB and a strip of 12 activation rows 30 KiB, both held
/// in L1/L2 while the strips pass over the chunk. Wide enough that 576-wide
/// products (SmolLM2's) need one chunk, so their outputs are written once
/// rather than added to: 640 against 256 or 512 took batch-512 products
/// from 0.98–1.18× to 1.03–1.22× the speed of `f32` weights (2-core Xeon).
pub const KC: usize = 640;

/// Columns per chunk for a `k`-wide product: `k` in equal chunks of whole
/// 32-column blocks, none wider than [`KC`].
fn column_chunk(k: usize) -> usize {
    let chunks = k.div_ceil(KC);
    k.div_ceil(chunks).next_multiple_of(BLOCK).min(KC)
}

/// Panels per task at most, so that large products spread evenly over the
/// team and a task's outputs stay in L2.
const PANELS_TOGETHER: usize = 32;

/// The weights an expanded product reads.
#[derive(Debug, Clone, Copy)]
pub enum PanelWeights<'a> {
    /// `f16` rows.
    Half(&'a HalfMatrix),
    /// int8 rows with one scale each.
    Int8(&'a Int8Matrix),
    /// Grouped weights in tiles.
    Tiles(&'a TiledMatrix),
}

impl PanelWeights<'_> {
    /// Weight rows (`n`).
    pub fn rows(&self) -> usize {
        match self {
            PanelWeights::Half(w) => w.rows(),
            PanelWeights::Int8(w) => w.rows(),
            PanelWeights::Tiles(w) => w.rows(),
        }
    }

    /// Weight columns (`k`).
    pub fn cols(&self) -> usize {
        match self {
            PanelWeights::Half(w) => w.cols(),
            PanelWeights::Int8(w) => w.cols(),
            PanelWeights::Tiles(w) => w.cols(),
        }
    }
}

/// `micro(xp, h, w, kc, out)`: the `h × nr` register tile `Σ_c xp[c·h + r]
/// · w[c·nr + l]` over `kc` columns, stored (or added) to `out`. `h` is a
/// multiple of 4, at most `mr`.
///
/// # Safety
/// `xp` holds `kc·h` values, `w` (64-byte aligned) `kc·nr`; `out` is valid
/// for reads and writes at every `r·ldy + l` for `r < rows ≤ h`, `l < lanes
/// ≤ nr`, and no other thread touches those values meanwhile.
pub type MicroKernel = unsafe fn(&[f32], usize, &[f32], usize, TileOut);

/// Where a register tile goes: `rows × lanes` values at `y[r·ldy + l]`,
/// stored, or added to what is there with `accumulate`.
#[derive(Debug, Clone, Copy)]
pub struct TileOut {
    /// The tile's first value.
    pub y: *mut f32,
    /// Values from one row of the tile to the next.
    pub ldy: usize,
    /// Rows written (the tile's others are padding).
    pub rows: usize,
    /// Values written per row.
    pub lanes: usize,
    /// Add to the values there instead of replacing them.
    pub accumulate: bool,
}

/// A tier's part of the expanded GEMM.
#[derive(Debug, Clone, Copy)]
pub struct ExpandedGemm {
    /// Weight rows per panel (the register tile's width).
    pub nr: usize,
    /// Activation rows per full register tile; the last tile of a product
    /// is rounded up to a multiple of 4.
    pub mr: usize,
    /// Whether `expand` can address these weights.
    pub handles: fn(PanelWeights<'_>) -> bool,
    /// `expand(w, first, cols, buf)`: weight rows `first..first + nr`,
    /// columns `cols`, as `f32` into `buf[(c − cols.start)·nr + l]`; rows
    /// past the matrix's last are zero. `cols.start` is a multiple of 32
    /// and `buf` holds `cols.len()` rounded up to 32 columns (the expansion
    /// may write whole 32-column blocks). Only for weights it `handles`.
    pub expand: fn(PanelWeights<'_>, usize, Range<usize>, &mut [f32]),
    /// The register-tile kernel.
    pub micro: MicroKernel,
}

/// A 64-byte aligned line of sixteen `f32`.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

thread_local! {
    /// Each thread's packed activations, kept between products: a fresh
    /// allocation of megabytes per product costs page faults that hold
    /// back a second thread more than the packing itself.
    static PACKED_SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// Each thread's expanded weight chunks, kept likewise.
    static PANEL_SCRATCH: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's aligned scratch of at least `len` values
/// (contents unspecified).
fn with_panel_scratch<R>(len: usize, f: impl FnOnce(&mut [Line]) -> R) -> R {
    let mut lines = PANEL_SCRATCH.take();
    if lines.len() < len.div_ceil(16) {
        lines.resize(len.div_ceil(16), Line([0.0; 16]));
    }
    let result = f(&mut lines[..len.div_ceil(16)]);
    PANEL_SCRATCH.set(lines);
    result
}

fn as_floats(lines: &[Line]) -> &[f32] {
    // SAFETY: `Line` is `repr(C)` around `[f32; 16]` with no padding (64
    // bytes of floats, 64-byte aligned), so the lines are contiguous floats.
    unsafe { std::slice::from_raw_parts(lines.as_ptr() as *const f32, lines.len() * 16) }
}

fn as_floats_mut(lines: &mut [Line]) -> &mut [f32] {
    // SAFETY: as in `as_floats`; the borrow is exclusive.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr() as *mut f32, lines.len() * 16) }
}

/// The activation rows in register-tile strips: tile `t` covers rows
/// `first..first + height` (zero past `m`), stored column by column.
struct PackedRows {
    values: Vec<f32>,
    /// `(first row, height, offset of the strip in values)` per tile.
    tiles: Vec<(usize, usize, usize)>,
}

impl PackedRows {
    fn new(x: &[f32], m: usize, k: usize, mr: usize) -> Self {
        let mut tiles = Vec::with_capacity(m.div_ceil(mr));
        let mut at = 0;
        for first in (0..m).step_by(mr) {
            let height = (m - first).min(mr).next_multiple_of(4);
            tiles.push((first, height, at));
            at += height * k;
        }
        // Strips are filled in parallel (every full strip is `mr·k` values,
        // the last shorter), each column by column so that the writes run
        // front to back while the reads walk the strip's rows side by side.
        // Every value is written (padding rows as zero), so the scratch's
        // old contents never show.
        let mut values = PACKED_SCRATCH.take();
        values.resize(at, 0.0);
        team::for_each_item_mut(&mut values, mr * k, |t, strip| {
            let first = t * mr;
            let height = strip.len() / k;
            let rows = height.min(m - first);
            pack_strip(&x[first * k..(first + rows) * k], rows, k, height, strip);
        });
        Self { values, tiles }
    }
}

/// Writes `rows` rows of `x` (`rows × k`) column by column into `strip`
/// (`strip[c·height + r]`, rows past `rows` zero): four rows at a time as
/// 4 × 4 transposes, the rest value by value.
fn pack_strip(x: &[f32], rows: usize, k: usize, height: usize, strip: &mut [f32]) {
    assert!(x.len() == rows * k && rows <= height && strip.len() == height * k);
    let quads = if cfg!(target_arch = "x86_64") { rows / 4 } else { 0 };
    let wide = k / 4 * 4;
    #[cfg(target_arch = "x86_64")]
    for q in 0..quads {
        use std::arch::x86_64::*;
        let r = 4 * q;
        for c in (0..wide).step_by(4) {
            // SAFETY: rows r..r + 4 < rows and columns c..c + 4 ≤ k lie in
            // `x`; column c + j's rows r..r + 4 lie in `strip` (c + j < k,
            // r + 4 ≤ height). SSE is part of x86-64.
            unsafe {
                let at = |i: usize| _mm_loadu_ps(x.as_ptr().add((r + i) * k + c));
                let (a, b, e, f) = (at(0), at(1), at(2), at(3));
                let (ab_lo, ab_hi) = (_mm_unpacklo_ps(a, b), _mm_unpackhi_ps(a, b));
                let (ef_lo, ef_hi) = (_mm_unpacklo_ps(e, f), _mm_unpackhi_ps(e, f));
                let columns = [
                    _mm_movelh_ps(ab_lo, ef_lo),
                    _mm_movehl_ps(ef_lo, ab_lo),
                    _mm_movelh_ps(ab_hi, ef_hi),
                    _mm_movehl_ps(ef_hi, ab_hi),
                ];
                for (j, v) in columns.into_iter().enumerate() {
                    _mm_storeu_ps(strip.as_mut_ptr().add((c + j) * height + r), v);
                }
            }
        }
    }
    for (c, column) in strip.chunks_exact_mut(height).enumerate() {
        let done = if c < wide { 4 * quads } else { 0 };
        let (live, padding) = column.split_at_mut(rows);
        for (r, v) in live.iter_mut().enumerate().skip(done) {
            *v = x[r * k + c];
        }
        padding.fill(0.0);
    }
}

/// `Y = X·Wᵀ` (`x` is `m × k`, `y` is `m × n`) through the tier's expanded
/// GEMM. Returns `false`, with `y` untouched, if the tier cannot address
/// these weights (then the caller takes another path).
///
/// # Panics
/// If a slice's length does not match its shape.
pub fn matmul_expanded(
    g: &ExpandedGemm,
    x: &[f32],
    m: usize,
    w: PanelWeights<'_>,
    y: &mut [f32],
) -> bool {
    let (n, k) = (w.rows(), w.cols());
    assert_eq!(x.len(), m * k, "x is not {m} × {k}");
    assert_eq!(y.len(), m * n, "y is not {m} × {n}");
    if m == 0 || n == 0 {
        return true;
    }
    if k == 0 {
        y.fill(0.0);
        return true;
    }
    if !(g.handles)(w) {
        return false;
    }
    let nr = g.nr;
    let kc = column_chunk(k);
    let xp = PackedRows::new(x, m, k, g.mr);
    let panels = n.div_ceil(nr);
    // Chunks of at most PANELS_TOGETHER panels, as many per thread.
    let threads = team::threads();
    let chunks = threads * panels.div_ceil(threads * PANELS_TOGETHER);
    let grain = panels.div_ceil(chunks);
    let out = team::SendPtr(y.as_mut_ptr());
    // One task's panels, column chunk by column chunk, and within a column
    // chunk panel by panel: the panel's chunk expanded, then every
    // activation strip over it (the strips of one column chunk stay in L2).
    let chunk_products = |chunk: Range<usize>, panel_w: &mut [Line]| {
        for c0 in (0..k).step_by(kc) {
            let cols = c0..(c0 + kc).min(k);
            for p in chunk.clone() {
                (g.expand)(w, p * nr, cols.clone(), as_floats_mut(panel_w));
                let buf = as_floats(panel_w);
                let lanes = nr.min(n - p * nr);
                for &(first, height, at) in &xp.tiles {
                    let strip = &xp.values[at + c0 * height..at + cols.end * height];
                    let rows = height.min(m - first);
                    // SAFETY: strip and buffer hold what the kernel reads
                    // (`cols.len()` columns); rows `first..first + rows` and
                    // columns `p·nr..p·nr + lanes` lie inside `y` (`m × n`,
                    // borrowed mutably for this call), and panel `p` is
                    // handed to this task alone, so no other thread writes
                    // these columns.
                    unsafe {
                        let y = out.get().add(first * n + p * nr);
                        let tile = TileOut { y, ldy: n, rows, lanes, accumulate: c0 > 0 };
                        (g.micro)(strip, height, buf, cols.len(), tile);
                    }
                }
            }
        }
    };
    team::for_each_chunk(panels, grain, |chunk| {
        with_panel_scratch(kc * nr, |panel_w| chunk_products(chunk, panel_w));
    });
    PACKED_SCRATCH.set(xp.values);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::matmul_grouped_reference;
    use crate::quantize::{BlockMatrix, CompactMatrix, DenseMatrix, GroupedMatrix};
    use crate::test_support::{assert_close, available, matrix};
    use proptest::prelude::*;
    use qloader_format::block32::BlockLayout;
    use qloader_format::compact::CompactLayout;
    use qloader_format::grouped::{GroupedLayout, BITS, GROUPS};

    fn reference(x: &[f32], m: usize, w: &DenseMatrix) -> Vec<f32> {
        let (n, k) = (w.rows(), w.cols());
        let mut y = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] =
                    (0..k).map(|c| x[i * k + c] as f64 * w.row(j)[c] as f64).sum::<f64>() as f32;
            }
        }
        y
    }

    fn check(m: usize, n: usize, k: usize, seed: &[f32]) {
        let w = matrix(n, k, seed);
        let x: Vec<f32> = (0..m * k)
            .map(|i| seed[(i * 11) % seed.len()] * (1.0 + (i / k) as f32 * 0.37))
            .collect();
        let half = HalfMatrix::quantize(&w);
        let int8 = Int8Matrix::quantize(&w);
        let mut cases: Vec<(String, PanelWeights<'_>, DenseMatrix, Vec<f32>)> = vec![
            ("f16".into(), PanelWeights::Half(&half), half.dequantize(), Vec::new()),
            ("int8".into(), PanelWeights::Int8(&int8), int8.dequantize(), Vec::new()),
        ];
        let grouped: Vec<GroupedMatrix> = BITS
            .iter()
            .flat_map(|&b| GROUPS.iter().map(move |&g| (b, g)))
            .map(|(b, g)| GroupedMatrix::quantize(&w, GroupedLayout::new(b, g).unwrap()))
            .collect();
        for g in &grouped {
            let want = matmul_grouped_reference(x.as_slice(), m, g);
            let name = format!("int{}g{}", g.layout().bits(), g.layout().group());
            cases.push((name, PanelWeights::Tiles(g.tiles()), g.dequantize(), want));
        }
        // Tiles with scale-only headers, 5-bit codes and tables of levels.
        let blocks: Vec<BlockMatrix> =
            BlockLayout::ALL.iter().map(|&l| BlockMatrix::quantize(&w, l, None)).collect();
        let compact: Vec<CompactMatrix> = CompactLayout::all()
            .into_iter()
            .map(|l| CompactMatrix::quantize(&w, l, None))
            .collect();
        let tiles = blocks
            .iter()
            .map(|b| (b.layout().name().to_string(), b.tiles()))
            .chain(compact.iter().map(|c| (c.layout().name(), c.tiles())));
        for (name, t) in tiles {
            cases.push((name, PanelWeights::Tiles(t), t.dequantize(), Vec::new()));
        }
        for (name, weights, dq, want) in &mut cases {
            if want.is_empty() {
                *want = reference(&x, m, dq);
            }
            for kern in available() {
                let Some(gemm) = kern.expanded_gemm else { continue };
                let mut y = vec![f32::NAN; m * n];
                assert!(matmul_expanded(gemm, &x, m, *weights, &mut y));
                let what = format!("{} {name} {m}×{n}×{k}", kern.isa);
                assert_close(&what, &y, want, &x, m, dq);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// Every tier with an expanded GEMM equals the reference on ragged
        /// shapes: rows not a multiple of the panel, columns across chunk,
        /// group and block edges, activation rows not a multiple of the tile.
        #[test]
        fn expanded_products_match_reference(
            m in 1usize..30, n in 1usize..70, k in 1usize..600,
            seed in proptest::collection::vec(-2.0f32..2.0, 64)
        ) {
            check(m, n, k, &seed);
        }
    }

    #[test]
    fn fixed_edge_shapes() {
        let seed: Vec<f32> = (0..97).map(|i| ((i * 37) % 97) as f32 / 48.0 - 1.0).collect();
        for (m, n, k) in [(1, 1, 1), (4, 32, 256), (12, 33, 257), (13, 64, 512), (40, 17, 777)] {
            check(m, n, k, &seed);
        }
    }

    #[test]
    fn parallel_products_write_every_output_once() {
        let seed: Vec<f32> = (0..61).map(|i| ((i * 17) % 61) as f32 / 30.0 - 1.0).collect();
        let w = matrix(500, 300, &seed);
        let half = HalfMatrix::quantize(&w);
        let x: Vec<f32> = (0..20 * 300).map(|i| seed[(i * 5) % 61]).collect();
        let want = reference(&x, 20, &half.dequantize());
        for kern in available() {
            let Some(gemm) = kern.expanded_gemm else { continue };
            for threads in [1, 2, 3] {
                team::with_threads(threads, || {
                    let mut y = vec![f32::NAN; 20 * 500];
                    assert!(matmul_expanded(gemm, &x, 20, PanelWeights::Half(&half), &mut y));
                    assert_close("parallel", &y, &want, &x, 20, &half.dequantize());
                });
            }
        }
    }
}
