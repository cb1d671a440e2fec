//! The interface between a decoder design and everything that uses a
//! decoder. Sessions, generation, perplexity, benchmarks, packing, loading
//! and sensitivity analysis see a decoder only through these traits:
//!
//! * [`DecoderDesign`]: the code behind one or more families, as
//!   [`crate::family`] lists them. It opens their checkpoints and rebuilds
//!   a decoder from the configuration a packed header recorded.
//! * [`DecoderCheckpoint`]: an original checkpoint, GGUF file or Hugging
//!   Face directory. It gives its configuration, its tokenizer and a source
//!   of its tensors.
//! * [`DecoderConfig`]: a decoder's shape. It names the quantizable tensors,
//!   serializes for packed headers, and builds the decoder from a
//!   [`WeightSource`].
//! * [`Decoder`]: a built decoder. It runs a forward pass over new tokens
//!   with a [`KvCache`], and is a [`ProbedModel`] for analysis.
//!
//! A family the shared Llama-like design cannot express is one design
//! module (its configuration, weights and forward pass) and one entry in
//! [`crate::family::FAMILIES`]; nothing outside this crate changes.

use std::fmt;
use std::path::{Path, PathBuf};

use qloader_format::gguf::GgufFile;
use qloader_format::FormatError;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_quant::{ColumnImportance, QuantSummary};

use crate::error::Result;
use crate::family::{self, Family, Kind};
use crate::gguf_tokenizer::GgufTokenizer;
pub use crate::llama::KvCache;
use crate::probe::ProbedModel;
use crate::source::WeightSource;

/// Which positions' logits a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Every new token's (for perplexity).
    All,
    /// Only the last new token's (for generation).
    Last,
}

/// A built causal language model.
pub trait Decoder: ProbedModel + Send {
    /// Its configuration.
    fn config(&self) -> &dyn DecoderConfig;
    /// An empty KV cache for up to `positions` tokens (at most the
    /// model's context length).
    fn new_cache(&self, positions: usize) -> KvCache;
    /// Runs `ids` (the tokens after those already in `cache`) through the
    /// decoder and appends their keys and values to `cache`. Returns the
    /// logits, `rows × vocab`, with the rows `which` asks for.
    fn forward(&self, ids: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>>;
    /// What the loaded model stores, tensor by tensor.
    fn summary(&self) -> &QuantSummary;
    /// The activations of every linear layer.
    fn activations(&self) -> ActivationFormat;
    /// Uses `act` for the activations of every linear layer.
    fn set_activations(&mut self, act: ActivationFormat);
    /// Builds every weight's product layout now, so that loading pays for it
    /// rather than the first prompt.
    fn prepare_products(&self);
}

/// A decoder's shape.
pub trait DecoderConfig: fmt::Debug + Send + Sync {
    /// The design that builds it.
    fn design(&self) -> &'static dyn DecoderDesign;
    /// Its family, as [`crate::family`] names it.
    fn family(&self) -> &str;
    /// Tokens in the vocabulary.
    fn vocab(&self) -> usize;
    /// Positions the model was trained for.
    fn context(&self) -> usize;
    /// The quantizable tensors' names, in model order.
    fn tensor_names(&self) -> Vec<String>;
    /// The configuration as a packed header records it. The design's
    /// [`DecoderDesign::read_header`] reads it back.
    fn to_json(&self) -> serde_json::Value;
    /// Builds the decoder from the tensors of `source`.
    /// `progress(done, total)` hears about the blocks as they load.
    fn build(
        &self,
        source: &mut dyn WeightSource,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Box<dyn Decoder>>;
}

/// An original decoder checkpoint, opened and its configuration validated.
pub trait DecoderCheckpoint {
    /// Where it was opened from.
    fn path(&self) -> PathBuf;
    /// Its configuration.
    fn config(&self) -> &dyn DecoderConfig;
    /// The GGUF file, if the checkpoint is one (its metadata is kept for
    /// `qloader export`).
    fn gguf(&self) -> Option<&GgufFile>;
    /// Its tokenizer, checked against the embedding table: every id the
    /// tokenizer can produce has a row.
    fn tokenizer(&self) -> Result<GgufTokenizer>;
    /// A source of its tensors. Each quantizable one is stored as `choose`
    /// says, its grid search weighted by `importance` where that names it.
    fn source<'a>(
        &'a self,
        choose: &'a dyn Fn(&str) -> WeightFormat,
        importance: Option<&'a ColumnImportance>,
    ) -> Box<dyn WeightSource + 'a>;

    /// Builds the decoder with its quantizable tensors as `choose` says.
    fn build(
        &self,
        choose: &dyn Fn(&str) -> WeightFormat,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Box<dyn Decoder>> {
        let mut source = self.source(choose, None);
        self.config().build(source.as_mut(), progress)
    }
}

/// The code behind one or more decoder families.
pub trait DecoderDesign: Sync {
    /// The architecture name a packed header records for its models.
    fn name(&self) -> &'static str;
    /// Opens a checkpoint of `family`, one of this design's families: a
    /// GGUF file or a Hugging Face checkpoint directory.
    fn open_checkpoint(
        &self,
        family: &'static Family,
        path: &Path,
    ) -> Result<Box<dyn DecoderCheckpoint>>;
    /// Reads the configuration a packed header recorded
    /// ([`DecoderConfig::to_json`]), or says why it is not one.
    fn read_header(
        &self,
        config: &serde_json::Value,
    ) -> std::result::Result<Box<dyn DecoderConfig>, String>;
}

impl fmt::Debug for dyn DecoderDesign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecoderDesign({})", self.name())
    }
}

/// Every decoder design, by the name packed headers record.
pub fn designs() -> impl Iterator<Item = &'static dyn DecoderDesign> {
    let mut seen: Vec<&'static str> = Vec::new();
    family::FAMILIES.iter().filter_map(move |f| match f.kind {
        Kind::Decoder(design) if !seen.contains(&design.name()) => {
            seen.push(design.name());
            Some(design)
        }
        _ => None,
    })
}

/// The decoder design packed headers call `name`.
pub fn design(name: &str) -> Option<&'static dyn DecoderDesign> {
    designs().find(|d| d.name() == name)
}

/// Opens the decoder checkpoint at `path` (a GGUF file or a Hugging Face
/// checkpoint directory) with the design of the family its architecture
/// names. An encoder's checkpoint is an error.
pub fn open_checkpoint(path: &Path) -> Result<Box<dyn DecoderCheckpoint>> {
    let family = family::detect(path)?;
    match family.kind {
        Kind::Decoder(design) => design.open_checkpoint(family, path),
        Kind::Encoder => {
            let reason = format!("a {} model is an encoder, not a decoder", family.name);
            let error = if path.is_dir() {
                FormatError::ConfigField {
                    path: path.join("config.json"),
                    field: "architectures",
                    reason,
                }
            } else {
                FormatError::Gguf { path: path.to_owned(), reason }
            };
            Err(error.into())
        }
    }
}

/// Opens the decoder at `path` (see [`open_checkpoint`]) with its quantizable
/// tensors as `choose` says.
pub fn open(
    path: &Path,
    choose: &dyn Fn(&str) -> WeightFormat,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Box<dyn Decoder>> {
    open_checkpoint(path)?.build(choose, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn designs_are_listed_once_by_name() {
        let names: Vec<&str> = designs().map(|d| d.name()).collect();
        assert_eq!(names, ["llama"]);
        assert_eq!(design("llama").map(|d| d.name()), Some("llama"));
        assert!(design("bert").is_none(), "an encoder is not a decoder design");
    }

    #[test]
    fn a_header_config_is_checked_by_its_design() {
        let llama = design("llama").unwrap();
        let reason = llama.read_header(&serde_json::json!({"layers": 1})).unwrap_err();
        assert!(reason.contains("missing field"), "{reason}");
    }
}
