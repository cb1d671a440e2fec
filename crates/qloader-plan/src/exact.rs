//! The exact solver: depth-first branch and bound, to measure the greedy's
//! optimality gap and to solve problems of a few hundred items outright.
//!
//! 1. The greedy's plan is the incumbent; the root Lagrangian bound (λ, μ)
//!    may already prove it optimal.
//! 2. Reduced-cost fixing: a choice whose Lagrangian reduced cost lifts the
//!    root bound above the incumbent cannot be in a better plan and is
//!    dropped; so is a choice that cannot fit even with every other item at
//!    its smallest (fastest), and one that another choice of its item beats
//!    on bytes, loss (and latency, when limited). Items left with one choice
//!    are constants. On realistic problems this leaves few items to branch
//!    on.
//! 3. The rest are branched on largest loss range first, each item's
//!    choices in order of reduced cost. A node's bound is its fixed loss
//!    plus the LP relaxation of the remaining items over their hulls in the
//!    residual byte budget (fill by slope, at most one item fractional;
//!    Sinha & Zoltners 1979), answered in O(log n) by a
//!    Fenwick tree of all hull segments in slope order in which the fixed
//!    items' segments are switched off. With a latency limit, nodes that
//!    cannot meet it with every remaining item at its fastest are cut, and
//!    the bound is the largest of: that LP; the LP in bytes of
//!    `loss + μ·latency` less μ·(latency left), latency being relaxed at the
//!    root multiplier μ; the same two LPs with latency as the budget (in
//!    fixed point, rounded down, which only relaxes it) and bytes relaxed
//!    at λ; and the Lagrangian at the root (λ, μ). Each is a valid lower
//!    bound on the remaining items' loss.
//!
//! The search stops at a node limit; the result says whether it finished,
//! i.e. whether the plan is proven optimal. Optimal means: no plan has a
//! loss lower by more than a relative [`PRUNE_TOLERANCE`].

use crate::bound::{lagrangian_bound, Bound, Gap};
use crate::error::PlanError;
use crate::greedy::heuristic;
use crate::lp::{suffix, SuffixLp};
use crate::problem::{latency_fits, Choice, Limits, Problem, Solution, LATENCY_TOLERANCE};

/// The default node limit: enough for hundreds of realistic items, small
/// enough to end in minutes at worst.
pub const DEFAULT_NODE_LIMIT: u64 = 50_000_000;

/// Nodes whose bound is within this relative distance of the incumbent are
/// not explored: the exact solver finds the optimum to within it.
pub const PRUNE_TOLERANCE: f64 = 1e-12;

/// Relative slack of reduced-cost fixing, against rounding in the bound.
const FIXING_TOLERANCE: f64 = 1e-9;

/// Options of [`exact_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactOptions {
    /// Branch-and-bound nodes (choices tried) at most.
    pub node_limit: u64,
    /// Whether the greedy's plan is the first incumbent (it prunes most of
    /// the search); turning it off exercises the search alone.
    pub warm_start: bool,
}

impl Default for ExactOptions {
    fn default() -> Self {
        Self { node_limit: DEFAULT_NODE_LIMIT, warm_start: true }
    }
}

/// A plan from [`exact`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExactResult {
    /// The best plan found.
    pub solution: Solution,
    /// Its loss against the best known lower bound: itself when proven
    /// optimal, the root Lagrangian bound otherwise.
    pub gap: Gap,
    /// Whether the search finished, proving the plan optimal.
    pub proven_optimal: bool,
    /// Nodes (choices tried) explored.
    pub nodes: u64,
}

/// Solves exactly with the default node limit.
pub fn exact(problem: &Problem, limits: &Limits) -> Result<ExactResult, PlanError> {
    exact_with(problem, limits, &ExactOptions::default())
}

/// Solves exactly. Errors if the problem or limits are invalid, if no plan
/// meets the limits ([`PlanError::Infeasible`], proven), or if the node
/// limit is reached before any plan is found ([`PlanError::Undecided`]).
pub fn exact_with(
    problem: &Problem,
    limits: &Limits,
    options: &ExactOptions,
) -> Result<ExactResult, PlanError> {
    problem.check(limits)?;
    let root = lagrangian_bound(problem, limits)?;
    let incumbent = if options.warm_start { heuristic(problem, limits, &root) } else { None };
    exact_from(problem, limits, options, incumbent, root)
}

/// [`exact_with`] from a given incumbent and the root Lagrangian bound, on
/// a checked problem.
pub(crate) fn exact_from(
    problem: &Problem,
    limits: &Limits,
    options: &ExactOptions,
    incumbent: Option<Solution>,
    root: Bound,
) -> Result<ExactResult, PlanError> {
    let mut search = Search::new(problem, limits, root, incumbent);
    let mut best = search.incumbent.take();
    let mut nodes = 0;
    let proven = search.finished_at_root(best.as_ref())
        || search.run(options.node_limit, &mut best, &mut nodes);
    match best {
        Some(solution) => {
            let bound = if proven { solution.loss } else { root.value.min(solution.loss) };
            Ok(ExactResult {
                gap: Gap::new(solution.loss, bound),
                solution,
                proven_optimal: proven,
                nodes,
            })
        }
        None if proven => Err(PlanError::Infeasible(problem.infeasible(limits))),
        None => Err(PlanError::Undecided { nodes }),
    }
}

/// Which budget an LP relaxation keeps.
#[derive(Debug, Clone, Copy)]
enum Resource {
    Bytes,
    /// Latency, in fixed point of this many seconds per unit.
    Latency {
        unit: f64,
    },
}

/// An LP relaxation of the remaining items in one resource, of costs
/// `loss + weight·(the other resource)`, that other resource's budget being
/// relaxed with `weight` as its multiplier.
struct Relaxation {
    lp: SuffixLp,
    resource: Resource,
    weight: f64,
}

struct Search<'a> {
    problem: &'a Problem,
    limits: Limits,
    root: Bound,
    /// The plan to beat, until the search takes it over.
    incumbent: Option<Solution>,
    /// Picks of the constant items (the free ones are overwritten).
    picks: Vec<usize>,
    /// Sum over the constant items.
    const_bytes: u64,
    const_latency: f64,
    const_loss: f64,
    /// Whether some item has no choice left that could beat the incumbent.
    exhausted: bool,
    /// Free items, in branching order.
    free: Vec<usize>,
    /// Per free position: its candidate choices in branching order.
    order: Vec<Vec<usize>>,
    /// LP relaxations of the suffixes.
    lps: Vec<Relaxation>,
    /// Suffix sums over free positions `d..`: least latency, Lagrangian
    /// minima. Length `free.len() + 1`.
    suf_latency: Vec<f64>,
    suf_dual: Vec<f64>,
}

impl<'a> Search<'a> {
    fn new(
        problem: &'a Problem,
        limits: &Limits,
        root: Bound,
        incumbent: Option<Solution>,
    ) -> Self {
        let latency_limit = limits.latency_limit();
        let mu = if latency_limit.is_some() { root.mu } else { 0.0 };
        let cost = |c: &Choice| c.loss + root.lambda * c.bytes as f64 + mu * c.latency;
        let upper = incumbent.as_ref().map_or(f64::INFINITY, |s| s.loss);
        let fix_above = upper + upper.abs() * FIXING_TOLERANCE;
        let min_bytes = problem.min_bytes();
        let min_latency = problem.min_latency();

        let mut search = Search {
            problem,
            limits: *limits,
            root,
            incumbent,
            picks: vec![0; problem.items.len()],
            const_bytes: 0,
            const_latency: 0.0,
            const_loss: 0.0,
            exhausted: false,
            free: Vec::new(),
            order: Vec::new(),
            lps: Vec::new(),
            suf_latency: Vec::new(),
            suf_dual: Vec::new(),
        };

        // Candidates per item; constants folded.
        let mut cands: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, item) in problem.items.iter().enumerate() {
            let choices = &item.choices;
            let floor = choices.iter().map(cost).fold(f64::INFINITY, f64::min);
            let room_bytes = limits.max_bytes - (min_bytes - item.min_bytes());
            let other_latency = min_latency - item.min_latency();
            let keep: Vec<usize> = (0..choices.len())
                .filter(|&j| {
                    let c = &choices[j];
                    c.bytes <= room_bytes
                        && latency_limit.is_none_or(|t| {
                            c.latency + other_latency <= t + t.abs() * FIXING_TOLERANCE
                        })
                        && root.value + (cost(c) - floor) <= fix_above
                })
                .collect();
            let keep: Vec<usize> = keep
                .iter()
                .copied()
                .filter(|&j| {
                    !keep.iter().any(|&k| {
                        dominates(&choices[k], k, &choices[j], j, latency_limit.is_some())
                    })
                })
                .collect();
            match keep.len() {
                0 => search.exhausted = true,
                1 => {
                    let c = &choices[keep[0]];
                    search.picks[i] = keep[0];
                    search.const_bytes += c.bytes;
                    search.const_latency += c.latency;
                    search.const_loss += c.loss;
                }
                _ => cands.push((i, keep)),
            }
        }
        if search.exhausted {
            return search;
        }

        // Branching order: largest loss range first.
        let range = |(i, keep): &(usize, Vec<usize>)| {
            let losses = keep.iter().map(|&j| problem.items[*i].choices[j].loss);
            let hi = losses.clone().fold(f64::NEG_INFINITY, f64::max);
            hi - losses.fold(f64::INFINITY, f64::min)
        };
        cands.sort_by(|a, b| range(b).total_cmp(&range(a)).then(a.0.cmp(&b.0)));

        // Each position's candidates by bytes, for the hulls.
        let mut by_bytes: Vec<Vec<usize>> = Vec::with_capacity(cands.len());
        let (mut fastest, mut duals) = (Vec::new(), Vec::new());
        for (i, mut keep) in cands {
            let choices = &problem.items[i].choices;
            keep.sort_by(|&a, &b| choices[a].bytes.cmp(&choices[b].bytes).then(a.cmp(&b)));
            by_bytes.push(keep.clone());
            fastest.push(keep.iter().map(|&j| choices[j].latency).fold(f64::INFINITY, f64::min));
            duals.push(keep.iter().map(|&j| cost(&choices[j])).fold(f64::INFINITY, f64::min));
            // Branch on the choice the Lagrangian prefers first.
            keep.sort_by(|&a, &b| {
                cost(&choices[a])
                    .total_cmp(&cost(&choices[b]))
                    .then(choices[a].loss.total_cmp(&choices[b].loss))
                    .then(a.cmp(&b))
            });
            search.free.push(i);
            search.order.push(keep);
        }
        // LPs in bytes: of loss, and of loss + μ·latency (latency
        // relaxed). Under a latency limit also LPs in latency: of loss, and
        // of loss + λ·bytes (bytes relaxed).
        let free = &search.free;
        let point = |pos: usize, j: usize| &problem.items[free[pos]].choices[j];
        let mut lps = vec![Relaxation {
            lp: SuffixLp::new(&by_bytes, |pos, j| (point(pos, j).bytes, point(pos, j).loss)),
            resource: Resource::Bytes,
            weight: 0.0,
        }];
        if let Some(t) = latency_limit {
            if mu > 0.0 {
                let lp = SuffixLp::new(&by_bytes, |pos, j| {
                    let c = point(pos, j);
                    (c.bytes, c.loss + mu * c.latency)
                });
                lps.push(Relaxation { lp, resource: Resource::Bytes, weight: mu });
            }
            // Latency in fixed point, rounded down (a relaxation); the
            // largest plan's latency is at most 2^40 units.
            let slowest: f64 = problem
                .items
                .iter()
                .map(|it| it.choices.iter().map(|c| c.latency).fold(0.0, f64::max))
                .sum();
            let unit = slowest.max(t).max(f64::MIN_POSITIVE) / 2f64.powi(40);
            let quantum = |latency: f64| (latency / unit).floor() as u64;
            let by_latency: Vec<Vec<usize>> = by_bytes
                .iter()
                .enumerate()
                .map(|(pos, keep)| {
                    let mut keep = keep.clone();
                    keep.sort_by(|&a, &b| {
                        quantum(point(pos, a).latency)
                            .cmp(&quantum(point(pos, b).latency))
                            .then(a.cmp(&b))
                    });
                    keep
                })
                .collect();
            let mut weights = vec![0.0];
            if root.lambda > 0.0 {
                weights.push(root.lambda);
            }
            for w in weights {
                let lp = SuffixLp::new(&by_latency, |pos, j| {
                    let c = point(pos, j);
                    (quantum(c.latency), c.loss + w * c.bytes as f64)
                });
                lps.push(Relaxation { lp, resource: Resource::Latency { unit }, weight: w });
            }
        }
        search.lps = lps;
        search.suf_latency = suffix(&fastest, 0.0, |a, b| a + b);
        search.suf_dual = suffix(&duals, 0.0, |a, b| a + b);
        search
    }

    /// Whether the search is over before it starts: the incumbent meets the
    /// root bound, or some item has nothing left that could beat it.
    fn finished_at_root(&self, best: Option<&Solution>) -> bool {
        let meets_bound = best
            .is_some_and(|s| s.loss <= self.root.value + self.root.value.abs() * PRUNE_TOLERANCE);
        meets_bound || self.exhausted
    }

    /// Offers a complete set of picks as a plan better than `best`.
    fn offer(&self, picks: &[usize], best: &mut Option<Solution>) {
        let Ok(s) = self.problem.evaluate(picks) else { return };
        if self.limits.admits(s.bytes, s.latency) && best.as_ref().is_none_or(|b| s.loss < b.loss) {
            *best = Some(s);
        }
    }

    /// Depth-first search for a plan better than `best`, counting `nodes`;
    /// returns whether it finished within `node_limit`.
    fn run(&mut self, node_limit: u64, best: &mut Option<Solution>, nodes: &mut u64) -> bool {
        let m = self.free.len();
        let Some(budget) = self.limits.max_bytes.checked_sub(self.const_bytes) else {
            return true;
        };
        if m == 0 {
            self.offer(&self.picks, best);
            return true;
        }
        let latency_limit = self.limits.latency_limit();
        let mut lps = std::mem::take(&mut self.lps);
        let switch = |lps: &mut Vec<Relaxation>, pos: usize, on: bool| {
            for r in lps.iter_mut() {
                r.lp.switch(pos, on);
            }
        };

        let mut picks = self.picks.clone();
        let mut next = vec![0usize; m];
        let (mut acc_bytes, mut acc_latency, mut acc_loss) =
            (vec![0u64; m + 1], vec![0.0f64; m + 1], vec![0.0f64; m + 1]);
        let mut upper = best.as_ref().map_or(f64::INFINITY, |s| s.loss);
        let mut d = 0;
        switch(&mut lps, 0, false);
        let finished = loop {
            if next[d] == self.order[d].len() {
                switch(&mut lps, d, true);
                if d == 0 {
                    break true;
                }
                d -= 1;
                continue;
            }
            let j = self.order[d][next[d]];
            next[d] += 1;
            *nodes += 1;
            if *nodes > node_limit {
                break false;
            }
            let c = &self.problem.items[self.free[d]].choices[j];
            let bytes = acc_bytes[d] + c.bytes;
            let Some(room) = budget.checked_sub(bytes) else { continue };
            if room < lps[0].lp.bottom(d + 1) {
                continue;
            }
            let latency = acc_latency[d] + c.latency;
            // Latency left to the items after d.
            let mut latency_room = f64::INFINITY;
            if let Some(t) = latency_limit {
                if !latency_fits(self.const_latency + latency + self.suf_latency[d + 1], t) {
                    continue;
                }
                latency_room = t - self.const_latency - latency;
            }
            let loss = self.const_loss + acc_loss[d] + c.loss;
            let mut bound = f64::NEG_INFINITY;
            for r in &lps {
                let (resource_room, other_room) = match r.resource {
                    Resource::Bytes => (room, latency_room),
                    Resource::Latency { unit } => {
                        // Within the latency tolerance, rounded up.
                        let t = latency_room + latency_limit.map_or(0.0, |t| t * LATENCY_TOLERANCE);
                        ((t / unit).floor() as u64 + 1, room as f64)
                    }
                };
                let Some(v) = r.lp.value(d + 1, resource_room) else {
                    bound = f64::INFINITY;
                    break;
                };
                let relaxed = if r.weight > 0.0 { v - r.weight * other_room } else { v };
                bound = bound.max(loss + relaxed);
            }
            if latency_limit.is_some() {
                let dual = loss + self.suf_dual[d + 1]
                    - self.root.lambda * room as f64
                    - self.root.mu * latency_room;
                bound = bound.max(dual);
            }
            if upper.is_finite() && bound >= upper - upper * PRUNE_TOLERANCE {
                continue;
            }
            picks[self.free[d]] = j;
            if d + 1 == m {
                self.offer(&picks, best);
                upper = best.as_ref().map_or(f64::INFINITY, |s| s.loss);
                continue;
            }
            acc_bytes[d + 1] = bytes;
            acc_latency[d + 1] = latency;
            acc_loss[d + 1] = acc_loss[d] + c.loss;
            d += 1;
            next[d] = 0;
            switch(&mut lps, d, false);
        };
        self.lps = lps;
        finished
    }
}

/// Whether choice `a` (index `ia`) makes choice `b` (index `ib`) useless:
/// no worse on bytes, loss (and latency if `with_latency`), and better on
/// one or equal with a lower index.
fn dominates(a: &Choice, ia: usize, b: &Choice, ib: usize, with_latency: bool) -> bool {
    if ia == ib {
        return false;
    }
    let latency_le = !with_latency || a.latency <= b.latency;
    if !(a.bytes <= b.bytes && a.loss <= b.loss && latency_le) {
        return false;
    }
    let latency_eq = !with_latency || a.latency == b.latency;
    let equal = a.bytes == b.bytes && a.loss == b.loss && latency_eq;
    !equal || ia < ib
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brute::brute_force;

    fn example() -> Problem {
        use crate::examples::three_sizes;
        Problem::new(vec![three_sizes(1.0, 3.0), three_sizes(2.0, 2.5), three_sizes(0.3, 0.7)])
    }

    #[test]
    fn matches_brute_force_at_every_budget() {
        let p = example();
        for budget in p.min_bytes()..=p.max_useful_bytes() + 1 {
            let limits = Limits::bytes(budget);
            let e = exact(&p, &limits).unwrap();
            let b = brute_force(&p, &limits).unwrap();
            assert!(e.proven_optimal);
            assert!((e.solution.loss - b.loss).abs() < 1e-12, "budget {budget}: {e:?} vs {b:?}");
            assert!(e.solution.bytes <= budget);
        }
    }

    #[test]
    fn search_without_incumbent_finds_the_optimum() {
        let p = example();
        let limits = Limits::bytes(7);
        problem_ok(&p, &limits);
        let root = lagrangian_bound(&p, &limits).unwrap();
        let e = exact_from(&p, &limits, &ExactOptions::default(), None, root).unwrap();
        assert!(e.proven_optimal);
        assert_eq!(e.solution.loss, brute_force(&p, &limits).unwrap().loss);
        assert!(e.nodes > 0);
    }

    #[test]
    fn node_limit_stops_the_search() {
        let p = example();
        let limits = Limits::bytes(7);
        let root = lagrangian_bound(&p, &limits).unwrap();
        let e =
            exact_from(&p, &limits, &ExactOptions { node_limit: 0, warm_start: false }, None, root);
        assert!(matches!(e, Err(PlanError::Undecided { nodes: 1 })), "{e:?}");
    }

    fn problem_ok(p: &Problem, limits: &Limits) {
        assert!(p.check(limits).is_ok());
    }

    #[test]
    fn dominance() {
        let a = Choice::new(2, 1.0, 1.0);
        assert!(dominates(&a, 0, &Choice::new(3, 1.0, 1.0), 1, true));
        assert!(!dominates(&a, 0, &Choice::new(3, 0.5, 1.0), 1, true));
        assert!(dominates(&a, 0, &Choice::new(3, 0.5, 1.0), 1, false));
        assert!(dominates(&a, 0, &a, 1, true));
        assert!(!dominates(&a, 1, &a, 0, true));
    }
}
