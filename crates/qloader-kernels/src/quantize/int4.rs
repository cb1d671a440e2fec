//! Int4 in groups of 32 along the input dimension, asymmetric:
//! `w ≈ scale · q + offset`, `q ∈ 0..=15`, with the group's minimum as offset
//! and `(max − min) / 15` as scale, both stored as `f16`; codes are computed
//! against the *rounded* `f16` values so the stored grid is the one used.
//! Bit layout: [`qloader_format::int4`].

use half::f16;
use qloader_format::int4::{BlockInt4, INT4_GROUP, INT4_MAX_CODE};

use super::DenseMatrix;

/// A `rows × cols` matrix stored as rows of int4 groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Int4Matrix {
    rows: usize,
    cols: usize,
    groups_per_row: usize,
    blocks: Vec<BlockInt4>,
}

impl Int4Matrix {
    /// Quantizes `w` group by group, round to nearest on a min/max grid.
    pub fn quantize(w: &DenseMatrix) -> Self {
        let (rows, cols) = (w.rows(), w.cols());
        let groups_per_row = cols.div_ceil(INT4_GROUP);
        let mut blocks = Vec::with_capacity(rows * groups_per_row);
        for r in 0..rows {
            for group in w.row(r).chunks(INT4_GROUP) {
                blocks.push(quantize_group(group));
            }
        }
        Self { rows, cols, groups_per_row, blocks }
    }

    /// Builds a matrix from raw blocks; `None` if the count is not
    /// `rows · ceil(cols / 32)`.
    pub fn from_blocks(rows: usize, cols: usize, blocks: Vec<BlockInt4>) -> Option<Self> {
        let groups_per_row = cols.div_ceil(INT4_GROUP);
        (rows.checked_mul(groups_per_row) == Some(blocks.len()))
            .then_some(Self { rows, cols, groups_per_row, blocks })
    }

    /// Number of rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Groups in each row (the last may be partial).
    pub fn groups_per_row(&self) -> usize {
        self.groups_per_row
    }

    /// The groups of row `r`.
    pub fn row_blocks(&self, r: usize) -> &[BlockInt4] {
        &self.blocks[r * self.groups_per_row..(r + 1) * self.groups_per_row]
    }

    /// Back to `f32`.
    pub fn dequantize(&self) -> DenseMatrix {
        let mut data = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            let mut row = Vec::with_capacity(self.groups_per_row * INT4_GROUP);
            for b in self.row_blocks(r) {
                row.extend_from_slice(&dequantize_block(b));
            }
            data.extend_from_slice(&row[..self.cols]);
        }
        DenseMatrix::new(self.rows, self.cols, data).expect("shape is preserved")
    }

    /// Bytes of storage (20 per group).
    pub fn storage_bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<BlockInt4>()
    }
}

/// The 32 values a block stands for (the tail of a partial group decodes to
/// `offset`, and is never read as a weight).
#[inline]
pub fn dequantize_block(b: &BlockInt4) -> [f32; INT4_GROUP] {
    let (d, m) = (b.scale.to_f32(), b.offset.to_f32());
    let codes = b.unpack();
    let mut out = [0.0f32; INT4_GROUP];
    for (o, &q) in out.iter_mut().zip(codes.iter()) {
        *o = d * q as f32 + m;
    }
    out
}

fn quantize_group(group: &[f32]) -> BlockInt4 {
    let (lo, hi) = group.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let offset = f16::from_f32(lo);
    let scale = f16::from_f32((hi - lo) / INT4_MAX_CODE as f32);
    let (d, m) = (scale.to_f32(), offset.to_f32());
    let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
    let codes: Vec<u8> = group
        .iter()
        .map(|&v| ((v - m) * inv).round().clamp(0.0, INT4_MAX_CODE as f32) as u8)
        .collect();
    BlockInt4::pack(scale, offset, &codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every weight comes back within half a step of its group (plus the
        /// f16 rounding of the offset and scale: relative 2⁻¹¹ of the range).
        #[test]
        fn round_trip_within_half_step(
            rows in 1usize..5, cols in 1usize..100,
            seed in proptest::collection::vec(-4.0f32..4.0, 500)
        ) {
            let data: Vec<f32> = (0..rows * cols).map(|i| seed[i % seed.len()]).collect();
            let w = DenseMatrix::new(rows, cols, data).unwrap();
            let q = Int4Matrix::quantize(&w);
            prop_assert_eq!(q.storage_bytes(), rows * cols.div_ceil(32) * 20);
            let back = q.dequantize();
            for r in 0..rows {
                for (g, group) in w.row(r).chunks(32).enumerate() {
                    let b = &q.row_blocks(r)[g];
                    let lo = group.iter().cloned().fold(f32::INFINITY, f32::min);
                    let hi = group.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let tol = b.scale.to_f32() / 2.0 + (hi - lo).abs() * 2e-3 + lo.abs() * 1e-3 + 1e-6;
                    for (i, &v) in group.iter().enumerate() {
                        let got = back.row(r)[g * 32 + i];
                        prop_assert!((v - got).abs() <= tol, "{v} vs {got}, tol {tol}");
                    }
                }
            }
        }
    }

    #[test]
    fn constant_group_is_exact() {
        let w = DenseMatrix::new(1, 40, vec![0.25; 40]).unwrap();
        let back = Int4Matrix::quantize(&w).dequantize();
        assert!(back.data().iter().all(|&v| v == 0.25));
    }

    #[test]
    fn extremes_map_to_code_0_and_15() {
        let mut row: Vec<f32> = (0..32).map(|i| i as f32 / 31.0).collect();
        row[3] = -1.0;
        row[7] = 2.0;
        let q = Int4Matrix::quantize(&DenseMatrix::new(1, 32, row).unwrap());
        let b = &q.row_blocks(0)[0];
        assert_eq!(b.code(3), 0);
        assert_eq!(b.code(7), 15);
    }
}
