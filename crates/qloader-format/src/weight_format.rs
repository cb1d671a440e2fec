//! The storage formats a quantizable weight can take, with their names and
//! their cost in bits per weight (scales and offsets included).
//!
//! Names: `f32`, `f16`, `int8` (per output channel, symmetric), and
//! `int{8,4,3,2}g{32,64,128}` for the grouped formats of
//! [`crate::grouped`] (`int4`, `int3` and `int2` alone mean groups of 32),
//! `int5k`, `int4k`, `int3k`, `int2k`, `nl4k` for the compact formats of
//! [`crate::compact`], and `q4_0`, `q8_0`, `iq4_nl` for llama.cpp's 32-value
//! blocks ([`crate::block32`]).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::str::FromStr;

use crate::block32::BlockLayout;
use crate::compact::CompactLayout;
use crate::error::FormatError;
use crate::format_family::FormatFamily;
use crate::grouped::GroupedLayout;

/// How one weight matrix is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum WeightFormat {
    /// 32-bit IEEE floats, as trained.
    F32,
    /// 16-bit IEEE floats.
    F16,
    /// Signed 8-bit codes, one symmetric `f32` scale per output channel (row).
    Int8PerChannel,
    /// Unsigned codes in groups along the input dimension, each group with an
    /// `f16` scale and `f16` offset (see [`crate::grouped`]).
    Grouped(GroupedLayout),
    /// Codes in sub-blocks of 32 whose scales (and mins) are quantized
    /// under `f16` super-scales (see [`crate::compact`]).
    Compact(CompactLayout),
    /// llama.cpp's 32-value blocks of one `f16` scale and signed codes
    /// (see [`crate::block32`]).
    Block(BlockLayout),
}

const KNOWN: &str = "f32, f16, int8, int4, int3, int2, int{8,4,3,2}g{32,64,128}, int5k, int4k, \
                     int3k, int2k, nl4k, q4_0, q5_0, q8_0, iq4_nl";

impl WeightFormat {
    /// A grouped format; panics on an invalid combination (for constants).
    pub fn grouped(bits: u8, group: usize) -> Self {
        match GroupedLayout::new(bits, group) {
            Ok(l) => WeightFormat::Grouped(l),
            Err(e) => panic!("{e}"),
        }
    }

    /// Every format, grouped ones by bits then group size.
    pub fn all() -> Vec<Self> {
        let mut all = vec![WeightFormat::F32, WeightFormat::F16, WeightFormat::Int8PerChannel];
        for bits in crate::grouped::BITS {
            for group in crate::grouped::GROUPS {
                all.extend(GroupedLayout::new(bits, group).map(WeightFormat::Grouped));
            }
        }
        all.extend(CompactLayout::all().map(WeightFormat::Compact));
        all.extend(BlockLayout::ALL.map(WeightFormat::Block));
        all
    }

    /// Int4 in groups of 32, the default 4-bit format.
    pub fn int4() -> Self {
        Self::grouped(4, 32)
    }

    /// The short name used on the command line and in reports.
    pub fn name(self) -> String {
        match self {
            WeightFormat::F32 => "f32".to_owned(),
            WeightFormat::F16 => "f16".to_owned(),
            WeightFormat::Int8PerChannel => "int8".to_owned(),
            WeightFormat::Grouped(l) if l.group() == 32 && l.bits() != 8 => {
                format!("int{}", l.bits())
            }
            WeightFormat::Grouped(l) => format!("int{}g{}", l.bits(), l.group()),
            WeightFormat::Compact(l) => l.name(),
            WeightFormat::Block(l) => l.name().to_owned(),
        }
    }

    /// The format's family: its element type regardless of grouping (see
    /// [`FormatFamily`]). Device profiles name kernels by family.
    pub fn family(self) -> FormatFamily {
        match self {
            WeightFormat::F32 => FormatFamily::F32,
            WeightFormat::F16 => FormatFamily::F16,
            WeightFormat::Int8PerChannel => FormatFamily::Int8,
            WeightFormat::Grouped(l) => int_family(l.bits()),
            WeightFormat::Compact(l) if l.is_nonuniform() => FormatFamily::Nl4,
            WeightFormat::Compact(l) => int_family(l.bits()),
            WeightFormat::Block(l) if l.is_nonuniform() => FormatFamily::Nl4,
            WeightFormat::Block(l) => int_family(l.bits()),
        }
    }

    /// Bytes needed to store a `rows × cols` matrix in this format.
    pub fn storage_bytes(self, rows: usize, cols: usize) -> usize {
        match self {
            WeightFormat::F32 => rows * cols * 4,
            WeightFormat::F16 => rows * cols * 2,
            WeightFormat::Int8PerChannel => rows * cols + rows * 4,
            WeightFormat::Grouped(l) => l.storage_bytes(rows, cols),
            WeightFormat::Compact(l) => l.storage_bytes(rows, cols),
            WeightFormat::Block(l) => l.storage_bytes(rows, cols),
        }
    }

    /// Nominal bits per weight (ignoring per-row padding).
    pub fn bits_per_weight(self) -> f64 {
        match self {
            WeightFormat::F32 => 32.0,
            WeightFormat::F16 => 16.0,
            WeightFormat::Int8PerChannel => 8.0,
            WeightFormat::Grouped(l) => l.bits() as f64 + 32.0 / l.group() as f64,
            WeightFormat::Compact(l) => l.bits_per_weight(),
            WeightFormat::Block(l) => l.bits_per_weight(),
        }
    }
}

/// `formats`' names, comma-separated (for messages).
pub fn join_names(formats: &[WeightFormat]) -> String {
    formats.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

/// The family of integer codes of `bits` bits (the layouts allow 8, 5, 4,
/// 3 and 2). 5-bit codes (`int5k`, `q5_0`) are int8's: every kernel tier
/// that multiplies 8-bit tiles multiplies their 5-bit ones.
fn int_family(bits: u8) -> FormatFamily {
    match bits {
        5 => FormatFamily::Int8,
        _ => FormatFamily::of_int_bits(bits).unwrap_or(FormatFamily::Int2),
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for WeightFormat {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || FormatError::UnknownFormat { name: s.to_owned(), known: KNOWN };
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "f32" | "fp32" => return Ok(WeightFormat::F32),
            "f16" | "fp16" => return Ok(WeightFormat::F16),
            "int8" | "i8" => return Ok(WeightFormat::Int8PerChannel),
            "nl4k" => return Ok(WeightFormat::Compact(CompactLayout::nl4())),
            _ => {}
        }
        if let Ok(layout) = BlockLayout::from_name(&lower) {
            return Ok(WeightFormat::Block(layout));
        }
        let rest = lower.strip_prefix("int").ok_or_else(unknown)?;
        if let Some(bits) = rest.strip_suffix('k') {
            let bits = bits.parse::<u8>().map_err(|_| unknown())?;
            return CompactLayout::new(bits).map(WeightFormat::Compact).map_err(|_| unknown());
        }
        let (bits, group) = match rest.split_once('g') {
            Some((b, g)) => (b, g.parse::<usize>().map_err(|_| unknown())?),
            None => (rest, 32),
        };
        let bits = bits.parse::<u8>().map_err(|_| unknown())?;
        GroupedLayout::new(bits, group).map(WeightFormat::Grouped).map_err(|_| unknown())
    }
}

serde_as_name!(WeightFormat);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let all = WeightFormat::all();
        assert_eq!(all.len(), 24);
        for &f in &all {
            assert_eq!(f.name().parse::<WeightFormat>().unwrap(), f, "{f}");
        }
        assert_eq!("int4".parse::<WeightFormat>().unwrap(), WeightFormat::int4());
        assert_eq!("INT3G128".parse::<WeightFormat>().unwrap(), WeightFormat::grouped(3, 128));
        assert_eq!("INT3K".parse::<WeightFormat>().unwrap().family(), FormatFamily::Int3);
        assert_eq!("NL4K".parse::<WeightFormat>().unwrap().family(), FormatFamily::Nl4);
        assert_eq!("int5k".parse::<WeightFormat>().unwrap().family(), FormatFamily::Int8);
        assert_eq!("q5_0".parse::<WeightFormat>().unwrap().family(), FormatFamily::Int8);
        for f in &all {
            assert_eq!(f.family().takes_int8_activations(), f.bits_per_weight() < 16.0, "{f}");
            let json = serde_json::to_string(f).unwrap();
            assert_eq!(json, format!("\"{f}\""));
            assert_eq!(serde_json::from_str::<WeightFormat>(&json).unwrap(), *f);
        }
        let err = serde_json::from_str::<WeightFormat>("\"int5\"").unwrap_err().to_string();
        assert!(err.contains("unknown weight format `int5`"), "{err}");
        assert_eq!("nl4k".parse::<WeightFormat>().unwrap().bits_per_weight(), 4.25);
        assert_eq!("Q4_0".parse::<WeightFormat>().unwrap().family(), FormatFamily::Int4);
        assert_eq!("iq4_nl".parse::<WeightFormat>().unwrap().family(), FormatFamily::Nl4);
        assert_eq!("q8_0".parse::<WeightFormat>().unwrap().bits_per_weight(), 8.5);
        for bad in [
            "int5", "int4g48", "int", "intg32", "bf17", "int4g", "int8k", "intk", "int4gk", "nl3k",
            "nl4", "q4_1", "q5_1", "iq4_xs",
        ] {
            assert!(bad.parse::<WeightFormat>().is_err(), "{bad}");
        }
    }

    #[test]
    fn storage_sizes() {
        assert_eq!(WeightFormat::F32.storage_bytes(2, 3), 24);
        assert_eq!(WeightFormat::F16.storage_bytes(2, 3), 12);
        assert_eq!(WeightFormat::Int8PerChannel.storage_bytes(2, 3), 6 + 8);
        // 33 columns: two blocks of 16 bytes and two groups of 4 bytes per row.
        assert_eq!(WeightFormat::int4().storage_bytes(2, 33), 2 * (32 + 8));
        assert_eq!(WeightFormat::grouped(2, 64).bits_per_weight(), 2.5);
    }
}
