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
}

/// Detects the CPU.
pub fn detect() -> CpuInfo {
    CpuInfo {
        model: model_name().unwrap_or_else(|| "unknown".to_owned()),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        features: features(),
        kernel_tier: qloader_kernels::Kernels::detect().isa.name(),
    }
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
    probe!("sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vnni", "avxvnni");
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
