//! QLoader's runtime: opens a model directory with its linear weights in a
//! chosen format, turns text into embeddings, and measures how far a
//! quantized model's embeddings are from full precision.
//!
//! Loading packed models, the kernel registry and the fallback cache will
//! live here as well.
#![deny(missing_docs)]

pub mod error;
pub mod eval;
pub mod sentences;
pub mod session;

pub use error::RuntimeError;
pub use eval::{evaluate, EvalReport, EvalRow};
pub use session::EncoderSession;
