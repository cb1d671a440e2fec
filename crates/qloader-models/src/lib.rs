//! Model families of QLoader.
//!
//! * [`bert`]: the BERT encoder as sentence-transformers runs it (embeddings,
//!   post-norm attention blocks, exact GELU, mean or CLS pooling, optional L2
//!   normalisation), with every linear layer a
//!   [`LinearWeight`](qloader_quant::LinearWeight) in whatever format it was
//!   given.
//! * [`tokenizer`]: the `tokenizer.json` of a model, configured for
//!   single-sentence encoding.
//! * [`decoder`]: what every decoder design gives (checkpoint, configuration,
//!   forward pass with a KV cache), through which sessions, packing and
//!   analysis use any family.
//! * [`family`]: the registry of model families, looked up by the
//!   architecture a file names.
//! * [`llama`]: the Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) read
//!   from GGUF or a Hugging Face checkpoint (RMSNorm, RoPE, grouped-query
//!   attention with a KV cache, SwiGLU), its linear layers in any QLoader
//!   weight format.
//! * [`gguf_tokenizer`]: the tokenizer a GGUF file carries (byte-level BPE,
//!   or SentencePiece BPE rebuilt from its pieces and scores), or a decoder
//!   checkpoint's `tokenizer.json`, and the chat turn formats.
//! * [`source`]: where a model's tensors come from while it is built (an
//!   original checkpoint quantized per tensor, or a packed model).
//! * [`ops`]: the element-wise pieces of a transformer block.
//! * [`probe`]: the quantizable tensors of a model, and hooks into a forward
//!   pass that observe activations or swap one weight (for sensitivity
//!   analysis).
#![deny(missing_docs)]

pub mod bert;
pub mod decoder;
pub mod error;
pub mod family;
pub mod gguf_tokenizer;
pub mod llama;
pub mod ops;
pub mod probe;
pub mod source;
mod spm_tokenizer;
pub mod tokenizer;

pub use bert::BertEncoder;
pub use decoder::{Decoder, DecoderCheckpoint, DecoderConfig, DecoderDesign};
pub use error::ModelError;
pub use gguf_tokenizer::{ChatFormat, GgufTokenizer, TokenizerSettings};
pub use llama::LlamaModel;
pub use probe::{ModelOutput, Observed, Probe, ProbedModel, QuantizableTensor, TensorKind};
pub use source::{RecordedTensor, RecordingSource, ReplacingSource, WeightRole, WeightSource};
pub use tokenizer::SentenceTokenizer;
