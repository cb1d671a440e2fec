//! QLoader's runtime: opens a model with its linear weights in a chosen
//! format, turns text into embeddings or generates text, and measures how far
//! a quantized model is from full precision (embedding cosine, perplexity).
//!
//! It also loads packed models ([`packed`]): tensors read in place from the
//! memory map, each multiplied by the fastest kernel the [`registry`] finds
//! for it on this CPU, or converted once at load where there is none. And it
//! times whole decoders ([`bench`]: prompt processing and decoding, side by
//! side with llama.cpp's `llama-bench`).
#![deny(missing_docs)]

pub mod bench;
pub mod decoder;
pub mod error;
pub mod eval;
pub mod generate;
pub mod packed;
pub mod perplexity;
pub mod registry;
pub mod sampling;
pub mod sentences;
pub mod session;

pub use decoder::DecoderSession;
pub use error::RuntimeError;
pub use eval::{evaluate, evaluate_candidates, EvalCandidate, EvalReport, EvalRow};
pub use generate::{generate, Generation};
pub use perplexity::{perplexity, PerplexityReport};
pub use sampling::{Sampler, Sampling};
pub use session::EncoderSession;

/// Threads the runtime's products run on (the kernels' thread team, sized
/// by `QLOADER_THREADS` or `RAYON_NUM_THREADS`, else every core).
pub fn threads() -> usize {
    qloader_kernels::team::threads()
}
