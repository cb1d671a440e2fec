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

use super::config::{GateActivation, LlamaConfig, RopeStyle};
use super::weights::{fused_part, rows_of, HEAD, TOKEN_EMBEDDINGS};
use crate::error::Result;
use crate::family::{self, Family};
use crate::source::{record_values, record_weight, store, WeightRole, WeightSource};

/// The checkpoint's name of the decoder tensor `name` (GGUF naming), or
/// `None` for a name the decoder never asks for. With `post_norms` (Gemma 2
/// and 3) the block's four norms have Gemma's names.
pub fn hf_name(name: &str, post_norms: bool) -> Option<String> {
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
    let mapped = match (part, post_norms) {
        ("attn_norm", _) => "input_layernorm",
        ("ffn_norm", false) => "post_attention_layernorm",
        ("post_attention_norm", true) => "post_attention_layernorm",
        ("ffn_norm", true) => "pre_feedforward_layernorm",
        ("post_ffw_norm", true) => "post_feedforward_layernorm",
        ("attn_q", _) => "self_attn.q_proj",
        ("attn_k", _) => "self_attn.k_proj",
        ("attn_v", _) => "self_attn.v_proj",
        ("attn_qkv", _) => "self_attn.qkv_proj",
        ("attn_output", _) => "self_attn.o_proj",
        ("attn_q_norm", _) => "self_attn.q_norm",
        ("attn_k_norm", _) => "self_attn.k_norm",
        ("ffn_gate", _) => "mlp.gate_proj",
        ("ffn_up", _) => "mlp.up_proj",
        ("ffn_gate_up", _) => "mlp.gate_up_proj",
        ("ffn_down", _) => "mlp.down_proj",
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
        let json = read_config_json(root)?;
        let family = family::of_config(root, &json)?;
        let config_path = root.join("config.json");
        if !family.kind.is_decoder() {
            return Err(FormatError::ConfigField {
                path: config_path,
                field: "architectures",
                reason: format!("a {} model is an encoder, not a decoder", family.name),
            }
            .into());
        }
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
    let optional_float = |field: &'static str| match json.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => float_field(field, v).map(Some),
    };
    let activation = family.activation();
    let act_name = if activation == GateActivation::Silu { "silu" } else { "gelu_pytorch_tanh" };
    for field in ["hidden_act", "hidden_activation"] {
        if let Some(act) = json.get(field).filter(|a| !a.is_null()) {
            if act.as_str() != Some(act_name) {
                let reason = format!("{act} is not supported (a {} uses {act_name})", family.name);
                return Err(field_error(field, reason).into());
            }
        }
    }
    if json.get("use_bidirectional_attention").and_then(Value::as_bool) == Some(true) {
        let reason = "bidirectional attention is not supported (a decoder is causal)".to_owned();
        return Err(field_error("use_bidirectional_attention", reason).into());
    }
    if let Some(f) = optional_float("partial_rotary_factor")?.filter(|&f| f != 1.0) {
        return Err(field_error(
            "partial_rotary_factor",
            format!("{f}: RoPE on part of each head is not supported"),
        )
        .into());
    }
    let (global, local) =
        rope_settings(json).map_err(|(field, reason)| field_error(field, reason))?;
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
    let layers = required("num_hidden_layers")?;
    let local_layers = match json.get("layer_types").and_then(Value::as_array) {
        Some(types) => {
            let local = types
                .iter()
                .map(|t| match t.as_str() {
                    Some("sliding_attention") => Ok(true),
                    Some("full_attention") => Ok(false),
                    _ => {
                        Err(field_error("layer_types", format!("layer type {t} is not supported")))
                    }
                })
                .collect::<std::result::Result<Vec<bool>, _>>()?;
            local.contains(&true).then_some(local)
        }
        // A window only on layers the config marks local; none if it marks
        // none.
        None => family
            .traits
            .local_pattern
            .or_else(|| usize_field("sliding_window_pattern").ok().flatten())
            .filter(|&n| n > 0 && sliding_window.is_some())
            .map(|n| (0..layers).map(|l| (l + 1) % n != 0).collect()),
    };
    let sliding_window = match (json.get("layer_types"), &local_layers) {
        (Some(_), None) => None,
        _ => sliding_window,
    };
    if local_layers.is_some() && sliding_window.is_none() {
        return Err(field_error("sliding_window", "local layers need a window".to_owned()).into());
    }
    let softcap = |field| optional_float(field).map(|v| v.map(|x| x as f32));
    let attn_scale = optional_float("query_pre_attn_scalar")?.map(|q| (1.0 / q.sqrt()) as f32);
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
    let post_norms = weights.contains("model.layers.0.post_feedforward_layernorm.weight");
    let config = LlamaConfig {
        layers,
        hidden,
        ffn: required("intermediate_size")?,
        heads,
        kv_heads: usize_field("num_key_value_heads")?.unwrap_or(heads),
        head_dim,
        vocab,
        context: required("max_position_embeddings")?,
        norm_eps: norm_eps as f32,
        rope_base: global.base,
        family: family.name.to_owned(),
        rope_style: RopeStyle::Halves,
        qkv_bias: weights.contains("model.layers.0.self_attn.q_proj.bias"),
        qk_norm: weights.contains("model.layers.0.self_attn.q_norm.weight"),
        sliding_window,
        rope_local_base: local.map(|l| l.base).filter(|_| local_layers.is_some()),
        local_layers,
        rope_scale: global.scale,
        activation,
        embed_scale: family.traits.embed_scaled.then(|| (hidden as f32).sqrt()),
        post_norms,
        attn_scale,
        attn_softcap: softcap("attn_logit_softcapping")?,
        final_softcap: softcap("final_logit_softcapping")?,
    };
    config.validate().map_err(|reason| FormatError::ConfigField {
        path: path.to_owned(),
        field: "(decoder shape)",
        reason,
    })?;
    Ok((config, tied))
}

/// One kind of layer's RoPE: base frequency and linear scaling.
#[derive(Debug, Clone, Copy)]
struct Rope {
    base: f32,
    scale: Option<f32>,
}

/// The RoPE of the global layers and, where the config sets them apart,
/// of the local ones. transformers 5 writes `rope_parameters` (flat, or per
/// layer type); earlier versions `rope_theta`, `rope_scaling` and
/// `rope_local_base_freq` at the top level. The error names the field.
fn rope_settings(
    json: &Value,
) -> std::result::Result<(Rope, Option<Rope>), (&'static str, String)> {
    let read = |field: &'static str,
                v: &Value|
     -> std::result::Result<Rope, (&'static str, String)> {
        let kind = v.get("rope_type").or_else(|| v.get("type")).and_then(Value::as_str);
        let scale = match kind {
            None | Some("default") => None,
            Some("linear") => Some(
                v.get("factor")
                    .and_then(Value::as_f64)
                    .ok_or((field, "linear RoPE scaling without a `factor`".to_owned()))?
                    as f32,
            ),
            Some(other) => return Err((field, format!("RoPE type \"{other}\" is not supported"))),
        };
        let base = match v.get("rope_theta") {
            None => 10_000.0,
            Some(t) => t.as_f64().ok_or((field, format!("rope_theta {t} is not a number")))? as f32,
        };
        Ok(Rope { base, scale })
    };
    if let Some(p) = json.get("rope_parameters").filter(|v| v.is_object()) {
        if let Some(full) = p.get("full_attention") {
            let local =
                p.get("sliding_attention").map(|l| read("rope_parameters", l)).transpose()?;
            return Ok((read("rope_parameters", full)?, local));
        }
        return Ok((read("rope_parameters", p)?, None));
    }
    let mut top = serde_json::Map::new();
    if let Some(t) = json.get("rope_theta") {
        top.insert("rope_theta".into(), t.clone());
    }
    if let Some(scaling) = json.get("rope_scaling").and_then(Value::as_object) {
        top.extend(
            scaling.iter().filter(|(k, _)| *k != "rope_theta").map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    let global = read("rope_scaling", &Value::Object(top))?;
    let local = match json.get("rope_local_base_freq") {
        None | Some(Value::Null) => None,
        Some(b) => Some(Rope {
            base: b.as_f64().ok_or(("rope_local_base_freq", format!("{b} is not a number")))?
                as f32,
            scale: None,
        }),
    };
    Ok((global, local))
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
        hf_name(name, self.checkpoint.config.post_norms).ok_or_else(|| {
            FormatError::MissingTensor {
                path: self.checkpoint.weights.root().to_owned(),
                tensor: name.to_owned(),
            }
            .into()
        })
    }

    /// The values of `name`, which has `shape`, the file that holds them
    /// and their name there. A part of a fused tensor (Phi-3's q, k, v,
    /// gate and up) is cut from it.
    fn f32(&self, name: &str, shape: &[usize]) -> Result<(PathBuf, String, Vec<f32>)> {
        let w = &self.checkpoint.weights;
        let post_norms = self.checkpoint.config.post_norms;
        let mut stored = self.stored(name)?;
        let fused = fused_part(name, &self.checkpoint.config)
            .filter(|_| !w.contains(&stored))
            .and_then(|(fused, first, total)| Some((hf_name(&fused, post_norms)?, first, total)))
            .filter(|(fused, _, _)| w.contains(fused));
        let data = match (fused, shape) {
            (Some((fused, first, total)), &[rows, cols]) => {
                let all = w.tensor_f32(&fused, &[total, cols])?.data;
                stored = fused;
                rows_of(&all, cols, first, rows)
            }
            _ => w.tensor_f32(&stored, shape)?.data,
        };
        Ok((w.path_of(&stored).to_owned(), stored, data))
    }
}

impl WeightSource for HfSource<'_> {
    fn contains(&self, name: &str) -> bool {
        if name == HEAD && self.checkpoint.tied {
            return false;
        }
        let post_norms = self.checkpoint.config.post_norms;
        hf_name(name, post_norms).is_some_and(|n| self.checkpoint.weights.contains(&n))
    }

    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (_, _, mut v) = self.f32(name, shape)?;
        // Gemma checkpoints store each RMSNorm scale as γ − 1.
        if self.checkpoint.family.traits.norm_minus_one && name.ends_with("norm.weight") {
            v.iter_mut().for_each(|x| *x += 1.0);
        }
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
            assert_eq!(hf_name(ours, false).as_deref(), Some(theirs), "{ours}");
        }
        let gemma = [
            ("blk.1.ffn_norm.weight", "model.layers.1.pre_feedforward_layernorm.weight"),
            ("blk.1.post_attention_norm.weight", "model.layers.1.post_attention_layernorm.weight"),
            ("blk.1.post_ffw_norm.weight", "model.layers.1.post_feedforward_layernorm.weight"),
        ];
        for (ours, theirs) in gemma {
            assert_eq!(hf_name(ours, true).as_deref(), Some(theirs), "{ours}");
        }
        for unknown in ["blk.x.attn_q.weight", "blk.0.attn_q.scale", "blk.0.nothing.weight", "x"] {
            assert_eq!(hf_name(unknown, false), None, "{unknown}");
        }
        assert_eq!(hf_name("blk.0.post_ffw_norm.weight", false), None);
    }
}
