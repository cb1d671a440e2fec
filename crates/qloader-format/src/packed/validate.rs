//! Validation of a packed model: the preamble, the header JSON, and every
//! tensor's and blob's place in the data section. Works on bytes, not files,
//! so the reader, the writer (on the header it is about to write) and tests
//! share it. Nothing here allocates from a header field that has not been
//! checked against the bytes actually present.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::layout::{align_up, nested_segment_lengths, segment_lengths, SegmentRole};
use super::schema::{
    PlanRef, QuantRecord, RawHeader, RawHeaderV2, RawPlan, RawTensorV2, RawVariant,
};
use super::{ALIGNMENT, MAGIC, MAX_ELEMENTS, MAX_HEADER_LEN, PREAMBLE_LEN, SCHEMA, VERSION};
use crate::error::FormatError;
use crate::nested;
use crate::weight_format::WeightFormat;

/// Why a packed model (or a writer's input) is invalid, before the file's
/// path is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Something about the file or header as a whole.
    File(String),
    /// Something about one tensor.
    Tensor { tensor: String, reason: String },
    /// The preamble's version is not one this build reads (1 to [`VERSION`]).
    Version(u32),
}

impl Problem {
    pub(crate) fn tensor(tensor: &str, reason: String) -> Self {
        Problem::Tensor { tensor: tensor.to_owned(), reason }
    }

    /// The error, naming `path`.
    pub(crate) fn at(self, path: &Path) -> FormatError {
        let path = path.to_owned();
        match self {
            Problem::File(reason) => FormatError::Packed { path, reason },
            Problem::Tensor { tensor, reason } => {
                FormatError::PackedTensor { path, tensor, reason }
            }
            Problem::Version(found) => {
                FormatError::PackedVersion { path, found, supported: VERSION }
            }
        }
    }
}

/// A blob whose place in the data section has been checked.
#[derive(Debug, Clone)]
pub(crate) struct ValidBlob {
    pub name: String,
    /// Byte range relative to the data section start.
    pub range: Range<usize>,
    pub crc32: u32,
}

/// A tensor whose shape and variants have been checked.
#[derive(Debug, Clone)]
pub(crate) struct ValidTensor {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// At least one; formats distinct.
    pub variants: Vec<ValidVariant>,
}

/// One stored form of a tensor whose format and segments have been checked.
#[derive(Debug, Clone)]
pub(crate) struct ValidVariant {
    pub format: WeightFormat,
    /// For a nested variant, the variant its planes refine (listed before
    /// it, so chains end at a root and have no cycles).
    pub base: Option<usize>,
    /// The loss a plan predicted for the tensor in this variant, if recorded.
    pub predicted_loss: Option<f64>,
    /// Roles in the format's order, ranges relative to the data section start.
    pub segments: Vec<(SegmentRole, Range<usize>)>,
    pub crc32: u32,
}

/// A plan whose choice of variants has been checked.
#[derive(Debug, Clone)]
pub(crate) struct ValidPlan {
    /// Empty for the one implicit plan of a version 1 file.
    pub name: String,
    pub bits_per_weight: Option<f64>,
    /// Bytes of the variants it loads, all tensors.
    pub bytes: u64,
    pub predicted_loss: Option<f64>,
    pub plan: Option<PlanRef>,
    /// Per tensor (header order), the index of the variant it loads.
    pub variants: Vec<usize>,
}

/// A header that has been checked against the data section it describes.
#[derive(Debug, Clone)]
pub(crate) struct ValidHeader {
    pub version: u32,
    pub created_by: String,
    pub architecture: String,
    pub config: serde_json::Value,
    pub quantization: Option<QuantRecord>,
    pub blobs: Vec<ValidBlob>,
    pub tensors: Vec<ValidTensor>,
    /// At least one.
    pub plans: Vec<ValidPlan>,
    pub blob_index: HashMap<String, usize>,
    pub tensor_index: HashMap<String, usize>,
}

/// A whole file checked: its header and where its data section starts.
#[derive(Debug, Clone)]
pub(crate) struct ParsedFile {
    pub header: ValidHeader,
    pub data_start: usize,
}

/// Checks the preamble, header and layout of a complete packed model.
pub(crate) fn parse_file(bytes: &[u8]) -> Result<ParsedFile, Problem> {
    let file_len = bytes.len();
    let magic_len = file_len.min(MAGIC.len());
    if bytes.get(..magic_len) != MAGIC.get(..magic_len) {
        let shown: String = bytes
            .iter()
            .take(MAGIC.len())
            .flat_map(|&b| std::ascii::escape_default(b))
            .map(char::from)
            .collect();
        return Err(Problem::File(format!(
            "wrong magic b\"{shown}\" (expected b\"QLMODEL\\0\"): not a QLoader packed model"
        )));
    }
    let preamble: [u8; PREAMBLE_LEN] =
        bytes.get(..PREAMBLE_LEN).and_then(|p| p.try_into().ok()).ok_or_else(|| {
            Problem::File(format!(
                "file is {file_len} bytes, shorter than the {PREAMBLE_LEN}-byte preamble (truncated?)"
            ))
        })?;
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&preamble[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let version = u32_at(8);
    if !(1..=VERSION).contains(&version) {
        return Err(Problem::Version(version));
    }
    let flags = u32_at(12);
    if flags != 0 {
        return Err(Problem::File(format!(
            "flags {flags:#x} are not defined in version {version} (expected 0)"
        )));
    }
    let mut h = [0u8; 8];
    h.copy_from_slice(&preamble[16..24]);
    let header_len = u64::from_le_bytes(h);
    if header_len > MAX_HEADER_LEN {
        return Err(Problem::File(format!(
            "header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes"
        )));
    }
    let after_preamble = (file_len - PREAMBLE_LEN) as u64;
    if header_len > after_preamble {
        return Err(Problem::File(format!(
            "header length {header_len} runs past the end of the file \
             ({after_preamble} bytes after the preamble; truncated?)"
        )));
    }
    // Both fit in usize now: header_len is at most the bytes present.
    let header_end = PREAMBLE_LEN + header_len as usize;
    let data_start = align_up(header_end as u64)
        .and_then(|d| usize::try_from(d).ok())
        .filter(|&d| d <= file_len)
        .ok_or_else(|| {
            Problem::File(format!(
                "file is {file_len} bytes and ends inside the padding after the header, \
                 before the data section (truncated?)"
            ))
        })?;
    let json = bytes.get(PREAMBLE_LEN..header_end).unwrap_or_default();
    let padding = bytes.get(header_end..data_start).unwrap_or_default();
    if padding.iter().any(|&b| b != 0) {
        return Err(Problem::File(format!(
            "padding between the header and the data section (bytes {header_end}..{data_start}) is not zero"
        )));
    }
    let text = std::str::from_utf8(json)
        .map_err(|e| Problem::File(format!("header is not UTF-8: {e}")))?;
    let not_valid = |e: serde_json::Error| {
        Problem::File(format!("header is not a valid packed-model header: {e}"))
    };
    let data_len = (file_len - data_start) as u64;
    let header = if version == 1 {
        let raw: RawHeader = serde_json::from_str(text).map_err(not_valid)?;
        validate_header(&raw, data_len)?
    } else {
        let raw: RawHeaderV2 = serde_json::from_str(text).map_err(not_valid)?;
        validate_header_v2(&raw, version, data_len)?
    };
    Ok(ParsedFile { header, data_start })
}

/// One blob or segment's place, for the overlap check.
struct Span {
    start: u64,
    end: u64,
    owner: String,
}

/// Checks a version 1 header against a data section of `data_len` bytes:
/// everything but the checksums. Its tensors become single variants, loaded
/// by one implicit plan.
pub(crate) fn validate_header(raw: &RawHeader, data_len: u64) -> Result<ValidHeader, Problem> {
    let as_v2 = RawHeaderV2 {
        schema: raw.schema.clone(),
        version: raw.version,
        created_by: raw.created_by.clone(),
        architecture: raw.architecture.clone(),
        config: raw.config.clone(),
        quantization: raw.quantization.clone(),
        blobs: raw.blobs.clone(),
        tensors: raw.tensors.iter().cloned().map(RawTensorV2::from).collect(),
        plans: Vec::new(),
    };
    let mut header = validate_common(&as_v2, 1, data_len)?;
    check_plan_ref(raw.plan.as_ref())?;
    let bytes = header.tensors.iter().map(|t| t.variants[0].byte_len() as u64).sum();
    header.plans = vec![ValidPlan {
        name: String::new(),
        bits_per_weight: None,
        bytes,
        predicted_loss: None,
        plan: raw.plan.clone(),
        variants: vec![0; header.tensors.len()],
    }];
    Ok(header)
}

/// Checks a version 2 header (preamble version `version`) against a data
/// section of `data_len` bytes: everything but the checksums.
pub(crate) fn validate_header_v2(
    raw: &RawHeaderV2,
    version: u32,
    data_len: u64,
) -> Result<ValidHeader, Problem> {
    let mut header = validate_common(raw, version, data_len)?;
    header.plans = validate_plans(&raw.plans, &header.tensors)?;
    Ok(header)
}

/// The plan reference's digest is 64 lowercase hexadecimal digits.
fn check_plan_ref(plan: Option<&PlanRef>) -> Result<(), Problem> {
    if let Some(plan) = plan {
        let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if plan.sha256.len() != 64 || !plan.sha256.chars().all(is_hex) {
            return Err(Problem::File(format!(
                "plan sha256 `{}` is not 64 lowercase hexadecimal digits",
                plan.sha256
            )));
        }
    }
    Ok(())
}

/// Everything both versions share: schema, blobs, tensors and their
/// variants, and the layout of the data section. The plans are left empty.
fn validate_common(raw: &RawHeaderV2, version: u32, data_len: u64) -> Result<ValidHeader, Problem> {
    if raw.schema != SCHEMA {
        return Err(Problem::File(format!(
            "header schema is `{}`, expected `{SCHEMA}`",
            raw.schema
        )));
    }
    if raw.version != version {
        return Err(Problem::File(format!(
            "header says version {} but the preamble says version {version}",
            raw.version
        )));
    }

    let mut spans = Vec::new();
    let mut blobs = Vec::with_capacity(raw.blobs.len());
    let mut blob_index = HashMap::with_capacity(raw.blobs.len());
    for blob in &raw.blobs {
        let what = format!("blob `{}`", blob.name);
        if blob.name.is_empty() {
            return Err(Problem::File("a blob has an empty name".to_owned()));
        }
        if blob_index.insert(blob.name.clone(), blobs.len()).is_some() {
            return Err(Problem::File(format!("two blobs are named `{}`", blob.name)));
        }
        let range = place(blob.offset, blob.len, data_len)
            .map_err(|r| Problem::File(format!("{what}: {r}")))?;
        spans.push(Span { start: blob.offset, end: blob.offset + blob.len, owner: what });
        blobs.push(ValidBlob { name: blob.name.clone(), range, crc32: blob.crc32 });
    }

    let mut tensors = Vec::with_capacity(raw.tensors.len());
    let mut tensor_index = HashMap::with_capacity(raw.tensors.len());
    for t in &raw.tensors {
        if t.name.is_empty() {
            return Err(Problem::File("a tensor has an empty name".to_owned()));
        }
        if tensor_index.insert(t.name.clone(), tensors.len()).is_some() {
            return Err(Problem::tensor(&t.name, "two tensors have this name".to_owned()));
        }
        let valid =
            validate_tensor(t, version, data_len).map_err(|r| Problem::tensor(&t.name, r))?;
        for (i, variant) in valid.variants.iter().enumerate() {
            for (role, range) in &variant.segments {
                let owner = if version == 1 {
                    format!("tensor `{}` segment `{role}`", t.name)
                } else {
                    format!("tensor `{}` variant {i} ({}) segment `{role}`", t.name, variant.format)
                };
                spans.push(Span { start: range.start as u64, end: range.end as u64, owner });
            }
        }
        tensors.push(valid);
    }

    // Sorted by start (then end), every span must start at or after the
    // furthest end seen so far.
    spans.sort_by_key(|s| (s.start, s.end));
    let mut furthest: Option<&Span> = None;
    for span in &spans {
        if let Some(prev) = furthest {
            if span.start < prev.end {
                return Err(Problem::File(format!(
                    "{} (bytes {}..{} of the data section) overlaps {} (bytes {}..{})",
                    span.owner, span.start, span.end, prev.owner, prev.start, prev.end
                )));
            }
        }
        if furthest.is_none_or(|p| span.end >= p.end) {
            furthest = Some(span);
        }
    }
    let end = furthest.map_or(0, |s| s.end);
    if end != data_len {
        // Every span was checked to end within the data section.
        return Err(Problem::File(format!(
            "the data section is {data_len} bytes but its last blob or segment ends at {end}: \
             {} bytes follow it",
            data_len - end
        )));
    }

    Ok(ValidHeader {
        version,
        created_by: raw.created_by.clone(),
        architecture: raw.architecture.clone(),
        config: raw.config.clone(),
        quantization: raw.quantization.clone(),
        blobs,
        tensors,
        plans: Vec::new(),
        blob_index,
        tensor_index,
    })
}

/// Checks a version 2 file's plans against its (checked) tensors: at least
/// one, names non-empty and distinct, one variant index per tensor and in
/// range, bytes equal to what the picked variants hold, every variant in
/// some plan.
fn validate_plans(raw: &[RawPlan], tensors: &[ValidTensor]) -> Result<Vec<ValidPlan>, Problem> {
    if raw.is_empty() {
        return Err(Problem::File(
            "the header lists no plans (version 2 needs at least one)".into(),
        ));
    }
    let mut plans: Vec<ValidPlan> = Vec::with_capacity(raw.len());
    for p in raw {
        let what = format!("plan `{}`", p.name);
        if p.name.is_empty() {
            return Err(Problem::File("a plan has an empty name".to_owned()));
        }
        if plans.iter().any(|q| q.name == p.name) {
            return Err(Problem::File(format!("two plans are named `{}`", p.name)));
        }
        check_plan_ref(p.plan.as_ref())?;
        if !p.bits_per_weight.is_finite() || p.bits_per_weight <= 0.0 {
            return Err(Problem::File(format!(
                "{what}: bits_per_weight {} is not a positive number",
                p.bits_per_weight
            )));
        }
        if p.predicted_loss.is_some_and(|l| !l.is_finite()) {
            return Err(Problem::File(format!("{what}: predicted_loss is not a finite number")));
        }
        if p.variants.len() != tensors.len() {
            return Err(Problem::File(format!(
                "{what} picks {} variants for {} tensors (one per tensor, in header order)",
                p.variants.len(),
                tensors.len()
            )));
        }
        let mut variants = Vec::with_capacity(tensors.len());
        let mut bytes = 0u64;
        for (&v, t) in p.variants.iter().zip(tensors) {
            let Some(i) = usize::try_from(v).ok().filter(|&i| i < t.variants.len()) else {
                return Err(Problem::tensor(
                    &t.name,
                    format!(
                        "{what} picks variant {v}, but the tensor has {} (numbered from 0)",
                        t.variants.len()
                    ),
                ));
            };
            bytes += t.chain_bytes(i);
            variants.push(i);
        }
        if bytes != p.bytes {
            return Err(Problem::File(format!(
                "{what} says it loads {} bytes but the variants it picks hold {bytes}",
                p.bytes
            )));
        }
        plans.push(ValidPlan {
            name: p.name.clone(),
            bits_per_weight: Some(p.bits_per_weight),
            bytes,
            predicted_loss: p.predicted_loss,
            plan: p.plan.clone(),
            variants,
        });
    }
    for (ti, t) in tensors.iter().enumerate() {
        for (vi, v) in t.variants.iter().enumerate() {
            if !plans.iter().any(|p| t.chain(p.variants[ti]).any(|c| c == vi)) {
                return Err(Problem::tensor(
                    &t.name,
                    format!(
                        "variant {vi} ({}) is in no plan, nor the base of one that is",
                        v.format
                    ),
                ));
            }
        }
    }
    Ok(plans)
}

impl ValidVariant {
    /// Bytes of all its segments.
    pub(crate) fn byte_len(&self) -> usize {
        self.segments.iter().map(|(_, r)| r.len()).sum()
    }
}

impl ValidTensor {
    /// Variant `v` and the variants under it, down to its root (each listed
    /// before the one it is the base of, so this ends).
    pub(crate) fn chain(&self, v: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(v), |&i| self.variants[i].base)
    }

    /// Bytes that loading variant `v` reads: its own and every base's.
    pub(crate) fn chain_bytes(&self, v: usize) -> u64 {
        self.chain(v).map(|c| self.variants[c].byte_len() as u64).sum()
    }
}

/// The code width variant `v` gives a nested variant built on it: a root's
/// (`int2k`, `int3k`, `int4k`) or a nested variant's own; the reason if it
/// cannot be a base.
fn base_width(variants: &[ValidVariant], v: usize) -> Result<u8, String> {
    let base = &variants[v];
    match base.format {
        WeightFormat::Grouped(l) if base.base.is_some() => Ok(l.bits()),
        WeightFormat::Compact(l) if nested::is_root(l) => Ok(l.bits()),
        other => Err(format!(
            "its base, variant {v}, is {other}: a base is int2k, int3k, int4k or a nested variant"
        )),
    }
}

/// Checks one tensor's shape and variants; the reason on failure.
fn validate_tensor(t: &RawTensorV2, version: u32, data_len: u64) -> Result<ValidTensor, String> {
    let &[rows, cols] = t.shape.as_slice() else {
        return Err(format!(
            "shape {:?} has {} dimensions, expected 2 ([rows, cols])",
            t.shape,
            t.shape.len()
        ));
    };
    if rows == 0 || cols == 0 {
        return Err(format!("shape [{rows}, {cols}] has a zero dimension"));
    }
    let elements = rows
        .checked_mul(cols)
        .ok_or_else(|| format!("shape [{rows}, {cols}]: rows·cols overflows 64 bits"))?;
    if elements > MAX_ELEMENTS {
        return Err(format!(
            "shape [{rows}, {cols}] has {elements} elements, more than the limit of {MAX_ELEMENTS}"
        ));
    }
    let too_big = || format!("shape [{rows}, {cols}] does not fit this platform's address space");
    let (rows_usize, cols_usize) = (
        usize::try_from(rows).map_err(|_| too_big())?,
        usize::try_from(cols).map_err(|_| too_big())?,
    );
    if t.variants.is_empty() {
        return Err("has no variants".to_owned());
    }
    let mut variants: Vec<ValidVariant> = Vec::with_capacity(t.variants.len().min(64));
    for (i, v) in t.variants.iter().enumerate() {
        let nesting = match v.base {
            None => None,
            Some(_) if version < 3 => {
                return Err(format!(
                "variant {i} has a base (a nested variant), which needs version 3, not {version}"
            ))
            }
            Some(b) => {
                let base = usize::try_from(b).ok().filter(|&b| b < i).ok_or_else(|| {
                    format!(
                        "variant {i}: its base is variant {b}, which is not listed before it \
                         (a base comes first, so a chain cannot loop)"
                    )
                })?;
                let width = base_width(&variants, base).map_err(|r| format!("variant {i}: {r}"))?;
                Some((base, width))
            }
        };
        match v.predicted_loss {
            Some(_) if version < 3 => {
                return Err(format!(
                    "variant {i} has a predicted_loss, which needs version 3, not {version}"
                ))
            }
            Some(l) if !l.is_finite() => {
                return Err(format!("variant {i}: predicted_loss is not a finite number"))
            }
            _ => {}
        }
        let valid = validate_variant(v, nesting, rows, cols, data_len).map_err(|r| {
            if version == 1 {
                r
            } else {
                format!("variant {i}: {r}")
            }
        })?;
        if variants.iter().any(|w| w.format == valid.format) {
            return Err(format!("two variants are in format {}", valid.format));
        }
        variants.push(valid);
    }
    Ok(ValidTensor { name: t.name.clone(), rows: rows_usize, cols: cols_usize, variants })
}

/// Checks one variant's format and segments for a `rows × cols` tensor
/// (dimensions already checked); `nesting` is its base's index and the
/// code width it builds on, for a nested variant. The reason on failure.
fn validate_variant(
    t: &RawVariant,
    nesting: Option<(usize, u8)>,
    rows: u64,
    cols: u64,
    data_len: u64,
) -> Result<ValidVariant, String> {
    let too_big = || format!("shape [{rows}, {cols}] does not fit this platform's address space");
    let format: WeightFormat =
        t.format.parse().map_err(|_| format!("unknown format `{}`", t.format))?;
    let expected = match nesting {
        None => segment_lengths(format, rows, cols),
        Some((_, width)) => {
            let bits = match format {
                WeightFormat::Grouped(l) if nested::rebuilt_layout(l.bits()) == Some(l) => l.bits(),
                _ => {
                    return Err(format!(
                        "a nested variant is int3, int4 or int8g32 (what its planes rebuild \
                         into), not {format}"
                    ))
                }
            };
            if bits <= width {
                return Err(format!(
                    "a nested {format} variant must be wider than its base's {width}-bit codes"
                ));
            }
            nested_segment_lengths(bits - width, rows, cols)
        }
    }
    .ok_or_else(too_big)?;
    let expected_roles: Vec<&str> = expected.iter().map(|(r, _)| r.name()).collect();
    let expected_roles = expected_roles.join(", ");

    // Roles: each known, belonging to the format, once, in the format's order.
    let mut roles = Vec::with_capacity(t.segments.len().min(expected.len()));
    for seg in &t.segments {
        let role = SegmentRole::from_name(&seg.role)
            .ok_or_else(|| format!("unknown segment role `{}`", seg.role))?;
        if !expected.iter().any(|(r, _)| *r == role) {
            return Err(format!(
                "segment `{role}` does not belong to format {format} (expected segments: {expected_roles})"
            ));
        }
        if roles.contains(&role) {
            return Err(format!("segment `{role}` is listed twice"));
        }
        roles.push(role);
    }
    if let Some((missing, _)) = expected.iter().find(|(r, _)| !roles.contains(r)) {
        return Err(format!(
            "segment `{missing}` is missing (format {format} has segments: {expected_roles})"
        ));
    }
    if roles.iter().zip(&expected).any(|(a, (b, _))| a != b) {
        return Err(format!("segments must be listed in the order {expected_roles}"));
    }

    let what = match nesting {
        None => format!("format {format}"),
        Some((_, width)) => format!("a nested {format} on {width}-bit codes"),
    };
    let mut segments = Vec::with_capacity(expected.len());
    for (seg, &(role, len)) in t.segments.iter().zip(&expected) {
        if seg.len != len {
            return Err(format!(
                "segment `{role}` is {} bytes, {what} with shape [{rows}, {cols}] needs {len}",
                seg.len
            ));
        }
        let range =
            place(seg.offset, seg.len, data_len).map_err(|r| format!("segment `{role}`: {r}"))?;
        segments.push((role, range));
    }
    Ok(ValidVariant {
        format,
        base: nesting.map(|(b, _)| b),
        predicted_loss: t.predicted_loss,
        segments,
        crc32: t.crc32,
    })
}

/// Checks that `offset..offset + len` is aligned and inside a data section of
/// `data_len` bytes; the range on success, the reason on failure.
fn place(offset: u64, len: u64, data_len: u64) -> Result<Range<usize>, String> {
    if !offset.is_multiple_of(ALIGNMENT) {
        return Err(format!("offset {offset} is not a multiple of {ALIGNMENT}"));
    }
    let end = offset
        .checked_add(len)
        .ok_or_else(|| format!("offset {offset} + length {len} overflows"))?;
    if end > data_len {
        return Err(format!(
            "bytes {offset}..{end} of the data section run past its end \
             ({data_len} bytes; truncated file?)"
        ));
    }
    // Both are at most data_len, which is at most the file's length.
    let to_usize =
        |v: u64| usize::try_from(v).map_err(|_| format!("offset {v} does not fit usize"));
    Ok(to_usize(offset)?..to_usize(end)?)
}
