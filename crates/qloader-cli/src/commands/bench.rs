//! `qloader bench kernels`: prints the machine, its measured read bandwidth
//! and a table of kernel timings per thread count.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{bail, Result};
use qloader_hw::kernel_bench::{self, KernelBenchConfig, KernelBenchRow};
use qloader_hw::{bandwidth, cpu, with_threads, TimingBudget};
use serde::Serialize;

use crate::args::BenchKernelsArgs;
use crate::output::write_json;

#[derive(Serialize)]
struct ThreadResult {
    threads: usize,
    read_bandwidth_bytes_per_second: f64,
    rows: Vec<KernelBenchRow>,
}

#[derive(Serialize)]
struct BenchReport {
    cpu: cpu::CpuInfo,
    results: Vec<ThreadResult>,
}

/// Runs `qloader bench kernels`.
pub fn run_kernels(args: BenchKernelsArgs) -> Result<()> {
    if args.batch.iter().any(|&b| b == 0 || b > 4096) {
        bail!("--batch values must be between 1 and 4096");
    }
    let info = cpu::detect();
    let threads = thread_counts(&args.threads, info.cores)?;
    print_cpu(&info);
    let budget =
        TimingBudget { min_total: Duration::from_millis(args.min_time_ms), ..Default::default() };
    let config = KernelBenchConfig {
        shapes: args.shapes.clone(),
        batches: args.batch.clone(),
        formats: args.formats.clone(),
        int8_activations: !args.no_a8,
        budget,
        cold_set_bytes: if args.warm {
            0
        } else {
            kernel_bench::default_cold_set_bytes(info.last_level_cache_bytes)
        },
    };
    let llc =
        info.last_level_cache_bytes.map_or("unknown".to_owned(), |b| format!("{} MiB", b >> 20));
    if args.warm {
        println!("last-level cache: {llc}; weights timed warm (one copy each)");
    } else {
        println!(
            "last-level cache: {llc}; weights timed cold (copies rotated over {} MiB)",
            config.cold_set_bytes >> 20
        );
    }
    let verbose = std::io::stderr().is_terminal();
    let mut results = Vec::new();
    for &t in &threads {
        let (bw, rows) = with_threads(t, || {
            let bw = bandwidth::read_bandwidth(bandwidth::DEFAULT_BYTES, budget);
            let rows = kernel_bench::run(&config, bw, &mut |what| {
                if verbose {
                    eprintln!("[{t} thread(s)] timing {what}…");
                }
            });
            (bw, rows)
        });
        print_table(t, bw, &rows);
        results.push(ThreadResult { threads: t, read_bandwidth_bytes_per_second: bw, rows });
    }
    if let Some(path) = &args.json {
        write_json(path, &BenchReport { cpu: info, results })?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The `--threads` values asked for, or by default 1 and every core.
pub fn thread_counts(requested: &[usize], cores: usize) -> Result<Vec<usize>> {
    if requested.iter().any(|&t| t == 0 || t > 1024) {
        bail!("--threads values must be between 1 and 1024");
    }
    if !requested.is_empty() {
        return Ok(requested.to_vec());
    }
    let mut t = vec![1];
    if cores > 1 {
        t.push(cores);
    }
    Ok(t)
}

/// The CPU: model, cores, features and the kernel tier, one line each.
pub fn print_cpu(info: &cpu::CpuInfo) {
    println!("cpu: {} ({} cores)", info.model, info.cores);
    println!("features: {}; kernel tier: {}", info.features.join(" "), info.kernel_tier);
}

fn print_table(threads: usize, bandwidth: f64, rows: &[KernelBenchRow]) {
    println!();
    println!("## {threads} thread(s): measured read bandwidth {:.2} GB/s", bandwidth / 1e9);
    println!();
    if rows.iter().any(|r| r.side_by_side_bandwidth.is_some()) {
        println!(
            "(\"read bw\": a streaming read of the same bytes from memory, timed in turn with \
             each case; \"% of bw\" is against it)"
        );
        println!();
    }
    println!("| shape | batch | format | time | Gweights/s | GB/s | read bw | % of bw | × f32 | × int8 | unpack overhead |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let vs_int8 = r.speedup_vs_int8.map_or("–".to_owned(), |v| format!("{v:.2}"));
        let overhead =
            r.unpack_overhead.map_or("–".to_owned(), |v| format!("{:+.1} %", v * 100.0));
        let beside =
            r.side_by_side_bandwidth.map_or("–".to_owned(), |b| format!("{:.2}", b / 1e9));
        println!(
            "| {}×{} | {} | {} | {} | {:.2} | {:.2} | {} | {:.0} % | {:.2} | {} | {} |",
            r.rows,
            r.cols,
            r.batch,
            r.label(),
            human_time(r.seconds),
            r.weights_per_second / 1e9,
            r.bytes_per_second / 1e9,
            beside,
            r.bandwidth_share * 100.0,
            r.speedup_vs_f32,
            vs_int8,
            overhead,
        );
    }
}

fn human_time(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.1} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}
