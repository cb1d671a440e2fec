//! Tests of the packed model: round trips of every format, the writer's
//! atomicity and input checks, and the reader's rejection of malformed files
//! (built by writing a valid file and editing its header or bytes).

mod malformed;
mod nested;
mod plans;
mod roundtrip;
mod writer;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{segment_lengths, PackedFile, PackedMeta, PackedWriter, PlanRef, TensorParts};
use super::{ALIGNMENT, PREAMBLE_LEN};
use crate::error::FormatError;
use crate::WeightFormat;

/// Deterministic bytes (a 64-bit LCG), different for each seed.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// A tensor whose bytes the test owns.
struct OwnedTensor {
    name: String,
    rows: usize,
    cols: usize,
    format: WeightFormat,
    /// In the format's segment order.
    segments: Vec<Vec<u8>>,
}

impl OwnedTensor {
    fn new(name: &str, format: WeightFormat, rows: usize, cols: usize, seed: u64) -> Self {
        let lengths = segment_lengths(format, rows as u64, cols as u64).unwrap();
        let segments = lengths
            .iter()
            .enumerate()
            .map(|(i, &(_, len))| bytes(len as usize, seed * 8 + i as u64))
            .collect();
        Self { name: name.to_owned(), rows, cols, format, segments }
    }

    fn parts(&self) -> TensorParts<'_> {
        let s = |i: usize| self.segments[i].as_slice();
        match self.format {
            WeightFormat::F32 => TensorParts::F32 { data: s(0) },
            WeightFormat::F16 => TensorParts::F16 { data: s(0) },
            WeightFormat::Int8PerChannel => {
                TensorParts::Int8PerChannel { codes: s(0), scales: s(1) }
            }
            WeightFormat::Grouped(layout) => {
                TensorParts::Grouped { layout, codes: s(0), scales: s(1), offsets: s(2) }
            }
            WeightFormat::Compact(layout) => TensorParts::Compact { layout, codes: s(0) },
            WeightFormat::Block(layout) => TensorParts::Block { layout, codes: s(0) },
        }
    }
}

/// A model whose bytes the test owns.
struct Model {
    meta: PackedMeta,
    blobs: Vec<(String, Vec<u8>)>,
    tensors: Vec<OwnedTensor>,
}

impl Model {
    fn writer(&self) -> PackedWriter<'_> {
        let mut w = PackedWriter::new(self.meta.clone());
        for (name, b) in &self.blobs {
            w.add_blob(name.clone(), b);
        }
        for t in &self.tensors {
            w.add_tensor(t.name.clone(), t.rows, t.cols, t.parts());
        }
        w
    }

    fn write(&self, path: &Path) -> u64 {
        self.writer().write(path).unwrap()
    }
}

/// Every format the crate knows.
fn all_formats() -> Vec<WeightFormat> {
    WeightFormat::all()
}

fn sample_meta() -> PackedMeta {
    PackedMeta {
        created_by: "qloader-format tests".to_owned(),
        architecture: "llama".to_owned(),
        config: json!({ "hidden_size": 70, "num_hidden_layers": 2, "rope_theta": 10000.0 }),
        plan: Some(PlanRef { path: "plans/plan.json".to_owned(), sha256: "ab".repeat(32) }),
        quantization: Some(crate::QuantRecord {
            method: crate::QuantMethod::Imatrix,
            calibration: Some("16 windows of a text".to_owned()),
        }),
    }
}

/// Every format at 3×70 (a group tail in every layout), a few other odd
/// shapes, and three blobs (one empty).
fn sample_model() -> Model {
    let mut tensors: Vec<OwnedTensor> = all_formats()
        .into_iter()
        .enumerate()
        .map(|(i, f)| OwnedTensor::new(&format!("layer.{i}.{}", f.name()), f, 3, 70, i as u64))
        .collect();
    tensors.push(OwnedTensor::new("tiny", WeightFormat::F32, 1, 1, 100));
    tensors.push(OwnedTensor::new("wide", WeightFormat::grouped(3, 128), 5, 129, 101));
    tensors.push(OwnedTensor::new("short", WeightFormat::grouped(2, 32), 7, 33, 102));
    tensors.push(OwnedTensor::new("exact", WeightFormat::grouped(4, 64), 2, 128, 103));
    tensors.push(OwnedTensor::new("bias", WeightFormat::F16, 1, 13, 104));
    let int4k = WeightFormat::Compact(crate::compact::CompactLayout::new(4).unwrap());
    tensors.push(OwnedTensor::new("super", int4k, 2, 576, 105));
    Model {
        meta: sample_meta(),
        blobs: vec![
            ("config.json".to_owned(), br#"{"model_type": "llama"}"#.to_vec()),
            ("tokenizer.json".to_owned(), bytes(1000, 7)),
            ("empty".to_owned(), Vec::new()),
        ],
        tensors,
    }
}

/// A small model whose layout tests can predict: blob `config.json` (10
/// bytes at offset 0), tensor `a` (int4, 3×70: segments at 64, 256, 320) and
/// tensor `b` (f32, 2×3: data at 384).
fn small_model() -> Model {
    Model {
        meta: PackedMeta { plan: None, ..sample_meta() },
        blobs: vec![("config.json".to_owned(), bytes(10, 1))],
        tensors: vec![
            OwnedTensor::new("a", WeightFormat::int4(), 3, 70, 2),
            OwnedTensor::new("b", WeightFormat::F32, 2, 3, 3),
        ],
    }
}

/// Writes `model` to `name` in a fresh directory.
fn write_in_temp(model: &Model, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    model.write(&path);
    (dir, path)
}

/// Header length, header JSON and data section start of a file's bytes.
fn split(file: &[u8]) -> (usize, Value, usize) {
    let header_len = u64::from_le_bytes(file[16..24].try_into().unwrap()) as usize;
    let json = serde_json::from_slice(&file[PREAMBLE_LEN..PREAMBLE_LEN + header_len]).unwrap();
    let align = ALIGNMENT as usize;
    let data_start = (PREAMBLE_LEN + header_len).div_ceil(align) * align;
    (header_len, json, data_start)
}

/// Rewrites the header JSON of the file at `path` with `edit`, keeping the
/// data section (offsets are relative to it, so they stay valid).
fn rewrite_header(path: &Path, edit: impl FnOnce(&mut Value)) {
    let file = std::fs::read(path).unwrap();
    let (_, mut header, data_start) = split(&file);
    edit(&mut header);
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = file[..16].to_vec();
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    let align = ALIGNMENT as usize;
    out.resize(out.len().div_ceil(align) * align, 0);
    out.extend_from_slice(&file[data_start..]);
    std::fs::write(path, out).unwrap();
}

/// Overwrites bytes of the file at `path` from `at`.
fn patch(path: &Path, at: usize, new: &[u8]) {
    let mut file = std::fs::read(path).unwrap();
    file[at..at + new.len()].copy_from_slice(new);
    std::fs::write(path, file).unwrap();
}

/// The error of opening `path`, checking that its message names the file.
fn open_err(path: &Path) -> FormatError {
    let err = PackedFile::open(path).expect_err("a malformed file was accepted");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message} does not name the file");
    err
}

/// Asserts that opening `path` fails with a message containing every one of
/// `expected`.
fn assert_rejected(path: &Path, expected: &[&str]) {
    let message = open_err(path).to_string();
    for e in expected {
        assert!(message.contains(e), "error {message:?} does not contain {e:?}");
    }
}

/// Writes the small model, edits its header with `edit` and asserts that
/// opening it fails with a message containing every one of `expected`.
fn assert_header_edit_rejected(edit: impl FnOnce(&mut Value), expected: &[&str]) {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    assert!(PackedFile::open(&path).is_ok(), "the unedited file must open");
    rewrite_header(&path, edit);
    assert_rejected(&path, expected);
}
