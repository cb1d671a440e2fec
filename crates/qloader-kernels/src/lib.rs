//! Numeric kernels of QLoader, per weight format.
//!
//! * [`quantize`]: from `f32` matrices to the formats of `qloader_format`
//!   (f16, int8 per channel, int8/int4/int3/int2 in groups of 32/64/128) and
//!   back.
//! * [`generic`]: the scalar reference of every matrix product
//!   (`Y = X·Wᵀ`), which is the specification every faster kernel is tested
//!   against, and [`matmul`]: the kernels the runtime calls, which unpack
//!   weights on the fly (never a full `f32` copy of `W`) and split the work
//!   over threads, with row kernels from the [`dispatch`] table (generic, or
//!   [`x86_64`] AVX2 + FMA when the CPU has it).
//! * [`gemm`]: dense `f32` products for batches (through faer).
//!
//! Shapes are checked at the public boundary; the loops inside only
//! `debug_assert!`.
#![deny(missing_docs)]

pub mod activations;
pub mod attention;
pub mod dispatch;
pub mod expanded_gemm;
pub mod f16_convert;
pub mod gemm;
pub mod generic;
pub mod knobs;
pub mod log_sum_exp;
pub mod matmul;
pub mod quantize;
pub mod rowwise;
pub mod storage;
pub mod team;
#[cfg(test)]
mod test_support;
pub mod tiles;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

pub use dispatch::{Isa, Kernels};
pub use quantize::{
    BlockMatrix, CompactMatrix, DenseMatrix, GroupedMatrix, GroupedRow, HalfMatrix, Int8Matrix,
};
pub use storage::{Plain, StableBytes, Storage};
