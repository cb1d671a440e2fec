//! The shared Llama-like design as a [`DecoderDesign`]: its checkpoints
//! ([`LlamaCheckpoint`], a GGUF file or a Hugging Face checkpoint
//! directory), its configuration ([`LlamaConfig`]) and its model
//! ([`LlamaModel`]) behind the traits that sessions, packing and analysis
//! use. Every family whose features the configuration can switch on
//! (Llama, Mistral, Qwen2, Qwen3, Gemma 2 and 3, Phi-3) is built by it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::{Path, PathBuf};

use qloader_format::gguf::GgufFile;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_quant::{ColumnImportance, QuantSummary};
use serde::Deserialize;

use super::config::LlamaConfig;
use super::forward::LlamaModel;
use super::hf::HfDecoder;
use super::kv_cache::KvCache;
use super::weights::{tensor_names, GgufSource};
use crate::decoder::{Decoder, DecoderCheckpoint, DecoderConfig, DecoderDesign, Logits};
use crate::error::Result;
use crate::family::Family;
use crate::gguf_tokenizer::GgufTokenizer;
use crate::source::WeightSource;

/// The Llama-like decoder design.
#[derive(Debug, Clone, Copy)]
pub struct LlamaDesign;

/// The one instance the family registry names.
pub const LLAMA_DESIGN: LlamaDesign = LlamaDesign;

impl DecoderDesign for LlamaDesign {
    fn name(&self) -> &'static str {
        "llama"
    }

    fn open_checkpoint(
        &self,
        _family: &'static Family,
        path: &Path,
    ) -> Result<Box<dyn DecoderCheckpoint>> {
        Ok(Box::new(LlamaCheckpoint::open(path)?))
    }

    fn read_header(
        &self,
        config: &serde_json::Value,
    ) -> std::result::Result<Box<dyn DecoderConfig>, String> {
        Ok(Box::new(LlamaConfig::from_header(config)?))
    }
}

impl LlamaConfig {
    /// The configuration a packed header recorded
    /// ([`DecoderConfig::to_json`]), validated, or why it is not one.
    pub fn from_header(config: &serde_json::Value) -> std::result::Result<Self, String> {
        let config = Self::deserialize(config).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }
}

impl DecoderConfig for LlamaConfig {
    fn design(&self) -> &'static dyn DecoderDesign {
        &LLAMA_DESIGN
    }

    fn family(&self) -> &str {
        &self.family
    }

    fn vocab(&self) -> usize {
        self.vocab
    }

    fn context(&self) -> usize {
        self.context
    }

    fn tensor_names(&self) -> Vec<String> {
        tensor_names(self)
    }

    fn to_json(&self) -> serde_json::Value {
        // A struct of numbers, strings and options always serializes.
        serde_json::to_value(self).unwrap_or_default()
    }

    fn build(
        &self,
        source: &mut dyn WeightSource,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Box<dyn Decoder>> {
        Ok(Box::new(LlamaModel::from_source(self.clone(), source, progress)?))
    }
}

impl Decoder for LlamaModel {
    fn config(&self) -> &dyn DecoderConfig {
        LlamaModel::config(self)
    }

    fn new_cache(&self, positions: usize) -> KvCache {
        LlamaModel::new_cache(self, positions)
    }

    fn forward(&self, ids: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>> {
        LlamaModel::forward(self, ids, cache, which)
    }

    fn summary(&self) -> &QuantSummary {
        LlamaModel::summary(self)
    }

    fn activations(&self) -> ActivationFormat {
        LlamaModel::activations(self)
    }

    fn set_activations(&mut self, act: ActivationFormat) {
        LlamaModel::set_activations(self, act);
    }

    fn prepare_products(&self) {
        LlamaModel::prepare_products(self);
    }
}

/// A Llama-like decoder's checkpoint, whichever input it came as.
pub enum LlamaCheckpoint {
    /// A GGUF file.
    Gguf {
        /// The file.
        file: GgufFile,
        /// Its configuration.
        config: LlamaConfig,
    },
    /// A Hugging Face checkpoint directory.
    Hf(HfDecoder),
}

impl LlamaCheckpoint {
    /// Opens `path`: a directory as a Hugging Face checkpoint, anything else
    /// as a GGUF file.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Ok(Self::Hf(HfDecoder::open(path)?));
        }
        let file = GgufFile::open(path)?;
        let config = LlamaConfig::from_gguf(&file)?;
        Ok(Self::Gguf { file, config })
    }

    /// The decoder's configuration.
    pub fn llama_config(&self) -> &LlamaConfig {
        match self {
            Self::Gguf { config, .. } => config,
            Self::Hf(hf) => &hf.config,
        }
    }
}

impl DecoderCheckpoint for LlamaCheckpoint {
    fn path(&self) -> PathBuf {
        match self {
            Self::Gguf { file, .. } => file.path().to_owned(),
            Self::Hf(hf) => hf.weights.root().to_owned(),
        }
    }

    fn config(&self) -> &dyn DecoderConfig {
        self.llama_config()
    }

    fn gguf(&self) -> Option<&GgufFile> {
        match self {
            Self::Gguf { file, .. } => Some(file),
            Self::Hf(_) => None,
        }
    }

    fn tokenizer(&self) -> Result<GgufTokenizer> {
        let tokenizer = match self {
            Self::Gguf { file, .. } => GgufTokenizer::from_gguf(file)?,
            Self::Hf(hf) => GgufTokenizer::from_hf_dir(hf.weights.root())?,
        };
        tokenizer.check_vocab(&self.path(), self.llama_config().vocab)?;
        Ok(tokenizer)
    }

    fn source<'a>(
        &'a self,
        choose: &'a dyn Fn(&str) -> WeightFormat,
        importance: Option<&'a ColumnImportance>,
    ) -> Box<dyn WeightSource + 'a> {
        match (self, importance) {
            (Self::Gguf { file, .. }, None) => Box::new(GgufSource::new(file, choose)),
            (Self::Gguf { file, .. }, Some(m)) => {
                Box::new(GgufSource::new(file, choose).with_importance(m))
            }
            (Self::Hf(hf), None) => Box::new(hf.source(choose)),
            (Self::Hf(hf), Some(m)) => Box::new(hf.source(choose).with_importance(m)),
        }
    }
}
