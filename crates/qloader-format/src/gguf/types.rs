//! The GGML tensor element types a GGUF file can name: their numeric ids,
//! their names, and the size of one block of each (how many elements it holds
//! and how many bytes it takes), with overflow-checked row sizes.
//!
//! Ids and block sizes follow ggml's type table (`ggml.h`, `ggml-common.h`).
//! Ids that ggml has retired (4, 5, 31-33, 36-38) are unknown here.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;

/// Elements in a K-quant super-block.
const QK_K: usize = 256;

/// A GGML tensor element type, as stored in a GGUF tensor info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GgmlType {
    /// IEEE-754 single precision.
    F32,
    /// IEEE-754 half precision.
    F16,
    /// 32 elements: an f16 scale and 4-bit codes offset by 8.
    Q4_0,
    /// 32 elements: f16 scale and minimum, 4-bit codes.
    Q4_1,
    /// 32 elements: an f16 scale and 5-bit codes offset by 16.
    Q5_0,
    /// 32 elements: f16 scale and minimum, 5-bit codes.
    Q5_1,
    /// 32 elements: an f16 scale and signed 8-bit codes.
    Q8_0,
    /// 32 elements: f16 scale, f16 scaled sum, signed 8-bit codes.
    Q8_1,
    /// 256-element super-block of 2-bit codes with 4-bit sub-block scales and minimums.
    Q2K,
    /// 256-element super-block of 3-bit codes with 6-bit sub-block scales.
    Q3K,
    /// 256-element super-block of 4-bit codes with 6-bit sub-block scales and minimums.
    Q4K,
    /// 256-element super-block of 5-bit codes with 6-bit sub-block scales and minimums.
    Q5K,
    /// 256-element super-block of 6-bit codes with 8-bit sub-block scales.
    Q6K,
    /// 256-element super-block: an f32 scale, signed 8-bit codes and group sums.
    Q8K,
    /// Importance-matrix 2-bit quantization (2.06 bits per weight).
    Iq2Xxs,
    /// Importance-matrix 2-bit quantization (2.31 bits per weight).
    Iq2Xs,
    /// Importance-matrix 3-bit quantization (3.06 bits per weight).
    Iq3Xxs,
    /// Importance-matrix 1-bit quantization (1.56 bits per weight).
    Iq1S,
    /// Non-linear 4-bit quantization in 32-element blocks.
    Iq4Nl,
    /// Importance-matrix 3-bit quantization (3.44 bits per weight).
    Iq3S,
    /// Importance-matrix 2-bit quantization (2.56 bits per weight).
    Iq2S,
    /// Non-linear 4-bit quantization in 256-element super-blocks.
    Iq4Xs,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// IEEE-754 double precision.
    F64,
    /// Importance-matrix 1-bit quantization (1.75 bits per weight).
    Iq1M,
    /// bfloat16.
    BF16,
    /// Ternary quantization (1.69 bits per weight).
    TQ1_0,
    /// Ternary quantization (2.06 bits per weight).
    TQ2_0,
    /// Microscaling FP4: 32 E2M1 values sharing an E8M0 exponent.
    MXFP4,
    /// NVIDIA FP4: 64 E2M1 values in four groups with E4M3 scales.
    NVFP4,
    /// 128 elements: an f16 scale and 1-bit codes.
    Q1_0,
    /// 64 elements: an f16 scale and 2-bit codes.
    Q2_0,
}

/// A tensor type id that is not in [`GgmlType::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown tensor type {0}")]
pub struct UnknownGgmlType(pub u32);

impl GgmlType {
    /// Every type this reader knows, in id order.
    pub const ALL: [GgmlType; 35] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::Q8K,
        GgmlType::Iq2Xxs,
        GgmlType::Iq2Xs,
        GgmlType::Iq3Xxs,
        GgmlType::Iq1S,
        GgmlType::Iq4Nl,
        GgmlType::Iq3S,
        GgmlType::Iq2S,
        GgmlType::Iq4Xs,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::Iq1M,
        GgmlType::BF16,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
        GgmlType::NVFP4,
        GgmlType::Q1_0,
        GgmlType::Q2_0,
    ];

    /// The numeric id stored in GGUF tensor infos.
    pub fn id(self) -> u32 {
        self.info().0
    }

    /// The conventional name (`"Q4_1"`, `"Q6_K"`, `"BF16"`, `"IQ2_XXS"`, ...).
    pub fn name(self) -> &'static str {
        self.info().1
    }

    /// Elements in one block (1 for the plain float and integer types).
    pub fn block_elements(self) -> usize {
        self.info().2
    }

    /// Bytes one block occupies.
    pub fn block_bytes(self) -> usize {
        self.info().3
    }

    /// Whether this is a block-quantized type (rather than plain floats or integers).
    pub fn is_quantized(self) -> bool {
        self.block_elements() > 1
    }

    /// Bytes taken by `elements` consecutive elements (one row), which must be a
    /// whole number of blocks.
    pub fn row_bytes(self, elements: u64) -> Result<u64, String> {
        let block = self.block_elements() as u64;
        if !elements.is_multiple_of(block) {
            return Err(format!(
                "{elements} elements is not a multiple of the {} block size {block}",
                self.name()
            ));
        }
        (elements / block).checked_mul(self.block_bytes() as u64).ok_or_else(|| {
            format!("{elements} elements of {} overflow a 64-bit byte count", self.name())
        })
    }

    /// `(id, name, block elements, block bytes)`.
    fn info(self) -> (u32, &'static str, usize, usize) {
        use GgmlType as T;
        match self {
            T::F32 => (0, "F32", 1, 4),
            T::F16 => (1, "F16", 1, 2),
            T::Q4_0 => (2, "Q4_0", 32, 2 + 16),
            T::Q4_1 => (3, "Q4_1", 32, 2 + 2 + 16),
            T::Q5_0 => (6, "Q5_0", 32, 2 + 4 + 16),
            T::Q5_1 => (7, "Q5_1", 32, 2 + 2 + 4 + 16),
            T::Q8_0 => (8, "Q8_0", 32, 2 + 32),
            T::Q8_1 => (9, "Q8_1", 32, 2 + 2 + 32),
            T::Q2K => (10, "Q2_K", QK_K, QK_K / 16 + QK_K / 4 + 2 + 2),
            T::Q3K => (11, "Q3_K", QK_K, QK_K / 8 + QK_K / 4 + 12 + 2),
            T::Q4K => (12, "Q4_K", QK_K, 2 + 2 + 12 + QK_K / 2),
            T::Q5K => (13, "Q5_K", QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2),
            T::Q6K => (14, "Q6_K", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2),
            T::Q8K => (15, "Q8_K", QK_K, 4 + QK_K + 2 * (QK_K / 16)),
            T::Iq2Xxs => (16, "IQ2_XXS", QK_K, 2 + 2 * (QK_K / 8)),
            T::Iq2Xs => (17, "IQ2_XS", QK_K, 2 + 2 * (QK_K / 8) + QK_K / 32),
            T::Iq3Xxs => (18, "IQ3_XXS", QK_K, 2 + 3 * (QK_K / 8)),
            T::Iq1S => (19, "IQ1_S", QK_K, 2 + QK_K / 8 + 2 * (QK_K / 32)),
            T::Iq4Nl => (20, "IQ4_NL", 32, 2 + 16),
            T::Iq3S => (21, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64),
            T::Iq2S => (22, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 32),
            T::Iq4Xs => (23, "IQ4_XS", QK_K, 2 + 2 + QK_K / 64 + QK_K / 2),
            T::I8 => (24, "I8", 1, 1),
            T::I16 => (25, "I16", 1, 2),
            T::I32 => (26, "I32", 1, 4),
            T::I64 => (27, "I64", 1, 8),
            T::F64 => (28, "F64", 1, 8),
            T::Iq1M => (29, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
            T::BF16 => (30, "BF16", 1, 2),
            T::TQ1_0 => (34, "TQ1_0", QK_K, (QK_K - 4 * QK_K / 64) / 5 + QK_K / 64 + 2),
            T::TQ2_0 => (35, "TQ2_0", QK_K, QK_K / 4 + 2),
            T::MXFP4 => (39, "MXFP4", 32, 1 + 16),
            T::NVFP4 => (40, "NVFP4", 64, 4 + 32),
            T::Q1_0 => (41, "Q1_0", 128, 2 + 16),
            T::Q2_0 => (42, "Q2_0", 64, 2 + 16),
        }
    }
}

impl TryFrom<u32> for GgmlType {
    type Error = UnknownGgmlType;

    fn try_from(id: u32) -> Result<Self, Self::Error> {
        GgmlType::ALL.into_iter().find(|t| t.id() == id).ok_or(UnknownGgmlType(id))
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for (i, t) in GgmlType::ALL.iter().enumerate() {
            assert_eq!(GgmlType::try_from(t.id()), Ok(*t));
            for u in &GgmlType::ALL[i + 1..] {
                assert_ne!(t.id(), u.id());
                assert_ne!(t.name(), u.name());
            }
        }
        for retired in [4, 5, 31, 32, 33, 36, 37, 38, 43, 99, u32::MAX] {
            assert_eq!(GgmlType::try_from(retired), Err(UnknownGgmlType(retired)));
        }
        assert_eq!(UnknownGgmlType(99).to_string(), "unknown tensor type 99");
    }

    #[test]
    fn block_sizes_match_ggml() {
        let expect = [
            (GgmlType::F32, 1, 4),
            (GgmlType::F16, 1, 2),
            (GgmlType::BF16, 1, 2),
            (GgmlType::Q4_0, 32, 18),
            (GgmlType::Q4_1, 32, 20),
            (GgmlType::Q5_0, 32, 22),
            (GgmlType::Q5_1, 32, 24),
            (GgmlType::Q8_0, 32, 34),
            (GgmlType::Q8_1, 32, 36),
            (GgmlType::Q2K, 256, 84),
            (GgmlType::Q3K, 256, 110),
            (GgmlType::Q4K, 256, 144),
            (GgmlType::Q5K, 256, 176),
            (GgmlType::Q6K, 256, 210),
            (GgmlType::Q8K, 256, 292),
            (GgmlType::Iq2Xxs, 256, 66),
            (GgmlType::Iq2Xs, 256, 74),
            (GgmlType::Iq3Xxs, 256, 98),
            (GgmlType::Iq1S, 256, 50),
            (GgmlType::Iq4Nl, 32, 18),
            (GgmlType::Iq3S, 256, 110),
            (GgmlType::Iq2S, 256, 82),
            (GgmlType::Iq4Xs, 256, 136),
            (GgmlType::Iq1M, 256, 56),
            (GgmlType::TQ1_0, 256, 54),
            (GgmlType::TQ2_0, 256, 66),
            (GgmlType::MXFP4, 32, 17),
            (GgmlType::NVFP4, 64, 36),
            (GgmlType::Q1_0, 128, 18),
            (GgmlType::Q2_0, 64, 18),
        ];
        for (t, elems, bytes) in expect {
            assert_eq!((t.block_elements(), t.block_bytes()), (elems, bytes), "{t}");
        }
    }

    #[test]
    fn names_follow_the_gguf_convention() {
        assert_eq!(GgmlType::Q4_1.name(), "Q4_1");
        assert_eq!(GgmlType::Q6K.name(), "Q6_K");
        assert_eq!(GgmlType::Iq2Xxs.to_string(), "IQ2_XXS");
    }

    #[test]
    fn row_bytes_checks_blocks_and_overflow() {
        assert_eq!(GgmlType::Q4_1.row_bytes(64), Ok(40));
        assert_eq!(GgmlType::F32.row_bytes(3), Ok(12));
        let err = GgmlType::Q4K.row_bytes(100).unwrap_err();
        assert!(err.contains("not a multiple of the Q4_K block size 256"), "{err}");
        assert!(GgmlType::F64.row_bytes(u64::MAX).is_err());
    }
}
