//! A matrix stored as each row's bytes in one layout — the compact formats'
//! super-blocks and llama.cpp's 32-value blocks — with what every such
//! format shares: shape, bytes (owned or a view of a mapped model), row
//! access, de-quantization and the tiles its products run on (made once).
//! A layout says how long a row is, what its values are and how a row
//! becomes tile parts ([`RowLayout`]); its quantizer lives with it.

use std::fmt;
use std::sync::OnceLock;

use qloader_format::compact::NL4_LEVELS;
use qloader_format::grouped::GroupedLayout;
use rayon::prelude::*;

use super::DenseMatrix;
use crate::storage::Storage;
use crate::tiles::layout::TileHeader;
use crate::tiles::{DecodedRow, TiledMatrix};

/// What the tiles add to each level of the non-uniform grid
/// [`NL4_LEVELS`] (`nl4k`, `iq4_nl`) to make it a byte; each group's tile
/// offset, `−128 ×` its scale, takes it back off.
pub const NL4_TILE_BIAS: i16 = 128;

/// The byte the tiles read each code of the non-uniform grid as:
/// `NL4_LEVELS[q] + 128`.
pub fn nl4_tile_levels() -> [u8; 16] {
    std::array::from_fn(|q| (NL4_LEVELS[q] as i16 + NL4_TILE_BIAS) as u8)
}

/// The tiles' grouped layout for codes of `bits` bits in groups of 32 (the
/// 5-bit one is not a storage format of its own).
///
/// # Panics
/// If `bits` is not 2, 3, 4, 5 or 8.
pub fn tile_layout_of(bits: u8) -> GroupedLayout {
    match bits {
        5 => GroupedLayout::five_bit_tiles(),
        _ => GroupedLayout::new(bits, 32).expect("2, 3, 4 and 8 bits exist in groups of 32"),
    }
}

/// A byte layout of rows that a [`RowBlocks`] matrix stores.
pub trait RowLayout: Copy + PartialEq + fmt::Debug + Send + Sync {
    /// Bytes of one row of `cols` values.
    fn row_bytes(self, cols: usize) -> usize;
    /// De-quantizes `row` (`row_bytes(cols)` bytes) into `out` (`cols`
    /// values), exactly as the layout defines its values.
    fn dequantize_row(self, row: &[u8], cols: usize, out: &mut [f32]);
    /// The grouped layout (groups of 32) whose tiles hold the rows.
    fn tile_layout(self) -> GroupedLayout;
    /// The byte each tile code is read as, if not the code itself.
    fn tile_levels(self) -> Option<[u8; 16]>;
    /// What the tiles store of each group's grid.
    fn tile_header(self) -> TileHeader;
    /// `row` as grouped parts in [`RowLayout::tile_layout`].
    fn decode_row(self, row: &[u8], cols: usize) -> DecodedRow;
}

/// A `rows × cols` matrix whose rows are stored in layout `L`.
#[derive(Debug, Clone)]
pub struct RowBlocks<L> {
    rows: usize,
    cols: usize,
    layout: L,
    data: Storage<u8>,
    tiles: OnceLock<TiledMatrix>,
}

impl<L: RowLayout> PartialEq for RowBlocks<L> {
    /// Equal shape, layout and bytes (the tiles are a derived copy).
    fn eq(&self, other: &Self) -> bool {
        (self.rows, self.cols, self.layout) == (other.rows, other.cols, other.layout)
            && self.data == other.data
    }
}

impl<L: RowLayout> RowBlocks<L> {
    /// A matrix over stored bytes (`rows · layout.row_bytes(cols)`); `None`
    /// if the length disagrees with the shape.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        layout: L,
        data: impl Into<Storage<u8>>,
    ) -> Option<Self> {
        let data = data.into();
        (rows.checked_mul(layout.row_bytes(cols)) == Some(data.len())).then(|| Self {
            rows,
            cols,
            layout,
            data,
            tiles: OnceLock::new(),
        })
    }

    /// Quantizes `w` row by row in parallel: `quantize_row(row, importance,
    /// out)` writes one row's `layout.row_bytes(cols)` bytes, with the
    /// input columns' importance if given. The layout's quantizers call this.
    ///
    /// # Panics
    /// If `importance` is given and its length is not `w.cols()`.
    pub fn quantize_rows(
        w: &DenseMatrix,
        layout: L,
        importance: Option<&[f32]>,
        quantize_row: impl Fn(&[f32], Option<&[f32]>, &mut [u8]) + Sync,
    ) -> Self {
        let (rows, cols) = (w.rows(), w.cols());
        if let Some(imp) = importance {
            assert_eq!(imp.len(), cols, "one importance per input column");
        }
        let row_bytes = layout.row_bytes(cols);
        let mut data = vec![0u8; rows * row_bytes];
        if rows > 0 && row_bytes > 0 {
            data.par_chunks_mut(row_bytes)
                .enumerate()
                .for_each(|(r, out)| quantize_row(w.row(r), importance, out));
        }
        Self::from_parts(rows, cols, layout, data).expect("one row of bytes per row")
    }

    /// Rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The layout.
    pub fn layout(&self) -> L {
        self.layout
    }

    /// Every row's bytes, row after row.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Row `r`'s bytes.
    pub fn row(&self, r: usize) -> &[u8] {
        let n = self.layout.row_bytes(self.cols);
        &self.data[r * n..(r + 1) * n]
    }

    /// Whether the bytes are a view of a memory-mapped model.
    pub fn is_mapped(&self) -> bool {
        self.data.is_shared()
    }

    /// Bytes of storage.
    pub fn storage_bytes(&self) -> usize {
        self.data.len()
    }

    /// The exact values, as the layout defines them.
    pub fn dequantize(&self) -> DenseMatrix {
        let mut data = vec![0.0f32; self.rows * self.cols];
        self.dequantize_into(&mut data);
        DenseMatrix::new(self.rows, self.cols, data).expect("shape is preserved")
    }

    /// [`RowBlocks::dequantize`] into `out` (`rows × cols`), rows in
    /// parallel.
    ///
    /// # Panics
    /// If `out` does not hold `rows × cols` values.
    pub fn dequantize_into(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.rows * self.cols, "one value per weight");
        if self.cols > 0 {
            out.par_chunks_mut(self.cols)
                .enumerate()
                .with_min_len(16)
                .for_each(|(r, out)| self.layout.dequantize_row(self.row(r), self.cols, out));
        }
    }

    /// The grouped layout the tiles use.
    pub fn tile_layout(&self) -> GroupedLayout {
        self.layout.tile_layout()
    }

    /// The byte each code is read as in the tiles, if not the code itself.
    pub fn tile_levels(&self) -> Option<[u8; 16]> {
        self.layout.tile_levels()
    }

    /// The matrix in tiles (made on the first call, kept).
    pub fn tiles(&self) -> &TiledMatrix {
        self.tiles.get_or_init(|| {
            TiledMatrix::from_decoded_rows(
                (self.rows, self.cols),
                self.layout.tile_layout(),
                self.layout.tile_header(),
                self.layout.tile_levels(),
                &|r| self.layout.decode_row(self.row(r), self.cols),
            )
        })
    }
}
