//! Writing GGUF files (version 3): metadata, tensor infos and the data
//! section, each tensor at the next multiple of the alignment — the layout
//! [`super::parse`] reads back. The file is written atomically (a temporary
//! beside the destination, renamed when complete), so a failed export never
//! leaves a file that looks whole.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::io::Write;
use std::path::Path;

use super::{GgmlType, MetadataValue, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
use crate::atomic_file::write_atomic_with;
use crate::error::{FormatError, Result};

/// One tensor to write.
#[derive(Debug, Clone)]
pub struct GgufTensorOut {
    /// Its name.
    pub name: String,
    /// Dimensions in GGUF order, innermost (the row length) first.
    pub dims: Vec<u64>,
    /// Its type.
    pub ty: GgmlType,
    /// Its bytes in that type's layout.
    pub data: Vec<u8>,
}

impl GgufTensorOut {
    /// The bytes `dims` take in `ty`, or why they cannot be stored in it.
    fn expected_bytes(&self) -> std::result::Result<u64, String> {
        let (&row, rest) = self.dims.split_first().ok_or("no dimensions")?;
        let rows =
            rest.iter().try_fold(1u64, |n, &d| n.checked_mul(d)).ok_or("dimensions overflow")?;
        self.ty.row_bytes(row)?.checked_mul(rows).ok_or_else(|| "dimensions overflow".to_owned())
    }
}

/// Writes a GGUF file at `path` holding `metadata` (in order; the alignment
/// is [`DEFAULT_ALIGNMENT`] unless `general.alignment` says otherwise) and
/// `tensors`. Returns the file's size. Errors name the file and, for a
/// tensor whose bytes do not match its shape and type, the tensor.
pub fn write_gguf(
    path: &Path,
    metadata: &[(String, MetadataValue)],
    tensors: &[GgufTensorOut],
) -> Result<u64> {
    let invalid = |reason: String| FormatError::Gguf { path: path.to_owned(), reason };
    let alignment = match metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
        Some((_, v)) => v
            .as_u64()
            .and_then(|a| usize::try_from(a).ok())
            .filter(|a| a.is_power_of_two())
            .ok_or_else(|| invalid(format!("{ALIGNMENT_KEY} {v:?} is not a power of two")))?,
        None => DEFAULT_ALIGNMENT,
    };
    for (key, value) in metadata {
        if !homogeneous(value) {
            return Err(invalid(format!("metadata `{key}`: an array mixes element types")));
        }
    }
    for t in tensors {
        let want = t.expected_bytes().map_err(|e| invalid(format!("tensor `{}`: {e}", t.name)))?;
        if want != t.data.len() as u64 {
            return Err(invalid(format!(
                "tensor `{}`: {} bytes, but {:?} of {} take {want}",
                t.name,
                t.data.len(),
                t.dims,
                t.ty
            )));
        }
    }
    let header = header_bytes(metadata, tensors, alignment);
    let mut written = header.len() as u64;
    write_atomic_with(path, |out| {
        out.write_all(&header)?;
        for t in tensors {
            let pad = padding(written, alignment);
            out.write_all(&vec![0u8; pad])?;
            out.write_all(&t.data)?;
            written += (pad + t.data.len()) as u64;
        }
        Ok(())
    })
    .map_err(|error| FormatError::Io { path: path.to_owned(), error })?;
    Ok(written)
}

/// Whether every array in `value` holds elements of one type.
fn homogeneous(value: &MetadataValue) -> bool {
    match value {
        MetadataValue::Array(items) => {
            let first = items.first().map(MetadataValue::value_type);
            items.iter().all(|i| Some(i.value_type()) == first && homogeneous(i))
        }
        _ => true,
    }
}

/// Zero bytes from `at` to the next multiple of `alignment`.
fn padding(at: u64, alignment: usize) -> usize {
    (at.next_multiple_of(alignment as u64) - at) as usize
}

/// Magic, version, counts, metadata and tensor infos, padded to the
/// alignment (the data section's start).
fn header_bytes(
    metadata: &[(String, MetadataValue)],
    tensors: &[GgufTensorOut],
    alignment: usize,
) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        put_string(&mut out, key);
        out.extend_from_slice(&value.value_type().to_le_bytes());
        put_value(&mut out, value);
    }
    let mut offset = 0u64;
    for t in tensors {
        offset += padding(offset, alignment) as u64;
        put_string(&mut out, &t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.ty.id().to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += t.data.len() as u64;
    }
    let pad = padding(out.len() as u64, alignment);
    out.resize(out.len() + pad, 0);
    out
}

/// A GGUF string: `u64` length, then UTF-8 bytes.
pub(crate) fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A value without its type id (arrays: element type, count, elements; an
/// empty array is written as one of `uint8`).
pub(crate) fn put_value(out: &mut Vec<u8>, value: &MetadataValue) {
    use MetadataValue as V;
    match value {
        V::U8(v) => out.push(*v),
        V::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::Bool(v) => out.push(u8::from(*v)),
        V::String(s) => put_string(out, s),
        V::Array(items) => {
            let elem = items.first().map_or(0, MetadataValue::value_type);
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item);
            }
        }
    }
}

/// `metadata` as a tensor-less GGUF file's bytes: how a packed model keeps
/// its source's metadata for a later export ([`read_metadata`] reads it).
pub fn metadata_file_bytes(metadata: &[(String, MetadataValue)]) -> Vec<u8> {
    header_bytes(metadata, &[], DEFAULT_ALIGNMENT)
}

/// The metadata of a GGUF file held in `bytes` (validated as
/// [`super::GgufFile::open`] validates a file).
pub fn read_metadata(bytes: &[u8]) -> std::result::Result<Vec<(String, MetadataValue)>, String> {
    Ok(super::parse::parse(bytes)?.metadata.entries().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;

    fn metadata() -> Vec<(String, MetadataValue)> {
        vec![
            ("general.architecture".into(), MetadataValue::String("llama".into())),
            ("llama.block_count".into(), MetadataValue::U32(2)),
            (
                "tokenizer.ggml.tokens".into(),
                MetadataValue::Array(vec![
                    MetadataValue::String("a".into()),
                    MetadataValue::String("b".into()),
                ]),
            ),
            ("general.alignment".into(), MetadataValue::U32(64)),
        ]
    }

    #[test]
    fn a_written_file_reads_back_field_for_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        let f32s: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let q4_1: Vec<u8> = (0..2 * 20).map(|i| i as u8).collect();
        let tensors = vec![
            GgufTensorOut { name: "norm".into(), dims: vec![6], ty: GgmlType::F32, data: f32s },
            GgufTensorOut { name: "w".into(), dims: vec![32, 2], ty: GgmlType::Q4_1, data: q4_1 },
        ];
        let bytes = write_gguf(&path, &metadata(), &tensors).unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        let file = GgufFile::open(&path).unwrap();
        assert_eq!(file.metadata(), &metadata()[..]);
        assert_eq!(file.alignment(), 64);
        for t in &tensors {
            let info = file.tensor(&t.name).unwrap();
            assert_eq!((info.ggml_type, file.tensor_bytes(info)), (t.ty, &t.data[..]));
            assert_eq!(info.offset % 64, 0);
        }
        assert_eq!(file.tensor("norm").unwrap().shape(), [6]);
        assert_eq!(file.tensor("w").unwrap().shape(), [2, 32]);
    }

    #[test]
    fn metadata_alone_round_trips_through_bytes() {
        let bytes = metadata_file_bytes(&metadata());
        assert_eq!(read_metadata(&bytes).unwrap(), metadata());
        assert!(read_metadata(&bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn bad_tensors_and_metadata_are_errors_naming_them_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.gguf");
        let short = GgufTensorOut {
            name: "w".into(),
            dims: vec![32, 2],
            ty: GgmlType::Q4_1,
            data: vec![0; 39],
        };
        let err = write_gguf(&path, &[], &[short]).unwrap_err().to_string();
        assert!(err.contains("bad.gguf") && err.contains("tensor `w`: 39 bytes"), "{err}");
        let ragged =
            GgufTensorOut { name: "r".into(), dims: vec![33], ty: GgmlType::Q4_1, data: vec![] };
        let err = write_gguf(&path, &[], &[ragged]).unwrap_err().to_string();
        assert!(err.contains("tensor `r`: 33 elements is not a multiple"), "{err}");
        let mixed = MetadataValue::Array(vec![MetadataValue::U8(1), MetadataValue::U32(2)]);
        let err = write_gguf(&path, &[("k".into(), mixed)], &[]).unwrap_err().to_string();
        assert!(err.contains("metadata `k`"), "{err}");
        let odd = [(ALIGNMENT_KEY.to_owned(), MetadataValue::U32(48))];
        assert!(write_gguf(&path, &odd, &[]).unwrap_err().to_string().contains("power of two"));
        assert!(!path.exists());
    }
}
