//! Model containers and weight formats for QLoader.
//!
//! This crate is the bottom of the pipeline: it reads model files (safetensors
//! tensors, GGUF files, `config.json`, the files of a sentence-transformers
//! model directory), validates them completely before anything downstream touches
//! their data, and defines the storage formats of quantized weights (the
//! [`WeightFormat`] enum and the bit layouts in [`grouped`]). It also owns
//! QLoader's own container, the packed model ([`packed`]): its writer, its
//! validating reader, and the documented, versioned file format.
//!
//! It has no SIMD and no `unsafe` beyond the memory map.
#![deny(missing_docs)]

/// Implements `Serialize` and `Deserialize` for a type as its name: written
/// with `Display`, read with `FromStr` (whose error becomes the message).
macro_rules! serde_as_name {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <String as serde::Deserialize>::deserialize(deserializer)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub mod activation_format;
pub mod atomic_file;
pub mod block32;
pub mod compact;
pub mod error;
pub mod fallback;
pub mod fixtures;
pub mod format_family;
pub mod gguf;
pub mod grouped;
pub mod hf_checkpoint;
pub mod nested;
pub mod packed;
pub mod quant_method;
pub mod safetensors_file;
pub mod side_file;
pub mod weight_format;

pub use activation_format::ActivationFormat;
pub use error::FormatError;
pub use format_family::FormatFamily;
pub use gguf::{GgmlType, GgufFile, GgufTensorInfo, MetadataValue};
pub use hf_checkpoint::HfWeights;
pub use packed::{
    PackedFile, PackedMeta, PackedPlan, PackedWriter, PlanRef, PlanView, QuantRecord, SegmentRole,
    TensorParts, TensorView,
};
pub use quant_method::QuantMethod;
pub use safetensors_file::SafetensorsFile;
pub use weight_format::WeightFormat;
