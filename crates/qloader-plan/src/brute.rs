//! Enumeration of every plan: the reference the other solvers are tested
//! against, and a solver for tiny problems. It refuses problems of more
//! than [`BRUTE_FORCE_LIMIT`] combinations.

use crate::error::PlanError;
use crate::problem::{Limits, Problem, Solution};

/// The most combinations [`brute_force`] enumerates.
pub const BRUTE_FORCE_LIMIT: u64 = 10_000_000;

/// The optimal plan by enumeration, for tests and tiny problems. Of equally
/// good plans the first in enumeration order (item 0's pick varying
/// fastest) is kept. Feasibility is judged on sums in item order, exactly as
/// [`Problem::evaluate`] forms them.
pub fn brute_force(problem: &Problem, limits: &Limits) -> Result<Solution, PlanError> {
    problem.validate()?;
    limits.validate()?;
    let mut combinations: u64 = 1;
    for item in &problem.items {
        combinations = combinations
            .checked_mul(item.choices.len() as u64)
            .filter(|&c| c <= BRUTE_FORCE_LIMIT)
            .ok_or(PlanError::TooManyCombinations { limit: BRUTE_FORCE_LIMIT })?;
    }
    let n = problem.items.len();
    let mut picks = vec![0usize; n];
    let mut best: Option<(f64, Vec<usize>)> = None;
    'all: loop {
        let (mut bytes, mut latency, mut loss) = (0u64, 0.0f64, 0.0f64);
        for (item, &j) in problem.items.iter().zip(&picks) {
            let c = &item.choices[j];
            bytes += c.bytes;
            latency += c.latency;
            loss += c.loss;
        }
        if limits.admits(bytes, latency) && best.as_ref().is_none_or(|(b, _)| loss < *b) {
            best = Some((loss, picks.clone()));
        }
        // Odometer.
        let mut i = 0;
        loop {
            if i == n {
                break 'all;
            }
            picks[i] += 1;
            if picks[i] < problem.items[i].choices.len() {
                break;
            }
            picks[i] = 0;
            i += 1;
        }
    }
    match best {
        Some((_, picks)) => problem.evaluate(&picks),
        None => Err(PlanError::Infeasible(problem.infeasible(limits))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{Choice, Item};

    #[test]
    fn finds_the_optimum_and_reports_infeasibility() {
        let p = Problem::new(vec![
            Item::new(vec![Choice::new(4, 0.0, 0.0), Choice::new(1, 0.0, 3.0)]),
            Item::new(vec![Choice::new(4, 0.0, 0.0), Choice::new(2, 0.0, 1.0)]),
        ]);
        assert_eq!(brute_force(&p, &Limits::bytes(6)).unwrap().picks, vec![0, 1]);
        assert_eq!(brute_force(&p, &Limits::bytes(8)).unwrap().loss, 0.0);
        assert!(matches!(brute_force(&p, &Limits::bytes(2)), Err(PlanError::Infeasible(_))));
    }

    #[test]
    fn empty_problem_has_the_empty_plan() {
        let s = brute_force(&Problem::default(), &Limits::bytes(0)).unwrap();
        assert_eq!((s.picks.len(), s.bytes, s.loss), (0, 0, 0.0));
    }

    #[test]
    fn refuses_large_problems() {
        let item = Item::new(vec![Choice::new(1, 0.0, 0.0); 10]);
        let p = Problem::new(vec![item; 8]);
        assert_eq!(
            brute_force(&p, &Limits::bytes(8)),
            Err(PlanError::TooManyCombinations { limit: BRUTE_FORCE_LIMIT })
        );
    }
}
