//! Property tests of every solver against brute-force enumeration on random
//! small problems (up to 12 items × 5 choices, at most 50,000 plans), with
//! ties in bytes and loss, zero losses, and budgets that are random,
//! infeasible, or exactly met by some plan.

use proptest::prelude::*;
use qloader_plan::{
    brute_force, exact, exact_with, greedy, lagrangian_bound, lagrangian_value, Choice,
    ExactOptions, ExactResult, Item, Limits, Method, PlanError, Problem, Solution,
};

/// At most this many plans per generated problem, so enumeration stays fast.
const MAX_PLANS: usize = 50_000;

fn choice() -> impl Strategy<Value = Choice> {
    let bytes = prop_oneof![1u64..1000, (1u64..5).prop_map(|b| b * 100)];
    let latency = prop_oneof![0.0f64..1.0, (0u32..4).prop_map(|k| f64::from(k) * 0.25)];
    let loss = prop_oneof![0.0f64..1.0, (0u32..4).prop_map(|k| f64::from(k) * 0.25), Just(0.0)];
    (bytes, latency, loss).prop_map(|(b, t, l)| Choice::new(b, t, l))
}

fn problem() -> impl Strategy<Value = Problem> {
    prop::collection::vec(prop::collection::vec(choice(), 1..=5), 1..=12).prop_map(|mut items| {
        let mut plans = 1usize;
        for choices in &mut items {
            let keep = choices.len().min(MAX_PLANS / plans).max(1);
            choices.truncate(keep);
            plans *= keep;
        }
        Problem::new(items.into_iter().map(Item::new).collect())
    })
}

/// A budget: a random point from a little below the smallest plan to the
/// largest plan, or exactly the totals of a random plan.
#[derive(Debug, Clone)]
enum Budget {
    Fraction(f64),
    Plan(Vec<prop::sample::Index>),
}

fn budget() -> impl Strategy<Value = Budget> {
    prop_oneof![
        (-0.1f64..1.05).prop_map(Budget::Fraction),
        prop::collection::vec(any::<prop::sample::Index>(), 12).prop_map(Budget::Plan),
    ]
}

fn plan_of(problem: &Problem, picks: &[prop::sample::Index]) -> Solution {
    let picks: Vec<usize> =
        problem.items.iter().zip(picks).map(|(it, ix)| ix.index(it.choices.len())).collect();
    problem.evaluate(&picks).unwrap()
}

fn byte_limit(problem: &Problem, budget: &Budget) -> u64 {
    match budget {
        Budget::Fraction(f) => {
            let lo = problem.min_bytes() as f64;
            let hi: u64 = problem
                .items
                .iter()
                .map(|it| it.choices.iter().map(|c| c.bytes).max().unwrap())
                .sum();
            (lo + f * (hi as f64 - lo)).max(0.0) as u64
        }
        Budget::Plan(picks) => plan_of(problem, picks).bytes,
    }
}

fn latency_limit(problem: &Problem, budget: &Budget) -> f64 {
    match budget {
        Budget::Fraction(f) => {
            let lo = problem.min_latency();
            let hi: f64 = problem
                .items
                .iter()
                .map(|it| it.choices.iter().map(|c| c.latency).fold(0.0, f64::max))
                .sum();
            (lo + f * (hi - lo)).max(0.0)
        }
        Budget::Plan(picks) => plan_of(problem, picks).latency,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// A bound holds if it is at most the optimum, up to rounding.
fn below(bound: f64, optimum: f64) -> bool {
    bound <= optimum + 1e-9 * optimum.abs() + 1e-12
}

/// The exact solver with and without the greedy's plan to start from.
fn exact_both_ways(p: &Problem, limits: &Limits) -> [Result<ExactResult, PlanError>; 2] {
    let cold = ExactOptions { warm_start: false, ..ExactOptions::default() };
    [exact(p, limits), exact_with(p, limits, &cold)]
}

fn limits_both(problem: &Problem, bytes: &Budget, latency: &Budget) -> Limits {
    Limits::bytes(byte_limit(problem, bytes)).with_latency(latency_limit(problem, latency))
}

/// Branch and bound (both ways) proves the brute-force optimum under
/// `limits`, within them, or agrees that nothing fits.
fn exact_matches_brute_force(p: &Problem, limits: &Limits) -> Result<(), TestCaseError> {
    let brute = brute_force(p, limits);
    for e in exact_both_ways(p, limits) {
        match (&brute, e) {
            (Ok(brute), Ok(e)) => {
                prop_assert!(e.proven_optimal);
                prop_assert!(
                    close(e.solution.loss, brute.loss),
                    "exact {:?} vs brute {:?}",
                    e,
                    brute
                );
                prop_assert!(limits.admits(e.solution.bytes, e.solution.latency));
                prop_assert_eq!(&p.evaluate(&e.solution.picks).unwrap(), &e.solution);
            }
            (Err(PlanError::Infeasible(_)), Err(PlanError::Infeasible(_))) => {}
            (brute, e) => prop_assert!(false, "brute {:?} vs exact {:?}", brute, e),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn exact_equals_brute_force_bytes_only(p in problem(), b in budget()) {
        exact_matches_brute_force(&p, &Limits::bytes(byte_limit(&p, &b)))?;
    }

    #[test]
    fn exact_equals_brute_force_two_limits(p in problem(), b in budget(), t in budget()) {
        exact_matches_brute_force(&p, &limits_both(&p, &b, &t))?;
    }

    #[test]
    fn greedy_is_feasible_whenever_a_plan_exists_bytes_only(p in problem(), b in budget()) {
        let limits = Limits::bytes(byte_limit(&p, &b));
        match (brute_force(&p, &limits), greedy(&p, &limits)) {
            (Ok(brute), Ok(g)) => {
                prop_assert_eq!(g.method, Method::Greedy);
                prop_assert!(limits.admits(g.solution.bytes, g.solution.latency));
                prop_assert!(g.solution.loss >= brute.loss - 1e-12 * brute.loss);
                prop_assert!(below(g.gap.bound, brute.loss), "{:?} vs {:?}", g, brute);
                prop_assert_eq!(p.evaluate(&g.solution.picks).unwrap(), g.solution);
            }
            (Err(PlanError::Infeasible(_)), Err(PlanError::Infeasible(_))) => {}
            (brute, g) => prop_assert!(false, "brute {:?} vs greedy {:?}", brute, g),
        }
    }

    #[test]
    fn greedy_decides_two_limits_like_brute_force(p in problem(), b in budget(), t in budget()) {
        let limits = limits_both(&p, &b, &t);
        match (brute_force(&p, &limits), greedy(&p, &limits)) {
            (Ok(brute), Ok(g)) => {
                prop_assert!(limits.admits(g.solution.bytes, g.solution.latency));
                prop_assert!(g.solution.loss >= brute.loss - 1e-12 * brute.loss);
                prop_assert!(below(g.gap.bound, brute.loss), "{:?} vs {:?}", g, brute);
                if let Method::ExactFallback { proven_optimal, .. } = g.method {
                    prop_assert!(proven_optimal);
                    prop_assert!(close(g.solution.loss, brute.loss));
                }
            }
            (Err(PlanError::Infeasible(_)), Err(PlanError::Infeasible(_))) => {}
            (brute, g) => prop_assert!(false, "brute {:?} vs greedy {:?}", brute, g),
        }
    }

    #[test]
    fn lagrangian_bound_is_below_the_optimum(
        p in problem(),
        b in budget(),
        t in budget(),
        lambda in 0.0f64..10.0,
        mu in 0.0f64..10.0,
    ) {
        for limits in [Limits::bytes(byte_limit(&p, &b)), limits_both(&p, &b, &t)] {
            let Ok(brute) = brute_force(&p, &limits) else { continue };
            let bound = lagrangian_bound(&p, &limits).unwrap();
            prop_assert!(bound.lambda >= 0.0 && bound.mu >= 0.0);
            prop_assert!(below(bound.value, brute.loss), "{:?} vs {:?} under {:?}", bound, brute, limits);
            let at = lagrangian_value(&p, &limits, lambda, mu);
            prop_assert!(below(at, brute.loss), "L({}, {}) = {} vs {:?}", lambda, mu, at, brute);
            if limits.max_latency.is_none() {
                // Bytes alone: the maximisation is exact.
                prop_assert!(at <= bound.value + 1e-12 * bound.value.abs() + 1e-12);
            }
            let e = exact(&p, &limits).unwrap();
            prop_assert!(below(bound.value, e.solution.loss));
            prop_assert!(e.gap.bound <= e.solution.loss);
        }
    }
}
