//! The Llama decoder and GGUF tokenizer against goldens written by Hugging
//! Face transformers from the same GGUF file (`scripts/make-llama-goldens.py`):
//! token ids equal, every position's arg-max equal, logits within a stated
//! bound, and the greedy continuation equal.

use qloader_format::fixtures;
use qloader_format::gguf::GgufFile;
use qloader_format::WeightFormat;
use qloader_models::llama::{LlamaModel, Logits};
use qloader_models::GgufTokenizer;
use serde::Deserialize;

#[derive(Deserialize)]
struct Goldens {
    sample_ids: Vec<usize>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    prompt: String,
    ids: Vec<u32>,
    positions: Vec<Position>,
    greedy: Vec<u32>,
    greedy_text: String,
}

#[derive(Deserialize)]
struct Position {
    argmax: u32,
    top5_ids: Vec<usize>,
    top5_logits: Vec<f32>,
    sample_logits: Vec<f32>,
}

/// Largest |ours − reference| allowed on any recorded logit. The reference
/// runs the same de-quantized weights in f32 with a different summation
/// order; measured worst case 5.3e-5 on logits of O(10).
const MAX_LOGIT_ERROR: f32 = 5e-4;

fn open() -> (LlamaModel, GgufTokenizer) {
    let path = fixtures::smollm2_gguf();
    assert!(path.exists(), "{} is missing: run scripts/fetch-fixtures.sh", path.display());
    let file = GgufFile::open(&path).unwrap();
    let tokenizer = GgufTokenizer::from_gguf(&file).unwrap();
    let model = LlamaModel::from_gguf(&file, &|_| WeightFormat::F32, &mut |_, _| {}).unwrap();
    (model, tokenizer)
}

fn goldens() -> Goldens {
    serde_json::from_str(include_str!("data/smollm2_goldens.json")).unwrap()
}

#[test]
fn logits_tokens_and_greedy_continuations_match_transformers() {
    let (model, tokenizer) = open();
    let goldens = goldens();
    let vocab = model.config().vocab;
    let mut worst = 0.0f32;
    for case in &goldens.cases {
        let ids = tokenizer.encode(&case.prompt).unwrap();
        assert_eq!(ids, case.ids, "token ids of {:?}", case.prompt);
        assert_eq!(tokenizer.decode(&ids).unwrap(), case.prompt, "decode(encode(prompt))");
        let mut cache = model.new_cache(ids.len() + case.greedy.len());
        let logits = model.forward(&ids, &mut cache, Logits::All).unwrap();
        for (p, (row, want)) in logits.chunks_exact(vocab).zip(&case.positions).enumerate() {
            let argmax = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i as u32)
                .unwrap();
            assert_eq!(argmax, want.argmax, "{:?}: arg-max at position {p}", case.prompt);
            let pairs = want
                .top5_ids
                .iter()
                .zip(&want.top5_logits)
                .chain(goldens.sample_ids.iter().zip(&want.sample_logits));
            for (&id, &reference) in pairs {
                let err = (row[id] - reference).abs();
                worst = worst.max(err);
                assert!(
                    err <= MAX_LOGIT_ERROR,
                    "{:?}: position {p}, token {id}: {} vs {reference}",
                    case.prompt,
                    row[id]
                );
            }
        }
        // Greedy continuation through the KV cache, one token at a time.
        let mut next = *case.positions.last().map(|p| &p.argmax).unwrap();
        let mut out = Vec::new();
        for _ in 0..case.greedy.len() {
            out.push(next);
            if Some(next) == tokenizer.eos() {
                break;
            }
            let row = model.forward(&[next], &mut cache, Logits::Last).unwrap();
            next = argmax(&row);
        }
        assert_eq!(out, case.greedy[..out.len()], "greedy continuation of {:?}", case.prompt);
        assert_eq!(tokenizer.decode(&out).unwrap(), case.greedy_text);
    }
    eprintln!("worst logit error against transformers: {worst:.2e}");
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
