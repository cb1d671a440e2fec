//! Looking inside a forward pass, for sensitivity analysis: which tensors a
//! model can quantize and what role each plays ([`QuantizableTensor`]), the
//! activations a pass produces ([`Observed`]), and one weight swapped for
//! another while everything else stays as loaded ([`Probe`]).

use qloader_quant::LinearWeight;

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
    /// Token embedding table.
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
}

impl<'a> Probe<'a> {
    /// A probe that changes nothing and observes nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// A probe that reports activations to `observer`.
    pub fn observing(observer: &'a mut Observer<'a>) -> Self {
        Self { observer: Some(observer), substitute: None }
    }

    /// A probe that multiplies by `weight` wherever the model would use its
    /// quantizable tensor number `tensor` (an index into the model's
    /// `quantizable_tensors()`).
    pub fn substituting(tensor: usize, weight: &'a LinearWeight) -> Self {
        Self { observer: None, substitute: Some((tensor, weight)) }
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
            _ => own,
        }
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
