//! The BERT encoder of sentence-transformers models (e.g. all-MiniLM-L6-v2):
//! the model directory and its `config.json` ([`model_dir`], [`config`]),
//! weights loaded from safetensors with every linear layer in a chosen format
//! ([`weights`]), and the forward pass to a pooled sentence embedding
//! ([`forward`]).

pub mod config;
mod forward;
pub mod model_dir;
mod weights;

pub use config::BertConfig;
pub use forward::BertEncoder;
pub use model_dir::{ModelDir, PoolingMode};
pub use weights::{linear_layers_in, tensor_names, LinearKind, SafetensorsSource, WORD_EMBEDDINGS};
