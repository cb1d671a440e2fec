//! Portable panel kernels for tiled weights: the products of one 16-row
//! panel with every activation row, straight from the documented layout.
//! They are the generic tier and the specification the SIMD tiers are
//! tested against (with the scalar reference products beside them).

use std::ops::Range;

use qloader_format::grouped::BLOCK;

use super::layout::{block_bytes, header_entry, read_block, PANEL_ROWS};
use super::{F32Rows, TiledMatrix};
use crate::activations::QuantizedActivations;

/// `out[(i − rows.start)·16 + l]` = activation row `i` · weight row
/// `16·panel + l` for `i` in `rows`, with int8 activations quantized in the
/// weight's groups.
pub fn panel_a8(
    x: &QuantizedActivations,
    w: &TiledMatrix,
    panel: usize,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let layout = w.layout();
    let (bits, per_group) = (layout.bits(), layout.group() / BLOCK);
    let blocks = layout.blocks_per_row(w.cols());
    let data = w.panel(panel);
    let m = rows.len();
    out[..m * PANEL_ROWS].fill(0.0);
    for g in 0..layout.groups_per_row(w.cols()) {
        let group = w.group_at(g);
        let mut at = group.blocks;
        let mut dots = vec![[0i32; PANEL_ROWS]; m];
        for b in g * per_group..((g + 1) * per_group).min(blocks) {
            let codes = read_block(bits, &data[at..]);
            at += block_bytes(bits);
            for (i, d) in dots.iter_mut().enumerate() {
                let a = &x.row(rows.start + i).0[b * BLOCK..(b + 1) * BLOCK];
                for (l, row) in codes.iter().enumerate() {
                    d[l] +=
                        row.iter().zip(a).map(|(&q, &a)| w.level(q) as i32 * a as i32).sum::<i32>();
                }
            }
        }
        for (i, d) in dots.iter().enumerate() {
            let (_, scales, sums) = x.row(rows.start + i);
            for (l, &dot) in d.iter().enumerate() {
                let (scale, offset) = header_entry(data, group, l);
                out[i * PANEL_ROWS + l] += scales[g] * scale * dot as f32 + offset * sums[g];
            }
        }
    }
}

/// `out[(i − rows.start)·16 + l]` = activation row `i` · weight row
/// `16·panel + l` for `i` in `rows`, with `f32` activations: per group
/// `scale · Σ x·q + offset · Σ x`.
pub fn panel_f32(x: &F32Rows, w: &TiledMatrix, panel: usize, rows: Range<usize>, out: &mut [f32]) {
    let layout = w.layout();
    let (bits, per_group) = (layout.bits(), layout.group() / BLOCK);
    let (cols, blocks) = (w.cols(), layout.blocks_per_row(w.cols()));
    let data = w.panel(panel);
    let m = rows.len();
    out[..m * PANEL_ROWS].fill(0.0);
    for g in 0..layout.groups_per_row(cols) {
        let group = w.group_at(g);
        let mut at = group.blocks;
        let mut dots = vec![[0f32; PANEL_ROWS]; m];
        for b in g * per_group..((g + 1) * per_group).min(blocks) {
            let codes = read_block(bits, &data[at..]);
            at += block_bytes(bits);
            for (i, d) in dots.iter_mut().enumerate() {
                let at = (rows.start + i) * x.stride + b * BLOCK;
                let xs = &x.values[at..at + BLOCK];
                for (l, row) in codes.iter().enumerate() {
                    d[l] += row.iter().zip(xs).map(|(&q, &v)| w.level(q) as f32 * v).sum::<f32>();
                }
            }
        }
        for (i, d) in dots.iter().enumerate() {
            let sum = x.group_sums[(rows.start + i) * x.groups + g];
            for (l, &dot) in d.iter().enumerate() {
                let (scale, offset) = header_entry(data, group, l);
                out[i * PANEL_ROWS + l] += scale * dot + offset * sum;
            }
        }
    }
}
