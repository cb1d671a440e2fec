//! The loss-against-size Pareto frontier: the problem solved at a sweep of
//! byte budgets, keeping the plans no other plan of the sweep beats.
//!
//! Budgets are spaced linearly from [`Problem::min_bytes`] to
//! [`Problem::max_useful_bytes`]: model sizes span well under two decades
//! (2-bit to 16-bit weights is 8×) and are read on a linear axis, while
//! losses span many decades and are plotted on a log axis; a linear sweep
//! samples the size axis evenly.

use crate::bound::lagrangian_bound;
use crate::error::PlanError;
use crate::exact::{exact_with, ExactOptions};
use crate::greedy::greedy;
use crate::problem::{Limits, Problem};

/// Which solver [`pareto`] plans each budget with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// [`greedy`](crate::greedy()).
    Greedy,
    /// [`exact_with`] with these options.
    Exact(ExactOptions),
}

/// One plan on the frontier.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontierPoint {
    /// The byte budget it was planned for.
    pub budget: u64,
    /// Its bytes (at most `budget`).
    pub bytes: u64,
    /// Its latency, seconds per token.
    pub latency: f64,
    /// Its loss.
    pub loss: f64,
    /// The Lagrangian lower bound on the optimal loss at `budget`.
    pub bound: f64,
    /// Its picks, one per item.
    pub picks: Vec<usize>,
}

/// Solves `problem` (bytes only) at `steps` budgets spaced linearly from the
/// smallest plan's bytes to the least-loss plan's (one step: the latter
/// alone; budgets that round to the same byte count are solved once) and
/// returns the plans no other beats on both bytes and loss, by bytes
/// ascending (so loss descending).
pub fn pareto(
    problem: &Problem,
    steps: usize,
    solver: Solver,
) -> Result<Vec<FrontierPoint>, PlanError> {
    problem.validate()?;
    if steps == 0 {
        return Err(PlanError::InvalidSteps { steps });
    }
    let (lo, hi) = (problem.min_bytes(), problem.max_useful_bytes());
    let mut budgets: Vec<u64> = if steps == 1 {
        vec![hi]
    } else {
        let span = u128::from(hi - lo);
        (0..steps).map(|k| lo + (span * k as u128 / (steps as u128 - 1)) as u64).collect()
    };
    budgets.dedup();
    let mut points = Vec::with_capacity(budgets.len());
    for budget in budgets {
        let limits = Limits::bytes(budget);
        let (solution, bound) = match solver {
            Solver::Greedy => {
                let g = greedy(problem, &limits)?;
                (g.solution, g.gap.bound)
            }
            Solver::Exact(options) => {
                let e = exact_with(problem, &limits, &options)?;
                (e.solution, lagrangian_bound(problem, &limits)?.value)
            }
        };
        points.push(FrontierPoint {
            budget,
            bytes: solution.bytes,
            latency: solution.latency,
            loss: solution.loss,
            bound,
            picks: solution.picks,
        });
    }
    // Keep, by bytes ascending, each point strictly better in loss than all
    // smaller ones (of equal plans, the one of the smallest budget).
    points.sort_by(|a, b| {
        a.bytes.cmp(&b.bytes).then(a.loss.total_cmp(&b.loss)).then(a.budget.cmp(&b.budget))
    });
    let mut frontier: Vec<FrontierPoint> = Vec::with_capacity(points.len());
    for p in points {
        if frontier.last().is_none_or(|last| p.loss < last.loss) {
            frontier.push(p);
        }
    }
    Ok(frontier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::ExactOptions;
    use crate::synthetic::synthetic;

    #[test]
    fn frontier_is_monotone_and_spans_the_range() {
        let p = synthetic(30, 5, 7);
        for solver in [Solver::Greedy, Solver::Exact(ExactOptions::default())] {
            let f = pareto(&p, 12, solver).unwrap();
            assert!(!f.is_empty());
            for w in f.windows(2) {
                assert!(w[0].bytes < w[1].bytes && w[0].loss > w[1].loss, "{solver:?}");
            }
            for pt in &f {
                assert!(pt.bytes <= pt.budget && pt.bound <= pt.loss * (1.0 + 1e-12) + 1e-300);
            }
            assert_eq!(f[0].bytes, p.min_bytes());
            let last = f.last().unwrap();
            assert_eq!(last.loss, p.evaluate(&p.least_loss_picks()).unwrap().loss);
        }
    }

    #[test]
    fn steps_are_checked() {
        let p = synthetic(3, 3, 1);
        assert_eq!(pareto(&p, 0, Solver::Greedy), Err(PlanError::InvalidSteps { steps: 0 }));
        let one = pareto(&p, 1, Solver::Greedy).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].budget, p.max_useful_bytes());
    }
}
