//! Malformed files are rejected with specific reasons, quickly, without
//! panicking and without allocating from unchecked header fields.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::builder::{f32_bytes, put_string, GgufBuilder, TensorSpec};
use super::{parse_bytes, sample_builder, sample_bytes, write_temp};
use crate::error::FormatError;
use crate::gguf::{can_dequantize, dequantize, GgmlType, GgufFile, MetadataValue, MAGIC};

/// Magic, version and the two counts.
fn header(version: u32, tensors: u64, kvs: u64) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&tensors.to_le_bytes());
    b.extend_from_slice(&kvs.to_le_bytes());
    b
}

/// The reason `bytes` is rejected, checking it is rejected fast.
fn reject(bytes: &[u8]) -> String {
    let start = Instant::now();
    let reason = parse_bytes(bytes).map(|_| ()).expect_err("malformed file was accepted");
    assert!(start.elapsed() < Duration::from_secs(1), "rejecting took {:?}", start.elapsed());
    reason
}

fn assert_reason(bytes: &[u8], expected: &str) {
    let reason = reject(bytes);
    assert!(reason.contains(expected), "reason {reason:?} does not contain {expected:?}");
}

fn spec(name: &str, dims: &[u64], type_id: u32, data: Vec<u8>) -> TensorSpec {
    TensorSpec { name: name.into(), dims: dims.to_vec(), type_id, data, forced_offset: None }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample_bytes();
    assert!(parse_bytes(&bytes).is_ok());
    for n in 0..bytes.len() {
        assert!(parse_bytes(&bytes[..n]).is_err(), "prefix of {n} bytes was accepted");
    }
    for n in [0, 3, 4, 23, 24, bytes.len() - 1] {
        let file = write_temp(&bytes[..n]);
        match GgufFile::open(file.path()).unwrap_err() {
            FormatError::Gguf { path, reason } => {
                assert_eq!(path, file.path());
                assert!(!reason.is_empty());
            }
            other => panic!("unexpected error {other}"),
        }
    }
}

#[test]
fn truncated_tensor_data_names_the_tensor() {
    let bytes = sample_bytes();
    assert_reason(
        &bytes[..bytes.len() - 1],
        "tensor `out.weight`: 20 bytes of data at offset 128 (absolute",
    );
}

#[test]
fn wrong_magic_and_versions() {
    let mut b = header(3, 0, 0);
    b[3] = b'G';
    assert_reason(&b, "bad magic [47, 47, 55, 47], expected \"GGUF\"");
    assert_reason(&header(1, 0, 0), "GGUF version 1 is not supported");
    assert_reason(&header(4, 0, 0), "unknown GGUF version 4");
    assert_reason(&header(0, 0, 0), "unknown GGUF version 0");
    assert_reason(&header(3u32.swap_bytes(), 0, 0), "looks like a big-endian GGUF file");
    assert!(parse_bytes(&header(2, 0, 0)).is_ok());
    let file = write_temp(b"safetensors-ish");
    let msg = GgufFile::open(file.path()).unwrap_err().to_string();
    assert!(msg.contains("invalid GGUF file: bad magic"), "{msg}");
}

#[test]
fn absurd_counts_are_rejected_before_allocating() {
    let mut b = header(3, 1_000_000_000_000, 0);
    b.resize(200, 0);
    assert_reason(
        &b,
        "tensor count 1000000000000 cannot fit in the 176 bytes after the counts (at least 32 \
         bytes each; file 200 bytes, truncated or corrupt)",
    );
    assert_reason(&header(3, u64::MAX, 0), "tensor count 18446744073709551615 cannot fit");
    assert_reason(
        &header(3, 0, u64::MAX),
        "metadata key-value count 18446744073709551615 cannot fit in the 0 bytes",
    );
    // 13 bytes is the smallest possible entry: one more count than fits is rejected up front.
    let mut b = header(3, 0, 3);
    b.resize(24 + 2 * 13, 0);
    assert_reason(
        &b,
        "metadata key-value count 3 cannot fit in the 26 bytes after the counts (at least 13 \
         bytes each; file 50 bytes, truncated or corrupt)",
    );
}

#[test]
fn tensor_count_is_rechecked_after_the_metadata() {
    // Big metadata makes the count plausible for the file but not for what is left.
    let mut b = header(3, 3, 1);
    put_string(&mut b, "k");
    b.extend_from_slice(&8u32.to_le_bytes());
    put_string(&mut b, &"x".repeat(100));
    assert_reason(&b, "tensor count 3 cannot fit in the 0 bytes after the metadata");
}

#[test]
fn absurd_string_lengths_are_rejected() {
    let mut b = header(3, 0, 1);
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    b.extend_from_slice(b"abcde");
    assert_reason(
        &b,
        "metadata key #0: string length 18446744073709551615 runs past the end of the file \
         (offset 24, file 37 bytes)",
    );

    let mut b = header(3, 0, 1);
    put_string(&mut b, "general.name");
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    assert_reason(
        &b,
        "metadata key `general.name` (#0): string length 18446744073709551615 runs past the end",
    );

    let mut b = header(3, 1, 0);
    b.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
    b.resize(24 + 40, 0);
    assert_reason(&b, "tensor #0: name: string length 9223372036854775807 runs past the end");
}

#[test]
fn absurd_array_lengths_are_rejected() {
    for (elem, count) in [(0u32, u64::MAX), (8, u64::MAX / 8), (9, 1 << 40), (12, 3)] {
        let mut b = header(3, 0, 1);
        put_string(&mut b, "tokenizer.ggml.tokens");
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&elem.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&[0; 16]);
        assert_reason(
            &b,
            &format!("metadata key `tokenizer.ggml.tokens` (#0): array length {count} of "),
        );
    }
}

#[test]
fn bad_metadata_values_name_the_key() {
    let mut b = header(3, 0, 1);
    put_string(&mut b, "flag");
    b.extend_from_slice(&7u32.to_le_bytes());
    b.push(5);
    assert_reason(&b, "metadata key `flag` (#0): bool at offset");

    let mut b = header(3, 0, 1);
    put_string(&mut b, "odd");
    b.extend_from_slice(&42u32.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    assert_reason(&b, "metadata key `odd` (#0): unknown value type 42");

    let mut b = header(3, 0, 1);
    put_string(&mut b, "bad\u{0}");
    let n = b.len();
    b[n - 1] = 0xff;
    b.extend_from_slice(&[0; 8]);
    assert_reason(&b, "metadata key #0: string of 4 bytes at offset 32 is not valid UTF-8");
}

#[test]
fn duplicates_are_rejected() {
    let b = GgufBuilder::new()
        .kv("a", MetadataValue::U8(1))
        .kv("b", MetadataValue::U8(2))
        .kv("a", MetadataValue::U8(3))
        .build();
    assert_reason(&b, "metadata key `a` appears twice (#0 and #2)");

    let b = GgufBuilder::new()
        .tensor("w", &[1], GgmlType::F32, f32_bytes(&[1.0]))
        .tensor("w", &[1], GgmlType::F32, f32_bytes(&[2.0]))
        .build();
    assert_reason(&b, "tensor name `w` appears twice (#0 and #1)");
}

#[test]
fn unknown_tensor_type_names_the_tensor() {
    let b = GgufBuilder::new().raw_tensor(spec("blk.0.attn_q.weight", &[4], 99, vec![0; 16]));
    assert_reason(&b.build(), "tensor `blk.0.attn_q.weight`: unknown tensor type 99 (offset");
    let b = GgufBuilder::new().raw_tensor(spec("old", &[32], 4, vec![0; 16]));
    assert_reason(&b.build(), "tensor `old`: unknown tensor type 4");
}

#[test]
fn bad_dimensions_are_rejected() {
    let cases: [(&[u64], u32, &str); 6] = [
        (&[], 0, "tensor `t`: 0 dimensions, expected 1 to 4"),
        (&[1, 1, 1, 1, 1], 0, "tensor `t`: 5 dimensions, expected 1 to 4"),
        (&[4, 0], 0, "tensor `t`: dimension 1 is 0"),
        (&[1 << 32, 1 << 32, 1 << 32], 0, "overflow the element count"),
        (&[33, 2], GgmlType::Q8_0.id(), "33 elements is not a multiple of the Q8_0 block size 32"),
        (&[1 << 61, 4], GgmlType::F32.id(), "overflow the byte count"),
    ];
    for (dims, ty, expected) in cases {
        let b = GgufBuilder::new().raw_tensor(spec("t", dims, ty, vec![0; 64]));
        assert_reason(&b.build(), expected);
    }
}

#[test]
fn misplaced_tensor_data_is_rejected() {
    let base = || {
        GgufBuilder::new().tensor("a", &[8], GgmlType::F32, f32_bytes(&[0.0; 8])).tensor(
            "b",
            &[8],
            GgmlType::F32,
            f32_bytes(&[1.0; 8]),
        )
    };
    assert!(parse_bytes(&base().build()).is_ok());

    let mut misaligned = spec("c", &[8], 0, f32_bytes(&[2.0; 8]));
    misaligned.forced_offset = Some(16);
    assert_reason(
        &base().raw_tensor(misaligned).build(),
        "tensor `c`: data offset 16 is not a multiple of the alignment 32",
    );

    let mut overlapping = spec("c", &[8], 0, f32_bytes(&[2.0; 8]));
    overlapping.forced_offset = Some(32);
    assert_reason(
        &base().raw_tensor(overlapping).build(),
        "tensors `b` (data 32..64) and `c` (data 32..64) overlap",
    );

    let mut outside = spec("c", &[8], 0, f32_bytes(&[2.0; 8]));
    outside.forced_offset = Some(1 << 20);
    assert_reason(&base().raw_tensor(outside).build(), "tensor `c`: 32 bytes of data at offset");

    let mut wrapping = spec("c", &[8], 0, f32_bytes(&[2.0; 8]));
    wrapping.forced_offset = Some(u64::MAX - 31);
    assert_reason(&base().raw_tensor(wrapping).build(), "run past the end of the file");
}

#[test]
fn bad_alignment_is_rejected() {
    for (value, expected) in [
        (MetadataValue::U32(48), "`general.alignment` is 48, which is not a power of two"),
        (MetadataValue::U32(0), "`general.alignment` is 0, which is not a power of two"),
        (MetadataValue::String("32".into()), "`general.alignment` is string \"32\""),
        (MetadataValue::I32(-32), "`general.alignment` is i32 -32"),
    ] {
        let b = GgufBuilder::new().kv("general.alignment", value);
        assert_reason(&b.build(), expected);
    }
    let b = GgufBuilder::new().kv("general.alignment", MetadataValue::U64(1 << 40)).tensor(
        "a",
        &[1],
        GgmlType::F32,
        f32_bytes(&[1.0]),
    );
    assert_reason(&b.build(), "data section starts at offset 1099511627776");
    let b = GgufBuilder::new().kv("general.alignment", MetadataValue::U64(1 << 63)).tensor(
        "a",
        &[1],
        GgmlType::F32,
        f32_bytes(&[1.0]),
    );
    assert_reason(&b.build(), "data section starts at offset 9223372036854775808");
}

#[test]
fn empty_file_is_rejected_through_open() {
    let file = write_temp(&[]);
    let msg = GgufFile::open(file.path()).unwrap_err().to_string();
    assert!(msg.contains("invalid GGUF file: magic: 4 bytes at offset 0"), "{msg}");
    let missing = file.path().with_extension("does-not-exist");
    assert!(matches!(GgufFile::open(&missing), Err(FormatError::Io { .. })));
}

/// Parses `bytes` and, if accepted, de-quantizes every supported tensor.
fn parse_and_read_everything(bytes: &[u8]) {
    let Ok(parsed) = parse_bytes(bytes) else { return };
    for t in &parsed.tensors {
        let start = parsed.data_start + t.offset as usize;
        let data = &bytes[start..start + t.byte_len];
        let mut out = vec![0f32; t.elements()];
        let result = dequantize(t.ggml_type, data, &mut out);
        assert_eq!(result.is_ok(), can_dequantize(t.ggml_type), "{}", t.name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = sample_builder().build();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        parse_and_read_everything(&bytes);
    }

    #[test]
    fn flipped_header_bytes_never_panic(
        flips in prop::collection::vec((0usize..200, any::<u8>()), 1..4),
    ) {
        let mut bytes = sample_builder().build();
        for (i, value) in flips {
            if let Some(b) = bytes.get_mut(i) {
                *b ^= value;
            }
        }
        parse_and_read_everything(&bytes);
    }
}
