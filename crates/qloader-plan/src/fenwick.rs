//! A Fenwick (binary indexed) tree over the hull segments of the exact
//! solver, in one global order (slope descending), holding each active
//! segment's bytes and loss. It answers "take segments in order while they
//! fit in `r` bytes: how many, and how much loss" in O(log n), which is the
//! LP relaxation bound of a branch-and-bound node; switching an item's
//! segments off and on as the search fixes and frees it costs O(log n) each.
//!
//! Loss is kept in fixed point (`u128`) so that switching segments off and
//! on any number of times never drifts.

/// Sums of bytes and fixed-point loss over prefixes of a sequence.
pub(crate) struct Fenwick {
    bytes: Vec<u64>,
    loss: Vec<u128>,
    /// Largest power of two ≤ len.
    top: usize,
}

/// A prefix that fits: `count` elements, with their summed bytes and loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prefix {
    pub count: usize,
    pub bytes: u64,
    pub loss: u128,
}

impl Fenwick {
    /// A tree over these values, all active. The bytes must sum to at most
    /// `u64::MAX` and the losses to at most `u128::MAX`.
    pub fn new(values: &[(u64, u128)]) -> Self {
        let n = values.len();
        let mut bytes = vec![0u64; n + 1];
        let mut loss = vec![0u128; n + 1];
        for (k, &(b, l)) in values.iter().enumerate() {
            bytes[k + 1] = b;
            loss[k + 1] = l;
        }
        // Linear-time build: push each node's sum into its parent.
        for i in 1..=n {
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                bytes[parent] += bytes[i];
                loss[parent] += loss[i];
            }
        }
        let top = if n == 0 { 0 } else { 1 << (usize::BITS - 1 - n.leading_zeros()) };
        Self { bytes, loss, top }
    }

    /// Removes element `k` (0-based) with these values.
    pub fn remove(&mut self, k: usize, b: u64, l: u128) {
        let mut i = k + 1;
        while i < self.bytes.len() {
            self.bytes[i] -= b;
            self.loss[i] -= l;
            i += i & i.wrapping_neg();
        }
    }

    /// Adds element `k` (0-based) back with these values.
    pub fn add(&mut self, k: usize, b: u64, l: u128) {
        let mut i = k + 1;
        while i < self.bytes.len() {
            self.bytes[i] += b;
            self.loss[i] += l;
            i += i & i.wrapping_neg();
        }
    }

    /// The longest prefix whose bytes sum to at most `room`. With positive
    /// bytes on active elements, element `count` (if any) is active and does
    /// not fit in what is left.
    pub fn fit(&self, room: u64) -> Prefix {
        let (mut pos, mut bytes, mut loss) = (0usize, 0u64, 0u128);
        let mut step = self.top;
        while step > 0 {
            let next = pos + step;
            if next < self.bytes.len() && bytes + self.bytes[next] <= room {
                pos = next;
                bytes += self.bytes[next];
                loss += self.loss[next];
            }
            step >>= 1;
        }
        Prefix { count: pos, bytes, loss }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_matches_a_scan() {
        let values: Vec<(u64, u128)> =
            (0..37u64).map(|k| ((k * 7919) % 13 + 1, u128::from(k * k))).collect();
        let mut tree = Fenwick::new(&values);
        let mut active = vec![true; values.len()];
        for round in 0..60usize {
            let k = (round * 11) % values.len();
            if active[k] {
                tree.remove(k, values[k].0, values[k].1);
            } else {
                tree.add(k, values[k].0, values[k].1);
            }
            active[k] = !active[k];
            for room in [0u64, 1, 5, 17, 60, 200, 1000] {
                let (mut count, mut bytes, mut loss) = (0, 0u64, 0u128);
                for (j, &(b, l)) in values.iter().enumerate() {
                    let b = if active[j] { b } else { 0 };
                    if bytes + b > room {
                        break;
                    }
                    count = j + 1;
                    bytes += b;
                    loss += if active[j] { l } else { 0 };
                }
                assert_eq!(tree.fit(room), Prefix { count, bytes, loss }, "room {room}");
            }
        }
    }

    #[test]
    fn empty_tree() {
        let tree = Fenwick::new(&[]);
        assert_eq!(tree.fit(10), Prefix { count: 0, bytes: 0, loss: 0 });
    }
}
