//! `qloader embed`: sentence embeddings of texts given as arguments or on
//! standard input.

use anyhow::{bail, Context, Result};
use qloader_runtime::EncoderSession;
use serde::Serialize;

use crate::args::EmbedArgs;
use crate::output::{texts_or_stdin, write_json};

#[derive(Serialize)]
struct EmbeddingsFile {
    model: String,
    format: String,
    dim: usize,
    embeddings: Vec<TextEmbedding>,
}

#[derive(Serialize)]
struct TextEmbedding {
    text: String,
    embedding: Vec<f32>,
}

/// Runs the subcommand.
pub fn run(args: EmbedArgs) -> Result<()> {
    let texts = texts_or_stdin(args.texts)?;
    if texts.is_empty() {
        bail!("no texts to embed: give them as arguments or one per line on standard input");
    }
    let dir = args.model.dir();
    let format = args.quant;
    let session = EncoderSession::open(&dir, format, args.act)
        .with_context(|| format!("loading model from {}", dir.display()))?;
    let embeddings = session.embed_all(&texts)?;

    match args.output {
        Some(path) => {
            let file = EmbeddingsFile {
                model: dir.display().to_string(),
                format: format.name(),
                dim: session.embedding_dim(),
                embeddings: texts
                    .into_iter()
                    .zip(embeddings)
                    .map(|(text, embedding)| TextEmbedding { text, embedding })
                    .collect(),
            };
            write_json(&path, &file)?;
            eprintln!("wrote {} embeddings to {}", file.embeddings.len(), path.display());
        }
        None => {
            for (text, e) in texts.iter().zip(&embeddings) {
                let values: Vec<String> = e.iter().map(|v| format!("{v:.6}")).collect();
                println!("{text}\t[{}]", values.join(", "));
            }
        }
    }
    Ok(())
}
