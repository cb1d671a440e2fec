//! `qloader eval`: quantized against f32 on the built-in sentence set, as a
//! table (and optionally JSON).

use std::io::IsTerminal;

use anyhow::{Context, Result};
use qloader_format::WeightFormat;
use qloader_runtime::sentences::EVAL_SENTENCES;
use qloader_runtime::{evaluate, EvalReport};

use crate::args::EvalArgs;
use crate::output::{human_bytes, write_json};

/// Runs the subcommand.
pub fn run(args: EvalArgs) -> Result<()> {
    let dir = args.model.dir();
    let formats = args.quant.clone();
    let verbose = std::io::stderr().is_terminal();
    let mut progress = |f: WeightFormat| {
        if verbose {
            eprintln!("embedding {} sentences with {f} weights…", EVAL_SENTENCES.len());
        }
    };
    let report = evaluate(&dir, &formats, args.act, &EVAL_SENTENCES, &mut progress)
        .with_context(|| format!("evaluating the model in {}", dir.display()))?;
    print_table(&report);
    if let Some(path) = args.json {
        write_json(&path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_table(report: &EvalReport) {
    println!("model: {}", report.model);
    println!(
        "sentences: {} (built-in set); cosine is against the f32 embeddings",
        report.sentences
    );
    println!();
    println!(
        "| format | linear weights | bits/weight | whole model | mean cosine | min cosine | embed time |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &report.rows {
        println!(
            "| {} | {} | {:.2} | {} | {:.6} | {:.6} | {:.2} s |",
            r.format,
            human_bytes(r.linear_bytes),
            r.bits_per_weight,
            human_bytes(r.total_bytes),
            r.mean_cosine,
            r.min_cosine,
            r.embed_seconds
        );
    }
}
