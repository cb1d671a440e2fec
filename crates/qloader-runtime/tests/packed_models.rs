//! Packed models against the in-memory models of the same per-tensor
//! formats: identical outputs when every kernel is present, close outputs
//! when a family is disabled and its tensors are converted at load, and
//! clear errors for damaged files. Needs the fixtures
//! (`scripts/fetch-fixtures.sh`); skips without them outside CI.

use std::path::Path;

use qloader_format::{fixtures, ActivationFormat, WeightFormat};
use qloader_models::bert::ModelDir;
use qloader_models::decoder::{Decoder, Logits};
use qloader_models::{BertEncoder, GgufTokenizer, LlamaModel, Probe, SentenceTokenizer};
use qloader_quant::LinearWeight;
use qloader_runtime::packed::{
    open_packed, pack_bert, pack_decoder, LoadOptions, PackedEncoder, PackedModel,
};
use qloader_runtime::registry::KernelRegistry;

const SENTENCES: [&str; 4] = [
    "A packed model must give the same embedding as the model in memory.",
    "The quick brown fox jumps over the lazy dog.",
    "Quantization trades precision for memory.",
    "東京は日本の首都です。",
];

fn present(path: &Path) -> bool {
    let ok = path.exists();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "fixture {} missing in CI", path.display());
        eprintln!("SKIP: {} missing; run scripts/fetch-fixtures.sh", path.display());
    }
    ok
}

fn minilm() -> Option<ModelDir> {
    present(&fixtures::minilm_dir().join("model.safetensors"))
        .then(|| ModelDir::open(&fixtures::minilm_dir()).unwrap())
}

/// A mixed plan touching every format family, embeddings included.
fn mixed(name: &str) -> WeightFormat {
    let formats = ["int4", "int8", "int3g64", "f16", "int2g128", "int8g32", "int4g128"];
    let h = name.bytes().fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    formats[h % formats.len()].parse().unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

/// Opens `path`, returning the model and the conversion log.
fn open(path: &Path, options: &LoadOptions) -> (PackedModel, Vec<String>) {
    let mut log = Vec::new();
    let loaded = open_packed(path, options, &mut |line| log.push(line.to_owned())).unwrap();
    (loaded.model, log)
}

fn encoder(model: PackedModel) -> PackedEncoder {
    match model {
        PackedModel::Encoder(e) => e,
        PackedModel::Decoder(_) => panic!("expected an encoder"),
    }
}

/// The error text of opening `bytes` as a packed model, or `None` if it
/// opens.
fn open_error(dir: &Path, bytes: &[u8], options: &LoadOptions) -> Option<String> {
    let p = dir.join("bad.qlm");
    std::fs::write(&p, bytes).unwrap();
    open_packed(&p, options, &mut |_| {}).err().map(|e| e.to_string())
}

#[test]
fn packed_minilm_equals_the_in_memory_model_of_the_same_plan() {
    let Some(dir) = minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("minilm.qlm");
    let report = pack_bert(&dir, &mixed, None, &path).unwrap();
    assert_eq!(report.summary.tensors.iter().filter(|t| t.quantizable).count(), 37);

    let tok = SentenceTokenizer::from_file(&dir.tokenizer_path, dir.max_seq_length).unwrap();
    for act in [ActivationFormat::F32, ActivationFormat::Int8] {
        let memory = BertEncoder::load(&dir, &mixed).unwrap().with_activations(act);
        let options = LoadOptions { activations: Some(act), ..LoadOptions::default() };
        let mut log = Vec::new();
        let loaded = open_packed(&path, &options, &mut |l| log.push(l.to_owned())).unwrap();
        assert!(log.is_empty(), "nothing converted: {log:?}");
        let weights = loaded.placements.iter().filter(|p| p.kernel.is_some());
        assert_eq!(weights.clone().count(), 36);
        for p in weights {
            // Tiled weights keep only their tiles; the others are read in place.
            let tiled = matches!(p.stored, WeightFormat::Grouped(_));
            assert_eq!(p.mapped, !tiled, "{}", p.name);
            let [rows, cols] = p.shape;
            assert_eq!(p.bytes, LinearWeight::prepared_bytes(p.stored, rows, cols), "{}", p.name);
        }
        let packed = encoder(loaded.model);
        for s in SENTENCES {
            let expected = memory.embed_ids(&tok.encode(s).unwrap()).unwrap();
            assert_eq!(packed.embed(s).unwrap(), expected, "{s} ({act:?})");
        }
    }
}

#[test]
fn every_packed_format_runs_with_its_kernel_disabled() {
    let Some(dir) = minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // (format, the family to disable, the smallest cosine to the native run)
    let cases = [
        ("f32", "f32", 0.99999),
        ("f16", "f16", 0.999_999),
        ("int8", "int8", 0.99999),
        ("int8g64", "int8", 0.999_999),
        ("int4", "int4", 0.999_999),
        ("int3g128", "int3", 0.999_999),
        ("int2", "int2", 0.999_999),
    ];
    for (name, family, floor) in cases {
        let format: WeightFormat = name.parse().unwrap();
        let path = tmp.path().join(format!("{name}.qlm"));
        pack_bert(&dir, &|_| format, None, &path).unwrap();
        let native = encoder(open(&path, &LoadOptions::default()).0);
        let mut registry = KernelRegistry::detect();
        registry.disable(family.parse().unwrap());
        let options = LoadOptions { registry, ..LoadOptions::default() };
        let (model, log) = open(&path, &options);
        let fallback = encoder(model);
        // 36 linear weights converted (the embedding table needs no kernel).
        assert_eq!(log.len(), 36, "{name}: {log:?}");
        assert!(log[0].contains(&format!("no {family} kernel")), "{}", log[0]);
        for s in SENTENCES {
            let c = cosine(&native.embed(s).unwrap(), &fallback.embed(s).unwrap());
            assert!(c >= floor, "{name} with {family} disabled: cosine {c}");
        }
    }
}

#[test]
fn conversions_are_cached_beside_the_model_for_the_next_start() {
    let Some(dir) = minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.qlm");
    pack_bert(&dir, &mixed, None, &path).unwrap();
    let mut registry = KernelRegistry::detect();
    registry.disable("int2".parse().unwrap());
    registry.disable("int3".parse().unwrap());
    let options = LoadOptions { registry, fallback_cache: true, ..LoadOptions::default() };
    let cache = qloader_runtime::packed::fallback_cache::cache_path(&path);
    assert_eq!(cache.file_name().unwrap(), "m.qlm.fallback");

    let (first, log) = open(&path, &options);
    let converted = log.iter().filter(|l| l.contains("(converted")).count();
    assert!(converted > 0 && log.last().unwrap().contains("wrote the fallback cache"), "{log:?}");
    assert!(cache.exists());
    let (second, log) = open(&path, &options);
    assert_eq!(log.iter().filter(|l| l.contains("(the copy in")).count(), converted, "{log:?}");
    assert!(!log.iter().any(|l| l.contains("wrote")), "nothing new to cache: {log:?}");
    let (first, second) = (encoder(first), encoder(second));
    for s in SENTENCES {
        assert_eq!(first.embed(s).unwrap(), second.embed(s).unwrap());
    }

    // A damaged cache is not used: the tensors are converted again.
    let mut bytes = std::fs::read(&cache).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    std::fs::write(&cache, &bytes).unwrap();
    let (_, log) = open(&path, &options);
    assert!(log.iter().any(|l| l.contains("(converted")), "{log:?}");
    std::fs::write(&cache, b"not a cache").unwrap();
    let (_, log) = open(&path, &options);
    assert!(log[0].contains("ignoring the fallback cache"), "{log:?}");
}

#[test]
fn packed_smollm2_equals_the_in_memory_model_of_the_same_plan() {
    let gguf = fixtures::smollm2_gguf();
    if !present(&gguf) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("smollm2.qlm");
    // Cheap formats keep packing fast in a debug build; the head (tied to
    // the embeddings) is quantized too, so the look-up reads a quantized head.
    let plan = |name: &str| {
        let n = name.bytes().map(usize::from).sum::<usize>();
        ["int8", "int4g32", "f16", "int8g32"][n % 4].parse::<WeightFormat>().unwrap()
    };
    pack_decoder(&gguf, &plan, None, &path, &mut |_, _| {}).unwrap();
    // A packed decoder runs with int8 activations unless told otherwise.
    let memory = LlamaModel::load(&gguf, &plan, &mut |_, _| {})
        .unwrap()
        .with_activations(ActivationFormat::Int8);
    let file = qloader_format::gguf::GgufFile::open(&gguf).unwrap();
    let tokenizer = GgufTokenizer::from_gguf(&file).unwrap();
    let (model, log) = open(&path, &LoadOptions::default());
    assert!(log.is_empty());
    let PackedModel::Decoder(session) = model else { panic!("expected a decoder") };
    assert_eq!(session.model.activations(), ActivationFormat::Int8);
    let text = "<|im_start|>user\nOnce upon a time, in a small village by the sea, 1234<|im_end|>";
    let ids = tokenizer.encode(text).unwrap();
    assert_eq!(session.tokenizer.encode(text).unwrap(), ids, "the packed tokenizer agrees");
    assert_eq!(session.tokenizer.decode(&ids).unwrap(), tokenizer.decode(&ids).unwrap());
    assert_eq!(session.tokenizer.eos(), tokenizer.eos());
    let logits = |m: &dyn Decoder| m.forward(&ids, &mut m.new_cache(64), Logits::All).unwrap();
    assert_eq!(logits(session.model.as_ref()), logits(&memory));
}

#[test]
fn damaged_packed_models_give_clear_errors() {
    let Some(dir) = minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.qlm");
    pack_bert(&dir, &|_| "int4".parse().unwrap(), None, &path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let defaults = LoadOptions::default();

    // A flipped byte in the last tensor: a checksum error naming it, or,
    // without verification, a model that loads.
    let mut flipped = good.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 0x40;
    let e = open_error(tmp.path(), &flipped, &defaults).unwrap();
    assert!(e.contains("checksum") && e.contains("encoder.layer.5.output.LayerNorm.bias"), "{e}");
    let unverified = LoadOptions { verify: false, ..LoadOptions::default() };
    assert!(open_error(tmp.path(), &flipped, &unverified).is_none());

    let e = open_error(tmp.path(), &good[..good.len() - 1], &defaults).unwrap();
    assert!(e.contains("bad.qlm") && e.contains("trunc"), "{e}");

    let mut version = good.clone();
    version[8] = 9;
    let e = open_error(tmp.path(), &version, &defaults).unwrap();
    assert!(e.contains("version 9"), "{e}");

    // An architecture this build does not run (same length, so the layout
    // stays valid).
    let head = String::from_utf8_lossy(&good[..8192]).into_owned();
    let at = head.find("\"architecture\":\"bert\"").expect("compact header");
    let mut other = good.clone();
    other[at + 16..at + 20].copy_from_slice(b"gpt2");
    let e = open_error(tmp.path(), &other, &defaults).unwrap();
    assert!(e.contains("architecture `gpt2`"), "{e}");
}

#[test]
fn a_missing_tensor_is_named() {
    let Some(dir) = minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full.qlm");
    pack_bert(&dir, &|_| WeightFormat::F16, None, &full).unwrap();
    // The same header and blobs over a file without one of the tensors.
    let file = qloader_format::PackedFile::open(&full).unwrap();
    let mut writer = qloader_format::PackedWriter::new(qloader_format::PackedMeta {
        created_by: "test".into(),
        architecture: file.architecture().into(),
        config: file.config().clone(),
        plan: None,
        quantization: None,
    });
    for name in file.blob_names() {
        writer.add_blob(name, file.blob(name).unwrap());
    }
    let gone = "encoder.layer.2.attention.self.key.weight";
    for t in file.tensors().filter(|t| t.name() != gone) {
        writer.add_tensor(t.name(), t.rows(), t.cols(), t.parts());
    }
    let cut = tmp.path().join("cut.qlm");
    writer.write(&cut).unwrap();
    let e = match open_packed(&cut, &LoadOptions::default(), &mut |_| {}) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a model without a tensor loaded"),
    };
    assert!(e.contains(gone) && e.contains("cut.qlm"), "{e}");
}

/// A head tied to the embeddings that is replaced (as GPTQ replaces it)
/// stays tied: the file holds the replacement as the head and no separate
/// embedding table, and the look-up reads the replacement's values.
#[test]
fn a_replaced_tied_head_stays_tied() {
    use qloader_runtime::packed::{pack_decoder_with, Quantization};
    let gguf = fixtures::smollm2_gguf();
    if !present(&gguf) {
        return;
    }
    let file = qloader_format::gguf::GgufFile::open(&gguf).unwrap();
    let table = file.tensor_f32("token_embd.weight").unwrap();
    let (vocab, hidden) = (table.shape[0], table.shape[1]);
    let head = qloader_quant::LinearWeight::quantize(
        qloader_kernels::DenseMatrix::new(vocab, hidden, table.data).unwrap(),
        "int4g32".parse().unwrap(),
    );
    let quantization = Quantization {
        replacements: [("output.weight".to_owned(), head.clone())].into(),
        ..Quantization::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tied.qlm");
    let plan = |name: &str| {
        if name == "output.weight" { "int4g32" } else { "int8" }.parse::<WeightFormat>().unwrap()
    };
    let report =
        pack_decoder_with(&gguf, &plan, quantization, None, &path, &mut |_, _| {}).unwrap();
    let names: Vec<&str> = report.summary.tensors.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"output.weight") && !names.contains(&"token_embd.weight"), "{names:?}");
    let (model, _) = open(&path, &LoadOptions::default());
    let PackedModel::Decoder(session) = model else { panic!("expected a decoder") };
    let mut want = vec![0.0f32; hidden];
    head.dequantize_row(7, &mut want);
    let looked_up = session.model.block_input(&[7], &mut Probe::none()).unwrap();
    assert_eq!(looked_up, want, "the look-up reads the replaced head");
}
