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
        config.validate().map_err(|reason| bad(format!("{reason} (keys `{arch}.*`)")))?;
        Ok(config)
    }

    /// Checks every field against the others and against sane bounds.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let check = |name: &str, v: usize, max: usize| {
            if v == 0 || v > max {
                Err(format!("{name} = {v} is outside 1..={max}"))
            } else {
                Ok(())
            }
        };
        check("layers", self.layers, MAX_LAYERS)?;
        check("hidden", self.hidden, MAX_WIDTH)?;
        check("ffn", self.ffn, 4 * MAX_WIDTH)?;
        check("heads", self.heads, MAX_HEADS)?;
        check("kv_heads", self.kv_heads, self.heads)?;
        check("context", self.context, 1 << 24)?;
        check("vocab", self.vocab, 1 << 22)?;
        let (hidden, heads, kv_heads) = (self.hidden, self.heads, self.kv_heads);
        if hidden % heads != 0 || heads % kv_heads != 0 || self.head_dim != hidden / heads {
            return Err(format!(
                "{heads} heads do not divide the width {hidden} into heads of {}, or {kv_heads} \
                 key/value heads do not divide the heads",
                self.head_dim
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!("head width {} is odd (RoPE rotates pairs)", self.head_dim));
        }
        let (eps, base) = (self.norm_eps, self.rope_base);
        if !(eps > 0.0 && eps < 1.0 && base > 1.0 && base.is_finite()) {
            return Err(format!("RMSNorm epsilon {eps} or RoPE base {base} is out of range"));
        }
        Ok(())
    }

    /// Width of the key and value projections.
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}
