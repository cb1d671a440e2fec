//! The Lagrangian lower bound on the optimum, and the certified optimality
//! [`Gap`] it gives any plan.
//!
//! Relaxing the budgets with multipliers λ ≥ 0 (bytes) and μ ≥ 0 (latency)
//! gives
//!
//! ```text
//! L(λ, μ) = Σ_i min_j (loss_ij + λ·bytes_ij + μ·latency_ij) − λ·max_bytes − μ·max_latency
//! ```
//!
//! which is at most the loss of every feasible plan, for every λ, μ ≥ 0
//! (weak duality): a feasible plan's loss plus λ·(its bytes − max_bytes) and
//! μ·(its latency − max_latency), both ≤ 0, is at least the sum of per-item
//! minima. L is concave and piecewise linear.
//!
//! * Bytes alone: L(λ) is maximised exactly. Its slope is (bytes of the
//!   per-item minimisers) − max_bytes, which only changes at the slopes of
//!   the items' hull segments; sorting those segments by slope and filling
//!   the budget from the smallest plan finds the segment that does not fit,
//!   whose slope is the maximising λ. The value equals the LP relaxation of
//!   the multiple-choice knapsack.
//! * Bytes and latency: for a given μ the maximisation over λ is the exact
//!   one-dimensional one on costs `loss + μ·latency`; the best value as a
//!   function of μ is concave too, and is maximised by bracketing (doubling
//!   from a data-derived scale) and golden-section search. That search
//!   converges for a concave function but is stopped at a tolerance, so the
//!   value may fall slightly short of the true maximum; it is still a valid
//!   bound, being L at multipliers ≥ 0.

use crate::error::PlanError;
use crate::hull::{by_bytes, frontier_by};
use crate::problem::{Limits, Problem};

/// A lower bound on the loss of every plan that meets the limits, with the
/// multipliers that give it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The bound: `L(lambda, mu)`.
    pub value: f64,
    /// The multiplier of the byte budget (loss per byte).
    pub lambda: f64,
    /// The multiplier of the latency budget (loss per second per token); 0
    /// without a latency limit.
    pub mu: f64,
}

/// How far a plan's loss can be from the optimum, at most: its loss against
/// a lower bound on the optimum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    /// The plan's loss.
    pub objective: f64,
    /// A lower bound on the optimal loss.
    pub bound: f64,
    /// `objective − bound`, at least 0.
    pub absolute: f64,
    /// `absolute / bound`: 0 when the plan is certified optimal (both may be
    /// 0), infinite when the bound is 0 and the plan's loss is not.
    pub relative: f64,
}

impl Gap {
    /// The gap between a plan's loss and a lower bound.
    pub fn new(objective: f64, bound: f64) -> Self {
        let absolute = (objective - bound).max(0.0);
        let relative = if absolute == 0.0 {
            0.0
        } else if bound > 0.0 {
            absolute / bound
        } else {
            f64::INFINITY
        };
        Self { objective, bound, absolute, relative }
    }
}

/// `L(lambda, mu)` for these limits: a lower bound on the optimum for any
/// `lambda, mu ≥ 0` (negative multipliers are taken as 0; `mu` is ignored
/// without a latency limit). The problem must be valid.
pub fn lagrangian_value(problem: &Problem, limits: &Limits, lambda: f64, mu: f64) -> f64 {
    let lambda = if lambda > 0.0 { lambda } else { 0.0 };
    let mu = if mu > 0.0 && limits.latency_limit().is_some() { mu } else { 0.0 };
    dual_value(problem, limits, lambda, mu)
}

/// The best Lagrangian bound for `limits`: exact with bytes alone, a
/// search-based (and still valid) one with a latency limit too. Errors if
/// the problem is invalid or a budget is below what the smallest (fastest)
/// plan needs, in which case there is nothing to bound.
pub fn lagrangian_bound(problem: &Problem, limits: &Limits) -> Result<Bound, PlanError> {
    problem.check(limits)?;
    let mut dual = Dual::new(problem, limits.max_bytes);
    match limits.latency_limit() {
        None => {
            let lambda = dual.best_lambda(0.0);
            let value = dual_value(problem, limits, lambda, 0.0);
            Ok(Bound { value, lambda, mu: 0.0 })
        }
        Some(_) => Ok(dual.search_mu(limits)),
    }
}

/// `L(λ, μ)`, computed as Σ loss + λ·(Σ bytes − max_bytes) + μ·(Σ latency −
/// max_latency) over the per-item minimisers, so the large λ·bytes terms
/// cancel exactly in integers.
fn dual_value(problem: &Problem, limits: &Limits, lambda: f64, mu: f64) -> f64 {
    let (mut loss, mut bytes, mut latency) = (0.0f64, 0u128, 0.0f64);
    for item in &problem.items {
        let mut best: Option<(f64, usize)> = None;
        for (j, c) in item.choices.iter().enumerate() {
            let cost = c.loss + lambda * c.bytes as f64 + mu * c.latency;
            if best.is_none_or(|(b, _)| cost < b) {
                best = Some((cost, j));
            }
        }
        if let Some((_, j)) = best {
            let c = &item.choices[j];
            loss += c.loss;
            bytes += u128::from(c.bytes);
            latency += c.latency;
        }
    }
    let excess_bytes = (bytes as i128 - i128::from(limits.max_bytes)) as f64;
    let mut value = loss + lambda * excess_bytes;
    // The latency term is a difference of floats; with a large μ (nearly
    // infeasible budgets) its rounding can exceed the true value. Subtract a
    // bound on that rounding so the result stays a valid lower bound.
    let mut rounding = 0.0;
    if let (Some(t), true) = (limits.latency_limit(), mu > 0.0) {
        value += mu * (latency - t);
        let terms = problem.items.len() as f64 + 4.0;
        rounding = terms
            * f64::EPSILON
            * (mu * (latency.abs() + t.abs()) + lambda.abs() * (bytes as f64) + loss.abs());
    }
    value - rounding
}

/// Scratch space for repeated one-dimensional maximisations.
struct Dual<'a> {
    problem: &'a Problem,
    max_bytes: u64,
    /// Each item's choices by bytes ascending.
    order: Vec<Vec<usize>>,
    hull: Vec<usize>,
    /// (slope, bytes) of every hull segment.
    segments: Vec<(f64, u64)>,
}

impl<'a> Dual<'a> {
    fn new(problem: &'a Problem, max_bytes: u64) -> Self {
        let order = problem.items.iter().map(|it| by_bytes(&it.choices)).collect();
        Self { problem, max_bytes, order, hull: Vec::new(), segments: Vec::new() }
    }

    /// The λ maximising L(·, μ) exactly; requires the smallest plan to fit.
    fn best_lambda(&mut self, mu: f64) -> f64 {
        self.segments.clear();
        let mut bottom: u64 = 0;
        for (item, order) in self.problem.items.iter().zip(&self.order) {
            let point = |j: usize| {
                let c = &item.choices[j];
                (c.bytes, c.loss + mu * c.latency)
            };
            frontier_by(order, point, true, &mut self.hull);
            let Some(&first) = self.hull.first() else { continue };
            bottom = bottom.saturating_add(item.choices[first].bytes);
            for w in self.hull.windows(2) {
                let ((b0, l0), (b1, l1)) = (point(w[0]), point(w[1]));
                let bytes = b1 - b0;
                self.segments.push(((l0 - l1) / bytes as f64, bytes));
            }
        }
        let Some(mut room) = self.max_bytes.checked_sub(bottom) else {
            return f64::INFINITY;
        };
        self.segments.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        for &(slope, bytes) in &self.segments {
            if bytes > room {
                return slope;
            }
            room -= bytes;
        }
        0.0
    }

    /// max over λ of L(λ, μ), with its λ.
    fn at(&mut self, limits: &Limits, mu: f64) -> Bound {
        let lambda = self.best_lambda(mu);
        Bound { value: dual_value(self.problem, limits, lambda, mu), lambda, mu }
    }

    /// Maximises `max_λ L(λ, μ)` over μ ≥ 0: concave in μ, bracketed by
    /// doubling, then golden-section search. Returns the best point seen.
    fn search_mu(&mut self, limits: &Limits) -> Bound {
        let mut best = self.at(limits, 0.0);
        // A natural scale for μ: loss range over latency range.
        let (mut loss_range, mut latency_range) = (0.0f64, 0.0f64);
        for item in &self.problem.items {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            let (mut tlo, mut thi) = (f64::INFINITY, f64::NEG_INFINITY);
            for c in &item.choices {
                lo = lo.min(c.loss);
                hi = hi.max(c.loss);
                tlo = tlo.min(c.latency);
                thi = thi.max(c.latency);
            }
            if hi >= lo {
                loss_range += hi - lo;
                latency_range += thi - tlo;
            }
        }
        let scale = loss_range / latency_range;
        if !(scale.is_finite() && scale > 0.0) {
            // Latency is fixed per item (μ only shifts L down) or loss is:
            // either way μ = 0 is as good as any.
            return best;
        }
        let h0 = best.value;
        let mut eval = |dual: &mut Self, mu: f64| {
            let b = dual.at(limits, mu);
            if b.value > best.value {
                best = b;
            }
            b.value
        };
        let hs = eval(self, scale);
        let (mut lo, mut hi);
        if hs <= h0 {
            (lo, hi) = (0.0, scale);
        } else {
            // Invariant: a < b, h(b) > h(a); the maximum lies beyond a.
            let (mut a, mut b, mut hb) = (0.0, scale, hs);
            let mut bracket = None;
            for _ in 0..MAX_DOUBLINGS {
                let c = 2.0 * b;
                let hc = eval(self, c);
                if hc <= hb {
                    bracket = Some((a, c));
                    break;
                }
                (a, b, hb) = (b, c, hc);
            }
            match bracket {
                Some(bracket) => (lo, hi) = bracket,
                // Still rising: the budgets are jointly (nearly) infeasible.
                None => return best,
            }
        }
        const INV_PHI: f64 = 0.618_033_988_749_894_9;
        let mut x1 = hi - INV_PHI * (hi - lo);
        let mut x2 = lo + INV_PHI * (hi - lo);
        let mut f1 = eval(self, x1);
        let mut f2 = eval(self, x2);
        for _ in 0..MAX_GOLDEN_STEPS {
            if hi - lo <= MU_TOLERANCE * hi {
                break;
            }
            if f1 < f2 {
                lo = x1;
                (x1, f1) = (x2, f2);
                x2 = lo + INV_PHI * (hi - lo);
                f2 = eval(self, x2);
            } else {
                hi = x2;
                (x2, f2) = (x1, f1);
                x1 = hi - INV_PHI * (hi - lo);
                f1 = eval(self, x1);
            }
        }
        best
    }
}

/// How many times the μ bracket may double before the search gives up
/// (2^80 times the data scale).
const MAX_DOUBLINGS: usize = 80;
/// Golden-section steps at most (each shrinks the bracket by 0.618).
const MAX_GOLDEN_STEPS: usize = 80;
/// Relative width of the μ bracket at which the search stops.
const MU_TOLERANCE: f64 = 1e-9;

#[cfg(test)]
mod tests {
    use super::*;

    /// Item A's hull is (1, 3) – (2, 1) – (4, 0) (slopes 2, 0.5); item B's is
    /// (1, 2.5) – (4, 0) (slope 5/6; (2, 2) lies above it). With 5 bytes the
    /// LP takes A's first step (1 byte) and 2/3 of B's (2 of 3 bytes):
    /// 5.5 − 2 − (2/3)·2.5 = 11/6, at λ = 5/6.
    fn example() -> Problem {
        crate::examples::two_items()
    }

    #[test]
    fn bound_matches_hand_computation() {
        let p = example();
        let b = lagrangian_bound(&p, &Limits::bytes(5)).unwrap();
        assert!((b.lambda - 2.5 / 3.0).abs() < 1e-15, "{b:?}");
        assert!((b.value - 11.0 / 6.0).abs() < 1e-12, "{b:?}");
        // Every other λ gives less.
        for lambda in [0.0, 0.1, 0.5, 0.8, 0.9, 1.0, 2.0, 5.0] {
            assert!(lagrangian_value(&p, &Limits::bytes(5), lambda, 0.0) <= b.value + 1e-12);
        }
    }

    #[test]
    fn bound_is_the_least_loss_when_it_fits() {
        let p = example();
        let b = lagrangian_bound(&p, &Limits::bytes(8)).unwrap();
        assert_eq!((b.value, b.lambda), (0.0, 0.0));
        // At the smallest plan the bound is its loss, 5.5.
        let b = lagrangian_bound(&p, &Limits::bytes(2)).unwrap();
        assert!((b.value - 5.5).abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn latency_bound_is_no_weaker_than_bytes_alone() {
        let mut p = example();
        // The big choices are slow.
        for it in &mut p.items {
            for c in &mut it.choices {
                c.latency = c.bytes as f64;
            }
        }
        let bytes_only = lagrangian_bound(&p, &Limits::bytes(7)).unwrap();
        let both = lagrangian_bound(&p, &Limits::bytes(7).with_latency(4.0)).unwrap();
        assert!(both.value >= bytes_only.value);
        // Latency equals bytes here, so 4 of either is the binding budget:
        // the same as bytes alone at 4.
        let four = lagrangian_bound(&p, &Limits::bytes(4)).unwrap();
        assert!((both.value - four.value).abs() < 1e-6, "{both:?} vs {four:?}");
    }

    #[test]
    fn infeasible_budgets_are_errors() {
        let p = example();
        assert!(matches!(lagrangian_bound(&p, &Limits::bytes(1)), Err(PlanError::Infeasible(_))));
    }

    #[test]
    fn gap_edge_cases() {
        assert_eq!(Gap::new(0.0, 0.0).relative, 0.0);
        assert_eq!(Gap::new(1.0, 0.0).relative, f64::INFINITY);
        let g = Gap::new(1.5, 1.0);
        assert_eq!((g.absolute, g.relative), (0.5, 0.5));
        assert_eq!(Gap::new(1.0, 1.0 + 1e-17).absolute, 0.0);
    }
}
