//! `qloader inspect`: a packed model's header readably — what model, which
//! plan (or plans, in a multi-plan file), how many bytes in each format —
//! optionally every tensor, and
//! optionally a full checksum pass. Given an original model instead (a GGUF
//! file or a model directory), the family QLoader reads it as and its
//! configuration, or which families exist if none reads it.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use qloader_format::{PackedFile, TensorView};
use qloader_models::bert::ModelDir;
use qloader_models::family::{self, Kind};

use crate::args::InspectArgs;
use crate::output::{format_counts, human_bytes, print_format_table};

/// Runs the subcommand.
pub fn run(args: InspectArgs) -> Result<()> {
    if is_original_model(&args.packed) {
        return inspect_model(&args.packed);
    }
    let file = PackedFile::open(&args.packed)
        .with_context(|| format!("opening {}", args.packed.display()))?;
    println!("file: {} ({})", file.path().display(), human_bytes(file.file_len()));
    println!("written by: {}", file.created_by());
    // A decoder's header names its family (Llama, Qwen, Gemma, …); files
    // packed before families existed are Llama.
    let family = file.config()["model"]["family"].as_str();
    match (file.architecture(), family) {
        ("llama", family) => {
            println!("architecture: llama (decoder family {})", family.unwrap_or("llama"))
        }
        (architecture, _) => println!("architecture: {architecture}"),
    }
    let multi = file.plans().len() > 1;
    match file.plan() {
        _ if multi => println!("plans: {} (format version {})", file.plans().len(), file.version()),
        Some(plan) => println!("plan: {} (sha256 {})", plan.path, plan.sha256),
        None => println!("plan: none recorded (packed with one format)"),
    }
    match file.quantization() {
        Some(q) => match &q.calibration {
            Some(calibration) => println!("codes: {} ({calibration})", q.method),
            None => println!("codes: {}", q.method),
        },
        None => println!("codes: not recorded (packed before methods were recorded)"),
    }
    println!("config: {}", serde_json::to_string(file.config()).unwrap_or_default());
    let blobs: Vec<String> = file
        .blob_names()
        .map(|n| format!("{n} ({})", human_bytes(file.blob(n).map_or(0, <[u8]>::len))))
        .collect();
    println!("blobs: {}", blobs.join(", "));
    println!();

    if multi {
        print_plans(&file);
        println!();
        println!("what the file holds, every variant of every tensor:");
        println!();
    }
    print_format_table(
        file.all_variants().map(|t| (variant_label(&t), t.rows() * t.cols(), t.byte_len())),
    );
    if args.tensors {
        println!();
        println!(
            "| tensor | shape | format | bytes | crc32 |{}",
            if multi { " plans |" } else { "" }
        );
        println!("|---|---|---|---:|---|{}", if multi { "---|" } else { "" });
        for t in file.all_variants() {
            let plans: Vec<&str> = file
                .plans()
                .filter(|p| p.tensors().any(|u| u.name() == t.name() && u.format() == t.format()))
                .map(|p| p.name())
                .collect();
            println!(
                "| {} | {}×{} | {} | {} | {:08x} |{}",
                t.name(),
                t.rows(),
                t.cols(),
                variant_label(&t),
                human_bytes(t.byte_len()),
                t.crc32(),
                if multi { format!(" {} |", plans.join(", ")) } else { String::new() }
            );
        }
    }
    if args.verify {
        let clock = Instant::now();
        file.verify_all()?;
        println!();
        println!(
            "checksums: all {} blobs and {} tensor variants match ({:.2} s)",
            file.blob_names().len(),
            file.all_variants().count(),
            clock.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// A variant's format, and for a nested one the base its planes refine
/// (`int4 (planes on int3k)`).
fn variant_label(t: &TensorView<'_>) -> String {
    match t.base() {
        Some(base) => format!("{} (planes on {})", t.format(), base.format()),
        None => t.format().to_string(),
    }
}

/// The plans of a multi-plan file: what each loads and what it predicted.
fn print_plans(file: &PackedFile) {
    let largest = file.plans().map(|p| p.bytes()).max().unwrap_or(0).max(1);
    println!();
    println!("| plan | bits/weight | bytes it loads | predicted loss | formats | plan file |");
    println!("|---|---:|---:|---:|---|---|");
    for p in file.plans() {
        let formats = format_counts(
            p.tensors()
                .filter(|t| t.variant_count() > 1 || t.rows() > 1)
                .map(|t| variant_label(&t)),
        );
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            p.name(),
            p.bits_per_weight().map_or("—".to_owned(), |b| format!("{b:.3}")),
            human_bytes(p.bytes() as usize),
            p.predicted_loss().map_or("—".to_owned(), |l| format!("{l:.4}")),
            formats,
            p.plan_ref().map_or("—".to_owned(), |r| r.path.clone()),
        );
    }
    println!();
    println!(
        "file {} = {:.3}× the largest plan's bytes",
        human_bytes(file.file_len()),
        file.file_len() as f64 / largest as f64
    );
}

/// Whether `path` is an original model (a directory, or a GGUF file) rather
/// than a packed one.
fn is_original_model(path: &Path) -> bool {
    path.is_dir() || super::bench_model::is_gguf(path).unwrap_or(false)
}

/// Prints the family QLoader reads the model at `path` as, and its
/// configuration.
fn inspect_model(path: &Path) -> Result<()> {
    let family = family::detect(path).with_context(|| format!("inspecting {}", path.display()))?;
    let input = if path.is_dir() { "model directory" } else { "GGUF file" };
    println!("model: {} ({input})", path.display());
    match family.kind {
        Kind::Decoder(design) => {
            let checkpoint = design.open_checkpoint(family, path)?;
            let config = checkpoint.config();
            println!("family: {} (decoder)", family.name);
            println!("config: {}", config.to_json());
            let names = config.tensor_names();
            println!(
                "quantizable tensors: {} (every block's linear layers and the head)",
                names.len()
            );
        }
        Kind::Encoder => {
            let dir = ModelDir::open(path)?;
            println!("family: {} (encoder)", family.name);
            println!("config: {:?}", dir.config);
            let names = qloader_models::bert::tensor_names(&dir.config);
            println!(
                "quantizable tensors: {} (the linear layers and the word embeddings)",
                names.len() + 1
            );
        }
    }
    Ok(())
}
