//! The error type of the analyzer.

use std::path::PathBuf;

use qloader_models::ModelError;

/// Why an analysis, or reading a sensitivity table, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// The model could not be run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed (not its `source()`: the message shows it).
        error: std::io::Error,
    },
    /// A sensitivity table is malformed.
    #[error("{path}: not a valid sensitivity table: {reason}")]
    Table {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the tensor where there is one.
        reason: String,
    },
    /// GPTQ could not quantize a tensor.
    #[error("GPTQ on tensor `{tensor}`: {error}")]
    Gptq {
        /// The tensor.
        tensor: String,
        /// Why.
        error: qloader_quant::gptq::GptqError,
    },
    /// The calibration data gave nothing to analyze with.
    #[error("calibration data: {0}")]
    Calibration(String),
    /// The options contradict each other or the model.
    #[error("{0}")]
    Options(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = AnalyzeError> = std::result::Result<T, E>;
