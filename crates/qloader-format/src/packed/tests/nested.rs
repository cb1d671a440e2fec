//! Nested variants: a tensor's wider variants stored as bit planes on a
//! compact root (`crate::nested`). Round trips (each plan reads its chain,
//! its bytes count every base under it), checksums along the chain, and
//! the malformed classes of `base`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::{assert_rejected, bytes, rewrite_header, sample_meta, OwnedTensor};
use crate::compact::CompactLayout;
use crate::nested::{self, link_row_bytes};
use crate::packed::{PackedFile, PackedMeta, PackedPlan, PackedWriter, TensorParts};
use crate::WeightFormat;

const ROWS: usize = 3;
const COLS: usize = 70;

/// Tensor `w`: an `int3k` root, `int4` nested on it (1 plane) and `int8g32`
/// nested on that (4 planes); plans `p3`, `p4`, `p8` load one each.
struct Chained {
    root: OwnedTensor,
    four: Vec<u8>,
    eight: Vec<u8>,
}

fn int3k() -> WeightFormat {
    WeightFormat::Compact(CompactLayout::new(3).unwrap())
}

fn chained() -> Chained {
    Chained {
        root: OwnedTensor::new("w", int3k(), ROWS, COLS, 4),
        four: bytes(ROWS * link_row_bytes(1, COLS), 5),
        eight: bytes(ROWS * link_row_bytes(4, COLS), 6),
    }
}

fn plan(name: &str, format: WeightFormat) -> PackedPlan {
    PackedPlan {
        name: name.to_owned(),
        bits_per_weight: format.bits_per_weight(),
        predicted_loss: None,
        plan: None,
        formats: BTreeMap::from([("w".to_owned(), format)]),
        tensor_losses: BTreeMap::new(),
    }
}

fn planes(bits: u8, extra: u8, planes: &[u8]) -> TensorParts<'_> {
    let layout = nested::rebuilt_layout(bits).unwrap();
    TensorParts::Planes { layout, extra, planes }
}

fn write_chained(m: &Chained) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.qlm");
    let mut w = PackedWriter::new(PackedMeta { plan: None, ..sample_meta() });
    w.add_variant("w", ROWS, COLS, m.root.parts());
    w.add_nested_variant("w", ROWS, COLS, planes(4, 1, &m.four), int3k());
    w.add_nested_variant("w", ROWS, COLS, planes(8, 4, &m.eight), WeightFormat::int4());
    for (name, format) in
        [("p3", int3k()), ("p4", WeightFormat::int4()), ("p8", WeightFormat::grouped(8, 32))]
    {
        w.add_plan(plan(name, format));
    }
    w.write(&path).unwrap();
    (dir, path)
}

#[test]
fn each_plan_reads_its_chain() {
    let m = chained();
    let (_dir, path) = write_chained(&m);
    let mut file = PackedFile::open(&path).unwrap();
    assert_eq!(file.version(), 3, "nested variants need version 3");
    file.verify_all().unwrap();
    let root_bytes = m.root.segments[0].len() as u64;
    let bytes: Vec<u64> = file.plans().map(|p| p.bytes()).collect();
    let (four, eight) = (m.four.len() as u64, m.eight.len() as u64);
    assert_eq!(bytes, [root_bytes, root_bytes + four, root_bytes + four + eight]);
    // The file holds the root and the planes once: the widest plan's bytes.
    let stored: usize = file.all_variants().map(|v| v.byte_len()).sum();
    assert_eq!(stored as u64, bytes[2]);

    file.select_plan(2).unwrap();
    let w = file.tensor("w").unwrap();
    assert_eq!(w.format(), WeightFormat::grouped(8, 32));
    assert_eq!(w.chain_byte_len() as u64, bytes[2]);
    let TensorParts::Planes { layout, extra, planes } = w.parts() else { panic!("planes") };
    assert_eq!((layout.bits(), extra, planes), (8, 4, m.eight.as_slice()));
    assert_eq!(w.base().unwrap().format(), WeightFormat::int4());
    assert!(w.base().unwrap().base().unwrap().base().is_none());
    let links = w.nested_chain().unwrap();
    assert_eq!(links.root, CompactLayout::new(3).unwrap());
    assert_eq!(links.root_codes, m.root.segments[0].as_slice());
    assert_eq!(links.links, [(1u8, m.four.as_slice()), (4u8, m.eight.as_slice())]);
    // What the loader rebuilds from the file is what the chain defines.
    let chain = links.chain();
    let rebuilt = nested::rebuild(&chain, ROWS, COLS);
    assert_eq!(rebuilt.layout.bits(), 8);
    assert_eq!(rebuilt.codes.len(), ROWS * rebuilt.layout.row_code_bytes(COLS));

    file.select_plan(0).unwrap();
    assert!(file.tensor("w").unwrap().nested_chain().is_none(), "the root is stored whole");
}

#[test]
fn verifying_a_nested_variant_checks_every_base_under_it() {
    let m = chained();
    let (_dir, path) = write_chained(&m);
    let bytes = std::fs::read(&path).unwrap();
    let (_, header, data_start) = super::split(&bytes);
    let offset = header["tensors"][0]["variants"][0]["segments"][0]["offset"].as_u64().unwrap();
    let mut damaged = bytes.clone();
    damaged[data_start + offset as usize] ^= 0xff;
    std::fs::write(&path, damaged).unwrap();
    let mut file = PackedFile::open(&path).unwrap();
    file.select_plan(2).unwrap();
    let err = file.verify("w").unwrap_err().to_string();
    assert!(err.contains("tensor `w`: checksum mismatch"), "{err}");
}

#[test]
fn the_writer_refuses_a_nested_variant_without_its_base() {
    let m = chained();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.qlm");
    let mut w = PackedWriter::new(sample_meta());
    w.add_variant("w", ROWS, COLS, m.root.parts());
    w.add_nested_variant("w", ROWS, COLS, planes(4, 1, &m.four), WeightFormat::F16);
    w.add_plan(plan("p4", WeightFormat::int4()));
    w.add_plan(plan("p3", int3k()));
    let err = w.write(&path).unwrap_err().to_string();
    assert!(
        err.contains("its nested int4 variant builds on f16, a variant it does not have"),
        "{err}"
    );
    assert!(!path.exists());
}

/// Writes the chained model, edits its header with `edit` and asserts that
/// opening fails with a message containing every one of `expected`.
fn assert_chained_edit_rejected(edit: impl FnOnce(&mut Value), expected: &[&str]) {
    let m = chained();
    let (_dir, path) = write_chained(&m);
    assert!(PackedFile::open(&path).is_ok(), "the unedited file must open");
    rewrite_header(&path, edit);
    assert_rejected(&path, expected);
}

fn variant(h: &mut Value, v: usize) -> &mut Value {
    &mut h["tensors"][0]["variants"][v]
}

#[test]
fn malformed_nesting_is_rejected() {
    // A base listed after the variant, or the variant itself: a loop.
    assert_chained_edit_rejected(
        |h| variant(h, 1)["base"] = json!(2),
        &["tensor `w`", "variant 1: its base is variant 2, which is not listed before it"],
    );
    assert_chained_edit_rejected(
        |h| variant(h, 1)["base"] = json!(1),
        &["variant 1: its base is variant 1"],
    );
    assert_chained_edit_rejected(
        |h| variant(h, 2)["base"] = json!(u64::MAX),
        &["its base is variant 18446744073709551615"],
    );
    // A base that cannot start a chain: `f16` listed before the root.
    let m = chained();
    let f16 = OwnedTensor::new("w", WeightFormat::F16, ROWS, COLS, 7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f16-first.qlm");
    let mut w = PackedWriter::new(sample_meta());
    w.add_variant("w", ROWS, COLS, f16.parts());
    w.add_variant("w", ROWS, COLS, m.root.parts());
    w.add_nested_variant("w", ROWS, COLS, planes(4, 1, &m.four), int3k());
    for (name, format) in [("p16", WeightFormat::F16), ("p4", WeightFormat::int4())] {
        w.add_plan(plan(name, format));
    }
    w.write(&path).unwrap();
    rewrite_header(&path, |h| {
        variant(h, 2)["base"] = json!(0);
        h["plans"] = json!([h["plans"][0].clone(), h["plans"][1].clone()]);
    });
    assert_rejected(
        &path,
        &["variant 2: its base, variant 0, is f16: a base is int2k, int3k, int4k or a nested variant"],
    );
    // A nested variant in a format planes do not rebuild into, or not wider.
    assert_chained_edit_rejected(
        |h| variant(h, 1)["format"] = json!("q8_0"),
        &["variant 1: a nested variant is int3, int4 or int8g32", "not q8_0"],
    );
    assert_chained_edit_rejected(
        |h| variant(h, 1)["format"] = json!("int3"),
        &["a nested int3 variant must be wider than its base's 3-bit codes"],
    );
    // Planes of the wrong length, and planes on a variant without a base.
    assert_chained_edit_rejected(
        |h| variant(h, 2)["base"] = json!(0),
        &["variant 2: segment `planes` is", "needs"],
    );
    assert_chained_edit_rejected(
        |h| {
            variant(h, 2).as_object_mut().unwrap().remove("base");
        },
        &["variant 2: segment `planes` does not belong to format int8g32"],
    );
    // A base field in a version 1 style tensor is an unknown field there;
    // in version 2 a plan must still reach every variant.
    assert_chained_edit_rejected(
        |h| {
            let p = h["plans"][0].clone();
            h["plans"] = json!([p]);
        },
        &["variant 1 (int4) is in no plan, nor the base of one that is"],
    );
}
