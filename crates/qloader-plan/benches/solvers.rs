//! Criterion benchmarks of the solvers on synthetic instances: the greedy
//! (with its bound) on 1,000 items × 8 choices, the Lagrangian bound alone
//! on the same, the exact solver on 211 items × 5 choices (a small
//! decoder's linear layers). Budgets are a quarter and a half of the way
//! from the smallest plan to the least-loss one.
//!
//! `cargo bench -p qloader-plan` (add `-- --quick` for a short run).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use qloader_plan::{exact, greedy, lagrangian_bound, synthetic, Limits, Problem};

fn budget(problem: &Problem, fraction: f64) -> Limits {
    let (lo, hi) = (problem.min_bytes(), problem.max_useful_bytes());
    Limits::bytes(lo + ((hi - lo) as f64 * fraction) as u64)
}

fn solvers(c: &mut Criterion) {
    let large = synthetic(1000, 8, 1);
    let small = synthetic(211, 5, 1);
    let mut group = c.benchmark_group("plan");
    for fraction in [0.25, 0.5] {
        let limits = budget(&large, fraction);
        group.bench_with_input(BenchmarkId::new("greedy_1000x8", fraction), &limits, |b, l| {
            b.iter(|| greedy(&large, l).expect("feasible budget"))
        });
        group.bench_with_input(BenchmarkId::new("bound_1000x8", fraction), &limits, |b, l| {
            b.iter(|| lagrangian_bound(&large, l).expect("feasible budget"))
        });
        let limits = budget(&small, fraction);
        group.bench_with_input(BenchmarkId::new("exact_211x5", fraction), &limits, |b, l| {
            b.iter(|| exact(&small, l).expect("feasible budget"))
        });
    }
    // Two limits: latency halfway between the fastest plan and the
    // least-loss plan's.
    let limits = budget(&large, 0.5);
    let fastest = large.min_latency();
    let slowest = large.evaluate(&large.least_loss_picks()).expect("valid picks").latency;
    let limits = limits.with_latency(fastest + 0.5 * (slowest - fastest));
    group.bench_function("greedy_1000x8_latency", |b| {
        b.iter(|| greedy(&large, &limits).expect("feasible budget"))
    });
    group.finish();
}

criterion_group!(benches, solvers);
criterion_main!(benches);
