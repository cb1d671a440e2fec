//! Weight matrices in each storage format, with quantization from `f32` and
//! de-quantization back. A matrix is `rows × cols` = `out_features ×
//! in_features`, the layout of a linear layer's weight, so groups and
//! channels run along the input dimension.

mod dense;
mod int4;
mod int8;

pub use dense::DenseMatrix;
pub use int4::{dequantize_block as int4_dequantize_block, Int4Matrix};
pub use int8::Int8Matrix;
