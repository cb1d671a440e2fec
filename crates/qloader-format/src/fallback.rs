//! How a tensor runs on a device: in its own format where the device has a
//! kernel for the format's family, else converted once at load to a format
//! that has one. The one rule the planner (predicting) and the loader
//! (deciding) share, so that a plan's predicted cost is what loading does.
//!
//! * Grouped codes widen exactly (an int2 code is also an int4 or int8
//!   code; the group size and the scales stay). Compact codes widen the same
//!   way within their layouts (`int2k` → `int4k`); `nl4k` indexes levels no
//!   other format has and only becomes floats. llama.cpp's 32-value blocks
//!   (`q4_0`, `iq4_nl`) become `q8_0` blocks exactly: every level they
//!   have is an `i8` under the same scale.
//! * Anything converts to `f32` exactly and to `f16` with one rounding per
//!   value. Anything else (narrowing, changing the group size) would
//!   re-quantize and is never done.
//!
//! A device may declare a fallback family for a family it has no kernel
//! for (a device profile's `fallbacks`); it is followed first, step by step.
//! Where none is declared, or the declared one does not take the format,
//! the tensor goes to the smallest format it converts to whose family has a
//! kernel (exact before rounded at equal size).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use crate::block32::BlockLayout;
use crate::compact::{self, CompactLayout};
use crate::format_family::FormatFamily;
use crate::grouped;
use crate::WeightFormat;

/// How faithful a conversion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fidelity {
    /// The converted weight stands for exactly the same values.
    Exact,
    /// Each value is rounded once (to `f16`).
    Rounded,
}

impl Fidelity {
    /// `exact` or `rounded to f16`.
    pub fn name(self) -> &'static str {
        match self {
            Fidelity::Exact => "exact",
            Fidelity::Rounded => "rounded to f16",
        }
    }
}

/// How `from` converts to `to`, or `None` if it would re-quantize.
pub fn conversion(from: WeightFormat, to: WeightFormat) -> Option<Fidelity> {
    match (from, to) {
        _ if from == to => Some(Fidelity::Exact),
        (_, WeightFormat::F32) => Some(Fidelity::Exact),
        (_, WeightFormat::F16) => Some(Fidelity::Rounded),
        (WeightFormat::Grouped(a), WeightFormat::Grouped(b))
            if a.group() == b.group() && b.bits() >= a.bits() =>
        {
            Some(Fidelity::Exact)
        }
        (WeightFormat::Compact(a), WeightFormat::Compact(b))
            if b.bits() >= a.bits() && !a.is_nonuniform() && !b.is_nonuniform() =>
        {
            Some(Fidelity::Exact)
        }
        // Same scale, a wider grid of integer levels: q4_0 → q5_0 → q8_0;
        // iq4_nl's levels (−127 … 113) fit q8_0's alone.
        (WeightFormat::Block(a), WeightFormat::Block(b))
            if b == BlockLayout::Q8_0
                || (!a.is_nonuniform() && !b.is_nonuniform() && b.bits() >= a.bits()) =>
        {
            Some(Fidelity::Exact)
        }
        _ => None,
    }
}

/// Every other format `format` converts to (see [`conversion`]).
pub fn conversion_targets(format: WeightFormat) -> Vec<WeightFormat> {
    let mut out = vec![WeightFormat::F16, WeightFormat::F32];
    match format {
        WeightFormat::Grouped(layout) => {
            for bits in grouped::BITS {
                out.extend(
                    grouped::GroupedLayout::new(bits, layout.group()).map(WeightFormat::Grouped),
                );
            }
        }
        WeightFormat::Compact(_) => {
            for bits in compact::BITS {
                out.extend(CompactLayout::new(bits).map(WeightFormat::Compact));
            }
        }
        WeightFormat::Block(_) => out.extend(BlockLayout::ALL.map(WeightFormat::Block)),
        _ => {}
    }
    out.retain(|&t| t != format && conversion(format, t).is_some());
    out
}

/// How a tensor stored as `format` runs on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    /// The format it is held in at run time: `format`, or what it is
    /// converted to at load.
    pub runs_as: WeightFormat,
    /// How faithful that conversion is; `None` when it runs natively.
    pub conversion: Option<Fidelity>,
}

/// How a tensor stored as `format` runs on a device that has a kernel for
/// the families `has_kernel` accepts and declares the fallbacks `declared`
/// gives (see the module documentation); `None` if it cannot run at all.
pub fn resolve(
    format: WeightFormat,
    has_kernel: impl Fn(FormatFamily) -> bool,
    declared: impl Fn(FormatFamily) -> Option<FormatFamily>,
) -> Option<Resolution> {
    if has_kernel(format.family()) {
        return Some(Resolution { runs_as: format, conversion: None });
    }
    let converted =
        |to: WeightFormat| Resolution { runs_as: to, conversion: conversion(format, to) };
    let mut family = format.family();
    for _ in FormatFamily::ALL {
        let Some(next) = declared(family) else { break };
        let Some(to) = cheapest(format, |t| t.family() == next) else { break };
        if has_kernel(next) {
            return Some(converted(to));
        }
        family = next;
    }
    cheapest(format, |t| has_kernel(t.family())).map(converted)
}

/// The smallest format `format` converts to that `keep` accepts, exact
/// conversions first at equal size.
fn cheapest(format: WeightFormat, keep: impl Fn(WeightFormat) -> bool) -> Option<WeightFormat> {
    conversion_targets(format)
        .into_iter()
        .filter(|&t| keep(t))
        .min_by_key(|&t| (t.storage_bytes(64, 128), conversion(format, t) != Some(Fidelity::Exact)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use FormatFamily::*;

    fn f(name: &str) -> WeightFormat {
        name.parse().unwrap()
    }

    fn runs(
        format: &str,
        kernels: &[FormatFamily],
        declared: &[(FormatFamily, FormatFamily)],
    ) -> Option<(WeightFormat, Option<Fidelity>)> {
        let r = resolve(
            f(format),
            |fam| kernels.contains(&fam),
            |fam| declared.iter().find(|(a, _)| *a == fam).map(|&(_, b)| b),
        )?;
        Some((r.runs_as, r.conversion))
    }

    #[test]
    fn conversions_widen_codes_or_become_floats() {
        assert_eq!(conversion(f("int2g64"), f("int4g64")), Some(Fidelity::Exact));
        assert_eq!(conversion(f("int4g64"), f("int2g64")), None, "narrowing re-quantizes");
        assert_eq!(conversion(f("int4g64"), f("int4g32")), None, "so does regrouping");
        assert_eq!(conversion(f("int2k"), f("int4k")), Some(Fidelity::Exact));
        assert_eq!(conversion(f("nl4k"), f("int4k")), None);
        assert_eq!(conversion(f("int8"), f("int8g32")), None);
        assert_eq!(conversion(f("nl4k"), f("f16")), Some(Fidelity::Rounded));
        assert_eq!(conversion(f("f16"), f("f32")), Some(Fidelity::Exact));
        assert_eq!(conversion_targets(f("nl4k")), [f("f16"), f("f32")]);
        assert_eq!(conversion_targets(f("iq4_nl")), [f("f16"), f("f32"), f("q8_0")]);
        assert_eq!(conversion(f("q8_0"), f("q4_0")), None);
        assert_eq!(conversion(f("q4_0"), f("int4")), None, "a block is not a grouped format");
        assert_eq!(
            conversion_targets(f("int3g128")),
            [f("f16"), f("f32"), f("int4g128"), f("int8g128")]
        );
    }

    #[test]
    fn a_format_with_a_kernel_runs_as_itself() {
        assert_eq!(runs("int3k", &[Int3], &[]), Some((f("int3k"), None)));
    }

    #[test]
    fn without_a_declared_fallback_the_smallest_exact_conversion_wins() {
        let all_but = |gone: &[FormatFamily]| -> Vec<FormatFamily> {
            FormatFamily::ALL.into_iter().filter(|f| !gone.contains(f)).collect()
        };
        let exact = Some(Fidelity::Exact);
        assert_eq!(runs("int2g64", &all_but(&[Int2, Int3]), &[]), Some((f("int4g64"), exact)));
        assert_eq!(runs("int3", &all_but(&[Int3, Int4]), &[]), Some((f("int8g32"), exact)));
        assert_eq!(runs("int2k", &all_but(&[Int2]), &[]), Some((f("int3k"), exact)));
        assert_eq!(runs("int8", &all_but(&[Int8]), &[]), Some((f("f16"), Some(Fidelity::Rounded))));
        assert_eq!(runs("nl4k", &all_but(&[Nl4, F16]), &[]), Some((f("f32"), exact)));
        assert_eq!(runs("iq4_nl", &all_but(&[Nl4]), &[]), Some((f("q8_0"), exact)));
        // q5_0 runs on the 8-bit kernels, and is smaller than q8_0.
        assert_eq!(runs("q4_0", &all_but(&[Int4]), &[]), Some((f("q5_0"), exact)));
        assert_eq!(runs("q5_0", &all_but(&[Int8]), &[]), Some((f("f16"), Some(Fidelity::Rounded))));
        assert_eq!(runs("int2", &[], &[]), None);
    }

    #[test]
    fn a_declared_chain_is_followed_to_its_kernel() {
        let chain = [(Int2, Int3), (Int3, Int8)];
        assert_eq!(
            runs("int2g64", &[Int8, Int4], &chain),
            Some((f("int8g64"), Some(Fidelity::Exact)))
        );
        // A declared family the format cannot become: the automatic rule.
        assert_eq!(
            runs("nl4k", &[Int4, F16], &[(Nl4, Int4)]),
            Some((f("f16"), Some(Fidelity::Rounded)))
        );
        // A compact format never becomes grouped int8 (its scales would
        // round) but widens exactly to int5k, which runs on int8 kernels.
        assert_eq!(
            runs("int2k", &[Int8, F32], &[(Int2, Int8)]),
            Some((f("int5k"), Some(Fidelity::Exact)))
        );
        assert_eq!(
            runs("nl4k", &[Int8, F32], &[(Nl4, Int8)]),
            Some((f("f32"), Some(Fidelity::Exact)))
        );
    }
}
