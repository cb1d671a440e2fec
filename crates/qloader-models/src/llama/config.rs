//! The hyper-parameters of a Llama-family decoder (Llama, Mistral, Qwen2,
//! Qwen3: which of them, the [`crate::family`] registry decides), read from a
//! GGUF file's metadata (`{arch}.block_count`, `{arch}.embedding_length`, …)
//! and checked for consistency and sane bounds before any weight is read.
//! What a model has beyond Llama's block (q/k/v biases, per-head q/k norms, a
//! sliding attention window) is read from the file — its tensors and keys —
//! never inferred from the architecture's name.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use qloader_format::gguf::GgufFile;
use qloader_format::FormatError;

use crate::error::Result;

/// How rotary embeddings pair the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RopeStyle {
    /// Adjacent pairs `(x[2i], x[2i+1])`: GGUF `llama` tensors, whose q and k
    /// rows the converter permuted for it.
    #[default]
    Interleaved,
    /// The two halves `(x[i], x[i + d/2])`: Hugging Face checkpoints, and
    /// GGUF files of architectures converted without that permutation
    /// (`qwen2`, `qwen3`).
    Halves,
}

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
    /// The model family, as the [`crate::family`] registry names it.
    #[serde(default = "default_family")]
    pub family: String,
    /// How RoPE pairs a head's dimensions.
    #[serde(default)]
    pub rope_style: RopeStyle,
    /// Whether the q, k and v projections add a bias (Qwen2).
    #[serde(default)]
    pub qkv_bias: bool,
    /// Whether each query and key head is RMS-normalised (with its own
    /// `head_dim` scales) before RoPE (Qwen3).
    #[serde(default)]
    pub qk_norm: bool,
    /// Positions a token attends to, itself included (Mistral's sliding
    /// window); `None`: every earlier position.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Which layers are local, i.e. use `sliding_window` (Gemma 2 and 3
    /// alternate); `None`: all of them.
    #[serde(default)]
    pub local_layers: Option<Vec<bool>>,
    /// RoPE base of the local layers, where it differs (Gemma 3).
    #[serde(default)]
    pub rope_local_base: Option<f32>,
    /// Linear RoPE scaling of the global layers: positions divided by this.
    #[serde(default)]
    pub rope_scale: Option<f32>,
    /// The feed-forward gate's activation.
    #[serde(default)]
    pub activation: GateActivation,
    /// Factor on the token embeddings (Gemma: √hidden).
    #[serde(default)]
    pub embed_scale: Option<f32>,
    /// Whether the attention output and the feed-forward output are each
    /// RMS-normalised before they join the residual stream (Gemma 2 and 3).
    #[serde(default)]
    pub post_norms: bool,
    /// Factor on the attention scores; `None`: `1/√head_dim`.
    #[serde(default)]
    pub attn_scale: Option<f32>,
    /// Attention scores soft-capped: `cap·tanh(s/cap)` (Gemma 2).
    #[serde(default)]
    pub attn_softcap: Option<f32>,
    /// Output logits soft-capped the same way (Gemma 2).
    #[serde(default)]
    pub final_softcap: Option<f32>,
}

/// The activation of the feed-forward gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateActivation {
    /// SwiGLU: `SiLU(gate) · up` (Llama, Mistral, Qwen, Phi-3).
    #[default]
    Silu,
    /// GeGLU with GELU's tanh approximation (Gemma).
    GeluTanh,
}

fn default_family() -> String {
    "llama".to_owned()
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
        let family = crate::family::from_gguf_architecture(arch)
            .filter(|f| f.kind.is_decoder())
            .ok_or_else(|| bad(crate::family::unsupported(&format!("architecture `{arch}`"))))?;
        let key = |k: &str| format!("{arch}.{k}");
        let optional_usize = |k: &str| -> Result<Option<usize>> {
            Ok(match file.get(&key(k)) {
                Some(_) => Some(file.get_usize(&key(k))?),
                None => None,
            })
        };
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
        let head_dim = match optional_usize("attention.key_length")? {
            Some(d) => d,
            None if heads > 0 && !hidden.is_multiple_of(heads) => {
                return Err(bad(format!(
                    "`{}` = {hidden} is not a multiple of `{}` = {heads}",
                    key("embedding_length"),
                    key("attention.head_count")
                ))
                .into());
            }
            None => hidden / heads.max(1),
        };
        if let Some(v) = optional_usize("attention.value_length")?.filter(|&v| v != head_dim) {
            return Err(bad(format!(
                "value heads of {v} dimensions differ from key heads of {head_dim}"
            ))
            .into());
        }
        if file.get(&key("rope.dimension_count")).is_some() {
            let dims = file.get_usize(&key("rope.dimension_count"))?;
            if dims != head_dim {
                return Err(bad(format!(
                    "partial RoPE ({dims} of {head_dim} head dimensions) is not supported"
                ))
                .into());
            }
        }
        let optional_f32 = |k: &str| -> Result<Option<f32>> {
            Ok(match file.get(&key(k)) {
                Some(_) => Some(file.get_f32(&key(k))?),
                None => None,
            })
        };
        let rope_scale = match file.get(&key("rope.scaling.type")) {
            None => None,
            Some(_) => match file.get_str(&key("rope.scaling.type"))? {
                "none" => None,
                "linear" => optional_f32("rope.scaling.factor")?,
                other => return Err(bad(format!("RoPE scaling `{other}` is not supported")).into()),
            },
        };
        let has = |name: &str| file.tensors().iter().any(|t| t.name == name);
        let sliding_window = optional_usize("attention.sliding_window")?;
        let traits = &family.traits;
        // GGUF files record a window but not which layers use it: the
        // architecture fixes that (as llama.cpp does).
        let local_layers = traits
            .local_pattern
            .filter(|_| sliding_window.is_some())
            .map(|n| (0..layers).map(|l| l % n < n - 1).collect());
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
            family: family.name.to_owned(),
            rope_style: family.gguf_rope,
            qkv_bias: has("blk.0.attn_q.bias"),
            qk_norm: has("blk.0.attn_q_norm.weight"),
            sliding_window,
            rope_local_base: traits.gguf_local_rope_base.filter(|_| local_layers.is_some()),
            local_layers,
            rope_scale,
            activation: family.activation(),
            embed_scale: traits.embed_scaled.then(|| (hidden as f32).sqrt()),
            post_norms: has("blk.0.post_attention_norm.weight"),
            attn_scale: match optional_f32("attention.scale")? {
                Some(scale) => Some(scale),
                None => traits.gguf_attention_scale(layers, hidden, heads),
            },
            attn_softcap: optional_f32("attn_logit_softcapping")?,
            final_softcap: optional_f32("final_logit_softcapping")?,
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
            "head_dim" => format!("the head width (`{}`)", key("attention.key_length")),
            "sliding_window" => format!("`{}`", key("attention.sliding_window")),
            "rope_scale" => format!("`{}`", key("rope.scaling.factor")),
            "attn_scale" => format!("`{}`", key("attention.scale")),
            "attn_softcap" => format!("`{}`", key("attn_logit_softcapping")),
            "final_softcap" => format!("`{}`", key("final_logit_softcapping")),
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
        let (heads, kv_heads) = (self.heads, self.kv_heads);
        if !heads.is_multiple_of(kv_heads) {
            return Err(format!(
                "{} = {heads} is not a multiple of {} = {kv_heads}",
                label("heads"),
                label("kv_heads")
            ));
        }
        range("head_dim", self.head_dim, 4096)?;
        if self.heads * self.head_dim > 4 * MAX_WIDTH {
            return Err(format!(
                "{} × {} = {} query dimensions is above {}",
                label("heads"),
                label("head_dim"),
                self.heads * self.head_dim,
                4 * MAX_WIDTH
            ));
        }
        if let Some(window) = self.sliding_window {
            range("sliding_window", window, 1 << 24)?;
        }
        if let Some(local) = self.local_layers.as_ref().filter(|l| l.len() != self.layers) {
            return Err(format!(
                "{} names {} layers of {}",
                label("local_layers"),
                local.len(),
                self.layers
            ));
        }
        let positive = |field: &'static str, v: Option<f32>| match v {
            Some(x) if !(x > 0.0 && x.is_finite()) => {
                Err(format!("{} = {x} is not a finite positive number", label(field)))
            }
            _ => Ok(()),
        };
        positive("rope_local_base", self.rope_local_base)?;
        positive("rope_scale", self.rope_scale)?;
        positive("embed_scale", self.embed_scale)?;
        positive("attn_scale", self.attn_scale)?;
        positive("attn_softcap", self.attn_softcap)?;
        positive("final_softcap", self.final_softcap)?;
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

    /// The sliding window of layer `layer`, if it has one.
    pub fn window_of(&self, layer: usize) -> Option<usize> {
        let local = self.local_layers.as_ref().is_none_or(|l| l.get(layer) == Some(&true));
        self.sliding_window.filter(|_| local)
    }

    /// Whether layer `layer` is local: it has a window and, if the model sets
    /// one, the local RoPE base.
    pub fn is_local(&self, layer: usize) -> bool {
        self.local_layers.as_ref().is_some_and(|l| l.get(layer) == Some(&true))
    }

    /// Width of the key and value projections.
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Width of the query projection and of the attention output (the
    /// hidden width unless the file sets the head width apart, as Qwen3's
    /// do).
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }
}
