//! The error type of the runtime crate.

use qloader_models::ModelError;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The model could not be loaded or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A model file is missing or malformed.
    #[error(transparent)]
    Format(#[from] qloader_format::FormatError),
    /// A packed model's header does not describe a model this build runs.
    #[error("{}: {reason}", path.display())]
    InvalidPacked {
        /// The packed model.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A plan does not fit the model it is applied to.
    #[error("{}: {reason}", model.display())]
    PlanMismatch {
        /// The model.
        model: std::path::PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// An evaluation was asked for no formats or no sentences.
    #[error("nothing to evaluate: {0}")]
    EmptyEvaluation(&'static str),
    /// A model benchmark was asked for tests it cannot run.
    #[error("invalid benchmark: {0}")]
    InvalidBench(String),
    /// llama.cpp's tools are missing, failed, or printed what we cannot read.
    #[error("llama.cpp: {0}")]
    LlamaCpp(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
