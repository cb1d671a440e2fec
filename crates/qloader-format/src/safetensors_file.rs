//! A memory-mapped safetensors file whose header has been validated.
//!
//! The header is parsed once at open time by the `safetensors` crate, which
//! checks the header size cap, that tensor offsets are contiguous, that each
//! tensor's byte length matches its shape and dtype, and that the data ends
//! exactly at the end of the file (so a truncated file is rejected before any
//! tensor is read). Tensor bytes are only read from the map on request.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use safetensors::SafeTensors;

use crate::error::{FormatError, Result};

/// Size of the little-endian header-length prefix of a safetensors file.
const HEADER_LEN_PREFIX: usize = 8;

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
            File::open(path).map_err(|source| FormatError::Io { path: path.to_owned(), source })?;
        // SAFETY: the map is read-only and private to this process. Another
        // process truncating the file while it is mapped could fault the
        // reader; that is the accepted contract of memory-mapped model files.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|source| FormatError::Io { path: path.to_owned(), source })?;
        let (header_len, metadata) = SafeTensors::read_metadata(&map).map_err(|e| {
            FormatError::Safetensors { path: path.to_owned(), reason: describe_error(&e) }
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

fn describe_error(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall => "file is shorter than the 8-byte header length".to_owned(),
        E::InvalidHeaderLength => {
            "header length points past the end of the file (truncated?)".to_owned()
        }
        E::MetadataIncompleteBuffer => {
            "tensor data does not end at the end of the file (truncated or padded)".to_owned()
        }
        other => other.to_string(),
    }
}
