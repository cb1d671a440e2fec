//! Malformed files are rejected at open with the file's name and a specific
//! reason (naming the tensor where there is one), never with a panic; damaged
//! tensor bytes are caught by the checksums.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{
    assert_header_edit_rejected, assert_rejected, open_err, patch, sample_meta, small_model, split,
    write_in_temp, Model,
};
use crate::error::FormatError;
use crate::packed::validate::parse_file;
use crate::packed::{PackedFile, PackedMeta, PREAMBLE_LEN};

fn tensor_mut<'a>(h: &'a mut Value, name: &str) -> &'a mut Value {
    h["tensors"].as_array_mut().unwrap().iter_mut().find(|t| t["name"] == name).unwrap()
}

fn small_bytes() -> Vec<u8> {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    std::fs::read(path).unwrap()
}

// ---- truncation -------------------------------------------------------------

#[test]
fn every_truncation_is_rejected() {
    let bytes = small_bytes();
    assert!(parse_file(&bytes).is_ok());
    for n in 0..bytes.len() {
        assert!(parse_file(&bytes[..n]).is_err(), "a prefix of {n} bytes was accepted");
    }
}

#[test]
fn truncated_files_name_the_file_and_the_cause() {
    let bytes = small_bytes();
    let (header_len, _, data_start) = split(&bytes);
    let header_end = PREAMBLE_LEN + header_len;
    let cuts: Vec<(usize, &str)> = vec![
        (0, "shorter than the 24-byte preamble"),
        (5, "shorter than the 24-byte preamble"),
        (8, "shorter than the 24-byte preamble"),
        (20, "shorter than the 24-byte preamble"),
        (24, "runs past the end of the file"),
        (PREAMBLE_LEN + header_len / 2, "runs past the end of the file"),
        (header_end - 1, "runs past the end of the file"),
        // Inside the blob, inside tensor `a`'s codes, between `a`'s segments,
        // inside tensor `b`, and one byte short.
        (data_start + 5, "blob `config.json`"),
        (data_start + 100, "tensor `a`"),
        (data_start + 300, "tensor `a`"),
        (data_start + 390, "tensor `b`"),
        (bytes.len() - 1, "tensor `b`"),
    ];
    for (cut, expected) in cuts {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.qlm");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = open_err(&path);
        let message = err.to_string();
        assert!(message.contains("truncated"), "cut at {cut}: {message}");
        assert!(message.contains(expected), "cut at {cut}: {message} lacks {expected:?}");
    }
}

#[test]
fn a_file_cut_inside_the_header_padding_is_truncated() {
    // Vary the header's length until it leaves padding before the data.
    for k in 0..2 {
        let mut model = small_model();
        model.meta.created_by.push_str(&"x".repeat(k));
        let (_dir, path) = write_in_temp(&model, "m.qlm");
        let bytes = std::fs::read(&path).unwrap();
        let (header_len, _, data_start) = split(&bytes);
        if PREAMBLE_LEN + header_len == data_start {
            continue;
        }
        std::fs::write(&path, &bytes[..data_start - 1]).unwrap();
        assert_rejected(&path, &["ends inside the padding after the header", "truncated"]);
        return;
    }
    panic!("no header length left padding");
}

#[test]
fn trailing_bytes_are_rejected() {
    for extra in [1usize, 64] {
        let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::iter::repeat_n(0u8, extra));
        std::fs::write(&path, &bytes).unwrap();
        assert_rejected(&path, &[&format!("{extra} bytes follow it")]);
    }
}

// ---- checksums --------------------------------------------------------------

#[test]
fn a_flipped_tensor_byte_fails_verification_naming_the_tensor() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    let bytes = std::fs::read(&path).unwrap();
    let (_, _, data_start) = split(&bytes);
    // Byte 7 of tensor `a`'s offsets (at 320 in the data section).
    let at = data_start + 320 + 7;
    patch(&path, at, &[bytes[at] ^ 0x10]);

    let file = PackedFile::open(&path).expect("checksums are not read at open");
    file.verify("b").unwrap();
    file.verify_blob("config.json").unwrap();
    for err in [file.verify("a").unwrap_err(), file.verify_all().unwrap_err()] {
        match &err {
            FormatError::ChecksumMismatch { kind, name, expected, actual, path: p } => {
                assert_eq!((*kind, name.as_str(), p.as_path()), ("tensor", "a", path.as_path()));
                assert_ne!(expected, actual);
            }
            other => panic!("unexpected error {other}"),
        }
        let message = err.to_string();
        assert!(message.contains("tensor `a`") && message.contains("checksum"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
}

#[test]
fn a_flipped_blob_byte_fails_verification_naming_the_blob() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    let bytes = std::fs::read(&path).unwrap();
    let (_, _, data_start) = split(&bytes);
    patch(&path, data_start + 3, &[!bytes[data_start + 3]]);
    let file = PackedFile::open(&path).unwrap();
    file.verify("a").unwrap();
    let err = file.verify_blob("config.json").unwrap_err();
    assert!(err.to_string().contains("blob `config.json`: checksum mismatch"), "{err}");
    let err = file.verify_all().unwrap_err();
    assert!(matches!(err, FormatError::ChecksumMismatch { kind: "blob", .. }), "{err}");
}

#[test]
fn a_wrong_checksum_in_the_header_fails_verification() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    super::rewrite_header(&path, |h| {
        let crc = tensor_mut(h, "b")["crc32"].as_u64().unwrap();
        tensor_mut(h, "b")["crc32"] = json!(crc ^ 1);
    });
    let file = PackedFile::open(&path).unwrap();
    file.verify("a").unwrap();
    assert!(file.verify("b").unwrap_err().to_string().contains("tensor `b`"));
}

// ---- preamble ---------------------------------------------------------------

#[test]
fn wrong_magic_is_rejected() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    patch(&path, 0, b"GGUF");
    assert_rejected(&path, &["wrong magic", "GGUF", "not a QLoader packed model"]);

    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.qlm");
    std::fs::write(&short, b"PK\x03").unwrap();
    assert_rejected(&short, &["wrong magic"]);
}

#[test]
fn another_version_is_rejected_clearly() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    patch(&path, 8, &7u32.to_le_bytes());
    let err = open_err(&path);
    assert!(
        matches!(err, FormatError::PackedVersion { found: 7, supported: 3, .. }),
        "unexpected error {err}"
    );
    assert!(err.to_string().contains("version 7, this build reads versions 1 to 3"), "{err}");
}

#[test]
fn unknown_flags_are_rejected() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    patch(&path, 12, &1u32.to_le_bytes());
    assert_rejected(&path, &["flags 0x1"]);
}

#[test]
fn header_length_larger_than_the_file_is_rejected() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    let len = std::fs::metadata(&path).unwrap().len();
    patch(&path, 16, &(len - 23).to_le_bytes());
    assert_rejected(&path, &["header length", "runs past the end of the file"]);
}

#[test]
fn absurd_header_lengths_are_rejected_without_allocating() {
    for header_len in [(64u64 << 20) + 1, u64::MAX] {
        let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
        patch(&path, 16, &header_len.to_le_bytes());
        let start = Instant::now();
        assert_rejected(&path, &["exceeds the limit of 67108864 bytes"]);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn header_length_shorter_than_the_json_is_rejected() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    let bytes = std::fs::read(&path).unwrap();
    let (header_len, _, _) = split(&bytes);
    patch(&path, 16, &(header_len as u64 - 1).to_le_bytes());
    assert_rejected(&path, &["invalid packed model"]);
}

#[test]
fn non_zero_header_padding_is_rejected() {
    for k in 0..2 {
        let mut model = small_model();
        model.meta.created_by.push_str(&"x".repeat(k));
        let (_dir, path) = write_in_temp(&model, "m.qlm");
        let bytes = std::fs::read(&path).unwrap();
        let (_, _, data_start) = split(&bytes);
        if bytes[data_start - 1] != 0 {
            continue; // The JSON's last byte, not padding.
        }
        patch(&path, data_start - 1, b" ");
        assert_rejected(&path, &["padding", "is not zero"]);
        return;
    }
    panic!("no header length left padding");
}

#[test]
fn a_header_that_is_not_utf8_or_not_json_is_rejected() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    let bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(7).position(|w| w == b"qloader").unwrap();
    patch(&path, at, &[0xff]);
    assert_rejected(&path, &["not UTF-8"]);

    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    patch(&path, PREAMBLE_LEN, b"[");
    assert_rejected(&path, &["not a valid packed-model header"]);
}

// ---- header fields ----------------------------------------------------------

#[test]
fn wrong_schema_or_header_version_is_rejected() {
    assert_header_edit_rejected(
        |h| h["schema"] = json!("safetensors"),
        &["schema is `safetensors`"],
    );
    assert_header_edit_rejected(|h| h["version"] = json!(2), &["header says version 2"]);
}

#[test]
fn unknown_and_missing_fields_are_rejected() {
    assert_header_edit_rejected(|h| h["quantized"] = json!(true), &["unknown field `quantized`"]);
    assert_header_edit_rejected(
        |h| tensor_mut(h, "a")["transposed"] = json!(true),
        &["unknown field `transposed`"],
    );
    assert_header_edit_rejected(
        |h| h["tensors"][0]["segments"][0]["stride"] = json!(1),
        &["unknown field `stride`"],
    );
    assert_header_edit_rejected(
        |h| {
            h.as_object_mut().unwrap().remove("tensors");
        },
        &["missing field `tensors`"],
    );
    assert_header_edit_rejected(
        |h| {
            tensor_mut(h, "a").as_object_mut().unwrap().remove("crc32");
        },
        &["missing field `crc32`"],
    );
    assert_header_edit_rejected(
        |h| tensor_mut(h, "a")["crc32"] = json!(1u64 << 33),
        &["expected u32"],
    );
}

#[test]
fn a_malformed_plan_reference_is_rejected() {
    assert_header_edit_rejected(
        |h| h["plan"] = json!({ "path": "plan.json", "sha256": "ABCD" }),
        &["plan sha256 `ABCD`"],
    );
    assert_header_edit_rejected(
        |h| h["plan"] = json!({ "path": "plan.json", "sha256": "AB".repeat(32) }),
        &["64 lowercase hexadecimal digits"],
    );
    assert_header_edit_rejected(|h| h["plan"] = json!({ "path": "plan.json" }), &["sha256"]);
}

// ---- layout -----------------------------------------------------------------

#[test]
fn overlapping_segments_are_rejected() {
    assert_header_edit_rejected(
        |h| tensor_mut(h, "b")["segments"][0]["offset"] = json!(64),
        &["overlaps", "tensor `a` segment `codes`", "tensor `b` segment `data`"],
    );
    assert_header_edit_rejected(
        |h| tensor_mut(h, "a")["segments"][2]["offset"] = json!(256),
        &["overlaps", "tensor `a` segment `scales`"],
    );
}

#[test]
fn a_blob_overlapping_a_tensor_is_rejected() {
    assert_header_edit_rejected(
        |h| h["blobs"][0]["offset"] = json!(128),
        &["blob `config.json`", "overlaps", "tensor `a` segment `codes`"],
    );
}

#[test]
fn out_of_range_offsets_are_rejected() {
    assert_header_edit_rejected(
        |h| tensor_mut(h, "b")["segments"][0]["offset"] = json!(1 << 20),
        &["tensor `b`", "segment `data`", "run past its end"],
    );
    assert_header_edit_rejected(
        |h| tensor_mut(h, "b")["segments"][0]["offset"] = json!(u64::MAX - 63),
        &["tensor `b`", "run past its end"],
    );
    assert_header_edit_rejected(
        |h| {
            h["blobs"][0]["offset"] = json!(64);
            h["blobs"][0]["len"] = json!(u64::MAX);
        },
        &["blob `config.json`", "offset 64 + length 18446744073709551615 overflows"],
    );
    assert_header_edit_rejected(
        |h| h["blobs"][0]["len"] = json!(1u64 << 40),
        &["blob `config.json`", "run past its end"],
    );
}

#[test]
fn unaligned_offsets_are_rejected() {
    assert_header_edit_rejected(
        |h| tensor_mut(h, "b")["segments"][0]["offset"] = json!(385),
        &["tensor `b`", "segment `data`", "offset 385 is not a multiple of 64"],
    );
    assert_header_edit_rejected(
        |h| h["blobs"][0]["offset"] = json!(32),
        &["blob `config.json`", "offset 32 is not a multiple of 64"],
    );
}

#[test]
fn absurd_shapes_are_rejected() {
    let cases: Vec<(Value, &str)> = vec![
        (json!([1u64 << 32, 1u64 << 32]), "rows·cols overflows"),
        (json!([u64::MAX, 3]), "rows·cols overflows"),
        (json!([1u64 << 21, 1u64 << 20]), "more than the limit of 1099511627776"),
        (json!([0, 70]), "has a zero dimension"),
        (json!([3, 0]), "has a zero dimension"),
        (json!([3, 70, 1]), "has 3 dimensions, expected 2"),
        (json!([210]), "has 1 dimensions, expected 2"),
        (json!([]), "has 0 dimensions"),
    ];
    for (shape, expected) in cases {
        assert_header_edit_rejected(
            |h| tensor_mut(h, "a")["shape"] = shape,
            &["tensor `a`", expected],
        );
    }
    // Exactly at the element limit the shape is allowed; the segment length
    // then is what is wrong.
    assert_header_edit_rejected(
        |h| tensor_mut(h, "a")["shape"] = json!([1u64 << 20, 1u64 << 20]),
        &["tensor `a`", "segment `codes` is 144 bytes", "needs 549755813888"],
    );
    assert_header_edit_rejected(|h| tensor_mut(h, "a")["shape"] = json!([-1, 70]), &["invalid"]);
}

#[test]
fn wrong_segment_lengths_are_rejected() {
    assert_header_edit_rejected(
        |h| tensor_mut(h, "a")["segments"][0]["len"] = json!(143),
        &["tensor `a`", "segment `codes` is 143 bytes", "int4 with shape [3, 70] needs 144"],
    );
    assert_header_edit_rejected(
        |h| tensor_mut(h, "a")["shape"] = json!([4, 70]),
        &["tensor `a`", "needs 192"],
    );
    assert_header_edit_rejected(
        |h| tensor_mut(h, "b")["format"] = json!("f16"),
        &["tensor `b`", "segment `data` is 24 bytes", "needs 12"],
    );
}

#[test]
fn segment_roles_must_match_the_format() {
    assert_header_edit_rejected(
        |h| {
            tensor_mut(h, "a")["segments"].as_array_mut().unwrap().pop();
        },
        &["tensor `a`", "segment `offsets` is missing"],
    );
    assert_header_edit_rejected(
        |h| {
            let s = json!({ "role": "data", "offset": 448, "len": 4 });
            tensor_mut(h, "a")["segments"].as_array_mut().unwrap().push(s);
        },
        &["tensor `a`", "segment `data` does not belong to format int4"],
    );
    assert_header_edit_rejected(
        |h| {
            let s = json!({ "role": "codes", "offset": 448, "len": 144 });
            tensor_mut(h, "a")["segments"].as_array_mut().unwrap().push(s);
        },
        &["tensor `a`", "segment `codes` is listed twice"],
    );
    assert_header_edit_rejected(
        |h| tensor_mut(h, "a")["segments"][1]["role"] = json!("weights"),
        &["tensor `a`", "unknown segment role `weights`"],
    );
    assert_header_edit_rejected(
        |h| tensor_mut(h, "a")["segments"].as_array_mut().unwrap().swap(1, 2),
        &["tensor `a`", "order codes, scales, offsets"],
    );
    assert_header_edit_rejected(
        |h| tensor_mut(h, "b")["segments"][0]["role"] = json!("codes"),
        &["tensor `b`", "segment `codes` does not belong to format f32"],
    );
}

#[test]
fn duplicate_and_empty_names_are_rejected() {
    assert_header_edit_rejected(
        |h| tensor_mut(h, "b")["name"] = json!("a"),
        &["tensor `a`", "two tensors have this name"],
    );
    assert_header_edit_rejected(
        |h| {
            let b = h["blobs"][0].clone();
            h["blobs"].as_array_mut().unwrap().push(b);
        },
        &["two blobs are named `config.json`"],
    );
    assert_header_edit_rejected(
        |h| tensor_mut(h, "b")["name"] = json!(""),
        &["a tensor has an empty name"],
    );
    assert_header_edit_rejected(
        |h| h["blobs"][0]["name"] = json!(""),
        &["a blob has an empty name"],
    );
}

#[test]
fn unknown_formats_are_rejected() {
    for bad in ["int5", "int4g48", "bf17", ""] {
        assert_header_edit_rejected(
            |h| tensor_mut(h, "a")["format"] = json!(bad),
            &["tensor `a`", &format!("unknown format `{bad}`")],
        );
    }
}

#[test]
fn format_aliases_of_the_same_layout_are_accepted() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    super::rewrite_header(&path, |h| tensor_mut(h, "a")["format"] = json!("int4g32"));
    let file = PackedFile::open(&path).unwrap();
    assert_eq!(file.tensor("a").unwrap().format(), crate::WeightFormat::int4());
    file.verify_all().unwrap();
}

#[test]
fn a_file_with_an_edited_header_opens_when_the_edit_is_benign() {
    // The helper itself: rewriting without a change keeps the file valid,
    // even when the header's length changes.
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    super::rewrite_header(&path, |h| h["created_by"] = json!("x".repeat(200)));
    let file = PackedFile::open(&path).unwrap();
    assert_eq!(file.created_by().len(), 200);
    file.verify_all().unwrap();
}

#[test]
fn an_absent_plan_means_none() {
    let (_dir, path) = write_in_temp(&super::sample_model(), "m.qlm");
    assert!(PackedFile::open(&path).unwrap().plan().is_some());
    super::rewrite_header(&path, |h| {
        h.as_object_mut().unwrap().remove("plan");
    });
    assert_eq!(PackedFile::open(&path).unwrap().plan(), None);
}

#[test]
fn quantization_records_are_optional_and_checked() {
    let (_dir, path) = write_in_temp(&super::sample_model(), "m.qlm");
    assert!(PackedFile::open(&path).unwrap().quantization().is_some());
    // Files written before the record existed have none.
    super::rewrite_header(&path, |h| {
        h.as_object_mut().unwrap().remove("quantization");
    });
    assert_eq!(PackedFile::open(&path).unwrap().quantization(), None);
    // An unknown method is an error that names it.
    super::rewrite_header(&path, |h| {
        h["quantization"] = json!({ "method": "awq", "calibration": null });
    });
    let err = PackedFile::open(&path).unwrap_err().to_string();
    assert!(err.contains("awq"), "{err}");
}

// ---- fuzzing ----------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any damage to any bytes is an error or a file whose every accessor
    /// works, never a panic.
    #[test]
    fn damaged_files_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = SMALL.with(|b| b.clone());
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(parsed) = parse_file(&bytes) {
            let data = &bytes[parsed.data_start..];
            for t in &parsed.header.tensors {
                for v in &t.variants {
                    for (_, range) in &v.segments {
                        prop_assert!(data.get(range.clone()).is_some());
                    }
                }
            }
        }
    }
}

thread_local! {
    static SMALL: Vec<u8> = small_bytes();
}

#[test]
fn a_model_with_many_tensors_opens_quickly() {
    let tensors = (0..2000)
        .map(|i| {
            super::OwnedTensor::new(&format!("t{i}"), crate::WeightFormat::grouped(2, 32), 1, 32, i)
        })
        .collect();
    let model =
        Model { meta: PackedMeta { plan: None, ..sample_meta() }, blobs: Vec::new(), tensors };
    let (_dir, path) = write_in_temp(&model, "many.qlm");
    let start = Instant::now();
    let file = PackedFile::open(&path).unwrap();
    assert!(start.elapsed() < Duration::from_secs(2), "open took {:?}", start.elapsed());
    assert_eq!(file.tensors().len(), 2000);
    file.verify_all().unwrap();
}
