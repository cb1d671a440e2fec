//! `qloader perplexity`: a decoder's perplexity on a text for each weight
//! format, as a table (and optionally JSON).

use std::io::IsTerminal;

use anyhow::{bail, Context, Result};
use qloader_format::{fixtures, QuantMethod};
use qloader_runtime::{DecoderSession, PerplexityReport};
use serde::Serialize;

use crate::args::PerplexityArgs;
use crate::commands::method::Method;
use crate::output::{count, human_bytes, write_json};

#[derive(Serialize)]
struct Row {
    format: String,
    linear_bytes: usize,
    bits_per_weight: f64,
    report: PerplexityReport,
}

/// Runs the subcommand.
pub fn run(args: PerplexityArgs) -> Result<()> {
    if args.window < 2 || args.window > 1 << 16 || args.windows == 0 {
        bail!("--window must be between 2 and 65536 and --windows at least 1");
    }
    let path = args.model.file();
    let text_path = args.text.clone().unwrap_or_else(fixtures::botchan_text);
    let text = std::fs::read_to_string(&text_path).with_context(|| {
        format!("reading {} (run scripts/fetch-fixtures.sh for the default)", text_path.display())
    })?;
    let method = Method::from_args(&args.method, QuantMethod::Rtn)?;
    let verbose = std::io::stderr().is_terminal();
    let mut rows = Vec::new();
    let mut calibrations = Vec::new();
    for &format in &args.quant {
        let (quantization, line) = if method.applies_to(format) {
            method.quantization(&path, &format.to_string(), &|_| Some(format))?
        } else {
            Default::default()
        };
        let label = match line {
            Some(line) => {
                calibrations.push(format!("{format} ({}): {line}", method.method));
                format!("{format} ({})", method.method)
            }
            None => format.to_string(),
        };
        let session =
            DecoderSession::open_quantized(&path, format, args.act, quantization, &mut |_, _| {})
                .with_context(|| format!("loading {}", path.display()))?;
        let mut progress = |done: usize, total: usize| {
            if verbose && done < total {
                eprint!("\r{format}: window {}/{total}", done + 1);
            }
        };
        let report = session
            .perplexity(&text, args.window, args.windows, &mut progress)
            .context("scoring")?;
        if verbose {
            eprintln!();
        }
        let summary = session.model.summary();
        rows.push(Row {
            format: label,
            linear_bytes: summary.quantized_bytes(),
            bits_per_weight: summary.quantized_bytes() as f64 * 8.0
                / summary.quantized_params().max(1) as f64,
            report,
        });
    }
    println!("model: {}", path.display());
    println!("text: {}", text_path.display());
    if let Some(r) = rows.first() {
        println!(
            "windows: {} × {} tokens ({} predictions scored); activations {}; {}",
            r.report.windows,
            r.report.window,
            r.report.scored,
            args.act,
            count(qloader_runtime::threads(), "thread")
        );
    }
    println!();
    println!(
        "| format | quantized weights | bits/weight | perplexity | mean NLL | time | tokens/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.3} | {:.4} | {:.1} s | {:.1} |",
            r.format,
            human_bytes(r.linear_bytes),
            r.bits_per_weight,
            r.report.perplexity,
            r.report.mean_nll,
            r.report.seconds,
            r.report.tokens_per_second
        );
    }
    if !calibrations.is_empty() {
        println!();
        for line in &calibrations {
            println!("{line}");
        }
    }
    if let Some(path) = args.json {
        write_json(&path, &rows)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
