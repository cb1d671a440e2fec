//! Writing GGUF files (version 3): metadata, tensor infos and the data
//! section, each tensor at the next multiple of the alignment — the layout
//! [`super::parse`] reads back. The file is written atomically (a temporary
//! beside the destination, renamed when complete), so a failed export never
//! leaves a file that looks whole. [`write_gguf_streamed`] asks for each
//! tensor's bytes only when it writes them, so a whole model never has to
//! be in memory at once.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::borrow::Cow;
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

/// One tensor's entry in a GGUF file: everything but its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorSpec {
    /// Its name.
    pub name: String,
    /// Dimensions in GGUF order, innermost (the row length) first.
    pub dims: Vec<u64>,
    /// Its type.
    pub ty: GgmlType,
}

impl GgufTensorOut {
    /// Its entry, without the bytes.
    pub fn spec(&self) -> GgufTensorSpec {
        GgufTensorSpec { name: self.name.clone(), dims: self.dims.clone(), ty: self.ty }
    }
}

impl GgufTensorSpec {
    /// The bytes `dims` take in `ty`, or why they cannot be stored in it.
    pub fn expected_bytes(&self) -> std::result::Result<u64, String> {
        let (&row, rest) = self.dims.split_first().ok_or("no dimensions")?;
        let rows =
            rest.iter().try_fold(1u64, |n, &d| n.checked_mul(d)).ok_or("dimensions overflow")?;
        self.ty.row_bytes(row)?.checked_mul(rows).ok_or_else(|| "dimensions overflow".to_owned())
    }
}

/// Writes a GGUF file at `path` holding `metadata` (in order; the alignment
/// is [`DEFAULT_ALIGNMENT`] unless `general.alignment` says otherwise) and
/// `tensors`. Returns the file's size. Errors name the file and, for a
/// tensor whose bytes do not match its shape and type, the tensor; nothing
/// is written then.
pub fn write_gguf(
    path: &Path,
    metadata: &[(String, MetadataValue)],
    tensors: &[GgufTensorOut],
) -> Result<u64> {
    let specs: Vec<GgufTensorSpec> = tensors.iter().map(GgufTensorOut::spec).collect();
    write_gguf_streamed(path, metadata, &specs, |i| Ok(Cow::Borrowed(&tensors[i].data)))
}

/// Writes a GGUF file as [`write_gguf`] does, asking `data(i)` for the bytes
/// of `tensors[i]` only when they are written, in order, and dropping them
/// once written. An error from `data`, or bytes of the wrong length (the
/// tensor named), stops the write and leaves no file.
pub fn write_gguf_streamed<'a>(
    path: &Path,
    metadata: &[(String, MetadataValue)],
    tensors: &[GgufTensorSpec],
    mut data: impl FnMut(usize) -> Result<Cow<'a, [u8]>>,
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
    let sizes = tensors
        .iter()
        .map(|t| t.expected_bytes().map_err(|e| invalid(format!("tensor `{}`: {e}", t.name))))
        .collect::<Result<Vec<u64>>>()?;
    let header = header_bytes(metadata, tensors, &sizes, alignment);
    let mut written = header.len() as u64;
    // An error of `data` or of a length, carried through the writer's
    // io::Result and returned as itself.
    let mut failure: Option<FormatError> = None;
    let outcome = write_atomic_with(path, |out| {
        out.write_all(&header)?;
        for (i, t) in tensors.iter().enumerate() {
            let bytes = data(i)
                .and_then(|bytes| check_length(path, t, bytes.len()).map(|()| bytes))
                .map_err(|e| {
                    let message = e.to_string();
                    failure = Some(e);
                    std::io::Error::other(message)
                })?;
            let pad = padding(written, alignment);
            out.write_all(&vec![0u8; pad])?;
            out.write_all(&bytes)?;
            written += (pad + bytes.len()) as u64;
        }
        Ok(())
    });
    match (outcome, failure) {
        (Ok(()), _) => Ok(written),
        (Err(_), Some(failure)) => Err(failure),
        (Err(error), None) => Err(FormatError::Io { path: path.to_owned(), error }),
    }
}

/// Whether `len` bytes are what `spec`'s dimensions take in its type.
fn check_length(path: &Path, spec: &GgufTensorSpec, len: usize) -> Result<()> {
    let invalid = |reason: String| FormatError::Gguf { path: path.to_owned(), reason };
    let want =
        spec.expected_bytes().map_err(|e| invalid(format!("tensor `{}`: {e}", spec.name)))?;
    if want != len as u64 {
        return Err(invalid(format!(
            "tensor `{}`: {len} bytes, but {:?} of {} take {want}",
            spec.name, spec.dims, spec.ty
        )));
    }
    Ok(())
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
    tensors: &[GgufTensorSpec],
    sizes: &[u64],
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
    for (t, size) in tensors.iter().zip(sizes) {
        offset += padding(offset, alignment) as u64;
        put_string(&mut out, &t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.ty.id().to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += size;
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
    header_bytes(metadata, &[], &[], DEFAULT_ALIGNMENT)
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

    #[test]
    fn streamed_writes_the_same_file_and_a_failure_midway_leaves_none() {
        let dir = tempfile::tempdir().unwrap();
        let tensors: Vec<GgufTensorOut> = (0..3u8)
            .map(|i| GgufTensorOut {
                name: format!("t{i}"),
                dims: vec![32, 1 + i as u64],
                ty: GgmlType::Q8_0,
                data: vec![i; 34 * (1 + i as usize)],
            })
            .collect();
        let specs: Vec<GgufTensorSpec> = tensors.iter().map(GgufTensorOut::spec).collect();
        let whole = dir.path().join("whole.gguf");
        let streamed = dir.path().join("streamed.gguf");
        let n = write_gguf(&whole, &metadata(), &tensors).unwrap();
        let mut asked = Vec::new();
        let m = write_gguf_streamed(&streamed, &metadata(), &specs, |i| {
            asked.push(i);
            Ok(Cow::Owned(tensors[i].data.clone()))
        })
        .unwrap();
        assert_eq!((n, &asked[..]), (m, &[0, 1, 2][..]));
        assert_eq!(std::fs::read(&whole).unwrap(), std::fs::read(&streamed).unwrap());

        let failed = dir.path().join("failed.gguf");
        let err = write_gguf_streamed(&failed, &metadata(), &specs, |i| match i {
            2 => Err(FormatError::Gguf { path: "source".into(), reason: "no third".into() }),
            _ => Ok(Cow::Borrowed(&tensors[i].data)),
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("no third"), "{err}");
        let err = write_gguf_streamed(&failed, &metadata(), &specs, |i| {
            Ok(Cow::Borrowed(&tensors[i].data[..(if i == 1 { 10 } else { tensors[i].data.len() })]))
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("failed.gguf") && err.contains("tensor `t1`: 10 bytes"), "{err}");
        let left: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
