//! Writes the seed corpora into `fuzz/corpus/<target>/`: small valid files
//! made here (a tiny BERT checkpoint, a tiny Llama GGUF with a tokenizer,
//! the tiny decoder checkpoints of the family goldens,
//! packed models in every format, a table and a plan) and the project's
//! real inputs where they are small (the shipped device profiles, MiniLM's
//! `config.json` when the fixture is fetched).

use std::collections::BTreeMap;
use std::path::PathBuf;

use qloader_analyze::table::TensorEntry;
use qloader_analyze::table::{CalibrationInfo, FormatEntry, ModelInfo, Timings, SCHEMA, VERSION};
use qloader_analyze::{Measure, SensitivityTable};
use qloader_format::nested;
use qloader_format::{fixtures, PackedMeta, PackedWriter, WeightFormat};
use qloader_fuzz::join;
use qloader_quant::LinearWeight;
use safetensors::tensor::TensorView;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        std::fs::write(dir.join(name), bytes).expect("seed");
    };

    let (config, weights) = tiny_bert();
    put("model_dir", "tiny-bert", &join(config.as_bytes(), &weights));
    if let Ok(real) = std::fs::read(fixtures::minilm_dir().join("config.json")) {
        put("model_dir", "minilm-config", &join(&real, &weights));
    }

    // The tiny decoders of the family goldens: single file and sharded.
    let families = root.join("../crates/qloader-models/tests/data/families");
    for family in ["llama", "qwen2", "gemma2", "gemma3", "phi3"] {
        let dir = families.join(family).join("hf");
        let config = std::fs::read(dir.join("config.json")).expect("family config");
        let weights = std::fs::read(dir.join("model.safetensors")).expect("family weights");
        put("hf_decoder", &format!("{family}-single"), &join(&config, &join(&[], &weights)));
        let names: Vec<String> = qloader_format::SafetensorsFile::open(&dir.join("model.safetensors"))
            .expect("family weights")
            .tensor_names();
        let map: BTreeMap<String, &str> =
            names.into_iter().map(|n| (n, "model-00001-of-00001.safetensors")).collect();
        let index = serde_json::to_vec(&serde_json::json!({ "weight_map": map })).expect("index");
        put("hf_decoder", &format!("{family}-sharded"), &join(&config, &join(&index, &weights)));
    }

    for name in ["sentencepiece.gguf", "sentencepiece-no-prefix.gguf"] {
        let path = families.join("sentencepiece").join(name);
        put("gguf_tokenizer", name, &std::fs::read(path).expect("SentencePiece GGUF"));
    }

    let gguf = tiny_gguf();
    put("gguf", "tiny-llama", &gguf);
    put("gguf", "llama-cpp-blocks", &llama_cpp_blocks_gguf(&root));
    put("gguf_tokenizer", "tiny-llama", &gguf);

    for (i, bytes) in tiny_packed().iter().enumerate() {
        put("packed", &format!("packed-{i}"), bytes);
    }

    let table = tiny_table();
    let table_json = serde_json::to_vec_pretty(&table).expect("table JSON");
    put("sensitivity_table", "tiny", &table_json);

    let profiles = root.join("../profiles");
    for entry in std::fs::read_dir(&profiles).expect("profiles/") {
        let path = entry.expect("profile").path();
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        put("profile", &name, &std::fs::read(&path).expect("profile"));
    }

    let scratch = std::env::temp_dir().join(format!("qloader-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let table_path = scratch.join("table.json");
    table.write(&table_path).expect("table");
    let sources =
        qloader_schedule::Sources::read(&table_path, &profiles.join("edge-arm-512mib.toml"))
            .expect("sources");
    for budget in ["4.5bpw", "8bpw"] {
        let options = qloader_schedule::PlanOptions {
            budget: Some(budget.parse().expect("budget")),
            ..Default::default()
        };
        let plan = qloader_schedule::make_plan(&sources, &options).expect("plan");
        put("plan", budget, &serde_json::to_vec_pretty(&plan).expect("plan JSON"));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!("wrote seeds into {}", corpus.display());
}

/// Deterministic small values.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i * 7919 + seed * 31) % 211) as f32 / 105.0 - 1.0) * 0.5).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A 1-layer BERT with width 32: `config.json` text and safetensors bytes.
fn tiny_bert() -> (String, Vec<u8>) {
    let (h, ff, vocab, pos) = (32usize, 64usize, 16usize, 8usize);
    let config = format!(
        r#"{{"architectures":["BertModel"],"hidden_size":{h},"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":{ff},"vocab_size":{vocab},"max_position_embeddings":{pos},"type_vocab_size":2,"layer_norm_eps":1e-12,"hidden_act":"gelu"}}"#
    );
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![vocab, h]),
        ("embeddings.position_embeddings.weight".into(), vec![pos, h]),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for (path, out, inp) in [
        ("attention.self.query", h, h),
        ("attention.self.key", h, h),
        ("attention.self.value", h, h),
        ("attention.output.dense", h, h),
        ("intermediate.dense", ff, h),
        ("output.dense", h, ff),
    ] {
        shapes.push((format!("encoder.layer.0.{path}.weight"), vec![out, inp]));
        shapes.push((format!("encoder.layer.0.{path}.bias"), vec![out]));
    }
    for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
        shapes.push((format!("encoder.layer.0.{norm}.weight"), vec![h]));
        shapes.push((format!("encoder.layer.0.{norm}.bias"), vec![h]));
    }
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n = shape.iter().product();
            (name, shape, f32_bytes(&values(n, i)))
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes).expect("view"),
            )
        })
        .collect();
    (config, safetensors::serialize(views, None).expect("safetensors"))
}

/// GGUF v3 writer for the seeds: metadata values and F32 tensors.
enum Value {
    U32(u32),
    F32(f32),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
    Bool(bool),
}

fn gguf_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// A GGUF file of `f32` tensors with made-up values.
fn gguf_file(kv: &[(&str, Value)], tensors: &[(&str, Vec<usize>)]) -> Vec<u8> {
    let typed: Vec<(&str, Vec<usize>, u32, Vec<u8>)> = tensors
        .iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            (*name, shape.clone(), 0, f32_bytes(&values(shape.iter().product(), i)))
        })
        .collect();
    typed_gguf_file(kv, &typed)
}

/// A GGUF file of tensors given as `(name, shape, GGML type id, data)`.
fn typed_gguf_file(kv: &[(&str, Value)], tensors: &[(&str, Vec<usize>, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((kv.len() as u64).to_le_bytes());
    for (key, value) in kv {
        gguf_string(&mut out, key);
        match value {
            Value::U32(v) => {
                out.extend(4u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Value::F32(v) => {
                out.extend(6u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Value::Bool(v) => {
                out.extend(7u32.to_le_bytes());
                out.push(u8::from(*v));
            }
            Value::Str(s) => {
                out.extend(8u32.to_le_bytes());
                gguf_string(&mut out, s);
            }
            Value::Strs(list) => {
                out.extend(9u32.to_le_bytes());
                out.extend(8u32.to_le_bytes());
                out.extend((list.len() as u64).to_le_bytes());
                for s in list {
                    gguf_string(&mut out, s);
                }
            }
            Value::I32s(list) => {
                out.extend(9u32.to_le_bytes());
                out.extend(5u32.to_le_bytes());
                out.extend((list.len() as u64).to_le_bytes());
                for v in list {
                    out.extend(v.to_le_bytes());
                }
            }
        }
    }
    let mut offset = 0u64;
    let mut blobs = Vec::new();
    for (name, shape, ty, bytes) in tensors {
        gguf_string(&mut out, name);
        out.extend((shape.len() as u32).to_le_bytes());
        // GGUF lists dimensions innermost first.
        for d in shape.iter().rev() {
            out.extend((*d as u64).to_le_bytes());
        }
        out.extend(ty.to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset += (bytes.len() as u64).div_ceil(32) * 32;
        blobs.push(bytes.clone());
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    for b in blobs {
        let padded = b.len().div_ceil(32) * 32;
        out.extend(&b);
        out.resize(out.len() + padded - b.len(), 0);
    }
    out
}

/// A 1-block Llama (width 32, 2 heads, vocabulary of 16 byte-level tokens
/// and two control tokens) with tied embeddings.
fn tiny_gguf() -> Vec<u8> {
    let (h, ff, vocab) = (32usize, 64usize, 18usize);
    let mut tokens: Vec<String> =
        ["H", "e", "l", "o", "Ġ", "w", "r", "d", "1", "2", "3", "4", "!", "ö", "He", "ll"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    tokens.push("<|im_start|>".into());
    tokens.push("<|im_end|>".into());
    let mut types = vec![1i32; 16];
    types.extend([3, 3]);
    let kv = vec![
        ("general.architecture", Value::Str("llama".into())),
        ("llama.block_count", Value::U32(1)),
        ("llama.embedding_length", Value::U32(h as u32)),
        ("llama.feed_forward_length", Value::U32(ff as u32)),
        ("llama.attention.head_count", Value::U32(2)),
        ("llama.attention.head_count_kv", Value::U32(1)),
        ("llama.context_length", Value::U32(64)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("tokenizer.ggml.model", Value::Str("gpt2".into())),
        ("tokenizer.ggml.pre", Value::Str("smollm".into())),
        ("tokenizer.ggml.tokens", Value::Strs(tokens)),
        ("tokenizer.ggml.token_type", Value::I32s(types)),
        ("tokenizer.ggml.merges", Value::Strs(vec!["H e".into(), "l l".into()])),
        ("tokenizer.ggml.bos_token_id", Value::U32(16)),
        ("tokenizer.ggml.eos_token_id", Value::U32(17)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
        ("tokenizer.chat_template", Value::Str("<|im_start|>{{ m }}<|im_end|>".into())),
    ];
    let kv_width = h / 2;
    let tensors: Vec<(&str, Vec<usize>)> = vec![
        ("token_embd.weight", vec![vocab, h]),
        ("blk.0.attn_norm.weight", vec![h]),
        ("blk.0.attn_q.weight", vec![h, h]),
        ("blk.0.attn_k.weight", vec![kv_width, h]),
        ("blk.0.attn_v.weight", vec![kv_width, h]),
        ("blk.0.attn_output.weight", vec![h, h]),
        ("blk.0.ffn_norm.weight", vec![h]),
        ("blk.0.ffn_gate.weight", vec![ff, h]),
        ("blk.0.ffn_up.weight", vec![ff, h]),
        ("blk.0.ffn_down.weight", vec![h, ff]),
        ("output_norm.weight", vec![h]),
    ];
    gguf_file(&kv, &tensors)
}

/// The blocks llama.cpp wrote for the bit-identity tests (2 × 512 each),
/// one tensor per quantized type: Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q5_K, IQ4_NL, IQ4_XS and
/// the lattice and ternary types IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ3_S,
/// IQ2_S, IQ1_M, TQ1_0, TQ2_0.
fn llama_cpp_blocks_gguf(root: &std::path::Path) -> Vec<u8> {
    let data = root.join("../crates/qloader-format/tests/data");
    let tensors: Vec<(&str, Vec<usize>, u32, Vec<u8>)> = [
        ("q4_0", "llama-q4_0.bin", 2),
        ("q4_1", "llama-q4_1.bin", 3),
        ("q5_0", "llama-q5_0.bin", 6),
        ("q8_0", "llama-q8_0.bin", 8),
        ("q4_k", "llama-q4_k.bin", 12),
        ("q5_k", "llama-q5_k.bin", 13),
        ("iq4_nl", "llama-iq4_nl.bin", 20),
        ("iq4_xs", "llama-iq4_xs.bin", 23),
        ("iq2_xxs", "llama-iq2_xxs.bin", 16),
        ("iq2_xs", "llama-iq2_xs.bin", 17),
        ("iq3_xxs", "llama-iq3_xxs.bin", 18),
        ("iq1_s", "llama-iq1_s.bin", 19),
        ("iq3_s", "llama-iq3_s.bin", 21),
        ("iq2_s", "llama-iq2_s.bin", 22),
        ("iq1_m", "llama-iq1_m.bin", 29),
        ("tq1_0", "llama-tq1_0.bin", 34),
        ("tq2_0", "llama-tq2_0.bin", 35),
    ]
    .into_iter()
    .map(|(name, file, ty)| {
        (name, vec![2, 512], ty, std::fs::read(data.join(file)).expect("llama.cpp blocks"))
    })
    .collect();
    typed_gguf_file(&[("general.architecture", Value::Str("llama".into()))], &tensors)
}

/// Packed models: every format once, with a bert header and blobs; and a
/// llama header over no tensors.
fn tiny_packed() -> Vec<Vec<u8>> {
    let formats = [
        "f32", "f16", "int8", "int8g64", "int4", "int3g128", "int2g64", "int4k", "int2k", "nl4k",
        "q4_0", "q5_0", "q8_0", "iq4_nl", "int5k",
    ];
    let weights: Vec<(String, LinearWeight)> = formats
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let format: WeightFormat = f.parse().expect("format");
            let dense = qloader_kernels::DenseMatrix::new(3, 70, values(210, i)).expect("shape");
            (format!("t.{f}"), LinearWeight::quantize(dense, format))
        })
        .collect();
    let parts: Vec<_> = weights.iter().map(|(_, w)| w.stored_parts()).collect();
    let config = serde_json::json!({"pooling": "mean", "normalize": true, "max_seq_length": 8});
    let meta = PackedMeta {
        created_by: "seed".into(),
        architecture: "bert".into(),
        config,
        plan: None,
        quantization: Some(qloader_format::QuantRecord {
            method: qloader_format::QuantMethod::Imatrix,
            calibration: Some("seed".into()),
        }),
    };
    let mut writer = PackedWriter::new(meta);
    let (bert_config, _) = tiny_bert();
    writer.add_blob("config.json", bert_config.as_bytes());
    for ((name, _), p) in weights.iter().zip(&parts) {
        writer.add_tensor(name.clone(), 3, 70, p.as_tensor_parts());
    }
    let dir = std::env::temp_dir().join(format!("qloader-packed-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let path = dir.join("a.qlm");
    writer.write(&path).expect("packed");
    let first = std::fs::read(&path).expect("packed");
    let llama = PackedWriter::new(PackedMeta {
        created_by: "seed".into(),
        architecture: "llama".into(),
        config: serde_json::json!({"model": {"layers": 1}, "tokenizer": {}}),
        plan: None,
        quantization: None,
    });
    llama.write(&path).expect("packed");
    let second = std::fs::read(&path).expect("packed");
    // Two plans over the first four tensors: each variant stored once.
    let mut multi = PackedWriter::new(plain_bert_meta());
    multi.add_blob("config.json", bert_config.as_bytes());
    for p in parts.iter().take(4) {
        multi.add_variant("t", 3, 70, p.as_tensor_parts());
    }
    for (i, (name, _)) in weights.iter().take(4).enumerate() {
        let format: WeightFormat = name.trim_start_matches("t.").parse().expect("format");
        multi.add_plan(qloader_format::PackedPlan {
            name: format!("plan{i}"),
            bits_per_weight: format.bits_per_weight(),
            predicted_loss: Some(1.0 / (i + 1) as f64),
            plan: None,
            formats: [("t".to_owned(), format)].into_iter().collect(),
            tensor_losses: [("t".to_owned(), 1.0 / (i + 1) as f64)].into_iter().collect(),
        });
    }
    multi.write(&path).expect("packed");
    let third = std::fs::read(&path).expect("packed");
    // A nested chain: int3k, then int4 and int8g32 as bit planes on it.
    let dense = qloader_kernels::DenseMatrix::new(3, 70, values(210, 7)).expect("shape");
    let int3k: WeightFormat = "int3k".parse().expect("format");
    let root = LinearWeight::quantize(dense.clone(), int3k).stored_parts();
    let qloader_quant::StoredParts::Compact { layout, codes } = &root else {
        unreachable!("int3k is compact")
    };
    let four = {
        let chain = nested::Chain { root: *layout, root_codes: codes, links: &[] };
        nested::encode_link(&chain, 1, dense.data(), 3, 70)
    };
    let eight = {
        let links = [(1u8, four.as_slice())];
        let chain = nested::Chain { root: *layout, root_codes: codes, links: &links };
        nested::encode_link(&chain, 4, dense.data(), 3, 70)
    };
    let mut chained = PackedWriter::new(plain_bert_meta());
    chained.add_blob("config.json", bert_config.as_bytes());
    chained.add_variant("t", 3, 70, root.as_tensor_parts());
    let planes = |bits: u8, extra: u8, planes| qloader_format::TensorParts::Planes {
        layout: nested::rebuilt_layout(bits).expect("a width"),
        extra,
        planes,
    };
    chained.add_nested_variant("t", 3, 70, planes(4, 1, &four), int3k);
    chained.add_nested_variant("t", 3, 70, planes(8, 4, &eight), WeightFormat::int4());
    for (i, format) in ["int3k", "int4", "int8g32"].into_iter().enumerate() {
        let format: WeightFormat = format.parse().expect("format");
        chained.add_plan(qloader_format::PackedPlan {
            name: format!("nested{i}"),
            bits_per_weight: format.bits_per_weight(),
            predicted_loss: Some(1.0 / (i + 1) as f64),
            plan: None,
            formats: [("t".to_owned(), format)].into_iter().collect(),
            tensor_losses: [("t".to_owned(), 1.0 / (i + 1) as f64)].into_iter().collect(),
        });
    }
    chained.write(&path).expect("packed");
    let fourth = std::fs::read(&path).expect("packed");
    let _ = std::fs::remove_dir_all(&dir);
    vec![first, second, third, fourth]
}

/// A table of four tensors in five formats.
fn tiny_table() -> SensitivityTable {
    let formats = ["int8", "int4", "int3", "int2g128", "f16"];
    let kinds = ["attn_q", "attn_v", "mlp_down", "head"];
    let tensors = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let (rows, cols) = (64 * (i + 1), 128);
            let formats: BTreeMap<WeightFormat, FormatEntry> = formats
                .iter()
                .map(|f| {
                    let format: WeightFormat = f.parse().expect("format");
                    let loss = (i + 1) as f64 * 4f64.powf(-format.bits_per_weight());
                    let entry = FormatEntry {
                        bytes: format.storage_bytes(rows, cols) as u64,
                        weight_mse: loss,
                        proxy: Some(loss * 10.0),
                        e2e: Some(loss * 3.0),
                        e2e_estimate: Some(loss * 3.0),
                    };
                    (format, entry)
                })
                .collect();
            TensorEntry {
                name: format!("blk.{i}.t.weight"),
                shape: [rows, cols],
                kind: kind.to_string(),
                layer: (*kind != "head").then_some(i),
                formats,
            }
        })
        .collect();
    SensitivityTable {
        schema: SCHEMA.into(),
        version: VERSION,
        model: ModelInfo {
            path: "seed".into(),
            architecture: "llama".into(),
            quantizable_params: 10 * 64 * 128,
        },
        calibration: CalibrationInfo {
            data_free: false,
            source: Some("alice.txt".into()),
            samples: 2,
            tokens: 64,
            e2e_samples: 1,
            e2e_tokens: 32,
            held_out: 0,
        },
        method: qloader_format::QuantMethod::Imatrix,
        measures: vec![Measure::WeightMse, Measure::Proxy, Measure::E2e, Measure::E2eEstimate],
        e2e_metric: Some(qloader_analyze::E2eMetric::Kl),
        e2e_formats: formats.iter().map(|f| f.parse().expect("format")).collect(),
        formats: formats.iter().map(|f| f.parse().expect("format")).collect(),
        tensors,
        timings: Timings { proxy_seconds: 1.0, e2e_seconds: 1.0, total_seconds: 2.0, threads: 1 },
    }
}

/// A tiny encoder's header fields, without plan or quantization record.
fn plain_bert_meta() -> PackedMeta {
    PackedMeta {
        created_by: "seed".into(),
        architecture: "bert".into(),
        config: serde_json::json!({"pooling": "mean", "normalize": true, "max_seq_length": 8}),
        plan: None,
        quantization: None,
    }
}
