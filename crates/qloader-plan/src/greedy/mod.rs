//! The default solver: a greedy walk down the items' hulls, a greedy spend
//! of what is left, and local improvements, with a certified optimality
//! gap from the Lagrangian bound.
//!
//! * Bytes alone (`bytes.rs`). Every item starts at its least-loss choice
//!   (the top of its hull). While over budget, the downgrade of least loss
//!   added per byte saved, over all items' next hull step down, is taken (a
//!   binary heap keyed by hull slope, O(n·k·log n)). This walks the path of
//!   the LP relaxation and ends at the smallest plan at worst, so it never
//!   reports infeasible when a plan exists. The leftover is then spent on
//!   upgrades (`upgrade.rs`): any move of an item to a choice of less loss
//!   (not only its hull neighbour) that still fits, best loss removed per
//!   byte first, until none fits. The walk's last downgrade (the critical
//!   one) decides how much is left over, so the walk is also continued with
//!   it held back, a few times over, and each plan is improved by exchanges
//!   (`exchange.rs`: an upgrade paid for by one or several downgrades
//!   elsewhere); the best plan wins.
//! * Bytes and latency (`two.rs`). Downgrades may be any cheaper choice; each
//!   resource is weighted by how far it still is over its limit
//!   (normalised by the limit), and the downgrade of least loss added per
//!   weighted resource saved is taken (in the spirit of Toyoda's effective
//!   gradient for multidimensional knapsacks, Management Science 21(12),
//!   1975). A move may not grow a resource that is over its limit nor push
//!   one that is within its limit over it, so the summed excess falls at
//!   every move and the walk ends. This walk runs from the least-loss plan
//!   and, as a repair, from the byte-budget greedy's plans with the other
//!   resource priced in at its root Lagrangian multiplier (a Lagrangian
//!   heuristic); upgrades must keep both limits; the best plan wins.
//!   Feasibility under two limits is NP-hard in general, so when no walk
//!   ends within the limits the exact solver decides, within its node
//!   limit, and the result says so.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::bound::{lagrangian_bound, Bound, Gap};
use crate::error::PlanError;
use crate::exact::{exact_from, ExactOptions, DEFAULT_NODE_LIMIT};
use crate::problem::{Limits, Problem, Solution};

mod bytes;
mod exchange;
mod two;
mod upgrade;

use bytes::bytes_only;
use two::two_limits;

/// Options of [`greedy_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreedyOptions {
    /// Node limit of the exact solver when it is asked to decide a problem
    /// under two limits that the greedy could not fit.
    pub fallback_node_limit: u64,
}

impl Default for GreedyOptions {
    fn default() -> Self {
        Self { fallback_node_limit: DEFAULT_NODE_LIMIT }
    }
}

/// Which solver produced a [`GreedyResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The greedy itself.
    Greedy,
    /// The greedy found no plan under both limits and the exact solver found
    /// this one.
    ExactFallback {
        /// Whether the exact solver proved the plan optimal (it stopped
        /// before its node limit).
        proven_optimal: bool,
        /// Branch-and-bound nodes it explored.
        nodes: u64,
    },
}

/// A plan from [`greedy`], with how far from optimal it can be at most.
#[derive(Debug, Clone, PartialEq)]
pub struct GreedyResult {
    /// The plan.
    pub solution: Solution,
    /// Its loss against the Lagrangian bound (or, after an exact fallback
    /// that proved optimality, against itself).
    pub gap: Gap,
    /// Which solver found it.
    pub method: Method,
}

/// Plans with the greedy (default options). See the module documentation.
pub fn greedy(problem: &Problem, limits: &Limits) -> Result<GreedyResult, PlanError> {
    greedy_with(problem, limits, &GreedyOptions::default())
}

/// Plans with the greedy. Errors if the problem or limits are invalid, or if
/// no plan meets the limits ([`PlanError::Infeasible`]); under two limits
/// also if the exact fallback can neither find a plan nor prove there is
/// none within its node limit ([`PlanError::Undecided`]).
pub fn greedy_with(
    problem: &Problem,
    limits: &Limits,
    options: &GreedyOptions,
) -> Result<GreedyResult, PlanError> {
    problem.check(limits)?;
    let root = lagrangian_bound(problem, limits)?;
    if let Some(solution) = heuristic(problem, limits, &root) {
        return Ok(GreedyResult {
            gap: Gap::new(solution.loss, root.value),
            solution,
            method: Method::Greedy,
        });
    }
    let exact = exact_from(
        problem,
        limits,
        &ExactOptions { node_limit: options.fallback_node_limit, warm_start: false },
        None,
        root,
    )?;
    Ok(GreedyResult {
        solution: exact.solution,
        gap: exact.gap,
        method: Method::ExactFallback { proven_optimal: exact.proven_optimal, nodes: exact.nodes },
    })
}

/// The greedy plan, if it finds one that meets the limits. The problem and
/// limits must have passed [`Problem::check`].
/// Under two limits it uses the root Lagrangian multipliers `root`.
pub(crate) fn heuristic(problem: &Problem, limits: &Limits, root: &Bound) -> Option<Solution> {
    let picks = match limits.latency_limit() {
        None => bytes_only(problem, limits.max_bytes)?,
        Some(t) => two_limits(problem, limits.max_bytes, t, root.lambda, root.mu)?,
    };
    let solution = problem.evaluate(&picks).ok()?;
    limits.admits(solution.bytes, solution.latency).then_some(solution)
}

/// A heap entry: smallest key first, then lowest item, then lowest `aux`.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    key: f64,
    item: usize,
    /// The target choice (upgrades) or 0.
    aux: usize,
    /// The item's version when ranked; stale entries are skipped.
    version: u32,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(self.item.cmp(&other.item))
            .then(self.aux.cmp(&other.aux))
            .then(self.version.cmp(&other.version))
    }
}

/// A min-heap of ranked moves.
type Heap = BinaryHeap<Reverse<Ranked>>;

/// How each resource is normalised: by its limit, or by its range where the
/// limit is 0.
#[derive(Debug, Clone, Copy)]
struct Units {
    bytes: f64,
    latency: f64,
}

impl Units {
    fn new(problem: &Problem, max_bytes: u64, max_latency: f64) -> Self {
        let bytes = if max_bytes > 0 {
            max_bytes as f64
        } else {
            let range = problem.max_useful_bytes().saturating_sub(problem.min_bytes());
            (range as f64).max(1.0)
        };
        let latency = if max_latency > 0.0 {
            max_latency
        } else {
            let total: f64 = problem
                .items
                .iter()
                .map(|it| it.choices.iter().map(|c| c.latency).fold(0.0, f64::max))
                .sum();
            if total > 0.0 {
                total
            } else {
                1.0
            }
        };
        Self { bytes, latency }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{Choice, Item};

    fn example() -> Problem {
        crate::examples::two_items()
    }

    #[test]
    fn downgrades_then_spends_the_leftover() {
        // Down: A 4→2 (0.5/byte), then B 4→1 (5/6 per byte) to 3 bytes;
        // up: A 2→4 fits the 2 bytes left. Optimal: 2.5.
        let r = greedy(&example(), &Limits::bytes(5)).unwrap();
        assert_eq!(r.solution.picks, vec![0, 2]);
        assert_eq!(r.solution.loss, 2.5);
        assert_eq!(r.method, Method::Greedy);
        assert!((r.gap.bound - 11.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn extremes_of_the_budget() {
        let p = example();
        let r = greedy(&p, &Limits::bytes(100)).unwrap();
        assert_eq!((r.solution.loss, r.gap.relative), (0.0, 0.0));
        let r = greedy(&p, &Limits::bytes(2)).unwrap();
        assert_eq!(r.solution.bytes, 2);
        assert!(matches!(greedy(&p, &Limits::bytes(1)), Err(PlanError::Infeasible(_))));
    }

    #[test]
    fn upgrades_are_not_limited_to_hull_neighbours() {
        // One item, hull (1, 10) – (3, 0); (2, 9) is off the hull. At 3
        // bytes the walk never leaves the top. At 2 it goes down to 1 byte
        // and the upgrade to (2, 9) is the one that fits.
        let p = Problem::new(vec![Item::new(vec![
            Choice::new(3, 0.0, 0.0),
            Choice::new(2, 0.0, 9.0),
            Choice::new(1, 0.0, 10.0),
        ])]);
        assert_eq!(greedy(&p, &Limits::bytes(2)).unwrap().solution.picks, vec![1]);
    }

    #[test]
    fn latency_limit_is_met() {
        // Fast choices are big: the latency limit forces item 0 to stay big.
        let p = Problem::new(vec![
            Item::new(vec![Choice::new(8, 1.0, 0.0), Choice::new(2, 3.0, 0.5)]),
            Item::new(vec![Choice::new(8, 1.0, 0.0), Choice::new(4, 1.5, 0.1)]),
        ]);
        let limits = Limits::bytes(12).with_latency(2.6);
        let r = greedy(&p, &limits).unwrap();
        assert!(limits.admits(r.solution.bytes, r.solution.latency), "{r:?}");
        assert_eq!(r.solution.picks, vec![0, 1]);
        assert!(r.gap.bound <= r.solution.loss + 1e-12);
    }

    #[test]
    fn stuck_walks_fall_back_to_exact() {
        // Only [0, 0, 1] meets both limits (found by random search); every
        // walk of the greedy ends over a limit.
        let p = Problem::new(vec![
            Item::new(vec![Choice::new(9, 0.0, 6.0), Choice::new(6, 2.0, 0.0)]),
            Item::new(vec![Choice::new(1, 0.0, 7.0), Choice::new(5, 0.0, 3.0)]),
            Item::new(vec![
                Choice::new(7, 0.0, 4.0),
                Choice::new(1, 8.0, 7.0),
                Choice::new(9, 8.0, 2.0),
            ]),
        ]);
        let limits = Limits::bytes(12).with_latency(8.0);
        let root = lagrangian_bound(&p, &limits).unwrap();
        assert_eq!(heuristic(&p, &limits, &root), None);
        let r = greedy(&p, &limits).unwrap();
        assert_eq!(r.solution.picks, vec![0, 0, 1]);
        assert_eq!(r.solution.picks, crate::brute::brute_force(&p, &limits).unwrap().picks);
        assert!(matches!(r.method, Method::ExactFallback { proven_optimal: true, .. }), "{r:?}");
        // One byte less and no plan fits both limits: proven so.
        let limits = Limits::bytes(10).with_latency(8.0);
        assert!(crate::brute::brute_force(&p, &limits).is_err());
        assert!(matches!(greedy(&p, &limits), Err(PlanError::Infeasible(_))));
    }
}
