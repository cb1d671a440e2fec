//! Bit layout of the 32-value block formats `q4_0`, `q5_0`, `q8_0` and `iq4_nl`:
//! llama.cpp's blocks of the same names, byte for byte. Each block of 32
//! values is one `f16` scale `d` followed by its codes, with no offset and
//! no min, so a value is `d` times a signed level:
//!
//! | format | bytes per block | codes | level of code `q` | bits/weight |
//! |---|---:|---|---|---:|
//! | `q4_0` | 2 + 16 | value `j` in the low nibble of byte `j`, value `16 + j` in its high nibble | `q − 8` (−8 … 7) | 4.5 |
//! | `q5_0` | 2 + 4 + 16 | a little-endian `u32` whose bit `j` is value `j`'s fifth bit, then the low four bits as `q4_0`'s nibbles | `q − 16` (−16 … 15) | 5.5 |
//! | `q8_0` | 2 + 32 | byte `j` is value `j` as an `i8` | the `i8` itself (the quantizer uses −127 … 127) | 8.5 |
//! | `iq4_nl` | 2 + 16 | nibbles as `q4_0` | [`NL4_LEVELS`]`[q]` (−127 … 113, denser near zero) | 4.5 |
//!
//! A value is `d · level` computed in `f32` (`d` widened from `f16`), as
//! llama.cpp de-quantizes. A row of `cols` values is `⌈cols / 32⌉` blocks;
//! the last block of a row whose width is not a multiple of 32 is padded
//! with values of level 0 (`q4_0`'s code 8, `q5_0`'s 16, `iq4_nl`'s nearest level, 1,
//! code 8, with the padding never read back). On widths that are
//! multiples of 32 a row is exactly a row of the GGUF type, so a tensor in
//! one of these formats exports to GGUF as a copy of its bytes.
//!
//! Codes are handed out unsigned (`0 ..= max_code`): `q4_0` and `iq4_nl`'s
//! nibbles, `q5_0`'s five bits, and `q8_0`'s bytes read as `i8 + 128` (see [`BlockLayout::code`]).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use half::f16;

use crate::compact::NL4_LEVELS;
use crate::error::FormatError;
use crate::grouped::BLOCK;

/// A 32-value block format (validated by construction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockLayout {
    /// llama.cpp's `Q4_0`: 4-bit codes, levels `q − 8`.
    Q4_0,
    /// llama.cpp's `Q5_0`: 5-bit codes, levels `q − 16`.
    Q5_0,
    /// llama.cpp's `Q8_0`: signed 8-bit codes.
    Q8_0,
    /// llama.cpp's `IQ4_NL`: 4-bit codes indexing [`NL4_LEVELS`].
    Iq4Nl,
}

/// The names [`BlockLayout::from_name`] accepts.
pub const NAMES: &str = "q4_0, q5_0, q8_0, iq4_nl";

impl BlockLayout {
    /// Every block layout.
    pub const ALL: [Self; 4] = [Self::Q4_0, Self::Q5_0, Self::Q8_0, Self::Iq4Nl];

    /// The layout named `name` (`q4_0`, `q5_0`, `q8_0` or `iq4_nl`, lower
    /// case).
    pub fn from_name(name: &str) -> Result<Self, FormatError> {
        Self::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| FormatError::UnknownFormat { name: name.to_owned(), known: NAMES })
    }

    /// The format's name, llama.cpp's type name in lower case.
    pub fn name(self) -> &'static str {
        match self {
            Self::Q4_0 => "q4_0",
            Self::Q5_0 => "q5_0",
            Self::Q8_0 => "q8_0",
            Self::Iq4Nl => "iq4_nl",
        }
    }

    /// Bits per code.
    pub fn bits(self) -> u8 {
        match self {
            Self::Q4_0 | Self::Iq4Nl => 4,
            Self::Q5_0 => 5,
            Self::Q8_0 => 8,
        }
    }

    /// Whether codes index the non-uniform grid [`NL4_LEVELS`].
    pub fn is_nonuniform(self) -> bool {
        self == Self::Iq4Nl
    }

    /// Largest (unsigned) code.
    pub fn max_code(self) -> u8 {
        ((1u16 << self.bits()) - 1) as u8
    }

    /// The signed level of unsigned code `q` (the value is `d ·` this).
    pub fn level(self, q: u8) -> i16 {
        match self {
            Self::Q4_0 => (q & 0x0f) as i16 - 8,
            Self::Q5_0 => (q & 0x1f) as i16 - 16,
            Self::Q8_0 => q as i16 - 128,
            Self::Iq4Nl => NL4_LEVELS[(q & 0x0f) as usize] as i16,
        }
    }

    /// The levels the quantizer may use, lowest first (`q8_0` leaves out
    /// −128, as llama.cpp's quantizer does, so that the grid is symmetric).
    pub fn levels(self) -> impl Iterator<Item = (u8, i16)> {
        let first = if self == Self::Q8_0 { 1 } else { 0 };
        (first..=self.max_code()).map(move |q| (q, self.level(q)))
    }

    /// The unsigned code of the level `level` (which must be one of the
    /// layout's levels; `iq4_nl` searches its grid).
    pub fn code(self, level: i16) -> u8 {
        match self {
            Self::Q4_0 => (level + 8) as u8,
            Self::Q5_0 => (level + 16) as u8,
            Self::Q8_0 => (level + 128) as u8,
            Self::Iq4Nl => {
                NL4_LEVELS.iter().position(|&l| l as i16 == level).unwrap_or_default() as u8
            }
        }
    }

    /// The code of level 0's nearest level: what padding holds.
    pub fn padding_code(self) -> u8 {
        match self {
            Self::Q4_0 => 8,
            Self::Q5_0 => 16,
            Self::Q8_0 => 128,
            Self::Iq4Nl => 8,
        }
    }

    /// Bytes of one block.
    pub fn block_bytes(self) -> usize {
        2 + BLOCK * self.bits() as usize / 8
    }

    /// Bytes of one row of `cols` values.
    pub fn row_bytes(self, cols: usize) -> usize {
        cols.div_ceil(BLOCK) * self.block_bytes()
    }

    /// Bytes of a `rows × cols` matrix.
    pub fn storage_bytes(self, rows: usize, cols: usize) -> usize {
        rows * self.row_bytes(cols)
    }

    /// Bits per weight of full blocks.
    pub fn bits_per_weight(self) -> f64 {
        self.block_bytes() as f64 * 8.0 / BLOCK as f64
    }
}

/// One block, unpacked: its scale and 32 unsigned codes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Block {
    /// The scale.
    pub d: f16,
    /// Unsigned codes (see [`BlockLayout::level`]).
    pub codes: [u8; BLOCK],
}

impl Block {
    /// Reads a block from `bytes` (`layout.block_bytes()`).
    pub fn unpack(layout: BlockLayout, bytes: &[u8]) -> Self {
        let d = f16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]]));
        let mut codes = [0u8; BLOCK];
        let data = &bytes[2..layout.block_bytes()];
        match layout.bits() {
            8 => {
                for (q, &b) in codes.iter_mut().zip(data) {
                    *q = (b as i8 as i16 + 128) as u8;
                }
            }
            5 => {
                let high = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                for (j, q) in codes.iter_mut().enumerate() {
                    let nibble = data[4 + j % (BLOCK / 2)] >> (4 * (j / (BLOCK / 2))) & 0x0f;
                    *q = nibble | (((high >> j) & 1) as u8) << 4;
                }
            }
            _ => {
                for j in 0..BLOCK / 2 {
                    codes[j] = data[j] & 0x0f;
                    codes[j + BLOCK / 2] = data[j] >> 4;
                }
            }
        }
        Self { d, codes }
    }

    /// Writes the block into `out` (`layout.block_bytes()`).
    pub fn pack(&self, layout: BlockLayout, out: &mut [u8]) {
        out[0..2].copy_from_slice(&self.d.to_bits().to_le_bytes());
        let data = &mut out[2..layout.block_bytes()];
        match layout.bits() {
            8 => {
                for (b, &q) in data.iter_mut().zip(&self.codes) {
                    *b = (q as i16 - 128) as i8 as u8;
                }
            }
            5 => {
                let high = self
                    .codes
                    .iter()
                    .enumerate()
                    .fold(0u32, |h, (j, &q)| h | (u32::from(q >> 4 & 1) << j));
                data[..4].copy_from_slice(&high.to_le_bytes());
                let (lo, hi) = self.codes.split_at(BLOCK / 2);
                for ((b, &l), &h) in data[4..].iter_mut().zip(lo).zip(hi) {
                    *b = (l & 0x0f) | (h << 4);
                }
            }
            _ => {
                let (lo, hi) = self.codes.split_at(BLOCK / 2);
                for ((b, &l), &h) in data.iter_mut().zip(lo).zip(hi) {
                    *b = (l & 0x0f) | (h << 4);
                }
            }
        }
    }

    /// The 32 values, `d · level` in `f32`.
    pub fn values(&self, layout: BlockLayout) -> [f32; BLOCK] {
        let d = self.d.to_f32();
        std::array::from_fn(|j| layout.level(self.codes[j]) as f32 * d)
    }
}

/// De-quantizes one row of `cols` values stored in `row`
/// (`layout.row_bytes(cols)` bytes) into `out` (`cols` values).
///
/// # Panics
/// If `row` or `out` is shorter than that.
pub fn dequantize_row(layout: BlockLayout, row: &[u8], cols: usize, out: &mut [f32]) {
    let n = layout.block_bytes();
    for (b, y) in out[..cols].chunks_mut(BLOCK).enumerate() {
        let values = Block::unpack(layout, &row[b * n..(b + 1) * n]).values(layout);
        y.copy_from_slice(&values[..y.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sizes_and_levels() {
        for l in BlockLayout::ALL {
            assert_eq!(BlockLayout::from_name(l.name()).unwrap(), l);
            for (q, level) in l.levels() {
                assert_eq!(l.code(level), q, "{}", l.name());
            }
            assert_eq!(l.level(l.padding_code()).abs(), if l.is_nonuniform() { 1 } else { 0 });
        }
        assert!(BlockLayout::from_name("q4_1").is_err());
        assert_eq!(BlockLayout::Q4_0.row_bytes(33), 2 * 18);
        assert_eq!(BlockLayout::Q8_0.storage_bytes(3, 64), 3 * 2 * 34);
        assert_eq!(BlockLayout::Iq4Nl.bits_per_weight(), 4.5);
        assert_eq!(BlockLayout::Q8_0.bits_per_weight(), 8.5);
        assert_eq!(BlockLayout::Q8_0.levels().next(), Some((1, -127)));
        assert_eq!(BlockLayout::Q5_0.block_bytes(), 22);
        let levels: Vec<i16> = BlockLayout::Q5_0.levels().map(|(_, l)| l).collect();
        assert_eq!((levels.len(), levels[0], levels[31]), (32, -16, 15));
    }

    #[test]
    fn blocks_round_trip_and_place_codes_as_documented() {
        for l in BlockLayout::ALL {
            let codes = std::array::from_fn(|j| ((j * 7 + 3) % (l.max_code() as usize + 1)) as u8);
            let block = Block { d: f16::from_f32(0.25), codes };
            let mut bytes = vec![0u8; l.block_bytes()];
            block.pack(l, &mut bytes);
            assert_eq!(Block::unpack(l, &bytes), block, "{}", l.name());
            assert_eq!(bytes[0..2], f16::from_f32(0.25).to_le_bytes());
        }
        let mut codes = [0u8; BLOCK];
        codes[0] = 0x3;
        codes[16] = 0xa;
        let mut bytes = [0u8; 18];
        Block { d: f16::ONE, codes }.pack(BlockLayout::Q4_0, &mut bytes);
        assert_eq!(bytes[2], 0xa3, "value 16 in the high nibble of the first code byte");
        let mut row = [0.0f32; 40];
        let mut stored = vec![0u8; BlockLayout::Q4_0.row_bytes(40)];
        let pad = Block { d: f16::ONE, codes: [8; BLOCK] };
        pad.pack(BlockLayout::Q4_0, &mut stored[18..]);
        Block { d: f16::from_f32(2.0), codes }.pack(BlockLayout::Q4_0, &mut stored[..18]);
        dequantize_row(BlockLayout::Q4_0, &stored, 40, &mut row);
        assert_eq!((row[0], row[1], row[16], row[39]), (-10.0, -16.0, 4.0, 0.0));
        // q5_0: value j's fifth bit is bit j of the u32 after d.
        let mut codes = [16u8; BLOCK];
        codes[1] = 0x13;
        codes[17] = 0x0a;
        let mut bytes = [0u8; 22];
        Block { d: f16::ONE, codes }.pack(BlockLayout::Q5_0, &mut bytes);
        let high = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        assert_eq!(high, !(1u32 << 17), "{high:#x}");
        assert_eq!(bytes[7], 0xa3);
    }
}
