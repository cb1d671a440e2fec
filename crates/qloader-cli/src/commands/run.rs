//! `qloader run`: a packed model loaded and used — an encoder embeds texts,
//! a decoder generates from a prompt — with `--explain` listing the kernel
//! every tensor runs with.

use std::io::Write;

use anyhow::{bail, Context, Result};
use qloader_runtime::packed::PackedModel;
use qloader_runtime::Sampling;
use serde::Serialize;

use crate::args::RunArgs;
use crate::commands::load;
use crate::output::{texts_or_stdin, write_json};

#[derive(Serialize)]
struct Embedded<'a> {
    text: &'a str,
    embedding: &'a [f32],
}

/// Runs the subcommand.
pub fn run(args: RunArgs) -> Result<()> {
    if args.max_tokens == 0 || args.max_tokens > 1 << 16 {
        bail!("--max-tokens must be between 1 and 65536");
    }
    let options = load::options(&args.load, args.act)?;
    let loaded = load::open(&args.packed, &options)?;
    eprintln!("{}", load::describe(&loaded));
    if args.explain {
        load::explain(&loaded);
    }
    match &loaded.model {
        PackedModel::Encoder(encoder) => {
            // With --explain and no texts, the table is all that was asked for.
            let texts = if args.explain && args.texts.is_empty() {
                Vec::new()
            } else {
                texts_or_stdin(args.texts.clone())?
            };
            let mut embeddings = Vec::with_capacity(texts.len());
            for text in &texts {
                embeddings.push(encoder.embed(text)?);
            }
            match &args.output {
                Some(path) => {
                    let rows: Vec<Embedded<'_>> = texts
                        .iter()
                        .zip(&embeddings)
                        .map(|(text, e)| Embedded { text, embedding: e })
                        .collect();
                    write_json(path, &rows)?;
                    eprintln!("wrote {} embeddings to {}", rows.len(), path.display());
                }
                None => {
                    for (text, e) in texts.iter().zip(&embeddings) {
                        let values: Vec<String> = e.iter().map(|v| format!("{v:.6}")).collect();
                        println!("{text}\t[{}]", values.join(", "));
                    }
                }
            }
        }
        PackedModel::Decoder(session) => {
            if args.texts.is_empty() {
                if args.explain {
                    return Ok(());
                }
                bail!("give a prompt: qloader run MODEL.qlm \"your prompt\"");
            }
            let prompt = args.texts.join(" ");
            let mut stdout = std::io::stdout();
            let mut on_text = |s: &str| {
                let _ = write!(stdout, "{s}");
                let _ = stdout.flush();
            };
            let g = session
                .generate(
                    &prompt,
                    !args.raw,
                    args.max_tokens,
                    Sampling { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 },
                    &mut on_text,
                )
                .context("generating")?;
            println!();
            eprintln!(
                "{} prompt tokens in {:.2} s; {} generated tokens, decode {:.1} tokens/s",
                g.prompt_tokens,
                g.prefill_seconds,
                g.tokens.len(),
                g.decode_tokens_per_second()
            );
            if let Some(path) = &args.output {
                write_json(path, &g)?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
