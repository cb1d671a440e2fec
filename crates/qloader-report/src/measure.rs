//! Measuring one packed model end to end: a decoder's perplexity on the
//! evaluation text and its decode speed; an encoder's embeddings against
//! the f32 model's (mean cosine) and a retrieval check (does each sentence
//! find the same nearest neighbour among the others as with f32?).

use std::path::Path;

use qloader_format::ActivationFormat;
use qloader_runtime::eval::cosine;
use qloader_runtime::packed::{default_activations, open_packed, LoadOptions, PackedModel};
use qloader_runtime::perplexity::PerplexityReport;
use qloader_runtime::{generate, Sampling};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What the evaluation compares against.
pub enum Reference {
    /// A decoder: the evaluation text's tokens are scored.
    Text {
        /// The text.
        text: String,
        /// Windows of [`WINDOW`] tokens scored.
        windows: usize,
    },
    /// An encoder: the f32 model's embeddings of the evaluation sentences.
    Embeddings(Vec<Vec<f32>>),
}

/// Tokens per perplexity window.
pub const WINDOW: usize = 512;
/// Tokens generated to time decoding.
pub const DECODE_TOKENS: usize = 64;
/// The prompt decoding is timed from.
pub const DECODE_PROMPT: &str = "Once upon a time, in a small village by the sea,";

/// One packed model's measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Decoder: perplexity of the evaluation text.
    pub perplexity: Option<f64>,
    /// Encoder: mean cosine to the f32 embeddings.
    pub mean_cosine: Option<f64>,
    /// Encoder: share of sentences whose nearest neighbour matches f32's.
    pub retrieval_agreement: Option<f64>,
    /// The degradation the frontier plots: `ln(perplexity)` (mean NLL) for
    /// a decoder, `1 − mean cosine` for an encoder.
    pub degradation: f64,
    /// Decoder: tokens per second while decoding; encoder: sentences per
    /// second.
    pub speed: f64,
    /// Seconds to load the packed file.
    pub load_seconds: f64,
}

impl Measured {
    /// A decoder's perplexity alone (no speed, no load time): what the
    /// reference and llama.cpp's files, run from their source files, get.
    pub fn perplexity_only(p: &PerplexityReport) -> Self {
        Self {
            perplexity: Some(p.perplexity),
            mean_cosine: None,
            retrieval_agreement: None,
            degradation: p.mean_nll,
            speed: 0.0,
            load_seconds: 0.0,
        }
    }
}

/// Measures the packed model at `path` against `reference`; `sentences`
/// are the encoder's evaluation set.
///
/// Quality is measured with `f32` activations (what the weights alone
/// cost); a decoder's speed after switching the same loaded model to the
/// runtime's default activations, as `qloader run` decodes (int8).
pub fn measure(path: &Path, reference: &Reference, sentences: &[&str]) -> Result<Measured> {
    let options =
        LoadOptions { activations: Some(ActivationFormat::F32), ..LoadOptions::default() };
    let loaded = open_packed(path, &options, &mut |_| {})?;
    let load_seconds = loaded.load_seconds;
    match (loaded.model, reference) {
        (PackedModel::Decoder(mut session), Reference::Text { text, windows }) => {
            let p = session.perplexity(text, WINDOW, *windows, &mut |_, _| {})?;
            session.model.set_activations(default_activations(true));
            let ids = session.tokenizer.encode(DECODE_PROMPT)?;
            let greedy = Sampling { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 };
            let g = generate(
                session.model.as_ref(),
                &session.tokenizer,
                &ids,
                DECODE_TOKENS,
                greedy,
                &mut |_| {},
            )?;
            Ok(Measured {
                perplexity: Some(p.perplexity),
                mean_cosine: None,
                retrieval_agreement: None,
                degradation: p.mean_nll,
                speed: g.decode_tokens_per_second(),
                load_seconds,
            })
        }
        (PackedModel::Encoder(encoder), Reference::Embeddings(f32_embeddings)) => {
            let clock = std::time::Instant::now();
            let embeddings = sentences
                .iter()
                .map(|s| encoder.embed(s))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let seconds = clock.elapsed().as_secs_f64();
            let cosines: Vec<f64> =
                embeddings.iter().zip(f32_embeddings).map(|(a, b)| cosine(a, b)).collect();
            let mean = cosines.iter().sum::<f64>() / cosines.len().max(1) as f64;
            let agree = nearest_neighbours(&embeddings)
                .iter()
                .zip(nearest_neighbours(f32_embeddings))
                .filter(|(a, b)| **a == *b)
                .count();
            Ok(Measured {
                perplexity: None,
                mean_cosine: Some(mean),
                retrieval_agreement: Some(agree as f64 / embeddings.len().max(1) as f64),
                degradation: 1.0 - mean,
                speed: sentences.len() as f64 / seconds.max(1e-9),
                load_seconds,
            })
        }
        _ => Err(crate::error::ReportError::Mismatch(format!(
            "{}: the packed model is not the kind of model the reference is for",
            path.display()
        ))),
    }
}

/// For each embedding, the index of the most similar other one.
pub fn nearest_neighbours(embeddings: &[Vec<f32>]) -> Vec<usize> {
    (0..embeddings.len())
        .map(|i| {
            (0..embeddings.len())
                .filter(|&j| j != i)
                .max_by(|&a, &b| {
                    cosine(&embeddings[i], &embeddings[a])
                        .total_cmp(&cosine(&embeddings[i], &embeddings[b]))
                })
                .unwrap_or(i)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_neighbours_by_cosine() {
        let e = vec![vec![1.0, 0.0], vec![0.9, 0.1], vec![0.0, 1.0], vec![0.1, 1.0]];
        assert_eq!(nearest_neighbours(&e), vec![1, 0, 3, 2]);
    }
}
