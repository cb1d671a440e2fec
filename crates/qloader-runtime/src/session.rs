//! An encoder ready to embed text: model directory, tokenizer and weights in
//! one format (quantized to nearest as the model loads, or given already
//! quantized, e.g. by GPTQ).

use std::collections::BTreeMap;
use std::path::Path;

use qloader_format::{ActivationFormat, WeightFormat};
use qloader_models::bert::ModelDir;
use qloader_models::bert::{linear_layers_in, SafetensorsSource};
use qloader_models::{BertEncoder, ReplacingSource, SentenceTokenizer};
use qloader_quant::{LinearWeight, QuantSummary};

use crate::error::Result;
use crate::packed::Quantization;

/// A sentence encoder whose linear weights are all stored in one format.
pub struct EncoderSession {
    dir: ModelDir,
    tokenizer: SentenceTokenizer,
    encoder: BertEncoder,
    format: WeightFormat,
}

impl EncoderSession {
    /// Opens the model in `path`, quantizing every linear weight to `format`
    /// and running its products with activations in `act`.
    pub fn open(path: &Path, format: WeightFormat, act: ActivationFormat) -> Result<Self> {
        let dir = ModelDir::open(path)?;
        Self::from_dir(dir, format, act)
    }

    /// Builds a session from an already validated directory.
    pub fn from_dir(dir: ModelDir, format: WeightFormat, act: ActivationFormat) -> Result<Self> {
        let tokenizer = SentenceTokenizer::from_file(&dir.tokenizer_path, dir.max_seq_length)?;
        tokenizer.check_vocab(&dir.tokenizer_path, dir.config.vocab_size)?;
        let encoder = BertEncoder::load(&dir, &qloader_models::bert::linear_layers_in(format))?
            .with_activations(act);
        Ok(Self { dir, tokenizer, encoder, format })
    }

    /// Like [`EncoderSession::from_dir`], but the linear weights named in
    /// `weights` (tensor names as [`qloader_models::bert::tensor_names`]
    /// gives them) are taken from there as they are; every other linear
    /// weight is quantized to `format` as the model loads.
    pub fn with_weights(
        dir: ModelDir,
        format: WeightFormat,
        weights: BTreeMap<String, LinearWeight>,
        act: ActivationFormat,
    ) -> Result<Self> {
        let quantization = Quantization { replacements: weights, ..Quantization::default() };
        Self::quantized(dir, format, quantization, act)
    }

    /// Like [`EncoderSession::from_dir`], with the codes made as
    /// `quantization` says (its replacements stored as they are, the other
    /// linear weights' grids weighted by its importance vectors).
    pub fn quantized(
        dir: ModelDir,
        format: WeightFormat,
        quantization: Quantization,
        act: ActivationFormat,
    ) -> Result<Self> {
        let tokenizer = SentenceTokenizer::from_file(&dir.tokenizer_path, dir.max_seq_length)?;
        tokenizer.check_vocab(&dir.tokenizer_path, dir.config.vocab_size)?;
        let file = dir.open_weights()?;
        let choose = linear_layers_in(format);
        let mut checkpoint = SafetensorsSource::new(&file, &choose);
        if let Some(importance) = &quantization.importance {
            checkpoint = checkpoint.with_importance(importance);
        }
        let mut source = ReplacingSource::new(&mut checkpoint, quantization.replacements);
        let encoder =
            BertEncoder::from_source(dir.config.clone(), dir.pooling, dir.normalize, &mut source)?
                .with_activations(act);
        Ok(Self { dir, tokenizer, encoder, format })
    }

    /// The model directory.
    pub fn model_dir(&self) -> &ModelDir {
        &self.dir
    }

    /// The format of the linear weights.
    pub fn format(&self) -> WeightFormat {
        self.format
    }

    /// What the model stores.
    pub fn summary(&self) -> &QuantSummary {
        self.encoder.summary()
    }

    /// Width of an embedding.
    pub fn embedding_dim(&self) -> usize {
        self.encoder.embedding_dim()
    }

    /// The embedding of one text.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let ids = self.tokenizer.encode(text)?;
        Ok(self.encoder.embed_ids(&ids)?)
    }

    /// The embeddings of several texts, in order.
    pub fn embed_all<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        texts.iter().map(|t| self.embed(t.as_ref())).collect()
    }
}
