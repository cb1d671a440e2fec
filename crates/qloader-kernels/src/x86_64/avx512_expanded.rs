//! AVX-512 parts of the expanded GEMM ([`crate::expanded_gemm`]): a
//! 12 × 32 register tile (24 accumulators, two weight vectors and one
//! broadcast activation), and the expansion of 32-row weight panels to
//! `f32` column vectors from tiles (two tile panels side by side), `f16`
//! panels (likewise) and int8 rows (gathered across the 32 rows, four
//! columns a load).

use std::arch::x86_64::*;
use std::ops::Range;

use qloader_format::grouped::BLOCK;

use super::avx512_tiles::{group_grid, level_table, look_up, unpack};
use crate::expanded_gemm::{ExpandedGemm, PanelWeights, TileOut};
use crate::quantize::{HalfMatrix, Int8Matrix, HALF_PANEL_ROWS};
use crate::tiles::kernel_support::with_tile_layout;
use crate::tiles::layout::{block_bytes, panel_bytes, PANEL_ROWS};
use crate::tiles::TiledMatrix;

/// Weight rows per panel: two 16-lane vectors.
const NR: usize = 32;

/// Activation rows per full register tile.
const MR: usize = 12;

/// The AVX-512 tier's expanded GEMM.
pub(crate) static AVX512_EXPANDED: ExpandedGemm =
    ExpandedGemm { nr: NR, mr: MR, handles, expand, micro };

/// Every weight but int8 rows of more than `i32::MAX` values (the int8
/// expansion gathers by a 32-bit element offset).
fn handles(w: PanelWeights<'_>) -> bool {
    match w {
        PanelWeights::Int8(_) => w.rows().saturating_mul(w.cols()) <= i32::MAX as usize,
        PanelWeights::Tiles(_) | PanelWeights::Half(_) => true,
    }
}

// SAFETY (both wrappers): they are only reachable through the AVX-512 VNNI
// kernel table, which `Kernels::for_isa` hands out only after
// `Isa::is_available` confirmed AVX-512 F, BW, VL, AVX2, FMA and F16C.

fn expand(w: PanelWeights<'_>, first: usize, cols: Range<usize>, buf: &mut [f32]) {
    assert!(first.is_multiple_of(NR) && first < w.rows(), "panel start {first} of {}", w.rows());
    assert!(cols.start <= cols.end && cols.end <= w.cols(), "columns {cols:?} of {}", w.cols());
    assert!(cols.start.is_multiple_of(BLOCK), "chunks start on a block");
    assert!(buf.len() >= cols.len().next_multiple_of(BLOCK) * NR, "buffer too short");
    assert_eq!(buf.as_ptr() as usize % 64, 0, "buffer 64-byte aligned");
    assert!(handles(w), "int8 weights beyond 32-bit offsets");
    // SAFETY: see above; shapes checked here and in each expansion.
    unsafe {
        match w {
            PanelWeights::Tiles(t) => with_tile_layout!(t.layout(), |BITS, PER_GROUP| {
                expand_tiles::<BITS, PER_GROUP>(t, first, cols, buf)
            }),
            PanelWeights::Half(h) => expand_half(h, first, cols, buf),
            PanelWeights::Int8(q) => expand_int8(q, first, cols, buf),
        }
    }
}

/// # Safety
/// As [`crate::expanded_gemm::MicroKernel`]; lengths of the slices are checked here.
unsafe fn micro(xp: &[f32], h: usize, w: &[f32], kc: usize, out: TileOut) {
    assert!(xp.len() >= kc * h && w.len() >= kc * NR && out.rows <= h && out.lanes <= NR);
    assert_eq!(w.as_ptr() as usize % 64, 0, "weights 64-byte aligned");
    let (xp, w) = (xp.as_ptr(), w.as_ptr());
    // SAFETY: see above; lengths checked, `out` by the caller.
    unsafe {
        match h {
            4 => micro_tile::<4>(xp, w, kc, out),
            8 => micro_tile::<8>(xp, w, kc, out),
            12 => micro_tile::<12>(xp, w, kc, out),
            _ => panic!("tile height {h} is not 4, 8 or 12"),
        }
    }
}

/// `Σ_c xp[c·H + r] · w[c·32 + l]` into `out`.
///
/// # Safety
/// AVX-512 F; `xp` holds `kc·H` values, `w` (64-byte aligned) `kc·32`;
/// `out` as [`crate::expanded_gemm::MicroKernel`] requires.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn micro_tile<const H: usize>(xp: *const f32, w: *const f32, kc: usize, out: TileOut) {
    let mut lo = [_mm512_setzero_ps(); H];
    let mut hi = [_mm512_setzero_ps(); H];
    if out.accumulate {
        // The outputs are read only after the loop: ask for their lines
        // now, so that the reads do not wait on memory then.
        for r in 0..H.min(out.rows) {
            let row = out.y.wrapping_add(r * out.ldy) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(row);
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(64));
        }
    }
    // SAFETY: every access is inside the lengths the caller guarantees.
    unsafe {
        for c in 0..kc {
            let w0 = _mm512_load_ps(w.add(c * NR));
            let w1 = _mm512_load_ps(w.add(c * NR + 16));
            let x = xp.add(c * H);
            for r in 0..H {
                let xv = _mm512_set1_ps(*x.add(r));
                lo[r] = _mm512_fmadd_ps(w0, xv, lo[r]);
                hi[r] = _mm512_fmadd_ps(w1, xv, hi[r]);
            }
        }
        let mask_lo = ((1u32 << out.lanes.min(16)) - 1) as __mmask16;
        let mask_hi = ((1u32 << out.lanes.saturating_sub(16)) - 1) as __mmask16;
        for r in 0..H.min(out.rows) {
            let row = out.y.add(r * out.ldy);
            let (mut a, mut b) = (lo[r], hi[r]);
            if out.accumulate {
                a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(mask_lo, row));
                b = _mm512_add_ps(b, _mm512_maskz_loadu_ps(mask_hi, row.wrapping_add(16)));
            }
            _mm512_mask_storeu_ps(row, mask_lo, a);
            _mm512_mask_storeu_ps(row.wrapping_add(16), mask_hi, b);
        }
    }
}

/// Tile panels `first / 16` and the next, columns `cols` (whole blocks:
/// columns past `cols.end` up to the block's end are written too, inside
/// the buffer the caller checked), as `q · scale + offset`.
///
/// # Safety
/// AVX-512 F and BW, F16C; checks as in `expand`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn expand_tiles<const BITS: u8, const PER_GROUP: usize>(
    w: &TiledMatrix,
    first: usize,
    cols: Range<usize>,
    buf: &mut [f32],
) {
    let blocks = w.layout().blocks_per_row(w.cols());
    let groups = w.layout().groups_per_row(w.cols());
    let header = w.header();
    let byte = _mm512_set1_epi32(0xff);
    let lut = level_table(w);
    let (b0, b1) = (cols.start / BLOCK, cols.end.div_ceil(BLOCK).min(blocks));
    for half in 0..2 {
        let p = first / PANEL_ROWS + half;
        let lanes = buf[16 * half..].as_mut_ptr();
        if p >= w.panels() {
            for c in 0..cols.len() {
                // SAFETY: column c < cols.len() of the checked buffer.
                unsafe { _mm512_storeu_ps(lanes.add(c * NR), _mm512_setzero_ps()) };
            }
            continue;
        }
        let data = w.panel(p);
        assert_eq!(data.len(), panel_bytes(w.layout(), w.header(), w.cols()));
        for b in b0..b1 {
            // SAFETY: group b / PER_GROUP and its block b % PER_GROUP lie in
            // the panel (the tile layout: whole groups, then the last one's
            // blocks); the output block lies in the buffer (checked).
            unsafe {
                let (ws, wo, first, _) =
                    group_grid::<BITS, PER_GROUP>(data.as_ptr(), header, (groups, b / PER_GROUP));
                let codes = first.add((b % PER_GROUP) * block_bytes(BITS));
                let mut v = unpack::<BITS>(codes);
                look_up(&mut v, lut);
                let out = lanes.add((b * BLOCK - cols.start) * NR);
                for (t, &v) in v.iter().enumerate() {
                    let q = [
                        _mm512_and_si512(v, byte),
                        _mm512_and_si512(_mm512_srli_epi32::<8>(v), byte),
                        _mm512_and_si512(_mm512_srli_epi32::<16>(v), byte),
                        _mm512_srli_epi32::<24>(v),
                    ];
                    for (i, &q) in q.iter().enumerate() {
                        let value = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), ws, wo);
                        _mm512_storeu_ps(out.add((4 * t + i) * NR), value);
                    }
                }
            }
        }
    }
}

/// Element offsets of rows `r0..r0 + 16` (those before `n`) in a row-major
/// `n × k` matrix, and the mask of those rows.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn row_offsets(r0: usize, n: usize, k: usize) -> (__m512i, __mmask16) {
    let valid = n.saturating_sub(r0).min(16);
    let offsets: [i32; 16] =
        std::array::from_fn(|l| if l < valid { ((r0 + l) * k) as i32 } else { 0 });
    // SAFETY: 16 values.
    let v = unsafe { _mm512_loadu_si512(offsets.as_ptr() as *const __m512i) };
    (v, ((1u32 << valid) - 1) as __mmask16)
}

/// `f16` rows `first..first + 32`, columns `cols`, from the matrix's
/// panels (two side by side).
///
/// # Safety
/// AVX-512 F, F16C; checks as in `expand`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn expand_half(w: &HalfMatrix, first: usize, cols: Range<usize>, buf: &mut [f32]) {
    let (n, k) = (w.rows(), w.cols());
    let panels = w.panels();
    for half in 0..2 {
        let p = first / HALF_PANEL_ROWS + half;
        let lanes = buf[16 * half..].as_mut_ptr();
        if p * HALF_PANEL_ROWS >= n {
            for c in 0..cols.len() {
                // SAFETY: column c < cols.len() of the checked buffer.
                unsafe { _mm512_storeu_ps(lanes.add(c * NR), _mm512_setzero_ps()) };
            }
            continue;
        }
        let panel = &panels[p * k * HALF_PANEL_ROWS..(p + 1) * k * HALF_PANEL_ROWS];
        for c in cols.clone() {
            // SAFETY: column c < k of the panel is 16 values; the output
            // column lies in the checked buffer.
            unsafe {
                let v =
                    _mm256_loadu_si256(panel.as_ptr().add(c * HALF_PANEL_ROWS) as *const __m256i);
                _mm512_storeu_ps(lanes.add((c - cols.start) * NR), _mm512_cvtph_ps(v));
            }
        }
    }
}

/// Int8 rows `first..first + 32` times their scales, columns `cols`.
///
/// # Safety
/// AVX-512 F; checks as in `expand`, and `n·k` fits in `i32`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn expand_int8(w: &Int8Matrix, first: usize, cols: Range<usize>, buf: &mut [f32]) {
    let (n, k) = (w.rows(), w.cols());
    let base = w.codes().as_ptr() as *const u8;
    for half in 0..2 {
        let r0 = first + 16 * half;
        let (offsets, mask) = row_offsets(r0, n, k);
        let scales: [f32; 16] =
            std::array::from_fn(|l| if r0 + l < n { w.scale(r0 + l) } else { 0.0 });
        // SAFETY: 16 values.
        let s = unsafe { _mm512_loadu_ps(scales.as_ptr()) };
        let lanes = buf[16 * half..].as_mut_ptr();
        let mut c = cols.start;
        while c + 4 <= cols.end {
            // SAFETY: each unmasked lane reads columns c..c + 4 of a row
            // before n (c + 3 < k); the output columns lie in the buffer.
            unsafe {
                let at = _mm512_add_epi32(offsets, _mm512_set1_epi32(c as i32));
                let v = _mm512_mask_i32gather_epi32::<1>(
                    _mm512_setzero_si512(),
                    mask,
                    at,
                    base as *const i32,
                );
                let q = [
                    _mm512_srai_epi32::<24>(_mm512_slli_epi32::<24>(v)),
                    _mm512_srai_epi32::<24>(_mm512_slli_epi32::<16>(v)),
                    _mm512_srai_epi32::<24>(_mm512_slli_epi32::<8>(v)),
                    _mm512_srai_epi32::<24>(v),
                ];
                for (i, &q) in q.iter().enumerate() {
                    let value = _mm512_mul_ps(_mm512_cvtepi32_ps(q), s);
                    _mm512_storeu_ps(lanes.add((c + i - cols.start) * NR), value);
                }
            }
            c += 4;
        }
        for c in c..cols.end {
            for l in 0..16 {
                let r = r0 + l;
                let v = if r < n { w.row_codes(r)[c] as f32 * w.scale(r) } else { 0.0 };
                buf[(c - cols.start) * NR + 16 * half + l] = v;
            }
        }
    }
}
