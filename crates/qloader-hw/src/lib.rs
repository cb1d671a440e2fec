//! Facts about the device QLoader runs on, and measurements of it.
//!
//! * [`cpu`]: the CPU's model and the ISA features QLoader's kernels use.
//! * [`bandwidth`]: the memory read bandwidth, measured.
//! * [`kernel_bench`]: every kernel timed side by side on the same weights,
//!   with throughput as a share of the measured bandwidth and ratios to f32
//!   and int8 from the same run.
//! * [`profile`]: device profiles — the TOML a plan reads, measured here or
//!   written by hand for another device.
//! * [`measure_profile`]: the short measurement behind `qloader profile`.
#![deny(missing_docs)]

pub mod bandwidth;
pub mod cpu;
pub mod kernel_bench;
pub mod measure_profile;
pub mod profile;
pub mod timing;

pub use measure_profile::{measure_profile, ProfileMeasurement};
pub use profile::{DeviceProfile, ProfileError};

pub use timing::{paired_median_seconds, with_threads, TimingBudget};
