//! Version 2 files: several variants per tensor and plans that pick one
//! each. Round trips (every plan's tensors read back byte for byte, the
//! shared variants stored once) and the malformed-header classes of plans
//! and variants.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::{assert_rejected, rewrite_header, sample_meta, split, OwnedTensor};
use crate::packed::{PackedFile, PackedMeta, PackedPlan, PackedWriter};
use crate::WeightFormat;

/// Tensor `w` in int4 and int8 and int2, tensor `n` (f32) in one form;
/// plans `small` (int2), `mid` (int4) and `big` (int8).
struct MultiModel {
    w: Vec<OwnedTensor>,
    n: OwnedTensor,
}

fn multi_model() -> MultiModel {
    let formats =
        [WeightFormat::int4(), WeightFormat::grouped(8, 32), WeightFormat::grouped(2, 32)];
    MultiModel {
        w: formats
            .iter()
            .enumerate()
            .map(|(i, &f)| OwnedTensor::new("w", f, 3, 70, i as u64))
            .collect(),
        n: OwnedTensor::new("n", WeightFormat::F32, 1, 70, 9),
    }
}

fn plan(name: &str, bits: f64, format: WeightFormat) -> PackedPlan {
    PackedPlan {
        name: name.to_owned(),
        bits_per_weight: bits,
        predicted_loss: Some(1.0 / bits),
        plan: None,
        formats: BTreeMap::from([("w".to_owned(), format)]),
        tensor_losses: BTreeMap::new(),
    }
}

fn plans() -> Vec<PackedPlan> {
    vec![
        plan("small", 3.0, WeightFormat::grouped(2, 32)),
        plan("mid", 5.0, WeightFormat::int4()),
        plan("big", 9.0, WeightFormat::grouped(8, 32)),
    ]
}

fn writer<'a>(m: &'a MultiModel, plans: &[PackedPlan]) -> PackedWriter<'a> {
    let mut w = PackedWriter::new(PackedMeta { plan: None, ..sample_meta() });
    w.add_blob("config.json", b"{}");
    for t in &m.w {
        w.add_variant("w", t.rows, t.cols, t.parts());
    }
    w.add_tensor("n", 1, 70, m.n.parts());
    for p in plans {
        w.add_plan(p.clone());
    }
    w
}

fn write_multi() -> (tempfile::TempDir, PathBuf, MultiModel) {
    let m = multi_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("multi.qlm");
    writer(&m, &plans()).write(&path).unwrap();
    (dir, path, m)
}

#[test]
fn every_plan_reads_back_its_variants() {
    let (_dir, path, m) = write_multi();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 2);
    let mut file = PackedFile::open(&path).unwrap();
    assert_eq!(file.version(), 2);
    file.verify_all().unwrap();
    let names: Vec<&str> = file.plans().map(|p| p.name()).collect();
    assert_eq!(names, ["small", "mid", "big"]);
    // The first plan is selected at open.
    assert_eq!(file.tensor("w").unwrap().format(), WeightFormat::grouped(2, 32));
    for (i, expected) in [2usize, 0, 1].into_iter().enumerate() {
        let chosen = file.select_plan(i).unwrap();
        assert_eq!(chosen.index(), i);
        let w = file.tensor("w").unwrap();
        assert_eq!(w.variant_count(), 3);
        assert_eq!(w.format(), m.w[expected].format);
        let segments: Vec<&[u8]> = w.segments().map(|(_, s)| s).collect();
        let owned: Vec<&[u8]> = m.w[expected].segments.iter().map(Vec::as_slice).collect();
        assert_eq!(segments, owned);
        let n = file.tensor("n").unwrap();
        assert_eq!(n.segments().next().unwrap().1, m.n.segments[0].as_slice());
        let plan = file.selected_plan();
        assert_eq!(plan.bytes(), (w.byte_len() + n.byte_len()) as u64);
        assert_eq!(plan.tensors().len(), 2);
        file.verify("w").unwrap();
    }
    assert!(file.select_plan(3).is_none());
    assert_eq!(file.selected_plan().name(), "big", "a refused selection changes nothing");
    let big = file.plans().nth(2).unwrap();
    assert_eq!(big.bits_per_weight(), Some(9.0));
    assert_eq!(big.predicted_loss(), Some(1.0 / 9.0));
    // Each variant once: the data section holds three forms of `w` and one of `n`.
    let stored: usize = file.all_variants().map(|v| v.byte_len()).sum();
    let owned: usize = m.w.iter().chain([&m.n]).flat_map(|t| &t.segments).map(Vec::len).sum();
    assert_eq!(stored, owned);
}

#[test]
fn a_single_plan_with_single_variants_is_version_1() {
    let m = multi_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.qlm");
    let mut w = PackedWriter::new(sample_meta());
    w.add_tensor("w", 3, 70, m.w[0].parts());
    w.write(&path).unwrap();
    let file = PackedFile::open(&path).unwrap();
    assert_eq!(file.version(), 1);
    assert_eq!(file.plans().len(), 1);
    let only = file.selected_plan();
    assert_eq!((only.name(), only.bits_per_weight()), ("", None));
    assert_eq!(only.bytes(), file.tensor("w").unwrap().byte_len() as u64);
    assert_eq!(file.plan(), sample_meta().plan.as_ref());
}

#[test]
fn the_writer_refuses_plans_it_cannot_resolve() {
    let m = multi_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.qlm");
    let cases: Vec<(Vec<PackedPlan>, &str)> = vec![
        (
            vec![plan("x", 3.0, WeightFormat::F16)],
            "plan `x` loads it as f16, a variant it does not have",
        ),
        (
            vec![PackedPlan { formats: BTreeMap::new(), ..plan("x", 3.0, WeightFormat::F16) }],
            "plan `x` gives no format for it, and it has 3 variants",
        ),
        (
            vec![PackedPlan {
                formats: BTreeMap::from([
                    ("w".to_owned(), WeightFormat::int4()),
                    ("q".to_owned(), WeightFormat::F16),
                ]),
                ..plan("x", 3.0, WeightFormat::F16)
            }],
            "plan `x` names tensor `q`",
        ),
        (plans()[..2].to_vec(), "variant 1 (int8g32) is in no plan"),
        (vec![plans()[0].clone(), plans()[0].clone()], "two plans are named `small`"),
        (vec![], "plan `"),
    ];
    for (plans, expected) in cases {
        let w = writer(&m, &plans);
        if plans.is_empty() {
            // Several variants but no plan at all: nothing says which to load.
            let err = w.write(&path).unwrap_err().to_string();
            assert!(err.contains("the header lists no plans"), "{err}");
            continue;
        }
        let err = w.write(&path).unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        assert!(err.contains("bad.qlm"), "{err}");
        assert!(!path.exists(), "a refused file was written");
    }
    // Two variants in one format.
    let mut w = writer(&m, &plans());
    w.add_variant("w", 3, 70, m.w[0].parts());
    let err = w.write(&path).unwrap_err().to_string();
    assert!(err.contains("tensor `w`") && err.contains("two variants are in format int4"), "{err}");
}

/// Writes the multi-plan model, edits its header with `edit` and asserts that
/// opening fails with a message containing every one of `expected`.
fn assert_multi_edit_rejected(edit: impl FnOnce(&mut Value), expected: &[&str]) {
    let (_dir, path, _) = write_multi();
    assert!(PackedFile::open(&path).is_ok(), "the unedited file must open");
    rewrite_header(&path, edit);
    assert_rejected(&path, expected);
}

fn w_tensor(h: &mut Value) -> &mut Value {
    &mut h["tensors"][0]
}

#[test]
fn malformed_plans_are_rejected() {
    assert_multi_edit_rejected(
        |h| h["plans"][1]["variants"][0] = json!(3),
        &["tensor `w`", "plan `mid` picks variant 3, but the tensor has 3 (numbered from 0)"],
    );
    assert_multi_edit_rejected(
        |h| h["plans"][1]["variants"][0] = json!(u64::MAX),
        &["plan `mid` picks variant 18446744073709551615"],
    );
    assert_multi_edit_rejected(
        |h| h["plans"][0]["variants"] = json!([2]),
        &["plan `small` picks 1 variants for 2 tensors"],
    );
    assert_multi_edit_rejected(
        |h| h["plans"][2]["bytes"] = json!(12),
        &["plan `big` says it loads 12 bytes but the variants it picks hold"],
    );
    assert_multi_edit_rejected(|h| h["plans"] = json!([]), &["the header lists no plans"]);
    assert_multi_edit_rejected(
        |h| h["plans"][1]["name"] = json!("small"),
        &["two plans are named `small`"],
    );
    assert_multi_edit_rejected(
        |h| h["plans"][1]["name"] = json!(""),
        &["a plan has an empty name"],
    );
    assert_multi_edit_rejected(
        |h| h["plans"][1]["bits_per_weight"] = json!(-1.0),
        &["plan `mid`: bits_per_weight -1 is not a positive number"],
    );
    assert_multi_edit_rejected(
        |h| h["plans"][1]["plan"] = json!({"path": "p", "sha256": "x"}),
        &["plan sha256 `x`"],
    );
    assert_multi_edit_rejected(|h| h["plans"][0]["extra"] = json!(1), &["unknown field `extra`"]);
    assert_multi_edit_rejected(
        |h| {
            let p = h["plans"][1].clone();
            h["plans"] = json!([h["plans"][0].clone(), p]);
        },
        &["tensor `w`", "variant 1 (int8g32) is in no plan"],
    );
}

#[test]
fn malformed_variants_are_rejected() {
    assert_multi_edit_rejected(
        |h| w_tensor(h)["variants"] = json!([]),
        &["tensor `w`: has no variants"],
    );
    assert_multi_edit_rejected(
        |h| w_tensor(h)["variants"][1]["format"] = json!("int4"),
        &["tensor `w`", "variant 1: segment `codes` is"],
    );
    assert_multi_edit_rejected(
        |h| w_tensor(h)["variants"][2]["format"] = json!("int9"),
        &["tensor `w`: variant 2: unknown format `int9`"],
    );
    assert_multi_edit_rejected(
        |h| {
            let first = w_tensor(h)["variants"][0]["segments"][0]["offset"].clone();
            w_tensor(h)["variants"][1]["segments"][0]["offset"] = first;
        },
        &[
            "overlaps",
            "tensor `w` variant 0 (int4) segment `codes`",
            "tensor `w` variant 1 (int8g32)",
        ],
    );
    // A version 1 tensor in a version 2 header, and the other way round.
    assert_multi_edit_rejected(
        |h| w_tensor(h)["format"] = json!("int4"),
        &["unknown field `format`"],
    );
    assert_multi_edit_rejected(
        |h| h["version"] = json!(1),
        &["header says version 1 but the preamble says version 2"],
    );
    let (_dir, path, _) = write_multi();
    let file = std::fs::read(&path).unwrap();
    let mut as_v1 = file.clone();
    as_v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&path, &as_v1).unwrap();
    assert_rejected(&path, &["header is not a valid packed-model header", "unknown field"]);
    let (_, header, _) = split(&file);
    assert_eq!(header["plans"].as_array().unwrap().len(), 3);
}

#[test]
fn a_damaged_variant_outside_the_selected_plan_fails_verify_all_only() {
    let (_dir, path, _) = write_multi();
    let bytes = std::fs::read(&path).unwrap();
    let (_, header, data_start) = split(&bytes);
    // A byte of `w`'s int8 variant (the `big` plan's).
    let offset = header["tensors"][0]["variants"][1]["segments"][0]["offset"].as_u64().unwrap();
    let mut damaged = bytes.clone();
    damaged[data_start + offset as usize] ^= 0xff;
    std::fs::write(&path, damaged).unwrap();
    let mut file = PackedFile::open(&path).unwrap();
    file.verify("w").unwrap();
    let err = file.verify_all().unwrap_err().to_string();
    assert!(err.contains("tensor `w`: checksum mismatch"), "{err}");
    file.select_plan(2).unwrap();
    assert!(file.verify("w").is_err());
}

#[test]
fn per_tensor_losses_are_recorded_with_their_variants() {
    let m = multi_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("losses.qlm");
    let with_loss = |p: PackedPlan, loss: f64| PackedPlan {
        tensor_losses: BTreeMap::from([("w".to_owned(), loss)]),
        ..p
    };
    let plans: Vec<PackedPlan> =
        plans().into_iter().zip([0.3, 0.2, 0.1]).map(|(p, l)| with_loss(p, l)).collect();
    writer(&m, &plans).write(&path).unwrap();
    let mut file = PackedFile::open(&path).unwrap();
    assert_eq!(file.version(), 3, "per-variant losses need version 3");
    let w = file.tensor("w").unwrap();
    // Variants in order int4 (plan mid), int8 (big), int2 (small).
    let losses: Vec<Option<f64>> = (0..3).map(|v| w.variant(v).unwrap().predicted_loss()).collect();
    assert_eq!(losses, [Some(0.2), Some(0.1), Some(0.3)]);
    assert_eq!(w.variant_index(), 2, "the first plan, small, loads int2");
    assert!(w.variant(3).is_none());
    assert_eq!(file.tensor("n").unwrap().predicted_loss(), None);

    // A selection of the caller's own.
    assert_eq!(file.select_variants("mine", vec![9, 0], None), None, "out of range");
    assert_eq!(file.select_variants("mine", vec![0], None), None, "one per tensor");
    assert_eq!(file.selected_plan().name(), "small", "a refused selection changes nothing");
    let index = file.select_variants("mine", vec![1, 0], Some(0.1)).unwrap();
    assert_eq!(index, 3);
    let mine = file.selected_plan();
    assert_eq!((mine.name(), mine.predicted_loss()), ("mine", Some(0.1)));
    assert_eq!(file.tensor("w").unwrap().format(), WeightFormat::grouped(8, 32));
    let big = file.plans().nth(2).unwrap().bytes();
    assert_eq!(file.selected_plan().bytes(), big);
    file.verify("w").unwrap();

    // A predicted loss in a version 2 header.
    rewrite_header(&path, |h| {
        h["version"] = json!(2);
    });
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    assert_rejected(
        &path,
        &["tensor `w`: variant 0 has a predicted_loss, which needs version 3, not 2"],
    );
}
