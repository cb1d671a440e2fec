//! The greedy's last phase under a byte budget alone: exchanges that the
//! walk down the hulls and the upgrade spend cannot make.
//!
//! The walk's last downgrade often overshoots: a large item steps down and
//! frees far more bytes than needed, and the leftover buys back only some
//! of the loss. The fix is to upgrade that item again and pay for it with
//! several small downgrades elsewhere. Each round, for every possible
//! upgrade of every item, the bytes the leftover does not cover are paid
//! for in the cheaper of two ways:
//!
//! * one other item's downgrade: the one of least loss added among those
//!   that free enough (downgrades sorted by bytes freed, with suffix minima
//!   of loss, the best two of distinct items, so a binary search finds it);
//! * a chain: the other items' steps down their hulls (from where they
//!   stand), cheapest loss per byte first, as many as it takes (a prefix of
//!   all steps sorted by slope, found by binary search over prefix sums).
//!
//! The round applies the exchange that lowers the loss most, and ends when
//! none does; a round is O(n·k·log(n·k)).

use crate::hull::frontier_by;
use crate::problem::Problem;

/// Most rounds.
const ROUNDS: usize = 256;

/// An exchange must lower the loss by more than this fraction of it.
const TOLERANCE: f64 = 1e-12;

/// A downgrade on offer: bytes freed, loss added, item, target choice.
#[derive(Debug, Clone, Copy)]
struct Offer {
    free: u64,
    cost: f64,
    item: usize,
    to: usize,
}

/// How an upgrade is paid for.
#[derive(Debug, Clone, Copy)]
enum Payment {
    /// The leftover covers it.
    Leftover,
    /// One offer (index into the offers).
    Single(usize),
    /// The first `len` chain steps, except the upgraded item's own.
    Chain(usize),
}

/// Improves `picks` (each on its item's Pareto front, `fronts`, totalling
/// `bytes` ≤ `max_bytes`) by exchanges. See the module documentation.
pub(crate) fn improve(
    problem: &Problem,
    fronts: &[Vec<usize>],
    picks: &mut [usize],
    max_bytes: u64,
    mut bytes: u64,
) {
    let items = &problem.items;
    let mut offers: Vec<Offer> = Vec::new();
    let mut best_two: Vec<(usize, Option<usize>)> = Vec::new();
    let mut chain: Vec<(f64, usize, Offer)> = Vec::new();
    let (mut chain_free, mut chain_cost) = (Vec::new(), Vec::new());
    let mut item_steps: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    let (mut below, mut hull) = (Vec::new(), Vec::new());
    let mut upgrades: Vec<(usize, usize, u64, f64)> = Vec::new();
    for _ in 0..ROUNDS {
        // Offers: every downgrade along each front; chain steps: down the
        // hull of what lies below each current pick.
        offers.clear();
        chain.clear();
        let mut loss = 0.0;
        // No payment costs less per byte than the cheapest first step.
        let mut cheapest = f64::INFINITY;
        for (k, front) in fronts.iter().enumerate() {
            let choices = &items[k].choices;
            let cur = &choices[picks[k]];
            loss += cur.loss;
            below.clear();
            for &d in front {
                let c = &choices[d];
                if c.bytes < cur.bytes {
                    offers.push(Offer {
                        free: cur.bytes - c.bytes,
                        cost: c.loss - cur.loss,
                        item: k,
                        to: d,
                    });
                }
                if c.bytes <= cur.bytes {
                    below.push(d);
                }
            }
            frontier_by(&below, |j| (choices[j].bytes, choices[j].loss), true, &mut hull);
            for (depth, w) in hull.windows(2).rev().enumerate() {
                let (lo, hi) = (&choices[w[0]], &choices[w[1]]);
                let step =
                    Offer { free: hi.bytes - lo.bytes, cost: lo.loss - hi.loss, item: k, to: w[0] };
                let slope = step.cost / step.free as f64;
                if depth == 0 {
                    cheapest = cheapest.min(slope);
                }
                chain.push((slope, depth, step));
            }
        }
        // The upgrades that could pay off.
        let slack = max_bytes - bytes;
        upgrades.clear();
        for (i, front) in fronts.iter().enumerate() {
            let cur = &items[i].choices[picks[i]];
            for &u in front {
                let c = &items[i].choices[u];
                if c.bytes <= cur.bytes {
                    continue;
                }
                let (need, gain) = (c.bytes - cur.bytes, cur.loss - c.loss);
                if need <= slack || gain > (need - slack) as f64 * cheapest {
                    upgrades.push((i, u, need, gain));
                }
            }
        }
        let Some(max_gain) = upgrades.iter().map(|u| u.3).reduce(f64::max) else { break };
        // Nothing costing more than the largest gain can be part of a
        // payment; an item's chain stops at its first such step.
        offers.retain(|o| o.cost < max_gain);
        let mut cut = usize::MAX;
        chain.retain(|(_, _, s)| {
            if s.item == cut || s.cost >= max_gain {
                cut = s.item;
                return false;
            }
            true
        });
        offers.sort_unstable_by(|a, b| a.free.cmp(&b.free).then(a.cost.total_cmp(&b.cost)));
        suffix_best_two(&offers, &mut best_two);
        // Ties keep an item's steps in their order down its hull.
        chain.sort_unstable_by(|a, b| {
            a.0.total_cmp(&b.0).then(a.2.item.cmp(&b.2.item)).then(a.1.cmp(&b.1))
        });
        chain_free.clear();
        chain_cost.clear();
        chain_free.push(0u64);
        chain_cost.push(0.0f64);
        for item in &mut item_steps {
            item.clear();
        }
        for (x, (_, _, s)) in chain.iter().enumerate() {
            chain_free.push(chain_free[x] + s.free);
            chain_cost.push(chain_cost[x] + s.cost);
            item_steps[s.item].push(x);
        }

        let mut best: Option<(f64, usize, usize, Payment)> = None;
        for &(i, u, need, gain) in &upgrades {
            let mut options: [Option<(f64, Payment)>; 2] = [None, None];
            if need <= slack {
                options[0] = Some((gain, Payment::Leftover));
            } else {
                let short = need - slack;
                let x = offers.partition_point(|o| o.free < short);
                if let Some(&(a, b)) = best_two.get(x) {
                    let p = if offers[a].item != i { Some(a) } else { b };
                    options[0] = p.map(|p| (gain - offers[p].cost, Payment::Single(p)));
                }
                options[1] = chain_prefix(&chain, &chain_free, &chain_cost, &item_steps[i], short)
                    .map(|(len, cost)| (gain - cost, Payment::Chain(len)));
            }
            for (net, pay) in options.into_iter().flatten() {
                if best.is_none_or(|(n, ..)| net > n) {
                    best = Some((net, i, u, pay));
                }
            }
        }
        let Some((net, i, u, pay)) = best else { break };
        if net <= loss * TOLERANCE {
            break;
        }
        bytes = bytes - items[i].choices[picks[i]].bytes + items[i].choices[u].bytes;
        picks[i] = u;
        match pay {
            Payment::Leftover => {}
            Payment::Single(p) => {
                bytes -= offers[p].free;
                picks[offers[p].item] = offers[p].to;
            }
            Payment::Chain(len) => {
                for (_, _, s) in chain[..len].iter().filter(|(_, _, s)| s.item != i) {
                    bytes -= s.free;
                    picks[s.item] = s.to;
                }
            }
        }
        debug_assert!(bytes <= max_bytes);
    }
}

/// For each suffix of `offers`: its cheapest offer, and the cheapest of an
/// item other than that one's.
fn suffix_best_two(offers: &[Offer], out: &mut Vec<(usize, Option<usize>)>) {
    out.clear();
    out.resize(offers.len(), (0, None));
    let mut run: Option<(usize, Option<usize>)> = None;
    for x in (0..offers.len()).rev() {
        let o = &offers[x];
        let next = match run {
            None => (x, None),
            Some((a, b)) if o.cost < offers[a].cost => {
                (x, if offers[a].item != o.item { Some(a) } else { b })
            }
            Some((a, b)) => {
                let better = o.item != offers[a].item && b.is_none_or(|b| o.cost < offers[b].cost);
                (a, if better { Some(x) } else { b })
            }
        };
        out[x] = next;
        run = Some(next);
    }
}

/// The shortest prefix of the chain that frees at least `short` bytes from
/// items other than the one whose steps are at `own` (indices into the
/// chain, ascending): its length and the loss it adds without those steps.
fn chain_prefix(
    chain: &[(f64, usize, Offer)],
    free: &[u64],
    cost: &[f64],
    own: &[usize],
    short: u64,
) -> Option<(usize, f64)> {
    let mut target = short;
    loop {
        // First prefix length whose total frees `target`.
        let len = free.partition_point(|&f| f < target);
        if len >= free.len() {
            return None;
        }
        let (mut own_free, mut own_cost) = (0u64, 0.0f64);
        for &x in own.iter().take_while(|&&x| x < len) {
            own_free += chain[x].2.free;
            own_cost += chain[x].2.cost;
        }
        if free[len] - own_free >= short {
            return Some((len, cost[len] - own_cost));
        }
        target = short + own_free;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{Choice, Item};

    fn offer(free: u64, cost: f64, item: usize) -> Offer {
        Offer { free, cost, item, to: 0 }
    }

    #[test]
    fn best_two_are_of_distinct_items() {
        let offers = [offer(1, 0.5, 0), offer(2, 0.1, 1), offer(3, 0.2, 1), offer(4, 0.3, 2)];
        let mut out = Vec::new();
        suffix_best_two(&offers, &mut out);
        assert_eq!(out, vec![(1, Some(3)), (1, Some(3)), (2, Some(3)), (3, None)]);
    }

    #[test]
    fn chain_skips_the_upgraded_item() {
        let chain: Vec<(f64, usize, Offer)> =
            [offer(2, 0.2, 0), offer(3, 0.6, 1), offer(4, 1.6, 0)]
                .map(|o| (o.cost / o.free as f64, 0, o))
                .into();
        let free = [0, 2, 5, 9];
        let cost = [0.0, 0.2, 0.8, 2.4];
        assert_eq!(chain_prefix(&chain, &free, &cost, &[], 4), Some((2, 0.8)));
        // Item 0's steps do not count: only item 1's 3 bytes are on offer.
        let (len, cost_1) = chain_prefix(&chain, &free, &cost, &[0, 2], 3).unwrap();
        assert_eq!(len, 2);
        assert!((cost_1 - 0.6).abs() < 1e-15);
        assert_eq!(chain_prefix(&chain, &free, &cost, &[0, 2], 4), None);
    }

    #[test]
    fn a_large_upgrade_is_paid_by_several_small_downgrades() {
        // Item 0 is big: downgrading it (the cheapest move per byte) frees
        // 10 bytes where 4 were needed. Better: keep it and take the two
        // small items down (4 bytes for 0.2 + 0.3 loss).
        let small =
            |cost: f64| Item::new(vec![Choice::new(4, 0.0, 0.0), Choice::new(2, 0.0, cost)]);
        let p = Problem::new(vec![
            Item::new(vec![Choice::new(20, 0.0, 0.0), Choice::new(10, 0.0, 1.0)]),
            small(0.2),
            small(0.3),
        ]);
        let fronts: Vec<Vec<usize>> = vec![vec![1, 0], vec![1, 0], vec![1, 0]];
        let mut picks = vec![1, 0, 0];
        improve(&p, &fronts, &mut picks, 24, 18);
        assert_eq!(picks, vec![0, 1, 1]);
    }
}
