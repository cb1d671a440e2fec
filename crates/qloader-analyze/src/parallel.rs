//! Work spread over the rayon pool while the calling thread reports each
//! finished job, so that a progress bar moves as the work does.

use rayon::prelude::*;

use crate::error::Result;

/// Runs `work` on every job across the rayon pool while the calling thread
/// reports each finished job to `tick` (so progress reaches a terminal as it
/// happens). Results keep the jobs' order; the first error wins.
pub(crate) fn par_map_with_progress<J: Send, T: Send>(
    jobs: Vec<J>,
    work: &(dyn Fn(J) -> Result<T> + Sync),
    tick: &mut dyn FnMut(),
) -> Result<Vec<T>> {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let workers = scope.spawn(move || {
            jobs.into_par_iter()
                .map(|job| {
                    let result = work(job);
                    let _ = done.send(());
                    result
                })
                .collect::<Result<Vec<T>>>()
        });
        for () in finished {
            tick();
        }
        workers.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
