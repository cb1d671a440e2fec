//! Device profiles: what a device offers a plan — its CPU, the memory a
//! model may use, which (weight format, activation format) kernels it has
//! and how fast they run, and which formats it can only run by converting
//! them at load ("fallbacks"). A profile is TOML a person can write by hand
//! for a device they do not have; `qloader profile` writes one for this
//! machine from a short measurement (see [`crate::measure_profile`]).
//!
//! Schema `qloader-profile`, version 1:
//!
//! ```toml
//! schema = "qloader-profile"
//! version = 1
//! name = "edge-512mib"
//! description = "…"                  # optional
//! measured = false                   # true when written by `qloader profile`
//!
//! [cpu]                              # facts, for people; the loader re-detects
//! model = "…"
//! cores = 4
//! features = ["neon", "dotprod"]
//! kernel_tier = "generic"
//! last_level_cache_bytes = 2097152   # optional
//!
//! [memory]
//! total_bytes = 1073741824           # optional
//! model_bytes = 536870912            # optional: what the model may occupy
//! read_bandwidth_bytes_per_second = 8.0e9   # optional
//!
//! [[kernels]]                        # one per (weights, activations) pair
//! weights = "int8"                   # a format family: f32 f16 int8 int4 int3 int2 nl4
//! activations = "f32"                # f32, or int8 (activations quantized per row)
//! isa = "generic"
//! batch1_macs_per_second = 2.0e9     # multiply-adds per second, one input row
//! batch8_macs_per_second = 8.0e9     # eight input rows
//!
//! [fallbacks]                        # family without a kernel = family it is
//! int2 = "int8"                      # converted to at load (same group scales)
//! ```
//!
//! A top-level `layouts = "gguf"` (default `"any"`) limits plans to formats
//! stored exactly as a GGUF tensor type, so that `qloader export` writes
//! them as they are (see [`Layouts`]).
//!
//! A format family covers every group size of that bit width (`int4` covers
//! `int4g64` and `int4k`); `int8` covers per-channel and grouped int8 and
//! the 5- and 8-bit block formats (`int5k`, `q5_0`, `q8_0`). A
//! format whose family has no kernel is converted at load as
//! [`qloader_format::fallback`] says: along the declared fallbacks, else to
//! the smallest format it converts to exactly that has a kernel.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use qloader_format::atomic_file::{read_bounded, write_atomic_io, BoundedReadError};
use qloader_format::fallback::resolve;
use qloader_format::gguf::layouts::same_bytes_type;
use qloader_format::{ActivationFormat, FormatFamily, WeightFormat};
use serde::{Deserialize, Serialize};

/// The `schema` field of every profile.
pub const SCHEMA: &str = "qloader-profile";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;
/// Profiles larger than this are refused before they are read.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// A reason a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The profile file.
        path: PathBuf,
        /// What failed (not its `source()`: the message shows it).
        error: std::io::Error,
    },
    /// The file is not a valid profile.
    #[error("{}: not a valid device profile: {reason}", path.display())]
    Invalid {
        /// The profile file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The CPU, as recorded (informative: plans use `kernels`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuFacts {
    /// Model name.
    pub model: String,
    /// Logical cores.
    pub cores: usize,
    /// ISA features.
    #[serde(default)]
    pub features: Vec<String>,
    /// The kernel tier QLoader uses there.
    pub kernel_tier: String,
    /// Size of the last-level cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_level_cache_bytes: Option<u64>,
}

/// The device's memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryFacts {
    /// Physical memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    /// What the model's weights may occupy (a plan's size limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_bytes: Option<u64>,
    /// Measured streaming read bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_bandwidth_bytes_per_second: Option<f64>,
}

/// One kernel the device has, and its measured (or stated) speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// Weight format family.
    pub weights: FormatFamily,
    /// Activation format.
    pub activations: ActivationFormat,
    /// Instruction-set tier of the kernel.
    pub isa: String,
    /// Multiply-adds per second with one input row (GEMV).
    pub batch1_macs_per_second: f64,
    /// Multiply-adds per second with eight input rows.
    pub batch8_macs_per_second: f64,
}

impl KernelSpec {
    /// Seconds for one `rows × cols` product over `batch` input rows: the
    /// batch-1 rate for one row, the batch-8 rate from eight rows on, and in
    /// between a straight line between the two.
    pub fn seconds(&self, rows: usize, cols: usize, batch: usize) -> f64 {
        let batch = batch.max(1);
        let rate = if batch >= 8 {
            self.batch8_macs_per_second
        } else {
            let t = (batch - 1) as f64 / 7.0;
            self.batch1_macs_per_second * (1.0 - t) + self.batch8_macs_per_second * t
        };
        // In floating point: shapes come from files and must not overflow.
        rows as f64 * cols as f64 * batch as f64 / rate
    }
}

/// How a device runs a format.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution<'a> {
    /// The format the weights are held in at run time: the planned format,
    /// or what it is converted to at load.
    pub runs_as: WeightFormat,
    /// Whether that is a load-time conversion.
    pub fallback: bool,
    /// The kernel that multiplies by it.
    pub kernel: &'a KernelSpec,
}

/// A device profile (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Short name of the device.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Whether the kernel speeds were measured on the device.
    #[serde(default)]
    pub measured: bool,
    /// Which storage layouts a plan for the device may use.
    #[serde(default, skip_serializing_if = "Layouts::is_any")]
    pub layouts: Layouts,
    /// The CPU.
    pub cpu: CpuFacts,
    /// The memory.
    #[serde(default)]
    pub memory: MemoryFacts,
    /// The kernels.
    pub kernels: Vec<KernelSpec>,
    /// Family → family it is converted to at load, for families without a
    /// kernel.
    #[serde(default)]
    pub fallbacks: BTreeMap<FormatFamily, FormatFamily>,
}

/// Which storage layouts a device takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layouts {
    /// Every format QLoader has.
    #[default]
    Any,
    /// Only formats whose bytes are a GGUF tensor type's for the tensor's
    /// row length ([`qloader_format::gguf::layouts::same_bytes_type`]): a
    /// plan for the device exports to GGUF as it is, at the same size.
    Gguf,
}

impl Layouts {
    /// Whether every layout is allowed.
    pub fn is_any(&self) -> bool {
        *self == Layouts::Any
    }

    /// Whether a tensor with rows of `cols` values may be stored as `format`.
    pub fn allows(self, format: WeightFormat, cols: usize) -> bool {
        match self {
            Layouts::Any => true,
            Layouts::Gguf => same_bytes_type(format, cols).is_some(),
        }
    }
}

impl DeviceProfile {
    /// The kernel for `family` weights and `activations`, if the device has
    /// one.
    pub fn kernel(
        &self,
        family: FormatFamily,
        activations: ActivationFormat,
    ) -> Option<&KernelSpec> {
        self.kernels.iter().find(|k| k.weights == family && k.activations == activations)
    }

    /// The kernel that multiplies `family` weights when products are asked
    /// for with `activations` (float weights always take `f32`).
    fn product(&self, family: FormatFamily, activations: ActivationFormat) -> Option<&KernelSpec> {
        self.kernel(family, family.product_activations(activations))
    }

    /// How the device runs `format` with `activations`: natively, converted
    /// at load (its declared fallbacks first; the rule the loader follows,
    /// [`qloader_format::fallback`]), or (`None`) not at all.
    pub fn execution(
        &self,
        format: WeightFormat,
        activations: ActivationFormat,
    ) -> Option<Execution<'_>> {
        let resolved = resolve(
            format,
            |family| self.product(family, activations).is_some(),
            |family| self.fallbacks.get(&family).copied(),
        )?;
        let kernel = self.product(resolved.runs_as.family(), activations)?;
        Some(Execution {
            runs_as: resolved.runs_as,
            fallback: resolved.conversion.is_some(),
            kernel,
        })
    }

    /// The size limit for a model on this device, if stated.
    pub fn model_bytes(&self) -> Option<u64> {
        self.memory.model_bytes
    }

    /// Reads and validates the profile at `path`.
    pub fn read(path: &Path) -> Result<Self, ProfileError> {
        let invalid = |reason: String| ProfileError::Invalid { path: path.to_owned(), reason };
        let bytes = read_bounded(path, MAX_PROFILE_BYTES).map_err(|e| match e {
            BoundedReadError::Io(error) => ProfileError::Io { path: path.to_owned(), error },
            too_large => invalid(too_large.to_string()),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()))?;
        Self::from_toml(&text).map_err(invalid)
    }

    /// Parses and validates a profile from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let profile: DeviceProfile = toml::from_str(text).map_err(|e| e.to_string())?;
        profile.validate()?;
        Ok(profile)
    }

    /// The profile as TOML.
    #[allow(clippy::expect_used)] // our own plain struct: strings, numbers, maps
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a profile is plain data")
    }

    /// Writes the profile as TOML to `path`, atomically.
    pub fn write(&self, path: &Path) -> Result<(), ProfileError> {
        write_atomic_io(path, self.to_toml().as_bytes())
            .map_err(|error| ProfileError::Io { path: path.to_owned(), error })
    }

    /// Checks the schema, the version, every kernel and the fallbacks.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema != SCHEMA {
            return Err(format!("schema is {:?}, expected {SCHEMA:?}", self.schema));
        }
        if self.version != VERSION {
            return Err(format!("version {} (this build reads version {VERSION})", self.version));
        }
        if self.name.trim().is_empty() {
            return Err("the name is empty".into());
        }
        if self.cpu.cores == 0 {
            return Err("cpu.cores is 0".into());
        }
        let m = &self.memory;
        for (field, v) in [("total_bytes", m.total_bytes), ("model_bytes", m.model_bytes)] {
            if v == Some(0) {
                return Err(format!("memory.{field} is 0"));
            }
        }
        if let (Some(total), Some(model)) = (m.total_bytes, m.model_bytes) {
            if model > total {
                return Err(format!("memory.model_bytes ({model}) exceeds total_bytes ({total})"));
            }
        }
        if let Some(bw) = m.read_bandwidth_bytes_per_second {
            if !(bw.is_finite() && bw > 0.0) {
                return Err(format!("memory.read_bandwidth_bytes_per_second is {bw}"));
            }
        }
        if self.kernels.is_empty() {
            return Err("no kernels: the device could run nothing".into());
        }
        let mut seen = BTreeSet::new();
        for k in &self.kernels {
            let what = format!("kernel {} × {}", k.weights, k.activations);
            if !seen.insert((k.weights, k.activations)) {
                return Err(format!("{what} is listed twice"));
            }
            for (field, v) in [
                ("batch1_macs_per_second", k.batch1_macs_per_second),
                ("batch8_macs_per_second", k.batch8_macs_per_second),
            ] {
                if !(v.is_finite() && v > 0.0) {
                    return Err(format!("{what}: {field} is {v}"));
                }
            }
        }
        for (from, to) in &self.fallbacks {
            if self.kernels.iter().any(|k| k.weights == *from) {
                return Err(format!("fallback for {from}, which has a kernel"));
            }
            // Follow the chain: it must end at a family with a kernel.
            let mut at = to;
            let mut steps = 0;
            while !self.kernels.iter().any(|k| k.weights == *at) {
                steps += 1;
                match self.fallbacks.get(at) {
                    Some(next) if steps <= FormatFamily::ALL.len() => at = next,
                    Some(_) => return Err(format!("fallbacks from {from} go round in a cycle")),
                    None => {
                        return Err(format!(
                            "fallback {from} = {to} ends at {at}, which has no kernel"
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ActivationFormat::F32;

    const EDGE: &str = r#"
schema = "qloader-profile"
version = 1
name = "edge"
[cpu]
model = "test"
cores = 4
kernel_tier = "generic"
[memory]
model_bytes = 536870912
[[kernels]]
weights = "int8"
activations = "f32"
isa = "generic"
batch1_macs_per_second = 1.0e9
batch8_macs_per_second = 4.0e9
[[kernels]]
weights = "int4"
activations = "f32"
isa = "generic"
batch1_macs_per_second = 2.0e9
batch8_macs_per_second = 3.0e9
[fallbacks]
int2 = "int3"
int3 = "int8"
"#;

    #[test]
    fn parses_and_resolves_fallback_chains() {
        let p = DeviceProfile::from_toml(EDGE).unwrap();
        assert_eq!(p.model_bytes(), Some(512 << 20));
        let int4: WeightFormat = "int4g64".parse().unwrap();
        let e = p.execution(int4, F32).unwrap();
        assert_eq!((e.runs_as, e.fallback), (int4, false));
        let e = p.execution("int2g64".parse().unwrap(), F32).unwrap();
        assert_eq!(e.runs_as, "int8g64".parse().unwrap());
        assert!(e.fallback);
        assert_eq!(e.kernel.weights, FormatFamily::Int8);
        let e = p.execution("int3".parse().unwrap(), F32).unwrap();
        assert_eq!(e.runs_as.name(), "int8g32");
        assert!(p.execution(WeightFormat::F16, F32).is_none());
        assert!(p.execution(int4, ActivationFormat::Int8).is_none());
        // Round trip through TOML.
        assert_eq!(DeviceProfile::from_toml(&p.to_toml()).unwrap(), p);
    }

    #[test]
    fn latency_interpolates_between_batches() {
        let p = DeviceProfile::from_toml(EDGE).unwrap();
        let k = p.kernel(FormatFamily::Int8, F32).unwrap();
        assert!((k.seconds(100, 10, 1) - 1e-6).abs() < 1e-15);
        assert!((k.seconds(100, 10, 8) - 2e-6).abs() < 1e-15);
        assert!((k.seconds(100, 10, 16) - 4e-6).abs() < 1e-15);
        let mid = k.seconds(100, 10, 4);
        assert!(mid > k.seconds(100, 10, 1) && mid < k.seconds(100, 10, 8));
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let cases = [
            (EDGE.replace("version = 1", "version = 7"), "version 7"),
            (EDGE.replace("\"qloader-profile\"", "\"x\""), "schema"),
            (
                EDGE.replace("weights = \"int4\"", "weights = \"int5\""),
                "unknown format family `int5`",
            ),
            (
                EDGE.replace(
                    "activations = \"f32\"\nisa = \"generic\"\nbatch1_macs_per_second = 2.0e9",
                    "activations = \"bf16\"\nisa = \"generic\"\nbatch1_macs_per_second = 2.0e9",
                ),
                "unknown activation format `bf16`",
            ),
            (EDGE.replace("2.0e9", "-1.0"), "batch1_macs_per_second is -1"),
            (EDGE.replace("weights = \"int4\"", "weights = \"int8\""), "listed twice"),
            (EDGE.replace("int3 = \"int8\"", "int3 = \"int2\""), "cycle"),
            (EDGE.replace("int3 = \"int8\"", "int3 = \"f16\""), "has no kernel"),
            (EDGE.replace("int2 = \"int3\"", "int4 = \"int8\""), "which has a kernel"),
            (EDGE.replace("cores = 4", "cores = 4\nsockets = 2"), "unknown field"),
            (EDGE.replace("model_bytes = 536870912", "model_bytes = 0"), "model_bytes is 0"),
            (EDGE.replace("name = \"edge\"", "name = \" \""), "name is empty"),
        ];
        for (text, want) in cases {
            let err = DeviceProfile::from_toml(&text).unwrap_err();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "schema = 3").unwrap();
        let msg = DeviceProfile::read(&path).unwrap_err().to_string();
        assert!(msg.contains("p.toml") && msg.contains("not a valid device profile"), "{msg}");
        let missing = DeviceProfile::read(&dir.path().join("none.toml")).unwrap_err().to_string();
        assert!(missing.contains("none.toml"), "{missing}");
    }
}
