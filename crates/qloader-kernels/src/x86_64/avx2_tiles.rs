//! AVX2 panel kernels for tiled weights (layout:
//! [`crate::tiles::layout`]): the `avx2` tier's form of the AVX-512 ones in
//! `avx512_tiles`. A 32-byte register holds half a panel (8 rows × 4
//! columns), so each panel is done as two halves of 8 rows, each in register
//! tiles of up to four activation rows; both halves read the panel's bytes,
//! which stay in cache between them.
//!
//! * int8 activations: `maddubs` (unsigned codes × signed activations) into
//!   16-bit sums — with codes of at most 4 bits the eight column quads of a
//!   block cannot overflow them (8·2·15·127 < 2¹⁵) — widened by `madd` once
//!   per block; 5-bit codes (`int5k`, `q5_0`) widen after four column quads
//!   (4·2·31·128 < 2¹⁵); 8-bit codes are split into nibbles
//!   (`16·high + low`).
//! * `f32` activations: each code byte converted once and multiplied into
//!   every activation row with one FMA.
//!
//! Tiles with a table of levels have each 4-bit code replaced by its level
//! byte (`vpshufb`) right after unpacking; those bytes go the 8-bit way.

use std::arch::x86_64::*;
use std::ops::Range;

use qloader_format::grouped::BLOCK;

use crate::activations::QuantizedActivations;
use crate::tiles::kernel_support::{check_panel_a8, check_panel_f32, row_tiles, with_tile_layout};
use crate::tiles::layout::{block_bytes, group_at, GridAt, TileHeader, PANEL_ROWS};
use crate::tiles::{F32Rows, TiledMatrix};

/// Activation rows per register tile.
const TILE_ROWS: usize = 4;

/// Rows of a panel in one register.
const HALF: usize = PANEL_ROWS / 2;

/// The eight code vectors (one per column quad) of half `h` of the block at
/// `p`, one byte per code.
///
/// # Safety
/// The CPU must support AVX2; the block ([`block_bytes`]`(BITS)` bytes) must
/// be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_half<const BITS: u8>(p: *const u8, h: usize) -> [__m256i; 8] {
    // SAFETY: the caller guarantees the block; chunk `j` half `h` is the 32
    // bytes at 64·j + 32·h.
    let load = |j: usize| unsafe { _mm256_loadu_si256(p.add(64 * j + 32 * h) as *const __m256i) };
    match BITS {
        8 => std::array::from_fn(load),
        4 | 5 => {
            let m = _mm256_set1_epi8(0x0f);
            let mut out = [_mm256_setzero_si256(); 8];
            for j in 0..4 {
                let v = load(j);
                out[2 * j] = _mm256_and_si256(v, m);
                out[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m);
            }
            if BITS == 5 {
                // Fifth bits: bit t of each byte of the half's 32 bytes
                // after the nibbles, moved to bit 4 within its byte.
                let plane = load(4);
                let bit4 = _mm256_set1_epi8(0x10);
                let at_bit4 = [
                    _mm256_slli_epi16::<4>(plane),
                    _mm256_slli_epi16::<3>(plane),
                    _mm256_slli_epi16::<2>(plane),
                    _mm256_slli_epi16::<1>(plane),
                    plane,
                    _mm256_srli_epi16::<1>(plane),
                    _mm256_srli_epi16::<2>(plane),
                    _mm256_srli_epi16::<3>(plane),
                ];
                for (v, high) in out.iter_mut().zip(at_bit4) {
                    *v = _mm256_or_si256(*v, _mm256_and_si256(high, bit4));
                }
            }
            out
        }
        _ => {
            let m = _mm256_set1_epi8(3);
            let mut out = [_mm256_setzero_si256(); 8];
            for j in 0..2 {
                let v = load(j);
                out[4 * j] = _mm256_and_si256(v, m);
                out[4 * j + 1] = _mm256_and_si256(_mm256_srli_epi16::<2>(v), m);
                out[4 * j + 2] = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m);
                out[4 * j + 3] = _mm256_and_si256(_mm256_srli_epi16::<6>(v), m);
            }
            if BITS == 3 {
                // Mask t, bits 32h..32h+32: byte b of the half gets bit b.
                let masks = p.wrapping_add(128) as *const u64;
                let spread_index = _mm256_setr_epi8(
                    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
                    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
                );
                let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
                let four = _mm256_set1_epi8(4);
                for (t, v) in out.iter_mut().enumerate() {
                    // SAFETY: the block's eight masks follow its low planes.
                    let word = (unsafe { masks.add(t).read_unaligned() } >> (32 * h)) as u32;
                    let spread = _mm256_shuffle_epi8(_mm256_set1_epi32(word as i32), spread_index);
                    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
                    *v = _mm256_or_si256(*v, _mm256_and_si256(set, four));
                }
            }
            out
        }
    }
}

/// [`crate::tiles::generic::panel_a8`] on AVX2.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_panel_a8(
    x: &QuantizedActivations,
    w: &TiledMatrix,
    panel: usize,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let shape = check_panel_a8(x, w, panel, &rows, out);
    let data = w.panel(panel);
    let lut = level_table(w);
    // SAFETY: same features; shapes checked above.
    unsafe {
        with_tile_layout!(w.layout(), |BITS, PER_GROUP| tiles::<BITS, PER_GROUP, true>(
            &Source::A8(x),
            (data, lut, w.header()),
            shape,
            rows.clone(),
            out
        ))
    }
}

/// [`crate::tiles::generic::panel_f32`] on AVX2.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_panel_f32(
    x: &F32Rows,
    w: &TiledMatrix,
    panel: usize,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let shape = check_panel_f32(x, w, panel, &rows, out);
    let data = w.panel(panel);
    let lut = level_table(w);
    // SAFETY: same features; shapes checked above.
    unsafe {
        with_tile_layout!(w.layout(), |BITS, PER_GROUP| tiles::<BITS, PER_GROUP, false>(
            &Source::F32(x),
            (data, lut, w.header()),
            shape,
            rows.clone(),
            out
        ))
    }
}

/// The tiles' table of levels in both 128-bit lanes, if they have one.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn level_table(w: &TiledMatrix) -> Option<__m256i> {
    let levels = w.levels()?;
    // SAFETY: 16 readable bytes.
    let lane = unsafe { _mm_loadu_si128(levels.as_ptr() as *const __m128i) };
    Some(_mm256_broadcastsi128_si256(lane))
}

/// Each code byte replaced by its level, if there is a table.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn look_up(wv: &mut [__m256i; 8], lut: Option<__m256i>) {
    if let Some(lut) = lut {
        for v in wv.iter_mut() {
            *v = _mm256_shuffle_epi8(lut, *v);
        }
    }
}

/// The activations a panel is multiplied by.
enum Source<'a> {
    A8(&'a QuantizedActivations),
    F32(&'a F32Rows),
}

/// Both halves of the panel, register tiles of four activation rows, then
/// two and one.
///
/// # Safety
/// As the public kernels, shapes checked there; `A8` matches the source.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tiles<const BITS: u8, const PER_GROUP: usize, const A8: bool>(
    x: &Source<'_>,
    data: (&[u8], Option<__m256i>, TileHeader),
    shape: (usize, usize),
    rows: Range<usize>,
    out: &mut [f32],
) {
    let start = rows.start;
    for h in 0..2 {
        // SAFETY: forwarded; `i + R ≤ rows.end`.
        unsafe {
            row_tiles!(rows.clone(), TILE_ROWS, |i, R| tile::<BITS, PER_GROUP, A8, R>(
                x,
                (i, i - start, h),
                data,
                shape,
                out
            ))
        }
    }
}

/// Activation rows `first..first + R` times half `h` of the panel, into
/// `out` rows `out_row..`, columns `8h..8h + 8`.
///
/// # Safety
/// As [`tiles`], with `first + R` within the source's rows.
// Per-row arrays are indexed by activation row inside loops over blocks.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<const BITS: u8, const PER_GROUP: usize, const A8: bool, const R: usize>(
    x: &Source<'_>,
    (first, out_row, h): (usize, usize, usize),
    (data, lut, header): (&[u8], Option<__m256i>, TileHeader),
    (groups, blocks): (usize, usize),
    out: &mut [f32],
) {
    let mut acc = [_mm256_setzero_ps(); R];
    let base = data.as_ptr();
    let group_blocks = PER_GROUP * block_bytes(BITS);
    // The int8 activation rows (codes, group scales, scaled group sums),
    // looked up once rather than per block.
    let a8_rows: [(&[i8], &[f32], &[f32]); R] = match x {
        Source::A8(x) => std::array::from_fn(|r| x.row(first + r)),
        Source::F32(_) => [(&[][..], &[][..], &[][..]); R],
    };
    if matches!(x, Source::A8(_)) {
        for (codes, _, _) in &a8_rows {
            assert!(codes.len() >= blocks * BLOCK);
        }
    }
    for g in 0..groups {
        let at = group_at(header, group_blocks, groups, g);
        let (start, len) = (base.wrapping_add(at.start), at.blocks + group_blocks - at.start);
        if h == 0 {
            // The lines of the group, the usual distances ahead (the second
            // half finds them in cache).
            super::prefetch_codes(start, 0, len);
        } else {
            // The same lines of the next panel (in memory right after this
            // one, usually the next one multiplied): memory keeps streaming
            // while the second half computes from cache.
            super::prefetch_to_l2(start.wrapping_add(data.len()), len);
        }
        // SAFETY: the panel holds this group's header and blocks (checked
        // shape): 16 scales (and 16 offsets), half `h` being 8 of each.
        let (ws, wo, mut p) = unsafe {
            let half = |at: usize| {
                _mm256_cvtph_ps(_mm_loadu_si128(base.add(at + 2 * HALF * h) as *const __m128i))
            };
            let byte = |at: usize| {
                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                    base.add(at + HALF * h) as *const __m128i
                )))
            };
            let (ws, wo) = match at.grid {
                GridAt::ScaleOffset { scales, offsets } => (half(scales), half(offsets)),
                GridAt::ScaleOnly { scales, bias } => {
                    let ws = half(scales);
                    (ws, _mm256_mul_ps(ws, _mm256_set1_ps(-bias)))
                }
                GridAt::SubScales { d, dmin, subs } => {
                    let wo = _mm256_mul_ps(half(dmin), byte(subs + PANEL_ROWS));
                    (_mm256_mul_ps(half(d), byte(subs)), _mm256_sub_ps(_mm256_setzero_ps(), wo))
                }
            };
            (ws, wo, base.add(at.blocks))
        };
        let first_block = g * PER_GROUP;
        let last_block = (first_block + PER_GROUP).min(blocks);
        match x {
            Source::A8(_) => {
                let mut isum = [_mm256_setzero_si256(); R];
                for b in first_block..last_block {
                    // SAFETY: as above.
                    let mut wv = unsafe { unpack_half::<BITS>(p, h) };
                    look_up(&mut wv, lut);
                    // SAFETY: as above.
                    p = unsafe { p.add(block_bytes(BITS)) };
                    for r in 0..R {
                        // SAFETY: block b < blocks lies within the row
                        // (checked above).
                        let a = unsafe { a8_rows[r].0.as_ptr().add(b * BLOCK) } as *const i32;
                        // SAFETY: as above (level bytes take the 8-bit way).
                        let dot = unsafe {
                            if lut.is_some() {
                                block_dot::<8>(&wv, a)
                            } else {
                                block_dot::<BITS>(&wv, a)
                            }
                        };
                        isum[r] = _mm256_add_epi32(isum[r], dot);
                    }
                }
                for r in 0..R {
                    let (_, scales, sums) = a8_rows[r];
                    let s = _mm256_mul_ps(ws, _mm256_set1_ps(scales[g]));
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), s, acc[r]);
                    acc[r] = _mm256_fmadd_ps(wo, _mm256_set1_ps(sums[g]), acc[r]);
                }
            }
            Source::F32(x) => {
                let byte = _mm256_set1_epi32(0xff);
                let mut dots = [_mm256_setzero_ps(); R];
                for b in first_block..last_block {
                    // SAFETY: as above.
                    let mut wv = unsafe { unpack_half::<BITS>(p, h) };
                    look_up(&mut wv, lut);
                    // SAFETY: as above.
                    p = unsafe { p.add(block_bytes(BITS)) };
                    for (t, &v) in wv.iter().enumerate() {
                        let q = [
                            _mm256_cvtepi32_ps(_mm256_and_si256(v, byte)),
                            _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32::<8>(v), byte)),
                            _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32::<16>(v), byte)),
                            _mm256_cvtepi32_ps(_mm256_srli_epi32::<24>(v)),
                        ];
                        for (i, &qi) in q.iter().enumerate() {
                            let c = b * BLOCK + 4 * t + i;
                            for r in 0..R {
                                let xv = x.values[(first + r) * x.stride + c];
                                dots[r] = _mm256_fmadd_ps(qi, _mm256_set1_ps(xv), dots[r]);
                            }
                        }
                    }
                }
                for r in 0..R {
                    let sum = x.group_sums[(first + r) * x.groups + g];
                    acc[r] = _mm256_fmadd_ps(dots[r], ws, acc[r]);
                    acc[r] = _mm256_fmadd_ps(wo, _mm256_set1_ps(sum), acc[r]);
                }
            }
        }
    }
    for r in 0..R {
        let at = (out_row + r) * PANEL_ROWS + HALF * h;
        let o = &mut out[at..at + HALF];
        // SAFETY: `o` is 8 values.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), acc[r]) };
    }
}

/// `Σ_t` of the eight column quads of one block half with the activation
/// row at `a` (32 codes): per lane (weight row), the block's integer dot.
///
/// # Safety
/// The CPU must support AVX2; `a` must point at 32 readable codes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block_dot<const BITS: u8>(wv: &[__m256i; 8], a: *const i32) -> __m256i {
    let ones = _mm256_set1_epi16(1);
    // SAFETY: the caller guarantees the 32 codes (eight quads).
    let quad = |t: usize| _mm256_set1_epi32(unsafe { a.add(t).read_unaligned() });
    if BITS == 8 {
        // Codes up to 255 could saturate `maddubs`'s pair sums: split each
        // into nibbles, 16·high + low, each product at most 15·127.
        let m = _mm256_set1_epi8(0x0f);
        let (mut lo, mut hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for (t, &v) in wv.iter().enumerate() {
            let a4 = quad(t);
            lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(_mm256_and_si256(v, m), a4));
            let high = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m);
            hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(high, a4));
        }
        let lo = _mm256_madd_epi16(lo, ones);
        let hi = _mm256_madd_epi16(hi, ones);
        _mm256_add_epi32(lo, _mm256_slli_epi32::<4>(hi))
    } else if BITS == 5 {
        // Each `maddubs` pair sum is at most 2·31·128: four add up in 16 bits.
        let half = |first: usize| {
            let mut sum = _mm256_setzero_si256();
            for (t, &v) in wv.iter().enumerate().skip(first).take(4) {
                sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(v, quad(t)));
            }
            _mm256_madd_epi16(sum, ones)
        };
        _mm256_add_epi32(half(0), half(4))
    } else {
        let mut sum = _mm256_setzero_si256();
        for (t, &v) in wv.iter().enumerate() {
            sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(v, quad(t)));
        }
        _mm256_madd_epi16(sum, ones)
    }
}
