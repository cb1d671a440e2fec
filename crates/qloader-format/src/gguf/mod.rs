//! GGUF (versions 2 and 3) model files: a memory-mapped [`GgufFile`] whose
//! header has been fully validated at open time, typed access to its
//! metadata, and tensors de-quantized to `f32`.
//!
//! Validation happens before anything is allocated from a header field:
//! counts and lengths are bounded by the bytes left in the file, dimensions
//! and byte lengths are overflow-checked, and every tensor's data is checked
//! to be aligned, inside the file and not overlapping another's. After
//! [`GgufFile::open`] succeeds, reading a tensor cannot go out of bounds.
//!
//! The layout follows the GGUF specification (ggml `docs/gguf.md`); the block
//! formats are described in [`dequant`].
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{FormatError, Result};
use crate::safetensors_file::TensorF32;

pub mod dequant;
mod dequant_iq;
mod iq_grids;
pub mod layouts;
pub mod metadata;
mod parse;
mod reader;
pub mod tensor_info;
pub mod types;
pub mod writer;

#[cfg(test)]
mod tests;

pub use dequant::{can_dequantize, dequantize};
pub use metadata::MetadataValue;
pub use parse::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
pub use tensor_info::GgufTensorInfo;
pub use types::{GgmlType, UnknownGgmlType};
pub use writer::{write_gguf, write_gguf_streamed, GgufTensorOut, GgufTensorSpec};

use parse::Parsed;

/// A GGUF file, memory-mapped, with a validated header.
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    header: Parsed,
}

impl GgufFile {
    /// Maps `path` and validates its header and data layout.
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            File::open(path).map_err(|error| FormatError::Io { path: path.to_owned(), error })?;
        // SAFETY: the map is read-only and private to this process. Another
        // process truncating the file while it is mapped could fault the
        // reader; that is the accepted contract of memory-mapped model files.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|error| FormatError::Io { path: path.to_owned(), error })?;
        let header = parse::parse(&map)
            .map_err(|reason| FormatError::Gguf { path: path.to_owned(), reason })?;
        Ok(Self { path: path.to_owned(), map, header })
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Alignment of the data section and of tensor offsets: `general.alignment`
    /// or 32; always a power of two.
    pub fn alignment(&self) -> usize {
        self.header.alignment
    }

    /// All metadata entries, in file order.
    pub fn metadata(&self) -> &[(String, MetadataValue)] {
        self.header.metadata.entries()
    }

    /// The value of metadata `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.header.metadata.get(key)
    }

    /// Metadata `key` as a non-negative integer (stored as any integer type).
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.header.metadata.get_u64(key).map_err(|r| self.error(r))
    }

    /// Metadata `key` as a non-negative integer that fits `usize`.
    pub fn get_usize(&self, key: &str) -> Result<usize> {
        self.header.metadata.get_usize(key).map_err(|r| self.error(r))
    }

    /// Metadata `key` as a float (stored as F32 or F64).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.header.metadata.get_f32(key).map_err(|r| self.error(r))
    }

    /// Metadata `key` as a string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.header.metadata.get_str(key).map_err(|r| self.error(r))
    }

    /// Metadata `key` as an array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>> {
        self.header.metadata.get_str_array(key).map_err(|r| self.error(r))
    }

    /// Metadata `key` as an array of integers (any integer type, each within
    /// `i32` range).
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>> {
        self.header.metadata.get_i32_array(key).map_err(|r| self.error(r))
    }

    /// Metadata `key` as an array of floats (F32 or F64).
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>> {
        self.header.metadata.get_f32_array(key).map_err(|r| self.error(r))
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.header.tensors
    }

    /// The info of tensor `name`, or a `MissingTensor` error.
    pub fn tensor(&self, name: &str) -> Result<&GgufTensorInfo> {
        self.header.tensor_index.get(name).and_then(|&i| self.header.tensors.get(i)).ok_or_else(
            || FormatError::MissingTensor { path: self.path.clone(), tensor: name.to_owned() },
        )
    }

    /// The stored bytes of a tensor of this file (checked at open to lie in the
    /// file). An info that does not describe data inside this file (one made
    /// by hand or taken from another file) gives an empty slice.
    pub fn tensor_bytes(&self, info: &GgufTensorInfo) -> &[u8] {
        let start =
            usize::try_from(info.offset).ok().and_then(|o| o.checked_add(self.header.data_start));
        let range = start.and_then(|s| Some(s..s.checked_add(info.byte_len)?));
        range.and_then(|r| self.map.get(r)).unwrap_or(&[])
    }

    /// Tensor `name` de-quantized to `f32`, with its shape outermost first.
    pub fn tensor_f32(&self, name: &str) -> Result<TensorF32> {
        let info = self.tensor(name)?;
        if !can_dequantize(info.ggml_type) {
            return Err(self.error(format!(
                "tensor `{name}`: type {} is recognised but cannot be de-quantized yet",
                info.ggml_type
            )));
        }
        let mut data = vec![0f32; info.elements()];
        dequantize(info.ggml_type, self.tensor_bytes(info), &mut data)
            .map_err(|e| self.error(format!("tensor `{name}`: {e}")))?;
        Ok(TensorF32 { shape: info.shape(), data })
    }

    fn error(&self, reason: String) -> FormatError {
        FormatError::Gguf { path: self.path.clone(), reason }
    }
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.header.version)
            .field("metadata_entries", &self.header.metadata.entries().len())
            .field("tensors", &self.header.tensors.len())
            .field("alignment", &self.header.alignment)
            .field("data_start", &self.header.data_start)
            .finish()
    }
}
