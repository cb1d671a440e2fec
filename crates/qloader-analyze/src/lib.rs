//! QLoader's sensitivity analyzer: for every quantizable tensor of a model
//! and every candidate format, what storing that tensor alone in that format
//! costs.
//!
//! * [`analyzer`]: the analysis, block by block over calibration samples,
//!   for any [`ProbedModel`](qloader_models::ProbedModel); `stage`: one
//!   group of tensors measured across the cores (`parallel`).
//! * [`request`]: analyzing a model on disk with a calibration text.
//! * [`table`]: the versioned JSON sensitivity table it produces.
//! * [`summary`]: a readable view of a table.
//! * [`gptq`]: a whole model quantized with GPTQ, block by block over
//!   calibration samples.
//! * [`calibration`]: samples from plain text.
//! * [`estimate`]: the end-to-end measure estimated from the proxy where it
//!   was not run.
//! * [`moments`], [`tensor_error`], [`divergence`], [`rank`]: the measures
//!   and the statistics behind them.
#![deny(missing_docs)]

pub mod analyzer;
pub mod calibration;
pub mod divergence;
pub mod error;
pub mod estimate;
pub mod gptq;
pub mod importance;
pub mod moments;
mod parallel;
pub mod rank;
pub mod request;
mod stage;
pub mod summary;
pub mod table;
pub mod tensor_error;

pub use analyzer::{analyze, analyze_data_free, Analysis, AnalyzeOptions, Progress};
pub use error::AnalyzeError;
pub use request::{AnalyzeRequest, Stage};
pub use table::{E2eMetric, Measure, SensitivityTable};
