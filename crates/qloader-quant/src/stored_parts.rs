//! A [`LinearWeight`] as the packed-model container stores it, and back:
//! its segments (codes, scales, offsets, or plain values) as little-endian
//! bytes (see `qloader_format::packed`). Reading back checks every length,
//! so a weight built from a file is always well formed.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::sync::Arc;

use half::f16;
use qloader_format::TensorParts;

use qloader_kernels::{
    BlockMatrix, CompactMatrix, DenseMatrix, GroupedMatrix, HalfMatrix, Int8Matrix, Plain,
    StableBytes, Storage,
};

use crate::LinearWeight;

/// A weight's segments as owned little-endian bytes, ready for a
/// `PackedWriter`.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredParts {
    /// `f32` values.
    F32 {
        /// The values' bytes.
        data: Vec<u8>,
    },
    /// `f16` values.
    F16 {
        /// The values' bytes.
        data: Vec<u8>,
    },
    /// Int8 codes and one `f32` scale per row.
    Int8PerChannel {
        /// The codes.
        codes: Vec<u8>,
        /// The scales' bytes.
        scales: Vec<u8>,
    },
    /// Packed grouped codes with `f16` scales and offsets.
    Grouped {
        /// Bit width and group size.
        layout: qloader_format::grouped::GroupedLayout,
        /// The packed blocks.
        codes: Vec<u8>,
        /// The scales' bytes.
        scales: Vec<u8>,
        /// The offsets' bytes.
        offsets: Vec<u8>,
    },
    /// Compact super-blocks.
    Compact {
        /// Code width.
        layout: qloader_format::compact::CompactLayout,
        /// Every row's super-blocks.
        codes: Vec<u8>,
    },
    /// llama.cpp's 32-value blocks.
    Block {
        /// Which blocks.
        layout: qloader_format::block32::BlockLayout,
        /// Every row's blocks.
        codes: Vec<u8>,
    },
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16_bytes(v: &[f16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian `f32` bytes as values (a trailing partial value is
/// ignored; callers check the length).
pub fn f32_values(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn f16_values(b: &[u8]) -> Vec<f16> {
    b.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]])).collect()
}

impl StoredParts {
    /// Plain `f32` values (norm scales, biases, tables).
    pub fn from_f32(values: &[f32]) -> Self {
        StoredParts::F32 { data: f32_bytes(values) }
    }

    /// Borrowed as the container's [`TensorParts`].
    pub fn as_tensor_parts(&self) -> TensorParts<'_> {
        match self {
            StoredParts::F32 { data } => TensorParts::F32 { data },
            StoredParts::F16 { data } => TensorParts::F16 { data },
            StoredParts::Int8PerChannel { codes, scales } => {
                TensorParts::Int8PerChannel { codes, scales }
            }
            StoredParts::Grouped { layout, codes, scales, offsets } => {
                TensorParts::Grouped { layout: *layout, codes, scales, offsets }
            }
            StoredParts::Compact { layout, codes } => {
                TensorParts::Compact { layout: *layout, codes }
            }
            StoredParts::Block { layout, codes } => TensorParts::Block { layout: *layout, codes },
        }
    }
}

impl LinearWeight {
    /// The weight's segments as the container stores them.
    pub fn stored_parts(&self) -> StoredParts {
        match self {
            LinearWeight::F32(m) => StoredParts::F32 { data: f32_bytes(m.data()) },
            LinearWeight::F16(m) => StoredParts::F16 { data: f16_bytes(m.data()) },
            LinearWeight::Int8(m) => StoredParts::Int8PerChannel {
                codes: m.codes().iter().map(|&c| c as u8).collect(),
                scales: f32_bytes(m.scales()),
            },
            LinearWeight::Grouped(m) => StoredParts::Grouped {
                layout: m.layout(),
                codes: m.codes().to_vec(),
                scales: f16_bytes(m.scales()),
                offsets: f16_bytes(m.offsets()),
            },
            LinearWeight::Compact(m) => {
                StoredParts::Compact { layout: m.layout(), codes: m.data().to_vec() }
            }
            LinearWeight::Block(m) => {
                StoredParts::Block { layout: m.layout(), codes: m.data().to_vec() }
            }
        }
    }

    /// A `rows × cols` weight from stored segments, copied into memory the
    /// weight owns; the error says which length does not fit the shape.
    pub fn from_stored_parts(
        rows: usize,
        cols: usize,
        parts: TensorParts<'_>,
    ) -> Result<Self, String> {
        Self::from_parts_in(rows, cols, parts, None)
    }

    /// Like [`LinearWeight::from_stored_parts`], but segments that lie inside
    /// `owner` (a memory-mapped packed model) are used in place, not copied:
    /// the weight keeps `owner` alive. Segments the host cannot view in place
    /// (misaligned, or a big-endian host) are copied.
    pub fn from_mapped_parts(
        rows: usize,
        cols: usize,
        parts: TensorParts<'_>,
        owner: &Arc<dyn StableBytes>,
    ) -> Result<Self, String> {
        Self::from_parts_in(rows, cols, parts, Some(owner))
    }

    fn from_parts_in(
        rows: usize,
        cols: usize,
        parts: TensorParts<'_>,
        owner: Option<&Arc<dyn StableBytes>>,
    ) -> Result<Self, String> {
        let bad = |what: &str| format!("{what} do not fit a {rows} × {cols} {}", parts.format());
        let whole = |b: &[u8], width: usize| b.len().is_multiple_of(width);
        match parts {
            TensorParts::F32 { data } if whole(data, 4) => {
                DenseMatrix::from_storage(rows, cols, storage(data, owner, f32_values))
                    .map(LinearWeight::F32)
                    .ok_or_else(|| bad("values"))
            }
            TensorParts::F16 { data } if whole(data, 2) => {
                HalfMatrix::from_parts(rows, cols, storage(data, owner, f16_values))
                    .map(LinearWeight::F16)
                    .ok_or_else(|| bad("values"))
            }
            TensorParts::Int8PerChannel { codes, scales } if whole(scales, 4) => {
                Int8Matrix::from_parts(
                    rows,
                    cols,
                    storage(codes, owner, |b| b.iter().map(|&c| c as i8).collect()),
                    storage(scales, owner, f32_values),
                )
                .map(LinearWeight::Int8)
                .ok_or_else(|| bad("codes or scales"))
            }
            TensorParts::Grouped { layout, codes, scales, offsets }
                if whole(scales, 2) && whole(offsets, 2) =>
            {
                GroupedMatrix::from_parts(
                    rows,
                    cols,
                    layout,
                    storage(codes, owner, <[u8]>::to_vec),
                    storage(scales, owner, f16_values),
                    storage(offsets, owner, f16_values),
                )
                .map(LinearWeight::Grouped)
                .ok_or_else(|| bad("codes, scales or offsets"))
            }
            TensorParts::Compact { layout, codes } => {
                CompactMatrix::from_parts(rows, cols, layout, storage(codes, owner, <[u8]>::to_vec))
                    .map(LinearWeight::Compact)
                    .ok_or_else(|| bad("super-blocks"))
            }
            TensorParts::Block { layout, codes } => {
                BlockMatrix::from_parts(rows, cols, layout, storage(codes, owner, <[u8]>::to_vec))
                    .map(LinearWeight::Block)
                    .ok_or_else(|| bad("blocks"))
            }
            _ => Err(bad("segments of an odd byte count")),
        }
    }
}

/// `bytes` as an array of `T`: viewed in place when they lie inside `owner`
/// and the view is sound, else decoded into an owned copy.
fn storage<T: Plain>(
    bytes: &[u8],
    owner: Option<&Arc<dyn StableBytes>>,
    decode: impl Fn(&[u8]) -> Vec<T>,
) -> Storage<T> {
    let shared = owner.and_then(|o| {
        let start = (bytes.as_ptr() as usize).checked_sub(o.stable_bytes().as_ptr() as usize)?;
        Storage::shared(o, start..start.checked_add(bytes.len())?)
    });
    shared.unwrap_or_else(|| Storage::owned(decode(bytes)))
}

#[cfg(test)]
mod tests {
    use qloader_format::{PackedMeta, PackedWriter, WeightFormat};

    use super::*;

    fn matrix(rows: usize, cols: usize) -> DenseMatrix {
        let data =
            (0..rows * cols).map(|i| ((i * 7919 % 1013) as f32 / 500.0 - 1.0).sin()).collect();
        DenseMatrix::new(rows, cols, data).unwrap()
    }

    const FORMATS: [&str; 13] = [
        "f32", "f16", "int8", "int8g64", "int4", "int4g128", "int3", "int3g64", "int2", "int4k",
        "int5k", "int2k", "nl4k",
    ];

    #[test]
    fn every_format_round_trips_through_its_parts() {
        for name in FORMATS {
            let format: WeightFormat = name.parse().unwrap();
            let w = LinearWeight::quantize(matrix(3, 70), format);
            let parts = w.stored_parts();
            let back = LinearWeight::from_stored_parts(3, 70, parts.as_tensor_parts()).unwrap();
            assert_eq!(back.format(), format, "{name}");
            assert_eq!(back.dequantize(), w.dequantize(), "{name}");
            assert_eq!(back.stored_parts(), parts, "{name}");
            assert_eq!(parts.as_tensor_parts().byte_len(), w.storage_bytes(), "{name}");
        }
    }

    #[test]
    fn parts_that_do_not_fit_the_shape_are_errors() {
        let w = LinearWeight::quantize(matrix(3, 70), "int4".parse().unwrap());
        let parts = w.stored_parts();
        let err = LinearWeight::from_stored_parts(4, 70, parts.as_tensor_parts()).unwrap_err();
        assert!(err.contains("4 × 70 int4"), "{err}");
        let odd = StoredParts::F16 { data: vec![0; 3] };
        assert!(LinearWeight::from_stored_parts(1, 1, odd.as_tensor_parts()).is_err());
    }

    #[test]
    fn weights_survive_a_packed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.qlm");
        let weights: Vec<(String, LinearWeight)> = FORMATS
            .iter()
            .map(|n| (n.to_string(), LinearWeight::quantize(matrix(5, 129), n.parse().unwrap())))
            .collect();
        let parts: Vec<StoredParts> = weights.iter().map(|(_, w)| w.stored_parts()).collect();
        let mut writer = PackedWriter::new(PackedMeta::default());
        for ((name, _), p) in weights.iter().zip(&parts) {
            writer.add_tensor(name.clone(), 5, 129, p.as_tensor_parts());
        }
        writer.write(&path).unwrap();
        let file = qloader_format::PackedFile::open(&path).unwrap();
        file.verify_all().unwrap();
        let owner: Arc<dyn StableBytes> = file.shared_map();
        let mut mapped = Vec::new();
        for (name, w) in &weights {
            let view = file.tensor(name).unwrap();
            let back = LinearWeight::from_stored_parts(5, 129, view.parts()).unwrap();
            assert_eq!(back.dequantize(), w.dequantize(), "{name}");
            assert!(!back.is_mapped());
            let in_place = LinearWeight::from_mapped_parts(5, 129, view.parts(), &owner).unwrap();
            assert_eq!(in_place.dequantize(), w.dequantize(), "{name}");
            assert_eq!(in_place.is_mapped(), cfg!(target_endian = "little"), "{name}");
            mapped.push(in_place);
        }
        // The weights keep the map alive after the file handle is gone.
        drop((file, owner));
        for ((name, w), m) in weights.iter().zip(&mapped) {
            let x: Vec<f32> = (0..129 * 2).map(|i| (i as f32 * 0.37).cos()).collect();
            let (mut a, mut b) = (vec![0.0; 10], vec![0.0; 10]);
            w.matmul(&x, 2, &mut a);
            m.matmul(&x, 2, &mut b);
            assert_eq!(a, b, "{name}");
        }
    }
}
