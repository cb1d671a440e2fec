//! The format families: a weight format's element type regardless of its
//! grouping (`int4` covers `int4`, `int4g128` and `int4k`). Device profiles
//! and the kernel registry name kernels by family; fallbacks go from family
//! to family.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::str::FromStr;

use crate::error::FormatError;
use crate::ActivationFormat;

/// A weight format's element type (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FormatFamily {
    /// 32-bit floats.
    F32,
    /// 16-bit floats.
    F16,
    /// 8-bit integer codes (per channel or grouped).
    Int8,
    /// 4-bit integer codes (grouped or compact).
    Int4,
    /// 3-bit integer codes (grouped or compact).
    Int3,
    /// 2-bit integer codes (grouped or compact).
    Int2,
    /// 4-bit indices into the non-uniform grid of `nl4k`, whose products
    /// look each level up.
    Nl4,
}

impl FormatFamily {
    /// Every family, floats first, then integer codes from wide to narrow.
    pub const ALL: [FormatFamily; 7] = [
        FormatFamily::F32,
        FormatFamily::F16,
        FormatFamily::Int8,
        FormatFamily::Int4,
        FormatFamily::Int3,
        FormatFamily::Int2,
        FormatFamily::Nl4,
    ];

    /// The name profiles, the command line and reports use.
    pub fn name(self) -> &'static str {
        match self {
            FormatFamily::F32 => "f32",
            FormatFamily::F16 => "f16",
            FormatFamily::Int8 => "int8",
            FormatFamily::Int4 => "int4",
            FormatFamily::Int3 => "int3",
            FormatFamily::Int2 => "int2",
            FormatFamily::Nl4 => "nl4",
        }
    }

    /// The family of uniform integer codes of `bits` bits (8, 4, 3 or 2).
    pub fn of_int_bits(bits: u8) -> Option<FormatFamily> {
        match bits {
            8 => Some(FormatFamily::Int8),
            4 => Some(FormatFamily::Int4),
            3 => Some(FormatFamily::Int3),
            2 => Some(FormatFamily::Int2),
            _ => None,
        }
    }

    /// The width of a uniform integer family's codes; `None` for floats and
    /// `nl4`.
    pub fn int_bits(self) -> Option<u8> {
        match self {
            FormatFamily::Int8 => Some(8),
            FormatFamily::Int4 => Some(4),
            FormatFamily::Int3 => Some(3),
            FormatFamily::Int2 => Some(2),
            _ => None,
        }
    }

    /// Whether the weights are codes, whose products also take int8
    /// activations (integer dot products); float weights always multiply
    /// in `f32`.
    pub fn takes_int8_activations(self) -> bool {
        !matches!(self, FormatFamily::F32 | FormatFamily::F16)
    }

    /// The activations a product of this family's weights takes when
    /// `asked` are asked for: `asked` for codes, always `f32` for floats.
    pub fn product_activations(self, asked: ActivationFormat) -> ActivationFormat {
        if self.takes_int8_activations() {
            asked
        } else {
            ActivationFormat::F32
        }
    }

    /// The names of every family, comma-separated (for error messages).
    pub fn known() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl fmt::Display for FormatFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FormatFamily {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|f| f.name() == lower)
            .ok_or_else(|| FormatError::UnknownFamily { name: s.to_owned(), known: Self::known() })
    }
}

serde_as_name!(FormatFamily);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for f in FormatFamily::ALL {
            assert_eq!(f.name().parse::<FormatFamily>().unwrap(), f);
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{f}\""));
            assert_eq!(serde_json::from_str::<FormatFamily>(&json).unwrap(), f);
            assert_eq!(f.int_bits().and_then(FormatFamily::of_int_bits), f.int_bits().map(|_| f));
        }
        assert_eq!(" INT3 ".parse::<FormatFamily>().unwrap(), FormatFamily::Int3);
        let err = serde_json::from_str::<FormatFamily>("\"int5\"").unwrap_err().to_string();
        assert!(err.contains("unknown format family `int5`"), "{err}");
        assert!(err.contains("f32, f16, int8, int4, int3, int2, nl4"), "{err}");
    }

    #[test]
    fn only_codes_take_int8_activations() {
        let codes: Vec<_> =
            FormatFamily::ALL.into_iter().filter(|f| f.takes_int8_activations()).collect();
        assert_eq!(
            codes,
            [
                FormatFamily::Int8,
                FormatFamily::Int4,
                FormatFamily::Int3,
                FormatFamily::Int2,
                FormatFamily::Nl4
            ]
        );
    }
}
