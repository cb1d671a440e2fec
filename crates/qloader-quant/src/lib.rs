//! Quantized linear weights.
//!
//! [`LinearWeight`] is a linear layer's weight in any [`WeightFormat`]: the
//! model code multiplies through it without knowing the format, and the
//! format is chosen per tensor when the model is built. [`QuantSummary`]
//! accounts for what a quantized model stores. [`StoredParts`] is a weight
//! as the packed-model container stores it; [`conversion`] says which
//! formats a weight converts to without re-quantizing (the loader's fallback).
//! [`gptq`] chooses a weight's codes to keep the layer's output, rather than
//! its weights, close to full precision, given its input's second moment.
#![deny(missing_docs)]

mod convert;
pub mod gguf_layout;
pub mod gptq;
mod importance;
mod linear_weight;
mod stored_parts;
mod summary;

pub use convert::{conversion, Fidelity};
pub use importance::{weights_from_mean_squares, ColumnImportance, FLOOR};
pub use linear_weight::{LinearInput, LinearWeight};
pub use qloader_format::WeightFormat;
pub use stored_parts::{f32_values, StoredParts};
pub use summary::{QuantSummary, TensorRecord};
