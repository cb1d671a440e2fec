//! What each tensor may be stored as on a device: the table's formats the
//! device runs — natively, or through a declared fallback and then costed as
//! the fallback (its bytes and speed; the loss stays that of the planned
//! format, whose values the conversion keeps) — narrowed to one format by a
//! pin. This is where a sensitivity table and a device profile become the
//! solver's abstract [`Problem`].

use qloader_analyze::{Measure, SensitivityTable};
use qloader_format::weight_format::join_names;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_hw::DeviceProfile;
use qloader_plan::{Choice, Item, Problem};

use crate::error::{Result, ScheduleError};
use crate::pins::Pin;

/// One way to store one tensor on the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The planned (packed) format.
    pub format: WeightFormat,
    /// The format the device holds it in at run time.
    pub runs_as: WeightFormat,
    /// Whether `runs_as` is a load-time conversion.
    pub fallback: bool,
    /// Bytes at run time.
    pub bytes: u64,
    /// Seconds per token of its product at the planned batch.
    pub latency: f64,
    /// Predicted loss (the table's measure for `format`).
    pub loss: f64,
}

/// The candidates of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorCandidates {
    /// Index into the table's tensors.
    pub tensor: usize,
    /// The pin that fixed its format, if any (index into the pins).
    pub pinned_by: Option<usize>,
    /// Its candidates (one when pinned).
    pub candidates: Vec<Candidate>,
}

/// How candidates are formed.
#[derive(Debug, Clone)]
pub struct CandidateOptions {
    /// The table measure used as loss.
    pub measure: Measure,
    /// Activation format the kernels take (`f32` or `int8`).
    pub activations: ActivationFormat,
    /// Input rows per product the latency is predicted for (1: decoding).
    pub batch: usize,
}

/// The candidates of every tensor of `table` on `profile`, with `pins`.
/// Errors name a tensor with no runnable format, a pin that matches no
/// tensor, or a pinned format the table or the device lacks.
pub fn candidates(
    table: &SensitivityTable,
    profile: &DeviceProfile,
    pins: &[Pin],
    options: &CandidateOptions,
) -> Result<Vec<TensorCandidates>> {
    if !table.has(options.measure) {
        return Err(ScheduleError::Options(format!(
            "the table does not hold the measure {}",
            options.measure.name()
        )));
    }
    let formats = table.formats.clone();
    // How the device runs each format: the same for every tensor.
    let runs: Vec<_> =
        formats.iter().map(|&f| (f, profile.execution(f, options.activations))).collect();
    let mut pin_used = vec![false; pins.len()];
    let mut out = Vec::with_capacity(table.tensors.len());
    for (index, t) in table.tensors.iter().enumerate() {
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let candidate = |format: WeightFormat| -> Option<Candidate> {
            if !profile.layouts.allows(format, cols) {
                return None;
            }
            let entry = t.formats.get(&format)?;
            let loss = entry.get(options.measure)?;
            let run = runs.iter().find(|(f, _)| *f == format)?.1.as_ref()?;
            let bytes = if run.fallback {
                run.runs_as.storage_bytes(rows, cols) as u64
            } else {
                entry.bytes
            };
            Some(Candidate {
                format,
                runs_as: run.runs_as,
                fallback: run.fallback,
                bytes,
                latency: run.kernel.seconds(rows, cols, options.batch),
                loss,
            })
        };
        let pinned_by = pins.iter().position(|p| p.matches(&t.name));
        let list: Vec<Candidate> = match pinned_by {
            Some(p) => {
                pin_used[p] = true;
                let format = pins[p].format;
                if !formats.contains(&format) {
                    return Err(ScheduleError::Options(format!(
                        "pin {}: {format} is not among the table's formats ({})",
                        pins[p],
                        join_names(&table.formats)
                    )));
                }
                let c = candidate(format).ok_or_else(|| ScheduleError::Tensor {
                    tensor: t.name.clone(),
                    reason: format!(
                        "pinned to {format} by {}, which device {} can run neither natively \
                         nor through a fallback",
                        pins[p], profile.name
                    ),
                })?;
                vec![c]
            }
            None => formats.iter().filter_map(|&f| candidate(f)).collect(),
        };
        if list.is_empty() {
            return Err(ScheduleError::Tensor {
                tensor: t.name.clone(),
                reason: format!(
                    "none of the table's formats ({}) runs on device {} with {} activations",
                    join_names(&table.formats),
                    profile.name,
                    options.activations
                ),
            });
        }
        out.push(TensorCandidates { tensor: index, pinned_by, candidates: list });
    }
    if let Some(p) = pin_used.iter().position(|used| !used) {
        return Err(ScheduleError::Options(format!("pin {} matches no tensor", pins[p])));
    }
    Ok(out)
}

/// The solver's problem over these candidates (item `i` is
/// `candidates[i]`, choice `j` its `j`-th candidate).
pub fn problem(candidates: &[TensorCandidates]) -> Problem {
    Problem::new(
        candidates
            .iter()
            .map(|t| {
                Item::new(
                    t.candidates.iter().map(|c| Choice::new(c.bytes, c.latency, c.loss)).collect(),
                )
            })
            .collect(),
    )
}
