//! Hugging Face decoder checkpoints: a tiny Qwen2-style decoder directory
//! (config.json, the weights in one file or in two shards with their index,
//! tokenizer.json), every file written here, and every way the directory
//! can be broken.

use super::bert::{safetensors, tokenizer_with, StTensor};
use super::{f32_bytes, values, Case, Content, Open};

const HIDDEN: usize = 8;
const KV: usize = 4;
const FFN: usize = 16;
const VOCAB: usize = 12;

/// `config.json` of the tiny decoder.
fn config() -> String {
    format!(
        r#"{{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_size":{HIDDEN},
"intermediate_size":{FFN},"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,
"max_position_embeddings":32,"rms_norm_eps":1e-6,"rope_theta":10000.0,"vocab_size":{VOCAB},
"tie_word_embeddings":true,"use_sliding_window":false,"hidden_act":"silu",
"bos_token_id":1,"eos_token_id":2}}
"#
    )
}

fn tokenizer() -> String {
    tokenizer_with(&[
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "the", "cat", "a", "b", "c", "d",
    ])
}

/// The tensors of the tiny decoder, in file order.
fn tensors() -> Vec<StTensor> {
    let p = "model.layers.0";
    let specs: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![VOCAB, HIDDEN]),
        (format!("{p}.input_layernorm.weight"), vec![HIDDEN]),
        (format!("{p}.self_attn.q_proj.weight"), vec![HIDDEN, HIDDEN]),
        (format!("{p}.self_attn.q_proj.bias"), vec![HIDDEN]),
        (format!("{p}.self_attn.k_proj.weight"), vec![KV, HIDDEN]),
        (format!("{p}.self_attn.k_proj.bias"), vec![KV]),
        (format!("{p}.self_attn.v_proj.weight"), vec![KV, HIDDEN]),
        (format!("{p}.self_attn.v_proj.bias"), vec![KV]),
        (format!("{p}.self_attn.o_proj.weight"), vec![HIDDEN, HIDDEN]),
        (format!("{p}.post_attention_layernorm.weight"), vec![HIDDEN]),
        (format!("{p}.mlp.gate_proj.weight"), vec![FFN, HIDDEN]),
        (format!("{p}.mlp.up_proj.weight"), vec![FFN, HIDDEN]),
        (format!("{p}.mlp.down_proj.weight"), vec![HIDDEN, FFN]),
        ("model.norm.weight".into(), vec![HIDDEN]),
    ];
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let v = values(shape.iter().product(), i + 40);
            StTensor { name, dtype: "F32", shape, data: f32_bytes(&v) }
        })
        .collect()
}

/// The files of the valid single-file directory.
pub fn model_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("config.json".into(), config().into_bytes()),
        ("model.safetensors".into(), safetensors(&tensors())),
        ("tokenizer.json".into(), tokenizer().into_bytes()),
    ]
}

/// The shards' names.
const SHARDS: [&str; 2] = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];

/// The files of the valid sharded directory: the first half of the tensors
/// in the first shard, the rest in the second; `index` may edit the index's
/// weight map (tensor → shard) before it is written.
pub fn sharded_files(index: impl FnOnce(&mut Vec<(String, String)>)) -> Vec<(String, Vec<u8>)> {
    let t = tensors();
    let (a, b) = t.split_at(t.len() / 2);
    let mut map: Vec<(String, String)> = a
        .iter()
        .map(|t| (t.name.clone(), SHARDS[0].to_owned()))
        .chain(b.iter().map(|t| (t.name.clone(), SHARDS[1].to_owned())))
        .collect();
    index(&mut map);
    let entries: Vec<String> = map.iter().map(|(t, s)| format!("\"{t}\":\"{s}\"")).collect();
    let index = format!("{{\"metadata\":{{}},\"weight_map\":{{{}}}}}", entries.join(","));
    vec![
        ("config.json".into(), config().into_bytes()),
        (SHARDS[0].into(), safetensors(a)),
        (SHARDS[1].into(), safetensors(b)),
        ("model.safetensors.index.json".into(), index.into_bytes()),
        ("tokenizer.json".into(), tokenizer().into_bytes()),
    ]
}

/// A directory of `files`, opened as a decoder.
fn dir_case(class: &'static str, files: Vec<(String, Vec<u8>)>, expected: &str) -> Case {
    Case {
        class,
        files: files.into_iter().map(|(n, b)| (n, Content::Bytes(b))).collect(),
        target: "",
        open: Open::Gguf,
        expected: expected.to_owned(),
    }
}

/// The valid directory with `name` replaced by `bytes` (or removed, for
/// `None`).
fn with_file(class: &'static str, name: &str, bytes: Option<Vec<u8>>, expected: &str) -> Case {
    let mut files: Vec<_> = model_files().into_iter().filter(|(n, _)| n != name).collect();
    files.extend(bytes.map(|b| (name.to_owned(), b)));
    dir_case(class, files, expected)
}

fn config_with(class: &'static str, from: &str, to: &str, expected: &str) -> Case {
    let text = config();
    assert!(text.contains(from), "{class}: config has no {from:?}");
    with_file(class, "config.json", Some(text.replacen(from, to, 1).into_bytes()), expected)
}

fn tensors_with(edit: impl FnOnce(&mut Vec<StTensor>)) -> Vec<u8> {
    let mut t = tensors();
    edit(&mut t);
    safetensors(&t)
}

/// The valid inputs: the single-file and the sharded directory.
pub fn valid() -> Vec<Case> {
    vec![
        dir_case("valid/hf-decoder", model_files(), ""),
        dir_case("valid/hf-decoder-sharded", sharded_files(|_| {}), ""),
    ]
}

/// Every Hugging Face decoder case.
pub fn cases() -> Vec<Case> {
    let q = "model.layers.0.self_attn.q_proj.weight";
    vec![
        config_with(
            "hf-decoder/unsupported-architecture",
            "\"Qwen2ForCausalLM\"",
            "\"GPT2LMHeadModel\"",
            &format!(
                "{{path}}/config.json: field `architectures`: architecture `GPT2LMHeadModel` is \
                 not supported (supported: {})",
                qloader_models::family::supported()
            ),
        ),
        config_with(
            "hf-decoder/encoder-architecture",
            "\"Qwen2ForCausalLM\"",
            "\"BertModel\"",
            "{path}/config.json: field `architectures`: a bert model is an encoder, not a decoder",
        ),
        with_file(
            "hf-decoder/missing-weights",
            "model.safetensors",
            None,
            "{path}/model.safetensors: missing (the model weights (or \
             model.safetensors.index.json for a sharded model))",
        ),
        with_file("hf-decoder/missing-tokenizer", "tokenizer.json", None, "{path}/tokenizer.json: missing (the tokenizer)"),
        config_with(
            "hf-decoder/absurd-layer-count",
            "\"num_hidden_layers\":1",
            "\"num_hidden_layers\":1000000",
            "{path}/config.json: field `(decoder shape)`: layers = 1000000 is outside 1..=1024",
        ),
        config_with(
            "hf-decoder/missing-field",
            "\"intermediate_size\":16,",
            "",
            "{path}/config.json: field `intermediate_size`: missing",
        ),
        config_with(
            "hf-decoder/field-wrong-type",
            "\"num_attention_heads\":2",
            "\"num_attention_heads\":\"two\"",
            "{path}/config.json: field `num_attention_heads`: \"two\" is not a non-negative integer",
        ),
        config_with(
            "hf-decoder/vocab-size-disagrees",
            "\"vocab_size\":12",
            "\"vocab_size\":13",
            "{path}/config.json: field `vocab_size`: 13, but `model.embed_tokens.weight` has 12 \
             rows",
        ),
        config_with(
            "hf-decoder/rope-scaling-unsupported",
            "\"rope_theta\":10000.0",
            "\"rope_theta\":10000.0,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0}",
            "{path}/config.json: field `rope_scaling`: RoPE type \"yarn\" is not supported",
        ),
        with_file(
            "hf-decoder/tensor-missing",
            "model.safetensors",
            Some(tensors_with(|t| t.retain(|t| t.name != q))),
            "{path}/model.safetensors: tensor `model.layers.0.self_attn.q_proj.weight` is missing",
        ),
        with_file(
            "hf-decoder/tensor-wrong-shape",
            "model.safetensors",
            Some(tensors_with(|t| {
                let w = t.iter_mut().find(|t| t.name == q).expect("q");
                w.shape = vec![4, 16];
            })),
            "{path}/model.safetensors: tensor `model.layers.0.self_attn.q_proj.weight` has shape \
             [4, 16], expected [8, 8]",
        ),
        with_file(
            "hf-decoder/tensor-wrong-dtype",
            "model.safetensors",
            Some(tensors_with(|t| {
                let w = t.iter_mut().find(|t| t.name == q).expect("q");
                w.dtype = "I32";
            })),
            "{path}/model.safetensors: tensor `model.layers.0.self_attn.q_proj.weight` has dtype \
             I32, expected one of F32, F16, BF16",
        ),
        with_file(
            "hf-decoder/tokenizer-beyond-vocabulary",
            "tokenizer.json",
            Some(
                tokenizer_with(&[
                    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "the", "cat", "a", "b",
                    "c", "d", "e", "f",
                ])
                .into_bytes(),
            ),
            "{path}: invalid tokenizer: token id 13 is outside the model's embedding table of 12 \
             rows (tokenizer and model disagree)",
        ),
        dir_case(
            "hf-decoder/missing-shard",
            sharded_files(|_| {}).into_iter().filter(|(n, _)| n != SHARDS[1]).collect(),
            "{path}/model-00002-of-00002.safetensors: missing (a shard the index lists)",
        ),
        dir_case(
            "hf-decoder/index-points-outside",
            sharded_files(|m| m[0].1 = "../elsewhere.safetensors".into()),
            "{path}/model.safetensors.index.json: invalid safetensors file: shard \
             `../elsewhere.safetensors` is not a file name in the model directory",
        ),
        dir_case(
            "hf-decoder/index-tensor-not-in-shard",
            sharded_files(|m| m[0].1 = SHARDS[1].into()),
            "{path}/model.safetensors.index.json: invalid safetensors file: tensor \
             `model.embed_tokens.weight` is not in its shard `model-00002-of-00002.safetensors`",
        ),
        dir_case(
            "hf-decoder/index-omits-tensor",
            sharded_files(|m| m.retain(|(t, _)| t != "model.norm.weight")),
            "{path}/model.safetensors.index.json: invalid safetensors file: shard \
             `model-00002-of-00002.safetensors` holds tensor `model.norm.weight`, which the \
             index omits",
        ),
        dir_case(
            "hf-decoder/index-not-json",
            sharded_files(|_| {})
                .into_iter()
                .map(|(n, b)| match n.as_str() {
                    "model.safetensors.index.json" => (n, b"{\"weight_map\": [".to_vec()),
                    _ => (n, b),
                })
                .collect(),
            "{path}/model.safetensors.index.json: invalid JSON: invalid type: sequence, expected \
             a map at line 1 column 15",
        ),
    ]
}
