//! The `config` a packed model's header carries for each architecture, and
//! the blobs beside it: everything but the weights that the loader needs to
//! rebuild the model and its tokenizer without the original files.
//!
//! * `bert`: `{"pooling": "mean" | "cls", "normalize": bool,
//!   "max_seq_length": n}`, with blobs `config.json` (the checkpoint's, as
//!   it was) and `tokenizer.json`.
//! * a decoder design's name (`llama`): `{"model": …, "tokenizer": {bos,
//!   eos, add_bos, chat, …}}`, where `model` is what the design's
//!   [`DecoderConfig::to_json`](qloader_models::DecoderConfig::to_json)
//!   writes (for `llama`: layers, hidden, ffn, heads, kv_heads, head_dim,
//!   vocab, context, norm_eps, rope_base, family and the family's
//!   features), with blob `tokenizer.json` (the tokenizer, serialized).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use qloader_models::TokenizerSettings;
use serde::{Deserialize, Serialize};

/// Architecture name of BERT sentence encoders.
pub const BERT: &str = "bert";
/// Architecture name of the Llama-like decoders (the only design `export`
/// writes as GGUF).
pub const LLAMA: &str = "llama";
/// Blob holding a checkpoint's `config.json`.
pub const CONFIG_BLOB: &str = "config.json";
/// Blob holding the tokenizer.
pub const TOKENIZER_BLOB: &str = "tokenizer.json";
/// Blob holding a decoder's source GGUF metadata (architecture, tokenizer,
/// everything but the tensors) as a tensor-less GGUF file, for `export`.
pub const GGUF_METADATA_BLOB: &str = "source-metadata.gguf";

/// Pooling of a packed encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over tokens.
    Mean,
    /// The first token.
    Cls,
}

/// `config` of a packed BERT encoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertPacked {
    /// How token states are pooled.
    pub pooling: Pooling,
    /// Whether the embedding is L2-normalised.
    pub normalize: bool,
    /// Longest token sequence.
    pub max_seq_length: usize,
}

/// `config` of a packed decoder, whatever its design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderPacked {
    /// The decoder's shape, as its design writes and reads it.
    pub model: serde_json::Value,
    /// The tokenizer's special tokens and template.
    pub tokenizer: TokenizerSettings,
}
