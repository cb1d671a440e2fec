//! The error type of the report.

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Analysis failed.
    #[error(transparent)]
    Analyze(#[from] qloader_analyze::AnalyzeError),
    /// Planning failed.
    #[error(transparent)]
    Schedule(#[from] qloader_schedule::ScheduleError),
    /// Packing, loading or running failed.
    #[error(transparent)]
    Runtime(#[from] qloader_runtime::RuntimeError),
    /// A file could not be parsed.
    #[error(transparent)]
    Format(#[from] qloader_format::FormatError),
    /// A model failed.
    #[error(transparent)]
    Model(#[from] qloader_models::ModelError),
    /// A file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What failed (not its `source()`: the message shows it).
        error: std::io::Error,
    },
    /// Inputs that do not belong together.
    #[error("{0}")]
    Mismatch(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
