//! Pins: `REGEX=FORMAT` rules that fix the format of every tensor whose name
//! the pattern matches (anywhere in the name; anchor with `^…$` for whole
//! names), e.g. `output\.weight=int8`. The first matching pin wins.

use std::fmt;
use std::str::FromStr;

use qloader_format::WeightFormat;
use regex::Regex;

/// One pin.
#[derive(Debug, Clone)]
pub struct Pin {
    /// The pattern tensor names are matched against.
    pub pattern: Regex,
    /// The format matching tensors get.
    pub format: WeightFormat,
}

impl Pin {
    /// Whether the pin applies to tensor `name`.
    pub fn matches(&self, name: &str) -> bool {
        self.pattern.is_match(name)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.pattern.as_str(), self.format)
    }
}

impl FromStr for Pin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (pattern, format) =
            s.rsplit_once('=').ok_or_else(|| format!("pin `{s}` is not REGEX=FORMAT"))?;
        if pattern.is_empty() {
            return Err(format!("pin `{s}` has an empty pattern"));
        }
        let format: WeightFormat = format.trim().parse().map_err(|e| format!("pin `{s}`: {e}"))?;
        let pattern = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("pin `{s}`: {e}"))?;
        Ok(Pin { pattern, format })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let p: Pin = r"output\.weight=int8".parse().unwrap();
        assert!(p.matches("output.weight") && !p.matches("outputXweight"));
        assert_eq!(p.format, WeightFormat::Int8PerChannel);
        assert_eq!(p.to_string(), r"output\.weight=int8");
        let p: Pin = "a=b=int4g64".parse().unwrap();
        assert!(p.matches("xa=by"));
        for bad in ["int8", "=int8", "x=int5", "(=int8"] {
            assert!(bad.parse::<Pin>().is_err(), "{bad}");
        }
    }
}
