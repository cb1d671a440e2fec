//! Weight matrices in each storage format, with quantization from `f32` and
//! de-quantization back. A matrix is `rows × cols` = `out_features ×
//! in_features`, the layout of a linear layer's weight, so groups and
//! channels run along the input dimension.

mod block32;
mod compact;
mod dense;
mod f16;
mod grid_search;
#[cfg(target_arch = "x86_64")]
mod grid_search_x86;
mod grouped;
mod int8;
mod nonuniform;
mod row_blocks;

pub use block32::{block_code, fit_block, BlockMatrix};
pub use compact::{compact_code, fit_super_block, CompactMatrix};
pub use dense::DenseMatrix;
pub use f16::{HalfMatrix, HALF_PANEL_ROWS};
pub use grouped::{fit_group, group_code, GroupedMatrix, GroupedRow};
pub use int8::Int8Matrix;
pub use nonuniform::{nearest_level, nonuniform_code};
pub use row_blocks::{RowBlocks, RowLayout};
#[cfg(test)]
mod grouped_pinned;
