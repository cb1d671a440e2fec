//! AVX-512 panel kernels for tiled weights (layout:
//! [`crate::tiles::layout`]). A register tile is `R` activation rows (up to
//! eight) × the panel's 16 weight rows: each block's codes are unpacked
//! once into eight vectors (vector `t` = columns `4t..4t+4` of every row)
//! and multiplied into all `R` rows.
//!
//! * int8 activations: one `vpdpbusd` per vector and activation row, with
//!   the row's four activation bytes broadcast to every lane; a group's
//!   integer sums are exact, then scaled once (weight scale × activation
//!   scale) and the offsets' part (`offset · scale_x · Σ a`) added.
//! * `f32` activations: each code byte is converted to `f32` once and
//!   multiplied into every activation row with one FMA; per group
//!   `scale · Σ x·q + offset · Σ x`.
//!
//! Tiles with a table of levels have each 4-bit code replaced by its level
//! byte (`vpshufb`) right after unpacking.
//!
//! 5-bit tiles (`int5k`, `q5_0`) unpack as 4-bit ones, then each vector
//! takes its fifth bits from the block's plane (a shift, a mask and an or).

use std::arch::x86_64::*;
use std::ops::Range;

use qloader_format::grouped::BLOCK;

use crate::activations::QuantizedActivations;
use crate::tiles::kernel_support::{check_panel_a8, check_panel_f32, row_tiles, with_tile_layout};
use crate::tiles::layout::{block_bytes, group_at, GridAt, GroupAt, TileHeader, PANEL_ROWS};
use crate::tiles::{F32Rows, TiledMatrix};

/// Activation rows per register tile.
const TILE_ROWS: usize = 8;

/// Bytes `and` `mask`, after a right shift of each 16-bit lane by `SHIFT`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn masked<const SHIFT: u32>(v: __m512i, mask: __m512i) -> __m512i {
    _mm512_and_si512(_mm512_srli_epi16::<SHIFT>(v), mask)
}

/// The eight code vectors of one block at `p` ([`block_bytes`]`(BITS)`
/// bytes, 64-byte aligned).
///
/// # Safety
/// The CPU must support AVX-512 F and BW; the block must lie in readable,
/// 64-byte aligned memory.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn unpack<const BITS: u8>(p: *const u8) -> [__m512i; 8] {
    let v: [__m512i; 8] =
        // SAFETY: the caller guarantees the block's bytes (all loads).
        unsafe {
        match BITS {
            8 => [
                _mm512_load_si512(p as *const __m512i),
                _mm512_load_si512(p.add(64) as *const __m512i),
                _mm512_load_si512(p.add(128) as *const __m512i),
                _mm512_load_si512(p.add(192) as *const __m512i),
                _mm512_load_si512(p.add(256) as *const __m512i),
                _mm512_load_si512(p.add(320) as *const __m512i),
                _mm512_load_si512(p.add(384) as *const __m512i),
                _mm512_load_si512(p.add(448) as *const __m512i),
            ],
            4 | 5 => {
                let m = _mm512_set1_epi8(0x0f);
                let v0 = _mm512_load_si512(p as *const __m512i);
                let v1 = _mm512_load_si512(p.add(64) as *const __m512i);
                let v2 = _mm512_load_si512(p.add(128) as *const __m512i);
                let v3 = _mm512_load_si512(p.add(192) as *const __m512i);
                [
                    _mm512_and_si512(v0, m),
                    masked::<4>(v0, m),
                    _mm512_and_si512(v1, m),
                    masked::<4>(v1, m),
                    _mm512_and_si512(v2, m),
                    masked::<4>(v2, m),
                    _mm512_and_si512(v3, m),
                    masked::<4>(v3, m),
                ]
            }
            _ => {
                let m = _mm512_set1_epi8(3);
                let v0 = _mm512_load_si512(p as *const __m512i);
                let v1 = _mm512_load_si512(p.add(64) as *const __m512i);
                [
                    _mm512_and_si512(v0, m),
                    masked::<2>(v0, m),
                    masked::<4>(v0, m),
                    masked::<6>(v0, m),
                    _mm512_and_si512(v1, m),
                    masked::<2>(v1, m),
                    masked::<4>(v1, m),
                    masked::<6>(v1, m),
                ]
            }
        }
    };
    if BITS == 5 {
        // SAFETY: the plane's 64 bytes follow the block's nibbles.
        let plane = unsafe { _mm512_load_si512(p.add(256) as *const __m512i) };
        // Bit t of each plane byte moved to bit 4 (16-bit lane shifts: bit 4
        // of either byte comes from the same byte for shifts of at most 4).
        let at_bit4 = [
            _mm512_slli_epi16::<4>(plane),
            _mm512_slli_epi16::<3>(plane),
            _mm512_slli_epi16::<2>(plane),
            _mm512_slli_epi16::<1>(plane),
            plane,
            _mm512_srli_epi16::<1>(plane),
            _mm512_srli_epi16::<2>(plane),
            _mm512_srli_epi16::<3>(plane),
        ];
        let bit4 = _mm512_set1_epi8(0x10);
        return std::array::from_fn(|t| _mm512_ternarylogic_epi32::<0xF8>(v[t], at_bit4[t], bit4));
    }
    if BITS != 3 {
        return v;
    }
    // The third bit: a byte mask per vector, 4 added where set.
    let masks = p.wrapping_add(128) as *const u64;
    let four = _mm512_set1_epi8(4);
    // SAFETY: the block's eight masks follow its two 2-bit vectors.
    std::array::from_fn(|t| unsafe {
        _mm512_mask_add_epi8(v[t], masks.add(t).read_unaligned(), v[t], four)
    })
}

/// The tiles' table of levels in every 128-bit lane, if they have one.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn level_table(w: &TiledMatrix) -> Option<__m512i> {
    let levels = w.levels()?;
    // SAFETY: 16 readable bytes.
    let lane = unsafe { _mm_loadu_si128(levels.as_ptr() as *const __m128i) };
    Some(_mm512_broadcast_i32x4(lane))
}

/// Each code byte replaced by its level, if there is a table.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn look_up(wv: &mut [__m512i; 8], lut: Option<__m512i>) {
    if let Some(lut) = lut {
        for v in wv.iter_mut() {
            *v = _mm512_shuffle_epi8(lut, *v);
        }
    }
}

/// Asks for the lines of one group (its header, if it starts one, and its
/// blocks) of the panel at `base` the usual distances ahead (L1 and L2):
/// the panels are read front to back, and a core left to the hardware
/// prefetcher alone stalls on memory between bursts of work.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn prefetch_group<const BITS: u8, const PER_GROUP: usize>(base: *const u8, at: GroupAt) {
    let end = at.blocks + PER_GROUP * block_bytes(BITS);
    super::prefetch_codes(base, at.start, end - at.start);
}

/// Group `g` (of `groups`) in the panel at `base`: its 16 scales and
/// offsets, its first block and where it lies.
///
/// # Safety
/// The CPU must support AVX-512 F and F16C; the panel must hold group `g`
/// in `header`'s layout, 64-byte aligned.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn group_grid<const BITS: u8, const PER_GROUP: usize>(
    base: *const u8,
    header: TileHeader,
    (groups, g): (usize, usize),
) -> (__m512, __m512, *const u8, GroupAt) {
    let at = group_at(header, PER_GROUP * block_bytes(BITS), groups, g);
    // SAFETY: the caller guarantees the group; `f16` rows of a header are
    // 32-byte aligned, `u8` rows 16-byte aligned.
    unsafe {
        let half = |at: usize| _mm512_cvtph_ps(_mm256_load_si256(base.add(at) as *const __m256i));
        let byte = |at: usize| {
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(base.add(at) as *const __m128i)))
        };
        let (ws, wo) = match at.grid {
            GridAt::ScaleOffset { scales, offsets } => (half(scales), half(offsets)),
            GridAt::ScaleOnly { scales, bias } => {
                let ws = half(scales);
                (ws, _mm512_mul_ps(ws, _mm512_set1_ps(-bias)))
            }
            GridAt::SubScales { d, dmin, subs } => {
                let wo = _mm512_mul_ps(half(dmin), byte(subs + PANEL_ROWS));
                (_mm512_mul_ps(half(d), byte(subs)), _mm512_sub_ps(_mm512_setzero_ps(), wo))
            }
        };
        (ws, wo, base.add(at.blocks), at)
    }
}

/// [`crate::tiles::generic::panel_a8`] on AVX-512 VNNI.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and VNNI, and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn avx512_panel_a8(
    x: &QuantizedActivations,
    w: &TiledMatrix,
    panel: usize,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let shape = check_panel_a8(x, w, panel, &rows, out);
    let data = w.panel(panel);
    // SAFETY: same features; shapes checked above.
    unsafe {
        with_tile_layout!(w.layout(), |BITS, PER_GROUP| panel_a8::<BITS, PER_GROUP>(
            x,
            (data, level_table(w), w.header()),
            shape,
            rows.clone(),
            out
        ))
    }
}

/// Register tiles of eight activation rows, then four, two and one.
///
/// # Safety
/// As [`avx512_panel_a8`]; `data` is one whole panel of `groups` groups and
/// `blocks` blocks; every activation row holds `blocks` blocks of codes and
/// `groups` scales and sums; `out` holds `m × 16` values.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn panel_a8<const BITS: u8, const PER_GROUP: usize>(
    x: &QuantizedActivations,
    data: (&[u8], Option<__m512i>, TileHeader),
    shape: (usize, usize),
    rows: Range<usize>,
    out: &mut [f32],
) {
    let start = rows.start;
    // SAFETY: forwarded; `i + R ≤ rows.end`.
    unsafe {
        row_tiles!(rows, TILE_ROWS, |i, R| tile_a8::<BITS, PER_GROUP, R>(
            x,
            (i, i - start),
            data,
            shape,
            out
        ))
    }
}

/// Activation rows `first..first + R` times the panel.
///
/// # Safety
/// As [`panel_a8`], with `first + R ≤ m`.
// Per-row arrays are indexed by activation row inside loops over blocks.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn tile_a8<const BITS: u8, const PER_GROUP: usize, const R: usize>(
    x: &QuantizedActivations,
    (first, out_row): (usize, usize),
    (data, lut, header): (&[u8], Option<__m512i>, TileHeader),
    (groups, blocks): (usize, usize),
    out: &mut [f32],
) {
    let rows: [_; R] = std::array::from_fn(|r| x.row(first + r));
    assert!(rows.iter().all(|(codes, scales, sums)| {
        codes.len() >= blocks * BLOCK && scales.len() >= groups && sums.len() >= groups
    }));
    let codes: [*const u8; R] = std::array::from_fn(|r| rows[r].0.as_ptr() as *const u8);
    let mut acc = [_mm512_setzero_ps(); R];
    let base = data.as_ptr();
    for g in 0..groups {
        // SAFETY: the panel holds this group's header and blocks (checked
        // shape); sections are 64-byte multiples from an aligned start.
        let (ws, wo, mut p, at) =
            unsafe { group_grid::<BITS, PER_GROUP>(base, header, (groups, g)) };
        prefetch_group::<BITS, PER_GROUP>(base, at);
        let first_block = g * PER_GROUP;
        let mut isum = [_mm512_setzero_si512(); R];
        for b in first_block..(first_block + PER_GROUP).min(blocks) {
            // SAFETY: as above.
            let mut wv = unsafe { unpack::<BITS>(p) };
            look_up(&mut wv, lut);
            // SAFETY: as above.
            p = unsafe { p.add(block_bytes(BITS)) };
            for r in 0..R {
                // SAFETY: block b < blocks lies within every activation row.
                let a = unsafe { codes[r].add(b * BLOCK) } as *const i32;
                for (t, &v) in wv.iter().enumerate() {
                    // SAFETY: bytes 4t..4t+4 of the block.
                    let a4 = unsafe { a.add(t).read_unaligned() };
                    isum[r] = _mm512_dpbusd_epi32(isum[r], v, _mm512_set1_epi32(a4));
                }
            }
        }
        for r in 0..R {
            let s = _mm512_mul_ps(ws, _mm512_set1_ps(rows[r].1[g]));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), s, acc[r]);
            acc[r] = _mm512_fmadd_ps(wo, _mm512_set1_ps(rows[r].2[g]), acc[r]);
        }
    }
    for r in 0..R {
        let o = &mut out[(out_row + r) * PANEL_ROWS..(out_row + r + 1) * PANEL_ROWS];
        // SAFETY: `o` is 16 values.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), acc[r]) };
    }
}

/// [`crate::tiles::generic::panel_f32`] on AVX-512.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn avx512_panel_f32(
    x: &F32Rows,
    w: &TiledMatrix,
    panel: usize,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let shape = check_panel_f32(x, w, panel, &rows, out);
    let data = w.panel(panel);
    // SAFETY: same features; shapes checked above.
    unsafe {
        with_tile_layout!(w.layout(), |BITS, PER_GROUP| panel_f32::<BITS, PER_GROUP>(
            x,
            (data, level_table(w), w.header()),
            shape,
            rows.clone(),
            out
        ))
    }
}

/// Register tiles of eight activation rows, then four, two and one.
///
/// # Safety
/// As [`avx512_panel_f32`], shapes checked there.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn panel_f32<const BITS: u8, const PER_GROUP: usize>(
    x: &F32Rows,
    data: (&[u8], Option<__m512i>, TileHeader),
    shape: (usize, usize),
    rows: Range<usize>,
    out: &mut [f32],
) {
    let start = rows.start;
    // SAFETY: forwarded; `i + R ≤ rows.end`.
    unsafe {
        row_tiles!(rows, TILE_ROWS, |i, R| tile_f32::<BITS, PER_GROUP, R>(
            x,
            (i, i - start),
            data,
            shape,
            out
        ))
    }
}

/// Activation rows `first..first + R` (`f32`) times the panel.
///
/// # Safety
/// As [`panel_f32`], with `first + R ≤ rows`.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn tile_f32<const BITS: u8, const PER_GROUP: usize, const R: usize>(
    x: &F32Rows,
    (first, out_row): (usize, usize),
    (data, lut, header): (&[u8], Option<__m512i>, TileHeader),
    (groups, blocks): (usize, usize),
    out: &mut [f32],
) {
    let xs: [*const f32; R] = std::array::from_fn(|r| x.values[(first + r) * x.stride..].as_ptr());
    let byte = _mm512_set1_epi32(0xff);
    let mut acc = [_mm512_setzero_ps(); R];
    let base = data.as_ptr();
    for g in 0..groups {
        // SAFETY: the panel holds this group's header and blocks.
        let (ws, wo, mut p, at) =
            unsafe { group_grid::<BITS, PER_GROUP>(base, header, (groups, g)) };
        prefetch_group::<BITS, PER_GROUP>(base, at);
        let first_block = g * PER_GROUP;
        let mut dots = [_mm512_setzero_ps(); R];
        for b in first_block..(first_block + PER_GROUP).min(blocks) {
            // SAFETY: as above.
            let mut wv = unsafe { unpack::<BITS>(p) };
            look_up(&mut wv, lut);
            // SAFETY: as above.
            p = unsafe { p.add(block_bytes(BITS)) };
            for (t, &v) in wv.iter().enumerate() {
                let q = [
                    _mm512_cvtepi32_ps(_mm512_and_si512(v, byte)),
                    _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32::<8>(v), byte)),
                    _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32::<16>(v), byte)),
                    _mm512_cvtepi32_ps(_mm512_srli_epi32::<24>(v)),
                ];
                for (i, &qi) in q.iter().enumerate() {
                    let c = b * BLOCK + 4 * t + i;
                    for r in 0..R {
                        // SAFETY: c < blocks·32 ≤ stride: inside row first + r.
                        let xv = unsafe { *xs[r].add(c) };
                        dots[r] = _mm512_fmadd_ps(qi, _mm512_set1_ps(xv), dots[r]);
                    }
                }
            }
        }
        for r in 0..R {
            let sum = x.group_sums[(first + r) * x.groups + g];
            acc[r] = _mm512_fmadd_ps(dots[r], ws, acc[r]);
            acc[r] = _mm512_fmadd_ps(wo, _mm512_set1_ps(sum), acc[r]);
        }
    }
    for r in 0..R {
        let o = &mut out[(out_row + r) * PANEL_ROWS..(out_row + r + 1) * PANEL_ROWS];
        // SAFETY: `o` is 16 values.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), acc[r]) };
    }
}
