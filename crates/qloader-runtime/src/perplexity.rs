//! Perplexity of a decoder on a token stream: the stream is cut into
//! windows of `window` tokens, each run from an empty cache, and every
//! position after the first of a window is scored by the log-probability the
//! model gave the true next token. `exp(mean negative log-likelihood)`.
//! [`Scoring::SecondHalf`] scores as llama.cpp's `llama-perplexity` does —
//! only the predictions of the second half of each window — so that a GGUF
//! file's figure there and a packed model's here can be compared.

use std::time::Instant;

use qloader_models::decoder::{Decoder, Logits};
use serde::Serialize;

use crate::error::{Result, RuntimeError};

/// The standard evaluation set: windows of this many tokens…
pub const STANDARD_WINDOW: usize = 512;
/// …and this many windows, from the start of the evaluation text.
pub const STANDARD_WINDOWS: usize = 32;

/// Result of a perplexity run.
#[derive(Debug, Clone, Serialize)]
pub struct PerplexityReport {
    /// Windows evaluated.
    pub windows: usize,
    /// Tokens per window.
    pub window: usize,
    /// Predictions scored.
    pub scored: usize,
    /// Mean negative log-likelihood per scored token (nats).
    pub mean_nll: f64,
    /// `exp(mean_nll)`.
    pub perplexity: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Scored predictions per second of wall-clock time.
    pub tokens_per_second: f64,
}

/// Which predictions of a window are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scoring {
    /// Every one (of tokens 2 to `window`).
    #[default]
    AllPositions,
    /// Those made with at least half a window of context (of tokens
    /// `window / 2 + 2` to `window`), as llama.cpp's `llama-perplexity`.
    SecondHalf,
}

/// Perplexity over the first `windows` whole windows of `tokens`, every
/// prediction scored; `progress(done, total)` hears about each window.
pub fn perplexity(
    model: &dyn Decoder,
    tokens: &[u32],
    window: usize,
    windows: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PerplexityReport> {
    perplexity_scored(model, tokens, window, windows, Scoring::AllPositions, progress)
}

/// [`perplexity`], scoring the predictions `scoring` picks.
pub fn perplexity_scored(
    model: &dyn Decoder,
    tokens: &[u32],
    window: usize,
    windows: usize,
    scoring: Scoring,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PerplexityReport> {
    if window < 2 {
        return Err(RuntimeError::EmptyEvaluation("a window needs at least two tokens"));
    }
    let windows = windows.min(tokens.len() / window);
    if windows == 0 {
        return Err(RuntimeError::EmptyEvaluation("the text is shorter than one window"));
    }
    let vocab = model.config().vocab();
    let first = match scoring {
        Scoring::AllPositions => 0,
        Scoring::SecondHalf => window / 2,
    };
    let start = Instant::now();
    let (mut nll, mut scored) = (0.0f64, 0usize);
    for w in 0..windows {
        progress(w, windows);
        let ids = &tokens[w * window..(w + 1) * window];
        let mut cache = model.new_cache(window);
        let logits = model.forward(ids, &mut cache, Logits::All)?;
        for (row, &next) in logits.chunks_exact(vocab).zip(&ids[1..]).skip(first) {
            nll -= log_softmax_at(row, next as usize);
            scored += 1;
        }
    }
    progress(windows, windows);
    let mean_nll = nll / scored as f64;
    let seconds = start.elapsed().as_secs_f64();
    Ok(PerplexityReport {
        windows,
        window,
        scored,
        mean_nll,
        perplexity: mean_nll.exp(),
        seconds,
        tokens_per_second: scored as f64 / seconds.max(f64::MIN_POSITIVE),
    })
}

/// `log softmax(row)[i]`, in f64 for the sum.
fn log_softmax_at(row: &[f32], i: usize) -> f64 {
    let (max, log_z) = qloader_kernels::log_sum_exp::log_normaliser(row);
    (row[i] - max) as f64 - log_z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_of_uniform_row() {
        let row = [3.0f32; 4];
        assert!((log_softmax_at(&row, 2) - (0.25f64).ln()).abs() < 1e-12);
        let row = [0.0f32, 2.0f32.ln()];
        assert!((log_softmax_at(&row, 1) - (2.0f64 / 3.0).ln()).abs() < 1e-7);
    }
}
