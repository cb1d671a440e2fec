//! Making a plan: the table and profile read (and hashed), the budget
//! resolved against the device's own limit, candidates formed, the solver
//! run, and everything recorded in a [`Plan`].

use std::path::Path;
use std::time::Instant;

use qloader_analyze::{Measure, SensitivityTable};
use qloader_format::ActivationFormat;
use qloader_hw::DeviceProfile;
use qloader_plan::{exact, greedy, Gap, Limits, Method};
use sha2::{Digest, Sha256};

use crate::budget::Budget;
use crate::candidates::{candidates, problem, CandidateOptions, TensorCandidates};
use crate::error::{Result, ScheduleError};
use crate::pins::Pin;
use crate::plan_file::{
    Constraints, ExactCheck, FileRef, GapInfo, Plan, PlanInputs, PlannedTensor, SolverInfo, Totals,
    SCHEMA, VERSION,
};

/// Which solver makes the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolverKind {
    /// The greedy (default): fast, with a certified gap.
    Greedy,
    /// Branch and bound to proven optimality (or its node limit).
    Exact,
}

/// What to plan for.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Size budget; `None`: the profile's model memory alone.
    pub budget: Option<Budget>,
    /// Latency budget per token, milliseconds.
    pub max_latency_ms: Option<f64>,
    /// Pins.
    pub pins: Vec<Pin>,
    /// Solver.
    pub solver: SolverKind,
    /// Also run the exact solver and record the plan's gap to it.
    pub check_exact: bool,
    /// Activation format of the kernels (`f32` or `int8`).
    pub activations: ActivationFormat,
    /// Input rows per product for latency (1: decoding).
    pub batch: usize,
    /// Table measure used as loss; `None`: the table's best.
    pub measure: Option<Measure>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            budget: None,
            max_latency_ms: None,
            pins: Vec::new(),
            solver: SolverKind::Greedy,
            check_exact: false,
            activations: ActivationFormat::F32,
            batch: 1,
            measure: None,
        }
    }
}

/// A table and a profile, with the files they came from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The sensitivity table.
    pub table: SensitivityTable,
    /// Its file.
    pub table_file: FileRef,
    /// The device profile.
    pub profile: DeviceProfile,
    /// Its file.
    pub profile_file: FileRef,
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn file_ref(path: &Path) -> Result<FileRef> {
    let bytes =
        std::fs::read(path).map_err(|error| ScheduleError::Io { path: path.to_owned(), error })?;
    Ok(FileRef { path: path.display().to_string(), sha256: sha256_hex(&bytes) })
}

impl Sources {
    /// Reads, validates and hashes a table and a profile.
    pub fn read(table: &Path, profile: &Path) -> Result<Self> {
        Ok(Self {
            table: SensitivityTable::read(table)?,
            table_file: file_ref(table)?,
            profile: DeviceProfile::read(profile)?,
            profile_file: file_ref(profile)?,
        })
    }

    /// Weights in the table's tensors.
    pub fn weights(&self) -> u64 {
        // Shapes are bounded by the table's validation; saturate all the same.
        self.table
            .tensors
            .iter()
            .map(|t| (t.shape[0] as u64).saturating_mul(t.shape[1] as u64))
            .fold(0u64, u64::saturating_add)
    }

    /// The byte limit for `budget` on this device: the smaller of the budget
    /// and the profile's model memory.
    pub fn max_bytes(&self, budget: Option<Budget>) -> Result<u64> {
        let from_budget = budget.map(|b| b.bytes(self.weights()));
        match (from_budget, self.profile.model_bytes()) {
            (Some(a), Some(b)) => Ok(a.min(b)),
            (Some(a), None) | (None, Some(a)) => Ok(a),
            (None, None) => Err(ScheduleError::Options(format!(
                "no budget: give one (e.g. 60MiB or 3.5bpw), or use a profile that states \
                 memory.model_bytes ({} does not)",
                self.profile.name
            ))),
        }
    }

    /// The candidates of every tensor under `options`.
    pub fn candidates(&self, options: &PlanOptions) -> Result<Vec<TensorCandidates>> {
        candidates(&self.table, &self.profile, &options.pins, &self.candidate_options(options))
    }

    fn candidate_options(&self, options: &PlanOptions) -> CandidateOptions {
        CandidateOptions {
            measure: options.measure.unwrap_or_else(|| self.table.best_measure()),
            activations: options.activations,
            batch: options.batch,
        }
    }
}

/// JSON has no infinity: a gap over this is written as this.
const INFINITE_GAP: f64 = 1e300;

fn gap_info(gap: &Gap) -> GapInfo {
    GapInfo { absolute: gap.absolute, relative: gap.relative.min(INFINITE_GAP) }
}

/// Plans `sources` under `options`.
pub fn make_plan(sources: &Sources, options: &PlanOptions) -> Result<Plan> {
    if let Some(t) = options.max_latency_ms {
        if !(t.is_finite() && t > 0.0) {
            return Err(ScheduleError::Options(format!("latency limit {t} ms is not positive")));
        }
    }
    if options.batch == 0 {
        return Err(ScheduleError::Options("batch must be at least 1".into()));
    }
    let cand = sources.candidates(options)?;
    let problem = problem(&cand);
    let max_bytes = sources.max_bytes(options.budget)?;
    let mut limits = Limits::bytes(max_bytes);
    if let Some(ms) = options.max_latency_ms {
        limits = limits.with_latency(ms / 1e3);
    }

    let clock = Instant::now();
    let (solution, gap, method, proven_optimal, nodes, exact_run) = match options.solver {
        SolverKind::Greedy => {
            let r = greedy(&problem, &limits)?;
            let (method, proven, nodes) = match r.method {
                Method::Greedy => ("greedy", None, None),
                Method::ExactFallback { proven_optimal, nodes } => {
                    ("exact_fallback", Some(proven_optimal), Some(nodes))
                }
            };
            (r.solution, r.gap, method, proven, nodes, None)
        }
        SolverKind::Exact => {
            let r = exact(&problem, &limits)?;
            let run = (r.solution.loss, r.proven_optimal);
            (r.solution, r.gap, "exact", Some(r.proven_optimal), Some(r.nodes), Some(run))
        }
    };
    let seconds = clock.elapsed().as_secs_f64();
    let exact_check = if options.check_exact {
        // The exact plan itself, when that is the solver; else solve again.
        let clock = Instant::now();
        let (loss, proven_optimal, exact_seconds) = match exact_run {
            Some((loss, proven)) => (loss, proven, seconds),
            None => {
                let r = exact(&problem, &limits)?;
                (r.solution.loss, r.proven_optimal, clock.elapsed().as_secs_f64())
            }
        };
        let greedy_gap = if loss > 0.0 {
            (solution.loss - loss) / loss
        } else if solution.loss > 0.0 {
            INFINITE_GAP
        } else {
            0.0
        };
        Some(ExactCheck { loss, proven_optimal, greedy_gap, seconds: exact_seconds })
    } else {
        None
    };

    let table = &sources.table;
    let tensors: Vec<PlannedTensor> = cand
        .iter()
        .zip(&solution.picks)
        .map(|(tc, &pick)| {
            let c = &tc.candidates[pick];
            let t = &table.tensors[tc.tensor];
            PlannedTensor {
                name: t.name.clone(),
                kind: t.kind.clone(),
                layer: t.layer,
                shape: t.shape,
                format: c.format,
                runs_as: c.runs_as,
                fallback: c.fallback,
                pinned: tc.pinned_by.is_some(),
                bytes: c.bytes,
                latency_ms: c.latency * 1e3,
                loss: c.loss,
            }
        })
        .collect();
    let weights = sources.weights();
    let copts = sources.candidate_options(options);
    Ok(Plan {
        schema: SCHEMA.to_owned(),
        version: VERSION,
        created_by: format!("qloader {}", env!("CARGO_PKG_VERSION")),
        inputs: PlanInputs {
            table: sources.table_file.clone(),
            profile: sources.profile_file.clone(),
            device: sources.profile.name.clone(),
            model: table.model.path.clone(),
            architecture: table.model.architecture.clone(),
            method: table.method,
        },
        constraints: Constraints {
            budget: options.budget.map(|b| b.to_string()),
            budget_bytes: options.budget.map(|b| b.bytes(weights)),
            device_model_bytes: sources.profile.model_bytes(),
            max_bytes,
            max_latency_ms: options.max_latency_ms,
            pins: options.pins.iter().map(ToString::to_string).collect(),
            measure: copts.measure,
            activations: copts.activations,
            batch: copts.batch,
        },
        solver: SolverInfo {
            name: match options.solver {
                SolverKind::Greedy => "greedy".to_owned(),
                SolverKind::Exact => "exact".to_owned(),
            },
            method: method.to_owned(),
            proven_optimal,
            nodes,
            seconds,
        },
        totals: Totals {
            bytes: solution.bytes,
            weights,
            bits_per_weight: 8.0 * solution.bytes as f64 / weights.max(1) as f64,
            latency_ms: solution.latency * 1e3,
            loss: solution.loss,
        },
        bound: gap.bound,
        gap: gap_info(&gap),
        exact_check,
        tensors,
    })
}
