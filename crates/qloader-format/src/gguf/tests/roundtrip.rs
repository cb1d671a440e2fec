//! Files written by the test builder read back exactly: every metadata value
//! type (nested arrays included), the typed getters, tensor infos and data.

use super::builder::{f32_bytes, GgufBuilder};
use super::{sample_builder, write_temp};
use crate::error::FormatError;
use crate::gguf::{GgmlType, GgufFile, MetadataValue as V};

fn every_value_type() -> Vec<(&'static str, V)> {
    vec![
        ("t.u8", V::U8(200)),
        ("t.i8", V::I8(-100)),
        ("t.u16", V::U16(65000)),
        ("t.i16", V::I16(-32000)),
        ("t.u32", V::U32(4_000_000_000)),
        ("t.i32", V::I32(-2_000_000_000)),
        ("t.u64", V::U64(u64::MAX)),
        ("t.i64", V::I64(i64::MIN)),
        ("t.f32", V::F32(-1.5e-7)),
        ("t.f64", V::F64(std::f64::consts::PI)),
        ("t.bool_true", V::Bool(true)),
        ("t.bool_false", V::Bool(false)),
        ("t.string", V::String("héllo, wörld ✓".into())),
        ("t.empty_string", V::String(String::new())),
        ("t.empty_array", V::Array(vec![])),
        ("t.u8_array", V::Array(vec![V::U8(1), V::U8(2), V::U8(255)])),
        ("t.f32_array", V::Array(vec![V::F32(0.5), V::F32(-2.0)])),
        ("t.f64_array", V::Array(vec![V::F64(1e300)])),
        ("t.i64_array", V::Array(vec![V::I64(-1), V::I64(7)])),
        ("t.bool_array", V::Array(vec![V::Bool(true), V::Bool(false)])),
        ("t.str_array", V::Array(vec![V::String("a".into()), V::String("".into())])),
        (
            "t.nested",
            V::Array(vec![
                V::Array(vec![V::I32(1), V::I32(2)]),
                V::Array(vec![]),
                V::Array(vec![V::I32(3)]),
            ]),
        ),
        ("t.nested3", V::Array(vec![V::Array(vec![V::Array(vec![V::String("deep".into())])])])),
    ]
}

#[test]
fn every_metadata_value_type_round_trips() {
    let mut b = GgufBuilder::new();
    for (k, v) in every_value_type() {
        b = b.kv(k, v);
    }
    let file = write_temp(&b.build());
    let g = GgufFile::open(file.path()).unwrap();
    assert_eq!(g.version(), 3);
    assert!(g.tensors().is_empty());
    let expected = every_value_type();
    assert_eq!(g.metadata().len(), expected.len());
    for ((k, v), (gk, gv)) in expected.iter().zip(g.metadata()) {
        assert_eq!(k, gk);
        assert_eq!(v, gv, "{k}");
        assert_eq!(g.get(k), Some(v));
    }
    assert_eq!(g.get("absent"), None);
}

#[test]
fn typed_getters_read_and_name_the_key() {
    let mut b = GgufBuilder::new();
    for (k, v) in every_value_type() {
        b = b.kv(k, v);
    }
    let file = write_temp(&b.build());
    let g = GgufFile::open(file.path()).unwrap();
    assert_eq!(g.get_u64("t.u8").unwrap(), 200);
    assert_eq!(g.get_u64("t.u64").unwrap(), u64::MAX);
    assert_eq!(g.get_usize("t.u32").unwrap(), 4_000_000_000);
    assert_eq!(g.get_f32("t.f32").unwrap(), -1.5e-7);
    assert_eq!(g.get_f32("t.f64").unwrap(), std::f64::consts::PI as f32);
    assert_eq!(g.get_str("t.string").unwrap(), "héllo, wörld ✓");
    assert_eq!(g.get_str_array("t.str_array").unwrap(), vec!["a", ""]);
    assert_eq!(g.get_str_array("t.empty_array").unwrap(), Vec::<&str>::new());
    assert_eq!(g.get_i32_array("t.u8_array").unwrap(), vec![1, 2, 255]);
    assert_eq!(g.get_i32_array("t.i64_array").unwrap(), vec![-1, 7]);
    assert_eq!(g.get_f32_array("t.f32_array").unwrap(), vec![0.5, -2.0]);
    assert_eq!(g.get_f32_array("t.f64_array").unwrap(), vec![f32::INFINITY]);

    let reason = |e: FormatError| match e {
        FormatError::Gguf { path, reason } => {
            assert_eq!(path, file.path());
            reason
        }
        other => panic!("unexpected error {other}"),
    };
    assert_eq!(reason(g.get_u64("nope").unwrap_err()), "metadata key `nope` is missing");
    assert_eq!(
        reason(g.get_u64("t.i8").unwrap_err()),
        "metadata key `t.i8` is i8 -100, expected a non-negative integer"
    );
    assert!(reason(g.get_f32("t.u8").unwrap_err()).contains("`t.u8` is u8 200, expected a float"));
    assert!(reason(g.get_str("t.u8_array").unwrap_err()).contains("is array of 3 elements"));
    assert!(reason(g.get_str_array("t.nested").unwrap_err()).contains("element 0 is array"));
    assert!(reason(g.get_i32_array("t.f32_array").unwrap_err()).contains("element 0 is f32 0.5"));
    assert!(reason(g.get_f32_array("t.string").unwrap_err()).contains("expected an array"));
    let msg = g.get_u64("nope").unwrap_err().to_string();
    assert!(msg.contains("invalid GGUF file: metadata key `nope` is missing"), "{msg}");
}

#[test]
fn tensors_read_back_with_shapes_and_data() {
    let file = write_temp(&sample_builder().build());
    let g = GgufFile::open(file.path()).unwrap();
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.path(), file.path());
    let names: Vec<&str> = g.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["norm.weight", "embd.weight", "out.weight"]);

    let norm = g.tensor("norm.weight").unwrap();
    assert_eq!(norm.dims, vec![4, 2]);
    assert_eq!(norm.shape(), vec![2, 4]);
    assert_eq!(norm.ggml_type, GgmlType::F32);
    assert_eq!((norm.offset, norm.byte_len), (0, 32));
    assert_eq!(g.tensor_bytes(norm), f32_bytes(&[1., 2., 3., 4., 5., 6., 7., 8.]).as_slice());
    let t = g.tensor_f32("norm.weight").unwrap();
    assert_eq!(t.shape, vec![2, 4]);
    assert_eq!(t.data, vec![1., 2., 3., 4., 5., 6., 7., 8.]);

    let embd = g.tensor("embd.weight").unwrap();
    assert_eq!((embd.offset, embd.byte_len, embd.elements()), (32, 68, 64));
    let t = g.tensor_f32("embd.weight").unwrap();
    assert_eq!(t.shape, vec![2, 32]);
    let expected: Vec<f32> =
        (0..2).flat_map(|b| (0..32).map(move |i| (i - 16) as f32 * (0.5 + b as f32))).collect();
    assert_eq!(t.data, expected);

    let out = g.tensor("out.weight").unwrap();
    assert_eq!((out.offset, out.byte_len), (128, 20));
    let t = g.tensor_f32("out.weight").unwrap();
    let expected: Vec<f32> = (0..16)
        .map(|i| i as f32 * 0.25 - 1.0)
        .chain((0..16).map(|i| (15 - i) as f32 * 0.25 - 1.0))
        .collect();
    assert_eq!(t.data, expected);

    match g.tensor("missing.weight").unwrap_err() {
        FormatError::MissingTensor { tensor, .. } => assert_eq!(tensor, "missing.weight"),
        other => panic!("unexpected error {other}"),
    }
    assert!(g.tensor_f32("missing.weight").is_err());
    let dbg = format!("{g:?}");
    assert!(dbg.contains("tensors: 3"), "{dbg}");
}

#[test]
fn version_2_and_custom_alignment_are_honoured() {
    let b = GgufBuilder::new()
        .version(2)
        .alignment(64)
        .tensor("a", &[3], GgmlType::F32, f32_bytes(&[1., 2., 3.]))
        .tensor("b", &[2], GgmlType::F16, vec![0x00, 0x3c, 0x00, 0xc0]);
    let file = write_temp(&b.build());
    let g = GgufFile::open(file.path()).unwrap();
    assert_eq!((g.version(), g.alignment()), (2, 64));
    assert_eq!(g.tensor("b").unwrap().offset, 64);
    assert_eq!(g.tensor_f32("b").unwrap().data, vec![1.0, -2.0]);
    assert_eq!(g.tensor_f32("a").unwrap().data, vec![1.0, 2.0, 3.0]);
}

#[test]
fn foreign_tensor_info_gives_empty_bytes() {
    let file = write_temp(&sample_builder().build());
    let g = GgufFile::open(file.path()).unwrap();
    let mut info = g.tensor("out.weight").unwrap().clone();
    info.offset = u64::MAX - 8;
    assert!(g.tensor_bytes(&info).is_empty());
    info.offset = 1 << 20;
    assert!(g.tensor_bytes(&info).is_empty());
}

#[test]
fn recognised_but_unsupported_types_are_named() {
    let b = GgufBuilder::new().tensor("x", &[64], GgmlType::MXFP4, vec![0; 34]);
    let file = write_temp(&b.build());
    let g = GgufFile::open(file.path()).unwrap();
    assert_eq!(g.tensor("x").unwrap().ggml_type, GgmlType::MXFP4);
    assert_eq!(g.tensor_bytes(g.tensor("x").unwrap()).len(), 34);
    let msg = g.tensor_f32("x").unwrap_err().to_string();
    assert!(
        msg.contains("tensor `x`: type MXFP4 is recognised but cannot be de-quantized yet"),
        "{msg}"
    );
}

#[test]
fn a_file_without_tensors_or_metadata_is_valid() {
    let bytes = GgufBuilder::new().build();
    assert_eq!(bytes.len(), 24);
    let file = write_temp(&bytes);
    let g = GgufFile::open(file.path()).unwrap();
    assert!(g.metadata().is_empty() && g.tensors().is_empty());
}
