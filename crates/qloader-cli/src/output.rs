//! Writing results: JSON files (atomically) and human-readable sizes.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// Serialises `value` as pretty JSON into `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    qloader_format::atomic_file::write_json_atomic(path, value)
        .with_context(|| format!("writing {}", path.display()))
}

/// `texts`, or, if there are none, one text per line of standard input.
pub fn texts_or_stdin(texts: Vec<String>) -> Result<Vec<String>> {
    if !texts.is_empty() {
        return Ok(texts);
    }
    if std::io::stdin().is_terminal() {
        eprintln!("reading texts, one per line (end with Ctrl-D)…");
    }
    std::io::stdin()
        .lock()
        .lines()
        .collect::<std::io::Result<Vec<_>>>()
        .context("reading texts from standard input")
}

/// Prints tensors, weights, bytes, bits per weight and share of the bytes
/// per format, from `(format, weights, bytes)` per tensor, with a total row.
pub fn print_format_table(tensors: impl IntoIterator<Item = (String, usize, usize)>) {
    let mut per_format: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for (format, params, bytes) in tensors {
        let e = per_format.entry(format).or_default();
        e.0 += 1;
        e.1 += params;
        e.2 += bytes;
    }
    let total: usize = per_format.values().map(|e| e.2).sum();
    let count: usize = per_format.values().map(|e| e.0).sum();
    println!("| format | tensors | weights | bytes | bits/weight | share |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (format, (n, params, bytes)) in &per_format {
        println!(
            "| {format} | {n} | {params} | {} | {:.2} | {:.1}% |",
            human_bytes(*bytes),
            *bytes as f64 * 8.0 / (*params).max(1) as f64,
            100.0 * *bytes as f64 / total.max(1) as f64
        );
    }
    println!("| all | {count} | | {} | | |", human_bytes(total));
}

/// `1234567` → `"1.18 MiB"`.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// `(1, "thread")` → `"1 thread"`, `(2, "thread")` → `"2 threads"`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// How many tensors are in each format, as `"129 int3k, 49 int4k"` (formats
/// in name order).
pub fn format_counts(formats: impl IntoIterator<Item = impl std::fmt::Display>) -> String {
    let mut per_format: std::collections::BTreeMap<String, usize> = Default::default();
    for f in formats {
        *per_format.entry(f.to_string()).or_default() += 1;
    }
    per_format.iter().map(|(f, n)| format!("{n} {f}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.00 MiB");
        assert_eq!(count(1, "thread"), "1 thread");
        assert_eq!(count(2, "thread"), "2 threads");
    }
}
