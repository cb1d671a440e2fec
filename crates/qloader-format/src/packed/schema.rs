//! The JSON header of a packed model exactly as it is serialized: field
//! names, types, and the rejection of unknown fields. Values are checked
//! against each other and against the file in `validate`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use serde::{Deserialize, Serialize};

use crate::QuantMethod;

/// The plan a packed model was quantized by: where it was and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRef {
    /// The plan file's path, as given when packing.
    pub path: String,
    /// SHA-256 of the plan file's bytes: 64 lowercase hexadecimal digits.
    pub sha256: String,
}

/// How the codes of a packed model's quantized tensors were chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantRecord {
    /// The method.
    pub method: QuantMethod,
    /// The calibration it used, in words (`None` for round to nearest).
    pub calibration: Option<String>,
}

/// The whole header of a version 1 file: one stored form per tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeader {
    pub schema: String,
    pub version: u32,
    pub created_by: String,
    pub architecture: String,
    pub config: serde_json::Value,
    pub plan: Option<PlanRef>,
    /// Absent in files written before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantRecord>,
    pub blobs: Vec<RawBlob>,
    pub tensors: Vec<RawTensor>,
}

/// One blob: opaque bytes in the data section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBlob {
    pub name: String,
    pub offset: u64,
    pub len: u64,
    pub crc32: u32,
}

/// One tensor: its shape, format name and segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTensor {
    pub name: String,
    pub shape: Vec<u64>,
    pub format: String,
    pub segments: Vec<RawSegment>,
    pub crc32: u32,
}

/// One segment of a tensor (role kept as text so an unknown role can be
/// reported with the tensor's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSegment {
    pub role: String,
    pub offset: u64,
    pub len: u64,
}

/// The whole header of a version 2 file: each tensor has one or more
/// variants (stored forms), and each plan picks one variant per tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaderV2 {
    pub schema: String,
    pub version: u32,
    pub created_by: String,
    pub architecture: String,
    pub config: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantRecord>,
    pub blobs: Vec<RawBlob>,
    pub tensors: Vec<RawTensorV2>,
    pub plans: Vec<RawPlan>,
}

/// One tensor of a version 2 file: its shape and its variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTensorV2 {
    pub name: String,
    pub shape: Vec<u64>,
    pub variants: Vec<RawVariant>,
}

/// One stored form of a tensor: a format, its segments and their CRC-32;
/// for a nested variant, the index of the variant its bit planes refine
/// (see [`crate::nested`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariant {
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<u64>,
    /// The loss a plan predicted for the tensor in this variant (version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_loss: Option<f64>,
    pub segments: Vec<RawSegment>,
    pub crc32: u32,
}

/// One plan of a version 2 file: a name, what it costs and is predicted to
/// lose, and the index of the variant it loads for every tensor (in the
/// order of `tensors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlan {
    pub name: String,
    pub bits_per_weight: f64,
    pub bytes: u64,
    pub predicted_loss: Option<f64>,
    pub plan: Option<PlanRef>,
    pub variants: Vec<u64>,
}

impl From<RawTensor> for RawTensorV2 {
    fn from(t: RawTensor) -> Self {
        RawTensorV2 {
            name: t.name,
            shape: t.shape,
            variants: vec![RawVariant {
                format: t.format,
                base: None,
                predicted_loss: None,
                segments: t.segments,
                crc32: t.crc32,
            }],
        }
    }
}
