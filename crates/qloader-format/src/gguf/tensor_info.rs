//! GGUF tensor infos: decoding one entry (name, dimensions, type, offset)
//! with its byte length computed and overflow-checked, and checking that all
//! tensors' data lie aligned, inside the file and without overlapping.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use super::reader::{ReadResult, Reader};
use super::types::GgmlType;

/// Most dimensions a GGML tensor can have.
pub const MAX_DIMS: u32 = 4;

/// One tensor's entry in the GGUF header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`, ...).
    pub name: String,
    /// Dimensions in GGUF order: `dims[0]` is the innermost (contiguous) one.
    pub dims: Vec<u64>,
    /// Element type of the stored data.
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the data section, as stored.
    pub offset: u64,
    /// Length of the data in bytes, computed from the type and dimensions.
    pub byte_len: usize,
}

impl GgufTensorInfo {
    /// Dimensions outermost first (row-major), i.e. `dims` reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect()
    }

    /// Number of elements (the product of the dimensions; checked not to
    /// overflow when the file was opened).
    pub fn elements(&self) -> usize {
        self.dims
            .iter()
            .fold(1usize, |n, &d| n.saturating_mul(usize::try_from(d).unwrap_or(usize::MAX)))
    }
}

/// Decodes tensor info number `index` at the reader's position.
pub(crate) fn read_tensor_info(r: &mut Reader<'_>, index: u64) -> ReadResult<GgufTensorInfo> {
    let name = r.string().map_err(|e| format!("tensor #{index}: name: {e}"))?.to_owned();
    let ctx = |e: String| format!("tensor `{name}`: {e}");
    let n_dims = r.u32().map_err(ctx)?;
    if !(1..=MAX_DIMS).contains(&n_dims) {
        return Err(ctx(format!("{n_dims} dimensions, expected 1 to {MAX_DIMS}")));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for k in 0..n_dims {
        let at = r.position();
        let d = r.u64().map_err(ctx)?;
        if d == 0 {
            return Err(ctx(format!("dimension {k} is 0 (offset {at})")));
        }
        dims.push(d);
    }
    let type_at = r.position();
    let id = r.u32().map_err(ctx)?;
    let ggml_type = GgmlType::try_from(id).map_err(|e| ctx(format!("{e} (offset {type_at})")))?;
    let offset = r.u64().map_err(ctx)?;
    let byte_len = byte_len(&dims, ggml_type).map_err(ctx)?;
    Ok(GgufTensorInfo { name, dims, ggml_type, offset, byte_len })
}

/// Bytes taken by a tensor of `dims` (innermost first) and type `ty`: the
/// innermost dimension must be a whole number of blocks, and neither the
/// element count nor the byte count may overflow.
fn byte_len(dims: &[u64], ty: GgmlType) -> Result<usize, String> {
    let elements = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    let elements = elements.and_then(|n| usize::try_from(n).ok());
    if elements.is_none() {
        return Err(format!("dimensions {dims:?} overflow the element count"));
    }
    let inner = dims.first().copied().unwrap_or(1);
    let row = ty.row_bytes(inner).map_err(|e| format!("innermost dimension: {e}"))?;
    let rows = dims.iter().skip(1).try_fold(1u64, |n, &d| n.checked_mul(d));
    rows.and_then(|rows| rows.checked_mul(row))
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("dimensions {dims:?} of {ty} overflow the byte count"))
}

/// Checks every tensor's data range: offset a multiple of `alignment`,
/// `[data_start + offset, + byte_len)` inside a file of `file_len` bytes, and
/// no two ranges overlapping.
pub(crate) fn check_layout(
    tensors: &[GgufTensorInfo],
    data_start: usize,
    alignment: usize,
    file_len: usize,
) -> Result<(), String> {
    for t in tensors {
        if t.offset.checked_rem(alignment as u64) != Some(0) {
            return Err(format!(
                "tensor `{}`: data offset {} is not a multiple of the alignment {alignment}",
                t.name, t.offset
            ));
        }
        let start = usize::try_from(t.offset).ok().and_then(|o| o.checked_add(data_start));
        let end = start.and_then(|s| s.checked_add(t.byte_len));
        if end.is_none_or(|e| e > file_len) {
            return Err(format!(
                "tensor `{}`: {} bytes of data at offset {} (absolute {}) run past the end of \
                 the file ({file_len} bytes)",
                t.name,
                t.byte_len,
                t.offset,
                u128::from(t.offset) + data_start as u128
            ));
        }
    }
    let mut order: Vec<&GgufTensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        // In bounds of the file (checked above), so these cannot overflow.
        let a_end = a.offset + a.byte_len as u64;
        if a_end > b.offset {
            return Err(format!(
                "tensors `{}` (data {}..{a_end}) and `{}` (data {}..{}) overlap",
                a.name,
                a.offset,
                b.name,
                b.offset,
                b.offset + b.byte_len as u64
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, dims: &[u64], ty: GgmlType, offset: u64) -> GgufTensorInfo {
        let byte_len = byte_len(dims, ty).unwrap();
        GgufTensorInfo { name: name.into(), dims: dims.to_vec(), ggml_type: ty, offset, byte_len }
    }

    #[test]
    fn shape_is_reversed_dims() {
        let t = info("w", &[64, 3, 2], GgmlType::Q4_1, 0);
        assert_eq!(t.shape(), vec![2, 3, 64]);
        assert_eq!(t.elements(), 384);
        assert_eq!(t.byte_len, 6 * 2 * 20);
    }

    #[test]
    fn byte_len_rejects_partial_blocks_and_overflow() {
        let err = byte_len(&[33, 2], GgmlType::Q8_0).unwrap_err();
        assert!(err.contains("innermost dimension: 33 elements is not a multiple"), "{err}");
        assert!(byte_len(&[u64::MAX, 2], GgmlType::F32).is_err());
        assert!(byte_len(&[1 << 32, 1 << 32], GgmlType::F32).is_err());
        assert!(byte_len(&[1 << 40, 1 << 22], GgmlType::F32).is_err());
    }

    #[test]
    fn layout_checks_alignment_bounds_and_overlap() {
        let a = info("a", &[8], GgmlType::F32, 0);
        let b = info("b", &[8], GgmlType::F32, 32);
        assert_eq!(check_layout(&[a.clone(), b.clone()], 64, 32, 128), Ok(()));
        let err = check_layout(&[a.clone(), b.clone()], 64, 32, 127).unwrap_err();
        assert!(err.contains("tensor `b`: 32 bytes of data at offset 32 (absolute 96)"), "{err}");
        let c = info("c", &[16], GgmlType::F32, 0);
        let err = check_layout(&[b, c], 64, 32, 1024).unwrap_err();
        assert!(err.contains("tensors `c` (data 0..64) and `b` (data 32..64) overlap"), "{err}");
        assert!(check_layout(&[a.clone(), a.clone()], 64, 32, 1024).is_err());
        let d = info("d", &[8], GgmlType::F32, 16);
        let err = check_layout(&[d], 64, 32, 1024).unwrap_err();
        assert!(err.contains("offset 16 is not a multiple of the alignment 32"), "{err}");
        let e = info("e", &[8], GgmlType::F32, u64::MAX - 31);
        assert!(check_layout(&[e], 64, 32, 1024).is_err());
    }
}
