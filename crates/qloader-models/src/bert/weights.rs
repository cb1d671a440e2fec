//! Loading a BERT encoder's weights: every tensor's shape is checked against
//! `config.json` before its data is read, and each linear weight is stored in
//! the format the caller chooses for it by name.

use qloader_format::{BertConfig, SafetensorsFile, WeightFormat};
use qloader_kernels::DenseMatrix;
use qloader_quant::{LinearWeight, QuantSummary};

use crate::error::Result;

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
    /// `vocab × hidden`, f32 as loaded (a [`LinearWeight`] so that analysis
    /// can substitute a quantized copy).
    pub word_embeddings: LinearWeight,
    pub position_embeddings: Vec<f32>,
    pub token_type_embeddings: Vec<f32>,
    pub embedding_norm: Norm,
    pub blocks: Vec<Block>,
}

/// Reads tensors under an optional checkpoint prefix (`bert.`), recording
/// what is stored.
struct Loader<'a> {
    file: &'a SafetensorsFile,
    prefix: &'static str,
    summary: QuantSummary,
}

impl Loader<'_> {
    fn f32(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        let t = self.file.tensor_f32(&full, shape)?;
        self.summary.record(name, t.data.len(), WeightFormat::F32, t.data.len() * 4, false);
        Ok(t.data)
    }

    fn norm(&mut self, path: &str, width: usize) -> Result<Norm> {
        Ok(Norm {
            gamma: self.f32(&format!("{path}.weight"), &[width])?,
            beta: self.f32(&format!("{path}.bias"), &[width])?,
        })
    }

    fn linear(
        &mut self,
        layer: usize,
        kind: LinearKind,
        config: &BertConfig,
        choose: &dyn Fn(&str) -> WeightFormat,
    ) -> Result<Linear> {
        let (out, inp) = kind.shape(config);
        let base = format!("encoder.layer.{layer}.{}", kind.path());
        let name = format!("{base}.weight");
        let full = format!("{}{name}", self.prefix);
        let data = self.file.tensor_f32(&full, &[out, inp])?.data;
        let dense = DenseMatrix::new(out, inp, data).expect("shape checked by tensor_f32");
        let format = choose(&name);
        let weight = LinearWeight::quantize(dense, format);
        self.summary.record(&name, out * inp, format, weight.storage_bytes(), true);
        let bias = self.f32(&format!("{base}.bias"), &[out])?;
        Ok(Linear { weight, bias })
    }
}

impl BertWeights {
    /// Loads every tensor the encoder needs, choosing each linear weight's
    /// format with `choose(name)`.
    pub fn load(
        file: &SafetensorsFile,
        config: &BertConfig,
        choose: &dyn Fn(&str) -> WeightFormat,
    ) -> Result<(Self, QuantSummary)> {
        let probe = WORD_EMBEDDINGS;
        let prefix = if file.info(probe).is_none() && file.info(&format!("bert.{probe}")).is_some()
        {
            "bert."
        } else {
            ""
        };
        let mut ld = Loader { file, prefix, summary: QuantSummary::default() };
        let h = config.hidden_size;
        let word_embeddings = LinearWeight::F32(
            DenseMatrix::new(config.vocab_size, h, ld.f32(probe, &[config.vocab_size, h])?)
                .expect("the loader checked the shape"),
        );
        let position_embeddings =
            ld.f32("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?;
        let token_type_embeddings =
            ld.f32("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?;
        let embedding_norm = ld.norm("embeddings.LayerNorm", h)?;
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            blocks.push(Block {
                query: ld.linear(l, LinearKind::Query, config, choose)?,
                key: ld.linear(l, LinearKind::Key, config, choose)?,
                value: ld.linear(l, LinearKind::Value, config, choose)?,
                attention_output: ld.linear(l, LinearKind::AttentionOutput, config, choose)?,
                attention_norm: ld
                    .norm(&format!("encoder.layer.{l}.attention.output.LayerNorm"), h)?,
                intermediate: ld.linear(l, LinearKind::Intermediate, config, choose)?,
                output: ld.linear(l, LinearKind::Output, config, choose)?,
                output_norm: ld.norm(&format!("encoder.layer.{l}.output.LayerNorm"), h)?,
            });
        }
        let weights = Self {
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embedding_norm,
            blocks,
        };
        Ok((weights, ld.summary))
    }
}
