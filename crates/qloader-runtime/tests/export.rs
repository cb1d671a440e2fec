//! `export`: a packed SmolLM2 written as GGUF holds the source's metadata
//! and, tensor for tensor, exactly the packed weights (read back through
//! our own GGUF reader, bit for bit); formats without an exact GGUF layout
//! are refused with the tensor named, or converted when asked. Needs the
//! fixtures (`scripts/fetch-fixtures.sh`); skips without them outside CI.

use std::path::Path;

use qloader_format::gguf::{GgmlType, GgufFile};
use qloader_format::{fixtures, PackedFile, WeightFormat};
use qloader_quant::LinearWeight;
use qloader_runtime::packed::export::{export_gguf, ExportOptions, Mapping};
use qloader_runtime::packed::pack_decoder;

fn smollm2() -> Option<std::path::PathBuf> {
    let gguf = fixtures::smollm2_gguf();
    if gguf.exists() {
        return Some(gguf);
    }
    assert!(std::env::var_os("CI").is_none(), "fixture {} missing in CI", gguf.display());
    eprintln!("SKIP: {} missing; run scripts/fetch-fixtures.sh", gguf.display());
    None
}

/// Every exactly exportable format, spread over the tensors; `ffn_down`
/// (1536 columns, a multiple of 256) takes the super-block formats.
fn exportable(name: &str) -> WeightFormat {
    let n = name.bytes().map(usize::from).sum::<usize>();
    let pick = if name.contains("ffn_down") {
        ["int4k", "int3k", "nl4k", "int2k", "int5k"][n % 5]
    } else {
        ["int4", "int3", "f16", "int2", "q4_0", "q5_0", "q8_0", "iq4_nl"][n % 8]
    };
    pick.parse().unwrap()
}

fn packed_weight(file: &PackedFile, name: &str) -> LinearWeight {
    let t = file.tensor(name).unwrap();
    LinearWeight::from_stored_parts(t.rows(), t.cols(), t.parts()).unwrap()
}

#[test]
fn an_exported_plan_reads_back_as_the_packed_weights() {
    let Some(gguf) = smollm2() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (qlm, out) = (tmp.path().join("m.qlm"), tmp.path().join("m.gguf"));
    pack_decoder(&gguf, &exportable, None, &qlm, &mut |_, _| {}).unwrap();
    let report = export_gguf(&qlm, &out, &ExportOptions::default()).unwrap();
    assert_eq!(report.file_bytes, std::fs::metadata(&out).unwrap().len());
    let packed = PackedFile::open(&qlm).unwrap();
    let exported = GgufFile::open(&out).unwrap();
    let source = GgufFile::open(&gguf).unwrap();
    // The source's metadata, but the file type (it described the source).
    let kept = |f: &GgufFile| -> Vec<_> {
        f.metadata()
            .iter()
            .filter(|(k, _)| !k.starts_with("general.file_type"))
            .filter(|(k, _)| !k.starts_with("general.quantization_version"))
            .cloned()
            .collect()
    };
    assert_eq!(kept(&exported), kept(&source));
    assert_eq!(exported.tensors().len(), packed.tensors().len());
    let mut seen = std::collections::BTreeSet::new();
    for t in &report.tensors {
        // The tied head is the GGUF's embedding table, as in the source.
        let packed_name = if t.name == "token_embd.weight" { "output.weight" } else { &t.name };
        let weight = packed_weight(&packed, packed_name);
        let want = weight.dequantize();
        let got = exported.tensor_f32(&t.name).unwrap();
        assert_eq!(got.shape, source.tensor(&t.name).unwrap().shape(), "{}", t.name);
        assert!(
            got.data.iter().zip(want.data()).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{}: {} as {} differs",
            t.name,
            t.stored,
            t.ty
        );
        assert_ne!(t.how, Mapping::Converted, "{}", t.name);
        seen.insert((t.stored.name(), t.ty.name()));
    }
    for pair in [
        ("f32", GgmlType::F32),
        ("f16", GgmlType::F16),
        ("int4", GgmlType::Q4_1),
        ("int3", GgmlType::Q4_1),
        ("int4k", GgmlType::Q4K),
        ("int2k", GgmlType::Q4K),
        ("nl4k", GgmlType::Iq4Xs),
        ("int5k", GgmlType::Q5K),
        ("q4_0", GgmlType::Q4_0),
        ("q8_0", GgmlType::Q8_0),
        ("q5_0", GgmlType::Q5_0),
        ("iq4_nl", GgmlType::Iq4Nl),
    ] {
        assert!(
            seen.contains(&(pair.0.to_owned(), pair.1.name())),
            "{pair:?} not exercised: {seen:?}"
        );
    }
}

#[test]
fn formats_without_a_gguf_layout_are_refused_or_converted() {
    let Some(gguf) = smollm2() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (qlm, out) = (tmp.path().join("m.qlm"), tmp.path().join("m.gguf"));
    // int4k on 576 columns has no Q4_K layout (256-blocks); int8 has none.
    let plan = |name: &str| -> WeightFormat {
        let pick = if name.contains("attn_q") {
            "int4k"
        } else if name.contains("attn_k") {
            "int8"
        } else {
            "int4"
        };
        pick.parse().unwrap()
    };
    pack_decoder(&gguf, &plan, None, &qlm, &mut |_, _| {}).unwrap();
    let err = export_gguf(&qlm, &out, &ExportOptions::default()).unwrap_err().to_string();
    assert!(
        err.contains("m.qlm") && err.contains("tensor `blk.0.attn_q.weight`: int4k (576 × 576)"),
        "{err}"
    );
    assert!(!out.exists(), "no file on refusal");
    let options = ExportOptions { convert: true, ..ExportOptions::default() };
    let report = export_gguf(&qlm, &out, &options).unwrap();
    let ty = |name: &str| report.tensors.iter().find(|t| t.name == name).unwrap();
    assert_eq!(
        (ty("blk.0.attn_q.weight").ty, ty("blk.0.attn_q.weight").how),
        (GgmlType::Q8_0, Mapping::Converted)
    );
    assert_eq!(
        (ty("blk.0.attn_k.weight").ty, ty("blk.0.attn_k.weight").how),
        (GgmlType::F16, Mapping::Converted)
    );
    assert_eq!(ty("blk.0.attn_v.weight").how, Mapping::Exact);
    GgufFile::open(&out).unwrap();
}

#[test]
fn an_encoder_or_a_file_without_metadata_is_a_clear_error() {
    let minilm = fixtures::minilm_dir();
    if !minilm.join("model.safetensors").exists() {
        assert!(std::env::var_os("CI").is_none(), "MiniLM fixture missing in CI");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let qlm = tmp.path().join("e.qlm");
    let dir = qloader_models::bert::ModelDir::open(&minilm).unwrap();
    qloader_runtime::packed::pack_bert(&dir, &|_| WeightFormat::int4(), None, &qlm).unwrap();
    let err = export_gguf(&qlm, &tmp.path().join("e.gguf"), &ExportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("e.qlm") && err.contains("only decoders (llama) export"), "{err}");
    let missing = Path::new("/nonexistent/m.qlm");
    let err = export_gguf(missing, &tmp.path().join("x.gguf"), &ExportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/m.qlm"), "{err}");
}

/// A tiny family model's two inputs (checked in beside the goldens).
fn family_inputs(family: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../qloader-models/tests/data/families")
        .join(family);
    (dir.join("hf"), dir.join("model.gguf"))
}

#[test]
fn a_model_packed_from_a_checkpoint_directory_exports_as_from_its_gguf() {
    // llama and mistral are stored as GGUF `llama`, whose q/k rows pair
    // adjacent dimensions for RoPE: the export reorders them. The others
    // keep the checkpoint's order; Gemma's norms are stored as scales.
    for family in ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"] {
        let (hf, gguf) = family_inputs(family);
        let tmp = tempfile::tempdir().unwrap();
        let f32 = |_: &str| WeightFormat::F32;
        let mut exported = Vec::new();
        for (input, metadata_from) in [(&hf, Some(gguf.clone())), (&gguf, None)] {
            let qlm = tmp.path().join(format!("{}.qlm", exported.len()));
            let out = tmp.path().join(format!("{}.gguf", exported.len()));
            pack_decoder(input, &f32, None, &qlm, &mut |_, _| {}).unwrap();
            let options = ExportOptions { metadata_from, ..ExportOptions::default() };
            export_gguf(&qlm, &out, &options).unwrap();
            exported.push(GgufFile::open(&out).unwrap());
        }
        let [from_hf, from_gguf] = &exported[..] else { unreachable!() };
        let names = |f: &GgufFile| -> Vec<String> {
            let mut n: Vec<String> = f.tensors().iter().map(|t| t.name.clone()).collect();
            n.sort();
            n
        };
        assert_eq!(names(from_hf), names(from_gguf), "{family}");
        for name in names(from_gguf) {
            let (a, b) = (from_hf.tensor_f32(&name).unwrap(), from_gguf.tensor_f32(&name).unwrap());
            assert_eq!(a.shape, b.shape, "{family} {name}");
            assert!(
                a.data.iter().zip(&b.data).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{family}: {name} differs between the two inputs' exports"
            );
        }
    }
}

#[test]
fn a_model_packed_from_a_checkpoint_directory_needs_gguf_metadata_to_export() {
    let (hf, _) = family_inputs("qwen3");
    let tmp = tempfile::tempdir().unwrap();
    let (qlm, out) = (tmp.path().join("m.qlm"), tmp.path().join("m.gguf"));
    pack_decoder(&hf, &|_| WeightFormat::F32, None, &qlm, &mut |_, _| {}).unwrap();
    let err = export_gguf(&qlm, &out, &ExportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("packed from a Hugging Face checkpoint directory"), "{err}");
    assert!(err.contains("--metadata-from"), "{err}");
    assert!(!out.exists(), "nothing written");
}
