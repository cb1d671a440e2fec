//! The decoder's forward pass over a run of new tokens, with a KV cache:
//!
//! ```text
//! x = embed[ids]
//! per block:  h = RMSNorm(x)·γ₁
//!             q, k, v = h·Wq (+ bq), h·Wk (+ bk), h·Wv (+ bv)
//!             (q, k per head: RMSNorm·γq, ·γk)
//!             RoPE(q, k) at each token's position
//!             x += Wo · softmax(q·kᵀ/√d, causal, window) · v  (GQA: heads/kv_heads queries per key head)
//!             h = RMSNorm(x)·γ₂
//!             x += Wdown · (SiLU(h·Wgate) ⊙ h·Wup)
//! logits = RMSNorm(x)·γ · Wheadᵀ
//! ```
//!
//! (Touvron et al. 2023, LLaMA §2.2: pre-normalisation with RMSNorm, SwiGLU,
//! rotary embeddings; Ainslie et al. 2023: grouped-query attention.) The
//! parenthesised steps are there when the configuration says so: q/k/v
//! biases (Qwen2), per-head q/k norms (Qwen3), a sliding window (Mistral).

use rayon::prelude::*;
use std::path::Path;

use qloader_format::gguf::GgufFile;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_kernels::rowwise;
use qloader_quant::{LinearInput, LinearWeight, QuantSummary};

use super::attention::{causal_attention, AttentionShape};
use super::config::{GateActivation, LlamaConfig};
use super::kv_cache::KvCache;
use super::scratch::{rope_inv_freq, sized, Scratch};
use super::weights::{block_linears, Block, GgufSource, LlamaWeights, HEAD, LINEARS_PER_BLOCK};
pub use crate::decoder::Logits;
use crate::error::{ModelError, Result};
use crate::ops;
use crate::probe::{ModelOutput, Observed, Probe, ProbedModel, QuantizableTensor, TensorKind};
use crate::source::WeightSource;

/// Activation sites per block: the attention input (q, k, v), the attention
/// output (o), the feed-forward input (gate, up) and its hidden state (down).
const SITES_PER_BLOCK: usize = 4;

/// Role and input site (within the block) of each block linear, in
/// [`block_linears`] order.
const BLOCK_ROLES: [(TensorKind, usize); LINEARS_PER_BLOCK] = [
    (TensorKind::AttnQ, 0),
    (TensorKind::AttnK, 0),
    (TensorKind::AttnV, 0),
    (TensorKind::AttnO, 1),
    (TensorKind::MlpGate, 2),
    (TensorKind::MlpUp, 2),
    (TensorKind::MlpDown, 3),
];

/// A loaded Llama-family decoder.
pub struct LlamaModel {
    config: LlamaConfig,
    weights: LlamaWeights,
    summary: QuantSummary,
    activations: ActivationFormat,
    /// `rope_base^(−2i/d)` per pair of a head (global layers).
    rope_inv_freq: Vec<f64>,
    /// The same with the local layers' base, for models that set one.
    rope_local_inv_freq: Option<Vec<f64>>,
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

    /// Loads the decoder at `path`: a GGUF file, or a Hugging Face
    /// checkpoint directory (see [`super::hf`]).
    pub fn open(
        path: &Path,
        choose: &dyn Fn(&str) -> WeightFormat,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        use crate::decoder::DecoderCheckpoint as _;
        let checkpoint = super::LlamaCheckpoint::open(path)?;
        let mut source = checkpoint.source(choose, None);
        Self::from_source(checkpoint.llama_config().clone(), source.as_mut(), progress)
    }

    /// Like [`LlamaModel::load`] on a file already open.
    pub fn from_gguf(
        file: &GgufFile,
        choose: &dyn Fn(&str) -> WeightFormat,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let config = LlamaConfig::from_gguf(file)?;
        let mut source = GgufSource::new(file, choose);
        Self::from_source(config, &mut source, progress)
    }

    /// Builds the decoder of `config` from the tensors of `source`.
    pub fn from_source(
        config: LlamaConfig,
        source: &mut dyn WeightSource,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let weights = LlamaWeights::load(source, &config, progress)?;
        let summary = source.summary().clone();
        let d = config.head_dim;
        // Local layers' frequencies are never scaled.
        let rope_local_inv_freq = config.rope_local_base.map(|base| rope_inv_freq(base, d, None));
        let rope_inv_freq = rope_inv_freq(config.rope_base, d, config.rope_scale);
        Ok(Self {
            config,
            weights,
            summary,
            activations: ActivationFormat::F32,
            rope_inv_freq,
            rope_local_inv_freq,
        })
    }

    /// Uses `act` for the activations of every linear layer.
    pub fn with_activations(mut self, act: ActivationFormat) -> Self {
        self.activations = act;
        self
    }

    /// Uses `act` for the activations of every linear layer from now on.
    pub fn set_activations(&mut self, act: ActivationFormat) {
        self.activations = act;
    }

    /// The activations of every linear layer.
    pub fn activations(&self) -> ActivationFormat {
        self.activations
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
        KvCache::new(c.layers, c.kv_heads, c.head_dim, positions.min(c.context))
    }

    /// The quantizable tensors (every block's linear weights, then the head),
    /// in model order; [`Probe::substituting`] takes an index into this list.
    pub fn quantizable_tensors(&self) -> Vec<QuantizableTensor> {
        let c = &self.config;
        let mut tensors = Vec::with_capacity(c.layers * LINEARS_PER_BLOCK + 1);
        for layer in 0..c.layers {
            for ((name, rows, cols), (kind, site)) in block_linears(c).into_iter().zip(BLOCK_ROLES)
            {
                tensors.push(QuantizableTensor {
                    name: format!("blk.{layer}.{name}.weight"),
                    kind,
                    layer: Some(layer),
                    rows,
                    cols,
                    site: layer * SITES_PER_BLOCK + site,
                });
            }
        }
        tensors.push(QuantizableTensor {
            name: HEAD.to_owned(),
            kind: TensorKind::Head,
            layer: None,
            rows: c.vocab,
            cols: c.hidden,
            site: c.layers * SITES_PER_BLOCK,
        });
        tensors
    }

    /// Builds every weight's product layout now (grouped weights' tiles,
    /// [`LinearWeight::prepare_products`]) instead of at its first product,
    /// so that loading, not the first prompt, pays for it.
    pub fn prepare_products(&self) {
        let count = self.weights.blocks.len() * LINEARS_PER_BLOCK + 1;
        (0..count).into_par_iter().for_each(|i| {
            if let Some(w) = self.tensor_weight(i) {
                w.prepare_products();
            }
        });
    }

    /// The loaded weight of quantizable tensor number `index`.
    pub fn tensor_weight(&self, index: usize) -> Option<&LinearWeight> {
        let w = &self.weights;
        if index == w.blocks.len() * LINEARS_PER_BLOCK {
            return Some(&w.head);
        }
        let b = w.blocks.get(index / LINEARS_PER_BLOCK)?;
        Some(match index % LINEARS_PER_BLOCK {
            0 => &b.q,
            1 => &b.k,
            2 => &b.v,
            3 => &b.o,
            4 => &b.gate,
            5 => &b.up,
            _ => &b.down,
        })
    }

    /// The embeddings of `ids`: the input of block 0, `ids.len() × hidden`
    /// (rows of the embedding table, or of the head when they are tied).
    pub fn embed(&self, ids: &[u32]) -> Result<Vec<f32>> {
        self.embed_from(ids, &Probe::none())
    }

    /// [`LlamaModel::embed`], with a tied head substituted by the probe.
    fn embed_from(&self, ids: &[u32], probe: &Probe<'_>) -> Result<Vec<f32>> {
        let c = &self.config;
        let table = match &self.weights.embeddings {
            Some(table) => table,
            None => probe.weight(c.layers * LINEARS_PER_BLOCK, &self.weights.head),
        };
        let mut x = vec![0.0f32; ids.len() * c.hidden];
        for (&id, out) in ids.iter().zip(x.chunks_exact_mut(c.hidden)) {
            let row = id as usize;
            if row >= c.vocab {
                return Err(ModelError::TokenOutOfRange { id, vocab: c.vocab });
            }
            table.dequantize_row(row, out);
        }
        if let Some(scale) = c.embed_scale {
            x.iter_mut().for_each(|v| *v *= scale);
        }
        Ok(x)
    }

    /// Runs `ids` (the tokens after those already in `cache`) through the
    /// decoder, appends their keys and values to `cache`, and returns logits
    /// (`rows × vocab`, rows per `which`).
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>> {
        let x = self.embed(ids)?;
        self.run(x, ids.len(), cache, which)
    }

    /// Runs every block and the head over `n` new tokens.
    fn run(
        &self,
        mut x: Vec<f32>,
        n: usize,
        cache: &mut KvCache,
        which: Logits,
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let start = cache.len();
        if start + n > cache.capacity() {
            return Err(ModelError::SequenceTooLong { len: start + n, max: cache.capacity() });
        }
        let mut probe = Probe::none();
        let mut scratch = std::mem::take(&mut cache.scratch);
        self.fill_rope(&mut scratch, start, n);
        for (layer, block) in self.weights.blocks.iter().enumerate() {
            self.block(layer, block, &mut x, n, start, cache, &mut probe, &mut scratch);
        }
        cache.scratch = scratch;
        let (rows, h) = match which {
            Logits::All => (n, x),
            Logits::Last => (1.min(n), x[n.saturating_sub(1) * c.hidden..].to_vec()),
        };
        Ok(self.head(h, rows, &mut probe))
    }

    /// Fills the rotary tables of `s` for positions `start..start + n`.
    fn fill_rope(&self, s: &mut Scratch, start: usize, n: usize) {
        let style = self.config.rope_style;
        s.rope.fill(start, n, &self.rope_inv_freq, style);
        if let Some(local) = &self.rope_local_inv_freq {
            s.rope_local.fill(start, n, local, style);
        }
    }

    /// Final norm and head over `rows` hidden states.
    fn head(&self, mut h: Vec<f32>, rows: usize, probe: &mut Probe<'_>) -> Vec<f32> {
        let c = &self.config;
        rowwise::rms_norm(&mut h, &self.weights.output_norm, c.norm_eps);
        probe.observe(Observed::LinearInput(c.layers * SITES_PER_BLOCK), &h, rows);
        let mut logits = vec![0.0f32; rows * c.vocab];
        let head = probe.weight(c.layers * LINEARS_PER_BLOCK, &self.weights.head);
        self.linear(head, &h, rows, &mut logits);
        if let Some(cap) = c.final_softcap {
            ops::soft_cap(&mut logits, cap);
        }
        logits
    }

    fn linear(&self, w: &LinearWeight, x: &[f32], m: usize, y: &mut [f32]) {
        w.matmul_with(self.activations, x, m, y);
    }

    /// One block over `n` new tokens at positions `start..start + n` (the
    /// rotary table in `s` is for those positions).
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        layer: usize,
        b: &Block,
        x: &mut [f32],
        n: usize,
        start: usize,
        cache: &mut KvCache,
        probe: &mut Probe<'_>,
        s: &mut Scratch,
    ) {
        let c = &self.config;
        let (hidden, q_width, kv_width, d) = (c.hidden, c.q_width(), c.kv_width(), c.head_dim);
        let act = self.activations;
        let first = layer * LINEARS_PER_BLOCK;
        let site = layer * SITES_PER_BLOCK;
        let Scratch { h, q, k, v, attended, proj, gate, up, rope, rope_local } = s;
        let rope =
            if c.is_local(layer) && self.rope_local_inv_freq.is_some() { rope_local } else { rope };

        let h = sized(h, n * hidden);
        h.copy_from_slice(x);
        rowwise::rms_norm(h, &b.attn_norm, c.norm_eps);
        probe.observe(Observed::LinearInput(site), h, n);
        let (q, k, v) = (sized(q, n * q_width), sized(k, n * kv_width), sized(v, n * kv_width));
        let input = LinearInput::new(h, n);
        probe.weight(first, &b.q).matmul_input(act, &input, q);
        probe.weight(first + 1, &b.k).matmul_input(act, &input, k);
        probe.weight(first + 2, &b.v).matmul_input(act, &input, v);
        if let Some([bq, bk, bv]) = &b.qkv_bias {
            ops::add_bias(q, bq);
            ops::add_bias(k, bk);
            ops::add_bias(v, bv);
        }
        if let Some([gq, gk]) = &b.qk_norm {
            rowwise::rms_norm(q, gq, c.norm_eps);
            rowwise::rms_norm(k, gk, c.norm_eps);
        }
        for (t, (qt, kt)) in
            q.chunks_exact_mut(q_width).zip(k.chunks_exact_mut(kv_width)).enumerate()
        {
            for head in qt.chunks_exact_mut(d).chain(kt.chunks_exact_mut(d)) {
                rope.rotate(head, t);
            }
        }
        cache.append(layer, k, v);
        let (keys, values) = cache.layer(layer);
        let shape = AttentionShape {
            heads: c.heads,
            kv_heads: c.kv_heads,
            head_dim: d,
            window: c.window_of(layer),
            scale: c.attn_scale.unwrap_or(1.0 / (d as f32).sqrt()),
            softcap: c.attn_softcap,
        };
        let attended = sized(attended, n * q_width);
        causal_attention(&shape, q, keys, values, n, start, attended);
        probe.observe(Observed::LinearInput(site + 1), attended, n);
        let o = sized(proj, n * hidden);
        self.linear(probe.weight(first + 3, &b.o), attended, n, o);
        if let Some([post_attention, _]) = &b.post_norms {
            rowwise::rms_norm(o, post_attention, c.norm_eps);
        }
        ops::add_in_place(x, o);

        h.copy_from_slice(x);
        rowwise::rms_norm(h, &b.ffn_norm, c.norm_eps);
        probe.observe(Observed::LinearInput(site + 2), h, n);
        let gate = sized(gate, n * c.ffn);
        let input = LinearInput::new(h, n);
        let (wg, wu) = (probe.weight(first + 4, &b.gate), probe.weight(first + 5, &b.up));
        match c.activation {
            GateActivation::Silu => wg.glu_input(wu, act, &input, gate, up),
            GateActivation::GeluTanh => {
                let up = sized(up, n * c.ffn);
                wg.matmul_input(act, &input, gate);
                wu.matmul_input(act, &input, up);
                ops::gelu_tanh_mul(gate, up);
            }
        }
        probe.observe(Observed::LinearInput(site + 3), gate, n);
        let down = sized(proj, n * hidden);
        self.linear(probe.weight(first + 6, &b.down), gate, n, down);
        if let Some([_, post_ffw]) = &b.post_norms {
            rowwise::rms_norm(down, post_ffw, c.norm_eps);
        }
        ops::add_in_place(x, down);
    }
}

impl ProbedModel for LlamaModel {
    fn quantizable_tensors(&self) -> Vec<QuantizableTensor> {
        LlamaModel::quantizable_tensors(self)
    }

    fn tensor_weight(&self, index: usize) -> Option<&LinearWeight> {
        LlamaModel::tensor_weight(self, index)
    }

    fn layers(&self) -> usize {
        self.config.layers
    }

    fn output_kind(&self) -> ModelOutput {
        ModelOutput::Logits { vocab: self.config.vocab }
    }

    fn block_input(&self, ids: &[u32], probe: &mut Probe<'_>) -> Result<Vec<f32>> {
        self.embed_from(ids, probe)
    }

    fn tied_embedding(&self) -> Option<usize> {
        self.weights.embeddings.is_none().then_some(self.config.layers * LINEARS_PER_BLOCK)
    }

    fn run_block(
        &self,
        layer: usize,
        h: &mut [f32],
        n: usize,
        probe: &mut Probe<'_>,
    ) -> Result<()> {
        let c = &self.config;
        let block = self.weights.blocks.get(layer).ok_or_else(|| ModelError::BadInput {
            reason: format!("block {layer} of a model with {}", c.layers),
        })?;
        if h.len() != n * c.hidden || n > c.context {
            return Err(ModelError::BadInput {
                reason: format!("{} hidden values for {n} tokens of width {}", h.len(), c.hidden),
            });
        }
        let mut cache = KvCache::new(c.layers, c.kv_heads, c.head_dim, n);
        probe.observe(Observed::BlockInput(layer), h, n);
        let mut scratch = Scratch::default();
        self.fill_rope(&mut scratch, 0, n);
        self.block(layer, block, h, n, 0, &mut cache, probe, &mut scratch);
        Ok(())
    }

    fn output(&self, h: Vec<f32>, n: usize, probe: &mut Probe<'_>) -> Result<Vec<f32>> {
        let c = &self.config;
        if h.len() != n * c.hidden {
            return Err(ModelError::BadInput {
                reason: format!("{} hidden values for {n} tokens of width {}", h.len(), c.hidden),
            });
        }
        probe.observe(Observed::BlockInput(c.layers), &h, n);
        Ok(self.head(h, n, probe))
    }
}
