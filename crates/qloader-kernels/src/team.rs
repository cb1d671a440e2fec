//! The thread team that runs every parallel product: a fixed set of worker
//! threads that stay alive for the life of the process and, between jobs,
//! spin for a short while before they sleep. Handing a job to a spinning
//! worker costs a store and a cache-line transfer (well under a
//! microsecond), where a general-purpose pool wakes a sleeping thread through
//! the kernel (tens of microseconds on a VM) — which a decoder, running a few
//! hundred small products per token, pays on every product.
//!
//! A job is a closure `task(index, count)` run once on each of `count`
//! threads (the caller is thread 0); [`run`] returns when all are done.
//! [`for_each_chunk`] hands out ranges of items from an atomic counter, so a
//! thread the VM descheduled for a moment does not hold the others up.
//!
//! The team runs a job on the calling thread alone when it is already busy
//! (another thread's job, or a job started from inside a job) or inside
//! [`serial`], which callers that spread independent work over rayon's pool
//! use so that cores are never oversubscribed by spinning workers.

use std::cell::Cell;
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long an idle worker spins for the next job before it sleeps.
const SPIN: Duration = Duration::from_millis(2);

/// Most threads a team runs (the workers are created on first use).
const MAX_THREADS: usize = 256;

type Task = dyn Fn(usize, usize) + Sync;

/// State shared by the caller and the workers; the hot fields sit on their
/// own cache lines.
struct Shared {
    /// Bumped once per job: workers wait for it to change.
    generation: Padded<AtomicU64>,
    /// Workers still running the current job.
    pending: Padded<AtomicUsize>,
    /// Threads in the current job (the caller included).
    count: AtomicUsize,
    /// The current job (valid while `pending > 0`).
    task: Mutex<Option<&'static Task>>,
    /// Set when a worker's part of the job panicked.
    panicked: AtomicBool,
    /// Workers asleep, and the lock and signal they sleep on.
    sleepers: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
}

#[repr(align(128))]
struct Padded<T>(T);

struct Team {
    shared: &'static Shared,
    /// Workers started so far (indices 1..=workers).
    workers: Mutex<usize>,
    /// Whether a job is running.
    busy: AtomicBool,
}

static TEAM: OnceLock<Team> = OnceLock::new();
/// Threads a job uses: 0 means not set yet (then the default).
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread runs a team job or a [`serial`] section.
    static SERIAL: Cell<bool> = const { Cell::new(false) };
    /// This thread's [`with_threads`] count (0: none).
    static SCOPED_THREADS: Cell<usize> = const { Cell::new(0) };
}

fn team() -> &'static Team {
    TEAM.get_or_init(|| Team {
        shared: Box::leak(Box::new(Shared {
            generation: Padded(AtomicU64::new(0)),
            pending: Padded(AtomicUsize::new(0)),
            count: AtomicUsize::new(1),
            task: Mutex::new(None),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
        })),
        workers: Mutex::new(0),
        busy: AtomicBool::new(false),
    })
}

/// The number of threads a job uses by default: `QLOADER_THREADS`, else
/// `RAYON_NUM_THREADS`, else the cores this process may run on.
fn default_threads() -> usize {
    ["QLOADER_THREADS", "RAYON_NUM_THREADS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
        .min(MAX_THREADS)
}

/// Threads a job started on this thread uses.
pub fn threads() -> usize {
    let scoped = SCOPED_THREADS.with(Cell::get);
    if scoped > 0 {
        return scoped;
    }
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = default_threads();
            THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// Sets the threads every later job uses (at least 1), process-wide.
pub fn set_threads(n: usize) {
    THREADS.store(n.clamp(1, MAX_THREADS), Ordering::Relaxed);
}

/// Runs `f` with the jobs this thread starts using `n` threads (at least 1),
/// then restores the previous count.
pub fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    let before = SCOPED_THREADS.with(|s| s.replace(n.clamp(1, MAX_THREADS)));
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED_THREADS.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// Runs `f` with every job started on this thread inside it run on this
/// thread alone (for work already spread over other threads).
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    let was = SERIAL.with(|s| s.replace(true));
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(was);
    f()
}

/// Whether jobs started on this thread now run on it alone (inside a job or
/// a [`serial`] section): a caller that would split work itself (a blocked
/// GEMM) should then not.
pub fn is_serial() -> bool {
    SERIAL.with(Cell::get) || threads() == 1
}

/// Runs `task(index, count)` on `count` threads, the calling thread being
/// index 0, and returns when every thread is done. `count` is [`threads`],
/// or 1 where the team is busy or the caller is inside [`serial`] or a job.
///
/// # Panics
/// If any thread's part panicked (after all have finished).
pub fn run(task: &(dyn Fn(usize, usize) + Sync)) {
    let count = threads();
    if count == 1 || SERIAL.with(Cell::get) {
        return task(0, 1);
    }
    let team = team();
    if team.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        return serial(|| task(0, 1));
    }
    struct Release<'a>(&'a AtomicBool);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }
    let _release = Release(&team.busy);
    team.ensure_workers(count - 1);
    let count = count.min(*lock(&team.workers) + 1);
    let shared = team.shared;
    // SAFETY: (lifetime extension) the reference is only used by workers
    // while `pending > 0`, and this function does not return (or unwind)
    // before `pending` is back to 0, so `task` outlives every use.
    let task_static: &'static Task =
        unsafe { std::mem::transmute::<&(dyn Fn(usize, usize) + Sync + '_), &'static Task>(task) };
    *lock(&shared.task) = Some(task_static);
    shared.count.store(count, Ordering::Relaxed);
    shared.pending.0.store(count - 1, Ordering::Relaxed);
    // SeqCst: a worker going to sleep bumps `sleepers`, then reads the
    // generation; this side bumps the generation, then reads `sleepers`.
    shared.generation.0.fetch_add(1, Ordering::SeqCst);
    if shared.sleepers.load(Ordering::SeqCst) > 0 {
        let _guard = lock(&shared.sleep_lock);
        shared.wake.notify_all();
    }
    let mine = catch_unwind(AssertUnwindSafe(|| serial(|| task(0, count))));
    while shared.pending.0.load(Ordering::Acquire) != 0 {
        std::hint::spin_loop();
    }
    *lock(&shared.task) = None;
    if let Err(payload) = mine {
        resume_unwind(payload);
    }
    if shared.panicked.swap(false, Ordering::Relaxed) {
        panic!("a worker thread of the team panicked");
    }
}

/// Calls `f` on ranges of `0..items` of `grain` items (the last may be
/// shorter), spread over the team's threads by an atomic counter.
pub fn for_each_chunk(items: usize, grain: usize, f: impl Fn(Range<usize>) + Sync) {
    let grain = grain.max(1);
    let chunks = items.div_ceil(grain);
    if chunks <= 1 {
        if items > 0 {
            f(0..items);
        }
        return;
    }
    let next = AtomicUsize::new(0);
    run(&|_, _| loop {
        let c = next.fetch_add(1, Ordering::Relaxed);
        if c >= chunks {
            break;
        }
        f(c * grain..((c + 1) * grain).min(items));
    });
}

/// Calls `f(i, item)` for every item of `out` cut into items of `item_len`
/// values (the last may be shorter), spread over the team's threads; each
/// item is handed to exactly one call.
pub fn for_each_item_mut<T: Send>(
    out: &mut [T],
    item_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let item_len = item_len.max(1);
    let (len, items) = (out.len(), out.len().div_ceil(item_len));
    let base = SendPtr(out.as_mut_ptr());
    for_each_chunk(items, 1, |range| {
        for i in range {
            let start = i * item_len;
            let end = (start + item_len).min(len);
            // SAFETY: `start..end` lies within `out`, which outlives this
            // call (borrowed mutably for its whole duration); every item
            // index is handed out once, so the slices never overlap.
            let item =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            f(i, item);
        }
    });
}

/// A pointer that may cross threads (its users guarantee disjoint access).
pub(crate) struct SendPtr<T>(pub(crate) *mut T);

// SAFETY: only used by jobs whose threads write disjoint parts of what it
// points to (`for_each_item_mut`'s items, a split GEMM's columns).
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    pub(crate) fn get(&self) -> *mut T {
        self.0
    }
}

/// The lock's guard, whether or not a panicking thread poisoned it (the
/// data it guards stays consistent: single stores).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Team {
    /// Starts workers until there are at least `n`.
    fn ensure_workers(&self, n: usize) {
        let mut started = lock(&self.workers);
        while *started < n {
            *started += 1;
            let index = *started;
            let shared = self.shared;
            let seen = shared.generation.0.load(Ordering::Acquire);
            let spawned = thread::Builder::new()
                .name(format!("qloader-team-{index}"))
                .spawn(move || worker(shared, index, seen));
            if spawned.is_err() {
                // The OS refused a thread: jobs must not count on it.
                *started -= 1;
                set_threads(*started + 1);
                SCOPED_THREADS.with(|s| s.set(0));
                return;
            }
        }
    }
}

/// A worker's life: wait for a new generation, run its part, report.
fn worker(shared: &'static Shared, index: usize, mut seen: u64) {
    SERIAL.with(|s| s.set(true));
    loop {
        seen = wait_for_job(shared, seen);
        let count = shared.count.load(Ordering::Relaxed);
        if index < count {
            let task = *lock(&shared.task);
            if let Some(task) = task {
                if catch_unwind(AssertUnwindSafe(|| task(index, count))).is_err() {
                    shared.panicked.store(true, Ordering::Relaxed);
                }
            }
            shared.pending.0.fetch_sub(1, Ordering::Release);
        }
    }
}

/// Spins, then sleeps, until the generation moves past `seen`; returns it.
fn wait_for_job(shared: &Shared, seen: u64) -> u64 {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let g = shared.generation.0.load(Ordering::Acquire);
        if g != seen {
            return g;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(256) && start.elapsed() > SPIN {
            break;
        }
    }
    let mut guard = lock(&shared.sleep_lock);
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    loop {
        let g = shared.generation.0.load(Ordering::SeqCst);
        if g != seen {
            shared.sleepers.fetch_sub(1, Ordering::SeqCst);
            return g;
        }
        guard = shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_runs_once_and_chunks_cover_every_item() {
        for n in [1, 2, 3, 5] {
            with_threads(n, || {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                let seen_count = AtomicUsize::new(0);
                run(&|i, c| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                    seen_count.store(c, Ordering::Relaxed);
                });
                let c = seen_count.load(Ordering::Relaxed);
                assert!(c == n || c == 1, "count {c} for {n} threads");
                for (i, h) in hits.iter().enumerate().take(c) {
                    assert_eq!(h.load(Ordering::Relaxed), 1, "index {i}");
                }
                let items: Vec<AtomicUsize> = (0..1001).map(|_| AtomicUsize::new(0)).collect();
                for_each_chunk(items.len(), 7, |r| {
                    for i in r {
                        items[i].fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert!(items.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                let mut out = vec![0usize; 103];
                for_each_item_mut(&mut out, 10, |i, item| {
                    assert!(item.len() == 10 || (i == 10 && item.len() == 3));
                    item.iter_mut().for_each(|v| *v += i + 1);
                });
                assert!(out.iter().enumerate().all(|(j, &v)| v == j / 10 + 1));
            });
        }
    }

    #[test]
    fn nested_jobs_run_serially_and_panics_reach_the_caller() {
        with_threads(2, || {
            let inner = AtomicUsize::new(0);
            run(&|_, _| {
                run(&|_, c| {
                    assert_eq!(c, 1);
                    inner.fetch_add(1, Ordering::Relaxed);
                })
            });
            assert!(inner.load(Ordering::Relaxed) >= 1);
            let used = AtomicUsize::new(0);
            let r = catch_unwind(|| {
                run(&|i, c| {
                    used.store(c, Ordering::Relaxed);
                    assert_ne!(i, 1, "worker fails");
                })
            });
            // With two threads (the team may be busy with another test's job,
            // then it is one), index 1 is a worker whose panic is reported.
            assert_eq!(r.is_err(), used.load(Ordering::Relaxed) == 2);
            // The team still works afterwards.
            let ran = AtomicUsize::new(0);
            run(&|_, _| {
                ran.fetch_add(1, Ordering::Relaxed);
            });
            assert!(ran.load(Ordering::Relaxed) >= 1);
        });
    }

    #[test]
    fn serial_sections_use_one_thread() {
        with_threads(2, || {
            serial(|| run(&|i, c| assert_eq!((i, c), (0, 1))));
        });
    }
}
