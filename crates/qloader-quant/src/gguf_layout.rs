//! A weight in one of GGUF's tensor types, for `qloader export`.
//!
//! Exact layouts move fields, never re-quantize (which type holds which
//! format is [`qloader_format::gguf::layouts`]'s rule):
//!
//! | stored | GGUF type | condition |
//! |---|---|---|
//! | `f32`, `f16` | `F32`, `F16` | — |
//! | `int4` (groups of 32) | `Q4_1` | row length a multiple of 32 |
//! | `int3`, `int2` (groups of 32) | `Q4_1`, codes widened exactly | the same |
//! | `int4k` | `Q4_K` | row length a multiple of 256 |
//! | `int5k` | `Q5_K` | the same |
//! | `int3k`, `int2k` | `Q4_K`, codes widened exactly | the same |
//! | `nl4k` | `IQ4_XS` | the same |
//! | `q4_0`, `q5_0`, `q8_0`, `iq4_nl` | the type of that name | row length a multiple of 32 |
//!
//! Everything else has no GGUF layout holding the same values; converted
//! (asked for), a format of fewer than 8 bits is re-quantized to `Q8_0`
//! from its own de-quantized values (a grid 8 to 64 times finer than its
//! own, so the added error is a small fraction of the format's), an 8-bit one is
//! stored as `F16` (`Q8_0` would add about as much error as it has), and so
//! is anything whose rows do not split into 32-blocks.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use half::f16;
use qloader_format::gguf::layouts::exact_type;
use qloader_format::gguf::GgmlType;
use qloader_format::WeightFormat;

use crate::{LinearWeight, StoredParts};

/// One weight's GGUF type and bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufData {
    /// Its GGUF type.
    pub ty: GgmlType,
    /// Its bytes in that type's layout, rows one after another.
    pub data: Vec<u8>,
    /// The format whose fields were moved when the stored one was first
    /// widened exactly (`int3` → `int4` for `Q4_1`), if it was.
    pub widened_to: Option<WeightFormat>,
}

/// `w` in the GGUF type that holds exactly its values, if one does (see the
/// module documentation).
pub fn exact_gguf(w: &LinearWeight) -> Option<GgufData> {
    let (ty, widened_to) = exact_type(w.format(), w.in_features())?;
    let owned;
    let w = match widened_to {
        Some(wider) => {
            owned = w.convert_to(wider).ok()?;
            &owned
        }
        None => w,
    };
    // The container's segments are GGUF's bytes, but Q4_1 interleaves each
    // block's f16 scale `d`, f16 minimum `m` and 16 code bytes.
    let data = match w.stored_parts() {
        StoredParts::F32 { data } | StoredParts::F16 { data } => data,
        StoredParts::Compact { codes, .. } | StoredParts::Block { codes, .. } => codes,
        StoredParts::Grouped { codes, scales, offsets, .. } => {
            let blocks = scales.chunks_exact(2).zip(offsets.chunks_exact(2));
            let mut data = Vec::with_capacity(codes.len() + scales.len() + offsets.len());
            for ((d, min), codes) in blocks.zip(codes.chunks_exact(16)) {
                data.extend_from_slice(d);
                data.extend_from_slice(min);
                data.extend_from_slice(codes);
            }
            data
        }
        StoredParts::Int8PerChannel { .. } => return None,
    };
    Some(GgufData { ty, data, widened_to })
}

/// `w` in the nearest GGUF type that holds at least its precision (see the
/// module documentation): `Q8_0` re-quantized from its de-quantized values,
/// or `F16`.
pub fn converted_gguf(w: &LinearWeight) -> GgufData {
    let values = w.dequantize();
    let data = values.data();
    if converted_type(w.format(), w.in_features()) == GgmlType::F16 {
        let bytes = data.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
        return GgufData { ty: GgmlType::F16, data: bytes, widened_to: None };
    }
    let mut bytes = Vec::with_capacity(data.len() / 32 * 34);
    for block in data.chunks_exact(32) {
        bytes.extend_from_slice(&q8_0_block(block));
    }
    GgufData { ty: GgmlType::Q8_0, data: bytes, widened_to: None }
}

/// The GGUF type [`converted_gguf`] writes a `format` weight with rows of
/// `in_features` in: `F16` for 8-bit formats and rows that do not split
/// into 32-blocks, else `Q8_0`.
pub fn converted_type(format: WeightFormat, in_features: usize) -> GgmlType {
    if !in_features.is_multiple_of(32) || format.bits_per_weight() >= 8.0 {
        GgmlType::F16
    } else {
        GgmlType::Q8_0
    }
}

/// One `Q8_0` block as llama.cpp's reference quantizer writes it: `d` =
/// max |x| / 127 (stored as f16), codes `round(x / d)` with the f32 `d`.
fn q8_0_block(x: &[f32]) -> [u8; 34] {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut out = [0u8; 34];
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    for (o, v) in out[2..].iter_mut().zip(x) {
        *o = ((v * id).round() as i8) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use qloader_format::gguf::dequantize;
    use qloader_kernels::DenseMatrix;

    fn weights(rows: usize, cols: usize) -> DenseMatrix {
        let data =
            (0..rows * cols).map(|i| ((i * 7919 % 1013) as f32 / 506.0 - 1.0) * 0.1).collect();
        DenseMatrix::new(rows, cols, data).unwrap()
    }

    fn read_back(g: &GgufData, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; n];
        dequantize(g.ty, &g.data, &mut out).unwrap();
        out
    }

    #[test]
    fn exact_layouts_read_back_as_the_same_values() {
        let w = weights(3, 512);
        for (name, ty, widened) in [
            ("f32", GgmlType::F32, None),
            ("f16", GgmlType::F16, None),
            ("int4", GgmlType::Q4_1, None),
            ("int3", GgmlType::Q4_1, Some("int4")),
            ("int2", GgmlType::Q4_1, Some("int4")),
            ("int4k", GgmlType::Q4K, None),
            ("int3k", GgmlType::Q4K, Some("int4k")),
            ("int2k", GgmlType::Q4K, Some("int4k")),
            ("nl4k", GgmlType::Iq4Xs, None),
            ("int5k", GgmlType::Q5K, None),
            ("q4_0", GgmlType::Q4_0, None),
            ("q5_0", GgmlType::Q5_0, None),
            ("q8_0", GgmlType::Q8_0, None),
            ("iq4_nl", GgmlType::Iq4Nl, None),
        ] {
            let q = LinearWeight::quantize_borrowed(&w, name.parse().unwrap());
            let g = exact_gguf(&q).unwrap_or_else(|| panic!("{name} has an exact layout"));
            assert_eq!((g.ty, g.widened_to), (ty, widened.map(|f| f.parse().unwrap())), "{name}");
            let want = q.dequantize();
            let got = read_back(&g, 3 * 512);
            for (a, b) in got.iter().zip(want.data()) {
                assert_eq!(a.to_bits(), b.to_bits(), "{name}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn formats_without_an_exact_layout_have_none() {
        for (name, rows, cols) in [
            ("int8", 2, 64),
            ("int8g32", 2, 64),
            ("int4g64", 2, 128),
            ("int4k", 2, 576),
            ("nl4k", 2, 576),
            ("int4", 2, 48),
        ] {
            let q = LinearWeight::quantize_borrowed(&weights(rows, cols), name.parse().unwrap());
            assert!(exact_gguf(&q).is_none(), "{name} {rows}×{cols}");
        }
    }

    #[test]
    fn conversion_to_q8_0_adds_a_small_fraction_of_the_formats_own_error() {
        let w = weights(4, 576);
        for name in ["int4k", "int3k", "int4g64", "nl4k"] {
            let q = LinearWeight::quantize_borrowed(&w, name.parse().unwrap());
            let g = converted_gguf(&q);
            assert_eq!(g.ty, GgmlType::Q8_0);
            let own = q.dequantize();
            let got = read_back(&g, 4 * 576);
            let mse = |a: &[f32], b: &[f32]| {
                a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>() / a.len() as f64
            };
            let added = mse(&got, own.data());
            let format_error = mse(own.data(), w.data());
            assert!(added < 0.5 * format_error, "{name}: added {added:e}, own {format_error:e}");
        }
        for (name, cols) in [("int4k", 40), ("int8", 64), ("int8g32", 64)] {
            let q = LinearWeight::quantize_borrowed(&weights(2, cols), name.parse().unwrap());
            let g = converted_gguf(&q);
            assert_eq!(g.ty, GgmlType::F16, "{name}");
            let want: Vec<f32> =
                q.dequantize().data().iter().map(|&v| f16::from_f32(v).to_f32()).collect();
            assert_eq!(read_back(&g, 2 * cols), want, "{name}: one rounding to f16");
        }
    }
}
