//! How a quantized weight's codes are chosen: the method a sensitivity table
//! measured each format with, a plan inherits, and a packed model's header
//! records.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::FormatError;

/// How codes are chosen for a tensor's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantMethod {
    /// Round to nearest: each group's grid is chosen by a clipping search on
    /// the weights alone.
    #[default]
    Rtn,
    /// Importance-weighted: each group's grid search weighs input column `c`
    /// by the mean square of input feature `c` on calibration text (the
    /// diagonal of the layer's input second moment `H`; llama.cpp calls the
    /// vector an importance matrix).
    Imatrix,
    /// GPTQ (Frantar et al. 2022): codes chosen column by column, each
    /// column's rounding error compensated by the columns after it through
    /// the inverse of the full `H`; grids fitted as for `imatrix`.
    Gptq,
}

impl QuantMethod {
    /// Every method, simplest first.
    pub const ALL: [QuantMethod; 3] = [QuantMethod::Rtn, QuantMethod::Imatrix, QuantMethod::Gptq];

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            QuantMethod::Rtn => "rtn",
            QuantMethod::Imatrix => "imatrix",
            QuantMethod::Gptq => "gptq",
        }
    }

    /// Whether the method needs calibration activations.
    pub fn is_calibrated(self) -> bool {
        self != QuantMethod::Rtn
    }
}

impl fmt::Display for QuantMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for QuantMethod {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|m| m.name() == lower)
            .ok_or_else(|| FormatError::UnknownMethod { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for m in QuantMethod::ALL {
            assert_eq!(m.name().parse::<QuantMethod>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<QuantMethod>(&json).unwrap(), m);
        }
        assert_eq!(" IMatrix ".parse::<QuantMethod>().unwrap(), QuantMethod::Imatrix);
        assert!("awq".parse::<QuantMethod>().is_err());
        assert!(!QuantMethod::Rtn.is_calibrated() && QuantMethod::Gptq.is_calibrated());
    }
}
