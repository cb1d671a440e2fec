//! x86-64 kernel tiers. Each function here requires CPU features that the
//! dispatch table checks at run time before handing out a pointer to it.

use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};

pub mod avx2;
pub mod avx2_tiles;
pub mod avx512;
pub mod avx512_expanded;
pub mod avx512_tiles;

/// How far ahead of the codes being multiplied the kernel asks for the next
/// line (software prefetch). The hardware prefetcher alone lets a single core
/// stall on memory between bursts of work; asking 2 KiB ahead made the
/// single-thread AVX-512 int4/int2 products 5–25 % faster on a Zen 4 VM (the scales
/// and offsets, an eighth as far ahead in their own arrays, come along).
pub(super) const PREFETCH_BYTES: usize = 2048;

/// How far ahead the kernels also ask for a line into L2 only. With the L1
/// hint alone a core still waited on memory between bursts of work: asking
/// 14 KiB ahead into L2 took single-thread int4·a8 on 4096×11008 from
/// 57–71 % to 78–101 % of the read bandwidth timed beside it (Zen 4 VM;
/// 8 and 26 KiB did as well, within the noise).
pub(super) const L2_PREFETCH_BYTES: usize = 7 * PREFETCH_BYTES;

/// Asks for the lines of `codes[from..from + len]` — the codes about to be
/// read — [`PREFETCH_BYTES`] ahead into L1 and [`L2_PREFETCH_BYTES`] ahead
/// into L2. Hints only: they never fault, so the addresses may run past the
/// row (into the next one, read next) or the matrix.
#[inline]
#[target_feature(enable = "sse")]
fn prefetch_codes(codes: *const u8, from: usize, len: usize) {
    let mut line = from;
    while line < from + len {
        let at = codes.wrapping_add(line) as *const i8;
        _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(PREFETCH_BYTES));
        _mm_prefetch::<_MM_HINT_T1>(at.wrapping_add(L2_PREFETCH_BYTES));
        line += 64;
    }
}

/// Asks for the lines of `bytes[..len]` into L2 (a hint: never faults, so
/// `bytes` may lie past the matrix).
#[inline]
#[target_feature(enable = "sse")]
fn prefetch_to_l2(bytes: *const u8, len: usize) {
    for line in (0..len).step_by(64) {
        _mm_prefetch::<_MM_HINT_T1>(bytes.wrapping_add(line) as *const i8);
    }
}
