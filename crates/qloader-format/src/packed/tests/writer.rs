//! The writer checks its input, names the target in every error, and never
//! leaves a file or a temporary behind when it fails.

use std::path::Path;

use super::{sample_model, small_model, OwnedTensor};
use crate::error::FormatError;
use crate::packed::{PackedFile, PackedMeta, PackedWriter, PlanRef, TensorParts};
use crate::WeightFormat;

/// Names of the entries of `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that writing `writer` into a fresh directory fails with an error
/// naming the target and containing `expected`, and leaves the directory
/// empty.
fn assert_write_fails(writer: &PackedWriter<'_>, expected: &[&str]) -> FormatError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.qlm");
    let err = writer.write(&path).expect_err("an invalid model was written");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message} does not name the file");
    for e in expected {
        assert!(message.contains(e), "error {message:?} does not contain {e:?}");
    }
    assert_eq!(entries(dir.path()), Vec::<String>::new(), "a file or temporary was left behind");
    err
}

#[test]
fn wrong_segment_lengths_are_refused() {
    let t = OwnedTensor::new("w", WeightFormat::grouped(3, 64), 3, 70, 1);
    let short = &t.segments[0][..t.segments[0].len() - 1];
    let mut w = PackedWriter::new(PackedMeta::default());
    let layout = crate::grouped::GroupedLayout::new(3, 64).unwrap();
    w.add_tensor(
        "w",
        3,
        70,
        TensorParts::Grouped {
            layout,
            codes: short,
            scales: &t.segments[1],
            offsets: &t.segments[2],
        },
    );
    let err = assert_write_fails(&w, &["tensor `w`", "segment `codes` is 107 bytes", "needs 108"]);
    assert!(matches!(err, FormatError::PackedTensor { ref tensor, .. } if tensor == "w"), "{err}");

    // The shape is checked against the parts too.
    let t = OwnedTensor::new("v", WeightFormat::Int8PerChannel, 3, 70, 2);
    let mut w = PackedWriter::new(PackedMeta::default());
    w.add_tensor("v", 4, 70, t.parts());
    assert_write_fails(&w, &["tensor `v`", "segment `codes` is 210 bytes", "needs 280"]);
}

#[test]
fn duplicate_and_empty_names_are_refused() {
    let t = OwnedTensor::new("w", WeightFormat::F16, 2, 2, 1);
    let mut w = PackedWriter::new(PackedMeta::default());
    w.add_tensor("w", 2, 2, t.parts()).add_tensor("w", 2, 2, t.parts());
    assert_write_fails(&w, &["tensor `w`", "two tensors have this name"]);

    let mut w = PackedWriter::new(PackedMeta::default());
    w.add_blob("config.json", b"{}").add_blob("config.json", b"[]");
    assert_write_fails(&w, &["two blobs are named `config.json`"]);

    let mut w = PackedWriter::new(PackedMeta::default());
    w.add_tensor("", 2, 2, t.parts());
    assert_write_fails(&w, &["empty name"]);
}

#[test]
fn bad_shapes_are_refused() {
    let mut w = PackedWriter::new(PackedMeta::default());
    w.add_tensor("z", 0, 4, TensorParts::F32 { data: &[] });
    assert_write_fails(&w, &["tensor `z`", "zero dimension"]);

    let mut w = PackedWriter::new(PackedMeta::default());
    w.add_tensor("huge", 1 << 30, 1 << 30, TensorParts::F32 { data: &[0; 64] });
    assert_write_fails(&w, &["tensor `huge`", "more than the limit"]);

    let mut w = PackedWriter::new(PackedMeta::default());
    w.add_tensor("overflow", usize::MAX, 2, TensorParts::F16 { data: &[0; 4] });
    assert_write_fails(&w, &["tensor `overflow`", "overflows"]);
}

#[test]
fn a_bad_plan_digest_is_refused() {
    let meta = PackedMeta {
        plan: Some(PlanRef { path: "plan.json".to_owned(), sha256: "not-a-digest".to_owned() }),
        quantization: None,
        ..PackedMeta::default()
    };
    assert_write_fails(&PackedWriter::new(meta), &["plan sha256 `not-a-digest`"]);
}

#[test]
fn a_missing_directory_is_an_error_naming_the_file() {
    let model = small_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("out.qlm");
    let err = model.writer().write(&path).unwrap_err();
    assert!(matches!(err, FormatError::Write { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn a_failed_rename_leaves_no_temporary() {
    // The target is a non-empty directory: the whole file is written to the
    // temporary, then the rename fails.
    let model = sample_model();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.qlm");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let err = model.writer().write(&target).unwrap_err();
    assert!(matches!(err, FormatError::Write { .. }), "{err}");
    assert!(err.to_string().contains("out.qlm"), "{err}");
    assert_eq!(entries(dir.path()), ["out.qlm"]);
    assert_eq!(entries(&target), ["keep"]);
}

#[test]
fn a_failed_write_keeps_the_previous_file() {
    let model = small_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.qlm");
    model.write(&path);
    let before = std::fs::read(&path).unwrap();

    let mut w = model.writer();
    w.add_tensor("a", 1, 1, TensorParts::F32 { data: &[0; 4] });
    let err = w.write(&path).unwrap_err();
    assert!(err.to_string().contains("two tensors have this name"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(entries(dir.path()), ["m.qlm"]);
    PackedFile::open(&path).unwrap().verify_all().unwrap();
}

#[test]
fn a_path_without_a_file_name_is_refused() {
    let err = small_model().writer().write(Path::new("/")).unwrap_err();
    assert!(matches!(err, FormatError::Write { .. }), "{err}");
}
