//! `qloader generate`: text from a decoder model, streamed as it is chosen,
//! then the prefill and decode speeds.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context, Result};
use qloader_runtime::{DecoderSession, Sampling};

use crate::args::GenerateArgs;
use crate::output::{count, write_json};

/// Runs the subcommand.
pub fn run(args: GenerateArgs) -> Result<()> {
    if args.max_tokens == 0 || args.max_tokens > 1 << 16 {
        bail!("--max-tokens must be between 1 and 65536");
    }
    if !(args.temperature >= 0.0 && args.temperature.is_finite()) {
        bail!("--temperature must be 0 (greedy) or positive");
    }
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1]");
    }
    let path = args.model.file();
    let verbose = std::io::stderr().is_terminal();
    let mut progress = |done: usize, total: usize| {
        if verbose && done == total {
            eprintln!("loaded {total} blocks");
        }
    };
    let session = DecoderSession::open(&path, args.quant, args.act, &mut progress)
        .with_context(|| format!("loading {}", path.display()))?;
    let sampling = Sampling {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    };
    let mut stdout = std::io::stdout();
    let mut on_text = |s: &str| {
        let _ = write!(stdout, "{s}");
        let _ = stdout.flush();
    };
    let g = session
        .generate(&args.prompt, !args.raw, args.max_tokens, sampling, &mut on_text)
        .context("generating")?;
    println!();
    eprintln!(
        "{} prompt tokens in {:.2} s; {} generated tokens, decode {:.1} tokens/s ({} weights, {} activations, {}){}",
        g.prompt_tokens,
        g.prefill_seconds,
        g.tokens.len(),
        g.decode_tokens_per_second(),
        args.quant,
        args.act,
        count(qloader_runtime::threads(), "thread"),
        if g.stopped_at_eos { "; stopped at end of sequence" } else { "" },
    );
    if let Some(path) = args.json {
        write_json(&path, &g)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
