//! Facts about the device QLoader runs on, and measurements of it.
//!
//! * [`cpu`]: the CPU's model and the ISA features QLoader's kernels use.
//! * [`bandwidth`]: the memory read bandwidth, measured.
//! * [`kernel_bench`]: every kernel timed side by side on the same weights,
//!   with throughput as a share of the measured bandwidth and ratios to f32
//!   and int8 from the same run.
//!
//! Device profiles (serialisable, so a plan can be made for another device)
//! will live here too.
#![deny(missing_docs)]

pub mod bandwidth;
pub mod cpu;
pub mod kernel_bench;
pub mod timing;

pub use timing::{paired_median_seconds, with_threads, TimingBudget};
