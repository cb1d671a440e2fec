//! Which GGUF tensor type holds a weight format's values exactly — the one
//! rule `export` writes by and a device profile with `layouts = "gguf"`
//! plans by.
//!
//! * Same bytes: `f32` and `f16`; `int4` with groups of 32 is `Q4_1` block
//!   for block (rows a multiple of 32); `int4k` is `Q4_K` and `nl4k` is
//!   `IQ4_XS` super-block for super-block (rows a multiple of 256); `q4_0`,
//!   `q8_0` and `iq4_nl` are their GGUF types block for block (rows a
//!   multiple of 32).
//! * Widened first: `int3`/`int2` with groups of 32 become `int4` codes
//!   exactly (then `Q4_1`), `int3k`/`int2k` become `int4k` (then `Q4_K`) —
//!   exact, but the file holds the wider format's bytes. `int5k` is `Q5_K`
//!   super-block for super-block (rows a multiple of 256).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use super::GgmlType;
use crate::block32::BlockLayout;
use crate::compact::{CompactLayout, SUPER};
use crate::grouped::GroupedLayout;
use crate::WeightFormat;

/// The GGUF type whose bytes are `format`'s for rows of `cols` values, if
/// one is.
pub fn same_bytes_type(format: WeightFormat, cols: usize) -> Option<GgmlType> {
    match format {
        WeightFormat::F32 => Some(GgmlType::F32),
        WeightFormat::F16 => Some(GgmlType::F16),
        WeightFormat::Grouped(l) if l.bits() == 4 && l.group() == 32 && cols.is_multiple_of(32) => {
            Some(GgmlType::Q4_1)
        }
        WeightFormat::Compact(l) if cols.is_multiple_of(SUPER) && l.is_nonuniform() => {
            Some(GgmlType::Iq4Xs)
        }
        WeightFormat::Compact(l) if cols.is_multiple_of(SUPER) && l.bits() == 4 => {
            Some(GgmlType::Q4K)
        }
        WeightFormat::Compact(l) if cols.is_multiple_of(SUPER) && l.bits() == 5 => {
            Some(GgmlType::Q5K)
        }
        WeightFormat::Block(l) if cols.is_multiple_of(32) => Some(match l {
            BlockLayout::Q4_0 => GgmlType::Q4_0,
            BlockLayout::Q5_0 => GgmlType::Q5_0,
            BlockLayout::Q8_0 => GgmlType::Q8_0,
            BlockLayout::Iq4Nl => GgmlType::Iq4Nl,
        }),
        _ => None,
    }
}

/// How `format` reaches a GGUF type exactly for rows of `cols` values: the
/// type, and the wider format its codes are first widened to (if any).
pub fn exact_type(format: WeightFormat, cols: usize) -> Option<(GgmlType, Option<WeightFormat>)> {
    if let Some(ty) = same_bytes_type(format, cols) {
        return Some((ty, None));
    }
    let wider = match format {
        WeightFormat::Grouped(l) if l.group() == 32 && l.bits() < 4 => {
            WeightFormat::Grouped(GroupedLayout::new(4, 32).ok()?)
        }
        WeightFormat::Compact(l) if !l.is_nonuniform() && l.bits() < 4 => {
            WeightFormat::Compact(CompactLayout::new(4).ok()?)
        }
        _ => return None,
    };
    Some((same_bytes_type(wider, cols)?, Some(wider)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> WeightFormat {
        name.parse().unwrap()
    }

    #[test]
    fn each_layout_and_its_width_condition() {
        assert_eq!(same_bytes_type(f("int4"), 576), Some(GgmlType::Q4_1));
        assert_eq!(same_bytes_type(f("int4"), 48), None);
        assert_eq!(same_bytes_type(f("int4k"), 1536), Some(GgmlType::Q4K));
        assert_eq!(same_bytes_type(f("int4k"), 576), None);
        assert_eq!(same_bytes_type(f("int5k"), 768), Some(GgmlType::Q5K));
        assert_eq!(same_bytes_type(f("int5k"), 576), None);
        assert_eq!(same_bytes_type(f("nl4k"), 512), Some(GgmlType::Iq4Xs));
        assert_eq!(same_bytes_type(f("int3"), 576), None, "widening is not the same bytes");
        for name in ["int8", "int8g32", "int4g64", "int3g128"] {
            assert_eq!(exact_type(f(name), 512), None, "{name}");
        }
        assert_eq!(exact_type(f("int2"), 64), Some((GgmlType::Q4_1, Some(f("int4")))));
        assert_eq!(exact_type(f("int3k"), 256), Some((GgmlType::Q4K, Some(f("int4k")))));
        assert_eq!(exact_type(f("int3k"), 576), None);
        assert_eq!(exact_type(f("f16"), 7), Some((GgmlType::F16, None)));
        // Where the bytes are the same, the sizes agree.
        assert_eq!(same_bytes_type(f("q4_0"), 576), Some(GgmlType::Q4_0));
        assert_eq!(same_bytes_type(f("iq4_nl"), 48), None);
        for name in ["f32", "f16", "int4", "int4k", "nl4k", "q4_0", "q8_0", "iq4_nl"] {
            let ty = same_bytes_type(f(name), 1536).unwrap();
            assert_eq!(
                f(name).storage_bytes(3, 1536) as u64,
                3 * ty.row_bytes(1536).unwrap(),
                "{name}"
            );
        }
    }
}
