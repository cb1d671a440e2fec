//! The BERT encoder of sentence-transformers models (e.g. all-MiniLM-L6-v2):
//! weights loaded from safetensors with every linear layer in a chosen format
//! ([`weights`]), and the forward pass to a pooled sentence embedding
//! ([`forward`]).

mod forward;
mod weights;

pub use forward::BertEncoder;
pub use weights::{linear_layers_in, tensor_names, LinearKind, SafetensorsSource, WORD_EMBEDDINGS};
