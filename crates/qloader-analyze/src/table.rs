//! The sensitivity table: QLoader's record, per quantizable tensor and per
//! candidate format, of what storing that tensor alone in that format costs
//! the model. One table serves every plan; it is JSON a person can read.
//!
//! Schema `qloader-sensitivity`, version 2:
//!
//! ```text
//! {
//!   "schema": "qloader-sensitivity", "version": 2,
//!   "model":       { "path", "architecture": "llama" | "bert", "quantizable_params" },
//!   "calibration": { "data_free", "source", "samples", "tokens", "e2e_samples", "e2e_tokens",
//!     "held_out" },
//!   "measures":    subset of ["weight_mse", "proxy", "e2e", "e2e_estimate"]
//!                  (which fields below are filled),
//!   "e2e_formats": ["int2", ...]   (the formats where "e2e" is filled; all of them by default),
//!   "e2e_metric":  "kl" (mean KL of next-token distributions, nats per position)
//!                | "one_minus_cosine" (mean over sentences) | null,
//!   "formats":     ["f16", "int8", "int4", ...],
//!   "tensors": [ { "name", "shape": [out, in], "kind": "attn_q" | … | "head", "layer": 3 | null,
//!                  "formats": { "int4": { "bytes", "weight_mse", "proxy", "e2e", "e2e_estimate" },
//!                               ... } } ],
//!   "timings":     { "proxy_seconds", "e2e_seconds", "total_seconds", "threads" }
//! }
//! ```
//!
//! `weight_mse` is the mean squared weight error; `proxy` is
//! `tr(ΔW H ΔWᵀ)` with `H = E[x xᵀ]` of the layer input over the calibration
//! rows (the expected squared output error per token); `e2e` is measured
//! with only that tensor quantized, at the formats of `e2e_formats`;
//! `e2e_estimate` is `e2e` where measured and elsewhere the proxy times the
//! tensor's own measured ratio of `e2e` to proxy (see [`crate::estimate`]).
//! A missing measure is `null`.
//!
//! Version 1 had neither `e2e_formats` nor `e2e_estimate`; this build reads
//! version 2 only.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use qloader_format::atomic_file::{read_bounded, write_json_atomic, BoundedReadError};
use qloader_format::packed::MAX_ELEMENTS;
use qloader_format::{QuantMethod, WeightFormat};
use qloader_models::TensorKind;
use serde::{Deserialize, Serialize};

use crate::error::{AnalyzeError, Result};

/// The `schema` field of every sensitivity table.
pub const SCHEMA: &str = "qloader-sensitivity";
/// The version this build writes and reads.
pub const VERSION: u32 = 2;
/// Tables larger than this are refused before they are read.
pub const MAX_TABLE_BYTES: u64 = 256 << 20;

/// A measure a table may hold per tensor and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Mean squared weight error.
    WeightMse,
    /// `tr(ΔW H ΔWᵀ)` from calibration activations.
    Proxy,
    /// End-to-end divergence with only this tensor quantized (at the
    /// table's `e2e_formats`).
    E2e,
    /// End-to-end divergence where measured, else estimated from the proxy.
    E2eEstimate,
}

impl Measure {
    /// The measure's name in a table: `weight_mse`, `proxy`, `e2e` or
    /// `e2e_estimate`.
    pub fn name(self) -> &'static str {
        match self {
            Measure::WeightMse => "weight_mse",
            Measure::Proxy => "proxy",
            Measure::E2e => "e2e",
            Measure::E2eEstimate => "e2e_estimate",
        }
    }
}

/// How the end-to-end measure compares outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum E2eMetric {
    /// Mean KL divergence of next-token distributions (nats per position).
    Kl,
    /// Mean `1 − cosine` of sentence embeddings.
    OneMinusCosine,
}

/// The analyzed model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model file or directory, as given.
    pub path: String,
    /// `llama` or `bert`.
    pub architecture: String,
    /// Weights in all quantizable tensors.
    pub quantizable_params: u64,
}

/// The calibration data behind the measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationInfo {
    /// No calibration data: weight error only.
    pub data_free: bool,
    /// The calibration file, if any.
    pub source: Option<String>,
    /// Samples (token windows or sentences) in the proxy pass.
    pub samples: usize,
    /// Tokens in the proxy pass.
    pub tokens: usize,
    /// Samples the end-to-end measure runs (the first of `samples`).
    pub e2e_samples: usize,
    /// Tokens in those samples.
    pub e2e_tokens: usize,
    /// Samples (the first of `samples`) held out of the `H` codes were
    /// fitted to, that the proxy's `H` comes from instead (GPTQ; 0 for
    /// the other methods and for tables written before it was recorded).
    #[serde(default)]
    pub held_out: usize,
}

/// One tensor's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawTensorEntry")]
pub struct TensorEntry {
    /// Name in the model file.
    pub name: String,
    /// `[out, in]` features.
    pub shape: [usize; 2],
    /// Role, as [`TensorKind::name`].
    pub kind: String,
    /// The block, or `None` outside the blocks.
    pub layer: Option<usize>,
    /// Measures per format.
    pub formats: BTreeMap<WeightFormat, FormatEntry>,
}

/// A [`TensorEntry`] as read, its formats still names, so that an unknown
/// one is reported with the tensor's name.
#[derive(Deserialize)]
struct RawTensorEntry {
    name: String,
    shape: [usize; 2],
    kind: String,
    layer: Option<usize>,
    formats: BTreeMap<String, FormatEntry>,
}

impl TryFrom<RawTensorEntry> for TensorEntry {
    type Error = String;

    fn try_from(raw: RawTensorEntry) -> std::result::Result<Self, String> {
        let mut formats = BTreeMap::new();
        for (name, entry) in raw.formats {
            let format: WeightFormat =
                name.parse().map_err(|e| format!("tensor {}: {e}", raw.name))?;
            if formats.insert(format, entry).is_some() {
                return Err(format!("tensor {}: format {format} appears twice", raw.name));
            }
        }
        Ok(TensorEntry {
            name: raw.name,
            shape: raw.shape,
            kind: raw.kind,
            layer: raw.layer,
            formats,
        })
    }
}

/// What storing one tensor in one format costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormatEntry {
    /// Bytes of storage, scales and offsets included.
    pub bytes: u64,
    /// Mean squared weight error.
    pub weight_mse: f64,
    /// `tr(ΔW H ΔWᵀ)`, if measured.
    pub proxy: Option<f64>,
    /// End-to-end divergence, if measured.
    pub e2e: Option<f64>,
    /// `e2e` where measured, else the proxy scaled by the tensor's gain.
    pub e2e_estimate: Option<f64>,
}

impl FormatEntry {
    /// The value of `measure`, if held.
    pub fn get(&self, measure: Measure) -> Option<f64> {
        match measure {
            Measure::WeightMse => Some(self.weight_mse),
            Measure::Proxy => self.proxy,
            Measure::E2e => self.e2e,
            Measure::E2eEstimate => self.e2e_estimate,
        }
    }
}

/// Where the time went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Calibration pass, weight errors and proxies.
    pub proxy_seconds: f64,
    /// End-to-end runs.
    pub e2e_seconds: f64,
    /// Everything, loading included.
    pub total_seconds: f64,
    /// Worker threads used.
    pub threads: usize,
}

/// A whole sensitivity table (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensitivityTable {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Always [`VERSION`] for tables this build writes.
    pub version: u32,
    /// The model.
    pub model: ModelInfo,
    /// The calibration data.
    pub calibration: CalibrationInfo,
    /// How each format's codes were chosen (tables written before the
    /// field existed measured round to nearest).
    #[serde(default)]
    pub method: QuantMethod,
    /// The measures every entry holds.
    pub measures: Vec<Measure>,
    /// How `e2e` compares outputs, when measured.
    pub e2e_metric: Option<E2eMetric>,
    /// The formats where `e2e` is measured.
    pub e2e_formats: Vec<WeightFormat>,
    /// Candidate formats.
    pub formats: Vec<WeightFormat>,
    /// One row per quantizable tensor, in model order.
    pub tensors: Vec<TensorEntry>,
    /// Timings of the analysis.
    pub timings: Timings,
}

impl SensitivityTable {
    /// Whether the table holds `measure` (for `e2e`: at its
    /// `e2e_formats`; every other measure: at every entry).
    pub fn has(&self, measure: Measure) -> bool {
        self.measures.contains(&measure)
    }

    /// Whether entries at `format` hold `measure`.
    pub fn has_at(&self, measure: Measure, format: WeightFormat) -> bool {
        self.has(measure) && (measure != Measure::E2e || self.e2e_formats.contains(&format))
    }

    /// The most informative measure held at every entry: the end-to-end
    /// estimate (measured where it could be), else e2e, else proxy, else
    /// weight MSE.
    pub fn best_measure(&self) -> Measure {
        let everywhere = |m: Measure| {
            m != Measure::E2e || self.formats.iter().all(|&f| self.has_at(Measure::E2e, f))
        };
        [Measure::E2eEstimate, Measure::E2e, Measure::Proxy]
            .into_iter()
            .find(|&m| self.has(m) && everywhere(m))
            .unwrap_or(Measure::WeightMse)
    }

    /// Writes the table as pretty JSON to `path`, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_json_atomic(path, self)
            .map_err(|error| AnalyzeError::Io { path: path.to_owned(), error })
    }

    /// Reads and validates the table at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = read_bounded(path, MAX_TABLE_BYTES).map_err(|e| match e {
            BoundedReadError::Io(error) => AnalyzeError::Io { path: path.to_owned(), error },
            too_large => {
                AnalyzeError::Table { path: path.to_owned(), reason: too_large.to_string() }
            }
        })?;
        Self::from_json(&bytes)
            .map_err(|reason| AnalyzeError::Table { path: path.to_owned(), reason })
    }

    /// Parses and validates a table from JSON bytes; the error says what is
    /// wrong.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<Self, String> {
        let table: SensitivityTable = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        table.validate()?;
        Ok(table)
    }

    /// Checks the schema, the version and every entry.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.schema != SCHEMA {
            return Err(format!("schema is {:?}, expected {SCHEMA:?}", self.schema));
        }
        if self.version != VERSION {
            return Err(format!("version {} (this build reads version {VERSION})", self.version));
        }
        if self.formats.is_empty() {
            return Err("no formats".into());
        }
        if !self.has(Measure::WeightMse) {
            return Err("measures must include weight_mse".into());
        }
        if self.has(Measure::E2e) != self.e2e_metric.is_some() {
            return Err("e2e_metric must be given exactly when e2e is measured".into());
        }
        if self.has(Measure::E2e) == self.e2e_formats.is_empty() {
            return Err("e2e_formats must list formats exactly when e2e is measured".into());
        }
        if let Some(f) = self.e2e_formats.iter().find(|f| !self.formats.contains(f)) {
            return Err(format!("e2e format {f} is not one of the table's formats"));
        }
        let mut names = HashSet::new();
        for t in &self.tensors {
            if !names.insert(t.name.as_str()) {
                return Err(format!("tensor {} appears twice", t.name));
            }
            if TensorKind::from_name(&t.kind).is_none() {
                return Err(format!("tensor {}: unknown kind {:?}", t.name, t.kind));
            }
            if t.shape[0] == 0 || t.shape[1] == 0 {
                return Err(format!("tensor {}: empty shape {:?}", t.name, t.shape));
            }
            // Bounded like a packed tensor, so sizes and latencies computed
            // from the shape cannot overflow.
            let weights = (t.shape[0] as u64).checked_mul(t.shape[1] as u64);
            if weights.is_none_or(|w| w > MAX_ELEMENTS) {
                return Err(format!(
                    "tensor {}: shape {:?} has more than {MAX_ELEMENTS} weights",
                    t.name, t.shape
                ));
            }
            for &f in &self.formats {
                let e = t
                    .formats
                    .get(&f)
                    .ok_or_else(|| format!("tensor {}: no entry for {f}", t.name))?;
                if e.bytes == 0 {
                    return Err(format!("tensor {} at {f}: zero bytes", t.name));
                }
                for &m in self.measures.iter().filter(|&&m| self.has_at(m, f)) {
                    match e.get(m) {
                        Some(v) if v.is_finite() && v >= 0.0 => {}
                        Some(v) => {
                            return Err(format!(
                                "tensor {} at {f}: {} is {v}, expected a finite number ≥ 0",
                                t.name,
                                m.name()
                            ))
                        }
                        None => {
                            return Err(format!(
                                "tensor {} at {f}: {} is missing",
                                t.name,
                                m.name()
                            ))
                        }
                    }
                }
            }
            if t.formats.len() != self.formats.len() {
                return Err(format!("tensor {}: entries for formats not listed", t.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    fn f(name: &str) -> WeightFormat {
        name.parse().unwrap()
    }

    pub(crate) fn sample() -> SensitivityTable {
        let entry = |bytes, mse: f64| FormatEntry {
            bytes,
            weight_mse: mse,
            proxy: Some(mse * 10.0),
            e2e: Some(mse * 3.0),
            e2e_estimate: Some(mse * 3.0),
        };
        SensitivityTable {
            schema: SCHEMA.into(),
            version: VERSION,
            model: ModelInfo {
                path: "m.gguf".into(),
                architecture: "llama".into(),
                quantizable_params: 8,
            },
            calibration: CalibrationInfo {
                data_free: false,
                source: Some("alice.txt".into()),
                samples: 2,
                tokens: 64,
                e2e_samples: 1,
                e2e_tokens: 32,
                held_out: 0,
            },
            method: QuantMethod::Imatrix,
            measures: vec![Measure::WeightMse, Measure::Proxy, Measure::E2e, Measure::E2eEstimate],
            e2e_metric: Some(E2eMetric::Kl),
            e2e_formats: vec![f("int8"), f("int4")],
            formats: vec![f("int8"), f("int4")],
            tensors: vec![TensorEntry {
                name: "blk.0.attn_q.weight".into(),
                shape: [2, 4],
                kind: "attn_q".into(),
                layer: Some(0),
                formats: [(f("int8"), entry(16, 0.001)), (f("int4"), entry(8, 0.02))].into(),
            }],
            timings: Timings {
                proxy_seconds: 1.0,
                e2e_seconds: 2.0,
                total_seconds: 3.5,
                threads: 2,
            },
        }
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let t = sample();
        t.write(&path).unwrap();
        assert_eq!(SensitivityTable::read(&path).unwrap(), t);
        assert_eq!(t.best_measure(), Measure::E2eEstimate);
    }

    #[test]
    fn malformed_tables_say_what_is_wrong() {
        type Breakage = Box<dyn Fn(&mut SensitivityTable)>;
        let cases: Vec<(Breakage, &str)> = vec![
            (Box::new(|t| t.schema = "other".into()), "schema"),
            (Box::new(|t| t.version = 9), "version 9"),
            (Box::new(|t| t.tensors[0].kind = "conv".into()), "unknown kind"),
            (Box::new(|t| t.tensors.push(t.tensors[0].clone())), "appears twice"),
            (
                Box::new(|t| t.tensors[0].formats.get_mut(&f("int4")).unwrap().proxy = Some(-1.0)),
                "proxy is -1, expected a finite number ≥ 0",
            ),
            (
                Box::new(|t| t.tensors[0].formats.get_mut(&f("int8")).unwrap().e2e = None),
                "e2e is missing",
            ),
            (
                Box::new(|t| {
                    t.tensors[0].formats.remove(&f("int4"));
                }),
                "no entry for int4",
            ),
            (Box::new(|t| t.e2e_metric = None), "e2e_metric"),
            (Box::new(|t| t.e2e_formats.clear()), "e2e_formats"),
            (Box::new(|t| t.e2e_formats.push(f("int2"))), "e2e format int2 is not"),
            (
                Box::new(|t| {
                    t.tensors[0].formats.get_mut(&f("int4")).unwrap().e2e_estimate = None;
                }),
                "e2e_estimate is missing",
            ),
        ];
        for (break_it, want) in cases {
            let mut t = sample();
            break_it(&mut t);
            let bytes = serde_json::to_vec(&t).unwrap();
            let err = SensitivityTable::from_json(&bytes).unwrap_err();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
        // e2e measured at int4 only: int8 may go without it.
        let mut t = sample();
        t.e2e_formats = vec![f("int4")];
        t.tensors[0].formats.get_mut(&f("int8")).unwrap().e2e = None;
        t.validate().unwrap();
        assert!(t.has_at(Measure::E2e, f("int4")) && !t.has_at(Measure::E2e, f("int8")));
        assert_eq!(t.best_measure(), Measure::E2eEstimate);
        let err = SensitivityTable::from_json(b"{\"schema\": 3").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        // An unknown format name, in the list or as a tensor's key.
        let json = serde_json::to_string(&sample()).unwrap();
        for (from, to) in [("\"int4\"]", "\"int5\"]"), ("\"int4\":{", "\"int4z\":{")] {
            assert!(json.contains(from), "{json}");
            let err =
                SensitivityTable::from_json(json.replacen(from, to, 1).as_bytes()).unwrap_err();
            assert!(
                err.contains("unknown weight format `int5") || err.contains("`int4z`"),
                "{err}"
            );
        }
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, b"[]").unwrap();
        let msg = SensitivityTable::read(&path).unwrap_err().to_string();
        assert!(msg.contains("bad.json") && msg.contains("not a valid sensitivity table"), "{msg}");
    }
}
