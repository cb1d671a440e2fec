//! Degenerate and extreme inputs: every solver answers (or errors) without
//! panicking.

use qloader_plan::{
    brute_force, exact, greedy, lagrangian_bound, pareto, Choice, Item, Limits, Method, PlanError,
    Problem, Solver,
};

fn all_agree(p: &Problem, limits: &Limits) -> Option<f64> {
    let brute = brute_force(p, limits);
    let g = greedy(p, limits);
    let e = exact(p, limits);
    match (&brute, &g, &e) {
        (Ok(b), Ok(g), Ok(e)) => {
            assert!(limits.admits(g.solution.bytes, g.solution.latency));
            assert!((e.solution.loss - b.loss).abs() <= 1e-12 * b.loss.abs());
            assert!(g.solution.loss >= b.loss * (1.0 - 1e-12));
            assert!(lagrangian_bound(p, limits).unwrap().value <= b.loss * (1.0 + 1e-12) + 1e-300);
            Some(b.loss)
        }
        (
            Err(PlanError::Infeasible(_)),
            Err(PlanError::Infeasible(_)),
            Err(PlanError::Infeasible(_)),
        ) => None,
        _ => panic!("disagree: {brute:?} / {g:?} / {e:?}"),
    }
}

#[test]
fn empty_problem() {
    let p = Problem::default();
    assert_eq!(all_agree(&p, &Limits::bytes(0)), Some(0.0));
    assert_eq!(all_agree(&p, &Limits::bytes(0).with_latency(0.0)), Some(0.0));
    let f = pareto(&p, 5, Solver::Greedy).unwrap();
    assert_eq!(f.len(), 1);
}

#[test]
fn all_items_pinned() {
    let p = Problem::new(vec![Item::new(vec![Choice::new(3, 0.5, 0.25)]); 4]);
    assert_eq!(all_agree(&p, &Limits::bytes(12)), Some(1.0));
    assert_eq!(all_agree(&p, &Limits::bytes(11)), None);
    assert_eq!(all_agree(&p, &Limits::bytes(12).with_latency(2.0)), Some(1.0));
    assert_eq!(all_agree(&p, &Limits::bytes(12).with_latency(1.9)), None);
}

#[test]
fn zero_losses_and_zero_latency() {
    let item = Item::new(vec![Choice::new(4, 0.0, 0.0), Choice::new(2, 0.0, 0.0)]);
    let p = Problem::new(vec![item; 3]);
    assert_eq!(all_agree(&p, &Limits::bytes(6)), Some(0.0));
    assert_eq!(all_agree(&p, &Limits::bytes(6).with_latency(0.0)), Some(0.0));
    let g = greedy(&p, &Limits::bytes(7)).unwrap();
    assert_eq!((g.gap.relative, g.solution.bytes), (0.0, 6));
}

#[test]
fn infinite_latency_limit_is_no_limit() {
    let p =
        Problem::new(vec![Item::new(vec![Choice::new(4, 1e300, 0.0), Choice::new(2, 0.0, 1.0)])]);
    let g = greedy(&p, &Limits::bytes(4).with_latency(f64::INFINITY)).unwrap();
    assert_eq!(g.solution.picks, vec![0]);
    assert_eq!(g.method, Method::Greedy);
}

#[test]
fn huge_byte_counts() {
    let big = u64::MAX / 4;
    let item = Item::new(vec![Choice::new(big, 0.0, 0.0), Choice::new(big / 2, 0.0, 1.0)]);
    let p = Problem::new(vec![item.clone(), item.clone(), item]);
    assert_eq!(all_agree(&p, &Limits::bytes(big * 2)), Some(2.0));
    assert_eq!(all_agree(&p, &Limits::bytes(u64::MAX)), Some(0.0));
}

#[test]
fn latencies_far_above_the_limit() {
    // A choice far slower than the limit must not upset the fixed-point
    // arithmetic of the two-limit greedy.
    let p = Problem::new(vec![
        Item::new(vec![Choice::new(1, 1e200, 0.0), Choice::new(1, 1.0, 1.0)]),
        Item::new(vec![Choice::new(1, 1e-300, 0.0), Choice::new(1, 0.5, 0.5)]),
    ]);
    assert_eq!(all_agree(&p, &Limits::bytes(2).with_latency(1.0)), Some(1.0));
}

#[test]
fn invalid_inputs_are_errors() {
    let p = Problem::new(vec![Item::default()]);
    assert_eq!(greedy(&p, &Limits::bytes(1)), Err(PlanError::EmptyItem { item: 0 }));
    assert_eq!(exact(&p, &Limits::bytes(1)).unwrap_err(), PlanError::EmptyItem { item: 0 });
    let p = Problem::new(vec![Item::new(vec![Choice::new(1, 0.0, f64::NAN)])]);
    assert!(matches!(greedy(&p, &Limits::bytes(1)), Err(PlanError::InvalidLoss { .. })));
    assert!(matches!(lagrangian_bound(&p, &Limits::bytes(1)), Err(PlanError::InvalidLoss { .. })));
    assert!(matches!(pareto(&p, 3, Solver::Greedy), Err(PlanError::InvalidLoss { .. })));
    let p = Problem::new(vec![Item::new(vec![Choice::new(1, 0.0, 0.0)])]);
    assert!(matches!(
        greedy(&p, &Limits::bytes(1).with_latency(f64::NAN)),
        Err(PlanError::InvalidLatencyLimit { .. })
    ));
}
