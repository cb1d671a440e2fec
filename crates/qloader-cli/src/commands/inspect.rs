//! `qloader inspect`: a packed model's header readably — what model, which
//! plan, how many bytes in each format — optionally every tensor, and
//! optionally a full checksum pass.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use qloader_format::PackedFile;

use crate::args::InspectArgs;
use crate::output::human_bytes;

/// Runs the subcommand.
pub fn run(args: InspectArgs) -> Result<()> {
    let file = PackedFile::open(&args.packed)
        .with_context(|| format!("opening {}", args.packed.display()))?;
    println!("file: {} ({})", file.path().display(), human_bytes(file.file_len()));
    println!("written by: {}", file.created_by());
    println!("architecture: {}", file.architecture());
    match file.plan() {
        Some(plan) => println!("plan: {} (sha256 {})", plan.path, plan.sha256),
        None => println!("plan: none recorded (packed with one format)"),
    }
    println!("config: {}", serde_json::to_string(file.config()).unwrap_or_default());
    let blobs: Vec<String> = file
        .blob_names()
        .map(|n| format!("{n} ({})", human_bytes(file.blob(n).map_or(0, <[u8]>::len))))
        .collect();
    println!("blobs: {}", blobs.join(", "));
    println!();

    let mut per_format: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for t in file.tensors() {
        let e = per_format.entry(t.format().to_string()).or_default();
        e.0 += 1;
        e.1 += t.rows() * t.cols();
        e.2 += t.byte_len();
    }
    let total: usize = per_format.values().map(|e| e.2).sum();
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
    println!("| all | {} | | {} | | |", file.tensors().len(), human_bytes(total));
    if args.tensors {
        println!();
        println!("| tensor | shape | format | bytes | crc32 |");
        println!("|---|---|---|---:|---|");
        for t in file.tensors() {
            println!(
                "| {} | {}×{} | {} | {} | {:08x} |",
                t.name(),
                t.rows(),
                t.cols(),
                t.format(),
                human_bytes(t.byte_len()),
                t.crc32()
            );
        }
    }
    if args.verify {
        let clock = Instant::now();
        file.verify_all()?;
        println!();
        println!(
            "checksums: all {} blobs and {} tensors match ({:.2} s)",
            file.blob_names().len(),
            file.tensors().len(),
            clock.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
