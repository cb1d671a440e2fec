//! Compact formats (`int4k`, `int3k`, `int2k`, `nl4k`: sub-blocks of 32
//! with quantized scales (and mins) under `f16` super-scales per 256
//! values; bit layout in [`qloader_format::compact`]): the quantizer and
//! the matrix.
//!
//! `nl4k` is fitted by [`super::nonuniform`]; the `int*k` quantizer fits
//! each super-block in three steps:
//! 1. each sub-block's grid `scale · q − min` by the grouped formats'
//!    clipping search ([`fit_group`], weighted by the input columns'
//!    importance when given), with `min ≥ 0` (a sub-block of positive
//!    values keeps 0 as its lowest level);
//! 2. the super-scales `d = max scale / max_scale` and `dmin = max min /
//!    max_scale` (rounded to `f16`), each sub-block's scale and min rounded
//!    to their integer steps;
//! 3. for each sub-block, the integer scale and min within one step of the
//!    rounded ones whose codes (each rounded to its nearest level) give the
//!    least (weighted) squared error.
//!
//! Products run on the tile kernels: the tiles hold each sub-block as a
//! 32-value group with `f16(d · sc)` as its scale and `f16(−dmin · m)` as
//! its offset (within 2⁻¹¹ relative of the exact values), built at the first
//! product like a grouped matrix's. `nl4k`'s tiles keep the 4-bit codes and
//! a table of levels: code `q` is read as the byte `NL4_LEVELS[q] + 128`,
//! with scale `f16(d · (sc − 32))` and offset `−128 ×` that scale.

use half::f16;
use qloader_format::compact::{for_each_super_block, CompactLayout, SuperBlock, SUBS, SUPER};
use qloader_format::grouped::{pack_block, GroupedLayout, BLOCK};

use super::grid_search::code;
use super::nonuniform::{fit_nonuniform_super_block, nonuniform_code};
use super::row_blocks::{nl4_tile_levels, RowBlocks, RowLayout, NL4_TILE_BIAS};
use super::{fit_group, DenseMatrix};
use crate::tiles::layout::TileHeader;
use crate::tiles::DecodedRow;

/// A `rows × cols` matrix in a compact format.
pub type CompactMatrix = RowBlocks<CompactLayout>;

impl RowLayout for CompactLayout {
    fn row_bytes(self, cols: usize) -> usize {
        CompactLayout::row_bytes(self, cols)
    }

    fn dequantize_row(self, row: &[u8], cols: usize, out: &mut [f32]) {
        qloader_format::compact::dequantize_row(self, row, cols, out)
    }

    /// The code width in groups of 32.
    fn tile_layout(self) -> GroupedLayout {
        super::row_blocks::tile_layout_of(self.bits())
    }

    /// `NL4_LEVELS[q] + 128` for `nl4k`.
    fn tile_levels(self) -> Option<[u8; 16]> {
        self.is_nonuniform().then(nl4_tile_levels)
    }

    /// Scales only for `nl4k` (its offsets are `−bias · scale`); the
    /// uniform layouts' own two-level grid (super-scales, then each
    /// sub-block's scale and min) for the others.
    fn tile_header(self) -> TileHeader {
        if self.is_nonuniform() {
            TileHeader::ScaleOnly { bias: f32::from(NL4_TILE_BIAS) }
        } else {
            TileHeader::SubScales
        }
    }

    fn decode_row(self, row: &[u8], cols: usize) -> DecodedRow {
        let layout = self.tile_layout();
        let groups = cols.div_ceil(BLOCK);
        let nonuniform = self.is_nonuniform();
        let mut out =
            DecodedRow { codes: vec![0u8; layout.row_code_bytes(cols)], ..DecodedRow::default() };
        if nonuniform {
            out.scales.reserve(groups);
        } else {
            out.subs.reserve(groups);
        }
        let block_bytes = layout.block_bytes();
        for_each_super_block(self, row, cols, |i, _, subs, bytes| {
            let block = SuperBlock::unpack(self, bytes, subs);
            if !nonuniform {
                out.supers.push([block.d, block.dmin]);
            }
            for s in 0..subs {
                if nonuniform {
                    // The offset is −bias · scale, formed by the products.
                    out.scales.push(f16::from_f32(block.sub_grid(self, s).0));
                } else {
                    out.subs.push([block.scales[s], block.mins[s]]);
                }
                let g = i * SUBS + s;
                let codes: &[u8; BLOCK] =
                    block.codes[s * BLOCK..(s + 1) * BLOCK].try_into().expect("32 codes");
                pack_block(
                    layout.bits(),
                    codes,
                    &mut out.codes[g * block_bytes..(g + 1) * block_bytes],
                );
            }
        });
        out
    }
}

impl CompactMatrix {
    /// Quantizes `w`, each squared error of column `c` weighted by
    /// `importance[c]` if given (see the module documentation).
    ///
    /// # Panics
    /// If `importance` is given and its length is not `w.cols()`.
    pub fn quantize(w: &DenseMatrix, layout: CompactLayout, importance: Option<&[f32]>) -> Self {
        Self::quantize_rows(w, layout, importance, |row, imp, out| {
            quantize_row(row, imp, layout, out)
        })
    }

    /// A matrix from its super-blocks, row after row (each row's in column
    /// order, each holding as many sub-blocks as its columns need): how a
    /// quantizer that picks codes itself (GPTQ) stores its result. `None` if
    /// the blocks do not fit the shape or a code or scale is out of range.
    pub fn from_super_blocks(
        rows: usize,
        cols: usize,
        layout: CompactLayout,
        blocks: &[SuperBlock],
    ) -> Option<Self> {
        let per_row = cols.div_ceil(SUPER);
        if blocks.len() != rows.checked_mul(per_row)? {
            return None;
        }
        let row_bytes = layout.row_bytes(cols);
        let mut data = vec![0u8; rows * row_bytes];
        for (r, out) in data.chunks_exact_mut(row_bytes.max(1)).enumerate().take(rows) {
            let mut at = 0;
            for (i, block) in blocks[r * per_row..(r + 1) * per_row].iter().enumerate() {
                let subs = (cols - i * SUPER).min(SUPER).div_ceil(BLOCK);
                let fits = block.subs() == subs
                    && block.codes.iter().all(|&q| q <= layout.max_code())
                    && block.scales.iter().chain(&block.mins).all(|&v| v <= layout.max_scale());
                if !fits {
                    return None;
                }
                let len = layout.super_block_bytes(subs);
                block.pack(layout, &mut out[at..at + len]);
                at += len;
            }
        }
        Self::from_parts(rows, cols, layout, data)
    }
}

/// Quantizes one row into `out` (`layout.row_bytes(row.len())`).
fn quantize_row(row: &[f32], importance: Option<&[f32]>, layout: CompactLayout, out: &mut [u8]) {
    let ones = [1.0f32; SUPER];
    let mut at = 0;
    for start in (0..row.len()).step_by(SUPER) {
        let x = &row[start..(start + SUPER).min(row.len())];
        let w = importance.map_or(&ones[..x.len()], |imp| &imp[start..start + x.len()]);
        let block = quantize_super_block(x, w, layout);
        let len = layout.super_block_bytes(block.subs());
        block.pack(layout, &mut out[at..at + len]);
        at += len;
    }
}

/// The super-block of values `x` (at most 256 values; a short last
/// sub-block is padded with code 0) fitted with weights `w` (one per
/// value), as [`CompactMatrix::quantize`] fits each (see the module
/// documentation).
///
/// # Panics
/// If `x` holds more than 256 values or `w` differs from it in length.
pub fn fit_super_block(x: &[f32], w: &[f32], layout: CompactLayout) -> SuperBlock {
    assert!(x.len() <= SUPER && x.len() == w.len(), "at most 256 values, one weight each");
    quantize_super_block(x, w, layout)
}

/// The code of `v` in a sub-block of `scale` and `offset` (from
/// [`SuperBlock::sub_grid`]): the nearest level, as the compact quantizers
/// round.
pub fn compact_code(layout: CompactLayout, v: f32, scale: f32, offset: f32) -> u8 {
    if layout.is_nonuniform() {
        return nonuniform_code(v, scale);
    }
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    code(v, offset, inv, layout.max_code() as f32)
}

/// The super-block of values `x` (at most 256; the last sub-block padded
/// with zeros of weight 0) with weights `w`.
fn quantize_super_block(x: &[f32], w: &[f32], layout: CompactLayout) -> SuperBlock {
    if layout.is_nonuniform() {
        return fit_nonuniform_super_block(x, w);
    }
    let subs = x.len().div_ceil(BLOCK);
    let max_code = layout.max_code();
    // 1. Each sub-block's own grid, its min clamped to at least 0.
    let mut grids = [(0.0f32, 0.0f32); SUBS];
    for (s, grid) in grids.iter_mut().enumerate().take(subs) {
        let (xs, ws) = sub_block(x, w, s);
        let (scale, offset) = fit_group(xs, ws, max_code);
        let (scale, offset) = (scale.to_f32(), offset.to_f32());
        *grid = if offset > 0.0 {
            let hi = xs.iter().copied().fold(0.0f32, f32::max);
            (hi / max_code as f32, 0.0)
        } else {
            (scale.max(0.0), -offset)
        };
    }
    // 2. Super-scales and the rounded integer scales and mins.
    let top = layout.max_scale() as f32;
    let super_scale = |v: f32| f16::from_f32(if v > 0.0 && v.is_finite() { v / top } else { 0.0 });
    let max_of = |f: fn(&(f32, f32)) -> f32| grids[..subs].iter().map(f).fold(0.0f32, f32::max);
    let d = super_scale(max_of(|g| g.0));
    let dmin = super_scale(max_of(|g| g.1));
    let step = |v: f32, unit: f16| -> i32 {
        let unit = unit.to_f32();
        if unit > 0.0 {
            ((v / unit).round() as i32).clamp(0, top as i32)
        } else {
            0
        }
    };
    // 3. Within one step of the rounded values, the pair with the least error.
    let mut block =
        SuperBlock { d, dmin, scales: [0; SUBS], mins: [0; SUBS], codes: vec![0u8; subs * BLOCK] };
    let (df, dminf) = (d.to_f32(), dmin.to_f32());
    for (s, &(scale, min)) in grids.iter().enumerate().take(subs) {
        let (xs, ws) = sub_block(x, w, s);
        let (sc0, m0) = (step(scale, d), step(min, dmin));
        let mut best = (f32::INFINITY, 0u8, 0u8);
        for sc in (sc0 - 1).max(0)..=(sc0 + 1).min(top as i32) {
            for m in (m0 - 1).max(0)..=(m0 + 1).min(top as i32) {
                let (scale, offset) = (df * sc as f32, -(dminf * m as f32));
                let err = grid_error(xs, ws, scale, offset, max_code);
                if err < best.0 {
                    best = (err, sc as u8, m as u8);
                }
            }
        }
        block.scales[s] = best.1;
        block.mins[s] = best.2;
        let (scale, offset) = (df * best.1 as f32, -(dminf * best.2 as f32));
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        for (q, &v) in block.codes[s * BLOCK..].iter_mut().zip(xs) {
            *q = code(v, offset, inv, max_code as f32);
        }
    }
    block
}

/// Sub-block `s` of `x` and its weights (the last may be short).
fn sub_block<'a>(x: &'a [f32], w: &'a [f32], s: usize) -> (&'a [f32], &'a [f32]) {
    let range = s * BLOCK..((s + 1) * BLOCK).min(x.len());
    (&x[range.clone()], &w[range])
}

/// `Σ w (scale · q + offset − x)²` with each `q` the nearest level.
fn grid_error(x: &[f32], w: &[f32], scale: f32, offset: f32, max_code: u8) -> f32 {
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    x.iter()
        .zip(w)
        .map(|(&v, &wt)| {
            let q = code(v, offset, inv, max_code as f32) as f32;
            let e = scale * q + offset - v;
            wt * e * e
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupedMatrix;

    fn weights(rows: usize, cols: usize, seed: u32) -> DenseMatrix {
        let mut state = seed;
        let data = (0..rows * cols)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (state >> 8) as f32 / (1u32 << 24) as f32;
                (u - 0.45) * 0.2 * (1.0 + 3.0 * u * u)
            })
            .collect();
        DenseMatrix::new(rows, cols, data).unwrap()
    }

    fn mse(a: &DenseMatrix, b: &DenseMatrix) -> f64 {
        a.data().iter().zip(b.data()).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>()
            / a.data().len() as f64
    }

    #[test]
    fn every_width_round_trips_its_bytes_and_sizes() {
        for layout in CompactLayout::all() {
            for cols in [32, 33, 256, 300, 576] {
                let w = weights(5, cols, cols as u32);
                let q = CompactMatrix::quantize(&w, layout, None);
                assert_eq!(q.storage_bytes(), layout.storage_bytes(5, cols));
                let back = CompactMatrix::from_parts(5, cols, layout, q.data().to_vec()).unwrap();
                assert_eq!(back, q);
                assert!(CompactMatrix::from_parts(5, cols, layout, vec![0u8; 3]).is_none());
            }
        }
    }

    /// Each compact format is about as close as the grouped format of the
    /// same width in groups of 32 (which costs 0.5–0.625 bits more; int5k,
    /// which has none, has at most 0.4 × the error of int4 in groups of 32
    /// for half a bit more), and its tiles hold its values to f16 precision.
    #[test]
    fn close_to_the_grouped_format_and_tiles_agree() {
        let w = weights(16, 576, 7);
        for layout in CompactLayout::all() {
            let bits = layout.bits().min(4);
            let q = CompactMatrix::quantize(&w, layout, None);
            let exact = q.dequantize();
            let grouped = GroupedMatrix::quantize(&w, GroupedLayout::new(bits, 32).unwrap());
            let (compact_err, grouped_err) = (mse(&exact, &w), mse(&grouped.dequantize(), &w));
            let name = layout.name();
            let bound = if layout.bits() == 5 { 0.4 } else { 1.3 };
            // (These weights lean positive: nl4k's symmetric grid is tested
            // on symmetric ones below.)
            if !layout.is_nonuniform() {
                assert!(
                    compact_err < bound * grouped_err,
                    "{name} {compact_err} vs g32 {grouped_err}"
                );
            }
            let tiled = q.tiles().dequantize();
            if !layout.is_nonuniform() {
                // The tiles keep the two-level grid itself.
                assert_eq!(tiled, exact, "{name} tiles are exact");
                continue;
            }
            // nl4k's scale within 2⁻¹¹ relative (the offset exactly −128 ×
            // it): the error is at most that fraction of
            // |scale · level| + |offset| ≤ 2 · the largest value (nl4k: of
            // |scale| · 241 ≤ 2 · 127/113 · the largest value).
            let largest = w.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, b) in tiled.data().iter().zip(exact.data()) {
                assert!((a - b).abs() <= 2.3 * largest / 2048.0, "{name}: {a} vs {b}");
            }
        }
    }

    /// On weights spread symmetrically about zero with heavy tails (as
    /// trained weights are), `nl4k`'s grid is as close as `int4k` at a
    /// quarter bit less per weight.
    #[test]
    fn nl4k_matches_int4k_on_symmetric_weights() {
        let mut state = 9u32;
        let data: Vec<f32> = (0..16 * 576)
            .map(|_| {
                let mut s = 0.0;
                for _ in 0..4 {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    s += (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                }
                s * s * s * 0.05
            })
            .collect();
        let w = DenseMatrix::new(16, 576, data).unwrap();
        let err = |layout| mse(&CompactMatrix::quantize(&w, layout, None).dequantize(), &w);
        let (nl4k, int4k) = (err(CompactLayout::nl4()), err(CompactLayout::new(4).unwrap()));
        assert!(nl4k < 1.1 * int4k, "nl4k {nl4k} vs int4k {int4k}");
    }

    #[test]
    fn importance_lowers_the_weighted_error() {
        let w = weights(8, 256, 3);
        let importance: Vec<f32> = (0..256).map(|c| if c % 5 == 0 { 50.0 } else { 1.0 }).collect();
        let layout = CompactLayout::new(3).unwrap();
        let weighted_err = |q: &CompactMatrix| {
            let d = q.dequantize();
            d.data()
                .iter()
                .zip(w.data())
                .enumerate()
                .map(|(i, (a, b))| importance[i % 256] as f64 * ((a - b) as f64).powi(2))
                .sum::<f64>()
        };
        let plain = weighted_err(&CompactMatrix::quantize(&w, layout, None));
        let weighted = weighted_err(&CompactMatrix::quantize(&w, layout, Some(&importance)));
        assert!(weighted < 0.9 * plain, "weighted {weighted} vs plain {plain}");
    }
}
