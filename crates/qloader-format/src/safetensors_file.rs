//! A memory-mapped safetensors file whose header has been validated.
//!
//! The header is parsed once at open time by the `safetensors` crate, which
//! checks the header size cap, that tensor offsets are contiguous, that each
//! tensor's byte length matches its shape and dtype, and that the data ends
//! exactly at the end of the file (so a truncated file is rejected before any
//! tensor is read). Tensor bytes are only read from the map on request.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use safetensors::SafeTensors;

use crate::error::{FormatError, Result};

/// Size of the little-endian header-length prefix of a safetensors file.
const HEADER_LEN_PREFIX: usize = 8;

/// The largest header the `safetensors` crate accepts (its `MAX_HEADER_SIZE`,
/// which it does not export), for messages.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// A safetensors file, memory-mapped, with a validated header.
pub struct SafetensorsFile {
    path: PathBuf,
    map: Mmap,
    metadata: Metadata,
    data_start: usize,
}

/// A tensor converted to `f32`, with its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorF32 {
    /// Dimensions, outermost first (row-major).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

impl SafetensorsFile {
    /// Maps `path` and validates its header.
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            File::open(path).map_err(|error| FormatError::Io { path: path.to_owned(), error })?;
        // SAFETY: the map is read-only and private to this process. Another
        // process truncating the file while it is mapped could fault the
        // reader; that is the accepted contract of memory-mapped model files.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|error| FormatError::Io { path: path.to_owned(), error })?;
        let (header_len, metadata) = SafeTensors::read_metadata(&map).map_err(|e| {
            FormatError::Safetensors { path: path.to_owned(), reason: describe_error(&e, &map) }
        })?;
        // read_metadata has checked that header and data fill the buffer exactly.
        let data_start = HEADER_LEN_PREFIX + header_len;
        Ok(Self { path: path.to_owned(), map, metadata, data_start })
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of all tensors, in file order.
    pub fn tensor_names(&self) -> Vec<String> {
        self.metadata.offset_keys()
    }

    /// Header entry of `name`, if the file has that tensor.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.metadata.info(name)
    }

    /// The shape of `name`, or a `MissingTensor` error.
    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        Ok(&self.require(name)?.shape)
    }

    /// Reads `name` as `f32` (from F32, F16 or BF16 storage), checking that its
    /// shape is `expected`.
    pub fn tensor_f32(&self, name: &str, expected: &[usize]) -> Result<TensorF32> {
        let info = self.require(name)?;
        if info.shape != expected {
            return Err(FormatError::ShapeMismatch {
                path: self.path.clone(),
                tensor: name.to_owned(),
                expected: expected.to_vec(),
                got: info.shape.clone(),
            });
        }
        let bytes = self.bytes(name, info)?;
        let data = match info.dtype {
            Dtype::F32 => decode(bytes, |b: [u8; 4]| f32::from_le_bytes(b)),
            Dtype::F16 => decode(bytes, |b: [u8; 2]| half::f16::from_le_bytes(b).to_f32()),
            Dtype::BF16 => decode(bytes, |b: [u8; 2]| half::bf16::from_le_bytes(b).to_f32()),
            other => {
                return Err(FormatError::UnexpectedDtype {
                    path: self.path.clone(),
                    tensor: name.to_owned(),
                    expected: "F32, F16, BF16",
                    got: format!("{other:?}"),
                })
            }
        };
        Ok(TensorF32 { shape: info.shape.clone(), data })
    }

    fn require(&self, name: &str) -> Result<&TensorInfo> {
        self.metadata.info(name).ok_or_else(|| FormatError::MissingTensor {
            path: self.path.clone(),
            tensor: name.to_owned(),
        })
    }

    fn bytes(&self, name: &str, info: &TensorInfo) -> Result<&[u8]> {
        let (start, end) = info.data_offsets;
        let range = self
            .data_start
            .checked_add(start)
            .zip(self.data_start.checked_add(end))
            .filter(|(s, e)| s <= e);
        range.and_then(|(s, e)| self.map.get(s..e)).ok_or_else(|| FormatError::Safetensors {
            path: self.path.clone(),
            reason: format!("tensor `{name}` data offsets {start}..{end} lie outside the file"),
        })
    }
}

/// Decodes little-endian elements of `N` bytes each.
fn decode<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

/// What is wrong with `bytes` (the whole file), from the safetensors
/// crate's error, with the numbers and the tensor's name where that error
/// leaves them out.
fn describe_error(e: &safetensors::SafeTensorError, bytes: &[u8]) -> String {
    use safetensors::SafeTensorError as E;
    let header_len =
        bytes.get(..HEADER_LEN_PREFIX).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    let file_len = bytes.len();
    match (e, header_len) {
        (E::HeaderTooSmall, _) => format!(
            "file is {file_len} bytes, shorter than the {HEADER_LEN_PREFIX}-byte header length"
        ),
        (E::HeaderTooLarge, Some(n)) => {
            format!("header length {n} exceeds the limit of {MAX_HEADER_LEN} bytes")
        }
        (E::InvalidHeaderLength, Some(n)) => format!(
            "header length {n} runs past the end of the file ({file_len} bytes; truncated?)"
        ),
        (E::MetadataIncompleteBuffer, _) => {
            "tensor data does not end at the end of the file (truncated or padded)".to_owned()
        }
        (
            E::InvalidOffset(_) | E::TensorInvalidInfo | E::ValidationOverflow | E::MisalignedSlice,
            _,
        ) => header_json(bytes)
            .and_then(|h| duplicate_name(h).or_else(|| bad_tensor(h)))
            .unwrap_or_else(|| e.to_string()),
        (other, _) => other.to_string(),
    }
}

/// The header's JSON text, once its length has been checked against the
/// crate's cap and the file.
fn header_json(bytes: &[u8]) -> Option<&[u8]> {
    let n = u64::from_le_bytes(bytes.get(..HEADER_LEN_PREFIX)?.try_into().ok()?);
    let end = usize::try_from(n).ok()?.checked_add(HEADER_LEN_PREFIX)?;
    bytes.get(HEADER_LEN_PREFIX..end)
}

/// A tensor name the header gives twice (JSON parsers keep only the last
/// of duplicate keys; the crate then reports a bad offset).
fn duplicate_name(header: &[u8]) -> Option<String> {
    struct FirstDuplicate;
    impl<'de> serde::de::Visitor<'de> for FirstDuplicate {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            // Read to the end: the deserializer rejects a map left unfinished.
            let (mut seen, mut first) = (HashSet::new(), None);
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                if first.is_none() && !seen.insert(key.clone()) {
                    first = Some(key);
                }
            }
            Ok(first)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(header);
    let name = serde::Deserializer::deserialize_map(&mut de, FirstDuplicate).ok()??;
    Some(format!("tensor `{name}` appears twice in the header"))
}

/// For the layout errors the safetensors crate reports without a tensor's
/// name (or without the numbers): the first tensor, in data order, whose
/// byte range does not follow the previous one's or does not fit its shape
/// and dtype, and why.
fn bad_tensor(header: &[u8]) -> Option<String> {
    let entries: HashMap<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    let mut infos: Vec<(String, TensorInfo)> = entries
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .filter_map(|(name, v)| Some((name, serde_json::from_value(v).ok()?)))
        .collect();
    infos.sort_by(|a, b| a.1.data_offsets.cmp(&b.1.data_offsets).then_with(|| a.0.cmp(&b.0)));
    let mut previous_end = 0;
    infos.into_iter().find_map(|(name, info)| {
        let (dtype, shape, (start, end)) = (info.dtype, &info.shape, info.data_offsets);
        if end < start {
            return Some(format!(
                "tensor `{name}`: data offsets {start}..{end} end before they start"
            ));
        }
        if start != previous_end {
            return Some(format!(
                "tensor `{name}`: data offsets {start}..{end} do not start where the previous \
                 tensor's data ends ({previous_end})"
            ));
        }
        previous_end = end;
        let bits = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.bitsize()));
        let Some(bits) = bits else {
            return Some(format!("tensor `{name}`: shape {shape:?} of {dtype:?} overflows"));
        };
        if bits % 8 != 0 {
            return Some(format!(
                "tensor `{name}`: shape {shape:?} of {dtype:?} is not a whole number of bytes"
            ));
        }
        let held = end.checked_sub(start);
        (held != Some(bits / 8)).then(|| {
            format!(
                "tensor `{name}`: data offsets {start}..{end} hold {} bytes, but shape {shape:?} \
                 of {dtype:?} takes {}",
                end.saturating_sub(start),
                bits / 8
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_tensor_given_twice() {
        let header = br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
            "a"   :{"dtype":"F32","shape":[1],"data_offsets":[4,8]},
            "b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
        assert_eq!(duplicate_name(header).unwrap(), "tensor `a` appears twice in the header");
        let header = br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert_eq!(duplicate_name(header), None);
    }
}
