//! The error type of the solvers, and the facts an infeasible problem is
//! reported with.

use std::fmt;

/// Why a problem could not be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// An item offers no choice at all.
    #[error("item {item} has no choice")]
    EmptyItem {
        /// The item.
        item: usize,
    },
    /// A choice's loss is negative, infinite or NaN.
    #[error("item {item}, choice {choice}: loss {loss} is not a finite non-negative number")]
    InvalidLoss {
        /// The item.
        item: usize,
        /// The choice within the item.
        choice: usize,
        /// The offending value.
        loss: f64,
    },
    /// A choice's latency is negative, infinite or NaN.
    #[error("item {item}, choice {choice}: latency {latency} is not a finite non-negative number")]
    InvalidLatency {
        /// The item.
        item: usize,
        /// The choice within the item.
        choice: usize,
        /// The offending value.
        latency: f64,
    },
    /// The largest choices' bytes, summed over the items, do not fit in a `u64`.
    #[error("the summed bytes of the items overflow 64 bits")]
    BytesOverflow,
    /// The largest latencies, summed over the items, are not finite.
    #[error("the summed latency of the items is not finite")]
    LatencyOverflow,
    /// The largest losses, summed over the items, are not finite.
    #[error("the summed loss of the items is not finite")]
    LossOverflow,
    /// The latency limit is negative or NaN.
    #[error("latency limit {max_latency} is negative or NaN")]
    InvalidLatencyLimit {
        /// The offending value.
        max_latency: f64,
    },
    /// A list of picks has the wrong length.
    #[error("{got} picks for {expected} items")]
    PickCount {
        /// The number of items.
        expected: usize,
        /// The number of picks given.
        got: usize,
    },
    /// A pick names a choice its item does not have.
    #[error("item {item}: pick {pick} but only {choices} choices")]
    PickOutOfRange {
        /// The item.
        item: usize,
        /// The pick.
        pick: usize,
        /// How many choices the item has.
        choices: usize,
    },
    /// No plan meets the limits.
    #[error("no plan meets the limits: {0}")]
    Infeasible(Infeasible),
    /// The exact solver reached its node limit before finding any plan that
    /// meets both limits, or proving there is none.
    #[error(
        "no plan meeting both limits was found within {nodes} branch-and-bound nodes, \
         nor proven not to exist; raise the node limit or relax a limit"
    )]
    Undecided {
        /// Nodes explored.
        nodes: u64,
    },
    /// The problem is too large to enumerate.
    #[error("more than {limit} combinations to enumerate")]
    TooManyCombinations {
        /// The enumeration limit.
        limit: u64,
    },
    /// A frontier was asked for with no points.
    #[error("a frontier needs at least one step, got {steps}")]
    InvalidSteps {
        /// The number of steps asked for.
        steps: usize,
    },
}

/// The facts behind [`PlanError::Infeasible`]: what the items can achieve at
/// best, each resource on its own, against the limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Infeasible {
    /// The bytes of the smallest plan (every item at its smallest choice).
    pub min_bytes: u64,
    /// The byte limit.
    pub max_bytes: u64,
    /// The latency of the fastest plan (every item at its fastest choice).
    pub min_latency: f64,
    /// The latency limit, if there is one.
    pub max_latency: Option<f64>,
}

impl fmt::Display for Infeasible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes_over = self.min_bytes > self.max_bytes;
        let latency_over =
            self.max_latency.is_some_and(|t| !crate::problem::latency_fits(self.min_latency, t));
        if bytes_over {
            write!(
                f,
                "the smallest plan takes {} bytes, over the limit of {} bytes",
                self.min_bytes, self.max_bytes
            )?;
        }
        if let (true, Some(t)) = (latency_over, self.max_latency) {
            if bytes_over {
                write!(f, "; ")?;
            }
            write!(
                f,
                "the fastest plan takes {:e} s/token, over the limit of {t:e} s/token",
                self.min_latency
            )?;
        }
        if !bytes_over && !latency_over {
            match self.max_latency {
                Some(t) => write!(
                    f,
                    "the smallest plan takes {} bytes (limit {}) and the fastest {:e} s/token \
                     (limit {t:e}), but no single plan meets both limits",
                    self.min_bytes, self.max_bytes, self.min_latency
                )?,
                None => write!(
                    f,
                    "the smallest plan takes {} bytes (limit {})",
                    self.min_bytes, self.max_bytes
                )?,
            }
        }
        Ok(())
    }
}

impl From<Infeasible> for PlanError {
    fn from(value: Infeasible) -> Self {
        PlanError::Infeasible(value)
    }
}
