//! A decoder's original checkpoint, whichever input it came as: a GGUF file
//! or a Hugging Face checkpoint directory. It gives what every consumer
//! needs (configuration, tokenizer, a source of the tensors), so that
//! sessions, packing and analysis take either input through one path.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::{Path, PathBuf};

use qloader_format::gguf::GgufFile;
use qloader_format::WeightFormat;
use qloader_quant::ColumnImportance;

use super::config::LlamaConfig;
use super::hf::HfDecoder;
use super::weights::GgufSource;
use crate::error::Result;
use crate::gguf_tokenizer::GgufTokenizer;
use crate::source::WeightSource;

/// A decoder checkpoint, opened and its configuration validated.
pub enum DecoderCheckpoint {
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

impl DecoderCheckpoint {
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

    /// Where it was opened from.
    pub fn path(&self) -> PathBuf {
        match self {
            Self::Gguf { file, .. } => file.path().to_owned(),
            Self::Hf(hf) => hf.weights.root().to_owned(),
        }
    }

    /// The decoder's configuration.
    pub fn config(&self) -> &LlamaConfig {
        match self {
            Self::Gguf { config, .. } => config,
            Self::Hf(hf) => &hf.config,
        }
    }

    /// The GGUF file, if the checkpoint is one.
    pub fn gguf(&self) -> Option<&GgufFile> {
        match self {
            Self::Gguf { file, .. } => Some(file),
            Self::Hf(_) => None,
        }
    }

    /// The checkpoint's tokenizer, checked against the embedding table: every
    /// id it can produce has a row.
    pub fn tokenizer(&self) -> Result<GgufTokenizer> {
        let tokenizer = match self {
            Self::Gguf { file, .. } => GgufTokenizer::from_gguf(file)?,
            Self::Hf(hf) => GgufTokenizer::from_hf_dir(hf.weights.root())?,
        };
        tokenizer.check_vocab(&self.path(), self.config().vocab)?;
        Ok(tokenizer)
    }

    /// A source of the checkpoint's tensors, each quantizable one stored as
    /// `choose` says, its grid search weighted by `importance` where that
    /// names it.
    pub fn source<'a>(
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
