//! Text generation with a decoder: the prompt is run through the model in
//! one batch (prefill), then one token at a time against the KV cache
//! (decode) until the end-of-sequence token or the token budget, with the
//! time of each phase measured.

use std::time::Instant;

use qloader_models::decoder::{Decoder, Logits};
use qloader_models::GgufTokenizer;
use serde::Serialize;

use crate::error::Result;
use crate::sampling::{Sampler, Sampling};

/// What a generation produced and how fast.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated token ids (the end-of-sequence token excluded).
    pub tokens: Vec<u32>,
    /// The generated text.
    pub text: String,
    /// Whether generation stopped at the end-of-sequence token.
    pub stopped_at_eos: bool,
    /// Seconds to run the prompt (and pick the first token).
    pub prefill_seconds: f64,
    /// Seconds for the remaining tokens, one forward pass each.
    pub decode_seconds: f64,
}

impl Generation {
    /// Decode speed: generated tokens after the first, per second.
    pub fn decode_tokens_per_second(&self) -> f64 {
        let n = self.tokens.len().saturating_sub(1);
        if n == 0 || self.decode_seconds <= 0.0 {
            0.0
        } else {
            n as f64 / self.decode_seconds
        }
    }
}

/// Generates up to `max_tokens` after `prompt_ids`; `on_token` hears each
/// new token as it is chosen (for streaming).
pub fn generate(
    model: &dyn Decoder,
    tokenizer: &GgufTokenizer,
    prompt_ids: &[u32],
    max_tokens: usize,
    sampling: Sampling,
    on_token: &mut dyn FnMut(u32),
) -> Result<Generation> {
    // Generation ends where the model's context does: every token but the
    // last is fed back.
    let room = (model.config().context() + 1).saturating_sub(prompt_ids.len());
    let max_tokens = max_tokens.min(room);
    let mut cache = model.new_cache(prompt_ids.len() + max_tokens);
    let mut sampler = Sampler::new(sampling);
    let mut tokens = Vec::new();
    let mut stopped_at_eos = false;
    let start = Instant::now();
    let mut logits = model.forward(prompt_ids, &mut cache, Logits::Last)?;
    let mut prefill_seconds = 0.0;
    let decode_start_at = |t: &Instant| t.elapsed().as_secs_f64();
    while tokens.len() < max_tokens {
        let next = sampler.pick(&logits);
        if tokens.is_empty() {
            prefill_seconds = decode_start_at(&start);
        }
        if Some(next) == tokenizer.eos() {
            stopped_at_eos = true;
            break;
        }
        tokens.push(next);
        on_token(next);
        if tokens.len() == max_tokens {
            break;
        }
        logits = model.forward(&[next], &mut cache, Logits::Last)?;
    }
    if tokens.is_empty() {
        prefill_seconds = decode_start_at(&start);
    }
    let decode_seconds = start.elapsed().as_secs_f64() - prefill_seconds;
    Ok(Generation {
        prompt_tokens: prompt_ids.len(),
        text: tokenizer.decode(&tokens)?,
        tokens,
        stopped_at_eos,
        prefill_seconds,
        decode_seconds,
    })
}
