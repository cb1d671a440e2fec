//! The generic tier: scalar reference kernels (the specification every other
//! kernel is tested against) and portable row kernels (the fallback the
//! dispatch table starts from on every CPU).

mod reference;
mod rows;

pub use reference::{
    dequantize_activations, matmul_f16_reference, matmul_f32_reference,
    matmul_grouped_a8_reference, matmul_grouped_reference, matmul_int8_a8_reference,
    matmul_int8_reference,
};
pub use rows::{
    dot_f16, dot_f32, dot_f32_w4, dot_int8, dot_int8_a8, dot_int8_codes, dot_int8_w4, unpack_f16,
    unpack_grouped,
};
