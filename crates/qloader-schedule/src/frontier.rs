//! The loss-against-size frontier of a table on a device: greedy plans at a
//! sweep of budgets (each with its Lagrangian bound), beside every uniform
//! format and the mixed plan of exactly that format's size, as data (JSON
//! and CSV) for [`crate::chart`] to draw.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use qloader_format::atomic_file::{write_atomic_io, write_json_atomic};
use qloader_format::WeightFormat;
use qloader_plan::{greedy, pareto, Limits, Solver};
use serde::{Deserialize, Serialize};

use crate::candidates::{problem, TensorCandidates};
use crate::error::{Result, ScheduleError};
use crate::planner::{PlanOptions, Sources};

/// One plan of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontierRow {
    /// The byte budget it was planned for.
    pub budget_bytes: u64,
    /// Its bytes.
    pub bytes: u64,
    /// Its bits per weight.
    pub bits_per_weight: f64,
    /// Its predicted loss.
    pub loss: f64,
    /// Lower bound on the optimal loss at that budget.
    pub bound: f64,
    /// Its predicted product time per token.
    pub latency_ms: f64,
    /// Tensors per format.
    pub formats: BTreeMap<WeightFormat, usize>,
}

/// Every tensor in one format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniformRow {
    /// The format.
    pub format: WeightFormat,
    /// Run-time bytes.
    pub bytes: u64,
    /// Bits per weight.
    pub bits_per_weight: f64,
    /// Predicted loss.
    pub loss: f64,
    /// Predicted product time per token.
    pub latency_ms: f64,
    /// Tensors the device converts at load.
    pub fallback_tensors: usize,
    /// The greedy mixed-precision plan with this format's bytes as budget.
    pub mixed_at_same_size: Option<MixedRow>,
}

/// A mixed plan beside a uniform format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixedRow {
    /// Its bytes.
    pub bytes: u64,
    /// Its bits per weight.
    pub bits_per_weight: f64,
    /// Its predicted loss.
    pub loss: f64,
}

/// The frontier of one table on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frontier {
    /// The model.
    pub model: String,
    /// The device.
    pub device: String,
    /// The table measure used as loss.
    pub measure: qloader_analyze::Measure,
    /// Weights in the planned tensors.
    pub weights: u64,
    /// The sweep, by bytes ascending.
    pub points: Vec<FrontierRow>,
    /// The uniform formats the device can run for every tensor.
    pub uniform: Vec<UniformRow>,
}

/// Every tensor at `format`, where every tensor has it among its candidates.
fn uniform(cand: &[TensorCandidates], format: WeightFormat, weights: u64) -> Option<UniformRow> {
    let (mut bytes, mut loss, mut latency, mut fallback) = (0u64, 0.0, 0.0, 0);
    for t in cand {
        let c = t.candidates.iter().find(|c| c.format == format)?;
        bytes += c.bytes;
        loss += c.loss;
        latency += c.latency;
        fallback += usize::from(c.fallback);
    }
    Some(UniformRow {
        format,
        bytes,
        bits_per_weight: 8.0 * bytes as f64 / weights.max(1) as f64,
        loss,
        latency_ms: latency * 1e3,
        fallback_tensors: fallback,
        mixed_at_same_size: None,
    })
}

/// Sweeps `steps` budgets from the smallest to the least-loss plan with the
/// greedy (pins and device kernels as in `options`; budgets in `options`
/// are ignored), and evaluates every uniform format (pins ignored).
pub fn frontier(sources: &Sources, options: &PlanOptions, steps: usize) -> Result<Frontier> {
    let cand = sources.candidates(options)?;
    let weights = sources.weights();
    let mixed_problem = problem(&cand);
    let points = pareto(&mixed_problem, steps, Solver::Greedy)?;
    let points = points
        .into_iter()
        .map(|p| {
            let mut formats = BTreeMap::new();
            for (t, &pick) in cand.iter().zip(&p.picks) {
                *formats.entry(t.candidates[pick].format).or_default() += 1;
            }
            FrontierRow {
                budget_bytes: p.budget,
                bytes: p.bytes,
                bits_per_weight: 8.0 * p.bytes as f64 / weights.max(1) as f64,
                loss: p.loss,
                bound: p.bound,
                latency_ms: p.latency * 1e3,
                formats,
            }
        })
        .collect();
    let unpinned;
    let all = if options.pins.is_empty() {
        &cand
    } else {
        unpinned = sources.candidates(&PlanOptions { pins: Vec::new(), ..options.clone() })?;
        &unpinned
    };
    let mut uniform: Vec<UniformRow> =
        sources.table.formats.iter().filter_map(|&f| uniform(all, f, weights)).collect();
    for u in &mut uniform {
        // Pins may make the uniform format's size infeasible for the mix.
        if let Ok(r) = greedy(&mixed_problem, &Limits::bytes(u.bytes)) {
            u.mixed_at_same_size = Some(MixedRow {
                bytes: r.solution.bytes,
                bits_per_weight: 8.0 * r.solution.bytes as f64 / weights.max(1) as f64,
                loss: r.solution.loss,
            });
        }
    }
    Ok(Frontier {
        model: sources.table.model.path.clone(),
        device: sources.profile.name.clone(),
        measure: options.measure.unwrap_or_else(|| sources.table.best_measure()),
        weights,
        points,
        uniform,
    })
}

impl Frontier {
    /// The sweep and the uniform formats as CSV: `kind,label,budget_bytes,
    /// bytes,bits_per_weight,loss,bound,latency_ms`.
    pub fn to_csv(&self) -> String {
        let mut out =
            String::from("kind,label,budget_bytes,bytes,bits_per_weight,loss,bound,latency_ms\n");
        for p in &self.points {
            let _ = writeln!(
                out,
                "plan,,{},{},{:.6},{:e},{:e},{:.6}",
                p.budget_bytes, p.bytes, p.bits_per_weight, p.loss, p.bound, p.latency_ms
            );
        }
        for u in &self.uniform {
            let _ = writeln!(
                out,
                "uniform,{},,{},{:.6},{:e},,{:.6}",
                u.format, u.bytes, u.bits_per_weight, u.loss, u.latency_ms
            );
        }
        out
    }

    /// Writes JSON (`.json`) or CSV (any other extension), atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let written = if path.extension().is_some_and(|e| e == "json") {
            write_json_atomic(path, self)
        } else {
            write_atomic_io(path, self.to_csv().as_bytes())
        };
        written.map_err(|error| ScheduleError::Io { path: path.to_owned(), error })
    }
}
