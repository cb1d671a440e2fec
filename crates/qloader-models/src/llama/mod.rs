//! The shared Llama-like decoder design (Llama, Mistral, Qwen2, Qwen3, Gemma 2
//! and 3, Phi-3), read from GGUF or
//! from a Hugging Face checkpoint directory: configuration from the file's
//! metadata, weights de-quantized and re-stored per tensor in any QLoader
//! weight format, and the forward pass with a KV cache.

mod attention;
pub mod config;
pub mod design;
pub mod forward;
pub mod hf;
pub mod kv_cache;
mod scratch;
pub mod weights;

pub use config::{GateActivation, LlamaConfig, RopeStyle};
pub use design::{LlamaCheckpoint, LlamaDesign, LLAMA_DESIGN};
pub use forward::{LlamaModel, Logits};
pub use hf::{HfDecoder, HfSource};
pub use kv_cache::KvCache;
pub use weights::{tensor_names, GgufSource, HEAD, TOKEN_EMBEDDINGS};
