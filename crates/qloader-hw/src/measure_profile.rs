//! `qloader profile`'s measurement: this machine's CPU and memory facts, its
//! read bandwidth, and every kernel timed at one representative shape with
//! one and eight input rows, turned into a [`DeviceProfile`]. Short by
//! design (well under 30 s on the CI-class machine): the profile ranks
//! formats by speed for a plan, it is not a benchmark report.

use std::time::Duration;

use qloader_format::WeightFormat;

use crate::kernel_bench::{self, KernelBenchConfig};
use crate::profile::{CpuFacts, DeviceProfile, KernelSpec, MemoryFacts, SCHEMA, VERSION};
use crate::{bandwidth, cpu, TimingBudget};

/// What the measurement times.
#[derive(Debug, Clone)]
pub struct ProfileMeasurement {
    /// Weight shape `(out, in)` every kernel is timed at.
    pub shape: (usize, usize),
    /// Formats timed (f32 always is); one per family is enough.
    pub formats: Vec<WeightFormat>,
    /// Time per case.
    pub budget: TimingBudget,
    /// Bytes streamed to measure read bandwidth.
    pub bandwidth_bytes: usize,
}

impl Default for ProfileMeasurement {
    fn default() -> Self {
        Self {
            shape: (2048, 2048),
            formats: ["f16", "int8", "int4", "int3", "int2", "nl4k"]
                .iter()
                .map(|f| f.parse().expect("a known format"))
                .collect(),
            budget: TimingBudget {
                min_runs: 5,
                min_total: Duration::from_millis(150),
                max_runs: 200,
            },
            bandwidth_bytes: 256 << 20,
        }
    }
}

/// Physical memory, from Linux's `/proc/meminfo`.
fn total_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Measures this machine with the current rayon pool; `progress` hears
/// about each step as it starts.
pub fn measure_profile(
    name: &str,
    how: &ProfileMeasurement,
    progress: &mut dyn FnMut(&str),
) -> DeviceProfile {
    let info = cpu::detect();
    progress("read bandwidth");
    let bw = bandwidth::read_bandwidth(how.bandwidth_bytes, how.budget);
    let config = KernelBenchConfig {
        shapes: vec![how.shape],
        batches: vec![1, 8],
        formats: how.formats.clone(),
        int8_activations: true,
        budget: how.budget,
        cold_set_bytes: kernel_bench::default_cold_set_bytes(info.last_level_cache_bytes),
    };
    let rows = kernel_bench::run(&config, bw, progress);
    let mut kernels: Vec<KernelSpec> = Vec::new();
    for r in &rows {
        let (weights, activations) = (r.format.family(), r.activations);
        let macs = (r.rows * r.cols * r.batch) as f64 / r.seconds;
        let at =
            match kernels.iter().position(|k| k.weights == weights && k.activations == activations)
            {
                Some(i) => i,
                None => {
                    kernels.push(KernelSpec {
                        weights,
                        activations,
                        isa: info.kernel_tier.to_owned(),
                        batch1_macs_per_second: 0.0,
                        batch8_macs_per_second: 0.0,
                    });
                    kernels.len() - 1
                }
            };
        if r.batch == 1 {
            kernels[at].batch1_macs_per_second = macs;
        } else {
            kernels[at].batch8_macs_per_second = macs;
        }
    }
    DeviceProfile {
        schema: SCHEMA.to_owned(),
        version: VERSION,
        name: name.to_owned(),
        description: format!(
            "measured by qloader profile: {}×{} weights, cold, {} threads",
            how.shape.0,
            how.shape.1,
            rayon::current_num_threads()
        ),
        measured: true,
        layouts: Default::default(),
        cpu: CpuFacts {
            model: info.model,
            cores: info.cores,
            features: info.features.iter().map(|f| (*f).to_owned()).collect(),
            kernel_tier: info.kernel_tier.to_owned(),
            last_level_cache_bytes: info.last_level_cache_bytes.map(|b| b as u64),
        },
        memory: MemoryFacts {
            total_bytes: total_memory_bytes(),
            model_bytes: None,
            read_bandwidth_bytes_per_second: Some(bw),
        },
        kernels,
        fallbacks: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_measurement_is_a_valid_profile_with_every_kernel() {
        let how = ProfileMeasurement {
            shape: (32, 64),
            formats: vec!["int8".parse().unwrap(), "int2".parse().unwrap()],
            budget: TimingBudget { min_runs: 1, min_total: Duration::ZERO, max_runs: 1 },
            bandwidth_bytes: 1 << 20,
        };
        let mut steps = 0;
        let p = measure_profile("here", &how, &mut |_| steps += 1);
        p.validate().unwrap();
        assert!(steps >= 3);
        let pairs: Vec<(&str, &str)> =
            p.kernels.iter().map(|k| (k.weights.name(), k.activations.name())).collect();
        assert_eq!(
            pairs,
            [("f32", "f32"), ("int8", "f32"), ("int8", "int8"), ("int2", "f32"), ("int2", "int8")]
        );
        assert!(p.measured && p.memory.read_bandwidth_bytes_per_second.unwrap() > 0.0);
        let e =
            p.execution("int2g64".parse().unwrap(), qloader_format::ActivationFormat::F32).unwrap();
        assert!(!e.fallback);
    }
}
