//! Model directories: a tiny sentence-transformers BERT (config.json,
//! model.safetensors written byte by byte, tokenizer.json) and every way
//! one of its files can be broken.

use super::{f32_bytes, values, Case, Content, Open};

pub const HIDDEN: usize = 8;
pub const INTERMEDIATE: usize = 16;
pub const VOCAB: usize = 12;
pub const POSITIONS: usize = 16;
pub const LAYERS: usize = 1;

/// `config.json` of the tiny model.
pub fn config() -> String {
    format!(
        r#"{{"architectures":["BertModel"],"model_type":"bert","hidden_size":{HIDDEN},
"num_hidden_layers":{LAYERS},"num_attention_heads":2,"intermediate_size":{INTERMEDIATE},
"max_position_embeddings":{POSITIONS},"vocab_size":{VOCAB},"type_vocab_size":2,
"layer_norm_eps":1e-12,"hidden_act":"gelu"}}
"#
    )
}

/// A WordPiece `tokenizer.json` over `words` (ids in order).
pub fn tokenizer_with(words: &[&str]) -> String {
    let vocab: Vec<String> =
        words.iter().enumerate().map(|(i, w)| format!("\"{w}\":{i}")).collect();
    format!(
        r###"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
"normalizer":{{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}},
"pre_tokenizer":{{"type":"BertPreTokenizer"}},
"post_processor":{{"type":"TemplateProcessing",
  "single":[{{"SpecialToken":{{"id":"[CLS]","type_id":0}}}},{{"Sequence":{{"id":"A","type_id":0}}}},{{"SpecialToken":{{"id":"[SEP]","type_id":0}}}}],
  "pair":[{{"Sequence":{{"id":"A","type_id":0}}}},{{"Sequence":{{"id":"B","type_id":1}}}}],
  "special_tokens":{{"[CLS]":{{"id":"[CLS]","ids":[2],"tokens":["[CLS]"]}},"[SEP]":{{"id":"[SEP]","ids":[3],"tokens":["[SEP]"]}}}}}},
"decoder":null,
"model":{{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{{{}}}}}}}
"###,
        vocab.join(",")
    )
}

/// The tiny model's `tokenizer.json`: as many words as the model has
/// token embeddings.
pub fn tokenizer() -> String {
    tokenizer_with(&[
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "the", "cat", "a", "b", "c", "d",
    ])
}

/// One tensor of a safetensors file.
#[derive(Clone)]
pub struct StTensor {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// The tensors of the tiny model, in file order.
pub fn tensors() -> Vec<StTensor> {
    let mut specs: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![VOCAB, HIDDEN]),
        ("embeddings.position_embeddings.weight".into(), vec![POSITIONS, HIDDEN]),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, HIDDEN]),
        ("embeddings.LayerNorm.weight".into(), vec![HIDDEN]),
        ("embeddings.LayerNorm.bias".into(), vec![HIDDEN]),
    ];
    for l in 0..LAYERS {
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
            let mut v = values(shape.iter().product(), i);
            if name.ends_with("LayerNorm.weight") {
                v.iter_mut().for_each(|x| *x += 1.0);
            }
            StTensor { name, dtype: "F32", shape, data: f32_bytes(&v) }
        })
        .collect()
}

/// A safetensors file of `tensors`, data laid out in order; `offsets` may
/// change the data offsets the header records for tensor `i`.
pub fn safetensors_with(
    tensors: &[StTensor],
    offsets: impl Fn(usize, (usize, usize)) -> (usize, usize),
) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut at = 0;
    for (i, t) in tensors.iter().enumerate() {
        let (start, end) = offsets(i, (at, at + t.data.len()));
        at += t.data.len();
        entries.push(format!(
            "\"{}\":{{\"dtype\":\"{}\",\"shape\":{:?},\"data_offsets\":[{start},{end}]}}",
            t.name, t.dtype, t.shape
        ));
    }
    let mut header = format!("{{{}}}", entries.join(","));
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    for t in tensors {
        out.extend_from_slice(&t.data);
    }
    out
}

/// A safetensors file of `tensors`.
pub fn safetensors(tensors: &[StTensor]) -> Vec<u8> {
    safetensors_with(tensors, |_, o| o)
}

/// The files of the valid tiny model.
pub fn model_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("config.json".into(), config().into_bytes()),
        ("model.safetensors".into(), safetensors(&tensors())),
        ("tokenizer.json".into(), tokenizer().into_bytes()),
    ]
}

/// A model-directory case: the valid model with `name` replaced by `bytes`
/// (or removed, for `None`).
fn with_file(class: &'static str, name: &str, bytes: Option<Vec<u8>>, expected: &str) -> Case {
    let mut files: Vec<(String, Content)> = model_files()
        .into_iter()
        .filter(|(n, _)| n != name)
        .map(|(n, b)| (n, Content::Bytes(b)))
        .collect();
    if let Some(bytes) = bytes {
        files.push((name.to_owned(), Content::Bytes(bytes)));
    }
    Case { class, files, target: "", open: Open::ModelDir, expected: expected.to_owned() }
}

fn config_with(class: &'static str, from: &str, to: &str, expected: &str) -> Case {
    let text = config();
    assert!(text.contains(from), "{class}: config has no {from:?}");
    with_file(class, "config.json", Some(text.replacen(from, to, 1).into_bytes()), expected)
}

fn weights(class: &'static str, bytes: Vec<u8>, expected: &str) -> Case {
    with_file(class, "model.safetensors", Some(bytes), expected)
}

fn tensors_with(edit: impl FnOnce(&mut Vec<StTensor>)) -> Vec<u8> {
    let mut t = tensors();
    edit(&mut t);
    safetensors(&t)
}

fn index(t: &[StTensor], name: &str) -> usize {
    t.iter().position(|t| t.name == name).unwrap_or_else(|| panic!("no tensor {name}"))
}

/// Every model-directory case.
pub fn cases() -> Vec<Case> {
    let good = safetensors(&tensors());
    let query = "encoder.layer.0.attention.self.query.weight";
    let mut cases = vec![
        Case {
            class: "model-dir/does-not-exist",
            files: vec![],
            target: "absent",
            open: Open::ModelDir,
            expected: "model directory {path}: does not exist".into(),
        },
        Case::file(
            "model-dir/not-a-directory",
            "model",
            config().into_bytes(),
            Open::ModelDir,
            "model directory {path}: is not a directory",
        ),
        with_file(
            "model-dir/missing-config",
            "config.json",
            None,
            "{path}/config.json: missing (model configuration)",
        ),
        with_file(
            "model-dir/missing-safetensors",
            "model.safetensors",
            None,
            "{path}/model.safetensors: missing (model weights)",
        ),
        with_file(
            "model-dir/missing-tokenizer",
            "tokenizer.json",
            None,
            "{path}/tokenizer.json: missing (tokenizer)",
        ),
        with_file(
            "model-dir/config-not-json",
            "config.json",
            Some(b"{\"hidden_size\": 8,".to_vec()),
            "{path}/config.json: invalid JSON: EOF while parsing a value at line 1 column 18",
        ),
        with_file(
            "model-dir/config-not-utf8",
            "config.json",
            Some(b"{\"hidden_size\": \"\xff\"}".to_vec()),
            "{path}/config.json: cannot read: invalid utf-8 sequence of 1 bytes from index 17",
        ),
        {
            let mut c = with_file(
                "model-dir/config-oversized",
                "config.json",
                None,
                "{path}/config.json: larger than the 16777216 bytes such a file may have",
            );
            c.files.push(("config.json".into(), Content::Sparse((16 << 20) + 1)));
            c
        },
        config_with(
            "model-dir/config-field-missing",
            &format!("\"vocab_size\":{VOCAB},"),
            "",
            "{path}/config.json: invalid JSON: missing field `vocab_size` at line 4 column 43",
        ),
        config_with(
            "model-dir/config-field-wrong-type",
            "\"hidden_size\":8",
            "\"hidden_size\":\"8\"",
            "{path}/config.json: invalid JSON: invalid type: string \"8\", expected usize at \
             line 1 column 68",
        ),
        config_with(
            "model-dir/config-negative-value",
            &format!("\"vocab_size\":{VOCAB}"),
            "\"vocab_size\":-4",
            "{path}/config.json: invalid JSON: invalid value: integer `-4`, expected usize at \
             line 3 column 44",
        ),
        config_with(
            "model-dir/config-zero-width",
            "\"hidden_size\":8",
            "\"hidden_size\":0",
            "{path}/config.json: field `hidden_size`: 0 is outside 1..=65536",
        ),
        config_with(
            "model-dir/config-absurd-layer-count",
            "\"num_hidden_layers\":1",
            "\"num_hidden_layers\":1073741824",
            "{path}/config.json: field `num_hidden_layers`: 1073741824 is outside 1..=1024",
        ),
        config_with(
            "model-dir/config-absurd-vocab",
            &format!("\"vocab_size\":{VOCAB}"),
            "\"vocab_size\":18446744073709551615",
            "{path}/config.json: field `vocab_size`: 18446744073709551615 is outside 1..=16777216",
        ),
        config_with(
            "model-dir/config-heads-not-dividing-width",
            "\"num_attention_heads\":2",
            "\"num_attention_heads\":3",
            "{path}/config.json: field `num_attention_heads`: 3 does not divide hidden_size 8",
        ),
        config_with(
            "model-dir/config-bad-layer-norm-eps",
            "\"layer_norm_eps\":1e-12",
            "\"layer_norm_eps\":-1",
            "{path}/config.json: field `layer_norm_eps`: -1 is not a positive number",
        ),
        config_with(
            "model-dir/config-unsupported-activation",
            "\"hidden_act\":\"gelu\"",
            "\"hidden_act\":\"relu\"",
            "{path}/config.json: field `hidden_act`: `relu` is not supported (only the exact erf \
             `gelu`)",
        ),
        config_with(
            "model-dir/config-more-layers-than-weights",
            "\"num_hidden_layers\":1",
            "\"num_hidden_layers\":2",
            "{path}/model.safetensors: tensor `encoder.layer.1.attention.self.query.weight` is \
             missing",
        ),
        config_with(
            "model-dir/config-width-disagrees-with-weights",
            "\"hidden_size\":8",
            "\"hidden_size\":16",
            "{path}/model.safetensors: tensor `embeddings.word_embeddings.weight` has shape [12, \
             8], expected [12, 16]",
        ),
        weights(
            "model-dir/safetensors-empty",
            Vec::new(),
            "{path}/model.safetensors: invalid safetensors file: file is 0 bytes, shorter than \
             the 8-byte header length",
        ),
        weights(
            "model-dir/safetensors-shorter-than-length-prefix",
            good[..5].to_vec(),
            "{path}/model.safetensors: invalid safetensors file: file is 5 bytes, shorter than \
             the 8-byte header length",
        ),
        weights(
            "model-dir/safetensors-header-beyond-file",
            {
                let mut b = good.clone();
                b[..8].copy_from_slice(&1_000_000u64.to_le_bytes());
                b
            },
            "{path}/model.safetensors: invalid safetensors file: header length 1000000 runs past \
             the end of the file (5496 bytes; truncated?)",
        ),
        weights(
            "model-dir/safetensors-header-over-limit",
            {
                let mut b = good.clone();
                b[..8].copy_from_slice(&(1u64 << 50).to_le_bytes());
                b
            },
            "{path}/model.safetensors: invalid safetensors file: header length 1125899906842624 \
             exceeds the limit of 100000000 bytes",
        ),
        weights(
            "model-dir/safetensors-header-not-json",
            {
                let mut b = good.clone();
                b[8..16].copy_from_slice(b"[[[[[[[[");
                b
            },
            "{path}/model.safetensors: invalid safetensors file: invalid JSON in header: invalid \
             type: sequence, expected struct HashMetadata at line 1 column 0",
        ),
        weights(
            "model-dir/safetensors-header-not-utf8",
            {
                let mut b = good.clone();
                b[10] = 0xff;
                b
            },
            "{path}/model.safetensors: invalid safetensors file: invalid UTF-8 in header: \
             invalid utf-8 sequence of 1 bytes from index 2",
        ),
        weights(
            "model-dir/safetensors-data-truncated",
            good[..good.len() - 7].to_vec(),
            "{path}/model.safetensors: invalid safetensors file: tensor data does not end at the \
             end of the file (truncated or padded)",
        ),
        weights(
            "model-dir/safetensors-data-extended",
            {
                let mut b = good.clone();
                b.extend_from_slice(&[0; 4]);
                b
            },
            "{path}/model.safetensors: invalid safetensors file: tensor data does not end at the \
             end of the file (truncated or padded)",
        ),
        weights(
            "model-dir/safetensors-offsets-not-contiguous",
            {
                safetensors_with(
                    &tensors(),
                    |i, (s, e)| if i == 3 { (s + 4, e + 4) } else { (s, e) },
                )
            },
            "{path}/model.safetensors: invalid safetensors file: tensor \
             `embeddings.LayerNorm.weight`: data offsets 964..996 do not start where the \
             previous tensor's data ends (960)",
        ),
        weights(
            "model-dir/safetensors-length-disagrees-with-shape",
            tensors_with(|t| {
                let i = index(t, query);
                t[i].shape = vec![HIDDEN, HIDDEN + 1];
            }),
            "{path}/model.safetensors: invalid safetensors file: tensor \
             `encoder.layer.0.attention.self.query.weight`: data offsets 1024..1280 hold 256 \
             bytes, but shape [8, 9] of F32 takes 288",
        ),
        weights(
            "model-dir/safetensors-unknown-dtype",
            tensors_with(|t| {
                let i = index(t, query);
                t[i].dtype = "F7";
            }),
            "{path}/model.safetensors: invalid safetensors file: invalid JSON in header: unknown \
             variant `F7`, expected one of `BOOL`, `F4`, `F6_E2M3`, `F6_E3M2`, `U8`, `I8`, \
             `F8_E5M2`, `F8_E4M3`, `F8_E8M0`, `I16`, `U16`, `F16`, `BF16`, `I32`, `U32`, `F32`, \
             `F64`, `I64`, `U64` at line 1 column 2056",
        ),
        weights(
            "model-dir/safetensors-wrong-dtype",
            tensors_with(|t| {
                let i = index(t, "encoder.layer.0.attention.self.key.weight");
                t[i].dtype = "I32";
            }),
            "{path}/model.safetensors: tensor `encoder.layer.0.attention.self.key.weight` has \
             dtype I32, expected one of F32, F16, BF16",
        ),
        weights(
            "model-dir/safetensors-wrong-shape",
            tensors_with(|t| {
                let i = index(t, query);
                t[i].shape = vec![HIDDEN / 2, HIDDEN * 2];
            }),
            "{path}/model.safetensors: tensor `encoder.layer.0.attention.self.query.weight` has \
             shape [4, 16], expected [8, 8]",
        ),
        weights(
            "model-dir/safetensors-missing-tensor",
            tensors_with(|t| {
                let i = index(t, "encoder.layer.0.output.LayerNorm.bias");
                t.remove(i);
            }),
            "{path}/model.safetensors: tensor `encoder.layer.0.output.LayerNorm.bias` is missing",
        ),
        weights(
            "model-dir/safetensors-duplicate-tensor",
            {
                // The second tensor renamed to the first one's name (padded with
                // spaces after the key, so that no offset moves).
                let mut b = safetensors(&tensors());
                let (a, c) = (
                    "\"embeddings.word_embeddings.weight\"",
                    "\"embeddings.position_embeddings.weight\"",
                );
                let at =
                    b.windows(c.len()).position(|w| w == c.as_bytes()).expect("name in header");
                let renamed = format!("{a}{}", " ".repeat(c.len() - a.len()));
                b[at..at + c.len()].copy_from_slice(renamed.as_bytes());
                b
            },
            "{path}/model.safetensors: invalid safetensors file: tensor \
             `embeddings.word_embeddings.weight` appears twice in the header",
        ),
        with_file(
            "model-dir/tokenizer-not-json",
            "tokenizer.json",
            Some(b"{\"model\":".to_vec()),
            "{path}/tokenizer.json: invalid tokenizer: EOF while parsing a value at line 1 \
             column 9",
        ),
        with_file(
            "model-dir/tokenizer-invalid",
            "tokenizer.json",
            Some(b"{\"model\": 3}".to_vec()),
            "{path}/tokenizer.json: invalid tokenizer: data did not match any variant of \
             untagged enum ModelUntagged at line 1 column 12",
        ),
        with_file(
            "model-dir/tokenizer-larger-than-model",
            "tokenizer.json",
            Some(
                tokenizer_with(&[
                    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "the", "cat", "a", "b", "c", "d",
                    "e", "f", "world",
                ])
                .into_bytes(),
            ),
            "{path}/tokenizer.json: invalid tokenizer: token id 13 is outside the model's \
             embedding table of 12 rows (tokenizer and model disagree)",
        ),
    ];
    let mut side = |class: &'static str, name: &str, text: &str, expected: &str| {
        cases.push(with_file(class, name, Some(text.as_bytes().to_vec()), expected));
    };
    side(
        "model-dir/pooling-two-modes",
        "1_Pooling/config.json",
        r#"{"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true}"#,
        "{path}/1_Pooling/config.json: field `pooling_mode_*`: exactly one of mean or cls \
         pooling must be enabled",
    );
    side(
        "model-dir/pooling-not-json",
        "1_Pooling/config.json",
        "{mean}",
        "{path}/1_Pooling/config.json: invalid JSON: key must be a string at line 1 column 2",
    );
    side(
        "model-dir/max-seq-length-beyond-positions",
        "sentence_bert_config.json",
        r#"{"max_seq_length": 4096}"#,
        "{path}/sentence_bert_config.json: field `max_seq_length`: 4096 is outside 1..=16 \
         (max_position_embeddings)",
    );
    side(
        "model-dir/modules-not-json",
        "modules.json",
        "[{\"type\": }]",
        "{path}/modules.json: invalid JSON: expected value at line 1 column 11",
    );
    cases
}
