//! A Llama-family decoder from a Hugging Face checkpoint directory:
//! `config.json` read into a [`LlamaConfig`] (fields as `transformers`
//! names them, what the model has read from its tensors), and a
//! [`WeightSource`] that answers the decoder's GGUF-style tensor names
//! (`blk.0.attn_q.weight`, …) from the checkpoint's own
//! (`model.layers.0.self_attn.q_proj.weight`, …), memory-mapped, one tensor
//! at a time.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::{Path, PathBuf};

use qloader_format::hf_checkpoint::{read_config_json, HfWeights};
use qloader_format::{FormatError, WeightFormat};
use qloader_quant::{ColumnImportance, LinearWeight, QuantSummary};
use serde_json::Value;

use super::config::{LlamaConfig, RopeStyle};
use super::weights::{HEAD, TOKEN_EMBEDDINGS};
use crate::error::Result;
use crate::family::{self, Family, Kind};
use crate::source::{record_values, record_weight, store, WeightRole, WeightSource};

/// The checkpoint's name of the decoder tensor `name` (GGUF naming), or
/// `None` for a name the decoder never asks for.
pub fn hf_name(name: &str) -> Option<String> {
    match name {
        TOKEN_EMBEDDINGS => return Some("model.embed_tokens.weight".to_owned()),
        "output_norm.weight" => return Some("model.norm.weight".to_owned()),
        HEAD => return Some("lm_head.weight".to_owned()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, kind) = rest.rsplit_once('.')?;
    let mapped = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    matches!(kind, "weight" | "bias").then(|| format!("model.layers.{layer}.{mapped}.{kind}"))
}

/// A checkpoint directory opened for a decoder: its family, configuration
/// and weights.
pub struct HfDecoder {
    /// The family `config.json`'s `architectures` names.
    pub family: &'static Family,
    /// The decoder's shape and features.
    pub config: LlamaConfig,
    /// Whether the head is the embedding table.
    pub tied: bool,
    /// The weight files.
    pub weights: HfWeights,
}

impl HfDecoder {
    /// Opens the checkpoint directory `root` (config.json and the weights).
    pub fn open(root: &Path) -> Result<Self> {
        let family = family::detect(root)?;
        let config_path = root.join("config.json");
        if family.kind != Kind::Decoder {
            return Err(FormatError::ConfigField {
                path: config_path,
                field: "architectures",
                reason: format!("a {} model is an encoder, not a decoder", family.name),
            }
            .into());
        }
        let json = read_config_json(root)?;
        let weights = HfWeights::open(root)?;
        let (config, tied) = read_config(&config_path, &json, family, &weights)?;
        Ok(Self { family, config, tied, weights })
    }

    /// A source of the checkpoint's tensors, each quantizable one stored as
    /// `choose` says.
    pub fn source<'a>(&'a self, choose: &'a dyn Fn(&str) -> WeightFormat) -> HfSource<'a> {
        HfSource { checkpoint: self, choose, importance: None, summary: QuantSummary::default() }
    }
}

/// The decoder configuration of `json` (the `config.json` at `path`) and
/// whether the head is tied to the embeddings; features the model has are
/// read from `weights`' tensor names.
fn read_config(
    path: &Path,
    json: &Value,
    family: &Family,
    weights: &HfWeights,
) -> Result<(LlamaConfig, bool)> {
    let field_error = |field: &'static str, reason: String| FormatError::ConfigField {
        path: path.to_owned(),
        field,
        reason,
    };
    let usize_field = |field: &'static str| -> std::result::Result<Option<usize>, FormatError> {
        match json.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| field_error(field, format!("{v} is not a non-negative integer"))),
        }
    };
    let required = |field: &'static str| {
        usize_field(field)?.ok_or_else(|| field_error(field, "missing".to_owned()))
    };
    let float_field = |field: &'static str, v: &Value| {
        v.as_f64().ok_or_else(|| field_error(field, format!("{v} is not a number")))
    };
    if let Some(act) = json.get("hidden_act").or_else(|| json.get("hidden_activation")) {
        if act.as_str() != Some("silu") {
            return Err(
                field_error("hidden_act", format!("{act} is not supported (only silu)")).into()
            );
        }
    }
    // transformers 5 puts the RoPE settings in `rope_parameters`; earlier
    // versions have `rope_theta` and `rope_scaling` at the top level.
    let rope = json.get("rope_parameters").filter(|v| v.is_object());
    let rope_type = rope.and_then(|r| r.get("rope_type")).or_else(|| {
        json.get("rope_scaling").and_then(|s| s.get("rope_type").or_else(|| s.get("type")))
    });
    if let Some(t) = rope_type.filter(|t| t.as_str() != Some("default")) {
        return Err(field_error("rope_scaling", format!("RoPE type {t} is not supported")).into());
    }
    let rope_base = match rope.and_then(|r| r.get("rope_theta")).or_else(|| json.get("rope_theta"))
    {
        Some(v) => float_field("rope_theta", v)?,
        None => 10_000.0,
    };
    let norm_eps = match json.get("rms_norm_eps") {
        Some(v) => float_field("rms_norm_eps", v)?,
        None => return Err(field_error("rms_norm_eps", "missing".to_owned()).into()),
    };
    if json.get("use_sliding_window").and_then(Value::as_bool) == Some(true) {
        return Err(field_error(
            "use_sliding_window",
            "windows on some layers only are not supported".to_owned(),
        )
        .into());
    }
    let sliding_window = match json.get("use_sliding_window") {
        // Qwen2 and Qwen3 configs carry a `sliding_window` they do not use.
        Some(_) => None,
        None => usize_field("sliding_window")?,
    };
    let (hidden, heads) = (required("hidden_size")?, required("num_attention_heads")?);
    let head_dim = match usize_field("head_dim")? {
        Some(d) => d,
        None if heads > 0 && hidden.is_multiple_of(heads) => hidden / heads,
        None => {
            return Err(field_error(
                "hidden_size",
                format!("{hidden} is not a multiple of num_attention_heads = {heads}"),
            )
            .into())
        }
    };
    let tied = json.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false)
        || !weights.contains("lm_head.weight");
    let embeddings = "model.embed_tokens.weight";
    let vocab = weights.shape(embeddings)?.first().copied().unwrap_or(0);
    if let Some(declared) = usize_field("vocab_size")?.filter(|&v| v != vocab) {
        return Err(field_error(
            "vocab_size",
            format!("{declared}, but `{embeddings}` has {vocab} rows"),
        )
        .into());
    }
    let config = LlamaConfig {
        layers: required("num_hidden_layers")?,
        hidden,
        ffn: required("intermediate_size")?,
        heads,
        kv_heads: usize_field("num_key_value_heads")?.unwrap_or(heads),
        head_dim,
        vocab,
        context: required("max_position_embeddings")?,
        norm_eps: norm_eps as f32,
        rope_base: rope_base as f32,
        family: family.name.to_owned(),
        rope_style: RopeStyle::Halves,
        qkv_bias: weights.contains("model.layers.0.self_attn.q_proj.bias"),
        qk_norm: weights.contains("model.layers.0.self_attn.q_norm.weight"),
        sliding_window,
    };
    config.validate().map_err(|reason| FormatError::ConfigField {
        path: path.to_owned(),
        field: "(decoder shape)",
        reason,
    })?;
    Ok((config, tied))
}

/// The tensors of a checkpoint directory, answered by the decoder's names,
/// each de-quantized to `f32` and each quantizable tensor re-stored in the
/// format `choose(name)` returns. With tied embeddings asking for the head
/// yields the embedding table.
pub struct HfSource<'a> {
    checkpoint: &'a HfDecoder,
    choose: &'a dyn Fn(&str) -> WeightFormat,
    importance: Option<&'a ColumnImportance>,
    summary: QuantSummary,
}

impl<'a> HfSource<'a> {
    /// Weighs the grid search of each tensor `importance` names by its
    /// vector (the `imatrix` method).
    pub fn with_importance(mut self, importance: &'a ColumnImportance) -> Self {
        self.importance = Some(importance);
        self
    }

    /// The checkpoint tensor that holds `name`.
    fn stored(&self, name: &str) -> Result<String> {
        let name = if name == HEAD && self.checkpoint.tied { TOKEN_EMBEDDINGS } else { name };
        hf_name(name).ok_or_else(|| {
            FormatError::MissingTensor {
                path: self.checkpoint.weights.root().to_owned(),
                tensor: name.to_owned(),
            }
            .into()
        })
    }

    fn f32(&self, name: &str, shape: &[usize]) -> Result<(PathBuf, String, Vec<f32>)> {
        let stored = self.stored(name)?;
        let w = &self.checkpoint.weights;
        let data = w.tensor_f32(&stored, shape)?.data;
        Ok((w.path_of(&stored).to_owned(), stored, data))
    }
}

impl WeightSource for HfSource<'_> {
    fn contains(&self, name: &str) -> bool {
        if name == HEAD && self.checkpoint.tied {
            return false;
        }
        hf_name(name).is_some_and(|n| self.checkpoint.weights.contains(&n))
    }

    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (_, _, v) = self.f32(name, shape)?;
        record_values(&mut self.summary, name, v.len());
        Ok(v)
    }

    fn weight(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        role: WeightRole,
    ) -> Result<LinearWeight> {
        let (path, stored, data) = self.f32(name, &[rows, cols])?;
        let importance = self.importance.and_then(|m| m.get(name));
        let format = (self.choose)(name);
        let w =
            store((path.as_path(), stored.as_str()), data, (rows, cols), format, role, importance)?;
        record_weight(&mut self.summary, name, &w, role);
        Ok(w)
    }

    fn summary(&self) -> &QuantSummary {
        &self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_names_map_to_checkpoint_names() {
        let cases = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output.weight", "lm_head.weight"),
            ("output_norm.weight", "model.norm.weight"),
            ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"),
            ("blk.11.attn_k.bias", "model.layers.11.self_attn.k_proj.bias"),
            ("blk.2.attn_k_norm.weight", "model.layers.2.self_attn.k_norm.weight"),
            ("blk.3.ffn_down.weight", "model.layers.3.mlp.down_proj.weight"),
            ("blk.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight"),
        ];
        for (ours, theirs) in cases {
            assert_eq!(hf_name(ours).as_deref(), Some(theirs), "{ours}");
        }
        for unknown in ["blk.x.attn_q.weight", "blk.0.attn_q.scale", "blk.0.nothing.weight", "x"] {
            assert_eq!(hf_name(unknown), None, "{unknown}");
        }
    }
}
