//! A BERT encoder's weights: their names and shapes, taken from any
//! [`WeightSource`], and the source that reads a sentence-transformers
//! checkpoint (every tensor's shape is checked against `config.json` before
//! its data is read; each quantizable tensor is stored in the format the
//! caller chooses for it by name).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use crate::bert::BertConfig;
use qloader_format::{SafetensorsFile, WeightFormat};
use qloader_quant::{ColumnImportance, LinearWeight, QuantSummary};

use crate::error::Result;
use crate::source::{record_values, record_weight, store, WeightRole, WeightSource};

/// Which linear layer of a block a weight belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearKind {
    /// Attention query projection.
    Query,
    /// Attention key projection.
    Key,
    /// Attention value projection.
    Value,
    /// Attention output projection.
    AttentionOutput,
    /// Feed-forward up projection.
    Intermediate,
    /// Feed-forward down projection.
    Output,
}

impl LinearKind {
    /// All kinds, in block order.
    pub const ALL: [LinearKind; 6] = [
        LinearKind::Query,
        LinearKind::Key,
        LinearKind::Value,
        LinearKind::AttentionOutput,
        LinearKind::Intermediate,
        LinearKind::Output,
    ];

    fn path(self) -> &'static str {
        match self {
            LinearKind::Query => "attention.self.query",
            LinearKind::Key => "attention.self.key",
            LinearKind::Value => "attention.self.value",
            LinearKind::AttentionOutput => "attention.output.dense",
            LinearKind::Intermediate => "intermediate.dense",
            LinearKind::Output => "output.dense",
        }
    }

    /// `(out, in)` features of this layer.
    pub(crate) fn shape(self, c: &BertConfig) -> (usize, usize) {
        match self {
            LinearKind::Intermediate => (c.intermediate_size, c.hidden_size),
            LinearKind::Output => (c.hidden_size, c.intermediate_size),
            _ => (c.hidden_size, c.hidden_size),
        }
    }
}

/// The word-embedding table's name (without a checkpoint prefix).
pub const WORD_EMBEDDINGS: &str = "embeddings.word_embeddings.weight";

/// A format chooser for uniform quantization: every linear layer in
/// `format`, the word-embedding table kept in `f32`.
pub fn linear_layers_in(format: WeightFormat) -> impl Fn(&str) -> WeightFormat {
    move |name| if name == WORD_EMBEDDINGS { WeightFormat::F32 } else { format }
}

/// Names of the linear weight tensors of a BERT encoder, in model order,
/// without any checkpoint prefix.
pub fn tensor_names(config: &BertConfig) -> Vec<String> {
    (0..config.num_hidden_layers)
        .flat_map(|l| LinearKind::ALL.map(|k| format!("encoder.layer.{l}.{}.weight", k.path())))
        .collect()
}

/// A linear layer: weight in some format, bias in f32.
pub(crate) struct Linear {
    pub weight: LinearWeight,
    pub bias: Vec<f32>,
}

/// Scale and shift of a layer norm.
pub(crate) struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// One transformer block.
pub(crate) struct Block {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attention_output: Linear,
    pub attention_norm: Norm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: Norm,
}

impl Block {
    /// The linear layer of `kind`.
    pub fn linear(&self, kind: LinearKind) -> &Linear {
        match kind {
            LinearKind::Query => &self.query,
            LinearKind::Key => &self.key,
            LinearKind::Value => &self.value,
            LinearKind::AttentionOutput => &self.attention_output,
            LinearKind::Intermediate => &self.intermediate,
            LinearKind::Output => &self.output,
        }
    }
}

/// All weights of the encoder.
pub(crate) struct BertWeights {
    /// `vocab × hidden`, in any format (rows are de-quantized on look-up).
    pub word_embeddings: LinearWeight,
    pub position_embeddings: Vec<f32>,
    pub token_type_embeddings: Vec<f32>,
    pub embedding_norm: Norm,
    pub blocks: Vec<Block>,
}

/// The tensors of a sentence-transformers checkpoint (`model.safetensors`),
/// under an optional prefix (`bert.`), each quantizable tensor quantized to
/// the format `choose(name)` returns.
pub struct SafetensorsSource<'a> {
    file: &'a SafetensorsFile,
    prefix: &'static str,
    choose: &'a dyn Fn(&str) -> WeightFormat,
    importance: Option<&'a ColumnImportance>,
    summary: QuantSummary,
}

impl<'a> SafetensorsSource<'a> {
    /// Reads `file`, storing quantizable tensors as `choose` says.
    pub fn new(file: &'a SafetensorsFile, choose: &'a dyn Fn(&str) -> WeightFormat) -> Self {
        let probe = WORD_EMBEDDINGS;
        let prefix = if file.info(probe).is_none() && file.info(&format!("bert.{probe}")).is_some()
        {
            "bert."
        } else {
            ""
        };
        Self { file, prefix, choose, importance: None, summary: QuantSummary::default() }
    }

    /// Weighs the grid search of each tensor `importance` names by its
    /// vector (the `imatrix` method).
    pub fn with_importance(mut self, importance: &'a ColumnImportance) -> Self {
        self.importance = Some(importance);
        self
    }
}

impl WeightSource for SafetensorsSource<'_> {
    fn contains(&self, name: &str) -> bool {
        self.file.info(&format!("{}{name}", self.prefix)).is_some()
    }

    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        let t = self.file.tensor_f32(&full, shape)?;
        record_values(&mut self.summary, name, t.data.len());
        Ok(t.data)
    }

    fn weight(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        role: WeightRole,
    ) -> Result<LinearWeight> {
        let full = format!("{}{name}", self.prefix);
        let data = self.file.tensor_f32(&full, &[rows, cols])?.data;
        let importance = self.importance.and_then(|m| m.get(name));
        let format = (self.choose)(name);
        let w = store((self.file.path(), &full), data, (rows, cols), format, role, importance)?;
        record_weight(&mut self.summary, name, &w, role);
        Ok(w)
    }

    fn summary(&self) -> &QuantSummary {
        &self.summary
    }
}

fn norm(src: &mut dyn WeightSource, path: &str, width: usize) -> Result<Norm> {
    Ok(Norm {
        gamma: src.values(&format!("{path}.weight"), &[width])?,
        beta: src.values(&format!("{path}.bias"), &[width])?,
    })
}

fn linear(
    src: &mut dyn WeightSource,
    layer: usize,
    kind: LinearKind,
    config: &BertConfig,
) -> Result<Linear> {
    let (out, inp) = kind.shape(config);
    let base = format!("encoder.layer.{layer}.{}", kind.path());
    let weight = src.weight(&format!("{base}.weight"), out, inp, WeightRole::Linear)?;
    let bias = src.values(&format!("{base}.bias"), &[out])?;
    Ok(Linear { weight, bias })
}

impl BertWeights {
    /// Takes every tensor the encoder needs from `src`.
    pub fn load(src: &mut dyn WeightSource, config: &BertConfig) -> Result<Self> {
        let h = config.hidden_size;
        let word_embeddings =
            src.weight(WORD_EMBEDDINGS, config.vocab_size, h, WeightRole::Embedding)?;
        let position_embeddings = src.values(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_type_embeddings =
            src.values("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?;
        let embedding_norm = norm(src, "embeddings.LayerNorm", h)?;
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            blocks.push(Block {
                query: linear(src, l, LinearKind::Query, config)?,
                key: linear(src, l, LinearKind::Key, config)?,
                value: linear(src, l, LinearKind::Value, config)?,
                attention_output: linear(src, l, LinearKind::AttentionOutput, config)?,
                attention_norm: norm(
                    src,
                    &format!("encoder.layer.{l}.attention.output.LayerNorm"),
                    h,
                )?,
                intermediate: linear(src, l, LinearKind::Intermediate, config)?,
                output: linear(src, l, LinearKind::Output, config)?,
                output_norm: norm(src, &format!("encoder.layer.{l}.output.LayerNorm"), h)?,
            });
        }
        Ok(Self {
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embedding_norm,
            blocks,
        })
    }
}
