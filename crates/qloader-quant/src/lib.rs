//! Quantized linear weights.
//!
//! [`LinearWeight`] is a linear layer's weight in any [`WeightFormat`]: the
//! model code multiplies through it without knowing the format, and the
//! format is chosen per tensor when the model is built. [`QuantSummary`]
//! accounts for what a quantized model stores.
#![deny(missing_docs)]

mod linear_weight;
mod summary;

pub use linear_weight::LinearWeight;
pub use qloader_format::WeightFormat;
pub use summary::{QuantSummary, TensorRecord};
