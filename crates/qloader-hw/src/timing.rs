//! Timing a closure robustly on a noisy machine: warm up once, then repeat
//! until both a minimum number of runs and a minimum total time are reached,
//! and report the median.

use std::time::{Duration, Instant};

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct TimingBudget {
    /// Fewest timed runs.
    pub min_runs: usize,
    /// Keep running until at least this much time has been measured.
    pub min_total: Duration,
    /// Never more than this many runs.
    pub max_runs: usize,
}

impl Default for TimingBudget {
    fn default() -> Self {
        Self { min_runs: 5, min_total: Duration::from_millis(300), max_runs: 1000 }
    }
}

/// Median seconds of one call of `f`.
pub fn median_seconds(budget: TimingBudget, mut f: impl FnMut()) -> f64 {
    f();
    let mut samples = Vec::new();
    let mut total = Duration::ZERO;
    while samples.len() < budget.max_runs
        && (samples.len() < budget.min_runs || total < budget.min_total)
    {
        let start = Instant::now();
        f();
        let t = start.elapsed();
        total += t;
        samples.push(t.as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Median seconds of `f` and of `g`, timed alternately (f, g, f, g, …) so
/// that slow phases of a noisy machine hit both alike: for ratios between
/// two ways of doing the same work.
pub fn paired_median_seconds(
    budget: TimingBudget,
    mut f: impl FnMut(),
    mut g: impl FnMut(),
) -> (f64, f64) {
    let t = interleaved_median_seconds(budget, &mut [&mut f, &mut g]);
    (t[0], t[1])
}

/// Median seconds of each closure, timed in turn (a, b, c, a, b, c, …) after
/// one warm-up call each; the budget counts the rounds and the total time of
/// all of them.
pub fn interleaved_median_seconds(budget: TimingBudget, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    for f in fs.iter_mut() {
        f();
    }
    let mut samples = vec![Vec::new(); fs.len()];
    let mut rounds = 0;
    let mut total = Duration::ZERO;
    while !fs.is_empty()
        && rounds < budget.max_runs
        && (rounds < budget.min_runs || total < budget.min_total)
    {
        for (f, s) in fs.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            f();
            let t = start.elapsed();
            total += t;
            s.push(t.as_secs_f64());
        }
        rounds += 1;
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s.get(s.len() / 2).copied().unwrap_or(0.0)
        })
        .collect()
}

/// Runs `f` with `threads` threads for parallel work: the products' thread
/// team, and a dedicated rayon pool for what still runs on rayon (the
/// bandwidth probe, the analysis).
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    let threads = threads.max(1);
    let in_team = || qloader_kernels::team::with_threads(threads, f);
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(in_team),
        // Building a pool only fails when the OS refuses threads; measure on
        // the global pool rather than not at all.
        Err(_) => in_team(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_at_least_min_runs_and_returns_a_sample() {
        let mut calls = 0;
        let budget = TimingBudget { min_runs: 3, min_total: Duration::ZERO, max_runs: 10 };
        let t = median_seconds(budget, || calls += 1);
        assert_eq!(calls, 4, "one warm-up and three timed runs");
        assert!(t >= 0.0);
    }

    #[test]
    fn paired_timing_alternates() {
        let order = std::cell::RefCell::new(Vec::new());
        let budget = TimingBudget { min_runs: 2, min_total: Duration::ZERO, max_runs: 10 };
        paired_median_seconds(
            budget,
            || order.borrow_mut().push('f'),
            || order.borrow_mut().push('g'),
        );
        assert_eq!(order.into_inner(), vec!['f', 'g', 'f', 'g', 'f', 'g']);
    }

    #[test]
    fn interleaved_timing_takes_turns() {
        let order = std::cell::RefCell::new(Vec::new());
        let budget = TimingBudget { min_runs: 1, min_total: Duration::ZERO, max_runs: 10 };
        let t = interleaved_median_seconds(
            budget,
            &mut [
                &mut || order.borrow_mut().push('a'),
                &mut || order.borrow_mut().push('b'),
                &mut || order.borrow_mut().push('c'),
            ],
        );
        assert_eq!(t.len(), 3);
        assert_eq!(order.into_inner(), vec!['a', 'b', 'c', 'a', 'b', 'c']);
        assert!(interleaved_median_seconds(budget, &mut []).is_empty());
    }
}
