//! The tables `qloader bench model` prints: tests down and thread counts
//! across, or with llama.cpp one row per test and thread count with both
//! speeds and their ratio.

use qloader_runtime::bench::{Comparison, Speed, TestResult};

use crate::output::count;

/// `median (min–max)` tokens per second.
fn speed(s: &Speed) -> String {
    format!("{:.1} ({:.1}–{:.1})", s.median, s.min, s.max)
}

/// Tests down, thread counts across.
pub fn print_table(results: &[TestResult], threads: &[usize]) {
    let header: Vec<String> = threads.iter().map(|&t| count(t, "thread")).collect();
    println!("| test (tokens/s) | {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(threads.len()));
    let mut names: Vec<&str> = Vec::new();
    for r in results {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    for name in names {
        let cells: Vec<String> = threads
            .iter()
            .map(|&t| {
                results
                    .iter()
                    .find(|r| r.name == name && r.threads == t)
                    .map_or("–".to_owned(), |r| speed(&r.tokens_per_second))
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}

/// One row per test and thread count: ours, llama.cpp's, the ratio.
pub fn print_comparison(
    comparisons: &[Comparison],
    threads: &[usize],
    ours: &[TestResult],
    theirs: &[TestResult],
) {
    println!("| test | threads | qloader tok/s | llama.cpp tok/s | qloader / llama.cpp |");
    println!("|---|---:|---:|---:|---:|");
    let find = |set: &[TestResult], c: &Comparison| {
        set.iter()
            .find(|r| r.test == c.test && r.threads == c.threads)
            .map_or("–".to_owned(), |r| speed(&r.tokens_per_second))
    };
    let mut rows: Vec<&Comparison> = comparisons.iter().collect();
    // Tests in the order run, each at every thread count.
    rows.sort_by_key(|c| {
        let first = comparisons.iter().position(|o| o.test == c.test).unwrap_or(0);
        (first, threads.iter().position(|&t| t == c.threads).unwrap_or(0))
    });
    for c in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            c.name,
            c.threads,
            find(ours, c),
            find(theirs, c),
            c.ratio.map_or("–".to_owned(), |r| format!("{r:.2}×"))
        );
    }
}
