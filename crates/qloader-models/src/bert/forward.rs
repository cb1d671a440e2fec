//! The encoder's forward pass, one sentence at a time (so no padding and no
//! attention mask are needed):
//!
//! ```text
//! h = LN(word[ids] + position[0..n] + token_type[0])
//! per block:  a = LN(h + O(attention(Q h, K h, V h)))
//!             h = LN(a + Down(GELU(Up a)))
//! embedding  = pool(h)  (mean over tokens, or the first token), then L2-normalised if asked
//! ```
//!
//! (Devlin et al. 2019, BERT §3; pooling and normalisation as in
//! sentence-transformers' `Pooling` and `Normalize` modules.)

use crate::bert::{BertConfig, ModelDir, PoolingMode};
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_quant::{LinearWeight, QuantSummary};

use super::weights::{BertWeights, Block, Linear, LinearKind, SafetensorsSource};
use crate::error::{ModelError, Result};
use crate::ops;
use crate::probe::{ModelOutput, Observed, Probe, ProbedModel, QuantizableTensor, TensorKind};
use crate::source::WeightSource;

/// Activation sites per block: the block input (query, key, value), the
/// attention context (output projection), the normed attention output
/// (intermediate) and the GELU hidden state (output).
const SITES_PER_BLOCK: usize = 4;

/// Role and input site (within the block) of each linear, in
/// [`LinearKind::ALL`] order.
const BLOCK_ROLES: [(TensorKind, usize); 6] = [
    (TensorKind::AttnQ, 0),
    (TensorKind::AttnK, 0),
    (TensorKind::AttnV, 0),
    (TensorKind::AttnO, 1),
    (TensorKind::MlpUp, 2),
    (TensorKind::MlpDown, 3),
];

/// A loaded BERT encoder that maps token ids to a sentence embedding.
pub struct BertEncoder {
    config: BertConfig,
    pooling: PoolingMode,
    normalize: bool,
    weights: BertWeights,
    summary: QuantSummary,
    activations: ActivationFormat,
}

impl BertEncoder {
    /// Loads the encoder in `dir`, storing each linear weight in the format
    /// `choose(tensor_name)` returns.
    pub fn load(dir: &ModelDir, choose: &dyn Fn(&str) -> WeightFormat) -> Result<Self> {
        let file = dir.open_weights()?;
        let mut source = SafetensorsSource::new(&file, choose);
        Self::from_source(dir.config.clone(), dir.pooling, dir.normalize, &mut source)
    }

    /// Builds the encoder of `config` from the tensors of `source`.
    pub fn from_source(
        config: BertConfig,
        pooling: PoolingMode,
        normalize: bool,
        source: &mut dyn WeightSource,
    ) -> Result<Self> {
        let weights = BertWeights::load(source, &config)?;
        Ok(Self {
            config,
            pooling,
            normalize,
            weights,
            summary: source.summary().clone(),
            activations: ActivationFormat::F32,
        })
    }

    /// Uses `act` for the activations of every linear layer.
    pub fn with_activations(mut self, act: ActivationFormat) -> Self {
        self.activations = act;
        self
    }

    /// The activation format of the linear layers.
    pub fn activations(&self) -> ActivationFormat {
        self.activations
    }

    /// The model's configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// What the loaded model stores, tensor by tensor.
    pub fn summary(&self) -> &QuantSummary {
        &self.summary
    }

    /// Width of the sentence embedding.
    pub fn embedding_dim(&self) -> usize {
        self.config.hidden_size
    }

    /// The quantizable tensors (every block's linear weights), in model
    /// order; [`Probe::substituting`] takes an index into this list.
    pub fn quantizable_tensors(&self) -> Vec<QuantizableTensor> {
        let c = &self.config;
        let names = super::weights::tensor_names(c);
        let roles = (0..c.num_hidden_layers).flat_map(|l| {
            LinearKind::ALL.into_iter().zip(BLOCK_ROLES).map(move |(lk, role)| (l, lk, role))
        });
        names
            .into_iter()
            .zip(roles)
            .map(|(name, (layer, lk, (kind, site)))| {
                let (rows, cols) = lk.shape(c);
                QuantizableTensor {
                    name,
                    kind,
                    layer: Some(layer),
                    rows,
                    cols,
                    site: layer * SITES_PER_BLOCK + site,
                }
            })
            .chain(std::iter::once(QuantizableTensor {
                name: super::weights::WORD_EMBEDDINGS.to_owned(),
                kind: TensorKind::Embedding,
                layer: None,
                rows: c.vocab_size,
                cols: c.hidden_size,
                // A site of its own: its input is token ids, not activations.
                site: c.num_hidden_layers * SITES_PER_BLOCK,
            }))
            .collect()
    }

    /// The quantizable-tensor index of the word-embedding table (after
    /// every linear weight).
    fn embedding_index(&self) -> usize {
        self.weights.blocks.len() * LinearKind::ALL.len()
    }

    /// The loaded weight of quantizable tensor number `index`.
    pub fn tensor_weight(&self, index: usize) -> Option<&LinearWeight> {
        if index == self.embedding_index() {
            return Some(&self.weights.word_embeddings);
        }
        let b = self.weights.blocks.get(index / LinearKind::ALL.len())?;
        Some(&b.linear(LinearKind::ALL[index % LinearKind::ALL.len()]).weight)
    }

    /// The sentence embedding of one tokenized sentence.
    pub fn embed_ids(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let h = self.embed_tokens(ids, &Probe::none())?;
        self.output_from(h, ids.len(), 0, &mut Probe::none())
    }

    /// Final hidden state of every token, `n × hidden` row-major.
    pub fn hidden_states(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut h = self.embed_tokens(ids, &Probe::none())?;
        for layer in 0..self.weights.blocks.len() {
            self.run_block(layer, &mut h, ids.len(), &mut Probe::none())?;
        }
        Ok(h)
    }

    /// The normalised token embeddings of `ids`: the input of block 0,
    /// `n × hidden`, looked up in the probe's substitute table if it has one.
    pub fn embed_tokens(&self, ids: &[u32], probe: &Probe<'_>) -> Result<Vec<f32>> {
        let c = &self.config;
        let n = ids.len();
        if n > c.max_position_embeddings {
            return Err(ModelError::SequenceTooLong { len: n, max: c.max_position_embeddings });
        }
        let width = c.hidden_size;
        let w = &self.weights;
        let table = probe.weight(self.embedding_index(), &w.word_embeddings);
        if table.out_features() != c.vocab_size || table.in_features() != width {
            return Err(ModelError::BadInput {
                reason: format!(
                    "word embeddings must be a {} × {width} table, got {} × {}",
                    c.vocab_size,
                    table.out_features(),
                    table.in_features()
                ),
            });
        }
        let mut h = vec![0.0f32; n * width];
        let mut word = vec![0.0f32; width];
        for (t, (&id, row)) in ids.iter().zip(h.chunks_exact_mut(width)).enumerate() {
            let id = id as usize;
            if id >= c.vocab_size {
                return Err(ModelError::TokenOutOfRange { id: id as u32, vocab: c.vocab_size });
            }
            table.dequantize_row(id, &mut word);
            let pos = &w.position_embeddings[t * width..(t + 1) * width];
            let typ = &w.token_type_embeddings[..width];
            for (i, v) in row.iter_mut().enumerate() {
                *v = word[i] + pos[i] + typ[i];
            }
        }
        let eps = c.layer_norm_eps as f32;
        ops::layer_norm(&mut h, &w.embedding_norm.gamma, &w.embedding_norm.beta, eps);
        Ok(h)
    }

    /// Pools (and, if the model asks, normalises) the final hidden states.
    fn pool(&self, h: &[f32]) -> Vec<f32> {
        let width = self.config.hidden_size;
        let mut pooled = match self.pooling {
            PoolingMode::Cls => h[..width.min(h.len())].to_vec(),
            PoolingMode::Mean => {
                let mut sum = vec![0.0f32; width];
                for row in h.chunks_exact(width) {
                    ops::add_in_place(&mut sum, row);
                }
                let n = (h.len() / width).max(1) as f32;
                sum.iter_mut().for_each(|v| *v /= n);
                sum
            }
        };
        if self.normalize {
            ops::l2_normalize(&mut pooled);
        }
        pooled
    }

    fn check_hidden(&self, h: &[f32], n: usize) -> Result<()> {
        let width = self.config.hidden_size;
        if h.len() != n * width || n > self.config.max_position_embeddings {
            return Err(ModelError::BadInput {
                reason: format!("{} hidden values for {n} tokens of width {width}", h.len()),
            });
        }
        Ok(())
    }

    fn block(&self, layer: usize, b: &Block, h: &mut [f32], n: usize, probe: &mut Probe<'_>) {
        let c = &self.config;
        let eps = c.layer_norm_eps as f32;
        let act = self.activations;
        let first = layer * LinearKind::ALL.len();
        let site = layer * SITES_PER_BLOCK;
        let lin = |i: usize, l: &Linear, x: &[f32], probe: &Probe<'_>| {
            linear(probe.weight(first + i, &l.weight), &l.bias, x, n, act)
        };
        probe.observe(Observed::LinearInput(site), h, n);
        let q = lin(0, &b.query, h, probe);
        let k = lin(1, &b.key, h, probe);
        let v = lin(2, &b.value, h, probe);
        let context = attention(&q, &k, &v, n, c.num_attention_heads, c.head_dim());
        probe.observe(Observed::LinearInput(site + 1), &context, n);
        let attn = lin(3, &b.attention_output, &context, probe);
        ops::add_in_place(h, &attn);
        ops::layer_norm(h, &b.attention_norm.gamma, &b.attention_norm.beta, eps);
        probe.observe(Observed::LinearInput(site + 2), h, n);
        let mut up = lin(4, &b.intermediate, h, probe);
        ops::gelu_erf(&mut up);
        probe.observe(Observed::LinearInput(site + 3), &up, n);
        let down = lin(5, &b.output, &up, probe);
        ops::add_in_place(h, &down);
        ops::layer_norm(h, &b.output_norm.gamma, &b.output_norm.beta, eps);
    }
}

impl ProbedModel for BertEncoder {
    fn quantizable_tensors(&self) -> Vec<QuantizableTensor> {
        BertEncoder::quantizable_tensors(self)
    }

    fn tensor_weight(&self, index: usize) -> Option<&LinearWeight> {
        BertEncoder::tensor_weight(self, index)
    }

    fn layers(&self) -> usize {
        self.weights.blocks.len()
    }

    fn output_kind(&self) -> ModelOutput {
        ModelOutput::Embedding { dim: self.config.hidden_size }
    }

    fn block_input(&self, ids: &[u32], probe: &mut Probe<'_>) -> Result<Vec<f32>> {
        self.embed_tokens(ids, probe)
    }

    fn run_block(
        &self,
        layer: usize,
        h: &mut [f32],
        n: usize,
        probe: &mut Probe<'_>,
    ) -> Result<()> {
        let block = self.weights.blocks.get(layer).ok_or_else(|| ModelError::BadInput {
            reason: format!("block {layer} of a model with {}", self.weights.blocks.len()),
        })?;
        self.check_hidden(h, n)?;
        probe.observe(Observed::BlockInput(layer), h, n);
        self.block(layer, block, h, n, probe);
        Ok(())
    }

    fn output(&self, h: Vec<f32>, n: usize, probe: &mut Probe<'_>) -> Result<Vec<f32>> {
        self.check_hidden(&h, n)?;
        probe.observe(Observed::BlockInput(self.weights.blocks.len()), &h, n);
        Ok(self.pool(&h))
    }
}

fn linear(w: &LinearWeight, bias: &[f32], x: &[f32], n: usize, act: ActivationFormat) -> Vec<f32> {
    let mut y = vec![0.0f32; n * w.out_features()];
    w.matmul_with(act, x, n, &mut y);
    ops::add_bias(&mut y, bias);
    y
}

/// Scaled dot-product attention over all `n` tokens (no mask), per head.
fn attention(q: &[f32], k: &[f32], v: &[f32], n: usize, heads: usize, d: usize) -> Vec<f32> {
    let width = heads * d;
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = vec![0.0f32; n * width];
    let mut scores = vec![0.0f32; n];
    for hd in 0..heads {
        let cols = hd * d..(hd + 1) * d;
        for i in 0..n {
            let qi = &q[i * width..][cols.clone()];
            for (j, s) in scores.iter_mut().enumerate() {
                let kj = &k[j * width..][cols.clone()];
                *s = qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
            }
            ops::softmax(&mut scores);
            let oi = &mut out[i * width..][cols.clone()];
            for (j, &p) in scores.iter().enumerate() {
                let vj = &v[j * width..][cols.clone()];
                for (o, x) in oi.iter_mut().zip(vj) {
                    *o += p * x;
                }
            }
        }
    }
    out
}
