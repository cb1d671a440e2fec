//! Converting a weight from one storage format to another without going
//! back to the original `f32` weights: what the loader does, once at load,
//! for a tensor whose format has no kernel on this device.
//!
//! Which conversions exist and which one a device takes is decided in
//! [`qloader_format::fallback`]; this module does them:
//!
//! * Grouped codes are re-packed at the wider width, the group scales and
//!   offsets kept (same values, same group size). Compact codes widen the
//!   same way (`int2k` → `int3k` → `int4k`), super-scales and sub-block
//!   scales kept (a 4-bit scale is also a 6-bit one). `q4_0`, `q5_0` and
//!   `iq4_nl` blocks become `q8_0` blocks, and `q4_0` blocks `q5_0` ones:
//!   same scale, each level re-coded.
//! * Any format becomes `f32` exactly (its values are what the kernels
//!   compute with), and `f16` with one rounding per value.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use half::f16;
use qloader_format::block32::{Block, BlockLayout};
use qloader_format::compact::{for_each_super_block, CompactLayout, SuperBlock};
pub use qloader_format::fallback::{conversion, Fidelity};
use qloader_format::grouped::{pack_block, unpack_block, GroupedLayout, BLOCK};
use qloader_format::WeightFormat;
use qloader_kernels::{BlockMatrix, CompactMatrix, GroupedMatrix, HalfMatrix};

use crate::LinearWeight;

impl LinearWeight {
    /// This weight stored as `to` (see the module documentation), or an error
    /// saying why it cannot be converted without re-quantizing.
    pub fn convert_to(&self, to: WeightFormat) -> Result<LinearWeight, String> {
        let from = self.format();
        if conversion(from, to).is_none() {
            return Err(format!("{from} cannot be converted to {to} without re-quantizing"));
        }
        Ok(match (self, to) {
            _ if from == to => self.clone(),
            (_, WeightFormat::F32) => LinearWeight::F32(self.dequantize()),
            (_, WeightFormat::F16) => LinearWeight::F16(HalfMatrix::quantize(&self.dequantize())),
            (LinearWeight::Grouped(w), WeightFormat::Grouped(layout)) => {
                LinearWeight::Grouped(widen(w, layout)?)
            }
            (LinearWeight::Compact(w), WeightFormat::Compact(layout)) => {
                LinearWeight::Compact(widen_compact(w, layout)?)
            }
            (LinearWeight::Block(w), WeightFormat::Block(layout)) => {
                LinearWeight::Block(widen_blocks(w, layout)?)
            }
            _ => return Err(format!("no conversion from {from} to {to}")),
        })
    }

    /// Writes row `r`'s values (`in_features` of them) into `out`: one row
    /// of an embedding table, de-quantized.
    ///
    /// # Panics
    /// If `r` is not a row or `out` is not exactly one row long.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert!(r < self.out_features(), "row {r} of {}", self.out_features());
        assert_eq!(out.len(), self.in_features(), "one row of output");
        match self {
            LinearWeight::F32(w) => out.copy_from_slice(w.row(r)),
            LinearWeight::F16(w) => {
                for (o, v) in out.iter_mut().zip(w.row(r)) {
                    *o = v.to_f32();
                }
            }
            LinearWeight::Int8(w) => {
                let s = w.scale(r);
                for (o, &q) in out.iter_mut().zip(w.row_codes(r)) {
                    *o = q as f32 * s;
                }
            }
            LinearWeight::Grouped(w) => {
                (qloader_kernels::Kernels::detect().unpack_grouped)(w.row(r), out)
            }
            LinearWeight::Compact(w) => {
                qloader_format::compact::dequantize_row(w.layout(), w.row(r), w.cols(), out)
            }
            LinearWeight::Block(w) => {
                qloader_format::block32::dequantize_row(w.layout(), w.row(r), w.cols(), out)
            }
        }
    }
}

/// `w`'s codes re-packed at `layout`'s (wider or equal) width, scales and
/// offsets unchanged.
fn widen(w: &GroupedMatrix, layout: GroupedLayout) -> Result<GroupedMatrix, String> {
    let from = w.layout();
    debug_assert!(layout.bits() >= from.bits() && layout.group() == from.group());
    let blocks = from.blocks_per_row(w.cols());
    let mut codes = Vec::with_capacity(w.rows() * layout.row_code_bytes(w.cols()));
    let mut out = vec![0u8; layout.block_bytes()];
    for r in 0..w.rows() {
        for packed in w.row(r).codes.chunks_exact(from.block_bytes()).take(blocks) {
            let block: [u8; BLOCK] = unpack_block(from.bits(), packed);
            pack_block(layout.bits(), &block, &mut out);
            codes.extend_from_slice(&out);
        }
    }
    let scales: Vec<f16> = w.scales().to_vec();
    let offsets: Vec<f16> = w.offsets().to_vec();
    GroupedMatrix::from_parts(w.rows(), w.cols(), layout, codes, scales, offsets).ok_or_else(|| {
        format!("re-packing {} codes as {} gave the wrong length", from.bits(), layout.bits())
    })
}

/// `w`'s super-blocks re-packed at `layout`'s (wider or equal) width,
/// super-scales, sub-block scales and mins unchanged.
fn widen_compact(w: &CompactMatrix, layout: CompactLayout) -> Result<CompactMatrix, String> {
    let from = w.layout();
    debug_assert!(layout.bits() >= from.bits());
    let mut data = vec![0u8; w.rows() * layout.row_bytes(w.cols())];
    let row_bytes = layout.row_bytes(w.cols());
    for (r, out) in data.chunks_exact_mut(row_bytes.max(1)).enumerate().take(w.rows()) {
        let mut at = 0;
        for_each_super_block(from, w.row(r), w.cols(), |_, _, subs, bytes| {
            let len = layout.super_block_bytes(subs);
            SuperBlock::unpack(from, bytes, subs).pack(layout, &mut out[at..at + len]);
            at += len;
        });
    }
    CompactMatrix::from_parts(w.rows(), w.cols(), layout, data).ok_or_else(|| {
        format!("re-packing {} as {} gave the wrong length", from.name(), layout.name())
    })
}

/// `w`'s blocks as `layout`'s (a wider grid): each code's level re-coded, the
/// scales unchanged.
fn widen_blocks(w: &BlockMatrix, layout: BlockLayout) -> Result<BlockMatrix, String> {
    let from = w.layout();
    let blocks: Vec<Block> = w
        .data()
        .chunks_exact(from.block_bytes())
        .map(|bytes| {
            let block = Block::unpack(from, bytes);
            Block { d: block.d, codes: block.codes.map(|q| layout.code(from.level(q))) }
        })
        .collect();
    BlockMatrix::from_blocks(w.rows(), w.cols(), layout, &blocks)
        .ok_or_else(|| format!("re-coding {} blocks as {} failed", from.name(), layout.name()))
}

#[cfg(test)]
mod tests {
    use qloader_kernels::DenseMatrix;

    use super::*;

    fn dense(w: &LinearWeight) -> DenseMatrix {
        w.dequantize()
    }

    fn matrix(rows: usize, cols: usize) -> DenseMatrix {
        let data =
            (0..rows * cols).map(|i| ((i * 7919 % 1013) as f32 / 300.0 - 1.5).sin()).collect();
        DenseMatrix::new(rows, cols, data).unwrap()
    }

    #[test]
    fn widening_grouped_codes_keeps_every_value() {
        for (from, to) in [
            ("int2", "int4"),
            ("int2g64", "int8g64"),
            ("int3g128", "int4g128"),
            ("int3", "int8g32"),
            ("int4g64", "int8g64"),
            ("int2k", "int3k"),
            ("int2k", "int4k"),
            ("int3k", "int4k"),
            ("q4_0", "q8_0"),
            ("q4_0", "q5_0"),
            ("q5_0", "q8_0"),
            ("iq4_nl", "q8_0"),
        ] {
            let (from, to): (WeightFormat, WeightFormat) =
                (from.parse().unwrap(), to.parse().unwrap());
            let w = LinearWeight::quantize(matrix(5, 97), from);
            let c = w.convert_to(to).unwrap();
            assert_eq!(c.format(), to);
            assert_eq!(conversion(from, to), Some(Fidelity::Exact));
            assert_eq!(dense(&c), dense(&w), "{from} → {to}");
            let x: Vec<f32> = (0..97 * 3).map(|i| (i as f32 * 0.11).cos()).collect();
            let (mut a, mut b) = (vec![0.0; 15], vec![0.0; 15]);
            w.matmul(&x, 3, &mut a);
            c.matmul(&x, 3, &mut b);
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{from} → {to}: {p} vs {q}");
            }
        }
    }

    #[test]
    fn float_targets_are_exact_or_rounded_once() {
        for name in
            ["int8", "int4", "int2g128", "int3k", "nl4k", "q4_0", "q5_0", "iq4_nl", "f16", "f32"]
        {
            let f: WeightFormat = name.parse().unwrap();
            let w = LinearWeight::quantize(matrix(4, 70), f);
            assert_eq!(dense(&w.convert_to(WeightFormat::F32).unwrap()), dense(&w), "{name}");
            let h = dense(&w.convert_to(WeightFormat::F16).unwrap());
            for (a, b) in h.data().iter().zip(dense(&w).data()) {
                assert!((a - b).abs() <= b.abs() / 1024.0 + 1e-7, "{name}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn narrowing_or_regrouping_is_refused() {
        let w = LinearWeight::quantize(matrix(2, 64), "int4g64".parse().unwrap());
        for to in ["int2g64", "int4g32", "int8", "int8g128", "int4k"] {
            let err = w.convert_to(to.parse().unwrap()).unwrap_err();
            assert!(err.contains("without re-quantizing"), "{err}");
        }
        let w = LinearWeight::quantize(matrix(2, 64), "int3k".parse().unwrap());
        for to in ["int2k", "int4", "int8", "nl4k"] {
            assert!(w.convert_to(to.parse().unwrap()).is_err(), "int3k → {to}");
        }
        let w = LinearWeight::quantize(matrix(2, 64), "nl4k".parse().unwrap());
        for to in ["int4k", "int4", "int8", "iq4_nl"] {
            assert!(w.convert_to(to.parse().unwrap()).is_err(), "nl4k → {to}");
        }
        let w = LinearWeight::quantize(matrix(2, 64), "q8_0".parse().unwrap());
        for to in ["q4_0", "q5_0", "iq4_nl", "int8", "int8g32"] {
            assert!(w.convert_to(to.parse().unwrap()).is_err(), "q8_0 → {to}");
        }
        let w = LinearWeight::quantize(matrix(2, 64), "q5_0".parse().unwrap());
        for to in ["q4_0", "iq4_nl"] {
            assert!(w.convert_to(to.parse().unwrap()).is_err(), "q5_0 → {to}");
        }
    }

    #[test]
    fn rows_dequantize_like_the_whole_matrix() {
        for name in [
            "f32", "f16", "int8", "int4", "int3g64", "int2g128", "int4k", "int2k", "nl4k", "q4_0",
            "q5_0", "q8_0", "iq4_nl",
        ] {
            let w = LinearWeight::quantize(matrix(6, 77), name.parse().unwrap());
            let full = w.dequantize();
            let mut row = vec![0.0; 77];
            for r in 0..6 {
                w.dequantize_row(r, &mut row);
                for (a, b) in row.iter().zip(full.row(r)) {
                    assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{name} row {r}");
                }
            }
        }
    }
}
