//! Every `QLOADER_*` environment knob that changes how kernels run, in one
//! place.
//!
//! | variable | values | effect |
//! |---|---|---|
//! | `QLOADER_ISA` | `generic`, `avx2`, `avx512vnni` | caps the kernel tier chosen at start-up (never raises it above what the CPU has) |

/// Name of the variable that caps the kernel tier.
pub const ISA_ENV: &str = "QLOADER_ISA";

/// The requested cap on the kernel tier, if the variable is set.
pub fn isa_cap() -> Option<String> {
    std::env::var(ISA_ENV).ok().map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty())
}
