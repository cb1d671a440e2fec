//! Every way a model directory can be broken gives an error that names the
//! file (and tensor or field) and says what is wrong. The models are tiny
//! BERTs written by the test itself, so the suite needs no fixture.

use std::path::Path;

use qloader_format::{ActivationFormat, WeightFormat};
use qloader_models::bert::ModelDir;
use qloader_models::{BertEncoder, SentenceTokenizer};
use safetensors::tensor::{Dtype, TensorView};

const HIDDEN: usize = 8;
const INTERMEDIATE: usize = 16;
const VOCAB: usize = 12;
const POSITIONS: usize = 16;

fn config(layers: usize, hidden: usize) -> String {
    format!(
        r#"{{"architectures":["BertModel"],"model_type":"bert","hidden_size":{hidden},
        "num_hidden_layers":{layers},"num_attention_heads":2,"intermediate_size":{INTERMEDIATE},
        "max_position_embeddings":{POSITIONS},"vocab_size":{VOCAB},"type_vocab_size":2,
        "layer_norm_eps":1e-12,"hidden_act":"gelu"}}"#
    )
}

/// A WordPiece tokenizer whose vocabulary has `extra` words beyond the
/// model's (so ids ≥ VOCAB can be produced on purpose).
fn tokenizer(extra: &[&str]) -> String {
    let mut words = vec!["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "the", "cat"];
    words.extend_from_slice(extra);
    let vocab: Vec<String> =
        words.iter().enumerate().map(|(i, w)| format!("\"{w}\":{i}")).collect();
    format!(
        r###"{{"version":"1.0","truncation":null,"padding":{{"strategy":{{"Fixed":16}},"direction":"Right","pad_to_multiple_of":null,"pad_id":0,"pad_type_id":0,"pad_token":"[PAD]"}},"added_tokens":[],
        "normalizer":{{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}},
        "pre_tokenizer":{{"type":"BertPreTokenizer"}},
        "post_processor":{{"type":"TemplateProcessing",
          "single":[{{"SpecialToken":{{"id":"[CLS]","type_id":0}}}},{{"Sequence":{{"id":"A","type_id":0}}}},{{"SpecialToken":{{"id":"[SEP]","type_id":0}}}}],
          "pair":[{{"Sequence":{{"id":"A","type_id":0}}}},{{"Sequence":{{"id":"B","type_id":1}}}}],
          "special_tokens":{{"[CLS]":{{"id":"[CLS]","ids":[2],"tokens":["[CLS]"]}},"[SEP]":{{"id":"[SEP]","ids":[3],"tokens":["[SEP]"]}}}}}},
        "decoder":null,
        "model":{{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{{{}}}}}}}"###,
        vocab.join(",")
    )
}

/// Deterministic small weights.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i * 31 + seed * 17) % 23) as f32 - 11.0) / 20.0).collect()
}

/// The tensors of a BERT with `layers` layers, as (name, shape, dtype, bytes).
fn tensors(layers: usize) -> Vec<(String, Vec<usize>, Dtype, Vec<u8>)> {
    let mut specs: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![VOCAB, HIDDEN]),
        ("embeddings.position_embeddings.weight".into(), vec![POSITIONS, HIDDEN]),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, HIDDEN]),
        ("embeddings.LayerNorm.weight".into(), vec![HIDDEN]),
        ("embeddings.LayerNorm.bias".into(), vec![HIDDEN]),
    ];
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", HIDDEN, HIDDEN),
            ("attention.self.key", HIDDEN, HIDDEN),
            ("attention.self.value", HIDDEN, HIDDEN),
            ("attention.output.dense", HIDDEN, HIDDEN),
            ("intermediate.dense", INTERMEDIATE, HIDDEN),
            ("output.dense", HIDDEN, INTERMEDIATE),
        ] {
            specs.push((format!("{p}.{name}.weight"), vec![out, inp]));
            specs.push((format!("{p}.{name}.bias"), vec![out]));
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            specs.push((format!("{p}.{norm}.weight"), vec![HIDDEN]));
            specs.push((format!("{p}.{norm}.bias"), vec![HIDDEN]));
        }
    }
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n: usize = shape.iter().product();
            let mut v = values(n, i);
            if name.ends_with("LayerNorm.weight") {
                v.iter_mut().for_each(|x| *x += 1.0);
            }
            let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (name, shape, Dtype::F32, bytes)
        })
        .collect()
}

fn serialize(tensors: &[(String, Vec<usize>, Dtype, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, d, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// Writes a complete, valid tiny model into `dir`.
fn write_model(dir: &Path) {
    std::fs::write(dir.join("config.json"), config(1, HIDDEN)).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer(&[])).unwrap();
    std::fs::write(dir.join("model.safetensors"), serialize(&tensors(1))).unwrap();
}

fn model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path());
    dir
}

/// Opens the directory, loads the encoder and tokenizer, and embeds one
/// sentence; returns the first error as text.
fn load_error(dir: &Path) -> String {
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let md = ModelDir::open(dir)?;
        let tok = SentenceTokenizer::from_file(&md.tokenizer_path, md.max_seq_length)?;
        let enc = BertEncoder::load(&md, &|_| WeightFormat::int4())?;
        enc.embed_ids(&tok.encode("hello the world")?)?;
        Ok(())
    })();
    match result {
        Ok(()) => panic!("expected an error for {}", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "error {err:?} does not mention {p:?}");
    }
}

#[test]
fn tiny_model_loads_and_embeds_in_every_format() {
    let dir = model();
    let md = ModelDir::open(dir.path()).unwrap();
    let tok = SentenceTokenizer::from_file(&md.tokenizer_path, md.max_seq_length).unwrap();
    let ids = tok.encode("Hello the cat").unwrap();
    assert_eq!(ids, vec![2, 4, 6, 7, 3], "special tokens added, fixed padding removed");
    let reference =
        BertEncoder::load(&md, &|_| WeightFormat::F32).unwrap().embed_ids(&ids).unwrap();
    assert_eq!(reference.len(), HIDDEN);
    assert!(reference.iter().all(|v| v.is_finite()));
    for f in ["f16", "int8", "int4", "int3g64", "int2"].map(|n| n.parse::<WeightFormat>().unwrap())
    {
        for act in [ActivationFormat::F32, ActivationFormat::Int8] {
            let enc = BertEncoder::load(&md, &|_| f).unwrap().with_activations(act);
            let e = enc.embed_ids(&ids).unwrap();
            let dot: f32 = e.iter().zip(&reference).map(|(a, b)| a * b).sum();
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(dot / (norm(&e) * norm(&reference)) > 0.9, "{f} with {act} activations");
        }
        let enc = BertEncoder::load(&md, &|_| f).unwrap();
        // Six linear weights and the word-embedding table.
        assert_eq!(enc.summary().tensors.iter().filter(|t| t.quantizable).count(), 7);
        assert!(enc.summary().tensors.iter().filter(|t| t.quantizable).all(|t| t.format == f));
    }
}

#[test]
fn missing_directory() {
    let dir = model();
    let gone = dir.path().join("nope");
    assert_mentions(&load_error(&gone), &["nope", "does not exist"]);
    let file = dir.path().join("config.json");
    assert_mentions(&load_error(&file), &["config.json", "not a directory"]);
}

#[test]
fn missing_files() {
    for name in ["config.json", "model.safetensors", "tokenizer.json"] {
        let dir = model();
        std::fs::remove_file(dir.path().join(name)).unwrap();
        assert_mentions(&load_error(dir.path()), &[name, "missing"]);
    }
}

#[test]
fn malformed_config() {
    let dir = model();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, "{\"hidden_size\": 8,").unwrap();
    assert_mentions(&load_error(dir.path()), &["config.json", "invalid JSON"]);

    std::fs::write(&cfg, config(1, HIDDEN).replace("\"vocab_size\":12,", "")).unwrap();
    assert_mentions(&load_error(dir.path()), &["config.json", "vocab_size"]);

    std::fs::write(
        &cfg,
        config(1, HIDDEN).replace("\"num_attention_heads\":2", "\"num_attention_heads\":3"),
    )
    .unwrap();
    assert_mentions(
        &load_error(dir.path()),
        &["config.json", "num_attention_heads", "does not divide"],
    );

    std::fs::write(&cfg, config(1, HIDDEN).replace("\"vocab_size\":12", "\"vocab_size\":-4"))
        .unwrap();
    assert_mentions(&load_error(dir.path()), &["config.json", "invalid JSON"]);
}

#[test]
fn config_disagreeing_with_tensors() {
    let dir = model();
    let cfg = dir.path().join("config.json");
    // Wrong width: the first tensor read has the wrong shape.
    std::fs::write(&cfg, config(1, 16)).unwrap();
    assert_mentions(
        &load_error(dir.path()),
        &["model.safetensors", "embeddings.word_embeddings.weight", "[12, 8]", "expected [12, 16]"],
    );
    // More layers than the file has.
    std::fs::write(&cfg, config(2, HIDDEN)).unwrap();
    assert_mentions(&load_error(dir.path()), &["model.safetensors", "encoder.layer.1.", "missing"]);
    // Absurd layer count: rejected by validation, before any allocation.
    std::fs::write(&cfg, config(1 << 30, HIDDEN)).unwrap();
    assert_mentions(&load_error(dir.path()), &["config.json", "num_hidden_layers"]);
}

#[test]
fn broken_safetensors() {
    let dir = model();
    let path = dir.path().join("model.safetensors");
    let good = std::fs::read(&path).unwrap();

    std::fs::write(&path, &good[..good.len() - 7]).unwrap();
    assert_mentions(
        &load_error(dir.path()),
        &["model.safetensors", "invalid safetensors", "truncated"],
    );

    std::fs::write(&path, &good[..100]).unwrap();
    assert_mentions(&load_error(dir.path()), &["model.safetensors", "invalid safetensors"]);

    std::fs::write(&path, b"").unwrap();
    assert_mentions(&load_error(dir.path()), &["model.safetensors", "shorter than"]);

    // A header length far beyond the file (and beyond any sane cap).
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(1u64 << 50).to_le_bytes());
    std::fs::write(&path, &huge).unwrap();
    assert_mentions(&load_error(dir.path()), &["model.safetensors", "invalid safetensors"]);

    // Header bytes that are not JSON.
    let mut garbage = good.clone();
    garbage[8..16].copy_from_slice(b"\xff\xfe{{{{{{");
    std::fs::write(&path, &garbage).unwrap();
    assert_mentions(&load_error(dir.path()), &["model.safetensors", "invalid safetensors"]);
}

#[test]
fn wrong_dtype() {
    let dir = model();
    let mut t = tensors(1);
    let idx =
        t.iter().position(|(n, ..)| n == "encoder.layer.0.attention.self.key.weight").unwrap();
    t[idx].2 = Dtype::I32;
    std::fs::write(dir.path().join("model.safetensors"), serialize(&t)).unwrap();
    assert_mentions(
        &load_error(dir.path()),
        &["model.safetensors", "encoder.layer.0.attention.self.key.weight", "I32"],
    );
}

#[test]
fn broken_side_files() {
    let dir = model();
    std::fs::write(dir.path().join("tokenizer.json"), "{\"model\": 3}").unwrap();
    assert_mentions(&load_error(dir.path()), &["tokenizer.json", "invalid tokenizer"]);

    let dir = model();
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true}"#,
    )
    .unwrap();
    assert_mentions(&load_error(dir.path()), &["1_Pooling/config.json", "pooling_mode"]);

    let dir = model();
    std::fs::write(dir.path().join("sentence_bert_config.json"), r#"{"max_seq_length": 4096}"#)
        .unwrap();
    assert_mentions(&load_error(dir.path()), &["sentence_bert_config.json", "max_seq_length"]);
}

#[test]
fn tokenizer_vocabulary_larger_than_model() {
    let dir = model();
    let extra = ["a", "b", "c", "d", "e", "zebra"]; // "zebra" gets id 13 ≥ VOCAB = 12
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer(&extra)).unwrap();
    let md = ModelDir::open(dir.path()).unwrap();
    let tok = SentenceTokenizer::from_file(&md.tokenizer_path, md.max_seq_length).unwrap();
    let enc = BertEncoder::load(&md, &|_| WeightFormat::F32).unwrap();
    let err = enc.embed_ids(&tok.encode("zebra").unwrap()).unwrap_err().to_string();
    assert_mentions(&err, &["token id 13", "vocabulary of 12"]);
}
