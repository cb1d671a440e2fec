//! Why a plan could not be made, read or written: each error names the
//! file, the tensor or the option at fault.

use std::path::PathBuf;

/// A scheduling error.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// A file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed (not its `source()`: the message shows it).
        error: std::io::Error,
    },
    /// The sensitivity table could not be used.
    #[error(transparent)]
    Table(#[from] qloader_analyze::AnalyzeError),
    /// The device profile could not be used.
    #[error(transparent)]
    Profile(#[from] qloader_hw::ProfileError),
    /// The options do not fit the table or the device.
    #[error("{0}")]
    Options(String),
    /// A tensor has no format the device can run.
    #[error("tensor {tensor}: {reason}")]
    Tensor {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The solver failed (e.g. no plan meets the budget).
    #[error(transparent)]
    Solver(#[from] qloader_plan::PlanError),
    /// A plan file is not valid.
    #[error("{}: not a valid plan: {reason}", path.display())]
    Plan {
        /// The plan file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A chart could not be drawn.
    #[error("drawing {}: {reason}", path.display())]
    Chart {
        /// The picture file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Results of this crate.
pub type Result<T, E = ScheduleError> = std::result::Result<T, E>;
