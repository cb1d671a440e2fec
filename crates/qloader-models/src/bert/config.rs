//! `config.json` of a BERT-family encoder: parsed, then checked for values the
//! forward pass can actually run, so that a malformed file fails here with the
//! field's name rather than later with a shape error or a huge allocation.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::Path;

use serde::Deserialize;

use qloader_format::side_file::read_config_text;
use qloader_format::FormatError;

/// Results of reading a model directory.
type Result<T, E = FormatError> = std::result::Result<T, E>;

/// Upper bounds on configuration values. They are far above any BERT-family
/// model in use and only exist so a corrupt file cannot ask for absurd sizes.
const MAX_HIDDEN: usize = 1 << 16;
const MAX_LAYERS: usize = 1 << 10;
const MAX_VOCAB: usize = 1 << 24;
const MAX_POSITIONS: usize = 1 << 17;

/// The subset of a Hugging Face BERT `config.json` that the encoder uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Number of token embeddings.
    pub vocab_size: usize,
    /// Width of the hidden state.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Number of learned position embeddings.
    pub max_position_embeddings: usize,
    /// Number of token-type (segment) embeddings.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// Epsilon of every layer norm.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Activation of the feed-forward layer.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Kind of position embedding.
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".to_owned()
}
fn default_position_type() -> String {
    "absolute".to_owned()
}

impl BertConfig {
    /// Reads and validates `config.json` at `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_json(path, &read_config_text(path)?)
    }

    /// Parses and validates the JSON text of a config; `path` is used in errors.
    pub fn from_json(path: &Path, text: &str) -> Result<Self> {
        let config: BertConfig = serde_json::from_str(text)
            .map_err(|error| FormatError::Json { path: path.to_owned(), error })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &'static str, reason: String| FormatError::ConfigField {
            path: path.to_owned(),
            field,
            reason,
        };
        let in_range = |field: &'static str, v: usize, max: usize| {
            if v == 0 || v > max {
                Err(bad(field, format!("{v} is outside 1..={max}")))
            } else {
                Ok(())
            }
        };
        in_range("vocab_size", self.vocab_size, MAX_VOCAB)?;
        in_range("hidden_size", self.hidden_size, MAX_HIDDEN)?;
        in_range("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS)?;
        in_range("num_attention_heads", self.num_attention_heads, self.hidden_size)?;
        in_range("intermediate_size", self.intermediate_size, 8 * MAX_HIDDEN)?;
        in_range("max_position_embeddings", self.max_position_embeddings, MAX_POSITIONS)?;
        in_range("type_vocab_size", self.type_vocab_size, 1 << 10)?;
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(bad(
                "num_attention_heads",
                format!(
                    "{} does not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(bad(
                "layer_norm_eps",
                format!("{} is not a positive number", self.layer_norm_eps),
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(bad(
                "hidden_act",
                format!("`{}` is not supported (only the exact erf `gelu`)", self.hidden_act),
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(bad(
                "position_embedding_type",
                format!("`{}` is not supported (only `absolute`)", self.position_embedding_type),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{"hidden_size":384,"num_hidden_layers":6,"num_attention_heads":12,
        "intermediate_size":1536,"max_position_embeddings":512,"vocab_size":30522,
        "type_vocab_size":2,"layer_norm_eps":1e-12,"hidden_act":"gelu"}"#;

    fn parse(text: &str) -> Result<BertConfig> {
        BertConfig::from_json(Path::new("config.json"), text)
    }

    #[test]
    fn parses_minilm() {
        let c = parse(MINILM).unwrap();
        assert_eq!(c.head_dim(), 32);
        assert_eq!(c.type_vocab_size, 2);
    }

    #[test]
    fn rejects_bad_values_naming_the_field() {
        let cases = [
            ("\"num_attention_heads\":12", "\"num_attention_heads\":7", "num_attention_heads"),
            ("\"hidden_size\":384", "\"hidden_size\":0", "hidden_size"),
            ("\"num_hidden_layers\":6", "\"num_hidden_layers\":99999999", "num_hidden_layers"),
            ("\"hidden_act\":\"gelu\"", "\"hidden_act\":\"relu\"", "hidden_act"),
        ];
        for (from, to, field) in cases {
            let err = parse(&MINILM.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains("config.json") && err.contains(field), "{err}");
        }
    }

    #[test]
    fn rejects_missing_field_and_bad_json() {
        let err = parse(&MINILM.replace("\"vocab_size\":30522,", "")).unwrap_err().to_string();
        assert!(err.contains("vocab_size"), "{err}");
        let err = parse("{not json").unwrap_err().to_string();
        assert!(err.contains("invalid JSON"), "{err}");
    }
}
