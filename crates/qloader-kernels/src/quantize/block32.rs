//! llama.cpp's 32-value block formats (`q4_0`, `q5_0`, `q8_0`, `iq4_nl`: one `f16`
//! scale per 32 values and signed levels; bit layout in
//! [`qloader_format::block32`]): the quantizer and the matrix.
//!
//! Each block's scale is fitted as llama.cpp's importance-matrix
//! quantizers fit theirs: for candidate scales that put the value of
//! largest magnitude at or near either end of the grid, every value takes
//! its nearest level and the scale is re-fitted by least squares
//! (`Σ w·x·L / Σ w·L²`) and rounded to `f16`; the codes are then re-chosen
//! for the rounded scale, and the candidate with the least weighted squared
//! error wins. Weights `w` are the input columns' importance when given.
//!
//! Products run on the tile kernels: each block is a 32-value group of the
//! tiles with `d` as its scale. `q4_0` keeps its 4-bit codes with offset
//! `−8·d`, `q5_0` its 5-bit codes (5-bit tiles) with offset
//! `−16·d`, `q8_0` its bytes read as `i8 + 128` with offset `−128·d`, and
//! `iq4_nl` its 4-bit codes with a table of levels (code `q` read as the
//! byte `NL4_LEVELS[q] + 128`) and offset `−128·d`. The tiles store only
//! `d` ([`TileHeader::ScaleOnly`]: 4.5 bits per weight for `q4_0`, as
//! stored) and the products form each offset from it, so they hold the
//! values exactly.

use half::f16;
use qloader_format::block32::{Block, BlockLayout};
use qloader_format::grouped::{pack_block, GroupedLayout, BLOCK};

use super::nonuniform::nearest_level;
use super::row_blocks::{nl4_tile_levels, RowBlocks, RowLayout, NL4_TILE_BIAS};
use super::DenseMatrix;
use crate::tiles::layout::TileHeader;
use crate::tiles::DecodedRow;

/// Candidate scales per end of the grid, each side of the end itself.
const CANDIDATES: i32 = 4;

/// Relative spacing of the candidates' end levels.
const CANDIDATE_STEP: f32 = 0.025;

/// A `rows × cols` matrix in a block format.
pub type BlockMatrix = RowBlocks<BlockLayout>;

impl RowLayout for BlockLayout {
    fn row_bytes(self, cols: usize) -> usize {
        BlockLayout::row_bytes(self, cols)
    }

    fn dequantize_row(self, row: &[u8], cols: usize, out: &mut [f32]) {
        qloader_format::block32::dequantize_row(self, row, cols, out)
    }

    /// The tiles' code width in groups of 32.
    fn tile_layout(self) -> GroupedLayout {
        super::row_blocks::tile_layout_of(self.bits())
    }

    /// `NL4_LEVELS[q] + 128` for `iq4_nl`.
    fn tile_levels(self) -> Option<[u8; 16]> {
        self.is_nonuniform().then(nl4_tile_levels)
    }

    /// Scales only: every block's offset is `−bias · d`.
    fn tile_header(self) -> TileHeader {
        TileHeader::ScaleOnly { bias: tile_bias(self) }
    }

    fn decode_row(self, row: &[u8], cols: usize) -> DecodedRow {
        let layout = self.tile_layout();
        let blocks = cols.div_ceil(BLOCK);
        let mut out = DecodedRow {
            codes: vec![0u8; layout.row_code_bytes(cols)],
            scales: Vec::with_capacity(blocks),
            ..DecodedRow::default()
        };
        let code_bytes = layout.block_bytes();
        for (b, bytes) in row.chunks_exact(self.block_bytes()).enumerate() {
            let block = Block::unpack(self, bytes);
            out.scales.push(block.d);
            pack_block(layout.bits(), &block.codes, &mut out.codes[b * code_bytes..][..code_bytes]);
        }
        out
    }
}

/// The level code 0 stands for in the tiles, negated, in units of d.
fn tile_bias(layout: BlockLayout) -> f32 {
    match layout {
        BlockLayout::Q4_0 => 8.0,
        BlockLayout::Q5_0 => 16.0,
        BlockLayout::Q8_0 | BlockLayout::Iq4Nl => f32::from(NL4_TILE_BIAS),
    }
}

impl BlockMatrix {
    /// Quantizes `w`, each squared error of column `c` weighted by
    /// `importance[c]` if given (see the module documentation).
    ///
    /// # Panics
    /// If `importance` is given and its length is not `w.cols()`.
    pub fn quantize(w: &DenseMatrix, layout: BlockLayout, importance: Option<&[f32]>) -> Self {
        let ones = [1.0f32; BLOCK];
        Self::quantize_rows(w, layout, importance, |row, imp, out| {
            for (b, (x, o)) in
                row.chunks(BLOCK).zip(out.chunks_exact_mut(layout.block_bytes())).enumerate()
            {
                let wt = imp.map_or(&ones[..x.len()], |imp| &imp[b * BLOCK..][..x.len()]);
                fit_block(x, wt, layout).pack(layout, o);
            }
        })
    }

    /// A matrix from its blocks, row after row (each row's in column
    /// order): how a quantizer that picks codes itself (GPTQ) stores its
    /// result. `None` if the blocks do not fit the shape or a code is out of
    /// range.
    pub fn from_blocks(
        rows: usize,
        cols: usize,
        layout: BlockLayout,
        blocks: &[Block],
    ) -> Option<Self> {
        let per_row = cols.div_ceil(BLOCK);
        if blocks.len() != rows.checked_mul(per_row)?
            || blocks.iter().any(|b| b.codes.iter().any(|&q| q > layout.max_code()))
        {
            return None;
        }
        let n = layout.block_bytes();
        let mut data = vec![0u8; blocks.len() * n];
        for (block, out) in blocks.iter().zip(data.chunks_exact_mut(n)) {
            block.pack(layout, out);
        }
        Self::from_parts(rows, cols, layout, data)
    }
}

/// The code of `v` in a block of scale `d`: its nearest level.
pub fn block_code(layout: BlockLayout, v: f32, d: f32) -> u8 {
    let u = if d != 0.0 { v / d } else { 0.0 };
    // NaN clamps to NaN, which `as` turns into 0 (level 0).
    match layout {
        BlockLayout::Q4_0 => (u.round().clamp(-8.0, 7.0) as i16 + 8) as u8,
        BlockLayout::Q5_0 => (u.round().clamp(-16.0, 15.0) as i16 + 16) as u8,
        BlockLayout::Q8_0 => (u.round().clamp(-127.0, 127.0) as i16 + 128) as u8,
        BlockLayout::Iq4Nl => nearest_level(u),
    }
}

/// The block of values `x` (at most 32; a short block is padded with the
/// level nearest 0) fitted with weights `w` (one per value), as
/// [`BlockMatrix::quantize`] fits each (see the module documentation).
///
/// # Panics
/// If `x` holds more than 32 values or `w` differs from it in length.
pub fn fit_block(x: &[f32], w: &[f32], layout: BlockLayout) -> Block {
    assert!(x.len() <= BLOCK && x.len() == w.len(), "at most 32 values, one weight each");
    let far = x.iter().copied().fold(0.0f32, |m, v| if v.abs() > m.abs() { v } else { m });
    let mut best = Block { d: f16::ZERO, codes: [layout.padding_code(); BLOCK] };
    if far == 0.0 || !far.is_finite() {
        return best;
    }
    let (lo, hi) = {
        let mut levels = layout.levels().map(|(_, l)| l);
        let lo = levels.next().unwrap_or_default();
        (lo, levels.last().unwrap_or_default())
    };
    // A symmetric grid needs only one end.
    let ends: &[i16] = if lo == -hi { &[lo] } else { &[lo, hi] };
    let mut best_err = f32::INFINITY;
    for &end in ends {
        for k in -CANDIDATES..=CANDIDATES {
            let scale = far / (end as f32 * (1.0 + k as f32 * CANDIDATE_STEP));
            let (mut xl, mut ll) = (0.0f32, 0.0f32);
            for (&v, &wt) in x.iter().zip(w) {
                let l = layout.level(block_code(layout, v, scale)) as f32;
                xl += wt * v * l;
                ll += wt * l * l;
            }
            let d = f16::from_f32(if ll > 0.0 { xl / ll } else { scale });
            if !d.is_finite() {
                continue;
            }
            let df = d.to_f32();
            let mut codes = [layout.padding_code(); BLOCK];
            let mut err = 0.0f32;
            for ((&v, &wt), q) in x.iter().zip(w).zip(codes.iter_mut()) {
                *q = block_code(layout, v, df);
                let e = layout.level(*q) as f32 * df - v;
                err += wt * e * e;
            }
            if err < best_err {
                best_err = err;
                best = Block { d, codes };
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupedMatrix;

    fn symmetric_weights(rows: usize, cols: usize, seed: u32) -> DenseMatrix {
        let mut state = seed;
        let data = (0..rows * cols)
            .map(|_| {
                let mut s = 0.0;
                for _ in 0..4 {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    s += (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                }
                s * s * s * 0.05
            })
            .collect();
        DenseMatrix::new(rows, cols, data).unwrap()
    }

    fn mse(a: &DenseMatrix, b: &DenseMatrix) -> f64 {
        a.data().iter().zip(b.data()).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>()
            / a.data().len() as f64
    }

    #[test]
    fn every_layout_round_trips_its_bytes_and_sizes() {
        for layout in BlockLayout::ALL {
            for cols in [1, 32, 33, 300, 576] {
                let w = symmetric_weights(5, cols, cols as u32);
                let q = BlockMatrix::quantize(&w, layout, None);
                assert_eq!(q.storage_bytes(), layout.storage_bytes(5, cols));
                let back = BlockMatrix::from_parts(5, cols, layout, q.data().to_vec()).unwrap();
                assert_eq!(back, q);
                assert!(BlockMatrix::from_parts(5, cols, layout, vec![0u8; 3]).is_none());
                let blocks: Vec<Block> = q
                    .data()
                    .chunks_exact(layout.block_bytes())
                    .map(|b| Block::unpack(layout, b))
                    .collect();
                assert_eq!(BlockMatrix::from_blocks(5, cols, layout, &blocks).unwrap(), q);
                assert!(BlockMatrix::from_blocks(4, cols, layout, &blocks).is_none());
            }
        }
    }

    /// The tiles hold the values exactly, and each format is about as close
    /// as the grouped format of its code width in groups of 32 (which has
    /// an offset too and costs half a bit more: a symmetric grid of even
    /// steps spends up to half its levels outside a block's range).
    #[test]
    fn tiles_are_exact_and_errors_are_those_of_the_width() {
        let w = symmetric_weights(16, 576, 7);
        for layout in BlockLayout::ALL {
            let q = BlockMatrix::quantize(&w, layout, None);
            let exact = q.dequantize();
            assert_eq!(q.tiles().dequantize(), exact, "{}", layout.name());
            // Against the grouped format of its width (q5_0, which has none,
            // against 4 bits with a min: a quarter of the error or less).
            let (bits, bound) = match layout {
                BlockLayout::Q5_0 => (4, 0.5),
                l if l.is_nonuniform() => (l.bits(), 1.3),
                l => (l.bits(), 2.0),
            };
            let grouped = GroupedMatrix::quantize(&w, GroupedLayout::new(bits, BLOCK).unwrap());
            let (ours, theirs) = (mse(&exact, &w), mse(&grouped.dequantize(), &w));
            assert!(ours < bound * theirs, "{}: {ours} vs g32 {theirs}", layout.name());
        }
    }

    #[test]
    fn values_on_the_grid_come_back_and_zeros_stay_zero() {
        for layout in BlockLayout::ALL {
            let levels: Vec<i16> = layout.levels().map(|(_, l)| l).collect();
            let x: Vec<f32> = (0..32).map(|i| levels[i * 7 % levels.len()] as f32 / 64.0).collect();
            let block = fit_block(&x, &[1.0; 32], layout);
            assert_eq!(block.values(layout).to_vec(), x, "{}", layout.name());
            let zero = fit_block(&[0.0; 32], &[1.0; 32], layout);
            assert_eq!(zero.values(layout), [0.0; 32]);
        }
    }

    #[test]
    fn importance_lowers_the_weighted_error() {
        let w = symmetric_weights(8, 256, 3);
        let importance: Vec<f32> = (0..256).map(|c| if c % 5 == 0 { 50.0 } else { 1.0 }).collect();
        for layout in [BlockLayout::Q4_0, BlockLayout::Q5_0, BlockLayout::Iq4Nl] {
            let weighted_err = |q: &BlockMatrix| {
                let d = q.dequantize();
                d.data()
                    .iter()
                    .zip(w.data())
                    .enumerate()
                    .map(|(i, (a, b))| importance[i % 256] as f64 * ((a - b) as f64).powi(2))
                    .sum::<f64>()
            };
            let plain = weighted_err(&BlockMatrix::quantize(&w, layout, None));
            let weighted = weighted_err(&BlockMatrix::quantize(&w, layout, Some(&importance)));
            assert!(weighted < 0.9 * plain, "{}: {weighted} vs {plain}", layout.name());
        }
    }
}
