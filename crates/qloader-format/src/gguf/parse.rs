//! Parsing and validating a whole GGUF header from the file's bytes: magic,
//! version, counts (bounded by the file size before anything is allocated),
//! metadata, alignment, tensor infos, and the data layout.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::HashMap;

use super::metadata::{read_value, Metadata};
use super::reader::{prealloc, ReadResult, Reader};
use super::tensor_info::{check_layout, read_tensor_info, GgufTensorInfo};

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";

/// Alignment of the data section and tensor offsets when the file does not
/// set `general.alignment`.
pub const DEFAULT_ALIGNMENT: usize = 32;

/// Metadata key overriding [`DEFAULT_ALIGNMENT`].
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// Fewest bytes a metadata entry can take: key length (u64), value type (u32)
/// and a one-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;

/// Fewest bytes a tensor info can take: name length (u64), dimension count
/// (u32), one dimension (u64), type (u32), offset (u64).
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;

/// A validated GGUF header.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub version: u32,
    pub metadata: Metadata,
    pub tensors: Vec<GgufTensorInfo>,
    pub tensor_index: HashMap<String, usize>,
    pub alignment: usize,
    pub data_start: usize,
}

/// Parses and validates the header of the GGUF file held in `bytes`.
pub(crate) fn parse(bytes: &[u8]) -> ReadResult<Parsed> {
    let mut r = Reader::new(bytes);
    let version = read_preamble(&mut r)?;
    let tensor_count = r.u64().map_err(|e| format!("tensor count: {e}"))?;
    let kv_count = r.u64().map_err(|e| format!("metadata count: {e}"))?;
    let file_len = bytes.len();
    let too_many = |what: &str, count: u64, min: u64| {
        format!(
            "{what} {count} cannot fit in the {} bytes after the counts (at least {min} bytes \
             each; file {file_len} bytes, truncated or corrupt)",
            r.remaining()
        )
    };
    let tensor_count = bounded_count(tensor_count, MIN_TENSOR_INFO_BYTES, r.remaining())
        .ok_or_else(|| too_many("tensor count", tensor_count, MIN_TENSOR_INFO_BYTES))?;
    let kv_count = bounded_count(kv_count, MIN_KV_BYTES, r.remaining())
        .ok_or_else(|| too_many("metadata key-value count", kv_count, MIN_KV_BYTES))?;

    let metadata = read_metadata(&mut r, kv_count)?;
    let alignment = alignment(&metadata)?;

    if bounded_count(tensor_count as u64, MIN_TENSOR_INFO_BYTES, r.remaining()).is_none() {
        return Err(format!(
            "tensor count {tensor_count} cannot fit in the {} bytes after the metadata \
             (offset {}, file {file_len} bytes)",
            r.remaining(),
            r.position()
        ));
    }
    let mut tensors = Vec::with_capacity(prealloc(tensor_count));
    let mut tensor_index = HashMap::with_capacity(prealloc(tensor_count));
    for i in 0..tensor_count {
        let info = read_tensor_info(&mut r, i as u64)?;
        if let Some(first) = tensor_index.insert(info.name.clone(), i) {
            return Err(format!("tensor name `{}` appears twice (#{first} and #{i})", info.name));
        }
        tensors.push(info);
    }

    let header_end = r.position();
    let data_start = header_end
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| format!("data section offset overflows (header ends at {header_end})"))?;
    if !tensors.is_empty() && data_start > file_len {
        return Err(format!(
            "data section starts at offset {data_start} (header ends at {header_end}, \
             alignment {alignment}), past the end of the file ({file_len} bytes)"
        ));
    }
    check_layout(&tensors, data_start, alignment, file_len)?;
    Ok(Parsed { version, metadata, tensors, tensor_index, alignment, data_start })
}

/// Checks the magic and returns the version (2 or 3).
fn read_preamble(r: &mut Reader<'_>) -> ReadResult<u32> {
    let magic = r.take(4).map_err(|e| format!("magic: {e}"))?;
    if magic != MAGIC {
        return Err(format!("bad magic {magic:02x?}, expected \"GGUF\" ({MAGIC:02x?})"));
    }
    let version = r.u32().map_err(|e| format!("version: {e}"))?;
    match version {
        2 | 3 => Ok(version),
        1 => Err("GGUF version 1 is not supported (it used 32-bit counts and lengths; \
                  only versions 2 and 3 are read)"
            .to_owned()),
        v if matches!(v.swap_bytes(), 2 | 3) => Err(format!(
            "version field {v:#010x} looks like a big-endian GGUF file, which is not supported"
        )),
        v => Err(format!("unknown GGUF version {v} (only versions 2 and 3 are read)")),
    }
}

/// `count` as `usize` if `count` items of at least `min_bytes` each could fit
/// in `remaining` bytes.
fn bounded_count(count: u64, min_bytes: u64, remaining: usize) -> Option<usize> {
    let needed = count.checked_mul(min_bytes)?;
    if needed > remaining as u64 {
        return None;
    }
    usize::try_from(count).ok()
}

/// Reads `count` metadata entries, rejecting duplicate keys.
fn read_metadata(r: &mut Reader<'_>, count: usize) -> ReadResult<Metadata> {
    let mut metadata = Metadata::expecting(count);
    for i in 0..count {
        let key = r.string().map_err(|e| format!("metadata key #{i}: {e}"))?.to_owned();
        let ctx = |e: String| format!("metadata key `{key}` (#{i}): {e}");
        let value_type = r.u32().map_err(ctx)?;
        let value = read_value(r, value_type, 0).map_err(ctx)?;
        metadata.push(key, value)?;
    }
    Ok(metadata)
}

/// `general.alignment` if present (a power of two), else the default.
fn alignment(metadata: &Metadata) -> ReadResult<usize> {
    if metadata.get(ALIGNMENT_KEY).is_none() {
        return Ok(DEFAULT_ALIGNMENT);
    }
    let a = metadata.get_usize(ALIGNMENT_KEY)?;
    if !a.is_power_of_two() {
        return Err(format!("metadata key `{ALIGNMENT_KEY}` is {a}, which is not a power of two"));
    }
    Ok(a)
}
