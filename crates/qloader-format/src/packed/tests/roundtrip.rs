//! Valid files: what is written is read back exactly, aligned, with the
//! documented layout.

use serde_json::json;

use super::{all_formats, sample_model, small_model, split, write_in_temp, Model, OwnedTensor};
use crate::error::FormatError;
use crate::packed::{
    segment_lengths, PackedFile, PackedMeta, SegmentRole, TensorParts, ALIGNMENT, MAGIC,
    PREAMBLE_LEN,
};
use crate::WeightFormat;

#[test]
fn every_format_round_trips() {
    let model = sample_model();
    let (_dir, path) = write_in_temp(&model, "model.qlm");
    let file = PackedFile::open(&path).unwrap();

    assert_eq!(file.path(), path);
    assert_eq!(file.created_by(), model.meta.created_by);
    assert_eq!(file.architecture(), "llama");
    assert_eq!(file.config(), &model.meta.config);
    assert_eq!(file.plan(), model.meta.plan.as_ref());
    assert_eq!(file.quantization(), model.meta.quantization.as_ref());

    let names: Vec<&str> = file.blob_names().collect();
    assert_eq!(names, ["config.json", "tokenizer.json", "empty"]);
    for (name, bytes) in &model.blobs {
        assert_eq!(file.blob(name).unwrap(), bytes.as_slice(), "blob {name}");
        file.verify_blob(name).unwrap();
    }

    assert_eq!(file.tensors().len(), model.tensors.len());
    for (view, t) in file.tensors().zip(&model.tensors) {
        assert_eq!(view.name(), t.name);
        let by_name = file.tensor(&t.name).unwrap();
        assert_eq!(by_name.name(), t.name);
        assert_eq!(view.shape(), [t.rows, t.cols], "{}", t.name);
        assert_eq!((view.rows(), view.cols()), (t.rows, t.cols));
        assert_eq!(view.format(), t.format, "{}", t.name);
        assert_eq!(view.parts(), t.parts(), "{}", t.name);
        assert_eq!(view.parts().format(), t.format);
        let got: Vec<&[u8]> = view.segments().map(|(_, s)| s).collect();
        let want: Vec<&[u8]> = t.segments.iter().map(|s| s.as_slice()).collect();
        assert_eq!(got, want, "{}", t.name);
        assert_eq!(view.byte_len(), t.format.storage_bytes(t.rows, t.cols), "{}", t.name);
        file.verify(&t.name).unwrap();
    }
    file.verify_all().unwrap();
    // 3 f32/f16/int8 + 12 grouped + 5 compact + 4 block formats at 3×70,
    // and six others.
    assert_eq!(model.tensors.len(), 3 + 12 + 5 + 4 + 6);
}

#[test]
fn segments_are_found_by_role() {
    let model = sample_model();
    let (_dir, path) = write_in_temp(&model, "model.qlm");
    let file = PackedFile::open(&path).unwrap();
    for t in &model.tensors {
        let view = file.tensor(&t.name).unwrap();
        let roles: Vec<SegmentRole> = view.segments().map(|(r, _)| r).collect();
        let expected: Vec<SegmentRole> = segment_lengths(t.format, t.rows as u64, t.cols as u64)
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(roles, expected, "{}", t.name);
        for (i, role) in roles.iter().enumerate() {
            assert_eq!(view.segment(*role), Some(t.segments[i].as_slice()));
        }
        let absent = [SegmentRole::Data, SegmentRole::Offsets]
            .into_iter()
            .find(|r| !roles.contains(r))
            .unwrap();
        assert_eq!(view.segment(absent), None, "{}", t.name);
    }
}

#[test]
fn every_segment_and_blob_is_aligned_to_64() {
    let model = sample_model();
    let (_dir, path) = write_in_temp(&model, "model.qlm");
    let file = PackedFile::open(&path).unwrap();
    let a = ALIGNMENT as usize;
    // In memory (the map is page-aligned, so this is the file offset's alignment).
    for view in file.tensors() {
        for (role, bytes) in view.segments() {
            assert_eq!(bytes.as_ptr() as usize % a, 0, "{} {role}", view.name());
        }
    }
    for name in ["config.json", "tokenizer.json"] {
        assert_eq!(file.blob(name).unwrap().as_ptr() as usize % a, 0, "{name}");
    }
    // And in the header: every offset, and the data section start.
    let bytes = std::fs::read(&path).unwrap();
    let (_, header, data_start) = split(&bytes);
    assert_eq!(data_start % a, 0);
    for blob in header["blobs"].as_array().unwrap() {
        assert_eq!(blob["offset"].as_u64().unwrap() % ALIGNMENT, 0);
    }
    for t in header["tensors"].as_array().unwrap() {
        for s in t["segments"].as_array().unwrap() {
            assert_eq!(s["offset"].as_u64().unwrap() % ALIGNMENT, 0, "{t}");
        }
    }
}

#[test]
fn file_layout_is_as_documented() {
    let model = small_model();
    let (_dir, path) = write_in_temp(&model, "m.qlm");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[..8], MAGIC);
    assert_eq!(&bytes[..8], b"QLMODEL\0");
    // One variant per tensor and no plans: version 1.
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 0);
    let (header_len, header, data_start) = split(&bytes);
    assert!(bytes[PREAMBLE_LEN + header_len..data_start].iter().all(|&b| b == 0));

    assert_eq!(header["schema"], "qloader-packed");
    assert_eq!(header["version"], 1);
    assert_eq!(header["architecture"], "llama");
    assert_eq!(header["plan"], serde_json::Value::Null);
    let blob = &header["blobs"][0];
    assert_eq!(blob["name"], "config.json");
    assert_eq!((blob["offset"].as_u64(), blob["len"].as_u64()), (Some(0), Some(10)));
    assert_eq!(blob["crc32"].as_u64(), Some(crc32fast::hash(&model.blobs[0].1) as u64));

    let a = &header["tensors"][0];
    assert_eq!(a["name"], "a");
    assert_eq!(a["shape"], json!([3, 70]));
    assert_eq!(a["format"], "int4");
    assert_eq!(
        a["segments"],
        json!([
            { "role": "codes", "offset": 64, "len": 144 },
            { "role": "scales", "offset": 256, "len": 18 },
            { "role": "offsets", "offset": 320, "len": 18 },
        ])
    );
    let t = &model.tensors[0];
    let mut hasher = crc32fast::Hasher::new();
    for s in &t.segments {
        hasher.update(s);
    }
    assert_eq!(a["crc32"].as_u64(), Some(hasher.finalize() as u64));
    let b = &header["tensors"][1];
    assert_eq!(b["format"], "f32");
    assert_eq!(b["segments"], json!([{ "role": "data", "offset": 384, "len": 24 }]));

    // Segment bytes sit at their offsets, padding between them is zero, and
    // the file ends where the last segment ends.
    let data = &bytes[data_start..];
    assert_eq!(&data[64..208], t.segments[0].as_slice());
    assert!(data[10..64].iter().all(|&b| b == 0));
    assert!(data[208..256].iter().all(|&b| b == 0));
    assert_eq!(data.len(), 384 + 24);
    assert_eq!(&data[384..], model.tensors[1].segments[0].as_slice());
}

#[test]
fn segment_lengths_add_up_to_storage_bytes() {
    for format in all_formats() {
        for (rows, cols) in [(1, 1), (3, 70), (2, 31), (5, 129), (4, 256), (1, 4096)] {
            let lengths = segment_lengths(format, rows as u64, cols as u64).unwrap();
            let total: u64 = lengths.iter().map(|(_, l)| l).sum();
            assert_eq!(total as usize, format.storage_bytes(rows, cols), "{format} {rows}×{cols}");
        }
    }
    let int3 = WeightFormat::grouped(3, 128);
    assert_eq!(
        segment_lengths(int3, 5, 129).unwrap(),
        [
            (SegmentRole::Codes, 5 * 5 * 12),
            (SegmentRole::Scales, 5 * 2 * 2),
            (SegmentRole::Offsets, 20)
        ]
    );
    assert_eq!(
        segment_lengths(WeightFormat::Int8PerChannel, 3, 70).unwrap(),
        [(SegmentRole::Codes, 210), (SegmentRole::Scales, 12)]
    );
    assert_eq!(segment_lengths(WeightFormat::F32, u64::MAX, 2), None);
    assert_eq!(segment_lengths(WeightFormat::grouped(8, 32), 1 << 40, 1 << 40), None);
}

#[test]
fn an_empty_model_round_trips() {
    let model = Model { meta: PackedMeta::default(), blobs: Vec::new(), tensors: Vec::new() };
    let (_dir, path) = write_in_temp(&model, "empty.qlm");
    let file = PackedFile::open(&path).unwrap();
    assert_eq!(file.tensors().len(), 0);
    assert_eq!(file.blob_names().len(), 0);
    assert_eq!(file.config(), &serde_json::Value::Null);
    assert_eq!(file.plan(), None);
    file.verify_all().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (_, _, data_start) = split(&bytes);
    assert_eq!(bytes.len(), data_start, "no data section");
}

#[test]
fn write_returns_the_file_length() {
    let model = small_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.qlm");
    let len = model.write(&path);
    assert_eq!(len, std::fs::metadata(&path).unwrap().len());
}

#[test]
fn absent_names_are_none_or_named_errors() {
    let (_dir, path) = write_in_temp(&small_model(), "m.qlm");
    let file = PackedFile::open(&path).unwrap();
    assert!(file.tensor("nope").is_none());
    assert!(file.blob("nope").is_none());
    match file.verify("nope").unwrap_err() {
        FormatError::MissingTensor { tensor, path: p } => {
            assert_eq!((tensor.as_str(), p.as_path()), ("nope", path.as_path()))
        }
        other => panic!("unexpected {other}"),
    }
    let err = file.verify_blob("nope").unwrap_err();
    assert!(matches!(err, FormatError::MissingBlob { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(format!("{file:?}").contains("PackedFile"));
    assert!(format!("{:?}", file.tensor("a").unwrap()).contains("Codes"));
}

#[test]
fn replacing_a_file_keeps_open_maps_valid() {
    let model = small_model();
    let (_dir, path) = write_in_temp(&model, "m.qlm");
    let old = PackedFile::open(&path).unwrap();

    let mut other = small_model();
    other.tensors[1] = OwnedTensor::new("b", WeightFormat::F32, 2, 3, 99);
    other.write(&path);

    // The old map still shows the old bytes, the new file the new ones.
    assert_eq!(old.tensor("b").unwrap().parts(), model.tensors[1].parts());
    old.verify_all().unwrap();
    let new = PackedFile::open(&path).unwrap();
    assert_eq!(new.tensor("b").unwrap().parts(), other.tensors[1].parts());
    assert_ne!(other.tensors[1].segments, model.tensors[1].segments);
}

#[test]
fn parts_report_their_format_and_length() {
    let t = OwnedTensor::new("t", WeightFormat::grouped(2, 64), 3, 70, 5);
    let parts = t.parts();
    assert_eq!(parts.format(), WeightFormat::grouped(2, 64));
    assert_eq!(parts.byte_len(), WeightFormat::grouped(2, 64).storage_bytes(3, 70));
    assert!(matches!(parts, TensorParts::Grouped { .. }));
    assert_eq!(SegmentRole::from_name("offsets"), Some(SegmentRole::Offsets));
    assert_eq!(SegmentRole::from_name("Offsets"), None);
    for role in [SegmentRole::Data, SegmentRole::Codes, SegmentRole::Scales, SegmentRole::Offsets] {
        assert_eq!(SegmentRole::from_name(&role.to_string()), Some(role));
    }
}
