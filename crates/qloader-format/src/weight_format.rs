//! The storage formats a quantizable weight can take, with their names and
//! their cost in bits per weight (scales and offsets included).

use std::fmt;
use std::str::FromStr;

use crate::error::FormatError;
use crate::int4::{INT4_BLOCK_BYTES, INT4_GROUP};

/// How one weight matrix is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum WeightFormat {
    /// 32-bit IEEE floats, as trained.
    F32,
    /// Signed 8-bit codes, one symmetric `f32` scale per output channel (row).
    Int8PerChannel,
    /// Unsigned 4-bit codes in groups of 32 along the input dimension, each
    /// group with an `f16` scale and `f16` offset (see [`crate::int4`]).
    Int4Group32,
}

const KNOWN: &str = "f32, int8, int4";

impl WeightFormat {
    /// Every format, from most to least precise.
    pub const ALL: [WeightFormat; 3] =
        [WeightFormat::F32, WeightFormat::Int8PerChannel, WeightFormat::Int4Group32];

    /// The short name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::Int8PerChannel => "int8",
            WeightFormat::Int4Group32 => "int4",
        }
    }

    /// Bytes needed to store a `rows × cols` matrix in this format.
    pub fn storage_bytes(self, rows: usize, cols: usize) -> usize {
        match self {
            WeightFormat::F32 => rows * cols * 4,
            WeightFormat::Int8PerChannel => rows * cols + rows * 4,
            WeightFormat::Int4Group32 => rows * cols.div_ceil(INT4_GROUP) * INT4_BLOCK_BYTES,
        }
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WeightFormat {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(WeightFormat::F32),
            "int8" | "i8" => Ok(WeightFormat::Int8PerChannel),
            "int4" | "i4" => Ok(WeightFormat::Int4Group32),
            _ => Err(FormatError::UnknownFormat { name: s.to_owned(), known: KNOWN }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in WeightFormat::ALL {
            assert_eq!(f.name().parse::<WeightFormat>().unwrap(), f);
        }
        assert!("int5".parse::<WeightFormat>().is_err());
    }

    #[test]
    fn storage_sizes() {
        assert_eq!(WeightFormat::F32.storage_bytes(2, 3), 24);
        assert_eq!(WeightFormat::Int8PerChannel.storage_bytes(2, 3), 6 + 8);
        // 33 columns need two groups per row; each group is 20 bytes.
        assert_eq!(WeightFormat::Int4Group32.storage_bytes(2, 33), 2 * 2 * 20);
    }
}
