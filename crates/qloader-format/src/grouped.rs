//! Bit layout of the grouped integer formats (int8, int4, int3, int2 with
//! groups of 32, 64 or 128 weights along the input dimension).
//!
//! A `rows × cols` matrix is stored as three arrays:
//!
//! * **codes**, row-major; each row is `ceil(cols / 32)` *blocks* of 32
//!   codes, the last block of a row padded with code 0. A block occupies
//!   `4 · bits` bytes, packed so that a SIMD unit can unpack it with a few
//!   shifts and masks:
//!
//!   | bits | bytes | code of value `r` (0 ≤ r < 32) |
//!   |---:|---:|---|
//!   | 8 | 32 | byte `r` |
//!   | 4 | 16 | byte `r % 16`, low nibble if `r < 16` else high nibble |
//!   | 2 | 8 | byte `r % 8`, bits `2·(r / 8)` and up |
//!   | 3 | 12 | low two bits as the 2-bit layout in bytes 0..8; high bit is bit `r` of the little-endian `u32` in bytes 8..12 |
//!   | 5 | 20 | low four bits as the 4-bit layout in bytes 0..16; high bit is bit `r` of the little-endian `u32` in bytes 16..20 |
//!
//!   5-bit codes are not a format of their own ([`GroupedLayout::new`]
//!   refuses them): [`GroupedLayout::five_bit_tiles`] is the layout the
//!   5-bit formats (`int5k`, `q5_0`) run on.
//!
//! * **scales** and **offsets**, `f16`, one per group, row-major
//!   (`ceil(cols / group)` per row). Value `r` of a group stands for
//!   `scale · code + offset`, codes in `0..=2^bits − 1`.
//!
//! Storage cost is `bits + 32 / group` bits per weight (plus block padding).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use crate::error::FormatError;

/// Values per block (the unit of code packing).
pub const BLOCK: usize = 32;

/// Bit widths of the grouped formats.
pub const BITS: [u8; 4] = [2, 3, 4, 8];

/// Group sizes of the grouped formats.
pub const GROUPS: [usize; 3] = [32, 64, 128];

/// Bit width and group size of a grouped format (validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupedLayout {
    bits: u8,
    group: usize,
}

impl GroupedLayout {
    /// A layout, if `bits ∈ {2,3,4,8}` and `group ∈ {32,64,128}`.
    pub fn new(bits: u8, group: usize) -> Result<Self, FormatError> {
        if BITS.contains(&bits) && GROUPS.contains(&group) {
            Ok(Self { bits, group })
        } else {
            Err(FormatError::UnknownFormat {
                name: format!("int{bits}g{group}"),
                known: "int8/int4/int3/int2 with groups g32, g64, g128",
            })
        }
    }

    /// 5-bit codes in groups of 32: not a storage format, the grouped form
    /// in which the 5-bit formats (`int5k`, `q5_0`) are multiplied.
    pub const fn five_bit_tiles() -> Self {
        Self { bits: 5, group: BLOCK }
    }

    /// Bits per code.
    pub fn bits(self) -> u8 {
        self.bits
    }

    /// Weights per group (sharing one scale and offset).
    pub fn group(self) -> usize {
        self.group
    }

    /// Largest code.
    pub fn max_code(self) -> u8 {
        ((1u16 << self.bits) - 1) as u8
    }

    /// Bytes of one packed block of 32 codes.
    pub fn block_bytes(self) -> usize {
        BLOCK * self.bits as usize / 8
    }

    /// Blocks per row of `cols` values.
    pub fn blocks_per_row(self, cols: usize) -> usize {
        cols.div_ceil(BLOCK)
    }

    /// Groups per row of `cols` values.
    pub fn groups_per_row(self, cols: usize) -> usize {
        cols.div_ceil(self.group)
    }

    /// Bytes of codes per row.
    pub fn row_code_bytes(self, cols: usize) -> usize {
        self.blocks_per_row(cols) * self.block_bytes()
    }

    /// Bytes needed for a `rows × cols` matrix: codes, scales and offsets.
    pub fn storage_bytes(self, rows: usize, cols: usize) -> usize {
        rows * (self.row_code_bytes(cols) + self.groups_per_row(cols) * 4)
    }
}

/// Packs 32 codes (each ≤ the layout's max code) into `out`
/// (`layout.block_bytes()` bytes).
pub fn pack_block(bits: u8, codes: &[u8; BLOCK], out: &mut [u8]) {
    match bits {
        8 => out[..32].copy_from_slice(codes),
        4 => {
            for i in 0..16 {
                out[i] = (codes[i] & 0x0f) | (codes[i + 16] << 4);
            }
        }
        2 => pack_2bit(codes, &mut out[..8]),
        3 | 5 => {
            let low = bits as usize * 4 - 4;
            if bits == 3 {
                pack_2bit(codes, &mut out[..low]);
            } else {
                for i in 0..16 {
                    out[i] = (codes[i] & 0x0f) | ((codes[i + 16] & 0x0f) << 4);
                }
            }
            let mut high = 0u32;
            for (r, &c) in codes.iter().enumerate() {
                high |= (((c >> (bits - 1)) & 1) as u32) << r;
            }
            out[low..low + 4].copy_from_slice(&high.to_le_bytes());
        }
        _ => unreachable!("bits validated by GroupedLayout"),
    }
}

/// Unpacks one block packed by [`pack_block`].
pub fn unpack_block(bits: u8, packed: &[u8]) -> [u8; BLOCK] {
    let mut codes = [0u8; BLOCK];
    match bits {
        8 => codes.copy_from_slice(&packed[..32]),
        4 => {
            for i in 0..16 {
                codes[i] = packed[i] & 0x0f;
                codes[i + 16] = packed[i] >> 4;
            }
        }
        2 => unpack_2bit(&packed[..8], &mut codes),
        3 | 5 => {
            let low = bits as usize * 4 - 4;
            if bits == 3 {
                unpack_2bit(&packed[..low], &mut codes);
            } else {
                for i in 0..16 {
                    codes[i] = packed[i] & 0x0f;
                    codes[i + 16] = packed[i] >> 4;
                }
            }
            let high = u32::from_le_bytes([
                packed[low],
                packed[low + 1],
                packed[low + 2],
                packed[low + 3],
            ]);
            for (r, c) in codes.iter_mut().enumerate() {
                *c |= (((high >> r) & 1) as u8) << (bits - 1);
            }
        }
        _ => unreachable!("bits validated by GroupedLayout"),
    }
    codes
}

fn pack_2bit(codes: &[u8; BLOCK], out: &mut [u8]) {
    for (i, o) in out.iter_mut().enumerate().take(8) {
        *o = (codes[i] & 3)
            | ((codes[i + 8] & 3) << 2)
            | ((codes[i + 16] & 3) << 4)
            | ((codes[i + 24] & 3) << 6);
    }
}

fn unpack_2bit(packed: &[u8], codes: &mut [u8; BLOCK]) {
    for (i, &b) in packed.iter().enumerate().take(8) {
        for j in 0..4 {
            codes[i + 8 * j] = (b >> (2 * j)) & 3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_identity_for_every_width() {
        for bits in BITS.into_iter().chain([5]) {
            let layout = GroupedLayout::new(bits, 32).unwrap_or(GroupedLayout::five_bit_tiles());
            assert_eq!(layout.bits(), bits);
            let mut codes = [0u8; BLOCK];
            for (r, c) in codes.iter_mut().enumerate() {
                *c = ((r * 7 + 3) % (layout.max_code() as usize + 1)) as u8;
            }
            let mut packed = vec![0u8; layout.block_bytes()];
            pack_block(bits, &codes, &mut packed);
            assert_eq!(unpack_block(bits, &packed), codes, "int{bits}");
        }
    }

    #[test]
    fn documented_bit_positions() {
        let mut codes = [0u8; BLOCK];
        codes[0] = 0x3;
        codes[16] = 0xa;
        let mut p = [0u8; 16];
        pack_block(4, &codes, &mut p);
        assert_eq!(p[0], 0xa3, "int4: value 16 in the high nibble of byte 0");

        let mut codes = [0u8; BLOCK];
        codes[9] = 0b10;
        codes[31] = 0b111;
        let mut p = [0u8; 12];
        pack_block(3, &codes, &mut p);
        assert_eq!(p[1], 0b10 << 2, "int3: value 9 → byte 1, bits 2..4");
        assert_eq!(p[7] >> 6, 0b11, "int3: value 31 → byte 7, bits 6..8");
        assert_eq!(p[11] >> 7, 1, "int3: high bit of value 31 → bit 31");

        let mut codes = [0u8; BLOCK];
        codes[17] = 0b1_0110;
        let mut p = [0u8; 20];
        pack_block(5, &codes, &mut p);
        assert_eq!(p[1], 0x60, "5 bits: value 17's low bits in the high nibble of byte 1");
        assert_eq!(p[18], 0b10, "5 bits: its fifth bit is bit 17 of the u32 at 16");
    }

    #[test]
    fn sizes() {
        let l = GroupedLayout::new(4, 32).unwrap();
        assert_eq!(l.storage_bytes(2, 33), 2 * (2 * 16 + 2 * 4));
        let l = GroupedLayout::new(3, 128).unwrap();
        assert_eq!(l.storage_bytes(1, 256), 8 * 12 + 2 * 4);
        assert!(GroupedLayout::new(5, 32).is_err());
        assert!(GroupedLayout::new(4, 48).is_err());
    }
}
