//! QLoader's report: does mixed precision beat uniform formats and a fixed
//! recipe at equal size, measured end to end on real models?
//!
//! * [`recipe`]: llama.cpp's `Q4_K_M` / `Q3_K_M` mixtures in QLoader's
//!   formats.
//! * [`llama_files`]: llama.cpp's own files (its importance matrix and
//!   quantizer), the baselines of `--llama-cpp`.
//! * [`measure`]: one packed model measured (perplexity and decode speed, or
//!   cosine and retrieval agreement).
//! * [`run`]: the whole comparison, from table to measured rows.
//! * [`render`]: the report as Markdown and HTML with the frontier chart.
#![deny(missing_docs)]

pub mod error;
pub mod llama_files;
pub mod measure;
pub mod recipe;
pub mod render;
pub mod run;

pub use error::{ReportError, Result};
pub use run::{make_report, Report, ReportOptions, Row, RowKind};
