//! A Llama-family decoder's weights: their names and shapes, taken from any
//! [`WeightSource`], and the source that reads a GGUF file (every tensor
//! de-quantized to `f32`, the file's own storage being the reference "full
//! precision", its shape checked against the configuration, and each
//! quantizable tensor re-stored in the format the caller chooses by name).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use qloader_format::gguf::GgufFile;
use qloader_format::{FormatError, WeightFormat};
use qloader_quant::{ColumnImportance, LinearWeight, QuantSummary};

use super::config::LlamaConfig;
use crate::error::Result;
use crate::source::{record_values, record_weight, store, WeightRole, WeightSource};

/// Linear layers in one block.
pub(crate) const LINEARS_PER_BLOCK: usize = 7;

/// The linear layers of one block, in block order: GGUF name and
/// `(out, in)` features.
pub(crate) fn block_linears(c: &LlamaConfig) -> [(&'static str, usize, usize); LINEARS_PER_BLOCK] {
    [
        ("attn_q", c.q_width(), c.hidden),
        ("attn_k", c.kv_width(), c.hidden),
        ("attn_v", c.kv_width(), c.hidden),
        ("attn_output", c.hidden, c.q_width()),
        ("ffn_gate", c.ffn, c.hidden),
        ("ffn_up", c.ffn, c.hidden),
        ("ffn_down", c.hidden, c.ffn),
    ]
}

/// Where block tensor `name` sits in a checkpoint that fuses q, k and v
/// (`attn_qkv`) or the gate and up projections (`ffn_gate_up`) into one
/// matrix (Phi-3): the fused tensor's name, the part's first row, and the
/// fused tensor's rows.
pub(crate) fn fused_part(name: &str, c: &LlamaConfig) -> Option<(String, usize, usize)> {
    let rest = name.strip_prefix("blk.")?.strip_suffix(".weight")?;
    let (layer, part) = rest.split_once('.')?;
    let (q, kv, ffn) = (c.q_width(), c.kv_width(), c.ffn);
    let (fused, first, total) = match part {
        "attn_q" => ("attn_qkv", 0, q + 2 * kv),
        "attn_k" => ("attn_qkv", q, q + 2 * kv),
        "attn_v" => ("attn_qkv", q + kv, q + 2 * kv),
        "ffn_gate" => ("ffn_gate_up", 0, 2 * ffn),
        "ffn_up" => ("ffn_gate_up", ffn, 2 * ffn),
        _ => return None,
    };
    Some((format!("blk.{layer}.{fused}.weight"), first, total))
}

/// Rows `first..first + rows` of the row-major matrix `data` of `cols`
/// columns.
pub(crate) fn rows_of(data: &[f32], cols: usize, first: usize, rows: usize) -> Vec<f32> {
    data[first * cols..(first + rows) * cols].to_vec()
}

/// Name of the language-model head as a quantizable tensor (with tied
/// embeddings it is a copy of `token_embd.weight`).
pub const HEAD: &str = "output.weight";

/// Names of the quantizable tensors (every block's linear weights, then the
/// head), in model order.
pub fn tensor_names(config: &LlamaConfig) -> Vec<String> {
    let mut names: Vec<String> = (0..config.layers)
        .flat_map(|l| block_linears(config).map(|(n, _, _)| format!("blk.{l}.{n}.weight")))
        .collect();
    names.push(HEAD.to_owned());
    names
}

/// Name of the token-embedding table.
pub const TOKEN_EMBEDDINGS: &str = "token_embd.weight";

/// One decoder block.
pub(crate) struct Block {
    pub attn_norm: Vec<f32>,
    /// Biases of the q, k and v projections (models with `qkv_bias`).
    pub qkv_bias: Option<[Vec<f32>; 3]>,
    /// Per-head RMSNorm scales of the queries and keys (models with
    /// `qk_norm`).
    pub qk_norm: Option<[Vec<f32>; 2]>,
    /// RMSNorm scales of the attention output and of the feed-forward
    /// output (models with `post_norms`).
    pub post_norms: Option<[Vec<f32>; 2]>,
    pub q: LinearWeight,
    pub k: LinearWeight,
    pub v: LinearWeight,
    pub o: LinearWeight,
    pub ffn_norm: Vec<f32>,
    pub gate: LinearWeight,
    pub up: LinearWeight,
    pub down: LinearWeight,
}

/// All weights of the decoder.
pub(crate) struct LlamaWeights {
    /// `vocab × hidden`, for the embedding look-up; `None` when the
    /// embeddings are tied to the head, which then serves the look-up (in
    /// whatever format the head is stored).
    pub embeddings: Option<Box<LinearWeight>>,
    pub blocks: Vec<Block>,
    pub output_norm: Vec<f32>,
    pub head: LinearWeight,
}

/// The tensors of a GGUF file, each de-quantized to `f32` (the file's own
/// storage is the reference "full precision") and each quantizable tensor
/// re-stored in the format `choose(name)` returns. With tied embeddings the
/// file has no `output.weight`; asking for it yields the embedding table.
pub struct GgufSource<'a> {
    file: &'a GgufFile,
    choose: &'a dyn Fn(&str) -> WeightFormat,
    importance: Option<&'a ColumnImportance>,
    summary: QuantSummary,
    /// The file's configuration, read once, the first time a fused tensor
    /// (Phi-3) must be cut.
    config: std::cell::OnceCell<LlamaConfig>,
}

impl<'a> GgufSource<'a> {
    /// Reads `file`, storing quantizable tensors as `choose` says.
    pub fn new(file: &'a GgufFile, choose: &'a dyn Fn(&str) -> WeightFormat) -> Self {
        let (importance, summary, config) = (None, QuantSummary::default(), Default::default());
        Self { file, choose, importance, summary, config }
    }

    /// The file's configuration (read at the first call).
    fn config(&self) -> Result<&LlamaConfig> {
        match self.config.get() {
            Some(c) => Ok(c),
            None => {
                let c = LlamaConfig::from_gguf(self.file)?;
                Ok(self.config.get_or_init(|| c))
            }
        }
    }

    /// Weighs the grid search of each tensor `importance` names by its
    /// vector (the `imatrix` method).
    pub fn with_importance(mut self, importance: &'a ColumnImportance) -> Self {
        self.importance = Some(importance);
        self
    }

    /// De-quantizes `name`, which must have `shape` (outermost first): the
    /// shape is checked first, so a tensor of the wrong size costs no memory.
    fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let got = self.file.tensor(name)?.shape();
        if got != shape {
            return Err(FormatError::ShapeMismatch {
                path: self.file.path().to_owned(),
                tensor: name.to_owned(),
                expected: shape.to_vec(),
                got,
            }
            .into());
        }
        Ok(self.file.tensor_f32(name)?.data)
    }
}

impl GgufSource<'_> {
    /// Whether `name` is a Phi-3 file's `ffn_up`, which holds the gate and
    /// the up projection (`2·rows` rows) where a caller asks for `rows`.
    fn is_fused_gate_up(&self, name: &str, rows: usize) -> Result<bool> {
        if !name.ends_with(".ffn_up.weight") {
            return Ok(false);
        }
        let gate = name.replace(".ffn_up.", ".ffn_gate.");
        Ok(!self.contains(&gate) && self.file.tensor(name)?.shape().first() == Some(&(2 * rows)))
    }
}

impl WeightSource for GgufSource<'_> {
    fn contains(&self, name: &str) -> bool {
        self.file.tensors().iter().any(|t| t.name == name)
    }

    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let v = self.f32(name, shape)?;
        record_values(&mut self.summary, name, v.len());
        Ok(v)
    }

    fn weight(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        role: WeightRole,
    ) -> Result<LinearWeight> {
        let stored = if name == HEAD && !self.contains(HEAD) { TOKEN_EMBEDDINGS } else { name };
        let fused = match self.contains(stored) && !self.is_fused_gate_up(stored, rows)? {
            true => None,
            false => fused_part(stored, self.config()?),
        };
        let (stored, data) = match fused {
            // GGUF names Phi-3's fused gate and up projections `ffn_up`.
            Some((fused, first, total)) => {
                let fused = fused.replace("ffn_gate_up", "ffn_up");
                let all = self.f32(&fused, &[total, cols])?;
                (fused, rows_of(&all, cols, first, rows))
            }
            None => (stored.to_owned(), self.f32(stored, &[rows, cols])?),
        };
        let stored = stored.as_str();
        let importance = self.importance.and_then(|m| m.get(name));
        let format = (self.choose)(name);
        let w = store((self.file.path(), stored), data, (rows, cols), format, role, importance)?;
        record_weight(&mut self.summary, name, &w, role);
        Ok(w)
    }

    fn summary(&self) -> &QuantSummary {
        &self.summary
    }
}

impl LlamaWeights {
    /// Takes every tensor of the decoder from `src`; `progress(done, total)`
    /// hears about the blocks.
    pub fn load(
        src: &mut dyn WeightSource,
        config: &LlamaConfig,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let (vocab, hidden) = (config.vocab, config.hidden);
        // Untied: both tables are stored. Tied: a checkpoint has only the
        // embedding table, a packed model only the head.
        let tied = !(src.contains(TOKEN_EMBEDDINGS) && src.contains(HEAD));
        let embeddings = if tied {
            None
        } else {
            Some(Box::new(src.weight(TOKEN_EMBEDDINGS, vocab, hidden, WeightRole::Table)?))
        };
        let mut blocks = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            progress(l, config.layers);
            let name = |n: &str| format!("blk.{l}.{n}.weight");
            let [q, k, v, o, gate, up, down] = block_linears(config)
                .map(|(n, out, inp)| src.weight(&name(n), out, inp, WeightRole::Linear));
            let (q, k, v, o, gate, up, down) = (q?, k?, v?, o?, gate?, up?, down?);
            let bias = |src: &mut dyn WeightSource, n: &str, width: usize| {
                src.values(&format!("blk.{l}.{n}.bias"), &[width])
            };
            let qkv_bias = match config.qkv_bias {
                true => Some([
                    bias(src, "attn_q", config.q_width())?,
                    bias(src, "attn_k", config.kv_width())?,
                    bias(src, "attn_v", config.kv_width())?,
                ]),
                false => None,
            };
            let d = config.head_dim;
            let qk_norm = match config.qk_norm {
                true => Some([
                    src.values(&name("attn_q_norm"), &[d])?,
                    src.values(&name("attn_k_norm"), &[d])?,
                ]),
                false => None,
            };
            let post_norms = match config.post_norms {
                true => Some([
                    src.values(&name("post_attention_norm"), &[hidden])?,
                    src.values(&name("post_ffw_norm"), &[hidden])?,
                ]),
                false => None,
            };
            blocks.push(Block {
                attn_norm: src.values(&name("attn_norm"), &[hidden])?,
                qkv_bias,
                qk_norm,
                post_norms,
                ffn_norm: src.values(&name("ffn_norm"), &[hidden])?,
                q,
                k,
                v,
                o,
                gate,
                up,
                down,
            });
        }
        progress(config.layers, config.layers);
        let output_norm = src.values("output_norm.weight", &[hidden])?;
        let head = src.weight(HEAD, vocab, hidden, WeightRole::Linear)?;
        Ok(Self { embeddings, blocks, output_norm, head })
    }
}
