//! Size budgets as people write them: bytes with a unit (`60MiB`, `0.5GB`,
//! `123456`) or bits per weight (`3.5bpw`), resolved to bytes against the
//! number of weights a plan covers.

use std::fmt;
use std::str::FromStr;

/// A size budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// At most this many bytes.
    Bytes(u64),
    /// At most this many bits per weight on average.
    BitsPerWeight(f64),
}

impl Budget {
    /// The budget in bytes for a plan over `weights` weights (bits per
    /// weight round down to whole bytes).
    pub fn bytes(self, weights: u64) -> u64 {
        match self {
            Budget::Bytes(b) => b,
            Budget::BitsPerWeight(bpw) => (bpw * weights as f64 / 8.0).floor() as u64,
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Budget::Bytes(b) => write!(f, "{b} bytes"),
            Budget::BitsPerWeight(bpw) => write!(f, "{bpw} bits per weight"),
        }
    }
}

impl FromStr for Budget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        match t.to_ascii_lowercase().strip_suffix("bpw") {
            Some(number) => {
                let bpw: f64 = number
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a budget such as 3.5bpw or 60MiB"))?;
                if !(bpw.is_finite() && bpw > 0.0 && bpw <= 64.0) {
                    return Err(format!("`{s}`: bits per weight must be in (0, 64]"));
                }
                Ok(Budget::BitsPerWeight(bpw))
            }
            None => parse_size(t).map(Budget::Bytes),
        }
    }
}

/// Parses a byte size: a number with an optional unit B, KB, MB, GB
/// (powers of 1000) or KiB, MiB, GiB (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| format!("`{s}` is not a size such as 60MiB or 3.5bpw"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!("`{other}` in `{s}` is not a unit (B, KB, MB, GB, KiB, MiB, GiB)"))
        }
    };
    let bytes = value * scale;
    if !(1.0..1e18).contains(&bytes) {
        return Err(format!("`{s}` is not a size between 1 byte and 1 EB"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_bits_per_weight() {
        assert_eq!("60MiB".parse(), Ok(Budget::Bytes(60 << 20)));
        assert_eq!("0.5 GB".parse(), Ok(Budget::Bytes(500_000_000)));
        assert_eq!("1234".parse(), Ok(Budget::Bytes(1234)));
        assert_eq!("3.5bpw".parse(), Ok(Budget::BitsPerWeight(3.5)));
        assert_eq!("4 BPW".parse(), Ok(Budget::BitsPerWeight(4.0)));
        assert_eq!(Budget::BitsPerWeight(3.5).bytes(1000), 437);
        assert_eq!(Budget::Bytes(9).bytes(1000), 9);
        for bad in ["", "MiB", "60XB", "-1MiB", "0", "abcbpw", "0bpw", "100bpw", "1e30"] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
    }
}
