//! Per-item geometry in the (bytes, loss) plane: the choices no other choice
//! beats on both ([`pareto_front`]) and the lower convex hull of those
//! ([`lower_hull`]). Along the hull, moving to more bytes buys less and less
//! loss per byte, which is what makes the greedy's ratio order, the LP
//! relaxation of the multiple-choice knapsack and the Lagrangian bound exact
//! on it (Sinha & Zoltners, "The multiple-choice knapsack problem",
//! Operations Research 27(3), 1979: the LP optimum lies on the hulls, with
//! at most one item between two hull points).

use crate::problem::Choice;

/// One step up an item's hull: from choice `from` to the larger, better
/// choice `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// The smaller choice.
    pub from: usize,
    /// The larger choice, of less loss.
    pub to: usize,
    /// Bytes the step adds (> 0).
    pub bytes: u64,
    /// Loss the step removes (> 0).
    pub loss: f64,
}

impl Segment {
    /// Loss removed per byte added. Along a hull these decrease strictly.
    pub fn slope(&self) -> f64 {
        self.loss / self.bytes as f64
    }
}

/// The choices that no other choice beats on both bytes and loss, by bytes
/// ascending (so loss strictly descending). Of equal choices the lowest
/// index is kept.
pub fn pareto_front(choices: &[Choice]) -> Vec<usize> {
    let order = by_bytes(choices);
    let mut out = Vec::with_capacity(order.len());
    frontier_by(&order, |j| (choices[j].bytes, choices[j].loss), false, &mut out);
    out
}

/// The vertices of the lower convex hull of the [`pareto_front`], by bytes
/// ascending: from the smallest choice (least loss among the smallest) to
/// the least-loss choice (fewest bytes among the least-loss). Choices on a
/// hull edge but not at a vertex are left out.
pub fn lower_hull(choices: &[Choice]) -> Vec<usize> {
    let order = by_bytes(choices);
    let mut out = Vec::with_capacity(order.len());
    frontier_by(&order, |j| (choices[j].bytes, choices[j].loss), true, &mut out);
    out
}

/// The steps between consecutive points of a hull (as [`lower_hull`]
/// returns), smallest first.
pub fn segments(choices: &[Choice], hull: &[usize]) -> Vec<Segment> {
    hull.windows(2)
        .map(|w| Segment {
            from: w[0],
            to: w[1],
            bytes: choices[w[1]].bytes - choices[w[0]].bytes,
            loss: choices[w[0]].loss - choices[w[1]].loss,
        })
        .collect()
}

/// Indices of `choices` sorted by bytes ascending, then loss, then index.
pub(crate) fn by_bytes(choices: &[Choice]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..choices.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&choices[a], &choices[b]);
        ca.bytes.cmp(&cb.bytes).then(ca.loss.total_cmp(&cb.loss)).then(a.cmp(&b))
    });
    order
}

/// The Pareto front (`convex == false`) or lower convex hull
/// (`convex == true`) of the points `point(j)` = (bytes, loss) for `j` in
/// `order`, which must be sorted by bytes ascending (any order among equal
/// bytes). Written to `out` as indices, bytes ascending.
pub(crate) fn frontier_by(
    order: &[usize],
    point: impl Fn(usize) -> (u64, f64),
    convex: bool,
    out: &mut Vec<usize>,
) {
    out.clear();
    let mut best_loss = f64::INFINITY;
    let mut k = 0;
    while k < order.len() {
        // Of a run of equal bytes only the least loss (then lowest index)
        // can be on the front.
        let (bytes, _) = point(order[k]);
        let mut pick = order[k];
        k += 1;
        while k < order.len() && point(order[k]).0 == bytes {
            let (j, p) = (order[k], point(pick).1);
            let l = point(j).1;
            if l < p || (l == p && j < pick) {
                pick = j;
            }
            k += 1;
        }
        let loss = point(pick).1;
        if loss >= best_loss {
            continue;
        }
        best_loss = loss;
        if convex {
            // Drop the last vertex while it is not strictly below the line
            // from the one before it to the new point.
            while out.len() >= 2 {
                let (ax, ay) = point(out[out.len() - 2]);
                let (bx, by) = point(out[out.len() - 1]);
                let (px, py) = (bytes, loss);
                let left = (ay - by) * (px - bx) as f64;
                let right = (by - py) * (bx - ax) as f64;
                if left > right {
                    break;
                }
                out.pop();
            }
        }
        out.push(pick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(bytes: u64, loss: f64) -> Choice {
        Choice::new(bytes, 0.0, loss)
    }

    #[test]
    fn dominated_choices_are_removed() {
        // 5 bytes at loss 2 is beaten by 4 bytes at loss 1; the duplicate of
        // choice 0 loses on index.
        let choices = [c(4, 1.0), c(5, 2.0), c(1, 3.0), c(8, 0.0), c(4, 1.0), c(8, 0.5)];
        assert_eq!(pareto_front(&choices), vec![2, 0, 3]);
    }

    #[test]
    fn hull_drops_points_above_the_chord() {
        // (2, 2.0) lies above the chord from (1, 2.5) to (4, 0).
        let choices = [c(4, 0.0), c(2, 2.0), c(1, 2.5)];
        assert_eq!(pareto_front(&choices), vec![2, 1, 0]);
        let hull = lower_hull(&choices);
        assert_eq!(hull, vec![2, 0]);
        let segs = segments(&choices, &hull);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].bytes, 3);
        assert!((segs[0].slope() - 2.5 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn hull_keeps_convex_points_and_slopes_decrease() {
        let choices = [c(4, 0.0), c(2, 1.0), c(1, 3.0), c(16, 0.0), c(8, 0.0)];
        let hull = lower_hull(&choices);
        // 8 and 16 bytes at loss 0 are no better than 4 bytes at loss 0.
        assert_eq!(hull, vec![2, 1, 0]);
        let slopes: Vec<f64> = segments(&choices, &hull).iter().map(Segment::slope).collect();
        assert_eq!(slopes, vec![2.0, 0.5]);
    }

    #[test]
    fn collinear_middle_points_are_not_vertices() {
        let choices = [c(1, 3.0), c(2, 2.0), c(3, 1.0), c(4, 0.0)];
        assert_eq!(pareto_front(&choices).len(), 4);
        assert_eq!(lower_hull(&choices), vec![0, 3]);
    }

    #[test]
    fn single_and_empty() {
        assert_eq!(lower_hull(&[c(7, 1.0)]), vec![0]);
        assert!(lower_hull(&[]).is_empty());
        assert!(segments(&[c(7, 1.0)], &[0]).is_empty());
    }

    #[test]
    fn equal_bytes_keep_the_least_loss() {
        let choices = [c(2, 1.0), c(2, 0.5), c(1, 2.0)];
        assert_eq!(lower_hull(&choices), vec![2, 1]);
    }
}
