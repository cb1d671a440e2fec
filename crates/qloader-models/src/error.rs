//! The error type of the model crate.

use std::path::PathBuf;

use qloader_format::FormatError;

/// Why a model could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A weight source could not supply a tensor as the model needs it.
    #[error("{}: tensor `{tensor}`: {reason}", path.display())]
    Source {
        /// The file the source reads.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A weight given in place of a model tensor has the wrong shape.
    #[error("tensor `{tensor}`: the weight given for it is {got:?}, the model needs {want:?}")]
    ReplacementShape {
        /// The tensor.
        tensor: String,
        /// `[rows, cols]` the model needs.
        want: [usize; 2],
        /// `[rows, cols]` given.
        got: [usize; 2],
    },
    /// A model file is missing or malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// `tokenizer.json` could not be loaded or configured.
    #[error("{path}: invalid tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What the tokenizers library reported.
        reason: String,
    },
    /// A text could not be tokenized.
    #[error("cannot tokenize {text:?}: {reason}")]
    Encode {
        /// The start of the text.
        text: String,
        /// What the tokenizers library reported.
        reason: String,
    },
    /// A token id is outside the embedding table.
    #[error("token id {id} is outside the vocabulary of {vocab} (tokenizer and model disagree)")]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// The number of token embeddings.
        vocab: usize,
    },
    /// A sequence is longer than the model's position embeddings.
    #[error("sequence of {len} tokens exceeds the model's {max} positions")]
    SequenceTooLong {
        /// Tokens given.
        len: usize,
        /// Positions available.
        max: usize,
    },
    /// Hidden states handed to a partial forward pass do not fit the model.
    #[error("bad input to a partial forward pass: {reason}")]
    BadInput {
        /// What does not fit.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
