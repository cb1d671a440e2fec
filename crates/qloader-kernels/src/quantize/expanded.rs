//! A grouped matrix whose codes are expanded to one byte each (32 bytes per
//! block) while keeping the group scales and offsets: the same weights, read
//! without unpacking. It is what the loader falls back to when a device has
//! no kernel for a packed width (int2/int3 codes held as int8 codes), and the
//! baseline that measures what unpacking costs the fused kernels.

use half::f16;
use qloader_format::grouped::{unpack_block, GroupedLayout, BLOCK};

use super::grouped::{GroupedMatrix, GroupedRow};

/// Codes one byte each, group parameters as in the source matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandedMatrix {
    rows: usize,
    cols: usize,
    layout: GroupedLayout,
    codes: Vec<u8>,
    scales: Vec<f16>,
    offsets: Vec<f16>,
}

impl ExpandedMatrix {
    /// Expands the codes of `w` (exactly: the values are unchanged).
    pub fn from_grouped(w: &GroupedMatrix) -> Self {
        let layout = w.layout();
        let blocks = layout.blocks_per_row(w.cols());
        let mut codes = Vec::with_capacity(w.rows() * blocks * BLOCK);
        let (mut scales, mut offsets) = (Vec::new(), Vec::new());
        for r in 0..w.rows() {
            let row = w.row(r);
            for packed in row.codes.chunks_exact(layout.block_bytes()) {
                codes.extend_from_slice(&unpack_block(layout.bits(), packed));
            }
            scales.extend_from_slice(row.scales);
            offsets.extend_from_slice(row.offsets);
        }
        Self { rows: w.rows(), cols: w.cols(), layout, codes, scales, offsets }
    }

    /// Number of rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bit width of the codes (before expansion) and group size.
    pub fn layout(&self) -> GroupedLayout {
        self.layout
    }

    /// Row `r`: a [`GroupedRow`] whose `codes` hold one byte per code (32 per
    /// block) — only the `expanded` kernels read it that way.
    pub fn row(&self, r: usize) -> GroupedRow<'_> {
        let bytes = self.layout.blocks_per_row(self.cols) * BLOCK;
        let groups = self.layout.groups_per_row(self.cols);
        GroupedRow {
            layout: self.layout,
            codes: &self.codes[r * bytes..(r + 1) * bytes],
            scales: &self.scales[r * groups..(r + 1) * groups],
            offsets: &self.offsets[r * groups..(r + 1) * groups],
        }
    }

    /// Bytes of storage.
    pub fn storage_bytes(&self) -> usize {
        self.codes.len() + (self.scales.len() + self.offsets.len()) * 2
    }
}
