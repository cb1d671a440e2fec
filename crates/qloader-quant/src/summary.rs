//! What a quantized model stores: per tensor, its format and bytes; in total,
//! the bytes and bits per weight of the quantized tensors and of the rest.

use qloader_format::WeightFormat;

/// One stored tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRecord {
    /// The tensor's name in the source file.
    pub name: String,
    /// Number of weights.
    pub params: usize,
    /// Storage format.
    pub format: WeightFormat,
    /// Bytes stored.
    pub bytes: usize,
    /// Whether the tensor is one the quantizer may change (a linear weight).
    pub quantizable: bool,
}

/// Storage accounting of a whole model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantSummary {
    /// Every stored tensor, in model order.
    pub tensors: Vec<TensorRecord>,
}

impl QuantSummary {
    /// Adds one tensor.
    pub fn record(
        &mut self,
        name: &str,
        params: usize,
        format: WeightFormat,
        bytes: usize,
        quantizable: bool,
    ) {
        self.tensors.push(TensorRecord {
            name: name.to_owned(),
            params,
            format,
            bytes,
            quantizable,
        });
    }

    /// The records of the tensors whose name `keep` accepts.
    pub fn only(&self, keep: impl Fn(&str) -> bool) -> QuantSummary {
        QuantSummary { tensors: self.tensors.iter().filter(|t| keep(&t.name)).cloned().collect() }
    }

    /// Bytes of the quantizable tensors.
    pub fn quantized_bytes(&self) -> usize {
        self.sum(true, |t| t.bytes)
    }

    /// Weights in the quantizable tensors.
    pub fn quantized_params(&self) -> usize {
        self.sum(true, |t| t.params)
    }

    /// Bytes of everything else (embeddings, norms, biases), kept in f32.
    pub fn other_bytes(&self) -> usize {
        self.sum(false, |t| t.bytes)
    }

    /// Bytes of all tensors.
    pub fn total_bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Bits per weight over the quantizable tensors, scales included.
    pub fn quantized_bits_per_weight(&self) -> f64 {
        let p = self.quantized_params();
        if p == 0 {
            0.0
        } else {
            self.quantized_bytes() as f64 * 8.0 / p as f64
        }
    }

    fn sum(&self, quantizable: bool, f: impl Fn(&TensorRecord) -> usize) -> usize {
        self.tensors.iter().filter(|t| t.quantizable == quantizable).map(f).sum()
    }
}
