//! A decoder model ready to use: a decoder of any supported family (from a
//! GGUF file or a Hugging Face checkpoint directory) with every quantizable
//! tensor in one chosen format, and its tokenizer.

use std::path::Path;

use qloader_format::{ActivationFormat, WeightFormat};
use qloader_models::{decoder, Decoder, GgufTokenizer, ReplacingSource};

use crate::error::Result;
use crate::generate::{generate, Generation};
use crate::packed::Quantization;
use crate::perplexity::{perplexity_scored, PerplexityReport, Scoring};
use crate::sampling::Sampling;

/// A loaded decoder and its tokenizer.
pub struct DecoderSession {
    /// The model.
    pub model: Box<dyn Decoder>,
    /// Its tokenizer.
    pub tokenizer: GgufTokenizer,
}

impl DecoderSession {
    /// Opens the decoder at `path` (a GGUF file or a Hugging Face checkpoint
    /// directory) with every quantizable tensor stored in
    /// `format` and linear-layer activations in `act`; `progress(done, total)`
    /// hears about the blocks as they load.
    pub fn open(
        path: &Path,
        format: WeightFormat,
        act: ActivationFormat,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        Self::open_quantized(path, format, act, Quantization::default(), progress)
    }

    /// Like [`DecoderSession::open`], with the codes made as `quantization`
    /// says (its replacements stored as they are, the other tensors'
    /// grids weighted by its importance vectors).
    pub fn open_quantized(
        path: &Path,
        format: WeightFormat,
        act: ActivationFormat,
        quantization: Quantization,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let checkpoint = decoder::open_checkpoint(path)?;
        // Before any weight is read: every token needs an embedding row.
        let tokenizer = checkpoint.tokenizer()?;
        let choose = |_: &str| format;
        let mut tensors = checkpoint.source(&choose, quantization.importance.as_ref());
        let mut source = ReplacingSource::new(tensors.as_mut(), quantization.replacements);
        let mut model = checkpoint.config().build(&mut source, progress)?;
        model.set_activations(act);
        model.prepare_products();
        Ok(Self { model, tokenizer })
    }

    /// Generates from `prompt` (wrapped in the model's chat template when
    /// `chat`), reporting each new token's text to `on_text`.
    pub fn generate(
        &self,
        prompt: &str,
        chat: bool,
        max_tokens: usize,
        sampling: Sampling,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let text = if chat { self.tokenizer.chat_prompt(prompt) } else { prompt.to_owned() };
        let ids = self.tokenizer.encode(&text)?;
        // Decode the growing output so multi-byte characters split over
        // tokens come out whole.
        let mut out = Vec::new();
        let mut shown = 0;
        let tokenizer = &self.tokenizer;
        let mut on_token = |id: u32| {
            out.push(id);
            if let Ok(s) = tokenizer.decode(&out) {
                if s.len() > shown && s.is_char_boundary(shown) && !s.ends_with('\u{fffd}') {
                    on_text(&s[shown..]);
                    shown = s.len();
                }
            }
        };
        generate(self.model.as_ref(), tokenizer, &ids, max_tokens, sampling, &mut on_token)
    }

    /// Perplexity of `text` over `windows` windows of `window` tokens.
    pub fn perplexity(
        &self,
        text: &str,
        window: usize,
        windows: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<PerplexityReport> {
        self.perplexity_scored(text, window, windows, Scoring::AllPositions, progress)
    }

    /// [`DecoderSession::perplexity`], scoring the predictions `scoring`
    /// picks.
    pub fn perplexity_scored(
        &self,
        text: &str,
        window: usize,
        windows: usize,
        scoring: Scoring,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<PerplexityReport> {
        let ids = self.tokenizer.encode(text)?;
        // A model trained for fewer positions is scored on windows of its
        // whole context (the report says which window it used).
        let window = window.min(self.model.config().context());
        perplexity_scored(self.model.as_ref(), &ids, window, windows, scoring, progress)
    }
}
