//! Writing a packed model: [`PackedWriter`] collects borrowed blobs and
//! tensors, lays them out, validates the result with the reader's rules, and
//! streams it to a temporary file that is synced and renamed over the target.
//! The model is never assembled in memory; only the header is.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::io::{self, Write};
use std::path::Path;

use super::layout::{align_up, TensorParts};
use super::schema::{PlanRef, QuantRecord, RawBlob, RawHeader, RawSegment, RawTensor};
use super::validate::{validate_header, Problem};
use super::{MAGIC, MAX_HEADER_LEN, PREAMBLE_LEN, SCHEMA, VERSION};
use crate::atomic_file::write_atomic_with;
use crate::error::{FormatError, Result};

/// The header fields of a packed model other than its blobs and tensors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackedMeta {
    /// The program that writes the file, e.g. `"qloader 0.1.0"`.
    pub created_by: String,
    /// The model family the loader should build (`llama`, `bert`, ...).
    pub architecture: String,
    /// The model's hyper-parameters, in whatever JSON the loader reads.
    pub config: serde_json::Value,
    /// The plan the weights were quantized by, if any.
    pub plan: Option<PlanRef>,
    /// How their codes were chosen, if recorded.
    pub quantization: Option<QuantRecord>,
}

struct PendingTensor<'a> {
    name: String,
    rows: usize,
    cols: usize,
    parts: TensorParts<'a>,
}

/// Builds a packed model from borrowed bytes and writes it atomically.
///
/// Inputs are checked when [`PackedWriter::write`] runs (so that errors can
/// name the target file): names unique and non-empty, shapes non-zero and
/// within limits, and every segment exactly as long as its format and shape
/// require. A writer that succeeds produces a file [`super::PackedFile`]
/// accepts.
pub struct PackedWriter<'a> {
    meta: PackedMeta,
    blobs: Vec<(String, &'a [u8])>,
    tensors: Vec<PendingTensor<'a>>,
}

impl<'a> PackedWriter<'a> {
    /// A writer with no blobs and no tensors.
    pub fn new(meta: PackedMeta) -> Self {
        Self { meta, blobs: Vec::new(), tensors: Vec::new() }
    }

    /// Adds an opaque blob (e.g. `config.json`, `tokenizer.json`).
    pub fn add_blob(&mut self, name: impl Into<String>, bytes: &'a [u8]) -> &mut Self {
        self.blobs.push((name.into(), bytes));
        self
    }

    /// Adds a `rows × cols` tensor stored as `parts`.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        parts: TensorParts<'a>,
    ) -> &mut Self {
        self.tensors.push(PendingTensor { name: name.into(), rows, cols, parts });
        self
    }

    /// Validates the model and writes it to `path` atomically: to a temporary
    /// file in the same directory, synced, then renamed over `path`. On any
    /// error the temporary is removed and `path` is left as it was. Returns
    /// the file's length in bytes.
    pub fn write(&self, path: &Path) -> Result<u64> {
        let (mut header, pieces, data_len) = self.layout().map_err(|p| p.at(path))?;
        validate_header(&header, data_len).map_err(|p| p.at(path))?;

        // Checksums, now that the input is known to be well-formed.
        for (raw, (_, bytes)) in header.blobs.iter_mut().zip(&self.blobs) {
            raw.crc32 = crc32fast::hash(bytes);
        }
        for (raw, t) in header.tensors.iter_mut().zip(&self.tensors) {
            let mut hasher = crc32fast::Hasher::new();
            for (_, bytes) in t.parts.segments() {
                hasher.update(bytes);
            }
            raw.crc32 = hasher.finalize();
        }

        let json = serde_json::to_vec(&header)
            .map_err(|e| Problem::File(format!("header cannot be serialized: {e}")).at(path))?;
        let json_len = json.len() as u64;
        if json_len > MAX_HEADER_LEN {
            return Err(Problem::File(format!(
                "header is {json_len} bytes, more than the limit of {MAX_HEADER_LEN}"
            ))
            .at(path));
        }
        let data_start = align_up(PREAMBLE_LEN as u64 + json_len)
            .ok_or_else(|| Problem::File("file size overflows".to_owned()).at(path))?;
        let file_len = data_start
            .checked_add(data_len)
            .ok_or_else(|| Problem::File("file size overflows".to_owned()).at(path))?;

        let mut preamble = [0u8; PREAMBLE_LEN];
        preamble[..8].copy_from_slice(&MAGIC);
        preamble[8..12].copy_from_slice(&VERSION.to_le_bytes());
        preamble[12..16].copy_from_slice(&0u32.to_le_bytes());
        preamble[16..24].copy_from_slice(&json_len.to_le_bytes());

        write_atomic_with(path, |out| {
            write_to(out, &preamble, &json, data_start, &pieces, file_len)
        })
        .map_err(|error| FormatError::Write { path: path.to_owned(), error })?;
        Ok(file_len)
    }

    /// The header (checksums still zero), the byte strings to write with their
    /// offsets in the data section, in order, and the data section's length.
    #[allow(clippy::type_complexity)]
    fn layout(&self) -> Result<(RawHeader, Vec<(u64, &'a [u8])>, u64), Problem> {
        let overflow = || Problem::File("data section size overflows".to_owned());
        let mut pieces = Vec::new();
        let mut cursor = 0u64;
        let mut end = 0u64;
        let mut place = |bytes: &'a [u8]| -> Result<(u64, u64), Problem> {
            let offset = align_up(cursor).ok_or_else(overflow)?;
            let len = bytes.len() as u64;
            end = offset.checked_add(len).ok_or_else(overflow)?;
            cursor = end;
            pieces.push((offset, bytes));
            Ok((offset, len))
        };

        let mut blobs = Vec::with_capacity(self.blobs.len());
        for (name, bytes) in &self.blobs {
            let (offset, len) = place(bytes)?;
            blobs.push(RawBlob { name: name.clone(), offset, len, crc32: 0 });
        }
        let mut tensors = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let mut segments = Vec::new();
            for (role, bytes) in t.parts.segments() {
                let (offset, len) = place(bytes)?;
                segments.push(RawSegment { role: role.name().to_owned(), offset, len });
            }
            tensors.push(RawTensor {
                name: t.name.clone(),
                shape: vec![t.rows as u64, t.cols as u64],
                format: t.parts.format().name(),
                segments,
                crc32: 0,
            });
        }
        let header = RawHeader {
            schema: SCHEMA.to_owned(),
            version: VERSION,
            created_by: self.meta.created_by.clone(),
            architecture: self.meta.architecture.clone(),
            config: self.meta.config.clone(),
            plan: self.meta.plan.clone(),
            quantization: self.meta.quantization.clone(),
            blobs,
            tensors,
        };
        Ok((header, pieces, end))
    }
}

/// Streams the file's bytes into `out`.
fn write_to(
    out: &mut impl Write,
    preamble: &[u8],
    json: &[u8],
    data_start: u64,
    pieces: &[(u64, &[u8])],
    file_len: u64,
) -> io::Result<()> {
    out.write_all(preamble)?;
    out.write_all(json)?;
    let mut pos = (preamble.len() + json.len()) as u64;
    pad_to(out, &mut pos, data_start)?;
    for &(offset, bytes) in pieces {
        pad_to(out, &mut pos, data_start + offset)?;
        out.write_all(bytes)?;
        pos += bytes.len() as u64;
    }
    if pos != file_len {
        return Err(io::Error::other(format!("wrote {pos} bytes where the layout has {file_len}")));
    }
    Ok(())
}

/// Writes zero bytes until `*pos` reaches `target`.
fn pad_to(out: &mut impl Write, pos: &mut u64, target: u64) -> io::Result<()> {
    const ZEROS: [u8; 64] = [0; 64];
    while *pos < target {
        let n = (target - *pos).min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..n])?;
        *pos += n as u64;
    }
    Ok(())
}
