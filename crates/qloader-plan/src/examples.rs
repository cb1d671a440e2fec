//! Hand-sized problems the unit tests share: items with a 4-, 2- and 1-byte
//! choice, lossless at 4 bytes.

use crate::problem::{Choice, Item, Problem};

/// An item whose 4-byte choice loses nothing, 2-byte choice `l2` and
/// 1-byte choice `l1`.
pub(crate) fn three_sizes(l2: f64, l1: f64) -> Item {
    Item::new(vec![Choice::new(4, 0.0, 0.0), Choice::new(2, 0.0, l2), Choice::new(1, 0.0, l1)])
}

/// Item A = (1, 3), item B = (2, 2.5): A's hull keeps its middle choice,
/// B's does not (see the bound's hand computation).
pub(crate) fn two_items() -> Problem {
    Problem::new(vec![three_sizes(1.0, 3.0), three_sizes(2.0, 2.5)])
}
