//! The greedy under a byte budget and a latency budget: the weighted walk,
//! run from the least-loss plan and as a repair of Lagrangian-priced
//! byte-budget (and latency-budget) greedy plans.

use std::cmp::{Ordering, Reverse};

use super::bytes::bytes_only;
use super::upgrade::Upgrades;
use super::{Heap, Ranked, Units};
use crate::problem::{latency_fits, Choice, Item, Limits, Problem};

/// The latency limit in the fixed point of the latency-budget greedy.
const LATENCY_UNITS: u64 = 1 << 40;

/// How far the normalised excess mix may drift before all downgrade keys
/// are recomputed.
const THETA_DRIFT: f64 = 0.05;

/// The walk state under two limits.
struct TwoLimits<'a> {
    problem: &'a Problem,
    max_bytes: u64,
    max_latency: f64,
    units: Units,
    bytes: u64,
    latency: f64,
}

impl TwoLimits<'_> {
    fn over(&self) -> (bool, bool) {
        (self.bytes > self.max_bytes, !latency_fits(self.latency, self.max_latency))
    }

    /// Weights of the two resources: normalised excess over the limit.
    fn weights(&self) -> (f64, f64) {
        let (over_b, over_t) = self.over();
        let wb = if over_b { (self.bytes - self.max_bytes) as f64 / self.units.bytes } else { 0.0 };
        let wt = if over_t { (self.latency - self.max_latency) / self.units.latency } else { 0.0 };
        (wb, wt)
    }

    /// The admissible downgrade of item `i` (from `cur`) with the least loss
    /// added per weighted resource saved: (key, target).
    fn best_downgrade(&self, i: usize, cur: usize) -> Option<(f64, usize)> {
        let (over_b, over_t) = self.over();
        let (wb, wt) = self.weights();
        let choices = &self.problem.items[i].choices;
        let a = &choices[cur];
        let mut best: Option<(f64, usize)> = None;
        for (j, c) in choices.iter().enumerate() {
            if j == cur {
                continue;
            }
            let bytes_ok = if over_b {
                c.bytes <= a.bytes
            } else {
                self.bytes - a.bytes + c.bytes <= self.max_bytes
            };
            let latency_ok = if over_t {
                c.latency <= a.latency
            } else {
                latency_fits(self.latency - a.latency + c.latency, self.max_latency)
            };
            if !(bytes_ok && latency_ok) {
                continue;
            }
            let saved = wb * (a.bytes as f64 - c.bytes as f64) / self.units.bytes
                + wt * (a.latency - c.latency) / self.units.latency;
            if saved.partial_cmp(&0.0) != Some(Ordering::Greater) {
                continue;
            }
            let key = (c.loss - a.loss) / saved;
            if best.is_none_or(|(k, _)| key < k) {
                best = Some((key, j));
            }
        }
        best
    }
}

/// The greedy under two limits: the best of the weighted walk from the
/// least-loss plan, and of the same walk (repairing what exceeds a limit)
/// from two Lagrangian-priced one-budget plans: the byte-budget greedy's
/// for `loss + μ·latency`, and the latency-budget greedy's for
/// `loss + λ·bytes` (`lambda`, `mu`: the root multipliers).
pub(super) fn two_limits(
    problem: &Problem,
    max_bytes: u64,
    max_latency: f64,
    lambda: f64,
    mu: f64,
) -> Option<Vec<usize>> {
    let limits = Limits::bytes(max_bytes).with_latency(max_latency);
    let mut best: Option<(f64, Vec<usize>)> = None;
    let mut consider = |picks: Option<Vec<usize>>| {
        let Some(picks) = picks else { return };
        let Ok(s) = problem.evaluate(&picks) else { return };
        if limits.admits(s.bytes, s.latency) && best.as_ref().is_none_or(|(l, _)| s.loss < *l) {
            best = Some((s.loss, picks));
        }
    };
    consider(walk_two(problem, max_bytes, max_latency, problem.least_loss_picks()));
    // Bytes as the budget, latency priced in.
    let weighted = reweigh(problem, |c| (c.bytes, c.loss + mu * c.latency));
    let start = bytes_only(&weighted, max_bytes);
    consider(start.and_then(|start| walk_two(problem, max_bytes, max_latency, start)));
    // Latency as the budget, in fixed point: 2^40 units is the limit, each
    // latency rounded up (so a plan within the fixed-point budget is within
    // the limit) and capped just over the limit (a choice that alone exceeds
    // it stays out of reach, and sums cannot overflow).
    let unit = max_latency / LATENCY_UNITS as f64;
    if unit > 0.0 {
        let weighted = reweigh(problem, |c| {
            let units = (c.latency / unit).ceil().min((LATENCY_UNITS + 1) as f64) as u64;
            (units, c.loss + lambda * c.bytes as f64)
        });
        let start = bytes_only(&weighted, LATENCY_UNITS);
        consider(start.and_then(|start| walk_two(problem, max_bytes, max_latency, start)));
    }
    best.map(|(_, picks)| picks)
}

/// The problem with each choice's (bytes, loss) replaced.
fn reweigh(problem: &Problem, f: impl Fn(&Choice) -> (u64, f64)) -> Problem {
    let items = problem.items.iter().map(|it| {
        let choices = it.choices.iter().map(|c| {
            let (bytes, loss) = f(c);
            Choice { bytes, loss, latency: 0.0 }
        });
        Item::new(choices.collect())
    });
    Problem::new(items.collect())
}

/// The weighted walk under two limits from `picks`, then the upgrade spend.
fn walk_two(
    problem: &Problem,
    max_bytes: u64,
    max_latency: f64,
    mut picks: Vec<usize>,
) -> Option<Vec<usize>> {
    let start = problem.evaluate(&picks).ok()?;
    let units = Units::new(problem, max_bytes, max_latency);
    let mut walk = TwoLimits {
        problem,
        max_bytes,
        max_latency,
        units,
        bytes: start.bytes,
        latency: start.latency,
    };
    let n = picks.len();
    let total_choices: usize = problem.items.iter().map(|it| it.choices.len()).sum();
    let max_moves = 4 * total_choices + 64;
    let mut version = vec![0u32; n];
    let mut heap = Heap::new();
    let (mut rebuild, mut theta_at, mut over_at) = (true, f64::NAN, (false, false));
    let (mut moves, mut moves_since_rebuild) = (0usize, 0usize);
    loop {
        let over = walk.over();
        if over == (false, false) {
            break;
        }
        if moves > max_moves {
            return None;
        }
        let (wb, wt) = walk.weights();
        let theta = wb / (wb + wt);
        if rebuild || over != over_at || (theta - theta_at).abs() > THETA_DRIFT {
            heap.clear();
            for i in 0..n {
                if let Some((key, _)) = walk.best_downgrade(i, picks[i]) {
                    heap.push(Reverse(Ranked { key, item: i, aux: 0, version: version[i] }));
                }
            }
            (rebuild, theta_at, over_at, moves_since_rebuild) = (false, theta, over, 0);
        }
        let Some(Reverse(r)) = heap.pop() else {
            if moves_since_rebuild == 0 {
                return None;
            }
            rebuild = true;
            continue;
        };
        let i = r.item;
        if r.version != version[i] {
            continue;
        }
        // Keys go stale as the weights move: re-rank before taking it.
        let Some((key, target)) = walk.best_downgrade(i, picks[i]) else { continue };
        if heap.peek().is_some_and(|Reverse(top)| key > top.key) {
            heap.push(Reverse(Ranked { key, ..r }));
            continue;
        }
        let (a, c) = (&problem.items[i].choices[picks[i]], &problem.items[i].choices[target]);
        walk.bytes = walk.bytes - a.bytes + c.bytes;
        walk.latency = walk.latency - a.latency + c.latency;
        picks[i] = target;
        version[i] += 1;
        moves += 1;
        moves_since_rebuild += 1;
        if let Some((key, _)) = walk.best_downgrade(i, picks[i]) {
            heap.push(Reverse(Ranked { key, item: i, aux: 0, version: version[i] }));
        }
    }
    let all: Vec<usize> =
        (0..problem.items.iter().map(|it| it.choices.len()).max().unwrap_or(0)).collect();
    let mut up = Upgrades {
        problem,
        max_bytes,
        max_latency: Some(max_latency),
        units,
        bytes: walk.bytes,
        latency: walk.latency,
    };
    up.run(&mut picks, |i| &all[..problem.items[i].choices.len()]);
    Some(picks)
}
