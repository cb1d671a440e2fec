//! Bit layout of the compact grouped formats `int5k`, `int4k`, `int3k`,
//! `int2k` and `nl4k`: codes in sub-blocks of 32 values whose scales (and
//! mins) are themselves quantized (to 6 or 4 bits) under `f16` super-scales
//! per super-block of 256 values, as llama.cpp's k-quants do. The `int*k`
//! formats cost 5.5, 4.5, 3.5 and 2.375 bits per weight where the grouped
//! formats with one `f16` scale and offset per 32 values cost 6, 5, 4 and 3
//! (there is no 5-bit grouped format; `q5_0`, symmetric, costs 5.5). `nl4k`
//! (4.25 bits) has no mins: its 4-bit codes index a fixed non-uniform grid
//! of 16 levels ([`NL4_LEVELS`], denser near zero, where most weights are)
//! under one signed scale per sub-block.
//!
//! A row is cut into super-blocks of 256 values; the last one may be
//! shorter (any multiple of 32 after padding the row with zeros), so any
//! width works. A super-block of `n` sub-blocks is:
//!
//! | bytes | what |
//! |---|---|
//! | 2 | `d`, `f16`: the scale of the sub-block scales |
//! | 2 | `dmin`, `f16`: the scale of the sub-block mins (not in `nl4k`) |
//! | 12 (`int5k`, `int4k`, `int3k`) | eight 6-bit scales and eight 6-bit mins, packed as llama.cpp's `Q4_K` packs them; a short super-block's `n` scales then `n` mins, 6 bits each, least significant bit first, in `⌈12n/8⌉` bytes |
//! | `n` (`int2k`) | one byte per sub-block: scale in the low nibble, min in the high one |
//! | 6 (`nl4k`) | eight 6-bit scales as llama.cpp's `IQ4_XS` packs them: a little-endian `u16` of their top two bits (scale `s` at bit `2s`), then four bytes of their low nibbles (scale `s` in byte `s/2`, low nibble for even `s`); a short super-block's `n` scales packed tight as above |
//! | codes | `int4k`: pairs of sub-blocks in 32 bytes, sub-block `2j` in the low nibbles and `2j + 1` in the high ones (`Q4_K`'s order; `⌈n/2⌉ · 32` bytes); `int5k`: first the fifth bits, then the low four bits as `int4k`'s — in a full super-block 32 bytes, bit `s` of byte `l` the fifth bit of sub-block `s`'s value `l` (`Q5_K`'s `qh`), in a short one 4 bytes per sub-block, value `l` of sub-block `s` at bit `l % 8` of byte `4s + l / 8`; `int3k`, `int2k`, `nl4k`: each sub-block as a 32-value block of [`crate::grouped`] (12, 8 or 16 bytes; `nl4k`'s is `IQ4_XS`'s: value `j` in the low nibble of byte `j`, value `16 + j` in its high nibble) |
//!
//! Value `v` of sub-block `s` with code `q` stands for
//! `(d · sc[s]) · q − dmin · m[s]` in the `int*k` formats and
//! `(d · (sc[s] − 32)) · NL4_LEVELS[q]` in `nl4k`, computed in `f32` in that
//! order. Missing sub-blocks of a short super-block have scale and min 0.
//!
//! On rows whose width is a multiple of 256, `int5k` and `int4k` are byte
//! for byte llama.cpp's `Q5_K` and `Q4_K` (blocks `block_q5_K`,
//! `block_q4_K`) and `nl4k` its `IQ4_XS` (block `block_iq4_xs`), so a row
//! is a run of those blocks and de-quantizes to the same floats.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use half::f16;

use crate::error::FormatError;
use crate::grouped::{pack_block, unpack_block, BLOCK};

/// Values per super-block.
pub const SUPER: usize = 256;

/// Sub-blocks per full super-block.
pub const SUBS: usize = SUPER / BLOCK;

/// Code widths of the compact formats with uniform levels (`int*k`).
pub const BITS: [u8; 4] = [2, 3, 4, 5];

/// The levels of `nl4k`'s 4-bit codes (llama.cpp's `IQ4_NL`/`IQ4_XS` grid),
/// in units of the sub-block scale.
pub const NL4_LEVELS: [i8; 16] =
    [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// The offset of `nl4k`'s stored sub-block scales: stored `sc` means the
/// signed multiple `sc − 32` of `d`.
pub const NL4_SCALE_BIAS: i32 = 32;

/// What a code stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Levels {
    /// `scale · q − min`: evenly spaced levels with a min (`int*k`).
    Uniform,
    /// `scale · NL4_LEVELS[q]`, the scale signed (`nl4k`).
    NonUniform,
}

/// A compact format: its code width and what its codes stand for
/// (validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompactLayout {
    bits: u8,
    levels: Levels,
}

impl CompactLayout {
    /// The `int{bits}k` layout, if `bits ∈ {2, 3, 4}`.
    pub fn new(bits: u8) -> Result<Self, FormatError> {
        if BITS.contains(&bits) {
            Ok(Self { bits, levels: Levels::Uniform })
        } else {
            Err(FormatError::UnknownFormat {
                name: format!("int{bits}k"),
                known: "int5k, int4k, int3k, int2k, nl4k",
            })
        }
    }

    /// `int5k`: 5-bit codes (llama.cpp's `Q5_K` on rows of a multiple of
    /// 256 values).
    pub const fn int5() -> Self {
        Self { bits: 5, levels: Levels::Uniform }
    }

    /// `nl4k`: 4-bit codes on the non-uniform grid [`NL4_LEVELS`].
    pub const fn nl4() -> Self {
        Self { bits: 4, levels: Levels::NonUniform }
    }

    /// Every compact layout.
    pub fn all() -> [Self; 5] {
        [
            Self { bits: 2, levels: Levels::Uniform },
            Self { bits: 3, levels: Levels::Uniform },
            Self { bits: 4, levels: Levels::Uniform },
            Self::int5(),
            Self::nl4(),
        ]
    }

    /// The format's name: `int5k`, `int4k`, `int3k`, `int2k` or `nl4k`.
    pub fn name(self) -> String {
        match self.levels {
            Levels::Uniform => format!("int{}k", self.bits),
            Levels::NonUniform => format!("nl{}k", self.bits),
        }
    }

    /// Whether codes index the non-uniform grid (`nl4k`) rather than
    /// evenly spaced levels with a min.
    pub fn is_nonuniform(self) -> bool {
        self.levels == Levels::NonUniform
    }

    /// Bits per code.
    pub fn bits(self) -> u8 {
        self.bits
    }

    /// Largest code.
    pub fn max_code(self) -> u8 {
        ((1u16 << self.bits) - 1) as u8
    }

    /// The level code `q` stands for, in units of its sub-block's scale:
    /// `q` itself, or `NL4_LEVELS[q]`.
    pub fn level(self, q: u8) -> f32 {
        match self.levels {
            Levels::Uniform => q as f32,
            Levels::NonUniform => NL4_LEVELS[(q & 0x0f) as usize] as f32,
        }
    }

    /// The value of code `q` in a sub-block of `scale` and `offset` (from
    /// [`SuperBlock::sub_grid`]), in `f32` as the layout defines it.
    pub fn value(self, scale: f32, offset: f32, q: u8) -> f32 {
        match self.levels {
            Levels::Uniform => scale * q as f32 + offset,
            Levels::NonUniform => scale * self.level(q),
        }
    }

    /// Bits of each quantized sub-block scale and min.
    pub fn scale_bits(self) -> u8 {
        if self.bits == 2 {
            4
        } else {
            6
        }
    }

    /// Largest quantized sub-block scale or min.
    pub fn max_scale(self) -> u8 {
        ((1u16 << self.scale_bits()) - 1) as u8
    }

    /// Bytes of the packed sub-block scales and mins of a super-block of
    /// `subs` sub-blocks: a full one's as `Q4_K`'s (12 bytes) or one byte per
    /// sub-block (4-bit); a short one's 6-bit values packed tight.
    pub fn scale_bytes(self, subs: usize) -> usize {
        if self.is_nonuniform() {
            return (6 * subs).div_ceil(8);
        }
        match (self.bits, subs) {
            (2, n) => n,
            (_, SUBS) => 12,
            (_, n) => (12 * n).div_ceil(8),
        }
    }

    /// Bytes of the codes of `subs` sub-blocks.
    pub fn code_bytes(self, subs: usize) -> usize {
        if self.pairs_sub_blocks() {
            self.fifth_bit_bytes(subs) + subs.div_ceil(2) * 32
        } else {
            subs * BLOCK * self.bits as usize / 8
        }
    }

    /// Whether the low four bits of sub-blocks are stored in pairs, `2j` in
    /// the low nibbles and `2j + 1` in the high ones (`int4k` and `int5k`,
    /// as `Q4_K` and `Q5_K`); otherwise each is a 32-value block of
    /// [`crate::grouped`].
    fn pairs_sub_blocks(self) -> bool {
        self.bits >= 4 && !self.is_nonuniform()
    }

    /// Bytes of the fifth bits of `subs` sub-blocks' codes (`int5k`): 32 in
    /// a full super-block (`Q5_K`'s `qh`), 4 per sub-block in a short one.
    fn fifth_bit_bytes(self, subs: usize) -> usize {
        match (self.bits, subs) {
            (5, SUBS) => 32,
            (5, n) => 4 * n,
            _ => 0,
        }
    }

    /// Bytes of the super-scales (`d`, and `dmin` where there are mins).
    fn super_scale_bytes(self) -> usize {
        if self.is_nonuniform() {
            2
        } else {
            4
        }
    }

    /// Bytes of a super-block of `subs` sub-blocks.
    pub fn super_block_bytes(self, subs: usize) -> usize {
        self.super_scale_bytes() + self.scale_bytes(subs) + self.code_bytes(subs)
    }

    /// Bytes of one row of `cols` values.
    pub fn row_bytes(self, cols: usize) -> usize {
        let full = cols / SUPER;
        let tail = (cols % SUPER).div_ceil(BLOCK);
        full * self.super_block_bytes(SUBS)
            + if tail > 0 { self.super_block_bytes(tail) } else { 0 }
    }

    /// Bytes of a `rows × cols` matrix.
    pub fn storage_bytes(self, rows: usize, cols: usize) -> usize {
        rows * self.row_bytes(cols)
    }

    /// Bits per weight of full super-blocks.
    pub fn bits_per_weight(self) -> f64 {
        self.super_block_bytes(SUBS) as f64 * 8.0 / SUPER as f64
    }
}

/// One super-block, unpacked: the super-scales, the quantized sub-block
/// scales and mins (`dmin` and the mins are 0 in `nl4k`), and every code.
#[derive(Debug, Clone, PartialEq)]
pub struct SuperBlock {
    /// Scale of the sub-block scales.
    pub d: f16,
    /// Scale of the sub-block mins.
    pub dmin: f16,
    /// Quantized scale of each sub-block (at most the layout's max scale).
    pub scales: [u8; SUBS],
    /// Quantized min of each sub-block.
    pub mins: [u8; SUBS],
    /// Codes, `32 · subs` of them (at most the layout's max code).
    pub codes: Vec<u8>,
}

impl SuperBlock {
    /// Sub-blocks held.
    pub fn subs(&self) -> usize {
        self.codes.len() / BLOCK
    }

    /// Sub-block `s`'s effective scale and offset in `layout`: a code's
    /// value is `layout.value(scale, offset, q)` (`scale · q + offset`, or
    /// `scale · NL4_LEVELS[q]` with offset 0).
    pub fn sub_grid(&self, layout: CompactLayout, s: usize) -> (f32, f32) {
        let d = self.d.to_f32();
        if layout.is_nonuniform() {
            return (d * (self.scales[s] as i32 - NL4_SCALE_BIAS) as f32, 0.0);
        }
        (d * self.scales[s] as f32, -(self.dmin.to_f32() * self.mins[s] as f32))
    }

    /// Writes the super-block into `out` (`layout.super_block_bytes(subs)`).
    pub fn pack(&self, layout: CompactLayout, out: &mut [u8]) {
        let subs = self.subs();
        out[0..2].copy_from_slice(&self.d.to_bits().to_le_bytes());
        if !layout.is_nonuniform() {
            out[2..4].copy_from_slice(&self.dmin.to_bits().to_le_bytes());
        }
        let at = layout.super_scale_bytes();
        let scales_end = at + layout.scale_bytes(subs);
        let scales = &mut out[at..scales_end];
        match (layout.levels, layout.bits, subs) {
            (Levels::NonUniform, _, SUBS) => pack_scales_iq4_xs(&self.scales, scales),
            (Levels::NonUniform, _, n) => pack_short_6bit(&self.scales[..n], &[], scales),
            (_, 2, n) => {
                for (s, o) in scales.iter_mut().enumerate().take(n) {
                    *o = (self.scales[s] & 0x0f) | (self.mins[s] << 4);
                }
            }
            (_, _, SUBS) => pack_scales_6bit(&self.scales, &self.mins, scales),
            (_, _, n) => pack_short_6bit(&self.scales[..n], &self.mins[..n], scales),
        }
        let codes = &mut out[scales_end..scales_end + layout.code_bytes(subs)];
        if layout.pairs_sub_blocks() {
            codes.fill(0);
            let (fifth, codes) = codes.split_at_mut(layout.fifth_bit_bytes(subs));
            if !fifth.is_empty() {
                pack_fifth_bits(&self.codes, subs, fifth);
            }
            for (s, sub) in self.codes.chunks_exact(BLOCK).enumerate() {
                let pair = &mut codes[(s / 2) * 32..(s / 2) * 32 + 32];
                let shift = 4 * (s % 2);
                for (b, &q) in pair.iter_mut().zip(sub) {
                    *b |= (q & 0x0f) << shift;
                }
            }
        } else {
            let bytes = BLOCK * layout.bits as usize / 8;
            let mut sub = [0u8; BLOCK];
            for (chunk, o) in self.codes.chunks_exact(BLOCK).zip(codes.chunks_exact_mut(bytes)) {
                sub.copy_from_slice(chunk);
                pack_block(layout.bits, &sub, o);
            }
        }
    }

    /// Reads a super-block of `subs` sub-blocks from `bytes`.
    pub fn unpack(layout: CompactLayout, bytes: &[u8], subs: usize) -> Self {
        let half = |at: usize| f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
        let d = half(0);
        let dmin = if layout.is_nonuniform() { f16::ZERO } else { half(2) };
        let (mut scales, mut mins) = ([0u8; SUBS], [0u8; SUBS]);
        let at = layout.super_scale_bytes();
        let scales_end = at + layout.scale_bytes(subs);
        let packed = &bytes[at..scales_end];
        match (layout.levels, layout.bits, subs) {
            (Levels::NonUniform, _, SUBS) => scales = unpack_scales_iq4_xs(packed),
            (Levels::NonUniform, _, n) => unpack_short_6bit(packed, &mut scales[..n], &mut []),
            (_, 2, n) => {
                for s in 0..n {
                    scales[s] = packed[s] & 0x0f;
                    mins[s] = packed[s] >> 4;
                }
            }
            (_, _, SUBS) => (scales, mins) = unpack_scales_6bit(packed),
            (_, _, n) => unpack_short_6bit(packed, &mut scales[..n], &mut mins[..n]),
        }
        let codes_in = &bytes[scales_end..scales_end + layout.code_bytes(subs)];
        let mut codes = vec![0u8; subs * BLOCK];
        if layout.pairs_sub_blocks() {
            let (fifth, codes_in) = codes_in.split_at(layout.fifth_bit_bytes(subs));
            for (s, sub) in codes.chunks_exact_mut(BLOCK).enumerate() {
                let pair = &codes_in[(s / 2) * 32..(s / 2) * 32 + 32];
                let shift = 4 * (s % 2);
                for (q, &b) in sub.iter_mut().zip(pair) {
                    *q = (b >> shift) & 0x0f;
                }
            }
            if !fifth.is_empty() {
                unpack_fifth_bits(fifth, subs, &mut codes);
            }
        } else {
            let bytes = BLOCK * layout.bits as usize / 8;
            for (sub, packed) in codes.chunks_exact_mut(BLOCK).zip(codes_in.chunks_exact(bytes)) {
                sub.copy_from_slice(&unpack_block(layout.bits, packed));
            }
        }
        Self { d, dmin, scales, mins, codes }
    }
}

/// Where the fifth bit of sub-block `s`'s value `l` lies in the fifth-bit
/// bytes of a super-block of `subs` sub-blocks: (byte, bit).
fn fifth_bit_at(subs: usize, s: usize, l: usize) -> (usize, usize) {
    if subs == SUBS {
        (l, s)
    } else {
        (4 * s + l / 8, l % 8)
    }
}

/// Writes the fifth bits of `codes` (`subs` sub-blocks) into `out` (zeroed,
/// `int5k`'s fifth-bit bytes).
fn pack_fifth_bits(codes: &[u8], subs: usize, out: &mut [u8]) {
    for (i, &q) in codes.iter().enumerate() {
        let (byte, bit) = fifth_bit_at(subs, i / BLOCK, i % BLOCK);
        out[byte] |= ((q >> 4) & 1) << bit;
    }
}

/// Adds the fifth bits in `bytes` to `codes` (`subs` sub-blocks).
fn unpack_fifth_bits(bytes: &[u8], subs: usize, codes: &mut [u8]) {
    for (i, q) in codes.iter_mut().enumerate() {
        let (byte, bit) = fifth_bit_at(subs, i / BLOCK, i % BLOCK);
        *q |= ((bytes[byte] >> bit) & 1) << 4;
    }
}

/// Packs eight 6-bit scales into 6 bytes as llama.cpp's `IQ4_XS` does: a
/// little-endian `u16` of their top two bits (scale `s` at bit `2s`), then
/// four bytes of low nibbles (scale `s` in byte `s / 2`, the low nibble for
/// even `s`).
fn pack_scales_iq4_xs(scales: &[u8; SUBS], out: &mut [u8]) {
    let high = (0..SUBS).fold(0u16, |h, s| h | (((scales[s] >> 4) as u16 & 3) << (2 * s)));
    out[0..2].copy_from_slice(&high.to_le_bytes());
    for j in 0..SUBS / 2 {
        out[2 + j] = (scales[2 * j] & 0x0f) | ((scales[2 * j + 1] & 0x0f) << 4);
    }
}

/// Unpacks [`pack_scales_iq4_xs`].
fn unpack_scales_iq4_xs(q: &[u8]) -> [u8; SUBS] {
    let high = u16::from_le_bytes([q[0], q[1]]);
    std::array::from_fn(|s| {
        ((q[2 + s / 2] >> (4 * (s % 2))) & 0x0f) | ((((high >> (2 * s)) & 3) as u8) << 4)
    })
}

/// Packs eight 6-bit scales and mins into 12 bytes as llama.cpp's `Q4_K`
/// does: bytes 0..4 hold scales 0..4 (low 6 bits) and the top two bits of
/// scales 4..8; bytes 4..8 the same for the mins; bytes 8..12 the low
/// nibbles of scales 4..8 and, in their high nibbles, of mins 4..8.
pub fn pack_scales_6bit(scales: &[u8; SUBS], mins: &[u8; SUBS], out: &mut [u8]) {
    for j in 0..4 {
        out[j] = (scales[j] & 63) | ((scales[j + 4] >> 4) << 6);
        out[j + 4] = (mins[j] & 63) | ((mins[j + 4] >> 4) << 6);
        out[j + 8] = (scales[j + 4] & 0x0f) | ((mins[j + 4] & 0x0f) << 4);
    }
}

/// Unpacks [`pack_scales_6bit`].
pub fn unpack_scales_6bit(q: &[u8]) -> ([u8; SUBS], [u8; SUBS]) {
    let (mut scales, mut mins) = ([0u8; SUBS], [0u8; SUBS]);
    for j in 0..SUBS {
        if j < 4 {
            scales[j] = q[j] & 63;
            mins[j] = q[j + 4] & 63;
        } else {
            scales[j] = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
            mins[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
    (scales, mins)
}

/// Packs the 6-bit scales and then the 6-bit mins of a short super-block
/// (fewer than eight sub-blocks) tight, least significant bit first, into
/// `out` (`⌈12 · n / 8⌉` bytes).
fn pack_short_6bit(scales: &[u8], mins: &[u8], out: &mut [u8]) {
    out.fill(0);
    for (i, &v) in scales.iter().chain(mins).enumerate() {
        for b in 0..6 {
            let bit = 6 * i + b;
            out[bit / 8] |= ((v >> b) & 1) << (bit % 8);
        }
    }
}

/// Unpacks [`pack_short_6bit`] (`mins` empty where none were packed).
fn unpack_short_6bit(bytes: &[u8], scales: &mut [u8], mins: &mut [u8]) {
    let n = scales.len();
    for i in 0..n + mins.len() {
        let mut v = 0u8;
        for b in 0..6 {
            let bit = 6 * i + b;
            v |= ((bytes[bit / 8] >> (bit % 8)) & 1) << b;
        }
        if i < n {
            scales[i] = v;
        } else {
            mins[i - n] = v;
        }
    }
}

/// Calls `each(super_block_index, first_column, subs, bytes)` for every
/// super-block of a row of `cols` values stored in `row` (`row_bytes(cols)`).
pub fn for_each_super_block(
    layout: CompactLayout,
    row: &[u8],
    cols: usize,
    mut each: impl FnMut(usize, usize, usize, &[u8]),
) {
    let mut at = 0;
    for (i, start) in (0..cols).step_by(SUPER).enumerate() {
        let subs = (cols - start).min(SUPER).div_ceil(BLOCK);
        let len = layout.super_block_bytes(subs);
        each(i, start, subs, &row[at..at + len]);
        at += len;
    }
}

/// The values of one row of `cols` stored in `row`, into `out` (`cols`
/// long), exactly as the layout defines them (and as llama.cpp's `Q4_K` and
/// `IQ4_XS` de-quantize `int4k` and `nl4k` rows whose width is a multiple
/// of 256).
pub fn dequantize_row(layout: CompactLayout, row: &[u8], cols: usize, out: &mut [f32]) {
    for_each_code(layout, row, cols, |c, scale, offset, q| {
        out[c] = layout.value(scale, offset, q);
    });
}

/// Calls `each(column, scale, offset, code)` for each of the `cols` values
/// of a row stored in `row`: its code and its sub-block's grid
/// ([`SuperBlock::sub_grid`]).
pub fn for_each_code(
    layout: CompactLayout,
    row: &[u8],
    cols: usize,
    mut each: impl FnMut(usize, f32, f32, u8),
) {
    for_each_super_block(layout, row, cols, |_, start, subs, bytes| {
        let block = SuperBlock::unpack(layout, bytes, subs);
        for s in 0..subs {
            let (scale, offset) = block.sub_grid(layout, s);
            for l in 0..BLOCK {
                let c = start + s * BLOCK + l;
                if c < cols {
                    each(c, scale, offset, block.codes[s * BLOCK + l]);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_table() {
        let [i2, i3, i4, i5] = BITS.map(|b| CompactLayout::new(b).unwrap());
        assert_eq!(i4.super_block_bytes(SUBS), 144, "Q4_K's block_q4_K");
        assert_eq!(i5.super_block_bytes(SUBS), 176, "Q5_K's block_q5_K");
        assert_eq!(i5.bits_per_weight(), 5.5);
        // 576 wide: a short super-block of 2 sub-blocks with 4 + 4 bytes of
        // fifth bits and one pair of nibbles.
        assert_eq!(i5.row_bytes(576), 2 * 176 + 4 + 3 + 8 + 32);
        assert_eq!(i5.super_block_bytes(3), 4 + 5 + 12 + 64);
        assert_eq!(
            (i4.bits_per_weight(), i3.bits_per_weight(), i2.bits_per_weight()),
            (4.5, 3.5, 2.375)
        );
        // 576 = 2 · 256 + 64: two full super-blocks and one of 2 sub-blocks.
        // Its scales and mins take 3 bytes (int2k: 2).
        assert_eq!(i4.row_bytes(576), 2 * 144 + 4 + 3 + 32);
        assert_eq!(i3.row_bytes(576), 2 * 112 + 4 + 3 + 24);
        assert_eq!(i2.row_bytes(576), 2 * 76 + 4 + 2 + 16);
        // A 33-wide row pads to two sub-blocks.
        assert_eq!(i4.row_bytes(33), 4 + 3 + 32);
        assert_eq!(i3.super_block_bytes(7), 4 + 11 + 7 * 12);
        assert_eq!(i3.storage_bytes(3, 256), 3 * 112);
        assert!(CompactLayout::new(6).is_err() && CompactLayout::new(8).is_err());
        // nl4k: IQ4_XS's 136-byte block; 576 wide: 2 · 136 + 2 + 2 + 32.
        let nl4 = CompactLayout::nl4();
        assert_eq!((nl4.super_block_bytes(SUBS), nl4.bits_per_weight()), (136, 4.25));
        assert_eq!(nl4.row_bytes(576), 2 * 136 + 2 + 2 + 32);
        assert_eq!(nl4.super_block_bytes(3), 2 + 3 + 48);
    }

    #[test]
    fn nl4k_scales_and_codes_sit_where_iq4_xs_puts_them() {
        let layout = CompactLayout::nl4();
        let mut codes = vec![8u8; SUPER]; // level 1 everywhere
        codes[BLOCK + 20] = 0x0; // sub-block 1, value 20: high nibble of byte 16 + 4
        let mut scales = [33u8; SUBS]; // d · 1
        scales[5] = 0b10_1010; // top bits 0b10 at bit 10 of scales_h; low nibble 0xa
        let block = SuperBlock { d: f16::ONE, dmin: f16::ZERO, scales, mins: [0; SUBS], codes };
        let mut bytes = vec![0u8; 136];
        block.pack(layout, &mut bytes);
        assert_eq!(u16::from_le_bytes([bytes[2], bytes[3]]) >> 10 & 3, 0b10);
        assert_eq!(bytes[4 + 2] >> 4, 0xa);
        assert_eq!(
            bytes[8 + 16 + 4],
            0x08,
            "low nibble value 4 (code 8), high nibble value 20 (code 0)"
        );
        let mut out = vec![0.0; SUPER];
        dequantize_row(layout, &bytes, SUPER, &mut out);
        assert_eq!((out[0], out[BLOCK + 20], out[5 * BLOCK]), (1.0, -127.0, (42 - 32) as f32));
    }

    #[test]
    fn scales_pack_as_q4_k() {
        let scales = [1, 2, 3, 63, 17, 33, 48, 63];
        let mins = [0, 5, 60, 7, 63, 1, 32, 16];
        let mut q = [0u8; 12];
        pack_scales_6bit(&scales, &mins, &mut q);
        assert_eq!(unpack_scales_6bit(&q), (scales, mins));
        // llama.cpp's get_scale_min_k4 for j = 5: scale from the low nibble
        // of byte 9 and the top bits of byte 1.
        assert_eq!((q[9] & 0x0f) | ((q[1] >> 6) << 4), 33);
    }

    #[test]
    fn super_blocks_round_trip_for_every_width_and_length() {
        for layout in CompactLayout::all() {
            for subs in [1, 2, 3, 7, 8] {
                let codes: Vec<u8> = (0..subs * BLOCK)
                    .map(|i| (i * 5 % (layout.max_code() as usize + 1)) as u8)
                    .collect();
                let max = layout.max_scale();
                let block = SuperBlock {
                    d: f16::from_f32(0.01),
                    dmin: f16::from_f32(if layout.is_nonuniform() { 0.0 } else { 0.002 }),
                    scales: core::array::from_fn(|s| {
                        if s < subs {
                            (s as u8 * 7) % (max + 1)
                        } else {
                            0
                        }
                    }),
                    mins: core::array::from_fn(|s| {
                        if s < subs && !layout.is_nonuniform() {
                            (s as u8 * 3 + 1) % (max + 1)
                        } else {
                            0
                        }
                    }),
                    codes,
                };
                let mut bytes = vec![0u8; layout.super_block_bytes(subs)];
                block.pack(layout, &mut bytes);
                assert_eq!(
                    SuperBlock::unpack(layout, &bytes, subs),
                    block,
                    "{}, {subs}",
                    layout.name()
                );
            }
        }
    }

    #[test]
    fn int4k_codes_sit_where_q4_k_puts_them() {
        let layout = CompactLayout::new(4).unwrap();
        let mut codes = vec![0u8; SUPER];
        codes[BLOCK + 3] = 0xa; // sub-block 1, value 3: high nibble of byte 3
        codes[2 * BLOCK] = 0x5; // sub-block 2, value 0: low nibble of byte 32
        let block =
            SuperBlock { d: f16::ONE, dmin: f16::ZERO, scales: [1; SUBS], mins: [0; SUBS], codes };
        let mut bytes = vec![0u8; 144];
        block.pack(layout, &mut bytes);
        assert_eq!(bytes[16 + 3], 0xa0);
        assert_eq!(bytes[16 + 32], 0x05);
        let mut out = vec![0.0; SUPER];
        dequantize_row(layout, &bytes, SUPER, &mut out);
        assert_eq!((out[BLOCK + 3], out[2 * BLOCK], out[0]), (10.0, 5.0, 0.0));
    }
}
