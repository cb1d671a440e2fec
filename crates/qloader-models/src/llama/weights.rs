//! Loading a Llama-family decoder's weights from GGUF: every tensor is
//! de-quantized to `f32` (the file's own storage is the reference "full
//! precision"), its shape checked against the configuration, and each linear
//! weight re-stored in the format the caller chooses for it by name.

use qloader_format::gguf::GgufFile;
use qloader_format::{FormatError, WeightFormat};
use qloader_kernels::DenseMatrix;
use qloader_quant::{LinearWeight, QuantSummary};

use super::config::LlamaConfig;
use crate::error::Result;

/// Linear layers in one block.
pub(crate) const LINEARS_PER_BLOCK: usize = 7;

/// The linear layers of one block, in block order: GGUF name and
/// `(out, in)` features.
pub(crate) fn block_linears(c: &LlamaConfig) -> [(&'static str, usize, usize); LINEARS_PER_BLOCK] {
    [
        ("attn_q", c.hidden, c.hidden),
        ("attn_k", c.kv_width(), c.hidden),
        ("attn_v", c.kv_width(), c.hidden),
        ("attn_output", c.hidden, c.hidden),
        ("ffn_gate", c.ffn, c.hidden),
        ("ffn_up", c.ffn, c.hidden),
        ("ffn_down", c.hidden, c.ffn),
    ]
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

/// One decoder block.
pub(crate) struct Block {
    pub attn_norm: Vec<f32>,
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
    /// `vocab × hidden`, for the embedding look-up.
    pub embeddings: Vec<f32>,
    pub blocks: Vec<Block>,
    pub output_norm: Vec<f32>,
    pub head: LinearWeight,
}

struct Loader<'a> {
    file: &'a GgufFile,
    summary: QuantSummary,
}

impl Loader<'_> {
    /// De-quantizes `name`, which must have `shape` (outermost first).
    fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.file.tensor_f32(name)?;
        if t.shape != shape {
            return Err(FormatError::ShapeMismatch {
                path: self.file.path().to_owned(),
                tensor: name.to_owned(),
                expected: shape.to_vec(),
                got: t.shape,
            }
            .into());
        }
        Ok(t.data)
    }

    fn vector(&mut self, name: &str, width: usize) -> Result<Vec<f32>> {
        let v = self.f32(name, &[width])?;
        self.summary.record(name, width, WeightFormat::F32, width * 4, false);
        Ok(v)
    }

    fn linear(
        &mut self,
        name: &str,
        data: Vec<f32>,
        (out, inp): (usize, usize),
        choose: &dyn Fn(&str) -> WeightFormat,
    ) -> LinearWeight {
        let dense = DenseMatrix::new(out, inp, data).expect("shape checked on load");
        let format = choose(name);
        let weight = LinearWeight::quantize(dense, format);
        self.summary.record(name, out * inp, format, weight.storage_bytes(), true);
        weight
    }

    fn matrix(
        &mut self,
        name: &str,
        shape: (usize, usize),
        choose: &dyn Fn(&str) -> WeightFormat,
    ) -> Result<LinearWeight> {
        let data = self.f32(name, &[shape.0, shape.1])?;
        Ok(self.linear(name, data, shape, choose))
    }
}

impl LlamaWeights {
    /// Loads every tensor of `file`, storing linear weights as `choose` says.
    pub fn load(
        file: &GgufFile,
        config: &LlamaConfig,
        choose: &dyn Fn(&str) -> WeightFormat,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Self, QuantSummary)> {
        let mut ld = Loader { file, summary: QuantSummary::default() };
        let (vocab, hidden) = (config.vocab, config.hidden);
        let embeddings = ld.f32("token_embd.weight", &[vocab, hidden])?;
        ld.summary.record(
            "token_embd.weight",
            vocab * hidden,
            WeightFormat::F32,
            vocab * hidden * 4,
            false,
        );
        let mut blocks = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            progress(l, config.layers);
            let name = |n: &str| format!("blk.{l}.{n}.weight");
            let mut m = block_linears(config)
                .into_iter()
                .map(|(n, out, inp)| ld.matrix(&name(n), (out, inp), choose))
                .collect::<Result<Vec<_>>>()?
                .into_iter();
            let mut next = || m.next().expect("seven linears per block");
            let (q, k, v, o, gate, up, down) =
                (next(), next(), next(), next(), next(), next(), next());
            blocks.push(Block {
                attn_norm: ld.vector(&name("attn_norm"), hidden)?,
                ffn_norm: ld.vector(&name("ffn_norm"), hidden)?,
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
        let output_norm = ld.vector("output_norm.weight", hidden)?;
        // Tied embeddings: no `output.weight`; the head is the embedding table.
        let head = if file.tensors().iter().any(|t| t.name == HEAD) {
            ld.matrix(HEAD, (vocab, hidden), choose)?
        } else {
            ld.linear(HEAD, embeddings.clone(), (vocab, hidden), choose)
        };
        let summary = ld.summary;
        Ok((Self { embeddings, blocks, output_norm, head }, summary))
    }
}
