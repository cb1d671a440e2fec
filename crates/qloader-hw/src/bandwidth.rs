//! Memory read bandwidth, measured the way a GEMV reads weights: a streaming
//! pass over a buffer much larger than the caches, split over threads.

use rayon::prelude::*;

use crate::timing::{median_seconds, TimingBudget};

/// Default buffer size: far beyond the last-level cache of the machines
/// QLoader targets.
pub const DEFAULT_BYTES: usize = 512 << 20;

/// Measured read bandwidth in bytes per second, reading `bytes` bytes with
/// the current rayon pool.
pub fn read_bandwidth(bytes: usize, budget: TimingBudget) -> f64 {
    let words = (bytes / 8).max(1024);
    // Distinct non-zero values so no page is shared or compressed.
    let buffer: Vec<u64> =
        (0..words as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).collect();
    let threads = rayon::current_num_threads();
    let chunk = words.div_ceil(threads);
    let mut sink = 0u64;
    let seconds = median_seconds(budget, || {
        let s: u64 = buffer.par_chunks(chunk).map(sum_words).reduce(|| 0, u64::wrapping_add);
        sink = sink.wrapping_add(s);
    });
    std::hint::black_box(sink);
    (words * 8) as f64 / seconds
}

/// Successive windows of a buffer much larger than the caches, read in turn
/// (wrapping around): a streaming read of a given size that always comes
/// from memory, to time beside a kernel reading the same number of bytes.
pub struct ColdReads {
    words: Vec<u64>,
    next: usize,
}

impl ColdReads {
    /// A buffer of at least `bytes` bytes (1 MiB at least).
    pub fn new(bytes: usize) -> Self {
        let words = (bytes / 8).max(1 << 17);
        Self {
            words: (0..words as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).collect(),
            next: 0,
        }
    }

    /// Reads the next `bytes` bytes (at most the buffer) with the current
    /// rayon pool, each thread a contiguous share, as [`read_bandwidth`]
    /// does; returns their sum (to keep the reads).
    pub fn read(&mut self, bytes: usize) -> u64 {
        let n = (bytes / 8).clamp(1, self.words.len());
        if self.next + n > self.words.len() {
            self.next = 0;
        }
        let window = &self.words[self.next..self.next + n];
        self.next += n;
        let chunk = n.div_ceil(rayon::current_num_threads());
        let sum = window.par_chunks(chunk).map(sum_words).reduce(|| 0, u64::wrapping_add);
        std::hint::black_box(sum)
    }
}

/// Sum with eight independent lanes (vectorised by the compiler), so the
/// loop is limited by memory, not by the add latency.
fn sum_words(words: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut chunks = words.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] = acc[l].wrapping_add(c[l]);
        }
    }
    let tail = chunks.remainder().iter().fold(0u64, |a, &w| a.wrapping_add(w));
    acc.iter().fold(tail, |a, &w| a.wrapping_add(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_word() {
        let words: Vec<u64> = (1..=21).collect();
        assert_eq!(sum_words(&words), 21 * 22 / 2);
    }

    #[test]
    fn cold_reads_walk_the_buffer_and_wrap() {
        let mut r = ColdReads::new(0);
        let len = r.words.len();
        let first = r.read(len * 8 / 2);
        assert_eq!(r.next, len / 2);
        r.read(len * 8 / 2);
        assert_eq!(r.next, len);
        // The next window does not fit: it starts over at the beginning.
        assert_eq!(r.read(len * 8 / 2), first);
        assert_eq!(r.next, len / 2);
    }
}
