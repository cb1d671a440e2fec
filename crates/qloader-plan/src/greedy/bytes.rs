//! The greedy under a byte budget alone: the walk down the hulls with its
//! critical-downgrade lookahead, then the upgrade spend and exchanges.

use std::cmp::Reverse;

use super::exchange::improve;
use super::upgrade::Upgrades;
use super::{Heap, Ranked, Units};
use crate::hull::{lower_hull, pareto_front};
use crate::problem::{Choice, Problem};

/// How many times the byte-budget greedy holds back its last downgrade (the
/// critical one) and walks on.
const LOOKAHEAD: usize = 12;

/// The greedy under a byte budget alone. The walk down the hulls is
/// followed by the upgrade spend and the exchanges of [`improve`]. The
/// walk's last downgrade decides how much is left over; the same walk
/// with that downgrade held back (its item frozen where it was) and
/// continued gives another plan, and so on [`LOOKAHEAD`] times (each time
/// continuing the same walk, so this costs little more than one walk). The
/// best plan wins.
pub(super) fn bytes_only(problem: &Problem, max_bytes: u64) -> Option<Vec<usize>> {
    let items = &problem.items;
    let hulls: Vec<Vec<usize>> = items.iter().map(|it| lower_hull(&it.choices)).collect();
    let fronts: Vec<Vec<usize>> = items.iter().map(|it| pareto_front(&it.choices)).collect();
    let units = Units::new(problem, max_bytes, 0.0);
    let mut walk = Walk::new(problem, &hulls)?;
    let mut best: Option<(f64, Vec<usize>)> = None;
    for _ in 0..=LOOKAHEAD {
        if !walk.run(max_bytes) {
            break;
        }
        let mut picks: Vec<usize> = (0..items.len()).map(|i| hulls[i][walk.pos[i]]).collect();
        let mut state = Upgrades {
            problem,
            max_bytes,
            max_latency: None,
            units,
            bytes: walk.bytes,
            latency: 0.0,
        };
        state.run(&mut picks, |i| &fronts[i]);
        improve(problem, &fronts, &mut picks, max_bytes, state.bytes);
        let loss = total_loss(problem, &picks);
        if best.as_ref().is_none_or(|(l, _)| loss < *l) {
            best = Some((loss, picks));
        }
        if !walk.hold_back() {
            break;
        }
    }
    best.map(|(_, picks)| picks)
}

fn total_loss(problem: &Problem, picks: &[usize]) -> f64 {
    picks.iter().zip(&problem.items).map(|(&j, it)| it.choices[j].loss).sum()
}

/// The walk down the hulls: from every item's least-loss hull point, the
/// downgrade of least loss added per byte saved, until the plan fits.
struct Walk<'a> {
    problem: &'a Problem,
    hulls: &'a [Vec<usize>],
    /// Hull position of each item.
    pos: Vec<usize>,
    /// Hull position below which each item may not go.
    floor: Vec<usize>,
    version: Vec<u32>,
    bytes: u64,
    heap: Heap,
    /// The last downgrade: its item and the hull position it left.
    critical: Option<(usize, usize)>,
}

impl<'a> Walk<'a> {
    fn new(problem: &'a Problem, hulls: &'a [Vec<usize>]) -> Option<Self> {
        let pos: Vec<usize> =
            hulls.iter().map(|h| h.len().checked_sub(1)).collect::<Option<_>>()?;
        let n = pos.len();
        let mut walk = Walk {
            problem,
            hulls,
            pos,
            floor: vec![0; n],
            version: vec![0; n],
            bytes: 0,
            heap: Heap::with_capacity(n),
            critical: None,
        };
        walk.bytes = (0..n).map(|i| walk.at(i, walk.pos[i]).bytes).sum();
        for i in 0..n {
            walk.push(i);
        }
        Some(walk)
    }

    fn at(&self, i: usize, p: usize) -> &'a Choice {
        &self.problem.items[i].choices[self.hulls[i][p]]
    }

    /// Ranks item `i`'s next step down, if it may take one.
    fn push(&mut self, i: usize) {
        let p = self.pos[i];
        if p > self.floor[i] {
            let (hi, lo) = (self.at(i, p), self.at(i, p - 1));
            let key = (lo.loss - hi.loss) / (hi.bytes - lo.bytes) as f64;
            self.heap.push(Reverse(Ranked { key, item: i, aux: 0, version: self.version[i] }));
        }
    }

    /// Walks on until the plan fits `max_bytes`; false if it cannot.
    fn run(&mut self, max_bytes: u64) -> bool {
        while self.bytes > max_bytes {
            let Some(Reverse(r)) = self.heap.pop() else { return false };
            let i = r.item;
            if r.version != self.version[i] {
                continue;
            }
            let p = self.pos[i];
            self.bytes -= self.at(i, p).bytes - self.at(i, p - 1).bytes;
            self.pos[i] = p - 1;
            self.critical = Some((i, p));
            self.push(i);
        }
        true
    }

    /// Undoes the last downgrade and freezes its item where it was; false
    /// if there was none.
    fn hold_back(&mut self) -> bool {
        let Some((i, p)) = self.critical.take() else { return false };
        self.bytes += self.at(i, p).bytes - self.at(i, p - 1).bytes;
        self.pos[i] = p;
        self.floor[i] = p;
        // Its pending step (if any) is stale now.
        self.version[i] += 1;
        true
    }
}
