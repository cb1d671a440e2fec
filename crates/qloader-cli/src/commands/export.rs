//! `qloader export`: a packed decoder written as a GGUF file for llama.cpp,
//! with what happened to each format (moved field for field, widened, or
//! converted) summed up.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use qloader_runtime::packed::export::{export_gguf, ExportOptions, Mapping};

use crate::args::ExportArgs;
use crate::output::human_bytes;

/// Runs the subcommand.
pub fn run(args: ExportArgs) -> Result<()> {
    let options =
        ExportOptions { convert: args.convert, metadata_from: args.metadata_from, plan: args.plan };
    let report = export_gguf(&args.packed, &args.output, &options)
        .with_context(|| format!("exporting {}", args.packed.display()))?;
    // (stored format, GGUF type, how) → (tensors, bytes)
    let mut groups: BTreeMap<(String, &str, String), (usize, usize)> = BTreeMap::new();
    for t in &report.tensors {
        let how = match t.how {
            Mapping::Exact => "fields moved".to_owned(),
            Mapping::Widened(f) => format!("widened exactly to {f}, fields moved"),
            Mapping::Converted => "converted (not exact)".to_owned(),
        };
        let e = groups.entry((t.stored.name(), t.ty.name(), how)).or_default();
        e.0 += 1;
        e.1 += t.bytes;
    }
    println!("| stored | GGUF type | tensors | bytes | how |");
    println!("|---|---|---:|---:|---|");
    for ((stored, ty, how), (n, bytes)) in &groups {
        println!("| {stored} | {ty} | {n} | {} | {how} |", human_bytes(*bytes));
    }
    let converted: Vec<&str> = report
        .tensors
        .iter()
        .filter(|t| t.how == Mapping::Converted)
        .map(|t| t.name.as_str())
        .collect();
    if !converted.is_empty() {
        eprintln!(
            "converted (values differ slightly from the packed model): {}",
            converted.join(", ")
        );
    }
    println!(
        "wrote {} ({}, {} tensors)",
        args.output.display(),
        human_bytes(report.file_bytes as usize),
        report.tensors.len()
    );
    Ok(())
}
