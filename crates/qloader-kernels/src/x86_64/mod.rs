//! x86-64 kernel tiers. Each function here requires CPU features that the
//! dispatch table checks at run time before handing out a pointer to it.

use qloader_format::grouped::BLOCK;

use crate::activations::ActivationRow;
use crate::quantize::GroupedRow;

pub mod avx2;
pub mod avx512;

/// The shape of one grouped·a8 row product with `R` activation rows,
/// checked once: every bound the unchecked loads of both tiers rely on.
struct GroupedA8Shape<'a, const R: usize> {
    /// Bytes per 32-code block of the row (32 for one-byte codes).
    block_bytes: usize,
    /// Blocks per (padded) activation row.
    blocks: usize,
    /// Groups per row.
    groups: usize,
    /// Per activation row, `Σ code` per group, `groups` long.
    sums: [&'a [f32]; R],
}

impl<'a, const R: usize> GroupedA8Shape<'a, R> {
    /// Checks `row` against `xs` (`BITS = 0`: codes one byte each); panics
    /// where the rows disagree, before any unchecked load.
    fn check<const BITS: u8>(xs: &[ActivationRow<'a>; R], row: GroupedRow<'_>) -> Self {
        let layout = row.layout;
        let block_bytes = if BITS == 0 { BLOCK } else { layout.block_bytes() };
        let blocks = xs[0].codes.len() / BLOCK;
        let groups = blocks.div_ceil(layout.group() / BLOCK);
        assert!(xs.iter().all(|x| x.codes.len() == blocks * BLOCK));
        assert!(xs.iter().all(|x| x.group_sums(layout.group()).len() >= groups));
        assert!(row.codes.len() >= blocks * block_bytes, "row codes shorter than activations");
        assert!(row.scales.len() >= groups && row.offsets.len() >= groups);
        let sums = std::array::from_fn(|r| &xs[r].group_sums(layout.group())[..groups]);
        Self { block_bytes, blocks, groups, sums }
    }
}
