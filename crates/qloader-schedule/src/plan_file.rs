//! The plan file: QLoader's record of one format per tensor for one device
//! and budget, with what the plan is predicted to cost and lose, how it was
//! solved and how far from optimal it can be. JSON a person can read; `pack`
//! reads it.
//!
//! Schema `qloader-plan`, version 1:
//!
//! ```text
//! {
//!   "schema": "qloader-plan", "version": 1, "created_by": "qloader 0.1.0",
//!   "inputs": { "table": { "path", "sha256" }, "profile": { "path", "sha256", "name" },
//!               "model": "…", "architecture": "llama" | "bert" },
//!   "constraints": { "budget": "3.5bpw" | "60MiB" | null, "budget_bytes": …|null,
//!                    "device_model_bytes": …|null, "max_bytes", "max_latency_ms": …|null,
//!                    "pins": ["output\\.weight=int8"], "measure": "e2e_estimate",
//!                    "activations": "f32", "batch": 1 },
//!   "solver": { "name": "greedy" | "exact", "method": "greedy" | "exact" | "exact_fallback",
//!               "proven_optimal": bool|null, "nodes": …|null, "seconds" },
//!   "totals": { "bytes", "weights", "bits_per_weight", "latency_ms", "loss" },
//!   "bound": …, "gap": { "absolute", "relative" },
//!   "exact_check": { "loss", "proven_optimal", "greedy_gap" } | null,
//!   "tensors": [ { "name", "kind", "layer", "shape": [out, in], "format", "runs_as",
//!                  "fallback", "pinned", "bytes", "latency_ms", "loss" } ]
//! }
//! ```
//!
//! `bytes` are run-time bytes (a fallback is costed as what it is converted
//! to), `loss` the table's measure summed over tensors, `bound` a Lagrangian
//! lower bound on the least loss any plan meeting the constraints can have,
//! so `gap.relative = (loss − bound) / bound` certifies how near optimal the
//! plan is. `exact_check`, when asked for, holds the exact solver's loss on
//! the same problem and the plan's gap to it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::Path;

use qloader_format::atomic_file::{read_bounded, write_json_atomic, BoundedReadError};
use qloader_format::packed::MAX_ELEMENTS;
use qloader_format::{ActivationFormat, QuantMethod, WeightFormat};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ScheduleError};

/// The `schema` field of every plan.
pub const SCHEMA: &str = "qloader-plan";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;
/// Plans larger than this are refused before they are read.
pub const MAX_PLAN_BYTES: u64 = 64 << 20;

/// A file a plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    /// As given.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// What the plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInputs {
    /// The sensitivity table.
    pub table: FileRef,
    /// The device profile.
    pub profile: FileRef,
    /// The profile's device name.
    pub device: String,
    /// The model the table measured.
    pub model: String,
    /// Its architecture.
    pub architecture: String,
    /// How the table measured each format's codes: what `pack` uses
    /// (plans written before the field existed: round to nearest).
    #[serde(default)]
    pub method: QuantMethod,
}

/// What the plan had to meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// The budget as given, if any.
    pub budget: Option<String>,
    /// That budget in bytes.
    pub budget_bytes: Option<u64>,
    /// The device's limit for the model, if stated.
    pub device_model_bytes: Option<u64>,
    /// The byte limit applied: the smaller of the two.
    pub max_bytes: u64,
    /// The latency limit per token, if any.
    pub max_latency_ms: Option<f64>,
    /// Pins, as given.
    pub pins: Vec<String>,
    /// The table measure used as loss.
    pub measure: qloader_analyze::Measure,
    /// Activation format of the kernels.
    pub activations: ActivationFormat,
    /// Input rows per product the latency is predicted for.
    pub batch: usize,
}

/// How the plan was solved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverInfo {
    /// The solver asked for.
    pub name: String,
    /// What found the plan: `greedy`, `exact`, or `exact_fallback` (the
    /// greedy could not meet two limits and the exact solver did).
    pub method: String,
    /// For the exact solver: whether it proved the plan optimal.
    pub proven_optimal: Option<bool>,
    /// For the exact solver: branch-and-bound nodes explored.
    pub nodes: Option<u64>,
    /// Solving time.
    pub seconds: f64,
}

/// The plan's predicted totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Run-time bytes of the planned tensors.
    pub bytes: u64,
    /// Weights in the planned tensors.
    pub weights: u64,
    /// `8 · bytes / weights`.
    pub bits_per_weight: f64,
    /// Predicted product time per token, milliseconds.
    pub latency_ms: f64,
    /// Summed predicted loss.
    pub loss: f64,
}

/// The plan's distance from optimal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapInfo {
    /// `loss − bound`.
    pub absolute: f64,
    /// `(loss − bound) / bound` (0 when both are 0; a very large number
    /// stands for infinity when the bound is 0).
    pub relative: f64,
}

/// The exact solver on the same problem, for measuring the greedy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactCheck {
    /// The exact solver's loss.
    pub loss: f64,
    /// Whether it proved that loss optimal.
    pub proven_optimal: bool,
    /// `(plan loss − exact loss) / exact loss` (0 when both are 0).
    pub greedy_gap: f64,
    /// Its solving time.
    pub seconds: f64,
}

/// One tensor's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawPlannedTensor")]
pub struct PlannedTensor {
    /// Name in the model file.
    pub name: String,
    /// Role (attn_q, …, head).
    pub kind: String,
    /// Block, if any.
    pub layer: Option<usize>,
    /// `[out, in]`.
    pub shape: [usize; 2],
    /// The format to pack it in.
    pub format: WeightFormat,
    /// The format the device holds it in.
    pub runs_as: WeightFormat,
    /// Whether that is a load-time conversion.
    pub fallback: bool,
    /// Whether a pin fixed it.
    pub pinned: bool,
    /// Run-time bytes.
    pub bytes: u64,
    /// Predicted product time per token, milliseconds.
    pub latency_ms: f64,
    /// Predicted loss.
    pub loss: f64,
}

/// A [`PlannedTensor`] as read, its formats still names, so that an unknown
/// one is reported with the tensor's name.
#[derive(Deserialize)]
struct RawPlannedTensor {
    name: String,
    kind: String,
    layer: Option<usize>,
    shape: [usize; 2],
    format: String,
    runs_as: String,
    fallback: bool,
    pinned: bool,
    bytes: u64,
    latency_ms: f64,
    loss: f64,
}

impl TryFrom<RawPlannedTensor> for PlannedTensor {
    type Error = String;

    fn try_from(raw: RawPlannedTensor) -> std::result::Result<Self, String> {
        let parse = |field: &str, name: &str| {
            name.parse::<WeightFormat>().map_err(|e| format!("tensor {}: {field}: {e}", raw.name))
        };
        Ok(PlannedTensor {
            format: parse("format", &raw.format)?,
            runs_as: parse("runs_as", &raw.runs_as)?,
            name: raw.name,
            kind: raw.kind,
            layer: raw.layer,
            shape: raw.shape,
            fallback: raw.fallback,
            pinned: raw.pinned,
            bytes: raw.bytes,
            latency_ms: raw.latency_ms,
            loss: raw.loss,
        })
    }
}

/// A plan (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The program that wrote it.
    pub created_by: String,
    /// Its inputs.
    pub inputs: PlanInputs,
    /// Its constraints.
    pub constraints: Constraints,
    /// Its solver.
    pub solver: SolverInfo,
    /// Its totals.
    pub totals: Totals,
    /// Lower bound on the optimal loss.
    pub bound: f64,
    /// Distance from the bound.
    pub gap: GapInfo,
    /// The exact solver's answer, when asked for.
    pub exact_check: Option<ExactCheck>,
    /// One entry per tensor, in model order.
    pub tensors: Vec<PlannedTensor>,
}

impl Plan {
    /// Writes the plan as pretty JSON to `path`, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_json_atomic(path, self)
            .map_err(|error| ScheduleError::Io { path: path.to_owned(), error })
    }

    /// Reads and validates the plan at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let invalid = |reason: String| ScheduleError::Plan { path: path.to_owned(), reason };
        let bytes = read_bounded(path, MAX_PLAN_BYTES).map_err(|e| match e {
            BoundedReadError::Io(error) => ScheduleError::Io { path: path.to_owned(), error },
            too_large => invalid(too_large.to_string()),
        })?;
        Self::from_json(&bytes).map_err(invalid)
    }

    /// Parses and validates a plan from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<Self, String> {
        let plan: Plan = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        plan.validate()?;
        Ok(plan)
    }

    /// Checks the schema, the version, every tensor's formats, and that the
    /// totals are the tensors' sums and meet the byte limit.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.schema != SCHEMA {
            return Err(format!("schema is {:?}, expected {SCHEMA:?}", self.schema));
        }
        if self.version != VERSION {
            return Err(format!("version {} (this build reads version {VERSION})", self.version));
        }
        let mut names = std::collections::HashSet::new();
        let (mut bytes, mut weights) = (0u64, 0u64);
        for t in &self.tensors {
            if !names.insert(t.name.as_str()) {
                return Err(format!("tensor {} appears twice", t.name));
            }
            for (field, v) in [("loss", t.loss), ("latency_ms", t.latency_ms)] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(format!(
                        "tensor {}: {field} is {v}, expected a finite number ≥ 0",
                        t.name
                    ));
                }
            }
            // Bounded like a packed tensor, so the sums below cannot overflow
            // for any plan a reader could hold in memory.
            let tensor_weights = (t.shape[0] as u64)
                .checked_mul(t.shape[1] as u64)
                .filter(|&w| w <= MAX_ELEMENTS)
                .ok_or_else(|| {
                    format!(
                        "tensor {}: shape {:?} has more than {MAX_ELEMENTS} weights",
                        t.name, t.shape
                    )
                })?;
            bytes = bytes.checked_add(t.bytes).ok_or_else(|| {
                format!("tensor {}: {} bytes overflow the summed bytes", t.name, t.bytes)
            })?;
            weights = weights.checked_add(tensor_weights).ok_or_else(|| {
                format!("tensor {}: {tensor_weights} weights overflow the sum", t.name)
            })?;
        }
        if bytes != self.totals.bytes || weights != self.totals.weights {
            return Err(format!(
                "totals say {} bytes over {} weights, the tensors add up to {bytes} over {weights}",
                self.totals.bytes, self.totals.weights
            ));
        }
        if bytes > self.constraints.max_bytes {
            return Err(format!(
                "{bytes} bytes exceed the plan's own limit of {}",
                self.constraints.max_bytes
            ));
        }
        Ok(())
    }

    /// The planned format of tensor `name`, if the plan covers it.
    pub fn format_of(&self, name: &str) -> Option<WeightFormat> {
        self.tensors.iter().find(|t| t.name == name).map(|t| t.format)
    }
}
