//! The model's `tokenizer.json`, set up to encode one sentence at a time the
//! way sentence-transformers does: special tokens added, truncation at the
//! model's `max_seq_length`, and no padding (a `tokenizer.json` may carry
//! fixed padding, which would make mean pooling average over `[PAD]`s).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{ModelError, Result};

/// A tokenizer for single sentences.
pub struct SentenceTokenizer {
    inner: Tokenizer,
}

impl SentenceTokenizer {
    /// Loads `path` and configures truncation at `max_len` tokens.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self> {
        let bad = |reason: String| ModelError::Tokenizer { path: path.to_owned(), reason };
        let inner = Tokenizer::from_file(path).map_err(|e| bad(e.to_string()))?;
        Self::configure(path, inner, max_len)
    }

    /// Like [`SentenceTokenizer::from_file`] on the bytes of a
    /// `tokenizer.json`; `origin` names where they came from, for errors.
    pub fn from_bytes(origin: &Path, json: &[u8], max_len: usize) -> Result<Self> {
        let bad = |reason: String| ModelError::Tokenizer { path: origin.to_owned(), reason };
        let inner = Tokenizer::from_bytes(json).map_err(|e| bad(e.to_string()))?;
        Self::configure(origin, inner, max_len)
    }

    fn configure(path: &Path, mut inner: Tokenizer, max_len: usize) -> Result<Self> {
        let bad = |reason: String| ModelError::Tokenizer { path: path.to_owned(), reason };
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams { max_length: max_len, ..Default::default() }))
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Token ids of `text`, with the model's special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(|e| ModelError::Encode {
            text: text.chars().take(40).collect(),
            reason: e.to_string(),
        })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Size of the tokenizer's vocabulary, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Checks that every token id this tokenizer can produce has a row in
    /// a model's embedding table of `rows` rows (`vocab_size` in
    /// `config.json`); `origin` names the tokenizer's file, for the error.
    pub fn check_vocab(&self, origin: &Path, rows: usize) -> Result<()> {
        crate::gguf_tokenizer::check_vocab(origin, &self.inner, rows)
    }
}
