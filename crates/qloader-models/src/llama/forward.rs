//! The decoder's forward pass over a run of new tokens, with a KV cache:
//!
//! ```text
//! x = embed[ids]
//! per block:  h = RMSNorm(x)·γ₁
//!             q, k, v = h·Wq, h·Wk, h·Wv;  RoPE(q, k) at each token's position
//!             x += Wo · softmax(q·kᵀ/√d, causal) · v      (GQA: heads/kv_heads queries per key head)
//!             h = RMSNorm(x)·γ₂
//!             x += Wdown · (SiLU(h·Wgate) ⊙ h·Wup)
//! logits = RMSNorm(x)·γ · Wheadᵀ
//! ```
//!
//! (Touvron et al. 2023, LLaMA §2.2: pre-normalisation with RMSNorm, SwiGLU,
//! rotary embeddings; Ainslie et al. 2023: grouped-query attention.)

use std::path::Path;

use qloader_format::gguf::GgufFile;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_quant::{LinearWeight, QuantSummary};
use rayon::prelude::*;

use super::config::LlamaConfig;
use super::kv_cache::KvCache;
use super::weights::{Block, LlamaWeights};
use crate::error::{ModelError, Result};
use crate::ops;

/// Which positions' logits a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Every new token's (for perplexity).
    All,
    /// Only the last new token's (for generation).
    Last,
}

/// A loaded Llama-family decoder.
pub struct LlamaModel {
    config: LlamaConfig,
    weights: LlamaWeights,
    summary: QuantSummary,
    activations: ActivationFormat,
}

impl LlamaModel {
    /// Loads the decoder in the GGUF file at `path`, storing each quantizable
    /// tensor in the format `choose(name)` returns; `progress(done, total)`
    /// hears about the blocks as they load.
    pub fn load(
        path: &Path,
        choose: &dyn Fn(&str) -> WeightFormat,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let file = GgufFile::open(path)?;
        Self::from_gguf(&file, choose, progress)
    }

    /// Like [`LlamaModel::load`] on a file already open.
    pub fn from_gguf(
        file: &GgufFile,
        choose: &dyn Fn(&str) -> WeightFormat,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let config = LlamaConfig::from_gguf(file)?;
        let (weights, summary) = LlamaWeights::load(file, &config, choose, progress)?;
        Ok(Self { config, weights, summary, activations: ActivationFormat::F32 })
    }

    /// Uses `act` for the activations of every linear layer.
    pub fn with_activations(mut self, act: ActivationFormat) -> Self {
        self.activations = act;
        self
    }

    /// The model's configuration.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// What the loaded model stores, tensor by tensor.
    pub fn summary(&self) -> &QuantSummary {
        &self.summary
    }

    /// An empty KV cache for up to `positions` tokens (at most the model's
    /// context length).
    pub fn new_cache(&self, positions: usize) -> KvCache {
        let c = &self.config;
        KvCache::new(c.layers, c.kv_width(), positions.min(c.context))
    }

    /// Runs `ids` (the tokens after those already in `cache`) through the
    /// decoder, appends their keys and values to `cache`, and returns logits
    /// (`rows × vocab`, rows per `which`).
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>> {
        let c = &self.config;
        let n = ids.len();
        let start = cache.len();
        if start + n > cache.capacity() {
            return Err(ModelError::SequenceTooLong { len: start + n, max: cache.capacity() });
        }
        let mut x = Vec::with_capacity(n * c.hidden);
        for &id in ids {
            let row = id as usize;
            if row >= c.vocab {
                return Err(ModelError::TokenOutOfRange { id, vocab: c.vocab });
            }
            x.extend_from_slice(&self.weights.embeddings[row * c.hidden..(row + 1) * c.hidden]);
        }
        for (layer, block) in self.weights.blocks.iter().enumerate() {
            self.block(layer, block, &mut x, n, start, cache);
        }
        let (rows, mut h) = match which {
            Logits::All => (n, x),
            Logits::Last => (1.min(n), x[n.saturating_sub(1) * c.hidden..].to_vec()),
        };
        ops::rms_norm(&mut h, &self.weights.output_norm, c.norm_eps);
        let mut logits = vec![0.0f32; rows * c.vocab];
        self.linear(&self.weights.head, &h, rows, &mut logits);
        Ok(logits)
    }

    fn linear(&self, w: &LinearWeight, x: &[f32], m: usize, y: &mut [f32]) {
        w.matmul_with(self.activations, x, m, y);
    }

    /// One block over `n` new tokens at positions `start..start + n`.
    fn block(
        &self,
        layer: usize,
        b: &Block,
        x: &mut [f32],
        n: usize,
        start: usize,
        cache: &mut KvCache,
    ) {
        let c = &self.config;
        let (hidden, kv_width, d) = (c.hidden, c.kv_width(), c.head_dim);
        let mut h = x.to_vec();
        ops::rms_norm(&mut h, &b.attn_norm, c.norm_eps);
        let mut q = vec![0.0f32; n * hidden];
        let mut k = vec![0.0f32; n * kv_width];
        let mut v = vec![0.0f32; n * kv_width];
        self.linear(&b.q, &h, n, &mut q);
        self.linear(&b.k, &h, n, &mut k);
        self.linear(&b.v, &h, n, &mut v);
        for (t, (qt, kt)) in
            q.chunks_exact_mut(hidden).zip(k.chunks_exact_mut(kv_width)).enumerate()
        {
            for head in qt.chunks_exact_mut(d).chain(kt.chunks_exact_mut(d)) {
                ops::rope_pairs(head, start + t, c.rope_base);
            }
        }
        cache.append(layer, &k, &v);
        let (keys, values) = cache.layer(layer);
        let mut attended = vec![0.0f32; n * hidden];
        let group = c.heads / c.kv_heads;
        let scale = 1.0 / (d as f32).sqrt();
        // Token t (position start + t) attends to positions 0..=start + t.
        attended.par_chunks_mut(hidden).zip(q.par_chunks(hidden)).enumerate().for_each(
            |(t, (out, qt))| {
                let visible = start + t + 1;
                let mut scores = vec![0.0f32; visible];
                for head in 0..c.heads {
                    let kv = head / group;
                    let qh = &qt[head * d..(head + 1) * d];
                    for (p, s) in scores.iter_mut().enumerate() {
                        let kp = &keys[p * kv_width + kv * d..p * kv_width + (kv + 1) * d];
                        *s = qh.iter().zip(kp).map(|(a, b)| a * b).sum::<f32>() * scale;
                    }
                    ops::softmax(&mut scores);
                    let oh = &mut out[head * d..(head + 1) * d];
                    for (p, &s) in scores.iter().enumerate() {
                        let vp = &values[p * kv_width + kv * d..p * kv_width + (kv + 1) * d];
                        for (o, v) in oh.iter_mut().zip(vp) {
                            *o += s * v;
                        }
                    }
                }
            },
        );
        let mut o = vec![0.0f32; n * hidden];
        self.linear(&b.o, &attended, n, &mut o);
        ops::add_in_place(x, &o);

        let mut h = x.to_vec();
        ops::rms_norm(&mut h, &b.ffn_norm, c.norm_eps);
        let mut gate = vec![0.0f32; n * c.ffn];
        let mut up = vec![0.0f32; n * c.ffn];
        self.linear(&b.gate, &h, n, &mut gate);
        self.linear(&b.up, &h, n, &mut up);
        ops::silu_mul(&mut gate, &up);
        let mut down = vec![0.0f32; n * hidden];
        self.linear(&b.down, &gate, n, &mut down);
        ops::add_in_place(x, &down);
    }
}
