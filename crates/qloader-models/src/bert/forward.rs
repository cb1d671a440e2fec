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

use qloader_format::{ActivationFormat, BertConfig, ModelDir, PoolingMode, WeightFormat};
use qloader_quant::QuantSummary;

use super::weights::{BertWeights, Block, Linear};
use crate::error::{ModelError, Result};
use crate::ops;

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
        let (weights, summary) = BertWeights::load(&file, &dir.config, choose)?;
        Ok(Self {
            config: dir.config.clone(),
            pooling: dir.pooling,
            normalize: dir.normalize,
            weights,
            summary,
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

    /// The sentence embedding of one tokenized sentence.
    pub fn embed_ids(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let h = self.hidden_states(ids)?;
        let width = self.config.hidden_size;
        let mut pooled = match self.pooling {
            PoolingMode::Cls => h[..width].to_vec(),
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
        Ok(pooled)
    }

    /// Final hidden state of every token, `n × hidden` row-major.
    pub fn hidden_states(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let c = &self.config;
        let n = ids.len();
        if n > c.max_position_embeddings {
            return Err(ModelError::SequenceTooLong { len: n, max: c.max_position_embeddings });
        }
        let width = c.hidden_size;
        let w = &self.weights;
        let mut h = vec![0.0f32; n * width];
        for (t, (&id, row)) in ids.iter().zip(h.chunks_exact_mut(width)).enumerate() {
            let id = id as usize;
            if id >= c.vocab_size {
                return Err(ModelError::TokenOutOfRange { id: id as u32, vocab: c.vocab_size });
            }
            let word = &w.word_embeddings[id * width..(id + 1) * width];
            let pos = &w.position_embeddings[t * width..(t + 1) * width];
            let typ = &w.token_type_embeddings[..width];
            for (i, v) in row.iter_mut().enumerate() {
                *v = word[i] + pos[i] + typ[i];
            }
        }
        let eps = c.layer_norm_eps as f32;
        ops::layer_norm(&mut h, &w.embedding_norm.gamma, &w.embedding_norm.beta, eps);
        for block in &w.blocks {
            self.block(block, &mut h, n);
        }
        Ok(h)
    }

    fn block(&self, b: &Block, h: &mut [f32], n: usize) {
        let c = &self.config;
        let eps = c.layer_norm_eps as f32;
        let act = self.activations;
        let q = linear(&b.query, h, n, act);
        let k = linear(&b.key, h, n, act);
        let v = linear(&b.value, h, n, act);
        let context = attention(&q, &k, &v, n, c.num_attention_heads, c.head_dim());
        let attn = linear(&b.attention_output, &context, n, act);
        ops::add_in_place(h, &attn);
        ops::layer_norm(h, &b.attention_norm.gamma, &b.attention_norm.beta, eps);
        let mut up = linear(&b.intermediate, h, n, act);
        ops::gelu_erf(&mut up);
        let down = linear(&b.output, &up, n, act);
        ops::add_in_place(h, &down);
        ops::layer_norm(h, &b.output_norm.gamma, &b.output_norm.beta, eps);
    }
}

fn linear(l: &Linear, x: &[f32], n: usize, act: ActivationFormat) -> Vec<f32> {
    let mut y = vec![0.0f32; n * l.weight.out_features()];
    l.weight.matmul_with(act, x, n, &mut y);
    ops::add_bias(&mut y, &l.bias);
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
