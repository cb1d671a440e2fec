//! The abstract planning problem: items, each with choices that cost bytes
//! and latency and bring a loss; the limits a plan must meet; a solution and
//! its checks. Every solver validates its input here first, so nothing
//! downstream sees an empty item, a NaN or a sum that overflows.

use crate::error::{Infeasible, PlanError};

/// Relative slack allowed on the latency limit, so that sums of the same
/// latencies taken in different orders (which round differently) agree on
/// feasibility: a plan fits if its latency is at most `limit · (1 + 1e-12)`.
pub const LATENCY_TOLERANCE: f64 = 1e-12;

/// Whether a summed latency meets a latency limit, within
/// [`LATENCY_TOLERANCE`].
pub fn latency_fits(latency: f64, max_latency: f64) -> bool {
    latency <= max_latency + max_latency.abs() * LATENCY_TOLERANCE
}

/// One option for one item (a storage format for a tensor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Storage size in bytes.
    pub bytes: u64,
    /// Time it adds per token, in seconds; finite and non-negative.
    pub latency: f64,
    /// Predicted degradation it adds; finite and non-negative.
    pub loss: f64,
}

impl Choice {
    /// A choice of `bytes`, `latency` (seconds per token) and `loss`.
    pub fn new(bytes: u64, latency: f64, loss: f64) -> Self {
        Self { bytes, latency, loss }
    }
}

/// Something of which exactly one choice must be picked (a tensor). An item
/// with a single choice is pinned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    /// The choices; must not be empty.
    pub choices: Vec<Choice>,
}

impl Item {
    /// An item with these choices.
    pub fn new(choices: Vec<Choice>) -> Self {
        Self { choices }
    }

    /// The choice of least loss, ties going to fewer bytes, then to the lower
    /// index; `None` for an empty item.
    pub fn least_loss(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (j, c) in self.choices.iter().enumerate() {
            let better = match best {
                None => true,
                Some(b) => {
                    let b = &self.choices[b];
                    c.loss < b.loss || (c.loss == b.loss && c.bytes < b.bytes)
                }
            };
            if better {
                best = Some(j);
            }
        }
        best
    }

    /// The fewest bytes any choice takes (0 for an empty item).
    pub fn min_bytes(&self) -> u64 {
        self.choices.iter().map(|c| c.bytes).min().unwrap_or(0)
    }

    /// The least latency any choice takes (0 for an empty item).
    pub fn min_latency(&self) -> f64 {
        let fastest = self.choices.iter().map(|c| c.latency).fold(f64::INFINITY, f64::min);
        if fastest.is_finite() {
            fastest
        } else {
            0.0
        }
    }
}

/// A planning problem: pick one choice per item.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Problem {
    /// The items, in the caller's order (picks are reported in this order).
    pub items: Vec<Item>,
}

/// The budgets a plan must meet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The most bytes the plan may take.
    pub max_bytes: u64,
    /// The most latency (seconds per token) the plan may take, if limited.
    /// `Some(f64::INFINITY)` is the same as `None`.
    pub max_latency: Option<f64>,
}

/// A plan: one pick per item, and what it adds up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// The index of the chosen choice of each item.
    pub picks: Vec<usize>,
    /// Total bytes.
    pub bytes: u64,
    /// Total latency, seconds per token (summed in item order).
    pub latency: f64,
    /// Total loss (summed in item order).
    pub loss: f64,
}

impl Limits {
    /// A byte budget alone.
    pub fn bytes(max_bytes: u64) -> Self {
        Self { max_bytes, max_latency: None }
    }

    /// These limits with a latency budget (seconds per token) too.
    pub fn with_latency(self, max_latency: f64) -> Self {
        Self { max_latency: Some(max_latency), ..self }
    }

    /// Checks that the latency limit, if any, is a non-negative number
    /// (infinity is allowed and means no limit).
    pub fn validate(&self) -> Result<(), PlanError> {
        match self.max_latency {
            Some(t) if t.is_nan() || t < 0.0 => {
                Err(PlanError::InvalidLatencyLimit { max_latency: t })
            }
            _ => Ok(()),
        }
    }

    /// The latency limit if it constrains anything (finite).
    pub fn latency_limit(&self) -> Option<f64> {
        self.max_latency.filter(|t| t.is_finite())
    }

    /// Whether totals of `bytes` and `latency` meet these limits (latency
    /// within [`LATENCY_TOLERANCE`]).
    pub fn admits(&self, bytes: u64, latency: f64) -> bool {
        bytes <= self.max_bytes && self.latency_limit().is_none_or(|t| latency_fits(latency, t))
    }
}

impl Problem {
    /// A problem over these items.
    pub fn new(items: Vec<Item>) -> Self {
        Self { items }
    }

    /// Checks that every item has a choice, that losses and latencies are
    /// finite and non-negative, and that the largest totals neither overflow
    /// nor become infinite, so that every sum a solver forms is exact (bytes)
    /// or finite (latency, loss).
    pub fn validate(&self) -> Result<(), PlanError> {
        let mut max_bytes: u64 = 0;
        let mut max_latency = 0.0f64;
        let mut max_loss = 0.0f64;
        for (item, it) in self.items.iter().enumerate() {
            if it.choices.is_empty() {
                return Err(PlanError::EmptyItem { item });
            }
            let (mut b, mut t, mut l) = (0u64, 0.0f64, 0.0f64);
            for (choice, c) in it.choices.iter().enumerate() {
                if !(c.loss.is_finite() && c.loss >= 0.0) {
                    return Err(PlanError::InvalidLoss { item, choice, loss: c.loss });
                }
                if !(c.latency.is_finite() && c.latency >= 0.0) {
                    return Err(PlanError::InvalidLatency { item, choice, latency: c.latency });
                }
                b = b.max(c.bytes);
                t = t.max(c.latency);
                l = l.max(c.loss);
            }
            max_bytes = max_bytes.checked_add(b).ok_or(PlanError::BytesOverflow)?;
            max_latency += t;
            max_loss += l;
        }
        if !max_latency.is_finite() {
            return Err(PlanError::LatencyOverflow);
        }
        if !max_loss.is_finite() {
            return Err(PlanError::LossOverflow);
        }
        Ok(())
    }

    /// The totals of a list of picks, one per item. The sums run in item
    /// order; every solver reports its plan through this.
    pub fn evaluate(&self, picks: &[usize]) -> Result<Solution, PlanError> {
        if picks.len() != self.items.len() {
            return Err(PlanError::PickCount { expected: self.items.len(), got: picks.len() });
        }
        let (mut bytes, mut latency, mut loss) = (0u64, 0.0f64, 0.0f64);
        for (item, (&pick, it)) in picks.iter().zip(&self.items).enumerate() {
            let c = it.choices.get(pick).ok_or(PlanError::PickOutOfRange {
                item,
                pick,
                choices: it.choices.len(),
            })?;
            bytes = bytes.checked_add(c.bytes).ok_or(PlanError::BytesOverflow)?;
            latency += c.latency;
            loss += c.loss;
        }
        Ok(Solution { picks: picks.to_vec(), bytes, latency, loss })
    }

    /// The bytes of the smallest plan (saturating; exact for a validated
    /// problem).
    pub fn min_bytes(&self) -> u64 {
        self.items.iter().fold(0u64, |acc, it| acc.saturating_add(it.min_bytes()))
    }

    /// The latency of the fastest plan.
    pub fn min_latency(&self) -> f64 {
        self.items.iter().map(Item::min_latency).sum()
    }

    /// The per-item least-loss picks (ties to fewer bytes): the best plan
    /// when bytes are no object. Empty items get pick 0.
    pub fn least_loss_picks(&self) -> Vec<usize> {
        self.items.iter().map(|it| it.least_loss().unwrap_or(0)).collect()
    }

    /// The bytes of the least-loss plan ([`Problem::least_loss_picks`]):
    /// budgets above this buy nothing (saturating; exact for a validated
    /// problem).
    pub fn max_useful_bytes(&self) -> u64 {
        self.items.iter().fold(0u64, |acc, it| {
            let b = it.least_loss().map_or(0, |j| it.choices[j].bytes);
            acc.saturating_add(b)
        })
    }

    /// The facts to report when no plan meets `limits`.
    pub fn infeasible(&self, limits: &Limits) -> Infeasible {
        Infeasible {
            min_bytes: self.min_bytes(),
            max_bytes: limits.max_bytes,
            min_latency: self.min_latency(),
            max_latency: limits.latency_limit(),
        }
    }

    /// Validates the problem and the limits, and rejects limits that no plan
    /// meets even with each resource considered alone.
    pub(crate) fn check(&self, limits: &Limits) -> Result<(), PlanError> {
        self.validate()?;
        limits.validate()?;
        let bytes_over = self.min_bytes() > limits.max_bytes;
        let latency_over =
            limits.latency_limit().is_some_and(|t| !latency_fits(self.min_latency(), t));
        if bytes_over || latency_over {
            return Err(PlanError::Infeasible(self.infeasible(limits)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_items() -> Problem {
        Problem::new(vec![
            Item::new(vec![Choice::new(4, 0.4, 0.0), Choice::new(2, 0.2, 1.0)]),
            Item::new(vec![Choice::new(3, 0.3, 0.5), Choice::new(3, 0.1, 0.5)]),
        ])
    }

    #[test]
    fn validation_errors_name_the_culprit() {
        let mut p = two_items();
        assert_eq!(p.validate(), Ok(()));
        p.items[1].choices[0].loss = f64::NAN;
        assert!(matches!(p.validate(), Err(PlanError::InvalidLoss { item: 1, choice: 0, .. })));
        p.items[1].choices[0].loss = -1.0;
        assert!(matches!(p.validate(), Err(PlanError::InvalidLoss { item: 1, choice: 0, .. })));
        p.items[1].choices[0].loss = 0.5;
        p.items[0].choices[1].latency = f64::INFINITY;
        assert!(matches!(p.validate(), Err(PlanError::InvalidLatency { item: 0, choice: 1, .. })));
        p.items[0].choices[1].latency = -0.5;
        assert!(matches!(p.validate(), Err(PlanError::InvalidLatency { item: 0, choice: 1, .. })));
        p.items[0].choices[1].latency = 0.2;
        p.items.push(Item::default());
        assert_eq!(p.validate(), Err(PlanError::EmptyItem { item: 2 }));
    }

    #[test]
    fn overflowing_totals_are_rejected() {
        let big = Item::new(vec![Choice::new(u64::MAX / 2 + 1, 0.0, 0.0)]);
        let p = Problem::new(vec![big.clone(), big]);
        assert_eq!(p.validate(), Err(PlanError::BytesOverflow));
        let slow = Item::new(vec![Choice::new(1, f64::MAX, 0.0)]);
        let p = Problem::new(vec![slow.clone(), slow]);
        assert_eq!(p.validate(), Err(PlanError::LatencyOverflow));
        let bad = Item::new(vec![Choice::new(1, 0.0, f64::MAX)]);
        let p = Problem::new(vec![bad.clone(), bad]);
        assert_eq!(p.validate(), Err(PlanError::LossOverflow));
    }

    #[test]
    fn limits_are_validated() {
        assert!(Limits::bytes(1).validate().is_ok());
        assert!(Limits::bytes(1).with_latency(f64::INFINITY).validate().is_ok());
        assert!(matches!(
            Limits::bytes(1).with_latency(-1.0).validate(),
            Err(PlanError::InvalidLatencyLimit { .. })
        ));
        assert!(Limits::bytes(1).with_latency(f64::NAN).validate().is_err());
    }

    #[test]
    fn evaluate_sums_and_checks_picks() {
        let p = two_items();
        let s = p.evaluate(&[1, 0]).unwrap();
        assert_eq!(s.bytes, 5);
        assert!((s.latency - 0.5).abs() < 1e-15);
        assert_eq!(s.loss, 1.5);
        assert_eq!(p.evaluate(&[0]), Err(PlanError::PickCount { expected: 2, got: 1 }));
        assert_eq!(
            p.evaluate(&[0, 2]),
            Err(PlanError::PickOutOfRange { item: 1, pick: 2, choices: 2 })
        );
    }

    #[test]
    fn extremes() {
        let p = two_items();
        assert_eq!(p.min_bytes(), 5);
        assert!((p.min_latency() - 0.3).abs() < 1e-15);
        // Item 1 ties on loss and bytes: the lower index wins.
        assert_eq!(p.least_loss_picks(), vec![0, 0]);
        assert_eq!(p.max_useful_bytes(), 7);
    }

    #[test]
    fn infeasibility_is_explained() {
        let p = two_items();
        let err = p.check(&Limits::bytes(4)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("5 bytes") && text.contains("limit of 4"), "{text}");
        let err = p.check(&Limits::bytes(10).with_latency(0.1)).unwrap_err();
        assert!(err.to_string().contains("fastest plan"), "{err}");
        assert!(p.check(&Limits::bytes(5).with_latency(0.3)).is_ok());
    }
}
