//! Loading a nested variant (`qloader_format::nested`): its root's codes
//! and every link's bit planes rebuilt, row by row in parallel, into the
//! grouped weight it runs as (`int3`, `int4` or `int8g32`), owned by the
//! model. The file's pages can then be let go like any tiled weight's.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use half::f16;
use qloader_format::nested::{rebuild_row, rebuilt_layout, Chain, RowScratch};
use qloader_format::TensorView;
use qloader_kernels::GroupedMatrix;
use qloader_quant::LinearWeight;
use rayon::prelude::*;

/// The weight `view` stands for, if it is a nested variant (`None` for a
/// variant stored whole); the reason if its chain cannot be rebuilt.
pub fn rebuild_nested(view: &TensorView<'_>) -> Option<Result<LinearWeight, String>> {
    let links = view.nested_chain()?;
    Some(rebuild_chain(view.rows(), view.cols(), links.chain()))
}

/// The grouped weight at the end of `chain`, for a `rows × cols` tensor.
pub(super) fn rebuild_chain(
    rows: usize,
    cols: usize,
    chain: Chain<'_>,
) -> Result<LinearWeight, String> {
    let bits = chain.bits();
    let layout = rebuilt_layout(bits).ok_or_else(|| format!("no grouped format of {bits} bits"))?;
    let (row_bytes, groups) = (layout.row_code_bytes(cols), layout.groups_per_row(cols));
    let mut codes = vec![0u8; rows * row_bytes];
    let mut scales = vec![f16::ZERO; rows * groups];
    let mut offsets = vec![f16::ZERO; rows * groups];
    codes
        .par_chunks_mut(row_bytes)
        .zip(scales.par_chunks_mut(groups))
        .zip(offsets.par_chunks_mut(groups))
        .enumerate()
        .for_each_init(RowScratch::default, |scratch, (r, ((codes, scales), offsets))| {
            rebuild_row(&chain, (r, cols), scratch, codes, scales, offsets);
        });
    GroupedMatrix::from_parts(rows, cols, layout, codes, scales, offsets)
        .map(LinearWeight::Grouped)
        .ok_or_else(|| format!("the rebuilt {bits}-bit codes do not fit a {rows} × {cols} tensor"))
}
