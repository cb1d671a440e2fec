//! Which plan of a packed file to load: by name, or the best one whose
//! memory at run time fits a limit (given, or the memory the system has
//! available). A plan's memory is estimated before anything is read, from
//! its tensors' formats, the kernels this device has and the copies the
//! loader keeps of them (tiles, panels, conversions, values).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;

use qloader_format::{ActivationFormat, PackedFile, PlanView, TensorView, WeightFormat};
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
    /// Index of the chosen plan in `candidates` (in the file, unless it is
    /// the built one).
    pub index: usize,
    /// Every plan of the file, in header order, and last the one built
    /// here from the recorded per-variant losses if there is one.
    pub candidates: Vec<PlanCandidate>,
    /// The variant of every tensor (header order) of the plan built here,
    /// when it is the one chosen.
    pub built: Option<Vec<usize>>,
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
    plan.tensors().map(|t| tensor_run_bytes(&t, registry, act)).sum()
}

/// What the loaded model keeps of tensor variant `t` (see [`run_bytes`]).
fn tensor_run_bytes(t: &TensorView<'_>, registry: &KernelRegistry, act: ActivationFormat) -> u64 {
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
}

/// One tensor's variants as the builder weighs them: run-time bytes and
/// predicted loss of each.
struct Options {
    bytes: Vec<u64>,
    loss: Vec<f64>,
}

/// A plan built from the file's per-variant predicted losses for a memory
/// limit: the variant of every tensor, and what the plan keeps, reads and
/// is predicted to lose.
struct BuiltPlan {
    variants: Vec<usize>,
    run_bytes: u64,
    stored_bytes: u64,
    predicted_loss: f64,
}

/// Each tensor's options, if the file has several plans and every tensor
/// with several variants has a predicted loss for each (a tensor's one
/// variant without one counts 0). The losses are checked before any
/// variant's bytes are estimated, so a file without them costs nothing.
fn frontier(
    file: &PackedFile,
    registry: &KernelRegistry,
    act: ActivationFormat,
) -> Option<Vec<Options>> {
    if file.plans().len() < 2 {
        return None;
    }
    let losses: Vec<Vec<f64>> = file
        .tensors()
        .map(|t| {
            let several = t.variant_count() > 1;
            (0..t.variant_count())
                .map(|v| t.variant(v)?.predicted_loss().or((!several).then_some(0.0)))
                .collect()
        })
        .collect::<Option<_>>()?;
    let options = file.tensors().zip(losses).map(|(t, loss)| {
        let bytes = (0..t.variant_count())
            .filter_map(|v| t.variant(v))
            .map(|v| tensor_run_bytes(&v, registry, act))
            .collect();
        Options { bytes, loss }
    });
    Some(options.collect())
}

/// The predicted loss of `variants` (one per tensor) by the options' losses.
fn frontier_loss(options: &[Options], variants: &[usize]) -> f64 {
    options.iter().zip(variants).map(|(o, &v)| o.loss[v]).sum()
}

/// The greedy of the planner over the recorded variants: every tensor in
/// its smallest variant, then, while one fits in `limit`, the change of one
/// tensor's variant that buys the most predicted loss per byte (changes
/// that lose less without costing bytes first). The variant of each tensor
/// and their run-time bytes; `None` if the smallest variants do not fit.
fn greedy(options: &[Options], limit: u64) -> Option<(Vec<usize>, u64)> {
    let mut pick: Vec<usize> = options
        .iter()
        .map(|o| {
            (0..o.bytes.len())
                .min_by(|&a, &b| o.bytes[a].cmp(&o.bytes[b]).then(o.loss[a].total_cmp(&o.loss[b])))
                .unwrap_or(0)
        })
        .collect();
    let mut total: u64 = options.iter().zip(&pick).map(|(o, &v)| o.bytes[v]).sum();
    if total > limit {
        return None;
    }
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for (t, o) in options.iter().enumerate() {
            let now = pick[t];
            for v in (0..o.bytes.len()).filter(|&v| o.loss[v] < o.loss[now]) {
                let gain = o.loss[now] - o.loss[v];
                let score = if o.bytes[v] <= o.bytes[now] {
                    f64::INFINITY
                } else if total - o.bytes[now] + o.bytes[v] <= limit {
                    gain / (o.bytes[v] - o.bytes[now]) as f64
                } else {
                    continue;
                };
                if best.is_none_or(|(s, _, _)| score > s) {
                    best = Some((score, t, v));
                }
            }
        }
        let Some((_, t, v)) = best else { break };
        total = total - options[t].bytes[pick[t]] + options[t].bytes[v];
        pick[t] = v;
    }
    Some((pick, total))
}

/// [`greedy`]'s plan for `limit`, with what it reads and loses.
fn build_plan(file: &PackedFile, options: &[Options], limit: u64) -> Option<BuiltPlan> {
    let (pick, total) = greedy(options, limit)?;
    let stored_bytes =
        file.tensors().zip(&pick).map(|(t, &v)| t.variant_chain_bytes(v).unwrap_or(0)).sum();
    Some(BuiltPlan {
        predicted_loss: frontier_loss(options, &pick),
        variants: pick,
        run_bytes: total,
        stored_bytes,
    })
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
            return Ok(PlanSelection { index, candidates, built: None, limit: None, reason });
        }
        PlanChoice::Memory(bytes) => (*bytes, "--memory".to_owned()),
        PlanChoice::Available if candidates.len() == 1 => {
            let reason =
                format!("{} ({} at run time)", label(&candidates[0]), mib(candidates[0].run_bytes));
            return Ok(PlanSelection { index: 0, candidates, built: None, limit: None, reason });
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
                return Ok(PlanSelection { index, candidates, built: None, limit: None, reason });
            }
        },
    };
    // A plan built from the per-variant losses, where they are recorded,
    // if it is predicted to lose less than every recorded plan that fits.
    let options = frontier(file, registry, act);
    let recorded_loss = |index: usize| {
        let plan = file.plans().nth(index)?;
        let variants: Vec<usize> = plan.tensors().map(|t| t.variant_index()).collect();
        Some(frontier_loss(options.as_ref()?, &variants))
    };
    let recorded = best(&candidates, |c| c.run_bytes <= limit);
    let built = options.as_ref().and_then(|o| build_plan(file, o, limit)).filter(|b| {
        recorded.is_none_or(|i| recorded_loss(i).is_some_and(|l| b.predicted_loss < l - 1e-9))
    });
    if let Some(b) = built {
        let fitting = candidates.iter().filter(|c| c.run_bytes <= limit).count();
        let reason = format!(
            "a plan built here from the recorded per-tensor losses ({} at run time, predicted \
             loss {:.4}): it loses less than the {fitting} of {} recorded plans within {} ({from})",
            mib(b.run_bytes),
            b.predicted_loss,
            candidates.len(),
            mib(limit),
        );
        let mut candidates = candidates;
        candidates.push(PlanCandidate {
            name: format!("built for {}", mib(limit)),
            bits_per_weight: None,
            stored_bytes: b.stored_bytes,
            run_bytes: b.run_bytes,
            predicted_loss: Some(b.predicted_loss),
        });
        let index = candidates.len() - 1;
        return Ok(PlanSelection {
            index,
            candidates,
            built: Some(b.variants),
            limit: Some(limit),
            reason,
        });
    }
    match recorded {
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
            Ok(PlanSelection { index, candidates, built: None, limit: Some(limit), reason })
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
    fn the_greedy_buys_the_most_loss_per_byte_that_fits() {
        // Two tensors, three variants each: bytes and losses.
        let options = [
            Options { bytes: vec![10, 20, 40], loss: vec![1.0, 0.5, 0.4] },
            Options { bytes: vec![10, 20, 40], loss: vec![2.0, 0.2, 0.1] },
        ];
        assert_eq!(greedy(&options, 19), None, "the smallest variants need 20");
        assert_eq!(greedy(&options, 20), Some((vec![0, 0], 20)));
        // 10 more bytes: the second tensor's step buys 1.8, the first's 0.5.
        assert_eq!(greedy(&options, 30), Some((vec![0, 1], 30)));
        assert_eq!(greedy(&options, 45), Some((vec![1, 1], 40)));
        assert_eq!(greedy(&options, 1000), Some((vec![2, 2], 80)));
        // A variant that loses less for no more bytes is taken at once.
        let free = [Options { bytes: vec![10, 10], loss: vec![1.0, 0.5] }];
        assert_eq!(greedy(&free, 10), Some((vec![1], 10)));
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
