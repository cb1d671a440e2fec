//! Grouped integer formats (int8/int4/int3/int2 in groups of 32, 64 or 128
//! along the input dimension), asymmetric: `w ≈ scale · q + offset`, `q ∈
//! 0..=2^bits − 1`, `scale` and `offset` stored as `f16`. Each group's grid is
//! searched to minimise squared error (optionally weighted per input column);
//! codes are always computed against the *rounded* `f16` values, so the grid
//! that is stored is the grid that was scored. Bit layout:
//! [`qloader_format::grouped`].

use half::f16;
use qloader_format::grouped::{pack_block, unpack_block, GroupedLayout, BLOCK};

use rayon::prelude::*;

use super::grid_search::{self, search, Scalar, Tier, MAX_GROUP};
#[cfg(target_arch = "x86_64")]
use super::grid_search_x86;
use super::DenseMatrix;
use crate::storage::Storage;
use crate::tiles::TiledMatrix;
use std::sync::OnceLock;

/// A `rows × cols` matrix in a grouped format.
#[derive(Debug, Clone)]
pub struct GroupedMatrix {
    rows: usize,
    cols: usize,
    layout: GroupedLayout,
    codes: Storage<u8>,
    scales: Storage<f16>,
    offsets: Storage<f16>,
    /// The same values in tiles, made at the first product that uses them.
    tiles: OnceLock<TiledMatrix>,
}

impl PartialEq for GroupedMatrix {
    /// Equal shape, layout, codes, scales and offsets (the tiles are a
    /// derived copy).
    fn eq(&self, other: &Self) -> bool {
        (self.rows, self.cols, self.layout) == (other.rows, other.cols, other.layout)
            && self.codes == other.codes
            && self.scales == other.scales
            && self.offsets == other.offsets
    }
}

/// One row of a [`GroupedMatrix`], as the row kernels see it.
#[derive(Debug, Clone, Copy)]
pub struct GroupedRow<'a> {
    /// Bit width and group size.
    pub layout: GroupedLayout,
    /// Packed codes, `layout.row_code_bytes(cols)` bytes.
    pub codes: &'a [u8],
    /// One scale per group.
    pub scales: &'a [f16],
    /// One offset per group.
    pub offsets: &'a [f16],
}

impl GroupedMatrix {
    /// Quantizes `w` group by group, each group's grid chosen to minimise its
    /// squared error.
    pub fn quantize(w: &DenseMatrix, layout: GroupedLayout) -> Self {
        Self::quantize_weighted(w, layout, None)
    }

    /// Like [`GroupedMatrix::quantize`], but the squared error of column `c`
    /// is weighted by `importance[c]` (e.g. the mean square of input feature
    /// `c`), so the grid favours the inputs that move the output most.
    ///
    /// # Panics
    /// If `importance` is given and its length is not `w.cols()`.
    pub fn quantize_weighted(
        w: &DenseMatrix,
        layout: GroupedLayout,
        importance: Option<&[f32]>,
    ) -> Self {
        let (rows, cols) = (w.rows(), w.cols());
        if let Some(imp) = importance {
            assert_eq!(imp.len(), cols, "one importance per input column");
        }
        let groups = layout.groups_per_row(cols);
        let bytes = layout.row_code_bytes(cols);
        let mut codes = vec![0u8; rows * bytes];
        let mut scales = vec![f16::ZERO; rows * groups];
        let mut offsets = vec![f16::ZERO; rows * groups];
        // Rows are independent: quantize them in parallel, each straight
        // into its place.
        let (quantize_row, _) = tier(crate::Kernels::detect().isa);
        if rows > 0 && cols > 0 {
            codes
                .par_chunks_mut(bytes)
                .zip(scales.par_chunks_mut(groups))
                .zip(offsets.par_chunks_mut(groups))
                .enumerate()
                .for_each(|(r, ((c, s), o))| quantize_row(w.row(r), importance, layout, c, s, o));
        }
        Self {
            rows,
            cols,
            layout,
            codes: codes.into(),
            scales: scales.into(),
            offsets: offsets.into(),
            tiles: OnceLock::new(),
        }
    }

    /// Builds a matrix from raw parts; `None` if any length disagrees with
    /// the shape and layout.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        layout: GroupedLayout,
        codes: impl Into<Storage<u8>>,
        scales: impl Into<Storage<f16>>,
        offsets: impl Into<Storage<f16>>,
    ) -> Option<Self> {
        let (codes, scales, offsets) = (codes.into(), scales.into(), offsets.into());
        let groups = rows.checked_mul(layout.groups_per_row(cols))?;
        let ok = rows.checked_mul(layout.row_code_bytes(cols)) == Some(codes.len())
            && scales.len() == groups
            && offsets.len() == groups;
        ok.then_some(Self { rows, cols, layout, codes, scales, offsets, tiles: OnceLock::new() })
    }

    /// Builds a matrix from unpacked codes (`rows × cols`, row-major, each at
    /// most `layout.max_code()`) and one scale and offset per group, row by
    /// row: how a quantizer that picks codes itself (e.g. GPTQ) stores its
    /// result. `None` if a length disagrees with the shape and layout or a
    /// code is out of range.
    pub fn from_codes(
        rows: usize,
        cols: usize,
        layout: GroupedLayout,
        codes: &[u8],
        scales: Vec<f16>,
        offsets: Vec<f16>,
    ) -> Option<Self> {
        if rows.checked_mul(cols) != Some(codes.len())
            || codes.iter().any(|&q| q > layout.max_code())
        {
            return None;
        }
        let bytes = layout.row_code_bytes(cols);
        let mut packed = vec![0u8; rows * bytes];
        let mut block = [0u8; BLOCK];
        for (row, out) in codes.chunks(cols.max(1)).zip(packed.chunks_exact_mut(bytes.max(1))) {
            for (chunk, out) in row.chunks(BLOCK).zip(out.chunks_exact_mut(layout.block_bytes())) {
                block.fill(0);
                block[..chunk.len()].copy_from_slice(chunk);
                pack_block(layout.bits(), &block, out);
            }
        }
        Self::from_parts(rows, cols, layout, packed, scales, offsets)
    }

    /// The matrix in tiles, for the batched and integer products: made on
    /// the first call (a pass over the codes), kept for the matrix's life.
    pub fn tiles(&self) -> &TiledMatrix {
        self.tiles.get_or_init(|| TiledMatrix::from_grouped(self))
    }

    /// Whether the arrays are views of shared bytes (a memory-mapped model)
    /// rather than owned copies.
    pub fn is_mapped(&self) -> bool {
        self.codes.is_shared()
    }

    /// Number of rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bit width and group size.
    pub fn layout(&self) -> GroupedLayout {
        self.layout
    }

    /// The packed code blocks of every row, row after row.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// Every group's scale, row-major.
    pub fn scales(&self) -> &[f16] {
        &self.scales
    }

    /// Every group's offset, row-major.
    pub fn offsets(&self) -> &[f16] {
        &self.offsets
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> GroupedRow<'_> {
        let bytes = self.layout.row_code_bytes(self.cols);
        let groups = self.layout.groups_per_row(self.cols);
        GroupedRow {
            layout: self.layout,
            codes: &self.codes[r * bytes..(r + 1) * bytes],
            scales: &self.scales[r * groups..(r + 1) * groups],
            offsets: &self.offsets[r * groups..(r + 1) * groups],
        }
    }

    /// The codes of row `r`, unpacked (`cols` values).
    pub fn row_codes(&self, r: usize) -> Vec<u8> {
        let row = self.row(r);
        let mut out: Vec<u8> = row
            .codes
            .chunks_exact(self.layout.block_bytes())
            .flat_map(|b| unpack_block(self.layout.bits(), b))
            .collect();
        out.truncate(self.cols);
        out
    }

    /// Back to `f32`: `scale · code + offset`, each product rounded before
    /// the sum.
    pub fn dequantize(&self) -> DenseMatrix {
        let mut data = vec![0.0f32; self.rows * self.cols];
        self.dequantize_into(&mut data);
        DenseMatrix::new(self.rows, self.cols, data).expect("shape is preserved")
    }

    /// [`GroupedMatrix::dequantize`] into `out` (`rows × cols`, row-major):
    /// the generic row kernel, block by block (scale and offset converted
    /// once per block), rows in parallel.
    ///
    /// # Panics
    /// If `out` does not hold `rows × cols` values.
    pub fn dequantize_into(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.rows * self.cols, "one value per weight");
        if self.cols > 0 {
            out.par_chunks_mut(self.cols)
                .enumerate()
                .with_min_len(16)
                .for_each(|(r, out)| crate::generic::unpack_grouped(self.row(r), out));
        }
    }

    /// Bytes of storage: codes, scales and offsets.
    pub fn storage_bytes(&self) -> usize {
        self.codes.len() + (self.scales.len() + self.offsets.len()) * 2
    }
}

/// Quantizes one row into its packed codes, scales and offsets, with the
/// grid search of one tier; `importance` weights the squared errors.
type RowQuantizer = fn(&[f32], Option<&[f32]>, GroupedLayout, &mut [u8], &mut [f16], &mut [f16]);

/// Fits one group: `(x, importance, max_code, codes) → (scale, offset)`.
type GroupFitter = fn(&[f32], &[f32], u8, &mut [u8]) -> (f16, f16);

/// The row quantizer and group fitter of tier `isa` (the generic code where
/// the CPU lacks it). Results are identical across tiers (see
/// `grid_search`).
fn tier(isa: crate::Isa) -> (RowQuantizer, GroupFitter) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx512Vnni if isa.is_available() => (
            |row, importance, layout, codes, scales, offsets| {
                // SAFETY: the tier is available on this CPU (checked above).
                unsafe { quantize_row_avx512(row, importance, layout, codes, scales, offsets) }
            },
            // SAFETY: as above.
            |x, importance, max_code, codes| unsafe {
                fit_group_avx512(x, importance, max_code, codes)
            },
        ),
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx2 if isa.is_available() => (
            |row, importance, layout, codes, scales, offsets| {
                // SAFETY: the tier is available on this CPU (checked above).
                unsafe { quantize_row_avx2(row, importance, layout, codes, scales, offsets) }
            },
            // SAFETY: as above.
            |x, importance, max_code, codes| unsafe {
                fit_group_avx2(x, importance, max_code, codes)
            },
        ),
        _ => (quantize_row::<Scalar>, search::<Scalar, true>),
    }
}

/// [`quantize_row`] with the AVX2 tier.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_row_avx2(
    row: &[f32],
    importance: Option<&[f32]>,
    layout: GroupedLayout,
    codes: &mut [u8],
    scales: &mut [f16],
    offsets: &mut [f16],
) {
    quantize_row::<grid_search_x86::Avx2>(row, importance, layout, codes, scales, offsets)
}

/// [`quantize_row`] with the AVX-512 tier.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn quantize_row_avx512(
    row: &[f32],
    importance: Option<&[f32]>,
    layout: GroupedLayout,
    codes: &mut [u8],
    scales: &mut [f16],
    offsets: &mut [f16],
) {
    quantize_row::<grid_search_x86::Avx512>(row, importance, layout, codes, scales, offsets)
}

/// The weighted group search with the AVX2 tier.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fit_group_avx2(
    x: &[f32],
    importance: &[f32],
    max_code: u8,
    codes: &mut [u8],
) -> (f16, f16) {
    search::<grid_search_x86::Avx2, true>(x, importance, max_code, codes)
}

/// The weighted group search with the AVX-512 tier.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn fit_group_avx512(
    x: &[f32],
    importance: &[f32],
    max_code: u8,
    codes: &mut [u8],
) -> (f16, f16) {
    search::<grid_search_x86::Avx512, true>(x, importance, max_code, codes)
}

/// Quantizes one row into `packed` (its code blocks), `scales` and
/// `offsets` (one per group) with the search of tier `T`.
#[inline(always)]
fn quantize_row<T: Tier>(
    row: &[f32],
    importance: Option<&[f32]>,
    layout: GroupedLayout,
    packed: &mut [u8],
    scales: &mut [f16],
    offsets: &mut [f16],
) {
    let (size, bits) = (layout.group(), layout.bits());
    // A group is whole blocks (32, 64 or 128 codes); a short last group's
    // last block is padded with code 0.
    let group_bytes = size / BLOCK * layout.block_bytes();
    let mut codes = [0u8; MAX_GROUP];
    for (g, group) in row.chunks(size).enumerate() {
        let codes = &mut codes[..group.len().div_ceil(BLOCK) * BLOCK];
        codes.fill(0);
        let out = &mut codes[..group.len()];
        let (scale, offset) = match importance {
            Some(imp) => search::<T, true>(
                group,
                &imp[g * size..g * size + group.len()],
                layout.max_code(),
                out,
            ),
            None => search::<T, false>(group, &[], layout.max_code(), out),
        };
        scales[g] = scale;
        offsets[g] = offset;
        let dst = &mut packed[g * group_bytes..];
        for (block, out) in
            codes.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(layout.block_bytes()))
        {
            pack_block(bits, block.try_into().expect("32 codes"), out);
        }
    }
}

/// The `(scale, offset)` [`GroupedMatrix::quantize_weighted`] stores for one
/// group of `x` (at most 128 values) with squared errors weighted by
/// `importance`: the clipping-range search with least-squares refits.
/// Quantize each value against it with [`group_code`].
///
/// # Panics
/// If `x` and `importance` differ in length or hold more than 128 values.
pub fn fit_group(x: &[f32], importance: &[f32], max_code: u8) -> (f16, f16) {
    assert_eq!(x.len(), importance.len(), "one importance per value");
    assert!(x.len() <= MAX_GROUP, "a group holds at most {MAX_GROUP} values");
    let mut codes = [0u8; MAX_GROUP];
    let (_, fit) = tier(crate::Kernels::detect().isa);
    fit(x, importance, max_code, &mut codes[..x.len()])
}

/// The code of `v` on the stored grid `scale · q + offset`, `q ∈
/// 0..=max_code`: the nearest grid point (halves away from zero), clamped
/// to the range; the same rounding [`GroupedMatrix::quantize`] applies. A
/// zero scale (a constant group) gives code 0.
#[inline]
pub fn group_code(v: f32, scale: f16, offset: f16, max_code: u8) -> u8 {
    let (scale, offset) = (scale.to_f32(), offset.to_f32());
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    // NaN (a non-finite value) maps to code 0, like the grid search's.
    grid_search::code(v, offset, inv, max_code as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_layouts() -> Vec<GroupedLayout> {
        let mut v = Vec::new();
        for bits in qloader_format::grouped::BITS {
            for group in qloader_format::grouped::GROUPS {
                v.push(GroupedLayout::new(bits, group).unwrap());
            }
        }
        v
    }

    proptest! {
        /// For every layout: sizes follow the layout formula, and the searched
        /// grid is never worse than plain min/max rounding (the search starts
        /// from it), in plain or weighted squared error.
        #[test]
        fn search_never_worse_than_min_max(
            rows in 1usize..4, cols in 1usize..300,
            seed in proptest::collection::vec(-4.0f32..4.0, 500),
            weights in proptest::collection::vec(0.01f32..10.0, 300),
        ) {
            let data: Vec<f32> = (0..rows * cols).map(|i| seed[(i * 7) % seed.len()]).collect();
            let w = DenseMatrix::new(rows, cols, data).unwrap();
            let imp = &weights[..cols];
            for layout in all_layouts() {
                for (q, imp) in [(GroupedMatrix::quantize(&w, layout), vec![1.0; cols]),
                                 (GroupedMatrix::quantize_weighted(&w, layout, Some(imp)), imp.to_vec())] {
                    prop_assert_eq!(q.storage_bytes(), layout.storage_bytes(rows, cols));
                    let back = q.dequantize();
                    let gs = layout.group();
                    for r in 0..rows {
                        prop_assert!(q.row_codes(r).iter().all(|&c| c <= layout.max_code()));
                        for (g, group) in w.row(r).chunks(gs).enumerate() {
                            let gi = &imp[g * gs..g * gs + group.len()];
                            let got = &back.row(r)[g * gs..g * gs + group.len()];
                            let err: f32 = group.iter().zip(got).zip(gi)
                                .map(|((a, b), w)| w * (a - b) * (a - b)).sum();
                            let minmax = min_max_error(group, gi, layout.max_code());
                            prop_assert!(err <= minmax * (1.0 + 1e-5) + 1e-9,
                                "{layout:?}: {err} > min/max {minmax}");
                        }
                    }
                }
            }
        }
    }

    /// Quantizes one row with `quantize` into fresh arrays.
    fn row_with(
        quantize: RowQuantizer,
        row: &[f32],
        imp: Option<&[f32]>,
        layout: GroupedLayout,
    ) -> (Vec<u8>, Vec<f16>, Vec<f16>) {
        let groups = layout.groups_per_row(row.len());
        let mut out = (
            vec![0u8; layout.row_code_bytes(row.len())],
            vec![f16::ZERO; groups],
            vec![f16::ZERO; groups],
        );
        quantize(row, imp, layout, &mut out.0, &mut out.1, &mut out.2);
        out
    }

    proptest! {
        /// Every tier this CPU has quantizes exactly as the portable code
        /// does, plain and weighted, at ragged widths (groups and tails
        /// not a multiple of 8 or 16) with outliers and constant stretches.
        #[test]
        fn every_tier_quantizes_identically(
            cols in 1usize..300,
            values in proptest::collection::vec(-3.0f32..3.0, 300),
            weights in proptest::collection::vec(0.01f32..10.0, 300),
            flat in 0usize..300,
        ) {
            let mut row = values[..cols].to_vec();
            row[flat % cols..(flat % cols + 9).min(cols)].fill(0.5);
            let imp = &weights[..cols];
            let reference = tier(crate::Isa::Generic).0;
            for isa in crate::Isa::ALL.into_iter().filter(|i| i.is_available()) {
                for layout in all_layouts() {
                    for imp in [None, Some(imp)] {
                        let want = row_with(reference, &row, imp, layout);
                        let got = row_with(tier(isa).0, &row, imp, layout);
                        prop_assert!(want == got, "{isa} differs from generic at {layout:?}");
                    }
                }
            }
        }
    }

    /// Every tier's group fit (the one GPTQ calls) is the generic one's.
    #[test]
    fn every_tier_fits_groups_identically() {
        let x: Vec<f32> = (0..128).map(|i| ((i * 7919 % 613) as f32 / 97.0).sin()).collect();
        let imp: Vec<f32> = (0..128).map(|i| 0.1 + (i % 13) as f32).collect();
        for isa in crate::Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for len in [1usize, 3, 8, 15, 16, 17, 31, 32, 33, 77, 128] {
                for max_code in [3u8, 7, 15, 255] {
                    let mut codes = [0u8; 128];
                    let want = tier(crate::Isa::Generic).1(
                        &x[..len],
                        &imp[..len],
                        max_code,
                        &mut codes[..len],
                    );
                    let got = tier(isa).1(&x[..len], &imp[..len], max_code, &mut codes[..len]);
                    assert_eq!(want, got, "{isa}, {len} values, max code {max_code}");
                }
            }
        }
    }

    /// Weighted squared error of plain round-to-nearest on the f16 min/max grid.
    fn min_max_error(x: &[f32], w: &[f32], max_code: u8) -> f32 {
        let top = max_code as f32;
        let lo = x.iter().cloned().fold(f32::INFINITY, f32::min);
        let hi = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let d = f16::from_f32((hi - lo) / top).to_f32();
        let m = f16::from_f32(lo).to_f32();
        x.iter()
            .zip(w)
            .map(|(&v, &w)| {
                let q = if d > 0.0 { ((v - m) / d).round().clamp(0.0, top) } else { 0.0 };
                let e = d * q + m - v;
                w * e * e
            })
            .sum()
    }

    #[test]
    fn search_reduces_error_on_gaussian_like_weights() {
        // Bell-shaped values (sum of uniforms): clipping the tails pays off.
        let mut state = 12345u32;
        let mut next = || {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (state >> 8) as f32 / (1u32 << 24) as f32
        };
        let data: Vec<f32> =
            (0..64 * 256).map(|_| (0..4).map(|_| next()).sum::<f32>() - 2.0).collect();
        let w = DenseMatrix::new(64, 256, data).unwrap();
        for bits in [2u8, 3, 4] {
            let layout = GroupedLayout::new(bits, 32).unwrap();
            let back = GroupedMatrix::quantize(&w, layout).dequantize();
            let searched: f32 =
                w.data().iter().zip(back.data()).map(|(a, b)| (a - b) * (a - b)).sum();
            let plain: f32 =
                w.data().chunks(32).map(|g| min_max_error(g, &[1.0; 32], layout.max_code())).sum();
            assert!(searched < 0.9 * plain, "int{bits}: searched {searched} vs min/max {plain}");
        }
    }

    /// `fit_group` and `group_code` reproduce `quantize`, and `from_codes`
    /// stores what `quantize` stores.
    #[test]
    fn exposed_group_fit_reproduces_quantize() {
        let (rows, cols) = (3, 200);
        let data: Vec<f32> =
            (0..rows * cols).map(|i| ((i * 7919 % 613) as f32 / 97.0).sin()).collect();
        let w = DenseMatrix::new(rows, cols, data).unwrap();
        for layout in all_layouts() {
            let want = GroupedMatrix::quantize(&w, layout);
            let (mut codes, mut scales, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
            for r in 0..rows {
                for group in w.row(r).chunks(layout.group()) {
                    let (s, o) = fit_group(group, &vec![1.0; group.len()], layout.max_code());
                    scales.push(s);
                    offsets.push(o);
                    codes.extend(group.iter().map(|&v| group_code(v, s, o, layout.max_code())));
                }
            }
            let got = GroupedMatrix::from_codes(rows, cols, layout, &codes, scales, offsets);
            assert!(got.as_ref() == Some(&want), "{layout:?}");
        }
        let layout = GroupedLayout::new(4, 32).unwrap();
        assert!(GroupedMatrix::from_codes(1, 2, layout, &[0, 16], vec![f16::ONE], vec![f16::ZERO])
            .is_none());
        assert!(GroupedMatrix::from_codes(1, 3, layout, &[0, 1], vec![f16::ONE], vec![f16::ZERO])
            .is_none());
    }

    #[test]
    fn constant_group_is_exact() {
        let w = DenseMatrix::new(1, 40, vec![0.25; 40]).unwrap();
        for layout in all_layouts() {
            let back = GroupedMatrix::quantize(&w, layout).dequantize();
            assert!(back.data().iter().all(|&v| v == 0.25), "{layout:?}");
        }
    }

    #[test]
    fn extremes_map_to_lowest_and_highest_code() {
        let mut row: Vec<f32> = (0..32).map(|i| i as f32 / 31.0).collect();
        row[3] = -1.0;
        row[7] = 2.0;
        let w = DenseMatrix::new(1, 32, row).unwrap();
        for bits in [3u8, 4, 8] {
            let q = GroupedMatrix::quantize(&w, GroupedLayout::new(bits, 32).unwrap());
            let codes = q.row_codes(0);
            assert_eq!(codes[3], 0, "int{bits}");
            assert_eq!(codes[7], q.layout().max_code(), "int{bits}");
        }
    }
}
