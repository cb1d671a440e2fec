//! The LP relaxation bound of the exact solver's nodes: for the items not
//! yet fixed (a suffix of the branching order), the least cost of the
//! multiple-choice LP in the residual byte budget.
//!
//! Each item starts at the bottom of its hull (fewest bytes); the budget
//! left is spent on hull segments by cost removed per byte, at most one
//! segment fractionally (Sinha & Zoltners 1979). All items' segments are
//! kept in one slope order in a [`Fenwick`] tree; the fixed items' segments
//! are switched off, so a bound costs O(log s) for s segments. Costs are
//! `loss + w·latency` for a weight `w` chosen by the caller (0 for the plain
//! LP; the latency multiplier for a partial Lagrangian relaxation).

use crate::fenwick::Fenwick;
use crate::hull::frontier_by;

/// One hull segment of a free item, in the global slope order.
#[derive(Debug, Clone, Copy)]
struct Seg {
    bytes: u64,
    cost: f64,
    /// `cost` in fixed point.
    units: u128,
}

/// The suffix LP over a fixed branching order.
pub(crate) struct SuffixLp {
    segs: Vec<Seg>,
    /// Per position: indices of its segments in `segs`.
    item_segs: Vec<Vec<usize>>,
    /// Fixed-point unit of cost.
    unit: f64,
    /// Per suffix `d..`: total bottom bytes, total top (least) cost.
    suf_bottom: Vec<u64>,
    suf_top: Vec<f64>,
    tree: Fenwick,
    /// Fixed-point cost of the active segments.
    active: u128,
}

impl SuffixLp {
    /// The LP over `positions` (each a list of choices sorted by bytes
    /// ascending), with `point(pos, j)` = (bytes, cost) of choice `j` of
    /// position `pos`. All segments start active.
    pub fn new(positions: &[Vec<usize>], point: impl Fn(usize, usize) -> (u64, f64)) -> Self {
        let m = positions.len();
        let mut raw: Vec<(f64, usize, usize, Seg)> = Vec::new(); // slope, pos, depth, seg
        let (mut bottoms, mut tops) = (Vec::with_capacity(m), Vec::with_capacity(m));
        let mut hull = Vec::new();
        for (pos, order) in positions.iter().enumerate() {
            frontier_by(order, |j| point(pos, j), true, &mut hull);
            let (Some(&first), Some(&last)) = (hull.first(), hull.last()) else {
                bottoms.push(0);
                tops.push(0.0);
                continue;
            };
            bottoms.push(point(pos, first).0);
            tops.push(point(pos, last).1);
            for (depth, w) in hull.windows(2).enumerate() {
                let ((b0, c0), (b1, c1)) = (point(pos, w[0]), point(pos, w[1]));
                let seg = Seg { bytes: b1 - b0, cost: c0 - c1, units: 0 };
                raw.push((seg.cost / seg.bytes as f64, pos, depth, seg));
            }
        }
        raw.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let total: f64 = raw.iter().map(|r| r.3.cost).sum();
        // 2^100 units in all leaves room in a u128 for rounding.
        let unit = if total > 0.0 { total / 2f64.powi(100) } else { 1.0 };
        let mut item_segs = vec![Vec::new(); m];
        let mut segs = Vec::with_capacity(raw.len());
        for (g, (_, pos, _, mut seg)) in raw.into_iter().enumerate() {
            seg.units = (seg.cost / unit).round() as u128;
            item_segs[pos].push(g);
            segs.push(seg);
        }
        let values: Vec<(u64, u128)> = segs.iter().map(|s| (s.bytes, s.units)).collect();
        let active = values.iter().map(|v| v.1).sum();
        Self {
            tree: Fenwick::new(&values),
            active,
            segs,
            item_segs,
            unit,
            suf_bottom: suffix(&bottoms, 0u64, |a, b| a + b),
            suf_top: suffix(&tops, 0.0, |a, b| a + b),
        }
    }

    /// The least resource positions `d..` can take.
    pub fn bottom(&self, d: usize) -> u64 {
        self.suf_bottom[d]
    }

    /// Switches position `pos`'s segments off (it is fixed) or on.
    pub fn switch(&mut self, pos: usize, on: bool) {
        for &g in &self.item_segs[pos] {
            let s = self.segs[g];
            if on {
                self.tree.add(g, s.bytes, s.units);
                self.active += s.units;
            } else {
                self.tree.remove(g, s.bytes, s.units);
                self.active -= s.units;
            }
        }
    }

    /// The LP's least cost of positions `d..` (whose segments must be the
    /// only active ones) in `room` bytes; `None` if they cannot fit.
    pub fn value(&self, d: usize, room: u64) -> Option<f64> {
        let free = room.checked_sub(self.suf_bottom[d])?;
        let fit = self.tree.fit(free);
        let mut cost = self.suf_top[d];
        if let Some(seg) = self.segs.get(fit.count) {
            // Untaken: everything after the fractional segment, and the part
            // of it that does not fit.
            let untaken = self.active - fit.loss - seg.units;
            let taken = (free - fit.bytes) as f64 / seg.bytes as f64;
            cost += untaken as f64 * self.unit + (1.0 - taken) * seg.cost;
        }
        Some(cost)
    }
}

/// Suffix sums: `out[d] = v[d] + … + v[n−1]`, `out[n] = zero`.
pub(crate) fn suffix<T: Copy>(v: &[T], zero: T, add: impl Fn(T, T) -> T) -> Vec<T> {
    let mut out = vec![zero; v.len() + 1];
    for d in (0..v.len()).rev() {
        out[d] = add(v[d], out[d + 1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of `bound.rs`: items A (1, 3) – (2, 1) – (4, 0) and B
    /// (1, 2.5) – (2, 2) – (4, 0); LP in 5 bytes is 11/6.
    #[test]
    fn lp_matches_hand_computation() {
        let pts = [[(1u64, 3.0f64), (2, 1.0), (4, 0.0)], [(1, 2.5), (2, 2.0), (4, 0.0)]];
        let positions = vec![vec![0, 1, 2], vec![0, 1, 2]];
        let mut lp = SuffixLp::new(&positions, |p, j| pts[p][j]);
        assert!((lp.value(0, 5).unwrap() - 11.0 / 6.0).abs() < 1e-12);
        assert_eq!(lp.value(0, 1), None);
        assert_eq!(lp.value(0, 8), Some(0.0));
        // Fix A: the LP of B alone in 2 bytes is 2.5 − (1/3)·2.5.
        lp.switch(0, false);
        assert!((lp.value(1, 2).unwrap() - 2.5 * 2.0 / 3.0).abs() < 1e-12);
        lp.switch(0, true);
        assert!((lp.value(0, 5).unwrap() - 11.0 / 6.0).abs() < 1e-12);
    }
}
