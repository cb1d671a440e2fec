//! A decoder model ready to use: the GGUF file's Llama-family model with
//! every quantizable tensor in one chosen format, and its tokenizer.

use std::path::Path;

use qloader_format::gguf::GgufFile;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_models::llama::{GgufSource, LlamaConfig};
use qloader_models::{GgufTokenizer, LlamaModel, ReplacingSource};

use crate::error::Result;
use crate::generate::{generate, Generation};
use crate::packed::Quantization;
use crate::perplexity::{perplexity_scored, PerplexityReport, Scoring};
use crate::sampling::Sampling;

/// A loaded decoder and its tokenizer.
pub struct DecoderSession {
    /// The model.
    pub model: LlamaModel,
    /// Its tokenizer.
    pub tokenizer: GgufTokenizer,
}

impl DecoderSession {
    /// Opens the GGUF file at `path` with every quantizable tensor stored in
    /// `format` and linear-layer activations in `act`; `progress(done, total)`
    /// hears about the blocks as they load.
    pub fn open(
        path: &Path,
        format: WeightFormat,
        act: ActivationFormat,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let file = GgufFile::open(path)?;
        let tokenizer = GgufTokenizer::from_gguf(&file)?;
        // Before any weight is read: every token needs an embedding row.
        tokenizer.check_vocab(path, LlamaConfig::from_gguf(&file)?.vocab)?;
        let model = LlamaModel::from_gguf(&file, &|_| format, progress)?.with_activations(act);
        model.prepare_products();
        Ok(Self { model, tokenizer })
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
        let file = GgufFile::open(path)?;
        let tokenizer = GgufTokenizer::from_gguf(&file)?;
        let config = LlamaConfig::from_gguf(&file)?;
        tokenizer.check_vocab(path, config.vocab)?;
        let choose = |_: &str| format;
        let mut checkpoint = GgufSource::new(&file, &choose);
        if let Some(importance) = &quantization.importance {
            checkpoint = checkpoint.with_importance(importance);
        }
        let mut source = ReplacingSource::new(&mut checkpoint, quantization.replacements);
        let model = LlamaModel::from_source(config, &mut source, progress)?.with_activations(act);
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
        generate(&self.model, tokenizer, &ids, max_tokens, sampling, &mut on_token)
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
        perplexity_scored(&self.model, &ids, window, windows, scoring, progress)
    }
}
