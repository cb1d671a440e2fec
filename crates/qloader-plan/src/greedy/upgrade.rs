//! The greedy's upgrade spend: what the limits leave goes to the moves of
//! most loss removed per (normalised) resource added.

use std::cmp::Reverse;

use super::{Heap, Ranked, Units};
use crate::problem::{latency_fits, Choice, Problem};

/// The upgrade phase: spend what the limits leave on the best moves to less
/// loss, by loss removed per (normalised) resource added.
pub(super) struct Upgrades<'a> {
    /// The problem.
    pub problem: &'a Problem,
    /// The byte limit.
    pub max_bytes: u64,
    /// The latency limit, if any.
    pub max_latency: Option<f64>,
    /// How the resources are normalised to rank upgrades.
    pub units: Units,
    /// Current bytes of the plan.
    pub bytes: u64,
    /// Current latency of the plan (unused without a latency limit).
    pub latency: f64,
}

/// Passes of the upgrade phase under two limits (an upgrade that lowers
/// latency can make a rejected one fit again).
const UPGRADE_PASSES: usize = 4;

impl Upgrades<'_> {
    fn choice(&self, i: usize, j: usize) -> &Choice {
        &self.problem.items[i].choices[j]
    }

    /// Totals after moving item `i` from `from` to `to`, if they fit.
    fn fits(&self, i: usize, from: usize, to: usize) -> Option<(u64, f64)> {
        let (a, b) = (self.choice(i, from), self.choice(i, to));
        let bytes = self.bytes - a.bytes + b.bytes;
        let latency = self.latency - a.latency + b.latency;
        let ok =
            bytes <= self.max_bytes && self.max_latency.is_none_or(|t| latency_fits(latency, t));
        ok.then_some((bytes, latency))
    }

    /// Ranks every upgrade of item `i` to `targets` that fits now.
    fn push(&self, heap: &mut Heap, picks: &[usize], version: u32, i: usize, targets: &[usize]) {
        let cur = self.choice(i, picks[i]);
        for &j in targets {
            let c = self.choice(i, j);
            if c.loss >= cur.loss || self.fits(i, picks[i], j).is_none() {
                continue;
            }
            let mut cost = c.bytes.saturating_sub(cur.bytes) as f64 / self.units.bytes;
            if self.max_latency.is_some() {
                cost += (c.latency - cur.latency).max(0.0) / self.units.latency;
            }
            let gain = cur.loss - c.loss;
            let key = if cost > 0.0 { -(gain / cost) } else { f64::NEG_INFINITY };
            heap.push(Reverse(Ranked { key, item: i, aux: j, version }));
        }
    }

    /// Spends on upgrades to `targets(i)` of each item `i` until none fits.
    pub fn run<'t>(&mut self, picks: &mut [usize], targets: impl Fn(usize) -> &'t [usize]) {
        let mut version = vec![0u32; picks.len()];
        let mut heap = Heap::new();
        for _ in 0..UPGRADE_PASSES {
            heap.clear();
            for (i, &v) in version.iter().enumerate() {
                self.push(&mut heap, picks, v, i, targets(i));
            }
            let mut applied = false;
            while let Some(Reverse(r)) = heap.pop() {
                let i = r.item;
                if r.version != version[i] {
                    continue;
                }
                let Some((bytes, latency)) = self.fits(i, picks[i], r.aux) else { continue };
                (self.bytes, self.latency) = (bytes, latency);
                picks[i] = r.aux;
                version[i] += 1;
                applied = true;
                self.push(&mut heap, picks, version[i], i, targets(i));
            }
            if !applied || self.max_latency.is_none() {
                break;
            }
        }
    }
}
