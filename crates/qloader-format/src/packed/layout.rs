//! What a tensor of each weight format consists of in a packed model: the
//! roles of its segments, in their fixed order, and their exact byte lengths
//! for a given shape. Writer and reader both take these rules from here.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;

use crate::block32::BlockLayout;
use crate::compact::CompactLayout;
use crate::grouped::GroupedLayout;
use crate::weight_format::WeightFormat;

/// What the bytes of one segment of a packed tensor are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentRole {
    /// The values themselves, for the unquantized formats (`f32`, `f16`).
    Data,
    /// Integer codes: `i8` for per-channel int8, packed blocks for the
    /// grouped formats.
    Codes,
    /// Scales: one `f32` per row for per-channel int8, one `f16` per group
    /// for the grouped formats.
    Scales,
    /// Offsets: one `f16` per group (grouped formats only).
    Offsets,
    /// Bit planes refining a base variant's codes (nested variants only,
    /// [`crate::nested`]).
    Planes,
}

impl SegmentRole {
    /// The role's name in the header: `data`, `codes`, `scales`, `offsets`
    /// or `planes`.
    pub fn name(self) -> &'static str {
        match self {
            SegmentRole::Data => "data",
            SegmentRole::Codes => "codes",
            SegmentRole::Scales => "scales",
            SegmentRole::Offsets => "offsets",
            SegmentRole::Planes => "planes",
        }
    }

    /// The role called `name` in a header, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "data" => Some(SegmentRole::Data),
            "codes" => Some(SegmentRole::Codes),
            "scales" => Some(SegmentRole::Scales),
            "offsets" => Some(SegmentRole::Offsets),
            "planes" => Some(SegmentRole::Planes),
            _ => None,
        }
    }
}

impl fmt::Display for SegmentRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The segments a `rows × cols` tensor in `format` must have, in the order
/// the header lists them, with their exact lengths in bytes; `None` if a
/// length overflows `u64`. (Zero dimensions and the element limit are the
/// caller's to check.)
pub fn segment_lengths(
    format: WeightFormat,
    rows: u64,
    cols: u64,
) -> Option<Vec<(SegmentRole, u64)>> {
    let elements = rows.checked_mul(cols)?;
    Some(match format {
        WeightFormat::F32 => vec![(SegmentRole::Data, elements.checked_mul(4)?)],
        WeightFormat::F16 => vec![(SegmentRole::Data, elements.checked_mul(2)?)],
        WeightFormat::Int8PerChannel => {
            vec![(SegmentRole::Codes, elements), (SegmentRole::Scales, rows.checked_mul(4)?)]
        }
        WeightFormat::Grouped(layout) => {
            let blocks = cols.div_ceil(crate::grouped::BLOCK as u64);
            let row_code_bytes = blocks.checked_mul(layout.block_bytes() as u64)?;
            let groups = cols.div_ceil(layout.group() as u64);
            let per_group = rows.checked_mul(groups)?.checked_mul(2)?;
            vec![
                (SegmentRole::Codes, rows.checked_mul(row_code_bytes)?),
                (SegmentRole::Scales, per_group),
                (SegmentRole::Offsets, per_group),
            ]
        }
        WeightFormat::Compact(layout) => {
            let row_bytes = layout.row_bytes(usize::try_from(cols).ok()?) as u64;
            vec![(SegmentRole::Codes, rows.checked_mul(row_bytes)?)]
        }
        WeightFormat::Block(layout) => {
            let blocks = cols.div_ceil(crate::grouped::BLOCK as u64);
            let row_bytes = blocks.checked_mul(layout.block_bytes() as u64)?;
            vec![(SegmentRole::Codes, rows.checked_mul(row_bytes)?)]
        }
    })
}

/// The one segment of a nested variant that adds `extra` bit planes to a
/// `rows × cols` tensor; `None` if its length overflows `u64`.
pub fn nested_segment_lengths(extra: u8, rows: u64, cols: u64) -> Option<Vec<(SegmentRole, u64)>> {
    let row = (extra as u64).checked_mul(cols.div_ceil(8))?;
    Some(vec![(SegmentRole::Planes, rows.checked_mul(row)?)])
}

/// The bytes of one tensor, by format: what the writer is given and what the
/// reader hands out. Multi-byte values are little-endian; layouts as in the
/// table of [`crate::packed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TensorParts<'a> {
    /// `f32` values, row-major.
    F32 {
        /// `rows · cols · 4` bytes.
        data: &'a [u8],
    },
    /// `f16` values, row-major.
    F16 {
        /// `rows · cols · 2` bytes.
        data: &'a [u8],
    },
    /// Int8 codes with one symmetric `f32` scale per row.
    Int8PerChannel {
        /// `rows · cols` `i8` codes, row-major.
        codes: &'a [u8],
        /// `rows` `f32` scales.
        scales: &'a [u8],
    },
    /// A grouped format ([`crate::grouped`]).
    Grouped {
        /// Bit width and group size.
        layout: GroupedLayout,
        /// `rows · layout.row_code_bytes(cols)` bytes of packed blocks.
        codes: &'a [u8],
        /// `rows · ceil(cols / group)` `f16` scales, row-major.
        scales: &'a [u8],
        /// `rows · ceil(cols / group)` `f16` offsets, row-major.
        offsets: &'a [u8],
    },
    /// A compact format ([`crate::compact`]).
    Compact {
        /// Code width.
        layout: CompactLayout,
        /// `rows · layout.row_bytes(cols)` bytes of super-blocks, row by row.
        codes: &'a [u8],
    },
    /// llama.cpp's 32-value blocks ([`crate::block32`]).
    Block {
        /// Which blocks.
        layout: BlockLayout,
        /// `rows · layout.row_bytes(cols)` bytes of blocks, row by row.
        codes: &'a [u8],
    },
    /// A nested variant's own bytes: bit planes on its base variant
    /// ([`crate::nested`]); it runs as the grouped format `layout` once
    /// rebuilt from its chain.
    Planes {
        /// The grouped format it rebuilds into (groups of 32).
        layout: GroupedLayout,
        /// Planes it adds to its base.
        extra: u8,
        /// `rows · nested::link_row_bytes(extra, cols)` bytes.
        planes: &'a [u8],
    },
}

impl<'a> TensorParts<'a> {
    /// The weight format these parts are stored in.
    pub fn format(&self) -> WeightFormat {
        match *self {
            TensorParts::F32 { .. } => WeightFormat::F32,
            TensorParts::F16 { .. } => WeightFormat::F16,
            TensorParts::Int8PerChannel { .. } => WeightFormat::Int8PerChannel,
            TensorParts::Grouped { layout, .. } => WeightFormat::Grouped(layout),
            TensorParts::Compact { layout, .. } => WeightFormat::Compact(layout),
            TensorParts::Block { layout, .. } => WeightFormat::Block(layout),
            TensorParts::Planes { layout, .. } => WeightFormat::Grouped(layout),
        }
    }

    /// The segments, in the order of [`segment_lengths`].
    pub fn segments(&self) -> Vec<(SegmentRole, &'a [u8])> {
        match *self {
            TensorParts::F32 { data } | TensorParts::F16 { data } => {
                vec![(SegmentRole::Data, data)]
            }
            TensorParts::Int8PerChannel { codes, scales } => {
                vec![(SegmentRole::Codes, codes), (SegmentRole::Scales, scales)]
            }
            TensorParts::Compact { codes, .. } | TensorParts::Block { codes, .. } => {
                vec![(SegmentRole::Codes, codes)]
            }
            TensorParts::Grouped { codes, scales, offsets, .. } => vec![
                (SegmentRole::Codes, codes),
                (SegmentRole::Scales, scales),
                (SegmentRole::Offsets, offsets),
            ],
            TensorParts::Planes { planes, .. } => vec![(SegmentRole::Planes, planes)],
        }
    }

    /// Total bytes of all segments.
    pub fn byte_len(&self) -> usize {
        self.segments().iter().fold(0usize, |n, (_, s)| n.saturating_add(s.len()))
    }
}

/// `n` rounded up to a multiple of [`super::ALIGNMENT`]; `None` on overflow.
pub(crate) fn align_up(n: u64) -> Option<u64> {
    Some(n.checked_add(super::ALIGNMENT - 1)? / super::ALIGNMENT * super::ALIGNMENT)
}
