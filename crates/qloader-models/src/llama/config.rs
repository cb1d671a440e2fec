//! The hyper-parameters of a Llama-family decoder, read from a GGUF file's
//! metadata (`{arch}.block_count`, `{arch}.embedding_length`, …) and checked
//! for consistency and sane bounds before any weight is read.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use qloader_format::gguf::GgufFile;
use qloader_format::FormatError;

use crate::error::Result;

/// Architectures whose GGUF layout this decoder implements.
pub const ARCHITECTURES: [&str; 1] = ["llama"];

/// Shape of a Llama-family decoder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaConfig {
    /// Transformer blocks.
    pub layers: usize,
    /// Width of the residual stream.
    pub hidden: usize,
    /// Width of the SwiGLU feed-forward layer.
    pub ffn: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention: `heads` is a multiple).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Tokens in the vocabulary (rows of the embedding table).
    pub vocab: usize,
    /// Positions the model was trained for.
    pub context: usize,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// RoPE base frequency.
    pub rope_base: f32,
}

/// Bounds that keep a hostile header from asking for absurd buffers.
const MAX_LAYERS: usize = 1024;
const MAX_WIDTH: usize = 1 << 17;
const MAX_HEADS: usize = 1024;

impl LlamaConfig {
    /// Reads and validates the configuration of `file`.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let bad = |reason: String| FormatError::Gguf { path: file.path().to_owned(), reason };
        let arch = file.get_str("general.architecture")?;
        if !ARCHITECTURES.contains(&arch) {
            return Err(bad(format!(
                "architecture `{arch}` is not supported (supported: {})",
                ARCHITECTURES.join(", ")
            ))
            .into());
        }
        let key = |k: &str| format!("{arch}.{k}");
        let layers = file.get_usize(&key("block_count"))?;
        let hidden = file.get_usize(&key("embedding_length"))?;
        let ffn = file.get_usize(&key("feed_forward_length"))?;
        let heads = file.get_usize(&key("attention.head_count"))?;
        let kv_heads = match file.get(&key("attention.head_count_kv")) {
            Some(_) => file.get_usize(&key("attention.head_count_kv"))?,
            None => heads,
        };
        let context = file.get_usize(&key("context_length"))?;
        let norm_eps = file.get_f32(&key("attention.layer_norm_rms_epsilon"))?;
        let rope_base = match file.get(&key("rope.freq_base")) {
            Some(_) => file.get_f32(&key("rope.freq_base"))?,
            None => 10_000.0,
        };
        let vocab = file.tensor("token_embd.weight")?.shape().first().copied().unwrap_or(0);
        let head_dim = hidden / heads.max(1);
        if file.get(&key("rope.dimension_count")).is_some() {
            let dims = file.get_usize(&key("rope.dimension_count"))?;
            if dims != head_dim {
                return Err(bad(format!(
                    "partial RoPE ({dims} of {head_dim} head dimensions) is not supported"
                ))
                .into());
            }
        }
        let config = Self {
            layers,
            hidden,
            ffn,
            heads,
            kv_heads,
            head_dim,
            vocab,
            context,
            norm_eps,
            rope_base,
        };
        let label = |field: &'static str| match field {
            "layers" => format!("`{}`", key("block_count")),
            "hidden" => format!("`{}`", key("embedding_length")),
            "ffn" => format!("`{}`", key("feed_forward_length")),
            "heads" => format!("`{}`", key("attention.head_count")),
            "kv_heads" => format!("`{}`", key("attention.head_count_kv")),
            "context" => format!("`{}`", key("context_length")),
            "vocab" => "the vocabulary (rows of `token_embd.weight`)".to_owned(),
            "norm_eps" => format!("`{}`", key("attention.layer_norm_rms_epsilon")),
            "rope_base" => format!("`{}`", key("rope.freq_base")),
            "head_dim" => "the head width".to_owned(),
            other => other.to_owned(),
        };
        config.check(&label).map_err(bad)?;
        Ok(config)
    }

    /// Checks every field against the others and against sane bounds; the
    /// reason names the fields as this struct does (`layers`, `heads`, …).
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.check(&|field| field.to_owned())
    }

    /// [`LlamaConfig::validate`], naming each field as `label` says (the
    /// GGUF reader names the metadata keys).
    fn check(&self, label: &dyn Fn(&'static str) -> String) -> std::result::Result<(), String> {
        let range = |field: &'static str, v: usize, max: usize| {
            if v == 0 || v > max {
                Err(format!("{} = {v} is outside 1..={max}", label(field)))
            } else {
                Ok(())
            }
        };
        range("layers", self.layers, MAX_LAYERS)?;
        range("hidden", self.hidden, MAX_WIDTH)?;
        range("ffn", self.ffn, 4 * MAX_WIDTH)?;
        range("heads", self.heads, MAX_HEADS)?;
        range("kv_heads", self.kv_heads, self.heads)?;
        range("context", self.context, 1 << 24)?;
        range("vocab", self.vocab, 1 << 22)?;
        let (hidden, heads, kv_heads) = (self.hidden, self.heads, self.kv_heads);
        if !hidden.is_multiple_of(heads) {
            return Err(format!(
                "{} = {hidden} is not a multiple of {} = {heads}",
                label("hidden"),
                label("heads")
            ));
        }
        if !heads.is_multiple_of(kv_heads) {
            return Err(format!(
                "{} = {heads} is not a multiple of {} = {kv_heads}",
                label("heads"),
                label("kv_heads")
            ));
        }
        if self.head_dim != hidden / heads {
            return Err(format!(
                "{} = {} is not {} / {} = {}",
                label("head_dim"),
                self.head_dim,
                label("hidden"),
                label("heads"),
                hidden / heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!(
                "{} = {} is odd (RoPE rotates pairs)",
                label("head_dim"),
                self.head_dim
            ));
        }
        let eps = self.norm_eps;
        if !(eps > 0.0 && eps < 1.0) {
            return Err(format!("{} = {eps} is outside (0, 1)", label("norm_eps")));
        }
        let base = self.rope_base;
        if !(base > 1.0 && base.is_finite()) {
            return Err(format!("{} = {base} is not a finite number above 1", label("rope_base")));
        }
        Ok(())
    }

    /// Width of the key and value projections.
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}
