//! The tile layout of grouped weights: rows in panels of [`PANEL_ROWS`],
//! each panel one contiguous run of bytes that a product reads front to
//! back. Within a panel, group after group:
//!
//! ```text
//! group g:  scales  f16 × 16   (row l's scale of group g at 2·l)
//!           offsets f16 × 16
//!           block b, for each 32-column block of the group: codes (64·bits bytes)
//! ```
//!
//! That is the [`TileHeader::ScaleOffset`] header. Formats whose offset is
//! a fixed multiple of their scale (llama.cpp's symmetric blocks, the
//! non-uniform grids: `offset = −bias · scale`) store only the scales
//! ([`TileHeader::ScaleOnly`]), two groups' in one 64-byte header, so that
//! the tiles are no larger than the stored format (4.5 bits per weight for
//! `q4_0`, not 5):
//!
//! ```text
//! groups 2j, 2j+1:  scales of group 2j    f16 × 16
//!                   scales of group 2j+1  f16 × 16 (zero if there is none)
//!                   group 2j's blocks, then group 2j+1's
//! ```
//!
//! The compact formats keep their own two-level grid
//! ([`TileHeader::SubScales`]: scale `d · sc`, offset `−dmin · m`), exactly
//! and in 0.625 bits per weight rather than 1:
//!
//! ```text
//! super-group j (groups 8j.. up to 8 of them):
//!                   d    f16 × 16, dmin f16 × 16
//!                   per group: sub-scales u8 × 16, sub-mins u8 × 16 (padded to 64 bytes)
//!                   the groups' blocks
//! ```
//!
//! A block's codes are arranged for a 64-byte vector register holding 16
//! lanes of 4 bytes, lane `l` belonging to row `l`, so that one integer
//! multiply-add of a vector with 4 activation bytes broadcast to every lane
//! advances all 16 rows by 4 columns. "Vector `t`" (t in 0..8) is columns
//! `4t..4t+4` of the block:
//!
//! | bits | bytes | where vector `t` lies |
//! |---:|---:|---|
//! | 8 | 512 | 64-byte chunk `t`, one code per byte |
//! | 4 | 256 | chunk `t / 2`: low nibbles for even `t`, high nibbles for odd `t` |
//! | 2 | 128 | chunk `t / 4`, bits `2·(t % 4)` and up of each byte |
//! | 3 | 192 | low two bits as the 2-bit layout (128 bytes); then eight little-endian `u64` masks, mask `t` bit `4l + i` = high bit of row `l`'s column `4t + i` |
//! | 5 | 320 | low four bits as the 4-bit layout (256 bytes); then 64 bytes of fifth bits: bit `t` of byte `4l + i` = fifth bit of row `l`'s column `4t + i` |
//!
//! Every section is a multiple of 64 bytes, so with a 64-byte-aligned start
//! every load is aligned. Rows past the matrix's last (in the last panel) and
//! columns past its last (in the last block) hold code 0, scale 0 and
//! offset 0.

use half::f16;
use qloader_format::grouped::{unpack_block, GroupedLayout, BLOCK};

/// Rows per panel (the lanes of one 64-byte vector of `f32`/`i32`).
pub const PANEL_ROWS: usize = 16;

/// Bytes of one block's codes for all rows of a panel.
pub const fn block_bytes(bits: u8) -> usize {
    64 * bits as usize
}

/// Bytes of one header: a group's scales and offsets, or two groups'
/// scales, for all rows of a panel.
pub const GROUP_HEADER_BYTES: usize = 4 * PANEL_ROWS;

/// What a panel stores of each group's grid besides its codes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TileHeader {
    /// An `f16` scale and an `f16` offset per group and row.
    ScaleOffset,
    /// An `f16` scale per group and row; the offset is `−bias · scale`.
    ScaleOnly {
        /// The code that stands for zero.
        bias: f32,
    },
    /// An `f16` `d` and `dmin` per super-group of [`SUPER_GROUPS`] groups
    /// and row, and a `u8` sub-scale `sc` and sub-min `m` per group and
    /// row: scale `d · sc`, offset `−dmin · m`.
    SubScales,
}

/// Groups per super-group of a [`TileHeader::SubScales`] header.
pub const SUPER_GROUPS: usize = 8;

/// Header bytes of a [`TileHeader::SubScales`] super-group of `groups`.
const fn sub_header_bytes(groups: usize) -> usize {
    GROUP_HEADER_BYTES + (2 * PANEL_ROWS * groups).next_multiple_of(64)
}

impl TileHeader {
    /// Header bytes of a panel with `groups` groups.
    pub const fn bytes(self, groups: usize) -> usize {
        match self {
            TileHeader::ScaleOffset => groups * GROUP_HEADER_BYTES,
            TileHeader::ScaleOnly { .. } => groups.div_ceil(2) * GROUP_HEADER_BYTES,
            TileHeader::SubScales => {
                groups / SUPER_GROUPS * sub_header_bytes(SUPER_GROUPS)
                    + if groups.is_multiple_of(SUPER_GROUPS) {
                        0
                    } else {
                        sub_header_bytes(groups % SUPER_GROUPS)
                    }
            }
        }
    }
}

/// Where group `g` lies in a panel, in bytes from the panel's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupAt {
    /// The first byte stored for the group alone or first of its pair (its
    /// header, or with a shared header the second group's first block):
    /// the groups' `start..blocks + group_blocks` cover the panel.
    pub start: usize,
    /// Where the group's grid lies, as its header stores it.
    pub grid: GridAt,
    /// The group's first block.
    pub blocks: usize,
}

/// Where a group's grid lies in a panel, one variant per [`TileHeader`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GridAt {
    /// An `f16` scale and offset per row.
    ScaleOffset {
        /// The group's 16 scales.
        scales: usize,
        /// The group's 16 offsets.
        offsets: usize,
    },
    /// An `f16` scale per row; each offset is `−bias · scale`.
    ScaleOnly {
        /// The group's 16 scales.
        scales: usize,
        /// The header's bias.
        bias: f32,
    },
    /// The super-group's `f16` super-scales and the group's `u8` ones.
    SubScales {
        /// The super-group's 16 `d`.
        d: usize,
        /// The super-group's 16 `dmin`.
        dmin: usize,
        /// The group's 16 sub-scales, then its 16 sub-mins.
        subs: usize,
    },
}

/// Where group `g` of `groups` lies in a panel whose whole groups hold
/// `group_blocks` bytes of blocks each (every group but possibly the last
/// is whole).
#[inline]
pub const fn group_at(header: TileHeader, group_blocks: usize, groups: usize, g: usize) -> GroupAt {
    match header {
        TileHeader::ScaleOffset => {
            let start = g * (GROUP_HEADER_BYTES + group_blocks);
            GroupAt {
                start,
                grid: GridAt::ScaleOffset { scales: start, offsets: start + 2 * PANEL_ROWS },
                blocks: start + GROUP_HEADER_BYTES,
            }
        }
        TileHeader::ScaleOnly { bias } => {
            let (pair, second) = (g / 2, g % 2);
            let start = pair * (GROUP_HEADER_BYTES + 2 * group_blocks);
            let blocks = start + GROUP_HEADER_BYTES + second * group_blocks;
            GroupAt {
                start: if second == 0 { start } else { blocks },
                grid: GridAt::ScaleOnly { scales: start + 2 * PANEL_ROWS * second, bias },
                blocks,
            }
        }
        TileHeader::SubScales => {
            let (j, i) = (g / SUPER_GROUPS, g % SUPER_GROUPS);
            let start = j * (sub_header_bytes(SUPER_GROUPS) + SUPER_GROUPS * group_blocks);
            let in_super = if groups - j * SUPER_GROUPS < SUPER_GROUPS {
                groups - j * SUPER_GROUPS
            } else {
                SUPER_GROUPS
            };
            let blocks = start + sub_header_bytes(in_super) + i * group_blocks;
            GroupAt {
                start: if i == 0 { start } else { blocks },
                grid: GridAt::SubScales {
                    d: start,
                    dmin: start + 2 * PANEL_ROWS,
                    subs: start + GROUP_HEADER_BYTES + 2 * PANEL_ROWS * i,
                },
                blocks,
            }
        }
    }
}

/// Bytes of one panel of a `cols`-wide matrix in `layout` with `header`.
pub fn panel_bytes(layout: GroupedLayout, header: TileHeader, cols: usize) -> usize {
    header.bytes(layout.groups_per_row(cols))
        + layout.blocks_per_row(cols) * block_bytes(layout.bits())
}

/// One block's codes for the 16 rows of a panel: `codes[l][c]`.
pub type BlockCodes = [[u8; BLOCK]; PANEL_ROWS];

/// Writes a block's codes (each at most the layout's max code) in the tile
/// arrangement of `bits` into `out` ([`block_bytes`] long).
pub fn write_block(bits: u8, codes: &BlockCodes, out: &mut [u8]) {
    let out = &mut out[..block_bytes(bits)];
    match bits {
        8 => {
            for t in 0..8 {
                for (l, row) in codes.iter().enumerate() {
                    out[t * 64 + 4 * l..t * 64 + 4 * l + 4].copy_from_slice(&row[4 * t..4 * t + 4]);
                }
            }
        }
        4 | 5 => {
            for j in 0..4 {
                for (l, row) in codes.iter().enumerate() {
                    for i in 0..4 {
                        out[j * 64 + 4 * l + i] =
                            (row[8 * j + i] & 0x0f) | ((row[8 * j + 4 + i] & 0x0f) << 4);
                    }
                }
            }
            if bits == 5 {
                let plane = &mut out[256..320];
                plane.fill(0);
                for (l, row) in codes.iter().enumerate() {
                    for (c, &q) in row.iter().enumerate() {
                        plane[4 * l + c % 4] |= ((q >> 4) & 1) << (c / 4);
                    }
                }
            }
        }
        2 | 3 => {
            for j in 0..2 {
                for (l, row) in codes.iter().enumerate() {
                    for i in 0..4 {
                        out[j * 64 + 4 * l + i] = (0..4)
                            .map(|p| (row[16 * j + 4 * p + i] & 3) << (2 * p))
                            .fold(0, |a, b| a | b);
                    }
                }
            }
            if bits == 3 {
                for t in 0..8 {
                    let mut mask = 0u64;
                    for (l, row) in codes.iter().enumerate() {
                        for i in 0..4 {
                            mask |= (((row[4 * t + i] >> 2) & 1) as u64) << (4 * l + i);
                        }
                    }
                    out[128 + 8 * t..136 + 8 * t].copy_from_slice(&mask.to_le_bytes());
                }
            }
        }
        _ => unreachable!("bits validated by GroupedLayout"),
    }
}

/// Reads back what [`write_block`] wrote.
pub fn read_block(bits: u8, data: &[u8]) -> BlockCodes {
    let data = &data[..block_bytes(bits)];
    let mut codes = [[0u8; BLOCK]; PANEL_ROWS];
    for (l, row) in codes.iter_mut().enumerate() {
        for (c, code) in row.iter_mut().enumerate() {
            let (t, i) = (c / 4, c % 4);
            let nibble = || (data[(t / 2) * 64 + 4 * l + i] >> (4 * (t % 2))) & 0x0f;
            let pair = || (data[(t / 4) * 64 + 4 * l + i] >> (2 * (t % 4))) & 3;
            *code = match bits {
                8 => data[t * 64 + 4 * l + i],
                4 => nibble(),
                5 => nibble() | (((data[256 + 4 * l + i] >> t) & 1) << 4),
                3 => {
                    let mask = u64::from_le_bytes(
                        data[128 + 8 * t..136 + 8 * t].try_into().expect("eight bytes"),
                    );
                    pair() | ((((mask >> (4 * l + i)) & 1) as u8) << 2)
                }
                _ => pair(),
            };
        }
    }
    codes
}

/// The source of one panel: for each of its rows (fewer than 16 in a last
/// panel), the packed codes, scales and offsets of that row.
pub struct PanelSource<'a> {
    /// Bit width and group size.
    pub layout: GroupedLayout,
    /// What each group's header stores (with [`TileHeader::ScaleOnly`] the
    /// rows' offsets are not written: they must be `−bias · scale`).
    pub header: TileHeader,
    /// Columns.
    pub cols: usize,
    /// Per row, its parts.
    pub rows: Vec<PanelRow<'a>>,
}

/// One row of a [`PanelSource`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PanelRow<'a> {
    /// Packed codes (`layout.row_code_bytes(cols)`).
    pub codes: &'a [u8],
    /// One scale per group (unless the header is [`TileHeader::SubScales`]).
    pub scales: &'a [f16],
    /// One offset per group (with a [`TileHeader::ScaleOffset`] header).
    pub offsets: &'a [f16],
    /// `[d, dmin]` per super-group (with a [`TileHeader::SubScales`] header).
    pub supers: &'a [[f16; 2]],
    /// `[sc, m]` per group (with a [`TileHeader::SubScales`] header).
    pub subs: &'a [[u8; 2]],
}

/// Writes one panel ([`panel_bytes`] long) from its rows.
pub fn write_panel(src: &PanelSource<'_>, out: &mut [u8]) {
    let layout = src.layout;
    let (bits, per_group) = (layout.bits(), layout.group() / BLOCK);
    let blocks = layout.blocks_per_row(src.cols);
    let group_blocks = per_group * block_bytes(bits);
    let groups = layout.groups_per_row(src.cols);
    out.fill(0);
    let put = |out: &mut [u8], at: usize, v: f16| {
        out[at..at + 2].copy_from_slice(&v.to_bits().to_le_bytes())
    };
    for g in 0..groups {
        let at = group_at(src.header, group_blocks, groups, g);
        for (l, row) in src.rows.iter().enumerate() {
            match at.grid {
                GridAt::ScaleOffset { scales, offsets } => {
                    put(out, scales + 2 * l, row.scales[g]);
                    put(out, offsets + 2 * l, row.offsets[g]);
                }
                GridAt::ScaleOnly { scales, .. } => put(out, scales + 2 * l, row.scales[g]),
                GridAt::SubScales { d, dmin, subs } => {
                    let [row_d, row_dmin] = row.supers[g / SUPER_GROUPS];
                    put(out, d + 2 * l, row_d);
                    put(out, dmin + 2 * l, row_dmin);
                    let [sc, m] = row.subs[g];
                    out[subs + l] = sc;
                    out[subs + PANEL_ROWS + l] = m;
                }
            }
        }
        let mut block_at = at.blocks;
        for b in g * per_group..((g + 1) * per_group).min(blocks) {
            let mut codes = [[0u8; BLOCK]; PANEL_ROWS];
            let packed = layout.block_bytes();
            for (row, out) in src.rows.iter().zip(codes.iter_mut()) {
                *out = unpack_block(bits, &row.codes[b * packed..(b + 1) * packed]);
            }
            write_block(bits, &codes, &mut out[block_at..block_at + block_bytes(bits)]);
            block_at += block_bytes(bits);
        }
    }
}

/// The scale and offset of row `l` of the group at `at` in `panel`.
pub fn header_entry(panel: &[u8], at: GroupAt, l: usize) -> (f32, f32) {
    let read = |at: usize| f16::from_bits(u16::from_le_bytes([panel[at], panel[at + 1]])).to_f32();
    match at.grid {
        GridAt::ScaleOffset { scales, offsets } => (read(scales + 2 * l), read(offsets + 2 * l)),
        GridAt::ScaleOnly { scales, bias } => {
            let scale = read(scales + 2 * l);
            (scale, -bias * scale)
        }
        GridAt::SubScales { d, dmin, subs } => {
            let (sc, m) = (f32::from(panel[subs + l]), f32::from(panel[subs + PANEL_ROWS + l]));
            (read(d + 2 * l) * sc, -(read(dmin + 2 * l) * m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_for_every_width() {
        for bits in [2u8, 3, 4, 5, 8] {
            let max = (1u16 << bits) - 1;
            let mut codes = [[0u8; BLOCK]; PANEL_ROWS];
            for (l, row) in codes.iter_mut().enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = ((l * 37 + c * 11 + 5) % (max as usize + 1)) as u8;
                }
            }
            let mut data = vec![0u8; block_bytes(bits)];
            write_block(bits, &codes, &mut data);
            assert_eq!(read_block(bits, &data), codes, "int{bits}");
        }
    }

    #[test]
    fn scale_only_headers_are_shared_by_pairs_of_groups() {
        let only = TileHeader::ScaleOnly { bias: 8.0 };
        let bb = block_bytes(4);
        let at = |g| group_at(only, bb, 8, g);
        let grid = |scales| GridAt::ScaleOnly { scales, bias: 8.0 };
        assert_eq!(at(0), GroupAt { start: 0, grid: grid(0), blocks: 64 });
        assert_eq!(at(1), GroupAt { start: 64 + bb, grid: grid(32), blocks: 64 + bb });
        let pair = 64 + 2 * bb;
        assert_eq!(at(2).grid, grid(pair));
        assert_eq!(at(3).blocks, pair + 64 + bb);
        // q4_0's tiles are as large as its blocks: 4.5 bits per weight.
        let layout = GroupedLayout::new(4, 32).unwrap();
        assert_eq!(panel_bytes(layout, only, 4096) * 8, 16 * 4096 * 9 / 2);
        assert_eq!(panel_bytes(layout, TileHeader::ScaleOffset, 4096) * 8, 16 * 4096 * 5);
        // An odd count of groups still takes a whole header.
        assert_eq!(panel_bytes(layout, only, 96), 2 * 64 + 3 * bb);
    }

    #[test]
    fn sub_scale_headers_cover_super_groups_of_eight() {
        let (sub, bb) = (TileHeader::SubScales, block_bytes(4));
        // 576 columns: two whole super-groups and one of two groups.
        let at = |g| group_at(sub, bb, 18, g);
        let grid = |d, subs| GridAt::SubScales { d, dmin: d + 32, subs };
        assert_eq!(at(0), GroupAt { start: 0, grid: grid(0, 64), blocks: 320 });
        assert_eq!(at(3).grid, grid(0, 64 + 3 * 32));
        assert_eq!(at(3).blocks, 320 + 3 * bb);
        let second = 320 + 8 * bb;
        assert_eq!(at(8).start, second);
        assert_eq!(at(17).grid, grid(2 * second, 2 * second + 64 + 32));
        assert_eq!(at(17).blocks, 2 * second + 128 + bb);
        let layout = GroupedLayout::new(4, 32).unwrap();
        assert_eq!(panel_bytes(layout, sub, 576), 2 * 320 + 128 + 18 * bb);
        // int4k's tiles: 4.625 bits per weight.
        assert_eq!(panel_bytes(layout, sub, 4096) * 8, 16 * 4096 * 37 / 8);
    }

    #[test]
    fn documented_positions() {
        let mut codes = [[0u8; BLOCK]; PANEL_ROWS];
        codes[1][5] = 0xa; // vector t = 1, lane 1, byte 1: high nibble of chunk 0
        let mut data = vec![0u8; block_bytes(4)];
        write_block(4, &codes, &mut data);
        assert_eq!(data[4 + 1], 0xa0);
        let mut codes = [[0u8; BLOCK]; PANEL_ROWS];
        codes[2][31] = 0b111; // t = 7, lane 2, byte 3: chunk 1 bits 6..8; mask 7 bit 11
        let mut data = vec![0u8; block_bytes(3)];
        write_block(3, &codes, &mut data);
        assert_eq!(data[64 + 8 + 3], 0b11 << 6);
        assert_eq!(u64::from_le_bytes(data[128 + 56..].try_into().unwrap()), 1 << 11);
        let mut codes = [[0u8; BLOCK]; PANEL_ROWS];
        codes[3][22] = 0b1_0110; // t = 5, lane 3, byte 2: high nibble of chunk 2; plane byte 14 bit 5
        let mut data = vec![0u8; block_bytes(5)];
        write_block(5, &codes, &mut data);
        assert_eq!(data[2 * 64 + 12 + 2], 0x60);
        assert_eq!(data[256 + 14], 1 << 5);
    }
}
