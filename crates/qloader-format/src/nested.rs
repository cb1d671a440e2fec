//! Nested codes: a wider variant of a tensor stored as bit planes on top of
//! a narrower one, so that one multi-plan file holds several widths of a
//! tensor for little more than the widest (issue 22).
//!
//! A *chain* starts at a *root*, a uniform compact variant (`int2k`, `int3k`
//! or `int4k`: codes `q` of `L` bits, a scale `s` and offset `o` per
//! 32-value sub-block). Each *link* adds `e` bit planes. A weight's code
//! after links of `e₁ … eₙ` planes (`E = Σ eᵢ` in all, `k = L + E` bits) is
//! `j = (…(q·2^e₁ + p₁)·2^e₂ + p₂ …)`, `pᵢ` its bits of link `i`: the lower
//! variant's code is a prefix of the higher one's. Its value is the centre
//! of the part of the root bin the planes pick — the root bin `[s·q + o −
//! s/2, s·q + o + s/2)` cut into `2^E` equal parts:
//!
//! ```text
//! step = s / 2^E        offset = o − s/2 + step/2        value = step · j + offset
//! ```
//!
//! which is a grouped weight of `k` bits in groups of 32 (scale `step`,
//! offset `offset`, both rounded to `f16` as the grouped format stores them).
//! That is how a nested variant is defined and how it runs: the loader
//! rebuilds it ([`rebuild_row`]) into the grouped format `int{k}` (`k` ∈
//! [`WIDTHS`]) and multiplies it with that format's kernels.
//!
//! A link's bytes, per row, are its `e` planes, the most significant
//! first, each `ceil(cols / 8)` bytes: bit `c % 8` of byte `c / 8` is the
//! plane's bit of column `c` (bits past the last column are zero).
//! [`encode_link`] chooses each weight's bits: the code inside the parent's
//! bin whose value (after the `f16` rounding of the grid) is nearest.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use half::f16;

use crate::compact::{for_each_code, CompactLayout};
use crate::grouped::{pack_block, GroupedLayout, BLOCK};

/// The widths a nested variant can have: those of the grouped formats with
/// kernels (`int3`, `int4`, `int8g32`).
pub const WIDTHS: [u8; 3] = [3, 4, 8];

/// Whether `layout` can start a chain: a uniform compact layout of at most
/// 4 bits (`int2k`, `int3k`, `int4k`).
pub fn is_root(layout: CompactLayout) -> bool {
    !layout.is_nonuniform() && layout.bits() <= 4
}

/// The grouped layout a nested variant of `bits` rebuilds into (groups of
/// 32), if `bits` is one of [`WIDTHS`].
pub fn rebuilt_layout(bits: u8) -> Option<GroupedLayout> {
    WIDTHS.contains(&bits).then(|| GroupedLayout::new(bits, BLOCK).ok()).flatten()
}

/// Bytes of one row of a link of `extra` planes over `cols` columns.
pub fn link_row_bytes(extra: u8, cols: usize) -> usize {
    extra as usize * cols.div_ceil(8)
}

/// A root and the links on it, root first: everything a nested variant of
/// `root.bits() + Σ extra` bits is rebuilt from.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a> {
    /// The root's layout (one for which [`is_root`] holds).
    pub root: CompactLayout,
    /// The root's super-blocks, `rows · root.row_bytes(cols)` bytes.
    pub root_codes: &'a [u8],
    /// Each link's plane count and bytes (`rows · link_row_bytes`), in
    /// order from the root.
    pub links: &'a [(u8, &'a [u8])],
}

impl Chain<'_> {
    /// Bits of the codes at the end of the chain.
    pub fn bits(&self) -> u8 {
        self.root.bits() + self.links.iter().map(|(e, _)| e).sum::<u8>()
    }
}

/// A chain whose links are listed in a vector it owns (what a packed
/// file's nested variant hands out); [`ChainLinks::chain`] borrows it.
#[derive(Debug, Clone)]
pub struct ChainLinks<'a> {
    /// The root's layout.
    pub root: CompactLayout,
    /// The root's super-blocks.
    pub root_codes: &'a [u8],
    /// Each link's plane count and bytes, from the root up.
    pub links: Vec<(u8, &'a [u8])>,
}

impl ChainLinks<'_> {
    /// The chain.
    pub fn chain(&self) -> Chain<'_> {
        Chain { root: self.root, root_codes: self.root_codes, links: &self.links }
    }
}

/// The `f16` grid (scale, offset) of a group whose root sub-block has scale
/// `s` and offset `o`, after `extra` planes in all.
fn grid(s: f32, o: f32, extra: u8) -> (f16, f16) {
    let step = s / (1u32 << extra) as f32;
    (f16::from_f32(step), f16::from_f32(o - s / 2.0 + step / 2.0))
}

/// One row's codes and root grids while a chain is read: kept between
/// rows so that a row costs no allocation.
#[derive(Debug, Default)]
pub struct RowScratch {
    codes: Vec<u8>,
    grids: Vec<(f32, f32)>,
}

/// Row `r`'s codes after all of `chain`'s links (one per column) and the
/// root's (scale, offset) per 32-column group, in `scratch`.
fn row_codes<'s>(
    chain: &Chain<'_>,
    r: usize,
    cols: usize,
    scratch: &'s mut RowScratch,
) -> (&'s mut [u8], &'s [(f32, f32)]) {
    let root_row = chain.root.row_bytes(cols);
    let row = &chain.root_codes[r * root_row..(r + 1) * root_row];
    let RowScratch { codes, grids } = scratch;
    codes.clear();
    codes.resize(cols, 0);
    grids.clear();
    grids.resize(cols.div_ceil(BLOCK), (0.0, 0.0));
    for_each_code(chain.root, row, cols, |c, s, o, q| {
        codes[c] = q;
        grids[c / BLOCK] = (s, o);
    });
    for &(extra, planes) in chain.links {
        let row_bytes = link_row_bytes(extra, cols);
        let link = &planes[r * row_bytes..(r + 1) * row_bytes];
        let plane_bytes = cols.div_ceil(8);
        for (c, code) in codes.iter_mut().enumerate() {
            let mut j = *code as u32;
            for p in 0..extra as usize {
                let bit = (link[p * plane_bytes + c / 8] >> (c % 8)) & 1;
                j = (j << 1) | bit as u32;
            }
            *code = j as u8;
        }
    }
    (codes, grids)
}

/// [`row_codes`] into new vectors.
#[cfg(test)]
fn row_codes_owned(chain: &Chain<'_>, r: usize, cols: usize) -> (Vec<u8>, Vec<(f32, f32)>) {
    let mut scratch = RowScratch::default();
    let (codes, grids) = row_codes(chain, r, cols, &mut scratch);
    (codes.to_vec(), grids.to_vec())
}

/// Writes row `r` of the nested variant at the end of `chain` as the
/// grouped format of [`rebuilt_layout`]`(chain.bits())`: its packed code
/// blocks (`layout.row_code_bytes(cols)` bytes) and one `f16` scale and
/// offset per group of 32 (`scratch`: any, reused between rows).
///
/// # Panics
/// If the chain's width is not one of [`WIDTHS`], or a slice is shorter
/// than `rows` rows of its layout need (the container checks both).
pub fn rebuild_row(
    chain: &Chain<'_>,
    (r, cols): (usize, usize),
    scratch: &mut RowScratch,
    codes_out: &mut [u8],
    scales_out: &mut [f16],
    offsets_out: &mut [f16],
) {
    let bits = chain.bits();
    let layout = rebuilt_layout(bits).unwrap_or_else(|| panic!("no grouped format of {bits} bits"));
    let extra = bits - chain.root.bits();
    let (codes, grids) = row_codes(chain, r, cols, scratch);
    for (g, &(s, o)) in grids.iter().enumerate() {
        let (scale, offset) = grid(s, o, extra);
        scales_out[g] = scale;
        offsets_out[g] = offset;
        let mut block = [0u8; BLOCK];
        let end = ((g + 1) * BLOCK).min(cols);
        block[..end - g * BLOCK].copy_from_slice(&codes[g * BLOCK..end]);
        let at = g * layout.block_bytes();
        pack_block(bits, &block, &mut codes_out[at..at + layout.block_bytes()]);
    }
}

/// The nested variant at the end of `chain`, rebuilt whole: grouped codes,
/// scales and offsets (see [`rebuild_row`]).
pub fn rebuild(chain: &Chain<'_>, rows: usize, cols: usize) -> Rebuilt {
    let bits = chain.bits();
    let layout = rebuilt_layout(bits).unwrap_or_else(|| panic!("no grouped format of {bits} bits"));
    let (row_bytes, groups) = (layout.row_code_bytes(cols), layout.groups_per_row(cols));
    let mut out = Rebuilt {
        layout,
        codes: vec![0; rows * row_bytes],
        scales: vec![f16::ZERO; rows * groups],
        offsets: vec![f16::ZERO; rows * groups],
    };
    let mut scratch = RowScratch::default();
    for r in 0..rows {
        rebuild_row(
            chain,
            (r, cols),
            &mut scratch,
            &mut out.codes[r * row_bytes..(r + 1) * row_bytes],
            &mut out.scales[r * groups..(r + 1) * groups],
            &mut out.offsets[r * groups..(r + 1) * groups],
        );
    }
    out
}

/// A nested variant rebuilt as a grouped weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuilt {
    /// `int{k}` in groups of 32.
    pub layout: GroupedLayout,
    /// Packed code blocks, row-major.
    pub codes: Vec<u8>,
    /// One scale per group, row-major.
    pub scales: Vec<f16>,
    /// One offset per group, row-major.
    pub offsets: Vec<f16>,
}

/// The planes of a new link of `extra` planes on `chain`, for the
/// `rows × cols` weights `weights` (row-major): per weight, the code inside
/// the parent code's bin whose value is nearest to the weight.
///
/// # Panics
/// If `weights` is not `rows · cols` long or the chain's slices are short.
pub fn encode_link(
    chain: &Chain<'_>,
    extra: u8,
    weights: &[f32],
    rows: usize,
    cols: usize,
) -> Vec<u8> {
    assert_eq!(weights.len(), rows * cols, "weights of a {rows} × {cols} tensor");
    let total = chain.bits() - chain.root.bits() + extra;
    let (row_bytes, plane_bytes) = (link_row_bytes(extra, cols), cols.div_ceil(8));
    let parts = 1u32 << extra;
    let mut out = vec![0u8; rows * row_bytes];
    let mut scratch = RowScratch::default();
    for r in 0..rows {
        let (codes, grids) = row_codes(chain, r, cols, &mut scratch);
        let link = &mut out[r * row_bytes..(r + 1) * row_bytes];
        for (c, &parent) in codes.iter().enumerate() {
            let (s, o) = grids[c / BLOCK];
            let (step, offset) = grid(s, o, total);
            let (step, offset) = (step.to_f32(), offset.to_f32());
            let low = parent as u32 * parts;
            let w = weights[r * cols + c];
            let j = if step > 0.0 {
                let nearest = ((w - offset) / step).round();
                nearest.clamp(low as f32, (low + parts - 1) as f32) as u32
            } else {
                low
            };
            let p = j - low;
            for b in 0..extra as usize {
                let bit = (p >> (extra as usize - 1 - b)) & 1;
                link[b * plane_bytes + c / 8] |= (bit as u8) << (c % 8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::SuperBlock;
    use crate::grouped::unpack_block;

    /// A root of `int{bits}k` for `rows × cols` weights: every sub-block's
    /// codes and grid chosen by hand (scale 6-bit codes of 1..=63, mins
    /// 0..=63, super-scales 0.01 and 0.02).
    fn root(bits: u8, rows: usize, cols: usize) -> (CompactLayout, Vec<u8>) {
        let layout = CompactLayout::new(bits).unwrap();
        let mut bytes = vec![0u8; rows * layout.row_bytes(cols)];
        let row_bytes = layout.row_bytes(cols);
        for r in 0..rows {
            let mut at = r * row_bytes;
            for start in (0..cols).step_by(crate::compact::SUPER) {
                let subs = (cols - start).div_ceil(BLOCK).min(crate::compact::SUBS);
                let max_scale = layout.max_scale() as usize;
                let block = SuperBlock {
                    d: f16::from_f32(0.01),
                    dmin: f16::from_f32(0.02),
                    scales: std::array::from_fn(|s| (1 + (r * 7 + s * 3) % max_scale) as u8),
                    mins: std::array::from_fn(|s| ((r * 5 + s) % (max_scale + 1)) as u8),
                    codes: (0..subs * BLOCK)
                        .map(|i| {
                            ((r * 31 + start + i * 13) % (layout.max_code() as usize + 1)) as u8
                        })
                        .collect(),
                };
                let len = layout.super_block_bytes(subs);
                block.pack(layout, &mut bytes[at..at + len]);
                at += len;
            }
        }
        (layout, bytes)
    }

    fn weights(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols).map(|i| ((i * 7919 % 1013) as f32 / 400.0 - 1.2).sin() * 0.6).collect()
    }

    /// Values of the rebuilt variant, row-major.
    fn values(rebuilt: &Rebuilt, rows: usize, cols: usize) -> Vec<f32> {
        let layout = rebuilt.layout;
        let (row_bytes, groups) = (layout.row_code_bytes(cols), layout.groups_per_row(cols));
        let mut out = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                let g = c / BLOCK;
                let at = r * row_bytes + g * layout.block_bytes();
                let q = unpack_block(layout.bits(), &rebuilt.codes[at..])[c % BLOCK];
                let (s, o) = (rebuilt.scales[r * groups + g], rebuilt.offsets[r * groups + g]);
                out.push(s.to_f32() * q as f32 + o.to_f32());
            }
        }
        out
    }

    #[test]
    fn a_chain_without_links_is_the_root_on_a_grid_of_bin_centres() {
        let (rows, cols) = (3, 300);
        let (layout, codes) = root(4, rows, cols);
        let chain = Chain { root: layout, root_codes: &codes, links: &[] };
        let rebuilt = rebuild(&chain, rows, cols);
        let mut expected = vec![0.0f32; rows * cols];
        let row_bytes = layout.row_bytes(cols);
        for r in 0..rows {
            for_each_code(
                layout,
                &codes[r * row_bytes..(r + 1) * row_bytes],
                cols,
                |c, s, o, q| {
                    expected[r * cols + c] = layout.value(s, o, q);
                },
            );
        }
        for (got, want) in values(&rebuilt, rows, cols).iter().zip(&expected) {
            assert!((got - want).abs() <= 2e-3 * want.abs().max(0.1), "{got} vs {want}");
        }
    }

    #[test]
    fn each_link_refines_its_parent_inside_the_parents_bin() {
        let (rows, cols) = (4, 270);
        let w = weights(rows, cols);
        for root_bits in [2u8, 3] {
            let (layout, codes) = root(root_bits, rows, cols);
            let mut links: Vec<(u8, Vec<u8>)> = Vec::new();
            let mut previous_error = f64::INFINITY;
            let mut previous_codes: Option<Vec<u8>> = None;
            for &target in WIDTHS.iter().filter(|&&k| k > root_bits) {
                let extra = target - links.iter().map(|(e, _)| e).sum::<u8>() - root_bits;
                let borrowed: Vec<(u8, &[u8])> =
                    links.iter().map(|(e, p)| (*e, p.as_slice())).collect();
                let chain = Chain { root: layout, root_codes: &codes, links: &borrowed };
                let planes = encode_link(&chain, extra, &w, rows, cols);
                assert_eq!(planes.len(), rows * link_row_bytes(extra, cols));
                links.push((extra, planes));
                let borrowed: Vec<(u8, &[u8])> =
                    links.iter().map(|(e, p)| (*e, p.as_slice())).collect();
                let chain = Chain { root: layout, root_codes: &codes, links: &borrowed };
                assert_eq!(chain.bits(), target);
                // The codes extend the parent's: their top bits are its codes.
                let now: Vec<u8> =
                    (0..rows).flat_map(|r| row_codes_owned(&chain, r, cols).0).collect();
                if let Some(before) = &previous_codes {
                    for (a, b) in now.iter().zip(before) {
                        assert_eq!(a >> extra, *b, "int{root_bits}k → {target} bits");
                    }
                }
                previous_codes = Some(now);
                // Every refinement is no worse, and a width of 8 is close.
                let v = values(&rebuild(&chain, rows, cols), rows, cols);
                let error: f64 =
                    v.iter().zip(&w).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
                assert!(
                    error <= previous_error * 1.0001,
                    "{target} bits: {error} > {previous_error}"
                );
                previous_error = error;
            }
        }
    }

    #[test]
    fn planes_are_laid_out_as_documented() {
        // One row of 10 columns, int2k root, one link of 2 planes.
        let (layout, codes) = root(2, 1, 10);
        let chain = Chain { root: layout, root_codes: &codes, links: &[] };
        let w = weights(1, 10);
        let planes = encode_link(&chain, 2, &w, 1, 10);
        assert_eq!(planes.len(), 2 * 2);
        let link = [(2u8, planes.as_slice())];
        let chain = Chain { root: layout, root_codes: &codes, links: &link };
        let (nested, _) = row_codes_owned(&chain, 0, 10);
        let (roots, _) = row_codes_owned(&Chain { links: &[], ..chain }, 0, 10);
        for c in 0..10 {
            let high = (planes[c / 8] >> (c % 8)) & 1;
            let low = (planes[2 + c / 8] >> (c % 8)) & 1;
            assert_eq!(nested[c], roots[c] << 2 | high << 1 | low, "column {c}");
        }
        // Bits past the last column are zero.
        assert_eq!(planes[1] >> 2, 0);
        assert_eq!(planes[3] >> 2, 0);
    }

    #[test]
    fn roots_and_widths() {
        let [i2, i3, i4, i5, nl4] = CompactLayout::all();
        assert!(is_root(i2) && is_root(i3) && is_root(i4));
        assert!(!is_root(i5) && !is_root(nl4));
        assert_eq!(rebuilt_layout(4).map(|l| (l.bits(), l.group())), Some((4, 32)));
        assert!(rebuilt_layout(5).is_none() && rebuilt_layout(2).is_none());
    }
}
