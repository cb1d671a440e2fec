//! Numeric kernels of QLoader, per weight format.
//!
//! * [`quantize`]: from `f32` matrices to the packed formats of
//!   `qloader_format` (int8 per channel, int4 in groups of 32) and back.
//! * [`generic`]: the scalar reference of every matrix product
//!   (`Y = X·Wᵀ`), which is the specification every faster kernel is tested
//!   against, and [`matmul`]: the kernels the runtime calls, which unpack
//!   weights on the fly (never a full `f32` copy of `W`) and split the work
//!   over threads.
//!
//! Shapes are checked at the public boundary; the loops inside only
//! `debug_assert!`.
#![deny(missing_docs)]

pub mod generic;
pub mod matmul;
pub mod quantize;

pub use quantize::{DenseMatrix, Int4Matrix, Int8Matrix};
