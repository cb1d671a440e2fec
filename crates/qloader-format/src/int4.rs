//! Bit layout of the 4-bit group format.
//!
//! A row of `cols` weights is cut into groups of [`INT4_GROUP`] = 32
//! consecutive input-dimension values; the last group of a row may be partial
//! and is padded with code 0. Each group is one [`BlockInt4`]:
//!
//! ```text
//! offset 0  scale  : f16 (little endian)
//! offset 2  offset : f16 (little endian)
//! offset 4  codes  : 16 bytes; byte i holds value 2i in its low nibble and
//!                    value 2i+1 in its high nibble
//! ```
//!
//! A code `q ∈ 0..=15` stands for the weight `scale · q + offset` (an
//! asymmetric grid whose offset is the group's minimum).

use half::f16;

/// Number of weights in one group.
pub const INT4_GROUP: usize = 32;
/// Bytes one group occupies.
pub const INT4_BLOCK_BYTES: usize = 20;
/// Largest 4-bit code.
pub const INT4_MAX_CODE: u8 = 15;

/// One group of 32 four-bit weights with its scale and offset.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockInt4 {
    /// Step between consecutive codes.
    pub scale: f16,
    /// Value of code 0.
    pub offset: f16,
    /// Packed codes, two per byte, low nibble first.
    pub codes: [u8; INT4_GROUP / 2],
}

const _: () = assert!(std::mem::size_of::<BlockInt4>() == INT4_BLOCK_BYTES);

impl BlockInt4 {
    /// Packs up to 32 codes (each ≤ 15); missing tail codes are 0.
    pub fn pack(scale: f16, offset: f16, codes: &[u8]) -> Self {
        debug_assert!(codes.len() <= INT4_GROUP);
        let mut packed = [0u8; INT4_GROUP / 2];
        for (i, &q) in codes.iter().enumerate() {
            debug_assert!(q <= INT4_MAX_CODE);
            packed[i / 2] |= (q & 0x0f) << ((i % 2) * 4);
        }
        Self { scale, offset, codes: packed }
    }

    /// The code at position `i` of the group.
    #[inline]
    pub fn code(&self, i: usize) -> u8 {
        (self.codes[i / 2] >> ((i % 2) * 4)) & 0x0f
    }

    /// All 32 codes, unpacked.
    pub fn unpack(&self) -> [u8; INT4_GROUP] {
        let mut out = [0u8; INT4_GROUP];
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.code(i);
        }
        out
    }

    /// Serialises the block in the documented byte layout.
    pub fn to_bytes(&self) -> [u8; INT4_BLOCK_BYTES] {
        let mut b = [0u8; INT4_BLOCK_BYTES];
        b[0..2].copy_from_slice(&self.scale.to_le_bytes());
        b[2..4].copy_from_slice(&self.offset.to_le_bytes());
        b[4..].copy_from_slice(&self.codes);
        b
    }

    /// Reads a block from its documented byte layout.
    pub fn from_bytes(b: &[u8; INT4_BLOCK_BYTES]) -> Self {
        let mut codes = [0u8; INT4_GROUP / 2];
        codes.copy_from_slice(&b[4..]);
        Self {
            scale: f16::from_le_bytes([b[0], b[1]]),
            offset: f16::from_le_bytes([b[2], b[3]]),
            codes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_identity() {
        let codes: Vec<u8> = (0..32).map(|i| (i * 7 % 16) as u8).collect();
        let b = BlockInt4::pack(f16::from_f32(0.5), f16::from_f32(-1.0), &codes);
        assert_eq!(b.unpack().to_vec(), codes);
        assert_eq!(BlockInt4::from_bytes(&b.to_bytes()), b);
    }

    #[test]
    fn nibble_order_is_low_first() {
        let b = BlockInt4::pack(f16::ONE, f16::ZERO, &[0x3, 0xa]);
        assert_eq!(b.codes[0], 0xa3);
        assert_eq!(b.to_bytes()[4], 0xa3);
    }

    #[test]
    fn partial_group_pads_with_zero() {
        let b = BlockInt4::pack(f16::ONE, f16::ZERO, &[15; 5]);
        let u = b.unpack();
        assert!(u[..5].iter().all(|&q| q == 15));
        assert!(u[5..].iter().all(|&q| q == 0));
    }
}
