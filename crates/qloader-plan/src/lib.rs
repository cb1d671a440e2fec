//! The solvers of QLoader's mixed-precision scheduler: pick one storage
//! format per tensor so the summed predicted loss is least under a byte
//! budget and, optionally, a latency budget. In the abstract this is a
//! multiple-choice knapsack; this crate knows nothing of tensors, formats or
//! devices; the caller maps its sensitivity table and device profile into a
//! [`Problem`] (pins become items with one choice, kernels missing on the
//! device become choices it does not offer).
//!
//! * [`problem`]: the problem, its limits, its solutions and their checks.
//! * [`hull`]: per-item dominance filter and lower convex hull, the building
//!   block of the other solvers.
//! * [`greedy`](mod@greedy): the default solver, fast, with a certified optimality gap.
//! * [`bound`]: the Lagrangian lower bound and the [`Gap`] it certifies.
//! * [`exact`](mod@exact): branch and bound, for measuring the greedy's gap or for
//!   problems small enough to solve to proven optimality.
//! * [`brute`]: enumeration, for tests and tiny problems.
//! * [`frontier`]: the loss-against-size Pareto frontier.
//! * [`synthetic`](mod@synthetic): deterministic realistic instances for tests and benches.
//!
//! ```
//! use qloader_plan::{greedy, Choice, Item, Limits, Problem};
//!
//! let item = |big: f64, small: f64| {
//!     Item::new(vec![Choice::new(4, 0.0, 0.0), Choice::new(2, 0.0, big), Choice::new(1, 0.0, small)])
//! };
//! let problem = Problem::new(vec![item(1.0, 3.0), item(2.0, 2.5)]);
//! let plan = greedy(&problem, &Limits::bytes(5)).unwrap();
//! assert!(plan.solution.bytes <= 5);
//! assert!(plan.gap.bound <= plan.solution.loss);
//! ```
#![deny(missing_docs)]

pub mod bound;
pub mod brute;
pub mod error;
pub mod exact;
#[cfg(test)]
mod examples;
mod fenwick;
pub mod frontier;
pub mod greedy;
pub mod hull;
mod lp;
pub mod problem;
pub mod synthetic;

pub use bound::{lagrangian_bound, lagrangian_value, Bound, Gap};
pub use brute::{brute_force, BRUTE_FORCE_LIMIT};
pub use error::{Infeasible, PlanError};
pub use exact::{exact, exact_with, ExactOptions, ExactResult, DEFAULT_NODE_LIMIT};
pub use frontier::{pareto, FrontierPoint, Solver};
pub use greedy::{greedy, greedy_with, GreedyOptions, GreedyResult, Method};
pub use problem::{Choice, Item, Limits, Problem, Solution};
pub use synthetic::synthetic;
