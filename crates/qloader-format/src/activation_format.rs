//! How activations enter a product: as `f32`, or quantized to int8 per row on
//! the fly for integer dot products (W8A8, W4A8, …).

use std::fmt;
use std::str::FromStr;

use crate::error::FormatError;

/// The activation side of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum ActivationFormat {
    /// Activations stay `f32`; quantized weights are expanded to `f32`.
    #[default]
    F32,
    /// Activations are quantized to int8 per row (symmetric, dynamic) and
    /// multiplied with integer weight codes; float weights still use `f32`.
    Int8,
}

impl ActivationFormat {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ActivationFormat::F32 => "f32",
            ActivationFormat::Int8 => "int8",
        }
    }
}

impl fmt::Display for ActivationFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ActivationFormat {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(ActivationFormat::F32),
            "int8" | "i8" | "a8" => Ok(ActivationFormat::Int8),
            _ => Err(FormatError::UnknownActivations { name: s.to_owned() }),
        }
    }
}

serde_as_name!(ActivationFormat);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in [ActivationFormat::F32, ActivationFormat::Int8] {
            assert_eq!(a.name().parse::<ActivationFormat>().unwrap(), a);
        }
        assert!("int4".parse::<ActivationFormat>().is_err());
        for a in [ActivationFormat::F32, ActivationFormat::Int8] {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<ActivationFormat>(&json).unwrap(), a);
        }
        let err = serde_json::from_str::<ActivationFormat>("\"bf16\"").unwrap_err().to_string();
        assert!(err.contains("unknown activation format `bf16` (known: f32, int8)"), "{err}");
    }
}
