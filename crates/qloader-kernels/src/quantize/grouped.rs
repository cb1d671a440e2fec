//! Grouped integer formats (int8/int4/int3/int2 in groups of 32, 64 or 128
//! along the input dimension), asymmetric: `w ≈ scale · q + offset`, `q ∈
//! 0..=2^bits − 1`, `scale` and `offset` stored as `f16`. Each group's grid is
//! searched to minimise squared error (optionally weighted per input column);
//! codes are always computed against the *rounded* `f16` values, so the grid
//! that is stored is the grid that was scored. Bit layout:
//! [`qloader_format::grouped`].

use half::f16;
use qloader_format::grouped::{pack_block, unpack_block, GroupedLayout, BLOCK};

use rayon::prelude::*;

use super::DenseMatrix;
use crate::storage::Storage;
use crate::tiles::TiledMatrix;
use std::sync::OnceLock;

/// The largest group size of any layout.
const MAX_GROUP: usize = 128;

/// A `rows × cols` matrix in a grouped format.
#[derive(Debug, Clone)]
pub struct GroupedMatrix {
    rows: usize,
    cols: usize,
    layout: GroupedLayout,
    codes: Storage<u8>,
    scales: Storage<f16>,
    offsets: Storage<f16>,
    /// The same values in tiles, made at the first product that uses them.
    tiles: OnceLock<TiledMatrix>,
}

impl PartialEq for GroupedMatrix {
    /// Equal shape, layout, codes, scales and offsets (the tiles are a
    /// derived copy).
    fn eq(&self, other: &Self) -> bool {
        (self.rows, self.cols, self.layout) == (other.rows, other.cols, other.layout)
            && self.codes == other.codes
            && self.scales == other.scales
            && self.offsets == other.offsets
    }
}

/// One row of a [`GroupedMatrix`], as the row kernels see it.
#[derive(Debug, Clone, Copy)]
pub struct GroupedRow<'a> {
    /// Bit width and group size.
    pub layout: GroupedLayout,
    /// Packed codes, `layout.row_code_bytes(cols)` bytes.
    pub codes: &'a [u8],
    /// One scale per group.
    pub scales: &'a [f16],
    /// One offset per group.
    pub offsets: &'a [f16],
}

impl GroupedMatrix {
    /// Quantizes `w` group by group, each group's grid chosen to minimise its
    /// squared error.
    pub fn quantize(w: &DenseMatrix, layout: GroupedLayout) -> Self {
        Self::quantize_weighted(w, layout, None)
    }

    /// Like [`GroupedMatrix::quantize`], but the squared error of column `c`
    /// is weighted by `importance[c]` (e.g. the mean square of input feature
    /// `c`), so the grid favours the inputs that move the output most.
    ///
    /// # Panics
    /// If `importance` is given and its length is not `w.cols()`.
    pub fn quantize_weighted(
        w: &DenseMatrix,
        layout: GroupedLayout,
        importance: Option<&[f32]>,
    ) -> Self {
        let (rows, cols) = (w.rows(), w.cols());
        let uniform;
        let importance = match importance {
            Some(imp) => {
                assert_eq!(imp.len(), cols, "one importance per input column");
                imp
            }
            None => {
                uniform = vec![1.0f32; cols];
                &uniform
            }
        };
        // Rows are independent: quantize them in parallel, then concatenate.
        let quantize_row = row_quantizer(crate::Kernels::detect().isa);
        let per_row: Vec<QuantizedRow> =
            (0..rows).into_par_iter().map(|r| quantize_row(w.row(r), importance, layout)).collect();
        let groups = layout.groups_per_row(cols);
        let mut codes = Vec::with_capacity(rows * layout.row_code_bytes(cols));
        let mut scales = Vec::with_capacity(rows * groups);
        let mut offsets = Vec::with_capacity(rows * groups);
        for (c, s, o) in per_row {
            codes.extend_from_slice(&c);
            scales.extend_from_slice(&s);
            offsets.extend_from_slice(&o);
        }
        Self {
            rows,
            cols,
            layout,
            codes: codes.into(),
            scales: scales.into(),
            offsets: offsets.into(),
            tiles: OnceLock::new(),
        }
    }

    /// Builds a matrix from raw parts; `None` if any length disagrees with
    /// the shape and layout.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        layout: GroupedLayout,
        codes: impl Into<Storage<u8>>,
        scales: impl Into<Storage<f16>>,
        offsets: impl Into<Storage<f16>>,
    ) -> Option<Self> {
        let (codes, scales, offsets) = (codes.into(), scales.into(), offsets.into());
        let groups = rows.checked_mul(layout.groups_per_row(cols))?;
        let ok = rows.checked_mul(layout.row_code_bytes(cols)) == Some(codes.len())
            && scales.len() == groups
            && offsets.len() == groups;
        ok.then_some(Self { rows, cols, layout, codes, scales, offsets, tiles: OnceLock::new() })
    }

    /// Builds a matrix from unpacked codes (`rows × cols`, row-major, each at
    /// most `layout.max_code()`) and one scale and offset per group, row by
    /// row: how a quantizer that picks codes itself (e.g. GPTQ) stores its
    /// result. `None` if a length disagrees with the shape and layout or a
    /// code is out of range.
    pub fn from_codes(
        rows: usize,
        cols: usize,
        layout: GroupedLayout,
        codes: &[u8],
        scales: Vec<f16>,
        offsets: Vec<f16>,
    ) -> Option<Self> {
        if rows.checked_mul(cols) != Some(codes.len())
            || codes.iter().any(|&q| q > layout.max_code())
        {
            return None;
        }
        let bytes = layout.row_code_bytes(cols);
        let mut packed = vec![0u8; rows * bytes];
        let mut block = [0u8; BLOCK];
        for (row, out) in codes.chunks(cols.max(1)).zip(packed.chunks_exact_mut(bytes.max(1))) {
            for (chunk, out) in row.chunks(BLOCK).zip(out.chunks_exact_mut(layout.block_bytes())) {
                block.fill(0);
                block[..chunk.len()].copy_from_slice(chunk);
                pack_block(layout.bits(), &block, out);
            }
        }
        Self::from_parts(rows, cols, layout, packed, scales, offsets)
    }

    /// The matrix in tiles, for the batched and integer products: made on
    /// the first call (a pass over the codes), kept for the matrix's life.
    pub fn tiles(&self) -> &TiledMatrix {
        self.tiles.get_or_init(|| TiledMatrix::from_grouped(self))
    }

    /// Whether the arrays are views of shared bytes (a memory-mapped model)
    /// rather than owned copies.
    pub fn is_mapped(&self) -> bool {
        self.codes.is_shared()
    }

    /// Number of rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bit width and group size.
    pub fn layout(&self) -> GroupedLayout {
        self.layout
    }

    /// The packed code blocks of every row, row after row.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// Every group's scale, row-major.
    pub fn scales(&self) -> &[f16] {
        &self.scales
    }

    /// Every group's offset, row-major.
    pub fn offsets(&self) -> &[f16] {
        &self.offsets
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> GroupedRow<'_> {
        let bytes = self.layout.row_code_bytes(self.cols);
        let groups = self.layout.groups_per_row(self.cols);
        GroupedRow {
            layout: self.layout,
            codes: &self.codes[r * bytes..(r + 1) * bytes],
            scales: &self.scales[r * groups..(r + 1) * groups],
            offsets: &self.offsets[r * groups..(r + 1) * groups],
        }
    }

    /// The codes of row `r`, unpacked (`cols` values).
    pub fn row_codes(&self, r: usize) -> Vec<u8> {
        let row = self.row(r);
        let mut out: Vec<u8> = row
            .codes
            .chunks_exact(self.layout.block_bytes())
            .flat_map(|b| unpack_block(self.layout.bits(), b))
            .collect();
        out.truncate(self.cols);
        out
    }

    /// Back to `f32`.
    pub fn dequantize(&self) -> DenseMatrix {
        let mut data = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            let row = self.row(r);
            for (c, q) in self.row_codes(r).into_iter().enumerate() {
                let g = c / self.layout.group();
                data.push(row.scales[g].to_f32() * q as f32 + row.offsets[g].to_f32());
            }
        }
        DenseMatrix::new(self.rows, self.cols, data).expect("shape is preserved")
    }

    /// Bytes of storage: codes, scales and offsets.
    pub fn storage_bytes(&self) -> usize {
        self.codes.len() + (self.scales.len() + self.offsets.len()) * 2
    }
}

/// One quantized row: packed codes, scales and offsets.
type QuantizedRow = (Vec<u8>, Vec<f16>, Vec<f16>);

/// The row quantizer compiled for `isa` (the same code, built with that
/// tier's instructions: the grid search is most of the cost of quantizing,
/// and wider vectors roughly halve it). Results are identical across tiers:
/// the arithmetic and its order are the same, and no multiply-add is fused.
fn row_quantizer(isa: crate::Isa) -> fn(&[f32], &[f32], GroupedLayout) -> QuantizedRow {
    match isa {
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx2 if isa.is_available() => |row, importance, layout| {
            // SAFETY: the tier is available on this CPU (checked above).
            unsafe { quantize_row_avx2(row, importance, layout) }
        },
        _ => quantize_row,
    }
}

/// [`quantize_row`] built with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_row_avx2(
    row: &[f32],
    importance: &[f32],
    layout: GroupedLayout,
) -> QuantizedRow {
    quantize_row(row, importance, layout)
}

/// Quantizes one row: packed codes, scales and offsets.
#[inline(always)]
fn quantize_row(row: &[f32], importance: &[f32], layout: GroupedLayout) -> QuantizedRow {
    let groups = layout.groups_per_row(row.len());
    let mut scales = Vec::with_capacity(groups);
    let mut offsets = Vec::with_capacity(groups);
    let mut codes = vec![0u8; layout.blocks_per_row(row.len()) * BLOCK];
    for (g, (group, imp)) in
        row.chunks(layout.group()).zip(importance.chunks(layout.group())).enumerate()
    {
        let start = g * layout.group();
        let out = &mut codes[start..start + group.len()];
        let (scale, offset) = quantize_group(group, imp, layout.max_code(), out);
        scales.push(scale);
        offsets.push(offset);
    }
    let mut packed = vec![0u8; layout.row_code_bytes(row.len())];
    for (block, out) in codes.chunks_exact(BLOCK).zip(packed.chunks_exact_mut(layout.block_bytes()))
    {
        pack_block(layout.bits(), block.try_into().expect("32 codes"), out);
    }
    (packed, scales, offsets)
}

/// Candidate grids tried per group: the code range is stretched from
/// `max_code − 1` to `max_code + 1` steps in 10 increments, i.e. the clipping
/// range from slightly wider to slightly narrower than the group's min..max.
/// (20 increments lower the error of real weights by under 0.3% on average,
/// at twice the cost.)
const SEARCH_STEPS: i32 = 10;
/// Alternating re-quantize / least-squares refits after the grid search.
const REFINE_ITERATIONS: usize = 2;

/// Quantizes one group into `codes`, returning `(scale, offset)` chosen to
/// minimise the weighted
/// squared error `Σ wᵢ (xᵢ − (scale·qᵢ + offset))²` of the *stored* (f16)
/// grid: a grid search over the clipping range with a least-squares refit of
/// scale and offset for each candidate's codes (the approach of llama.cpp's
/// k-quant `make_qkx2_quants`), then a few alternating refinements.
#[inline(always)]
fn quantize_group(x: &[f32], importance: &[f32], max_code: u8, codes: &mut [u8]) -> (f16, f16) {
    debug_assert_eq!(x.len(), importance.len());
    let (lo, hi) =
        x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    debug_assert_eq!(codes.len(), x.len());
    let range = hi - lo;
    if range.is_nan() || range <= 0.0 || range.is_infinite() {
        // Constant (or non-finite) group: every code 0, offset carries the value.
        codes.fill(0);
        let offset = if lo.is_finite() { lo } else { 0.0 };
        return (f16::ZERO, f16::from_f32(offset));
    }
    let max_code = max_code as f32;
    // Σw and Σwx do not depend on the codes; the code-dependent sums of the
    // normal equations come with each assignment.
    let (sw, sx) = x
        .iter()
        .zip(importance)
        .fold((0.0f64, 0.0f64), |(sw, sx), (&v, &w)| (sw + w as f64, sx + (w * v) as f64));
    let mut best = Grid::stored(range / max_code, lo);
    let mut best_err = best.assign(x, importance, max_code, codes).err;
    let mut trial = [0u8; MAX_GROUP];
    let trial = &mut trial[..x.len()];
    for step in 0..=SEARCH_STEPS {
        let steps = max_code - 1.0 + 2.0 * step as f32 / SEARCH_STEPS as f32;
        let fit = Grid { scale: range / steps, offset: lo }.assign(x, importance, max_code, trial);
        let Some(mut grid) = fit.least_squares(sw, sx) else { continue };
        for refit in 0..=REFINE_ITERATIONS {
            let fit = grid.assign(x, importance, max_code, trial);
            if fit.err < best_err {
                best_err = fit.err;
                best = grid;
                codes.copy_from_slice(trial);
            }
            if refit == REFINE_ITERATIONS {
                break;
            }
            match fit.least_squares(sw, sx) {
                // The same stored grid would assign the same codes again.
                Some(next) if !next.stores_as(grid) => grid = next,
                _ => break,
            }
        }
    }
    (f16::from_f32(best.scale), f16::from_f32(best.offset))
}

/// The `(scale, offset)` [`GroupedMatrix::quantize_weighted`] stores for one
/// group of `x` (at most 128 values) with squared errors weighted by
/// `importance`: the clipping-range search with least-squares refits.
/// Quantize each value against it with [`group_code`].
///
/// # Panics
/// If `x` and `importance` differ in length or hold more than 128 values.
pub fn fit_group(x: &[f32], importance: &[f32], max_code: u8) -> (f16, f16) {
    assert_eq!(x.len(), importance.len(), "one importance per value");
    assert!(x.len() <= MAX_GROUP, "a group holds at most {MAX_GROUP} values");
    let mut codes = [0u8; MAX_GROUP];
    quantize_group(x, importance, max_code, &mut codes[..x.len()])
}

/// The code of `v` on the stored grid `scale · q + offset`, `q ∈
/// 0..=max_code`: the nearest grid point (halves away from zero), clamped
/// to the range; the same rounding [`GroupedMatrix::quantize`] applies. A
/// zero scale (a constant group) gives code 0.
#[inline]
pub fn group_code(v: f32, scale: f16, offset: f16, max_code: u8) -> u8 {
    let (scale, offset) = (scale.to_f32(), offset.to_f32());
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    let q = ((v - offset) * inv).clamp(0.0, max_code as f32) + 0.5;
    // NaN (a non-finite value) maps to code 0, like the cast in `Grid::assign`.
    q as u8
}

/// A grid `scale · q + offset`, q ∈ 0..=max_code.
#[derive(Clone, Copy)]
struct Grid {
    scale: f32,
    offset: f32,
}

/// What one assignment of codes yields: its weighted squared error and the
/// code-dependent sums of the least-squares normal equations, `Σwq`, `Σwq²`
/// and `Σwqx`, gathered in the same pass.
struct Fit {
    err: f32,
    sq: f32,
    sqq: f32,
    sqx: f32,
}

impl Fit {
    /// The `(scale, offset)` minimising `Σ wᵢ (scale·qᵢ + offset − xᵢ)²` for
    /// these codes (the 2×2 normal equations, with `sw = Σw`, `sx = Σwx`),
    /// or `None` if the codes do not determine both (all equal) or the scale
    /// comes out non-positive.
    #[inline(always)]
    fn least_squares(&self, sw: f64, sx: f64) -> Option<Grid> {
        let (sq, sqq, sqx) = (self.sq as f64, self.sqq as f64, self.sqx as f64);
        let det = sw * sqq - sq * sq;
        // The sums are f32: a determinant this small relative to its terms is
        // rounding, not signal.
        if det <= 1e-6 * sw * sqq {
            return None;
        }
        let scale = (sw * sqx - sq * sx) / det;
        let offset = (sqq * sx - sq * sqx) / det;
        (scale > 0.0 && scale.is_finite() && offset.is_finite())
            .then_some(Grid { scale: scale as f32, offset: offset as f32 })
    }
}

impl Grid {
    /// The grid as it will be stored (both values rounded to f16).
    #[inline(always)]
    fn stored(scale: f32, offset: f32) -> Self {
        Self { scale: f16::from_f32(scale).to_f32(), offset: f16::from_f32(offset).to_f32() }
    }

    /// Whether this grid and `other` are stored as the same f16 values.
    #[inline(always)]
    fn stores_as(self, other: Grid) -> bool {
        let (a, b) =
            (Grid::stored(self.scale, self.offset), Grid::stored(other.scale, other.offset));
        a.scale == b.scale && a.offset == b.offset
    }

    /// Rounds each value to its nearest code on this grid (as stored); returns
    /// the weighted squared error and the sums for a least-squares refit.
    #[inline(always)]
    fn assign(self, x: &[f32], importance: &[f32], max_code: f32, codes: &mut [u8]) -> Fit {
        /// Independent partial sums, so the loop vectorizes.
        const LANES: usize = 8;
        let g = Grid::stored(self.scale, self.offset);
        let inv = if g.scale > 0.0 { 1.0 / g.scale } else { 0.0 };
        // Clamped first, so the value is non-negative and adding ½ then
        // truncating rounds half away from zero like `round` (a libm call on
        // baseline x86-64; this loop is the hot path of quantization).
        let code = |v: f32| (((v - g.offset) * inv).clamp(0.0, max_code) + 0.5) as u8;
        let mut err = [0.0f32; LANES];
        let mut sq = [0.0f32; LANES];
        let mut sqq = [0.0f32; LANES];
        let mut sqx = [0.0f32; LANES];
        let mut chunks = x.chunks_exact(LANES).zip(importance.chunks_exact(LANES));
        let mut out = codes.chunks_exact_mut(LANES);
        for ((xs, ws), qs) in chunks.by_ref().zip(out.by_ref()) {
            for l in 0..LANES {
                let q = code(xs[l]);
                qs[l] = q;
                let (q, w) = (q as f32, ws[l]);
                let e = g.scale * q + g.offset - xs[l];
                err[l] += w * e * e;
                let wq = w * q;
                sq[l] += wq;
                sqq[l] += wq * q;
                sqx[l] += wq * xs[l];
            }
        }
        let sum = |lanes: [f32; LANES]| lanes.iter().sum::<f32>();
        let mut fit = Fit { err: sum(err), sq: sum(sq), sqq: sum(sqq), sqx: sum(sqx) };
        let done = x.len() / LANES * LANES;
        for ((&v, &w), q) in x[done..].iter().zip(&importance[done..]).zip(&mut codes[done..]) {
            *q = code(v);
            let qf = *q as f32;
            let e = g.scale * qf + g.offset - v;
            fit.err += w * e * e;
            fit.sq += w * qf;
            fit.sqq += w * qf * qf;
            fit.sqx += w * qf * v;
        }
        fit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_layouts() -> Vec<GroupedLayout> {
        let mut v = Vec::new();
        for bits in qloader_format::grouped::BITS {
            for group in qloader_format::grouped::GROUPS {
                v.push(GroupedLayout::new(bits, group).unwrap());
            }
        }
        v
    }

    proptest! {
        /// For every layout: sizes follow the layout formula, and the searched
        /// grid is never worse than plain min/max rounding (the search starts
        /// from it), in plain or weighted squared error.
        #[test]
        fn search_never_worse_than_min_max(
            rows in 1usize..4, cols in 1usize..300,
            seed in proptest::collection::vec(-4.0f32..4.0, 500),
            weights in proptest::collection::vec(0.01f32..10.0, 300),
        ) {
            let data: Vec<f32> = (0..rows * cols).map(|i| seed[(i * 7) % seed.len()]).collect();
            let w = DenseMatrix::new(rows, cols, data).unwrap();
            let imp = &weights[..cols];
            for layout in all_layouts() {
                for (q, imp) in [(GroupedMatrix::quantize(&w, layout), vec![1.0; cols]),
                                 (GroupedMatrix::quantize_weighted(&w, layout, Some(imp)), imp.to_vec())] {
                    prop_assert_eq!(q.storage_bytes(), layout.storage_bytes(rows, cols));
                    let back = q.dequantize();
                    let gs = layout.group();
                    for r in 0..rows {
                        prop_assert!(q.row_codes(r).iter().all(|&c| c <= layout.max_code()));
                        for (g, group) in w.row(r).chunks(gs).enumerate() {
                            let gi = &imp[g * gs..g * gs + group.len()];
                            let got = &back.row(r)[g * gs..g * gs + group.len()];
                            let err: f32 = group.iter().zip(got).zip(gi)
                                .map(|((a, b), w)| w * (a - b) * (a - b)).sum();
                            let minmax = min_max_error(group, gi, layout.max_code());
                            prop_assert!(err <= minmax * (1.0 + 1e-5) + 1e-9,
                                "{layout:?}: {err} > min/max {minmax}");
                        }
                    }
                }
            }
        }
    }

    /// Every tier this CPU has quantizes exactly as the portable code does.
    #[test]
    fn every_tier_quantizes_identically() {
        let cols = 200;
        let row: Vec<f32> = (0..cols).map(|i| ((i * 7919 % 613) as f32 / 97.0).sin()).collect();
        let imp: Vec<f32> = (0..cols).map(|i| 0.1 + (i % 13) as f32).collect();
        for isa in crate::Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for layout in all_layouts() {
                let want = quantize_row(&row, &imp, layout);
                let got = row_quantizer(isa)(&row, &imp, layout);
                assert!(want == got, "{isa} differs from generic at {layout:?}");
            }
        }
    }

    /// Weighted squared error of plain round-to-nearest on the f16 min/max grid.
    fn min_max_error(x: &[f32], w: &[f32], max_code: u8) -> f32 {
        let top = max_code as f32;
        let lo = x.iter().cloned().fold(f32::INFINITY, f32::min);
        let hi = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let d = f16::from_f32((hi - lo) / top).to_f32();
        let m = f16::from_f32(lo).to_f32();
        x.iter()
            .zip(w)
            .map(|(&v, &w)| {
                let q = if d > 0.0 { ((v - m) / d).round().clamp(0.0, top) } else { 0.0 };
                let e = d * q + m - v;
                w * e * e
            })
            .sum()
    }

    #[test]
    fn search_reduces_error_on_gaussian_like_weights() {
        // Bell-shaped values (sum of uniforms): clipping the tails pays off.
        let mut state = 12345u32;
        let mut next = || {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (state >> 8) as f32 / (1u32 << 24) as f32
        };
        let data: Vec<f32> =
            (0..64 * 256).map(|_| (0..4).map(|_| next()).sum::<f32>() - 2.0).collect();
        let w = DenseMatrix::new(64, 256, data).unwrap();
        for bits in [2u8, 3, 4] {
            let layout = GroupedLayout::new(bits, 32).unwrap();
            let back = GroupedMatrix::quantize(&w, layout).dequantize();
            let searched: f32 =
                w.data().iter().zip(back.data()).map(|(a, b)| (a - b) * (a - b)).sum();
            let plain: f32 =
                w.data().chunks(32).map(|g| min_max_error(g, &[1.0; 32], layout.max_code())).sum();
            assert!(searched < 0.9 * plain, "int{bits}: searched {searched} vs min/max {plain}");
        }
    }

    /// `fit_group` and `group_code` reproduce `quantize`, and `from_codes`
    /// stores what `quantize` stores.
    #[test]
    fn exposed_group_fit_reproduces_quantize() {
        let (rows, cols) = (3, 200);
        let data: Vec<f32> =
            (0..rows * cols).map(|i| ((i * 7919 % 613) as f32 / 97.0).sin()).collect();
        let w = DenseMatrix::new(rows, cols, data).unwrap();
        for layout in all_layouts() {
            let want = GroupedMatrix::quantize(&w, layout);
            let (mut codes, mut scales, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
            for r in 0..rows {
                for group in w.row(r).chunks(layout.group()) {
                    let (s, o) = fit_group(group, &vec![1.0; group.len()], layout.max_code());
                    scales.push(s);
                    offsets.push(o);
                    codes.extend(group.iter().map(|&v| group_code(v, s, o, layout.max_code())));
                }
            }
            let got = GroupedMatrix::from_codes(rows, cols, layout, &codes, scales, offsets);
            assert!(got.as_ref() == Some(&want), "{layout:?}");
        }
        let layout = GroupedLayout::new(4, 32).unwrap();
        assert!(GroupedMatrix::from_codes(1, 2, layout, &[0, 16], vec![f16::ONE], vec![f16::ZERO])
            .is_none());
        assert!(GroupedMatrix::from_codes(1, 3, layout, &[0, 1], vec![f16::ONE], vec![f16::ZERO])
            .is_none());
    }

    #[test]
    fn constant_group_is_exact() {
        let w = DenseMatrix::new(1, 40, vec![0.25; 40]).unwrap();
        for layout in all_layouts() {
            let back = GroupedMatrix::quantize(&w, layout).dequantize();
            assert!(back.data().iter().all(|&v| v == 0.25), "{layout:?}");
        }
    }

    #[test]
    fn extremes_map_to_lowest_and_highest_code() {
        let mut row: Vec<f32> = (0..32).map(|i| i as f32 / 31.0).collect();
        row[3] = -1.0;
        row[7] = 2.0;
        let w = DenseMatrix::new(1, 32, row).unwrap();
        for bits in [3u8, 4, 8] {
            let q = GroupedMatrix::quantize(&w, GroupedLayout::new(bits, 32).unwrap());
            let codes = q.row_codes(0);
            assert_eq!(codes[3], 0, "int{bits}");
            assert_eq!(codes[7], q.layout().max_code(), "int{bits}");
        }
    }
}
