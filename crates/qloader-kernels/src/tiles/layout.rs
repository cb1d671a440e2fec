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

/// Bytes of a group's scales and offsets for all rows of a panel.
pub const GROUP_HEADER_BYTES: usize = 4 * PANEL_ROWS;

/// Bytes of one panel of a `cols`-wide matrix in `layout`.
pub fn panel_bytes(layout: GroupedLayout, cols: usize) -> usize {
    layout.groups_per_row(cols) * GROUP_HEADER_BYTES
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
    /// Columns.
    pub cols: usize,
    /// Per row: packed codes (`layout.row_code_bytes(cols)`), scales and
    /// offsets (`layout.groups_per_row(cols)` each).
    pub rows: Vec<(&'a [u8], &'a [f16], &'a [f16])>,
}

/// Writes one panel ([`panel_bytes`] long) from its rows.
pub fn write_panel(src: &PanelSource<'_>, out: &mut [u8]) {
    let layout = src.layout;
    let (bits, per_group) = (layout.bits(), layout.group() / BLOCK);
    let blocks = layout.blocks_per_row(src.cols);
    let mut at = 0;
    for g in 0..layout.groups_per_row(src.cols) {
        let header = &mut out[at..at + GROUP_HEADER_BYTES];
        header.fill(0);
        for (l, (_, scales, offsets)) in src.rows.iter().enumerate() {
            header[2 * l..2 * l + 2].copy_from_slice(&scales[g].to_bits().to_le_bytes());
            let o = 2 * PANEL_ROWS + 2 * l;
            header[o..o + 2].copy_from_slice(&offsets[g].to_bits().to_le_bytes());
        }
        at += GROUP_HEADER_BYTES;
        for b in g * per_group..((g + 1) * per_group).min(blocks) {
            let mut codes = [[0u8; BLOCK]; PANEL_ROWS];
            let packed = layout.block_bytes();
            for ((row_codes, _, _), out) in src.rows.iter().zip(codes.iter_mut()) {
                *out = unpack_block(bits, &row_codes[b * packed..(b + 1) * packed]);
            }
            write_block(bits, &codes, &mut out[at..at + block_bytes(bits)]);
            at += block_bytes(bits);
        }
    }
    debug_assert_eq!(at, panel_bytes(layout, src.cols));
}

/// The scale and offset of row `l` in a group header.
pub fn header_entry(header: &[u8], l: usize) -> (f32, f32) {
    let read =
        |at: usize| f16::from_bits(u16::from_le_bytes([header[at], header[at + 1]])).to_f32();
    (read(2 * l), read(2 * PANEL_ROWS + 2 * l))
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
