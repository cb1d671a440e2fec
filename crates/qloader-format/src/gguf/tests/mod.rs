//! Tests of the GGUF reader on files built in memory: round trips, malformed
//! input, and the de-quantizers against independent references.

mod builder;
mod dequant;
mod malformed;
mod roundtrip;

use std::io::Write;

use tempfile::NamedTempFile;

use super::parse::{parse, Parsed};
use super::{GgmlType, MetadataValue};
use builder::{f32_bytes, GgufBuilder};

/// Writes `bytes` to a temporary file (deleted when dropped).
fn write_temp(bytes: &[u8]) -> NamedTempFile {
    let mut f = NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

/// A small valid file: a few metadata types and three tensors of different
/// types, the last one ending exactly at the end of the file.
fn sample_builder() -> GgufBuilder {
    let q8: Vec<u8> = (0..2)
        .flat_map(|b| {
            let mut block = half::f16::from_f32(0.5 + b as f32).to_le_bytes().to_vec();
            block.extend((0..32).map(|i| (i as i8 - 16) as u8));
            block
        })
        .collect();
    let q41: Vec<u8> = {
        let mut block = half::f16::from_f32(0.25).to_le_bytes().to_vec();
        block.extend(half::f16::from_f32(-1.0).to_le_bytes());
        block.extend((0..16u8).map(|i| i | ((15 - i) << 4)));
        block
    };
    GgufBuilder::new()
        .kv("general.architecture", MetadataValue::String("llama".into()))
        .kv("llama.block_count", MetadataValue::U32(2))
        .kv("llama.rope.freq_base", MetadataValue::F32(10000.0))
        .kv(
            "tokenizer.ggml.tokens",
            MetadataValue::Array(vec![
                MetadataValue::String("<s>".into()),
                MetadataValue::String("a".into()),
            ]),
        )
        .tensor("norm.weight", &[4, 2], GgmlType::F32, f32_bytes(&[1., 2., 3., 4., 5., 6., 7., 8.]))
        .tensor("embd.weight", &[32, 2], GgmlType::Q8_0, q8)
        .tensor("out.weight", &[32], GgmlType::Q4_1, q41)
}

fn sample_bytes() -> Vec<u8> {
    sample_builder().build()
}

/// Parses in memory (no file): the reason on failure.
fn parse_bytes(bytes: &[u8]) -> Result<Parsed, String> {
    parse(bytes)
}
