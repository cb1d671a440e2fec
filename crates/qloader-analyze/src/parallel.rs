//! Work spread over the rayon pool as a queue — each worker takes the next
//! job in the order given, so a caller that lists the longest jobs first
//! keeps every core busy to the end — while the calling thread reports each
//! finished step, so that a progress bar moves as the work does.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::Result;

/// Reports one finished step of a job (for progress).
pub(crate) type Step<'a> = &'a (dyn Fn() + Sync);

/// Runs `work` on every job across the rayon pool, jobs taken in order,
/// while the calling thread calls `tick` once for each step a job reports
/// through the function `work` is handed. Results keep the jobs' order; if
/// jobs fail, no further job starts and the error of the earliest failed
/// job is returned.
pub(crate) fn par_map_with_progress<J: Send, T: Send>(
    jobs: Vec<J>,
    work: &(dyn Fn(J, Step<'_>) -> Result<T> + Sync),
    tick: &mut dyn FnMut(),
) -> Result<Vec<T>> {
    let count = jobs.len();
    let slots: Vec<Mutex<Option<J>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<Mutex<Option<Result<T>>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let (slot, result_of, next, failed) = (&slots, &results, &next, &failed);
    std::thread::scope(|scope| {
        let workers = scope.spawn(move || {
            // Dropped with this closure, which ends the ticking below.
            let step = move || {
                let _ = done.send(());
            };
            let worker = || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || failed.load(Ordering::Relaxed) {
                    break;
                }
                let job = slot[i].lock().unwrap_or_else(|p| p.into_inner()).take();
                let Some(job) = job else { continue };
                let result = work(job, &step);
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                *result_of[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            };
            let threads = rayon::current_num_threads().min(count).max(1);
            rayon::scope(|s| {
                for _ in 0..threads {
                    // Jobs already spread the work over the cores: products
                    // inside them run on their own thread (no thread team).
                    s.spawn(|_| qloader_kernels::team::serial(worker));
                }
            });
        });
        for () in finished {
            tick();
        }
        workers.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    let mut out = Vec::with_capacity(count);
    for slot in results {
        match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok(value)) => out.push(value),
            Some(Err(error)) => return Err(error),
            // Not run: an earlier-taken job failed (its error comes first
            // or later in this loop).
            None => continue,
        }
    }
    // Every job ran unless one failed, and a failure returned above.
    if out.len() == count {
        Ok(out)
    } else {
        unreachable!("a job was skipped although none failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AnalyzeError;

    #[test]
    fn results_keep_order_and_every_step_ticks() {
        let mut ticks = 0;
        let out = par_map_with_progress(
            (0..50).collect(),
            &|j: usize, step| {
                step();
                if j.is_multiple_of(2) {
                    step();
                }
                Ok(j * 3)
            },
            &mut || ticks += 1,
        )
        .unwrap();
        assert_eq!(out, (0..50).map(|j| j * 3).collect::<Vec<_>>());
        assert_eq!(ticks, 75);
    }

    #[test]
    fn the_earliest_failure_is_returned() {
        let got = par_map_with_progress(
            (0..20).collect(),
            &|j: usize, _| {
                if j >= 7 {
                    Err(AnalyzeError::Options(format!("job {j}")))
                } else {
                    Ok(j)
                }
            },
            &mut || {},
        );
        match got {
            // Jobs are taken in order: job 7 always runs, and fails first.
            Err(AnalyzeError::Options(m)) => assert_eq!(m, "job 7"),
            other => panic!("expected an error, got {other:?}"),
        }
        let empty: Vec<usize> =
            par_map_with_progress(Vec::new(), &|j, _| Ok(j), &mut || {}).unwrap();
        assert!(empty.is_empty());
    }
}
