//! Every decoder family against goldens written by Hugging Face transformers
//! (`scripts/make-family-goldens.sh`): a tiny randomly initialised model of
//! each family, read from its Hugging Face checkpoint directory and from its
//! GGUF file, gives the reference logits at every position (within
//! [`MAX_LOGIT_ERROR`], arg-max equal), the reference greedy continuation
//! through the KV cache, and both tokenizers the reference token ids.

use std::path::{Path, PathBuf};

use qloader_format::gguf::GgufFile;
use qloader_format::WeightFormat;
use qloader_models::llama::{GateActivation, HfDecoder, LlamaModel, Logits, RopeStyle};
use qloader_models::GgufTokenizer;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    family: String,
    ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
    greedy: Vec<u32>,
    tokenizer: Vec<Tokenized>,
}

#[derive(Deserialize)]
struct Tokenized {
    text: String,
    ids: Vec<u32>,
}

/// Largest |ours − reference| allowed on any logit: the same weights in f32,
/// summed in another order (logits of O(10)).
const MAX_LOGIT_ERROR: f32 = 5e-4;

const FAMILIES: [&str; 7] = ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"];

fn dir(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families").join(family)
}

fn golden(family: &str) -> Golden {
    let text = std::fs::read_to_string(dir(family).join("golden.json")).unwrap();
    let g: Golden = serde_json::from_str(&text).unwrap();
    assert_eq!(g.family, family);
    g
}

/// The family's model from both inputs: (input name, model).
fn models(family: &str) -> [(&'static str, LlamaModel); 2] {
    let f32 = |_: &str| WeightFormat::F32;
    let hf = LlamaModel::open(&dir(family).join("hf"), &f32, &mut |_, _| {}).unwrap();
    let gguf = LlamaModel::open(&dir(family).join("model.gguf"), &f32, &mut |_, _| {}).unwrap();
    [("safetensors", hf), ("gguf", gguf)]
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

#[test]
fn every_family_gives_the_reference_logits_from_both_inputs() {
    for family in FAMILIES {
        let g = golden(family);
        for (input, model) in models(family) {
            let vocab = model.config().vocab;
            let mut cache = model.new_cache(64);
            let logits = model.forward(&g.ids, &mut cache, Logits::All).unwrap();
            assert_eq!(logits.len(), g.ids.len() * vocab);
            for (t, (ours, theirs)) in logits.chunks_exact(vocab).zip(&g.logits).enumerate() {
                let worst =
                    ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(worst < MAX_LOGIT_ERROR, "{family} from {input}: position {t}: {worst}");
                assert_eq!(argmax(ours), argmax(theirs), "{family} from {input}: position {t}");
            }
        }
    }
}

#[test]
fn every_family_continues_greedily_as_the_reference_through_the_cache() {
    for family in FAMILIES {
        let g = golden(family);
        for (input, model) in models(family) {
            let mut cache = model.new_cache(64);
            let mut next = argmax(&model.forward(&g.ids, &mut cache, Logits::Last).unwrap());
            let mut greedy = vec![next];
            while greedy.len() < g.greedy.len() {
                next = argmax(&model.forward(&[next], &mut cache, Logits::Last).unwrap());
                greedy.push(next);
            }
            assert_eq!(greedy, g.greedy, "{family} from {input}");
        }
    }
}

#[test]
fn features_are_read_from_the_files() {
    for family in FAMILIES {
        for (input, model) in models(family) {
            let c = model.config();
            let what = format!("{family} from {input}");
            let gemma = family.starts_with("gemma");
            assert_eq!(c.qkv_bias, family == "qwen2", "{what}");
            assert_eq!(c.qk_norm, matches!(family, "qwen3" | "gemma3"), "{what}");
            let windowed = matches!(family, "mistral" | "gemma2" | "gemma3" | "phi3");
            assert_eq!(c.sliding_window, windowed.then_some(5), "{what}");
            let local: Option<Vec<bool>> = match family {
                "gemma2" => Some(vec![true, false]),
                "gemma3" => Some(vec![true, true, true, true, true, false]),
                _ => None,
            };
            assert_eq!(c.local_layers, local, "{what}");
            assert_eq!(c.rope_local_base, (family == "gemma3").then_some(10_000.0), "{what}");
            assert_eq!(c.rope_scale, (family == "gemma3").then_some(8.0), "{what}");
            let q_width = if matches!(family, "qwen3" | "gemma2" | "gemma3") { 64 } else { 32 };
            assert_eq!(c.q_width(), q_width, "{what}");
            assert_eq!(c.post_norms, gemma, "{what}");
            assert_eq!(c.embed_scale, gemma.then(|| 32f32.sqrt()), "{what}");
            let activation = if gemma { GateActivation::GeluTanh } else { GateActivation::Silu };
            assert_eq!(c.activation, activation, "{what}");
            let scale = c.attn_scale.map(|s| (s - (1.0 / 24f64.sqrt()) as f32).abs() < 1e-7);
            assert_eq!(scale, gemma.then_some(true), "{what}: {:?}", c.attn_scale);
            assert_eq!(c.attn_softcap, (family == "gemma2").then_some(2.0), "{what}");
            assert_eq!(c.final_softcap, (family == "gemma2").then_some(12.0), "{what}");
            let halves = input == "safetensors" || !matches!(family, "llama" | "mistral");
            let style = if halves { RopeStyle::Halves } else { RopeStyle::Interleaved };
            assert_eq!(c.rope_style, style, "{what}");
            // llama.cpp writes Mistral as `llama`.
            let name = if input == "gguf" && family == "mistral" { "llama" } else { family };
            assert_eq!(c.family, name, "{what}");
        }
    }
    let sharded = HfDecoder::open(&dir("qwen3").join("hf")).unwrap();
    assert!(sharded.tied, "qwen3's head is its embedding table");
}

#[test]
fn both_tokenizers_give_the_reference_ids() {
    for family in FAMILIES {
        let g = golden(family);
        let file = GgufFile::open(&dir(family).join("model.gguf")).unwrap();
        let tokenizers = [
            ("tokenizer.json", GgufTokenizer::from_hf_dir(&dir(family).join("hf")).unwrap()),
            ("gguf", GgufTokenizer::from_gguf(&file).unwrap()),
        ];
        for (input, tokenizer) in tokenizers {
            for case in &g.tokenizer {
                let ids = tokenizer.encode(&case.text).unwrap();
                assert_eq!(ids, case.ids, "{family} from {input}: {:?}", case.text);
            }
            assert_eq!(tokenizer.eos(), Some(0), "{family} from {input}");
        }
    }
}

#[derive(Deserialize)]
struct SentencePieceGolden {
    cases: Vec<SentencePieceCase>,
}

#[derive(Deserialize)]
struct SentencePieceCase {
    file: String,
    texts: Vec<Tokenized>,
}

#[test]
fn sentencepiece_tokenizers_in_gguf_give_the_sentencepiece_ids() {
    let dir = dir("sentencepiece");
    let text = std::fs::read_to_string(dir.join("golden.json")).unwrap();
    let golden: SentencePieceGolden = serde_json::from_str(&text).unwrap();
    assert_eq!(golden.cases.len(), 2, "with and without the leading space");
    for case in golden.cases {
        let file = GgufFile::open(&dir.join(&case.file)).unwrap();
        let tokenizer = GgufTokenizer::from_gguf(&file).unwrap();
        for t in &case.texts {
            let ids = tokenizer.encode(&t.text).unwrap();
            assert_eq!(ids, t.ids, "{}: {:?}", case.file, t.text);
            // Decoding gives the text back (BOS is a control token and is
            // dropped).
            let body: Vec<u32> = ids.iter().copied().filter(|&id| id != 1).collect();
            let back = tokenizer.decode(&body).unwrap();
            assert_eq!(back, t.text, "{}: decoding {:?}", case.file, t.text);
        }
    }
}
