//! Which plan of a packed file to load: by name, or the best one whose
//! memory at run time fits a limit (given, or the memory the system has
//! available). A plan's memory is estimated before anything is read, from
//! its tensors' formats, the kernels this device has and the copies the
//! loader keeps of them (tiles, panels, conversions, values).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;

use qloader_format::{ActivationFormat, PackedFile, PlanView, WeightFormat};
use qloader_quant::LinearWeight;

use crate::error::{Result, RuntimeError};
use crate::registry::KernelRegistry;

/// How the plan to load is chosen.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PlanChoice {
    /// The best plan that fits the memory the system has available
    /// (`MemAvailable`); a file with one plan loads it.
    #[default]
    Available,
    /// The best plan whose run-time memory is at most this many bytes.
    Memory(u64),
    /// The plan with this name.
    Named(String),
}

/// One plan as the chooser saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanCandidate {
    /// Its name (empty for a version 1 file's one plan).
    pub name: String,
    /// Bits per weight of its quantizable tensors, if recorded.
    pub bits_per_weight: Option<f64>,
    /// Bytes it reads from the file.
    pub stored_bytes: u64,
    /// Bytes the loaded model keeps for its tensors (estimated).
    pub run_bytes: u64,
    /// Its predicted loss, if recorded.
    pub predicted_loss: Option<f64>,
}

/// The plan chosen, among which, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSelection {
    /// Index of the chosen plan in the file.
    pub index: usize,
    /// Every plan of the file, in header order.
    pub candidates: Vec<PlanCandidate>,
    /// The memory limit applied, if any.
    pub limit: Option<u64>,
    /// Why this plan, in words.
    pub reason: String,
}

impl PlanSelection {
    /// The chosen plan.
    pub fn chosen(&self) -> &PlanCandidate {
        &self.candidates[self.index]
    }
}

impl fmt::Display for PlanSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The bytes the loaded model keeps for `plan`'s tensors with `registry`'s
/// kernels and `act` activations: the prepared form of each weight (tiles,
/// panels, or the stored bytes read in place), in the format it runs as
/// where this device converts it (with the converted copy). An estimate: a tensor that is only looked
/// up (an untied embedding table) is counted as its tiles, a little more
/// than the stored rows it reads.
pub fn run_bytes(plan: &PlanView<'_>, registry: &KernelRegistry, act: ActivationFormat) -> u64 {
    plan.tensors()
        .map(|t| {
            let [rows, cols] = t.shape();
            let format = t.format();
            if rows == 1 && format == WeightFormat::F32 {
                // A vector of values (norm scales, biases), copied.
                return t.byte_len() as u64;
            }
            let runs_as = registry.choose(format, act).map_or(format, |c| c.runs_as);
            let prepared = LinearWeight::prepared_bytes(runs_as, rows, cols);
            let stored = runs_as.storage_bytes(rows, cols);
            // A converted weight keeps its owned copy beside its tiles.
            let copy = if runs_as != format && prepared != stored { stored } else { 0 };
            (prepared + copy) as u64
        })
        .sum()
}

/// The index of `file`'s plan called `name`, or an error listing its plans.
pub fn plan_named(file: &PackedFile, name: &str) -> Result<usize> {
    file.plans().position(|p| p.name() == name).ok_or_else(|| {
        let names: Vec<String> = file.plans().map(|p| format!("`{}`", p.name())).collect();
        RuntimeError::InvalidPacked {
            path: file.path().to_owned(),
            reason: format!("has no plan `{name}` (its plans: {})", names.join(", ")),
        }
    })
}

/// The memory the system has available (`MemAvailable` of `/proc/meminfo`),
/// if it can be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// `bytes` as MiB with two decimals.
fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Chooses the plan of `file` to load. Among the plans that fit the limit,
/// the one with the lowest predicted loss (the most bytes where losses are
/// not recorded) wins. A limit below every plan is an error naming the
/// smallest plan and its size.
pub fn choose_plan(
    file: &PackedFile,
    choice: &PlanChoice,
    registry: &KernelRegistry,
    act: ActivationFormat,
) -> Result<PlanSelection> {
    let candidates: Vec<PlanCandidate> = file
        .plans()
        .map(|p| PlanCandidate {
            name: p.name().to_owned(),
            bits_per_weight: p.bits_per_weight(),
            stored_bytes: p.bytes(),
            run_bytes: run_bytes(&p, registry, act),
            predicted_loss: p.predicted_loss(),
        })
        .collect();
    let invalid =
        |reason: String| RuntimeError::InvalidPacked { path: file.path().to_owned(), reason };
    let label = |c: &PlanCandidate| {
        if c.name.is_empty() {
            "the file's one plan".to_owned()
        } else {
            format!("plan `{}`", c.name)
        }
    };
    let (limit, from) = match choice {
        PlanChoice::Named(name) => {
            let index = plan_named(file, name)?;
            let reason = format!(
                "{} as asked ({} at run time)",
                label(&candidates[index]),
                mib(candidates[index].run_bytes)
            );
            return Ok(PlanSelection { index, candidates, limit: None, reason });
        }
        PlanChoice::Memory(bytes) => (*bytes, "--memory".to_owned()),
        PlanChoice::Available if candidates.len() == 1 => {
            let reason =
                format!("{} ({} at run time)", label(&candidates[0]), mib(candidates[0].run_bytes));
            return Ok(PlanSelection { index: 0, candidates, limit: None, reason });
        }
        PlanChoice::Available => match available_memory() {
            Some(bytes) => (bytes, "the memory available (MemAvailable)".to_owned()),
            None => {
                // No way to know: the plan that loses least.
                let index = best(&candidates, |_| true).unwrap_or(0);
                let reason = format!(
                    "{}: the best plan, as the available memory cannot be read",
                    label(&candidates[index])
                );
                return Ok(PlanSelection { index, candidates, limit: None, reason });
            }
        },
    };
    match best(&candidates, |c| c.run_bytes <= limit) {
        Some(index) => {
            let fitting = candidates.iter().filter(|c| c.run_bytes <= limit).count();
            let c = &candidates[index];
            let why = if c.predicted_loss.is_some() { "lowest predicted loss" } else { "largest" };
            let reason = format!(
                "{} ({} at run time): the {why} of the {fitting} of {} plans within {} ({from})",
                label(c),
                mib(c.run_bytes),
                candidates.len(),
                mib(limit),
            );
            Ok(PlanSelection { index, candidates, limit: Some(limit), reason })
        }
        None => {
            let smallest = candidates.iter().min_by_key(|c| c.run_bytes);
            let smallest = smallest.map_or_else(String::new, |c| {
                format!("; the smallest, {}, needs {}", label(c), mib(c.run_bytes))
            });
            Err(invalid(format!("no plan fits in {} ({from}){smallest}", mib(limit))))
        }
    }
}

/// The index of the best candidate that `fits`: lowest predicted loss when
/// every candidate has one (ties: fewer bytes), otherwise most bytes.
fn best(candidates: &[PlanCandidate], fits: impl Fn(&PlanCandidate) -> bool) -> Option<usize> {
    let with_loss = candidates.iter().all(|c| c.predicted_loss.is_some());
    let fitting = candidates.iter().enumerate().filter(|(_, c)| fits(c));
    if with_loss {
        fitting
            .min_by(|(_, a), (_, b)| {
                let (la, lb) = (a.predicted_loss.unwrap_or(0.0), b.predicted_loss.unwrap_or(0.0));
                la.total_cmp(&lb).then(a.run_bytes.cmp(&b.run_bytes))
            })
            .map(|(i, _)| i)
    } else {
        fitting.max_by_key(|(_, c)| c.run_bytes).map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, run_bytes: u64, loss: Option<f64>) -> PlanCandidate {
        PlanCandidate {
            name: name.to_owned(),
            bits_per_weight: None,
            stored_bytes: run_bytes,
            run_bytes,
            predicted_loss: loss,
        }
    }

    #[test]
    fn the_lowest_predicted_loss_that_fits_wins() {
        let c = [
            candidate("a", 100, Some(0.5)),
            candidate("b", 200, Some(0.1)),
            candidate("c", 300, Some(0.1)),
            candidate("d", 400, Some(0.01)),
        ];
        assert_eq!(best(&c, |c| c.run_bytes <= 350), Some(1), "ties go to fewer bytes");
        assert_eq!(best(&c, |c| c.run_bytes <= 150), Some(0));
        assert_eq!(best(&c, |c| c.run_bytes <= 99), None);
        assert_eq!(best(&c, |_| true), Some(3));
        let without = [candidate("a", 100, None), candidate("b", 300, Some(0.1))];
        assert_eq!(best(&without, |c| c.run_bytes <= 1000), Some(1), "most bytes");
    }

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(parse_mem_available(text), Some(2 << 20));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_mem_available("MemAvailable: x kB\n"), None);
        assert_eq!(parse_mem_available("MemAvailable: 5 MB\n"), None);
    }
}
