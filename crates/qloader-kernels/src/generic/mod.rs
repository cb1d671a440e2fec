//! Scalar reference kernels: the plainest possible code for `Y = X·Wᵀ` in
//! every format, written for obviousness, not speed. Every other kernel is
//! tested against these.

mod reference;

pub use reference::{matmul_f32_reference, matmul_int4_reference, matmul_int8_reference};
