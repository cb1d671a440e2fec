//! `qloader eval`: quantized (rounded to nearest, or with `--method`)
//! against f32 on the built-in sentence set, as a table (and optionally
//! JSON); or a packed model: an encoder's cosine to
//! its f32 model, a decoder's perplexity.

use std::io::IsTerminal;

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use qloader_format::{fixtures, ActivationFormat, QuantMethod, WeightFormat};
use qloader_runtime::eval::cosine;
use qloader_runtime::packed::PackedModel;
use qloader_runtime::perplexity::Scoring;
use qloader_runtime::sentences::EVAL_SENTENCES;
use qloader_runtime::{evaluate_candidates, EncoderSession, EvalCandidate, EvalReport};
use serde::Serialize;

use crate::args::EvalArgs;
use crate::commands::load;
use crate::commands::method::Method;
use crate::output::{human_bytes, write_json};

/// Runs the subcommand.
pub fn run(args: EvalArgs) -> Result<()> {
    let method = Method::from_args(&args.method, QuantMethod::Rtn)?;
    if let Some(packed) = args.packed.clone() {
        if args.method.method.is_some() {
            bail!("--method quantizes the model in --model; a packed model is already quantized");
        }
        return run_packed(&packed, args);
    }
    let dir = args.model.dir();
    let mut candidates = Vec::with_capacity(args.quant.len());
    let mut calibrations = Vec::new();
    for &format in &args.quant {
        if method.applies_to(format) {
            let (quantization, line) =
                method.quantization(&dir, &format.to_string(), &|_| Some(format))?;
            if let Some(line) = line {
                calibrations.push(format!("{format} ({}): {line}", method.method));
            }
            candidates.push(EvalCandidate { format, quantization });
        } else {
            candidates.push(EvalCandidate::round_to_nearest(format));
        }
    }
    let verbose = std::io::stderr().is_terminal();
    let mut progress = |f: WeightFormat| {
        if verbose {
            eprintln!("embedding {} sentences with {f} weights…", EVAL_SENTENCES.len());
        }
    };
    let report = evaluate_candidates(&dir, candidates, args.act, &EVAL_SENTENCES, &mut progress)
        .with_context(|| format!("evaluating the model in {}", dir.display()))?;
    print_table(&report);
    if !calibrations.is_empty() {
        println!();
        for line in &calibrations {
            println!("{line}");
        }
    }
    if let Some(path) = args.json {
        write_json(&path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// A packed encoder against the f32 model in `--model` on the built-in
/// sentences; a packed decoder's perplexity on `--text`.
fn run_packed(path: &Path, args: EvalArgs) -> Result<()> {
    let options = load::options(&args.load, Some(args.act))?;
    let loaded = load::open(path, &options)?;
    eprintln!("{}", load::describe(&loaded));
    let held: usize = loaded.placements.iter().map(|p| p.bytes).sum();
    match &loaded.model {
        PackedModel::Encoder(encoder) => {
            let dir = args.model.dir();
            let reference = EncoderSession::open(&dir, WeightFormat::F32, ActivationFormat::F32)
                .with_context(|| format!("loading the f32 reference from {}", dir.display()))?;
            let clock = Instant::now();
            let mut cosines = Vec::with_capacity(EVAL_SENTENCES.len());
            for s in EVAL_SENTENCES {
                cosines.push(cosine(&reference.embed(s)?, &encoder.embed(s)?));
            }
            let seconds = clock.elapsed().as_secs_f64();
            let report = PackedEval {
                model: path.display().to_string(),
                reference: dir.display().to_string(),
                bytes: held,
                load_seconds: loaded.load_seconds,
                mean_cosine: cosines.iter().sum::<f64>() / cosines.len() as f64,
                min_cosine: cosines.iter().copied().fold(f64::INFINITY, f64::min),
                perplexity: None,
                seconds,
                tokens_per_second: None,
            };
            println!("model: {} (f32 reference: {})", report.model, report.reference);
            println!("| weights held | mean cosine | min cosine | embed time |");
            println!("|---:|---:|---:|---:|");
            println!(
                "| {} | {:.6} | {:.6} | {:.2} s |",
                human_bytes(held),
                report.mean_cosine,
                report.min_cosine,
                seconds
            );
            if let Some(json) = &args.json {
                write_json(json, &report)?;
            }
        }
        PackedModel::Decoder(session) => {
            let text_path = args.text.clone().unwrap_or_else(fixtures::botchan_text);
            let text = std::fs::read_to_string(&text_path).with_context(|| {
                format!("reading {} (run scripts/fetch-fixtures.sh)", text_path.display())
            })?;
            // The standard window, or the whole context of a model trained
            // for fewer positions.
            let context = session.model.config().context();
            let window = qloader_runtime::perplexity::STANDARD_WINDOW.min(context);
            let scoring =
                if args.llama_cpp_scoring { Scoring::SecondHalf } else { Scoring::AllPositions };
            let p =
                session.perplexity_scored(&text, window, args.windows, scoring, &mut |_, _| {})?;
            println!("model: {}; text: {}", path.display(), text_path.display());
            println!("| weights held | windows | perplexity | mean NLL | time | tokens/s |");
            println!("|---:|---:|---:|---:|---:|---:|");
            println!(
                "| {} | {} × {} | {:.3} | {:.4} | {:.1} s | {:.1} |",
                human_bytes(held),
                p.windows,
                p.window,
                p.perplexity,
                p.mean_nll,
                p.seconds,
                p.tokens_per_second
            );
            if let Some(json) = &args.json {
                let report = PackedEval {
                    model: path.display().to_string(),
                    reference: text_path.display().to_string(),
                    bytes: held,
                    load_seconds: loaded.load_seconds,
                    mean_cosine: f64::NAN,
                    min_cosine: f64::NAN,
                    perplexity: Some(p.perplexity),
                    seconds: p.seconds,
                    tokens_per_second: Some(p.tokens_per_second),
                };
                write_json(json, &report)?;
            }
        }
    }
    Ok(())
}

/// What `eval` measures on a packed model.
#[derive(Serialize)]
struct PackedEval {
    model: String,
    /// The f32 model (encoder) or the text (decoder) it was measured against.
    reference: String,
    bytes: usize,
    load_seconds: f64,
    mean_cosine: f64,
    min_cosine: f64,
    perplexity: Option<f64>,
    seconds: f64,
    /// Scored tokens per second of wall-clock time (decoder).
    tokens_per_second: Option<f64>,
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
