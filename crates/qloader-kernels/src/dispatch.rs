//! The kernel table: one function pointer per row kernel, filled with the
//! generic tier and upgraded tier by tier from run-time CPU detection, cached
//! for the life of the process. `QLOADER_ISA` caps the tier
//! ([`crate::knobs`]); tests and benchmarks reach every tier the host has with
//! [`Kernels::for_isa`].

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use half::f16;

use crate::activations::QuantizedActivations;
use crate::expanded_gemm::ExpandedGemm;
use crate::generic;
use crate::quantize::GroupedRow;
use crate::tiles::{F32Rows, TiledMatrix};

/// A kernel tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable code, any CPU.
    Generic,
    /// x86-64 with AVX2, FMA and F16C.
    Avx2,
    /// x86-64 with AVX-512 (F, BW, VL) and VNNI, besides AVX2, FMA and F16C:
    /// integer products with int8 activations on `vpdpbusd`, batch-1 float
    /// products four weight rows at a time (f32 and int8 weights), tiled
    /// panels and the expanded GEMM; the other float kernels are the AVX2
    /// ones.
    Avx512Vnni,
}

impl Isa {
    /// Every tier, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Generic, Isa::Avx2, Isa::Avx512Vnni];

    /// The tier's name, as in kernel names and `QLOADER_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }

    /// Whether this CPU can run the tier.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.is_available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512Vnni => false,
        }
    }

    fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == name)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A panel kernel of tiled weights with int8 activations: see
/// [`crate::tiles::generic::panel_a8`].
pub type PanelA8 = fn(&QuantizedActivations, &TiledMatrix, usize, Range<usize>, &mut [f32]);
/// A panel kernel of tiled weights with `f32` activations: see
/// [`crate::tiles::generic::panel_f32`].
pub type PanelF32 = fn(&F32Rows, &TiledMatrix, usize, Range<usize>, &mut [f32]);

/// Row kernels of one tier.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// The tier these kernels belong to.
    pub isa: Isa,
    /// `Σ a·b` over two `f32` rows.
    pub dot_f32: fn(&[f32], &[f32]) -> f32,
    /// [`Kernels::dot_f32`] of one activation row with four weight rows.
    pub dot_f32_w4: fn(&[f32], &[&[f32]; 4], &mut [f32; 4]),
    /// `Σ x·w` over an `f32` row and an `f16` row.
    pub dot_f16: fn(&[f32], &[f16]) -> f32,
    /// `Σ x·q` over an `f32` row and an int8 code row.
    pub dot_int8: fn(&[f32], &[i8]) -> f32,
    /// [`Kernels::dot_int8`] of one activation row with four code rows at
    /// once (the activations are read once for the four).
    pub dot_int8_w4: fn(&[f32], &[&[i8]; 4], &mut [f32; 4]),
    /// `Σ_g s_g · Σ a·q` over int8 activation codes in groups of a given
    /// width with one scale each, and int8 weight codes (each group's
    /// integer sum exact).
    pub dot_int8_a8: fn(&[i8], &[i8], &[f32], usize) -> f32,
    /// Expands an `f16` row to `f32`.
    pub unpack_f16: fn(&[f16], &mut [f32]),
    /// Expands a grouped row to `f32`.
    pub unpack_grouped: fn(GroupedRow<'_>, &mut [f32]),
    /// One panel of tiled weights times every int8 activation row.
    pub panel_a8: PanelA8,
    /// One panel of tiled weights times every `f32` activation row.
    pub panel_f32: PanelF32,
    /// The blocked GEMM for batches of `f32` activations with `f16`, int8
    /// or tiled weights, where the tier has one.
    pub expanded_gemm: Option<&'static ExpandedGemm>,
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels").field("isa", &self.isa).finish_non_exhaustive()
    }
}

static GENERIC: Kernels = Kernels {
    isa: Isa::Generic,
    dot_f32: generic::dot_f32,
    dot_f32_w4: generic::dot_f32_w4,
    dot_f16: generic::dot_f16,
    dot_int8: generic::dot_int8,
    dot_int8_w4: generic::dot_int8_w4,
    dot_int8_a8: generic::dot_int8_a8,
    unpack_f16: generic::unpack_f16,
    unpack_grouped: generic::unpack_grouped,
    panel_a8: crate::tiles::generic::panel_a8,
    panel_f32: crate::tiles::generic::panel_f32,
    expanded_gemm: None,
};

#[cfg(target_arch = "x86_64")]
mod avx2_table {
    use super::*;
    use crate::x86_64::{avx2, avx2_tiles};

    // SAFETY (all wrappers): they are only reachable through `AVX2`, which
    // `Kernels::for_isa` hands out only after `Isa::is_available` confirmed
    // AVX2, FMA and F16C on this CPU.
    fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: see above.
        unsafe { avx2::avx2_dot_f32(a, b) }
    }
    fn dot_int8(x: &[f32], q: &[i8]) -> f32 {
        // SAFETY: see above.
        unsafe { avx2::avx2_dot_int8(x, q) }
    }
    fn dot_int8_w4(x: &[f32], qs: &[&[i8]; 4], out: &mut [f32; 4]) {
        // SAFETY: see above.
        unsafe { avx2::avx2_dot_int8_w4(x, qs, out) }
    }
    fn dot_f32_w4(x: &[f32], ws: &[&[f32]; 4], out: &mut [f32; 4]) {
        // SAFETY: see above.
        unsafe { avx2::avx2_dot_f32_w4(x, ws, out) }
    }
    fn dot_f16(x: &[f32], w: &[f16]) -> f32 {
        // SAFETY: see above.
        unsafe { avx2::avx2_dot_f16(x, w) }
    }
    fn dot_int8_a8(a: &[i8], q: &[i8], scales: &[f32], group: usize) -> f32 {
        // SAFETY: see above.
        unsafe { avx2::avx2_dot_int8_a8(a, q, scales, group) }
    }
    fn unpack_f16(w: &[f16], out: &mut [f32]) {
        // SAFETY: see above.
        unsafe { avx2::avx2_unpack_f16(w, out) }
    }
    fn unpack_grouped(row: GroupedRow<'_>, out: &mut [f32]) {
        // SAFETY: see above.
        unsafe { avx2::avx2_unpack_grouped(row, out) }
    }
    fn panel_a8(
        x: &QuantizedActivations,
        w: &TiledMatrix,
        panel: usize,
        rows: Range<usize>,
        out: &mut [f32],
    ) {
        // SAFETY: see above.
        unsafe { avx2_tiles::avx2_panel_a8(x, w, panel, rows, out) }
    }
    fn panel_f32(x: &F32Rows, w: &TiledMatrix, panel: usize, rows: Range<usize>, out: &mut [f32]) {
        // SAFETY: see above.
        unsafe { avx2_tiles::avx2_panel_f32(x, w, panel, rows, out) }
    }

    pub(super) static AVX2: Kernels = Kernels {
        isa: Isa::Avx2,
        dot_f32,
        dot_f32_w4,
        dot_f16,
        dot_int8,
        dot_int8_w4,
        dot_int8_a8,
        unpack_f16,
        unpack_grouped,
        panel_a8,
        panel_f32,
        expanded_gemm: None,
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512_table {
    use super::*;
    use crate::x86_64::{avx512, avx512_tiles};

    // SAFETY (all wrappers): they are only reachable through `AVX512_VNNI`,
    // which `Kernels::for_isa` hands out only after `Isa::is_available`
    // confirmed AVX-512 F, BW, VL and VNNI, AVX2, FMA and F16C on this CPU.
    fn dot_int8_w4(x: &[f32], qs: &[&[i8]; 4], out: &mut [f32; 4]) {
        // SAFETY: see above.
        unsafe { avx512::avx512_dot_int8_w4(x, qs, out) }
    }
    fn dot_f32_w4(x: &[f32], ws: &[&[f32]; 4], out: &mut [f32; 4]) {
        // SAFETY: see above.
        unsafe { avx512::avx512_dot_f32_w4(x, ws, out) }
    }
    fn dot_int8_a8(a: &[i8], q: &[i8], scales: &[f32], group: usize) -> f32 {
        // SAFETY: see above.
        unsafe { avx512::avx512_dot_int8_a8(a, q, scales, group) }
    }
    fn panel_a8(
        x: &QuantizedActivations,
        w: &TiledMatrix,
        panel: usize,
        rows: Range<usize>,
        out: &mut [f32],
    ) {
        // SAFETY: see above.
        unsafe { avx512_tiles::avx512_panel_a8(x, w, panel, rows, out) }
    }
    fn panel_f32(x: &F32Rows, w: &TiledMatrix, panel: usize, rows: Range<usize>, out: &mut [f32]) {
        // SAFETY: see above.
        unsafe { avx512_tiles::avx512_panel_f32(x, w, panel, rows, out) }
    }

    /// The integer products on VNNI; f32 and int8 weights with `f32`
    /// activations at batch 1 four rows at a time on AVX-512; tiled panels
    /// and the expanded GEMM; the other float products are AVX2's.
    pub(super) static AVX512_VNNI: Kernels = Kernels {
        isa: Isa::Avx512Vnni,
        dot_f32_w4,
        dot_int8_w4,
        dot_int8_a8,
        panel_a8,
        panel_f32,
        expanded_gemm: Some(&crate::x86_64::avx512_expanded::AVX512_EXPANDED),
        ..super::avx2_table::AVX2
    };
}

impl Kernels {
    /// The kernels of `isa`, or `None` if this CPU cannot run that tier.
    pub fn for_isa(isa: Isa) -> Option<&'static Kernels> {
        if !isa.is_available() {
            return None;
        }
        match isa {
            Isa::Generic => Some(&GENERIC),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(&avx2_table::AVX2),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Some(&avx512_table::AVX512_VNNI),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512Vnni => None,
        }
    }

    /// The best tier this CPU has, capped by `QLOADER_ISA`; chosen once.
    pub fn detect() -> &'static Kernels {
        static CHOSEN: OnceLock<&'static Kernels> = OnceLock::new();
        CHOSEN.get_or_init(|| {
            let cap = crate::knobs::isa_cap().map(|name| match Isa::from_name(&name) {
                Some(isa) => isa,
                None => {
                    eprintln!(
                        "qloader: ignoring {}={name:?} (known: {})",
                        crate::knobs::ISA_ENV,
                        Isa::ALL.map(Isa::name).join(", ")
                    );
                    Isa::Avx512Vnni
                }
            });
            Isa::ALL
                .into_iter()
                .rev()
                .filter(|&i| cap.is_none_or(|c| i <= c))
                .find_map(Kernels::for_isa)
                .unwrap_or(&GENERIC)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_handed_out_exactly_when_the_cpu_has_them() {
        let mut names: Vec<&str> = Isa::ALL.map(Isa::name).into();
        names.dedup();
        assert_eq!(names.len(), Isa::ALL.len(), "tier names are unique");
        assert!(Isa::ALL.windows(2).all(|w| w[0] < w[1]), "ALL is lowest first");
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
            match Kernels::for_isa(isa) {
                Some(k) => assert_eq!(k.isa, isa),
                None => assert!(!isa.is_available(), "{isa} is available but not handed out"),
            }
        }
        // A higher tier needs everything a lower one does.
        assert!(!Isa::Avx512Vnni.is_available() || Isa::Avx2.is_available());
        assert!(Kernels::detect().isa.is_available());
    }
}
