//! Looking inside a forward pass, for sensitivity analysis: which tensors a
//! model can quantize and what role each plays ([`QuantizableTensor`]), the
//! activations a pass produces ([`Observed`]), and one weight swapped for
//! another while everything else stays as loaded ([`Probe`]).

use qloader_quant::LinearWeight;

use crate::error::Result;

/// The role of a quantizable tensor in its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TensorKind {
    /// Attention query projection.
    AttnQ,
    /// Attention key projection.
    AttnK,
    /// Attention value projection.
    AttnV,
    /// Attention output projection.
    AttnO,
    /// Gated feed-forward: the gate projection.
    MlpGate,
    /// Feed-forward up projection.
    MlpUp,
    /// Feed-forward down projection.
    MlpDown,
    /// Token embedding table (`vocab × hidden`, looked up rather than
    /// multiplied; its [`QuantizableTensor::site`] is its own).
    Embedding,
    /// Output (language-model) head.
    Head,
}

impl TensorKind {
    /// Every kind, in model order.
    pub const ALL: [TensorKind; 9] = [
        TensorKind::AttnQ,
        TensorKind::AttnK,
        TensorKind::AttnV,
        TensorKind::AttnO,
        TensorKind::MlpGate,
        TensorKind::MlpUp,
        TensorKind::MlpDown,
        TensorKind::Embedding,
        TensorKind::Head,
    ];

    /// The short name used in sensitivity tables.
    pub fn name(self) -> &'static str {
        match self {
            TensorKind::AttnQ => "attn_q",
            TensorKind::AttnK => "attn_k",
            TensorKind::AttnV => "attn_v",
            TensorKind::AttnO => "attn_o",
            TensorKind::MlpGate => "mlp_gate",
            TensorKind::MlpUp => "mlp_up",
            TensorKind::MlpDown => "mlp_down",
            TensorKind::Embedding => "embedding",
            TensorKind::Head => "head",
        }
    }

    /// The kind called `name` (see [`TensorKind::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One quantizable tensor: a linear layer's `rows × cols` (`out × in`) weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizableTensor {
    /// Name in the model file.
    pub name: String,
    /// Role in the model.
    pub kind: TensorKind,
    /// The block it belongs to (`None` for the head).
    pub layer: Option<usize>,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// The activation it multiplies: tensors with the same site see the same
    /// input (e.g. q, k and v), see [`Observed::LinearInput`].
    pub site: usize,
}

/// An activation a forward pass reports to its observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The hidden states entering block `l` (`l == layers`: leaving the
    /// last block), `rows × hidden`.
    BlockInput(usize),
    /// The input of the linear layers at this site (see
    /// [`QuantizableTensor::site`]), `rows × cols`.
    LinearInput(usize),
}

/// Receives activations during a forward pass: what, the row-major data,
/// and its number of rows.
pub type Observer<'a> = dyn FnMut(Observed, &[f32], usize) + 'a;

/// Hooks into one forward pass: an optional observer of activations and an
/// optional weight used in place of one quantizable tensor.
#[derive(Default)]
pub struct Probe<'a> {
    observer: Option<&'a mut Observer<'a>>,
    substitute: Option<(usize, &'a LinearWeight)>,
    /// Replacement weights by tensor index (`None`: the loaded one).
    substitutes: &'a [Option<LinearWeight>],
}

impl<'a> Probe<'a> {
    /// A probe that changes nothing and observes nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// A probe that reports activations to `observer`.
    pub fn observing(observer: &'a mut Observer<'a>) -> Self {
        Self { observer: Some(observer), ..Self::default() }
    }

    /// A probe that multiplies by `weight` wherever the model would use its
    /// quantizable tensor number `tensor` (an index into the model's
    /// `quantizable_tensors()`).
    pub fn substituting(tensor: usize, weight: &'a LinearWeight) -> Self {
        Self { substitute: Some((tensor, weight)), ..Self::default() }
    }

    /// Also multiplies by `weights[i]` wherever the model would use its
    /// quantizable tensor number `i`, for every `i` where that is `Some`
    /// (how a model is run with some of its tensors already quantized, e.g.
    /// block by block). A single substitute takes precedence.
    pub fn with_substitutes(mut self, weights: &'a [Option<LinearWeight>]) -> Self {
        self.substitutes = weights;
        self
    }

    /// Reports `data` (`rows` rows) to the observer, if any.
    pub(crate) fn observe(&mut self, what: Observed, data: &[f32], rows: usize) {
        if let Some(observer) = self.observer.as_mut() {
            observer(what, data, rows);
        }
    }

    /// The weight to use for tensor number `tensor`, whose loaded weight is
    /// `own`.
    pub(crate) fn weight<'w>(&self, tensor: usize, own: &'w LinearWeight) -> &'w LinearWeight
    where
        'a: 'w,
    {
        match self.substitute {
            Some((t, w)) if t == tensor => w,
            _ => self.substitutes.get(tensor).and_then(Option::as_ref).unwrap_or(own),
        }
    }
}

/// What a model's forward pass ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelOutput {
    /// Next-token logits, `n × vocab` for `n` tokens (a decoder).
    Logits {
        /// Vocabulary size.
        vocab: usize,
    },
    /// One embedding of `dim` values per input (a sentence encoder).
    Embedding {
        /// Embedding width.
        dim: usize,
    },
}

/// A model whose forward pass can be run block by block with a [`Probe`]:
/// what sensitivity analysis needs. Every pass covers one sequence of `n`
/// tokens at positions `0..n`.
pub trait ProbedModel: Sync {
    /// The quantizable tensors, in model order.
    fn quantizable_tensors(&self) -> Vec<QuantizableTensor>;
    /// The loaded weight of quantizable tensor number `index`.
    fn tensor_weight(&self, index: usize) -> Option<&LinearWeight>;
    /// Number of blocks.
    fn layers(&self) -> usize;
    /// What [`ProbedModel::output`] returns.
    fn output_kind(&self) -> ModelOutput;
    /// The input of block 0 for `ids`, `n × hidden` (with the probe's
    /// substitute embedding table, if it has one).
    fn block_input(&self, ids: &[u32], probe: &mut Probe<'_>) -> Result<Vec<f32>>;
    /// The quantizable tensor that also serves as the embedding table (an
    /// output head tied to the embeddings), if any: substituting it changes
    /// [`ProbedModel::block_input`] too.
    fn tied_embedding(&self) -> Option<usize> {
        None
    }
    /// Runs block `layer` on `h` (`n × hidden`) in place.
    fn run_block(&self, layer: usize, h: &mut [f32], n: usize, probe: &mut Probe<'_>)
        -> Result<()>;
    /// The model output from the last block's output `h`.
    fn output(&self, h: Vec<f32>, n: usize, probe: &mut Probe<'_>) -> Result<Vec<f32>>;

    /// The model output from block `from`'s input `h`: blocks `from..`, then
    /// [`ProbedModel::output`].
    fn output_from(
        &self,
        mut h: Vec<f32>,
        n: usize,
        from: usize,
        probe: &mut Probe<'_>,
    ) -> Result<Vec<f32>> {
        for layer in from..self.layers() {
            self.run_block(layer, &mut h, n, probe)?;
        }
        self.output(h, n, probe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for k in TensorKind::ALL {
            assert_eq!(TensorKind::from_name(k.name()), Some(k));
        }
        assert_eq!(TensorKind::from_name("conv"), None);
    }
}
