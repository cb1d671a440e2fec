//! Grouped weights re-laid in tiles for the batched products (prompt
//! processing, perplexity, the analyzer's end-to-end runs) and for decoding:
//! panels of 16 rows whose codes sit so that one 64-byte integer
//! multiply-add advances 16 rows by 4 columns (layout: [`layout`]).
//!
//! A product walks the panels, spread over the [`crate::team`] by an atomic
//! counter; each panel is read once per product and multiplied into every
//! activation row while it is in the cache, with register tiles of up to
//! eight activation rows × 16 weight rows. With int8 activations the integer
//! sums of a group are exact and scaled once per group; with `f32`
//! activations each code is converted once per panel and used for every
//! activation row.
//!
//! The tiles are built once from a [`GroupedMatrix`] (at load) and hold the
//! same values: same codes, same `f16` scales and offsets. Formats stored
//! otherwise keep what their grid needs ([`layout::TileHeader`]): only the
//! scales where the offset is a fixed multiple of them, or the compact
//! formats' super-scales and 8-bit sub-scales and mins. Tiles may carry a
//! table of 16 levels (4-bit codes only): code `q` is then read as the byte
//! `levels[q]` wherever a product or de-quantization reads a code — how the
//! non-uniform grid of `nl4k` runs on the same kernels.

pub mod generic;
pub(crate) mod kernel_support;
pub mod layout;

use std::fmt;
use std::ops::Range;

use qloader_format::grouped::{GroupedLayout, BLOCK};
use rayon::prelude::*;

use crate::activations::QuantizedActivations;
use crate::dispatch::Kernels;
use crate::quantize::{DenseMatrix, GroupedMatrix};
use crate::team;
use layout::{
    block_bytes, group_at, header_entry, panel_bytes, read_block, write_panel, PanelRow,
    PanelSource, TileHeader, PANEL_ROWS,
};

/// Bytes whose start is aligned to 64.
struct AlignedBytes {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBytes {
    fn zeroed(len: usize) -> Self {
        let buf = vec![0u8; len + 63];
        let start = buf.as_ptr().align_offset(64).min(63);
        Self { buf, start, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl Clone for AlignedBytes {
    fn clone(&self) -> Self {
        let mut copy = Self::zeroed(self.len);
        copy.bytes_mut().copy_from_slice(self.bytes());
        copy
    }
}

/// One row as grouped parts, for [`TiledMatrix::from_decoded_rows`].
#[derive(Debug, Clone, Default)]
pub struct DecodedRow {
    /// Packed code blocks ([`qloader_format::grouped`]).
    pub codes: Vec<u8>,
    /// One scale per group.
    pub scales: Vec<half::f16>,
    /// One offset per group.
    pub offsets: Vec<half::f16>,
    /// `[d, dmin]` per super-group of 8 groups, for a
    /// [`TileHeader::SubScales`] header (which needs no scales or offsets).
    pub supers: Vec<[half::f16; 2]>,
    /// `[sc, m]` per group, for a [`TileHeader::SubScales`] header.
    pub subs: Vec<[u8; 2]>,
}

impl DecodedRow {
    fn panel_row(&self) -> PanelRow<'_> {
        PanelRow {
            codes: &self.codes,
            scales: &self.scales,
            offsets: &self.offsets,
            supers: &self.supers,
            subs: &self.subs,
        }
    }
}

/// A grouped matrix in tiles.
#[derive(Clone)]
pub struct TiledMatrix {
    rows: usize,
    cols: usize,
    layout: GroupedLayout,
    header: TileHeader,
    levels: Option<[u8; 16]>,
    panel_bytes: usize,
    data: AlignedBytes,
}

impl fmt::Debug for TiledMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TiledMatrix({}×{}, {:?})", self.rows, self.cols, self.layout)
    }
}

impl TiledMatrix {
    /// The tiles of `w` (panels built in parallel).
    pub fn from_grouped(w: &GroupedMatrix) -> Self {
        let (rows, cols, layout) = (w.rows(), w.cols(), w.layout());
        let header = TileHeader::ScaleOffset;
        let bytes = panel_bytes(layout, header, cols);
        let panels = rows.div_ceil(PANEL_ROWS);
        let mut data = AlignedBytes::zeroed(panels * bytes);
        if bytes > 0 {
            data.bytes_mut().par_chunks_mut(bytes).enumerate().for_each(|(p, out)| {
                let rows = (p * PANEL_ROWS..((p + 1) * PANEL_ROWS).min(rows))
                    .map(|r| {
                        let row = w.row(r);
                        PanelRow {
                            codes: row.codes,
                            scales: row.scales,
                            offsets: row.offsets,
                            ..PanelRow::default()
                        }
                    })
                    .collect();
                write_panel(&PanelSource { layout, header, cols, rows }, out);
            });
        }
        Self { rows, cols, layout, header, levels: None, panel_bytes: bytes, data }
    }

    /// The tiles of a `rows × cols` matrix in `layout` whose row `r`
    /// `decode(r)` gives as grouped parts: packed codes
    /// (`layout.row_code_bytes(cols)`), and one `f16` scale and offset per
    /// group (how formats stored otherwise, e.g. the compact ones, run on
    /// the tile kernels), each code read as `levels[code]` if given. With a
    /// [`TileHeader::ScaleOnly`] header the decoded offsets are not kept:
    /// they must be `−bias · scale`. Panels are built in parallel.
    ///
    /// # Panics
    /// If `levels` is given for codes that are not 4 bits wide.
    pub fn from_decoded_rows(
        (rows, cols): (usize, usize),
        layout: GroupedLayout,
        header: TileHeader,
        levels: Option<[u8; 16]>,
        decode: &(dyn Fn(usize) -> DecodedRow + Sync),
    ) -> Self {
        assert!(levels.is_none() || layout.bits() == 4, "levels look up 4-bit codes");
        let bytes = panel_bytes(layout, header, cols);
        let panels = rows.div_ceil(PANEL_ROWS);
        let mut data = AlignedBytes::zeroed(panels * bytes);
        if bytes > 0 {
            data.bytes_mut().par_chunks_mut(bytes).enumerate().for_each(|(p, out)| {
                let decoded: Vec<DecodedRow> =
                    (p * PANEL_ROWS..((p + 1) * PANEL_ROWS).min(rows)).map(decode).collect();
                let rows = decoded.iter().map(DecodedRow::panel_row).collect();
                write_panel(&PanelSource { layout, header, cols, rows }, out);
            });
        }
        Self { rows, cols, layout, header, levels, panel_bytes: bytes, data }
    }

    /// The byte each 4-bit code is read as, if not the code itself.
    pub fn levels(&self) -> Option<[u8; 16]> {
        self.levels
    }

    /// Code `q` as the products read it.
    #[inline]
    pub fn level(&self, q: u8) -> u8 {
        self.levels.map_or(q, |l| l[(q & 0x0f) as usize])
    }

    /// Rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bit width and group size.
    pub fn layout(&self) -> GroupedLayout {
        self.layout
    }

    /// What each group's header stores.
    pub fn header(&self) -> TileHeader {
        self.header
    }

    /// Where group `g` lies in every panel.
    #[inline]
    pub fn group_at(&self, g: usize) -> layout::GroupAt {
        let group_blocks = self.layout.group() / BLOCK * block_bytes(self.layout.bits());
        group_at(self.header, group_blocks, self.layout.groups_per_row(self.cols), g)
    }

    /// Panels (the last may hold fewer than 16 real rows).
    pub fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL_ROWS)
    }

    /// The bytes of panel `p` (64-byte aligned).
    pub fn panel(&self, p: usize) -> &[u8] {
        &self.data.bytes()[p * self.panel_bytes..(p + 1) * self.panel_bytes]
    }

    /// Bytes held (codes, scales and offsets of whole panels).
    pub fn storage_bytes(&self) -> usize {
        self.data.len
    }

    /// Back to `f32` (from the tiles themselves).
    pub fn dequantize(&self) -> DenseMatrix {
        self.map_weights(|scale, level, offset| scale * level + offset)
    }

    /// Each weight as `f(scale, level, offset)` of its group's scale and
    /// offset and its code's level (the code, or its entry in the table).
    pub(crate) fn map_weights(&self, f: impl Fn(f32, f32, f32) -> f32) -> DenseMatrix {
        let (bits, per_group) = (self.layout.bits(), self.layout.group() / BLOCK);
        let blocks = self.layout.blocks_per_row(self.cols);
        let mut out = vec![0.0f32; self.rows * self.cols];
        for p in 0..self.panels() {
            let data = self.panel(p);
            for g in 0..self.layout.groups_per_row(self.cols) {
                let group = self.group_at(g);
                let mut at = group.blocks;
                for b in g * per_group..((g + 1) * per_group).min(blocks) {
                    let codes = read_block(bits, &data[at..]);
                    at += block_bytes(bits);
                    for (l, row) in codes.iter().enumerate() {
                        let r = p * PANEL_ROWS + l;
                        if r >= self.rows {
                            break;
                        }
                        let (scale, offset) = header_entry(data, group, l);
                        for (c, &q) in row.iter().enumerate() {
                            let col = b * BLOCK + c;
                            if col < self.cols {
                                out[r * self.cols + col] = f(scale, self.level(q) as f32, offset);
                            }
                        }
                    }
                }
            }
        }
        DenseMatrix::new(self.rows, self.cols, out).expect("shape is preserved")
    }
}

/// `f32` activation rows as the panel kernels take them: the values, each
/// row padded with zeros to whole 32-value blocks, and each row's sum over
/// every group of the weight's layout.
pub struct F32Rows {
    /// `rows × stride`, row-major.
    pub values: Vec<f32>,
    /// Rows.
    pub rows: usize,
    /// Values per row (columns padded to a multiple of 32).
    pub stride: usize,
    /// Groups per row.
    pub groups: usize,
    /// `rows × groups`: `Σ x` over each group.
    pub group_sums: Vec<f32>,
}

impl F32Rows {
    /// `x` (`m × cols`) with its sums over groups of `group` values.
    pub fn new(x: &[f32], m: usize, cols: usize, group: usize) -> Self {
        assert_eq!(x.len(), m * cols, "x must be m × cols");
        let stride = cols.div_ceil(BLOCK) * BLOCK;
        let groups = cols.div_ceil(group);
        let mut values = vec![0.0f32; m * stride];
        let mut group_sums = Vec::with_capacity(m * groups);
        for (row, out) in x.chunks_exact(cols.max(1)).zip(values.chunks_exact_mut(stride.max(1))) {
            out[..cols].copy_from_slice(row);
            group_sums.extend(row.chunks(group).map(|g| g.iter().sum::<f32>()));
        }
        Self { values, rows: m, stride, groups, group_sums }
    }
}

/// `Y = X·Wᵀ` with tiled weights and int8 activations quantized in the
/// weight's groups (`y` is `m × n`).
pub fn matmul_tiled_a8(x: &QuantizedActivations, w: &TiledMatrix, y: &mut [f32]) {
    matmul_tiled_a8_with(Kernels::detect(), x, w, y)
}

/// [`matmul_tiled_a8`] with the kernels of a given tier.
pub fn matmul_tiled_a8_with(k: &Kernels, x: &QuantizedActivations, w: &TiledMatrix, y: &mut [f32]) {
    assert_eq!(x.cols(), w.cols(), "activation and weight widths differ");
    assert_eq!(x.group(), w.layout().group(), "activations quantized in the weight's groups");
    let panel = k.panel_a8;
    by_panels(x.rows(), w, y, |p, rows, out| panel(x, w, p, rows, out));
}

/// `Y = X·Wᵀ` with tiled weights and `f32` activations (`x` is `m × k`).
pub fn matmul_tiled_f32(x: &[f32], m: usize, w: &TiledMatrix, y: &mut [f32]) {
    matmul_tiled_f32_with(Kernels::detect(), x, m, w, y)
}

/// [`matmul_tiled_f32`] with the kernels of a given tier.
pub fn matmul_tiled_f32_with(k: &Kernels, x: &[f32], m: usize, w: &TiledMatrix, y: &mut [f32]) {
    let rows = F32Rows::new(x, m, w.cols(), w.layout().group());
    let panel = k.panel_f32;
    by_panels(m, w, y, |p, r, out| panel(&rows, w, p, r, out));
}

/// `y = SiLU(x·Gᵀ) ⊙ (x·Uᵀ)` (SwiGLU's gate and up products and its gating)
/// with int8 activations, in one pass: each panel's gate and up results are
/// combined while in cache, so neither `m × n` product is written out.
///
/// # Panics
/// If `gate` and `up` differ in shape or layout.
pub fn matmul_tiled_a8_glu(
    x: &QuantizedActivations,
    gate: &TiledMatrix,
    up: &TiledMatrix,
    y: &mut [f32],
) {
    let k = Kernels::detect();
    check_glu(gate, up);
    assert_eq!(x.cols(), gate.cols(), "activation and weight widths differ");
    assert_eq!(x.group(), gate.layout().group(), "activations quantized in the weight's groups");
    let panel = k.panel_a8;
    by_panels_glu(x.rows(), gate, y, |w, p, rows, out| {
        panel(x, if w == 0 { gate } else { up }, p, rows, out)
    });
}

/// [`matmul_tiled_a8_glu`] with `f32` activations (`x` is `m × k`).
///
/// # Panics
/// If `gate` and `up` differ in shape or layout.
pub fn matmul_tiled_f32_glu(
    x: &[f32],
    m: usize,
    gate: &TiledMatrix,
    up: &TiledMatrix,
    y: &mut [f32],
) {
    let k = Kernels::detect();
    check_glu(gate, up);
    let rows = F32Rows::new(x, m, gate.cols(), gate.layout().group());
    let panel = k.panel_f32;
    by_panels_glu(m, gate, y, |w, p, r, out| {
        panel(&rows, if w == 0 { gate } else { up }, p, r, out)
    });
}

fn check_glu(gate: &TiledMatrix, up: &TiledMatrix) {
    assert_eq!(
        (gate.rows(), gate.cols(), gate.layout()),
        (up.rows(), up.cols(), up.layout()),
        "gate and up weights differ in shape or layout"
    );
}

/// [`by_panels`] for a gated pair: `panel(w, p, rows, out)` fills `out`
/// from the gate (`w = 0`) or up (`w = 1`) weight; the gate's results are
/// passed through SiLU and multiplied by the up's before they are written.
fn by_panels_glu(
    m: usize,
    gate: &TiledMatrix,
    y: &mut [f32],
    panel: impl Fn(usize, usize, Range<usize>, &mut [f32]) + Sync,
) {
    let silu_mul = crate::rowwise::ops().silu_mul;
    by_panels(m, gate, y, |p, rows, out| {
        let mut up = [0.0f32; ROW_BLOCK * PANEL_ROWS];
        let up = &mut up[..out.len()];
        panel(0, p, rows.clone(), out);
        panel(1, p, rows, up);
        silu_mul(out, up);
    });
}

/// Multiply-adds a chunk of panels should at least hold, so that handing it
/// to another thread pays.
const MIN_CHUNK_WORK: usize = 1 << 16;

/// Activation rows per block: while a thread's chunk of panels passes over
/// a block, the block's activations and outputs stay in cache (the outputs
/// of all rows at once would not, and writing them column strip by column
/// strip would fetch every line of `y` from memory).
const ROW_BLOCK: usize = 64;

/// Runs `panel(p, rows, out)` (which fills `out[(i − rows.start)·16 + l]`
/// for activation row `i` in `rows` and the panel's row `l`) for every panel
/// and block of activation rows, panels spread over the team, and writes the
/// results into `y` (`m × rows`).
fn by_panels(
    m: usize,
    w: &TiledMatrix,
    y: &mut [f32],
    panel: impl Fn(usize, Range<usize>, &mut [f32]) + Sync,
) {
    let n = w.rows();
    assert_eq!(y.len(), m * n, "y must be m × n");
    if m == 0 || n == 0 {
        return;
    }
    let panels = w.panels();
    let per_panel = m * PANEL_ROWS * w.cols().max(1);
    let grain = MIN_CHUNK_WORK.div_ceil(per_panel).max(panels.div_ceil(4 * team::threads()));
    let out = SharedRows { ptr: y.as_mut_ptr(), m, n };
    team::for_each_chunk(panels, grain, |chunk| {
        let mut buf = [0.0f32; ROW_BLOCK * PANEL_ROWS];
        for r0 in (0..m).step_by(ROW_BLOCK) {
            let rows = r0..(r0 + ROW_BLOCK).min(m);
            let buf = &mut buf[..rows.len() * PANEL_ROWS];
            for p in chunk.clone() {
                panel(p, rows.clone(), buf);
                // SAFETY: every panel index is handed out exactly once
                // (chunks of one counter), so no two writers touch the same
                // columns.
                unsafe { out.write_panel(p, rows.clone(), buf) };
            }
        }
    });
}

/// `y` (`m × n`), written panel by panel from several threads.
struct SharedRows {
    ptr: *mut f32,
    m: usize,
    n: usize,
}

// SAFETY: writers only touch disjoint column ranges (see `write_panel`).
unsafe impl Sync for SharedRows {}

impl SharedRows {
    /// Writes panel `p`'s columns of `rows` from `buf` (`rows.len() × 16`).
    ///
    /// # Safety
    /// No other thread may write panel `p` concurrently, and `y` must be
    /// alive and `m × n`.
    unsafe fn write_panel(&self, p: usize, rows: Range<usize>, buf: &[f32]) {
        let first = p * PANEL_ROWS;
        let width = PANEL_ROWS.min(self.n - first);
        assert!(rows.end <= self.m && buf.len() >= rows.len() * PANEL_ROWS);
        for (t, i) in rows.enumerate() {
            let src = &buf[t * PANEL_ROWS..t * PANEL_ROWS + width];
            // SAFETY: i < m and first + width ≤ n: inside `y`; disjoint from
            // other panels' columns (the caller's contract).
            let dst = unsafe { self.ptr.add(i * self.n + first) };
            if let Ok(whole) = <&[f32; PANEL_ROWS]>::try_from(src) {
                // A fixed-size copy: one vector move, not a call to memmove.
                // SAFETY: as above, with width = 16.
                unsafe { dst.cast::<[f32; PANEL_ROWS]>().write_unaligned(*whole) };
            } else {
                // SAFETY: as above.
                unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, width) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::{
        dequantize_activations, matmul_grouped_a8_reference, matmul_grouped_reference,
    };
    use proptest::prelude::*;
    use qloader_format::grouped::{BITS, GROUPS};

    use crate::test_support::{assert_close, available, grouped_magnitude, matrix};

    fn check(m: usize, n: usize, k: usize, seed: &[f32]) {
        let w = matrix(n, k, seed);
        // Every row differently scaled, so a kernel that reads another row's
        // scales or sums is caught.
        let x: Vec<f32> = (0..m * k)
            .map(|i| seed[(i * 11) % seed.len()] * (1.0 + (i / k) as f32 * 0.37))
            .collect();
        for bits in BITS {
            for group in GROUPS {
                let g = GroupedMatrix::quantize(&w, GroupedLayout::new(bits, group).unwrap());
                let t = TiledMatrix::from_grouped(&g);
                let dq = g.dequantize();
                assert_eq!(t.dequantize(), dq, "int{bits}g{group} tiles hold the same values");
                let xq = QuantizedActivations::quantize(&x, m, k, group);
                let xs = dequantize_activations(&xq);
                let bound = grouped_magnitude(&g);
                let want_a8 = matmul_grouped_a8_reference(&xq, &g);
                let want_f32 = matmul_grouped_reference(&x, m, &g);
                for kern in available() {
                    let what = format!("{} int{bits}g{group} {m}×{n}×{k}", kern.isa);
                    let mut y = vec![f32::NAN; m * n];
                    matmul_tiled_a8_with(kern, &xq, &t, &mut y);
                    assert_close(&format!("{what} ·a8"), &y, &want_a8, &xs, m, &bound);
                    let mut y = vec![f32::NAN; m * n];
                    matmul_tiled_f32_with(kern, &x, m, &t, &mut y);
                    assert_close(&format!("{what} f32"), &y, &want_f32, &x, m, &bound);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Every tier equals the scalar reference on ragged shapes: rows not
        /// a multiple of 16, columns not a multiple of the block or group,
        /// activation rows not a multiple of the register tile.
        #[test]
        fn tiled_products_match_reference(
            m in 1usize..20, n in 1usize..40, k in 1usize..300,
            seed in proptest::collection::vec(-2.0f32..2.0, 64)
        ) {
            check(m, n, k, &seed);
        }
    }

    #[test]
    fn fixed_edge_shapes() {
        let seed: Vec<f32> = (0..97).map(|i| ((i * 37) % 97) as f32 / 48.0 - 1.0).collect();
        // 150 activation rows: blocks of 64 (one partial), so rows past the
        // first block are checked too.
        for (m, n, k) in [
            (1, 1, 1),
            (1, 16, 32),
            (8, 17, 64),
            (9, 33, 129),
            (17, 48, 576),
            (3, 5, 1000),
            (150, 20, 70),
        ] {
            check(m, n, k, &seed);
        }
    }

    /// Tiles built from compact rows — `nl4k`'s with a table of levels —
    /// and from llama.cpp's 32-value blocks give every tier the plain
    /// product with the tiles' own values; `int5k` and `q5_0` run on 5-bit
    /// tiles.
    #[test]
    fn compact_and_block_tiles_match_reference() {
        use crate::quantize::{BlockMatrix, CompactMatrix};
        use qloader_format::block32::BlockLayout;
        use qloader_format::compact::CompactLayout;
        let seed: Vec<f32> = (0..83).map(|i| ((i * 29) % 83) as f32 / 41.0 - 1.0).collect();
        // Odd group counts (70, 224 columns) leave a scale-only header's second
        // half empty.
        for (m, n, k) in [
            (1, 16, 256),
            (3, 17, 576),
            (9, 33, 300),
            (40, 20, 64),
            (2, 5, 100),
            (5, 17, 70),
            (2, 3, 224),
        ] {
            let w = matrix(n, k, &seed);
            let x: Vec<f32> =
                (0..m * k).map(|i| seed[(i * 13) % 83] * (1.0 + (i / k) as f32 * 0.3)).collect();
            let xq = QuantizedActivations::quantize(&x, m, k, 32);
            let xs = dequantize_activations(&xq);
            let check = |name: &str, t: &TiledMatrix, nonuniform: bool| {
                assert_eq!(t.levels().is_some(), nonuniform, "{name}");
                let five = ["int5k", "q5_0"].contains(&name);
                assert_eq!(t.layout().bits() == 5, five, "{name}");
                let values = t.dequantize();
                let bound = t.map_weights(|s, l, o| (s * l).abs() + o.abs());
                let product = |x: &[f32]| -> Vec<f32> {
                    (0..m * n)
                        .map(|at| {
                            let (i, j) = (at / n, at % n);
                            (0..k).map(|c| x[i * k + c] * values.row(j)[c]).sum()
                        })
                        .collect()
                };
                let (want_a8, want_f32) = (product(&xs), product(&x));
                for kern in available() {
                    let what = format!("{} {name} {m}×{n}×{k}", kern.isa);
                    let mut y = vec![f32::NAN; m * n];
                    matmul_tiled_a8_with(kern, &xq, t, &mut y);
                    assert_close(&format!("{what} ·a8"), &y, &want_a8, &xs, m, &bound);
                    let mut y = vec![f32::NAN; m * n];
                    matmul_tiled_f32_with(kern, &x, m, t, &mut y);
                    assert_close(&format!("{what} f32"), &y, &want_f32, &x, m, &bound);
                }
            };
            for layout in CompactLayout::all() {
                let c = CompactMatrix::quantize(&w, layout, None);
                check(&layout.name(), c.tiles(), layout.is_nonuniform());
            }
            for layout in BlockLayout::ALL {
                let b = BlockMatrix::quantize(&w, layout, None);
                assert_eq!(b.tiles().dequantize(), b.dequantize(), "{} exactly", layout.name());
                check(layout.name(), b.tiles(), layout.is_nonuniform());
            }
        }
    }

    #[test]
    fn gated_products_equal_gate_and_up_apart() {
        let seed: Vec<f32> = (0..89).map(|i| ((i * 23) % 89) as f32 / 44.0 - 1.0).collect();
        let (m, n, k) = (70, 40, 96);
        let x: Vec<f32> = (0..m * k).map(|i| seed[(i * 3) % 89]).collect();
        for (bits, group) in [(4u8, 32usize), (3, 64), (2, 128)] {
            let layout = GroupedLayout::new(bits, group).unwrap();
            let g = GroupedMatrix::quantize(&matrix(n, k, &seed), layout);
            let u = GroupedMatrix::quantize(&matrix(n, k, &seed[5..]), layout);
            let (gt, ut) = (TiledMatrix::from_grouped(&g), TiledMatrix::from_grouped(&u));
            let xq = QuantizedActivations::quantize(&x, m, k, group);
            let (mut gy, mut uy, mut fused) =
                (vec![0.0; m * n], vec![0.0; m * n], vec![0.0; m * n]);
            matmul_tiled_a8(&xq, &gt, &mut gy);
            matmul_tiled_a8(&xq, &ut, &mut uy);
            crate::rowwise::silu_mul(&mut gy, &uy);
            matmul_tiled_a8_glu(&xq, &gt, &ut, &mut fused);
            assert_eq!(fused, gy, "int{bits}g{group} ·a8");
            matmul_tiled_f32(&x, m, &gt, &mut gy);
            matmul_tiled_f32(&x, m, &ut, &mut uy);
            crate::rowwise::silu_mul(&mut gy, &uy);
            matmul_tiled_f32_glu(&x, m, &gt, &ut, &mut fused);
            assert_eq!(fused, gy, "int{bits}g{group} f32");
        }
    }

    #[test]
    fn parallel_products_write_every_output_once() {
        let seed: Vec<f32> = (0..61).map(|i| ((i * 17) % 61) as f32 / 30.0 - 1.0).collect();
        let w = matrix(500, 256, &seed);
        let g = GroupedMatrix::quantize(&w, GroupedLayout::new(4, 32).unwrap());
        let t = TiledMatrix::from_grouped(&g);
        let x: Vec<f32> = (0..3 * 256).map(|i| seed[(i * 5) % 61]).collect();
        let xq = QuantizedActivations::quantize(&x, 3, 256, 32);
        let want = matmul_grouped_a8_reference(&xq, &g);
        for threads in [1, 2, 3] {
            team::with_threads(threads, || {
                let mut y = vec![f32::NAN; 3 * 500];
                matmul_tiled_a8(&xq, &t, &mut y);
                assert_close(
                    "parallel",
                    &y,
                    &want,
                    &dequantize_activations(&xq),
                    3,
                    &grouped_magnitude(&g),
                );
            });
        }
    }
}
