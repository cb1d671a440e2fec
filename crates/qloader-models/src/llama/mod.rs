//! The Llama-family decoder read from GGUF: configuration from the file's
//! metadata, weights de-quantized and re-stored per tensor in any QLoader
//! weight format, and the forward pass with a KV cache.

mod attention;
pub mod config;
pub mod forward;
pub mod kv_cache;
mod scratch;
pub mod weights;

pub use config::LlamaConfig;
pub use forward::{LlamaModel, Logits};
pub use kv_cache::KvCache;
pub use weights::{tensor_names, GgufSource, HEAD, TOKEN_EMBEDDINGS};
