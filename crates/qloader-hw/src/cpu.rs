//! The CPU: its model name and the ISA features QLoader's kernels care about,
//! detected at run time.

use serde::Serialize;

/// What the CPU is and offers.
#[derive(Debug, Clone, Serialize)]
pub struct CpuInfo {
    /// Model name as the OS reports it (or "unknown").
    pub model: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// Features detected at run time, among those QLoader uses.
    pub features: Vec<&'static str>,
    /// The kernel tier the dispatch table chose.
    pub kernel_tier: &'static str,
    /// Size of the largest (last-level) data cache, when the OS reports it.
    pub last_level_cache_bytes: Option<usize>,
}

/// Detects the CPU.
pub fn detect() -> CpuInfo {
    CpuInfo {
        model: model_name().unwrap_or_else(|| "unknown".to_owned()),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        features: features(),
        kernel_tier: qloader_kernels::Kernels::detect().isa.name(),
        last_level_cache_bytes: last_level_cache_bytes(),
    }
}

/// The largest data or unified cache of CPU 0, from Linux's sysfs.
fn last_level_cache_bytes() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.filter_map(|entry| {
        let path = entry.ok()?.path();
        let kind = std::fs::read_to_string(path.join("type")).ok()?;
        if kind.trim() == "Instruction" {
            return None;
        }
        parse_cache_size(&std::fs::read_to_string(path.join("size")).ok()?)
    })
    .max()
}

/// Parses sysfs cache sizes such as `32768K` or `2M`.
fn parse_cache_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: usize = digits.parse().ok()?;
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

fn model_name() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

#[cfg(target_arch = "x86_64")]
fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    macro_rules! probe {
        ($($name:tt),*) => {$(
            if is_x86_feature_detected!($name) {
                f.push($name);
            }
        )*};
    }
    probe!(
        "sse4.2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512vnni",
        "avxvnni"
    );
    f
}

#[cfg(target_arch = "aarch64")]
fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    macro_rules! probe {
        ($($name:tt),*) => {$(
            if std::arch::is_aarch64_feature_detected!($name) {
                f.push($name);
            }
        )*};
    }
    probe!("neon", "fp16", "dotprod", "i8mm");
    f
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn features() -> Vec<&'static str> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysfs_cache_sizes() {
        assert_eq!(parse_cache_size("32768K\n"), Some(32 << 20));
        assert_eq!(parse_cache_size("2M"), Some(2 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("12Q"), None);
        assert_eq!(parse_cache_size(""), None);
    }
}
