//! The registry of model families: which architectures QLoader runs, how a
//! file names each (GGUF `general.architecture`, Hugging Face
//! `config.json` `architectures`), and what kind of model it is: an encoder,
//! or a decoder built by a [`DecoderDesign`]. A model is
//! opened by looking its architecture up here, never by the shape of its
//! path; an architecture not listed gets an error that lists those that are.
//!
//! What a model of a family has (biases, norms, windows) is read from its
//! file by the family's design; the registry only says which design, and
//! what the architecture fixes that its files do not record.

use std::path::Path;

use qloader_format::gguf::GgufFile;
use qloader_format::hf_checkpoint::read_config_json;
use qloader_format::FormatError;

use crate::decoder::DecoderDesign;
use crate::error::Result;
use crate::llama::config::{GateActivation, RopeStyle};
use crate::llama::LLAMA_DESIGN;

/// What a family's models do.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A causal language model (logits for the next token), built by this
    /// design.
    Decoder(&'static dyn DecoderDesign),
    /// A sentence encoder: one embedding per text.
    Encoder,
}

impl Kind {
    /// Whether it is a decoder (of any design).
    pub fn is_decoder(&self) -> bool {
        matches!(self, Kind::Decoder(_))
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Kind::Decoder(a), Kind::Decoder(b)) => a.name() == b.name(),
            (Kind::Encoder, Kind::Encoder) => true,
            _ => false,
        }
    }
}

/// One model family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    /// Its name in QLoader (packed headers, messages).
    pub name: &'static str,
    /// Decoder or encoder.
    pub kind: Kind,
    /// GGUF `general.architecture` values it reads.
    pub gguf: &'static [&'static str],
    /// Hugging Face `config.json` `architectures` entries it reads.
    pub hf: &'static [&'static str],
    /// How the family's GGUF tensors pair dimensions for RoPE (decoders).
    pub gguf_rope: RopeStyle,
    /// What the family's architecture fixes and its files do not record.
    pub traits: Traits,
}

/// What an architecture fixes and its files do not record (its reference
/// implementation hard-codes it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traits {
    /// Hugging Face checkpoints store RMSNorm scales as `γ − 1` (Gemma).
    pub norm_minus_one: bool,
    /// Token embeddings are multiplied by √hidden (Gemma).
    pub embed_scaled: bool,
    /// The feed-forward gate is GELU (tanh approximation) instead of SiLU.
    pub gelu_gate: bool,
    /// Where a file gives a sliding window but not which layers use it:
    /// every `n`-th layer is global, the others local (Gemma 2: 2, Gemma
    /// 3: 6).
    pub local_pattern: Option<usize>,
    /// RoPE base of the local layers where a GGUF file does not record it
    /// (Gemma 3: 10 000).
    pub gguf_local_rope_base: Option<f32>,
    /// GGUF files record no attention scale; llama.cpp scales the scores of
    /// models with this many layers (Gemma's 27B) by `1/√(hidden/heads)`
    /// and all others by `1/√head_dim`, as their `query_pre_attn_scalar`s
    /// are.
    pub gguf_wide_scale_layers: Option<usize>,
}

/// The traits of a Llama-like family: none.
const PLAIN: Traits = Traits {
    norm_minus_one: false,
    embed_scaled: false,
    gelu_gate: false,
    local_pattern: None,
    gguf_local_rope_base: None,
    gguf_wide_scale_layers: None,
};

/// Gemma's traits; `local_pattern` differs between versions.
const fn gemma(
    local_pattern: usize,
    gguf_local_rope_base: Option<f32>,
    gguf_wide_scale_layers: usize,
) -> Traits {
    Traits {
        norm_minus_one: true,
        embed_scaled: true,
        gelu_gate: true,
        local_pattern: Some(local_pattern),
        gguf_local_rope_base,
        gguf_wide_scale_layers: Some(gguf_wide_scale_layers),
    }
}

/// The families the shared Llama-like decoder builds.
const LLAMA_LIKE: Kind = Kind::Decoder(&LLAMA_DESIGN);

/// Every family QLoader runs.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "llama",
        kind: LLAMA_LIKE,
        gguf: &["llama"],
        hf: &["LlamaForCausalLM"],
        gguf_rope: RopeStyle::Interleaved,
        traits: PLAIN,
    },
    Family {
        name: "mistral",
        kind: LLAMA_LIKE,
        // llama.cpp converts Mistral models as `llama`; the window, if any,
        // is then in `llama.attention.sliding_window`.
        gguf: &[],
        hf: &["MistralForCausalLM"],
        gguf_rope: RopeStyle::Interleaved,
        traits: PLAIN,
    },
    Family {
        name: "qwen2",
        kind: LLAMA_LIKE,
        gguf: &["qwen2"],
        hf: &["Qwen2ForCausalLM"],
        gguf_rope: RopeStyle::Halves,
        traits: PLAIN,
    },
    Family {
        name: "qwen3",
        kind: LLAMA_LIKE,
        gguf: &["qwen3"],
        hf: &["Qwen3ForCausalLM"],
        gguf_rope: RopeStyle::Halves,
        traits: PLAIN,
    },
    Family {
        name: "gemma2",
        kind: LLAMA_LIKE,
        gguf: &["gemma2"],
        hf: &["Gemma2ForCausalLM"],
        gguf_rope: RopeStyle::Halves,
        traits: gemma(2, None, 46),
    },
    Family {
        name: "gemma3",
        kind: LLAMA_LIKE,
        gguf: &["gemma3"],
        hf: &["Gemma3ForCausalLM"],
        gguf_rope: RopeStyle::Halves,
        traits: gemma(6, Some(10_000.0), 62),
    },
    Family {
        name: "phi3",
        kind: LLAMA_LIKE,
        gguf: &["phi3"],
        hf: &["Phi3ForCausalLM"],
        gguf_rope: RopeStyle::Halves,
        traits: PLAIN,
    },
    Family {
        name: "bert",
        kind: Kind::Encoder,
        gguf: &[],
        hf: &["BertModel", "BertForMaskedLM", "BertForPreTraining"],
        gguf_rope: RopeStyle::Interleaved,
        traits: PLAIN,
    },
];

impl Traits {
    /// The attention scale of a GGUF file of this family that records none:
    /// `None` (the default `1/√head_dim`) unless the model is one whose
    /// scale llama.cpp derives from its size.
    pub fn gguf_attention_scale(&self, layers: usize, hidden: usize, heads: usize) -> Option<f32> {
        (self.gguf_wide_scale_layers == Some(layers) && heads > 0)
            .then(|| 1.0 / ((hidden / heads) as f32).sqrt())
    }
}

impl Family {
    /// The feed-forward gate's activation.
    pub fn activation(&self) -> GateActivation {
        if self.traits.gelu_gate {
            GateActivation::GeluTanh
        } else {
            GateActivation::Silu
        }
    }
}

/// The family that reads GGUF files of architecture `arch`.
pub fn from_gguf_architecture(arch: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.gguf.contains(&arch))
}

/// The family that reads a Hugging Face checkpoint whose `config.json`
/// lists `architectures` (the first one QLoader knows).
pub fn from_hf_architectures<'a>(
    architectures: impl IntoIterator<Item = &'a str>,
) -> Option<&'static Family> {
    architectures.into_iter().find_map(|a| FAMILIES.iter().find(|f| f.hf.contains(&a)))
}

/// The family called `name`.
pub fn by_name(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// The family of the model at `path`: a directory's by its `config.json`
/// (`architectures`, else `model_type`), a file's by its GGUF
/// `general.architecture`. An architecture no family reads is an error that
/// lists those that exist.
pub fn detect(path: &Path) -> Result<&'static Family> {
    if path.is_dir() {
        return of_config(path, &read_config_json(path)?);
    }
    let file = GgufFile::open(path)?;
    let arch = file.get_str("general.architecture")?;
    from_gguf_architecture(arch).ok_or_else(|| {
        FormatError::Gguf {
            path: path.to_owned(),
            reason: unsupported(&format!("architecture `{arch}`")),
        }
        .into()
    })
}

/// The family of the model directory `dir` whose `config.json` is `json`
/// (`architectures`, else `model_type`).
pub fn of_config(dir: &Path, json: &serde_json::Value) -> Result<&'static Family> {
    let names: Vec<&str> = json
        .get("architectures")
        .and_then(serde_json::Value::as_array)
        .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    let model_type = json.get("model_type").and_then(serde_json::Value::as_str);
    let found = from_hf_architectures(names.iter().copied())
        .or_else(|| names.is_empty().then(|| model_type.and_then(by_name)).flatten());
    let what = match (names.as_slice(), model_type) {
        ([], None) => "a config.json naming no architecture".to_owned(),
        ([], Some(t)) => format!("model type `{t}`"),
        (names, _) => format!("architecture `{}`", names.join("`, `")),
    };
    found.ok_or_else(|| {
        FormatError::ConfigField {
            path: dir.join("config.json"),
            field: "architectures",
            reason: unsupported(&what),
        }
        .into()
    })
}

/// "`what` is not supported", followed by every family and the names its
/// inputs give it.
pub fn unsupported(what: &str) -> String {
    format!("{what} is not supported (supported: {})", supported())
}

/// Every family and the names its inputs give it, for messages and
/// `--help`: `llama (GGUF llama; Hugging Face LlamaForCausalLM), …`.
pub fn supported() -> String {
    FAMILIES
        .iter()
        .map(|f| {
            let mut names = Vec::new();
            if !f.gguf.is_empty() {
                names.push(format!("GGUF {}", f.gguf.join(", ")));
            }
            if !f.hf.is_empty() {
                names.push(format!("Hugging Face {}", f.hf.join(", ")));
            }
            format!("{} ({})", f.name, names.join("; "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_belongs_to_one_family() {
        let (mut names, mut gguf, mut hf) = Default::default();
        let once = |seen: &mut std::collections::HashSet<&str>, name| {
            assert!(seen.insert(name), "`{name}` names two families");
        };
        for f in FAMILIES {
            once(&mut names, f.name);
            f.gguf.iter().for_each(|n| once(&mut gguf, n));
            f.hf.iter().for_each(|n| once(&mut hf, n));
        }
    }

    #[test]
    fn gemma_27b_gguf_files_scale_attention_by_the_width_per_head() {
        let gemma2 = by_name("gemma2").unwrap().traits;
        // Gemma 2 27B: 46 layers, hidden 4608, 32 heads of 128: 1/√144.
        assert_eq!(gemma2.gguf_attention_scale(46, 4608, 32), Some(1.0 / 12.0));
        // Gemma 2 9B (42 layers) keeps 1/√head_dim.
        assert_eq!(gemma2.gguf_attention_scale(42, 3584, 16), None);
        let gemma3 = by_name("gemma3").unwrap().traits;
        assert_eq!(gemma3.gguf_attention_scale(62, 5376, 32), Some(1.0 / 168f32.sqrt()));
        assert_eq!(by_name("llama").unwrap().traits.gguf_attention_scale(46, 4608, 32), None);
    }

    #[test]
    fn look_ups_find_the_family_or_nothing() {
        assert_eq!(from_gguf_architecture("qwen3").map(|f| f.name), Some("qwen3"));
        assert_eq!(from_gguf_architecture("llama").map(|f| f.name), Some("llama"));
        assert!(from_gguf_architecture("gpt2").is_none());
        let mistral = from_hf_architectures(["Foo", "MistralForCausalLM"]);
        assert_eq!(mistral.map(|f| f.name), Some("mistral"));
        assert!(from_hf_architectures(["GPT2LMHeadModel"]).is_none());
        assert_eq!(by_name("bert").map(|f| f.kind), Some(Kind::Encoder));
        let msg = unsupported("architecture `gpt2`");
        assert!(msg.starts_with("architecture `gpt2` is not supported (supported: llama (GGUF"));
        assert!(msg.contains("qwen2 (GGUF qwen2; Hugging Face Qwen2ForCausalLM)"), "{msg}");
    }
}
