//! What every SIMD panel kernel needs before its unchecked loop: the shape
//! checks its pointer arithmetic relies on, the dispatch from a layout
//! (bits, group width) to the kernel instance compiled for it, and the
//! walk of activation rows in register tiles of decreasing height.

use std::ops::Range;

use qloader_format::grouped::BLOCK;

use super::layout::{panel_bytes, PANEL_ROWS};
use super::{F32Rows, TiledMatrix};
use crate::activations::QuantizedActivations;

/// Checks the panel and the output, returning `(groups, blocks)` per row.
fn check_panel(w: &TiledMatrix, panel: usize, m: usize, out: &[f32]) -> (usize, usize) {
    let layout = w.layout();
    assert!(panel < w.panels(), "panel {panel} of {}", w.panels());
    assert_eq!(w.panel(panel).len(), panel_bytes(layout, w.header(), w.cols()));
    assert_eq!(w.panel(panel).as_ptr() as usize % 64, 0, "panels are 64-byte aligned");
    assert!(out.len() >= m * PANEL_ROWS, "out holds m × 16 values");
    (layout.groups_per_row(w.cols()), layout.blocks_per_row(w.cols()))
}

/// Everything an int8-activation panel kernel's unchecked accesses rely on;
/// `(groups, blocks)` per row.
pub(crate) fn check_panel_a8(
    x: &QuantizedActivations,
    w: &TiledMatrix,
    panel: usize,
    rows: &Range<usize>,
    out: &[f32],
) -> (usize, usize) {
    assert_eq!(x.group(), w.layout().group(), "activations quantized in the weight's groups");
    assert_eq!(x.cols(), w.cols(), "activation and weight widths differ");
    assert!(rows.end <= x.rows(), "activation rows {rows:?} of {}", x.rows());
    check_panel(w, panel, rows.len(), out)
}

/// Everything an `f32`-activation panel kernel's unchecked accesses rely
/// on; `(groups, blocks)` per row.
pub(crate) fn check_panel_f32(
    x: &F32Rows,
    w: &TiledMatrix,
    panel: usize,
    rows: &Range<usize>,
    out: &[f32],
) -> (usize, usize) {
    assert!(rows.end <= x.rows, "activation rows {rows:?} of {}", x.rows);
    let (groups, blocks) = check_panel(w, panel, rows.len(), out);
    assert!(x.stride >= blocks * BLOCK && x.values.len() >= x.rows * x.stride);
    assert!(x.groups >= groups && x.group_sums.len() >= x.rows * x.groups);
    (groups, blocks)
}

/// Evaluates `$body` with consts `$bits: u8` (2, 3, 4 or 8) and
/// `$per_group: usize` (blocks per group: 1, 2 or 4) set to the layout's,
/// so that the body can name the kernel instance compiled for it.
macro_rules! with_tile_layout {
    ($layout:expr, |$bits:ident, $per_group:ident| $body:expr) => {{
        let layout = $layout;
        macro_rules! per_group_of {
            ($b:literal) => {
                match layout.group() {
                    32 => {
                        const $bits: u8 = $b;
                        const $per_group: usize = 1;
                        $body
                    }
                    64 => {
                        const $bits: u8 = $b;
                        const $per_group: usize = 2;
                        $body
                    }
                    _ => {
                        const $bits: u8 = $b;
                        const $per_group: usize = 4;
                        $body
                    }
                }
            };
        }
        match layout.bits() {
            2 => per_group_of!(2),
            3 => per_group_of!(3),
            4 => per_group_of!(4),
            5 => per_group_of!(5),
            _ => per_group_of!(8),
        }
    }};
}
pub(crate) use with_tile_layout;

/// Walks activation rows `$rows` in register tiles: `$max` rows at a time,
/// then 4, 2 and 1 (those below `$max`), evaluating `$body` with `$i` the
/// tile's first row and const `$r` its height.
macro_rules! row_tiles {
    ($rows:expr, $max:expr, |$i:ident, $r:ident| $body:expr) => {{
        let rows: std::ops::Range<usize> = $rows;
        let mut $i = rows.start;
        while $i + $max <= rows.end {
            const $r: usize = $max;
            $body;
            $i += $max;
        }
        if $max > 4 && rows.end - $i >= 4 {
            const $r: usize = 4;
            $body;
            $i += 4;
        }
        if $max > 2 && rows.end - $i >= 2 {
            const $r: usize = 2;
            $body;
            $i += 2;
        }
        if rows.end - $i == 1 {
            const $r: usize = 1;
            $body;
        }
    }};
}
pub(crate) use row_tiles;
