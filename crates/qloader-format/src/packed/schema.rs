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

/// The whole header.
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
