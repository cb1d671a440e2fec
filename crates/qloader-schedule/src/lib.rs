//! QLoader's mixed-precision scheduler: from one sensitivity table and one
//! device profile, a plan — one storage format per tensor — that fits the
//! device's memory (and latency) budget with the least predicted loss.
//!
//! * [`budget`], [`pins`]: the user's constraints as written.
//! * [`candidates`]: the formats each tensor may take on the device
//!   (kernels, fallbacks, pins), as the solver's problem.
//! * [`planner`]: making a plan with the solvers of `qloader_plan`.
//! * [`plan_file`]: the versioned JSON plan.
//! * [`explain`]: a plan in readable form.
//! * [`frontier`], [`chart`]: the loss-against-size frontier, as data and
//!   as an SVG picture.
#![deny(missing_docs)]

pub mod budget;
pub mod candidates;
pub mod chart;
pub mod error;
pub mod explain;
pub mod frontier;
pub mod pins;
pub mod plan_file;
pub mod planner;

pub use budget::Budget;
pub use error::ScheduleError;
pub use pins::Pin;
pub use plan_file::Plan;
pub use planner::{make_plan, PlanOptions, SolverKind, Sources};
