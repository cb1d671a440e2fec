//! A sentence-transformers model directory: finds its files, reads the small
//! JSON side files (pooling, normalisation, maximum sequence length) and
//! reports precisely which file is missing or malformed.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::{Path, PathBuf};

use serde::Deserialize;

use qloader_format::side_file::read_config_text;
use qloader_format::{FormatError, SafetensorsFile};

use super::config::BertConfig;

/// Results of reading a model directory.
type Result<T, E = FormatError> = std::result::Result<T, E>;

/// How token states are pooled into one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingMode {
    /// Average over all tokens of the sentence.
    Mean,
    /// The state of the first (`[CLS]`) token.
    Cls,
}

/// The validated layout of a model directory.
#[derive(Debug, Clone)]
pub struct ModelDir {
    /// The directory.
    pub root: PathBuf,
    /// Parsed and validated `config.json`.
    pub config: BertConfig,
    /// Path of `model.safetensors`.
    pub weights_path: PathBuf,
    /// Path of `tokenizer.json`.
    pub tokenizer_path: PathBuf,
    /// How the sentence embedding is pooled.
    pub pooling: PoolingMode,
    /// Whether the sentence embedding is L2-normalised.
    pub normalize: bool,
    /// Longest token sequence fed to the encoder; longer inputs are truncated.
    pub max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type")]
    kind: String,
}

impl ModelDir {
    /// Checks that `root` holds a usable encoder and reads its configuration.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.exists() {
            return Err(FormatError::ModelDir {
                path: root.to_owned(),
                reason: "does not exist".to_owned(),
            });
        }
        if !root.is_dir() {
            return Err(FormatError::ModelDir {
                path: root.to_owned(),
                reason: "is not a directory".to_owned(),
            });
        }
        let config_path = require(root, "config.json", "model configuration")?;
        let weights_path = require(root, "model.safetensors", "model weights")?;
        let tokenizer_path = require(root, "tokenizer.json", "tokenizer")?;
        let config = BertConfig::from_file(&config_path)?;

        let pooling = match read_optional::<PoolingConfig>(&root.join("1_Pooling/config.json"))? {
            None => PoolingMode::Mean,
            Some((path, p)) => pooling_mode(&path, &p)?,
        };
        let normalize = match read_optional::<Vec<ModuleEntry>>(&root.join("modules.json"))? {
            None => false,
            Some((_, modules)) => modules.iter().any(|m| m.kind.ends_with(".Normalize")),
        };
        let max_seq_length =
            match read_optional::<SentenceBertConfig>(&root.join("sentence_bert_config.json"))? {
                Some((path, SentenceBertConfig { max_seq_length: Some(n) })) => {
                    if n == 0 || n > config.max_position_embeddings {
                        return Err(FormatError::ConfigField {
                            path,
                            field: "max_seq_length",
                            reason: format!(
                                "{n} is outside 1..={} (max_position_embeddings)",
                                config.max_position_embeddings
                            ),
                        });
                    }
                    n
                }
                _ => config.max_position_embeddings,
            };
        Ok(Self {
            root: root.to_owned(),
            config,
            weights_path,
            tokenizer_path,
            pooling,
            normalize,
            max_seq_length,
        })
    }

    /// Maps and validates the weights file.
    pub fn open_weights(&self) -> Result<SafetensorsFile> {
        SafetensorsFile::open(&self.weights_path)
    }
}

fn require(root: &Path, name: &str, what: &'static str) -> Result<PathBuf> {
    let path = root.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(FormatError::MissingFile { path, what })
    }
}

fn read_optional<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<(PathBuf, T)>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = read_config_text(path)?;
    let value = serde_json::from_str(&text)
        .map_err(|error| FormatError::Json { path: path.to_owned(), error })?;
    Ok(Some((path.to_owned(), value)))
}

fn pooling_mode(path: &Path, p: &PoolingConfig) -> Result<PoolingMode> {
    let unsupported = p.pooling_mode_max_tokens || p.pooling_mode_mean_sqrt_len_tokens;
    match (p.pooling_mode_mean_tokens, p.pooling_mode_cls_token, unsupported) {
        (true, false, false) => Ok(PoolingMode::Mean),
        (false, true, false) => Ok(PoolingMode::Cls),
        _ => Err(FormatError::ConfigField {
            path: path.to_owned(),
            field: "pooling_mode_*",
            reason: "exactly one of mean or cls pooling must be enabled".to_owned(),
        }),
    }
}
