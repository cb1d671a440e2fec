//! The f32 encoder against golden embeddings written by the reference
//! implementation (sentence-transformers 6.2 / transformers 5.23 / torch 2.15,
//! `scripts/make-goldens.py`) from the same fixture files.

use qloader_format::{fixtures, WeightFormat};
use qloader_models::bert::ModelDir;
use qloader_models::{BertEncoder, SentenceTokenizer};
use serde::Deserialize;

/// Cosine similarity every sentence's embedding must reach.
const MIN_COSINE: f64 = 0.9999;
/// Largest absolute difference allowed in any component. Embeddings are
/// unit vectors with components of order 0.05; float32 re-association over
/// six layers moves them by about 1e-6, so 1e-4 leaves headroom without
/// hiding a real error (a wrong epsilon or GELU variant moves them by 1e-3).
const MAX_ABS_ERROR: f32 = 1e-4;

#[derive(Deserialize)]
struct Goldens {
    model_safetensors_sha256: String,
    max_seq_length: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    sentence: String,
    tokens: usize,
    embedding: Vec<f32>,
}

fn fixture() -> Option<ModelDir> {
    let dir = fixtures::minilm_dir();
    if !dir.join("model.safetensors").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "fixture missing at {} in CI: run scripts/fetch-fixtures.sh",
            dir.display()
        );
        eprintln!("SKIP: fixture missing at {}; run scripts/fetch-fixtures.sh", dir.display());
        return None;
    }
    Some(ModelDir::open(&dir).expect("the fixture opens"))
}

#[test]
fn f32_embeddings_match_reference() {
    let Some(dir) = fixture() else { return };
    let goldens: Goldens =
        serde_json::from_str(include_str!("data/minilm_goldens.json")).expect("goldens parse");
    assert_eq!(goldens.max_seq_length, dir.max_seq_length);
    assert_eq!(goldens.model_safetensors_sha256.len(), 64);
    let tokenizer = SentenceTokenizer::from_file(&dir.tokenizer_path, dir.max_seq_length).unwrap();
    let encoder = BertEncoder::load(&dir, &|_| WeightFormat::F32).unwrap();

    let mut worst_cos = 1.0f64;
    let mut worst_abs = 0.0f32;
    for case in &goldens.cases {
        let ids = tokenizer.encode(&case.sentence).unwrap();
        assert_eq!(ids.len(), case.tokens, "token count of {:?}", case.sentence);
        let got = encoder.embed_ids(&ids).unwrap();
        assert_eq!(got.len(), case.embedding.len());
        let dot: f64 = got.iter().zip(&case.embedding).map(|(a, b)| *a as f64 * *b as f64).sum();
        let na: f64 = got.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = case.embedding.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let cos = dot / (na * nb);
        let max_abs =
            got.iter().zip(&case.embedding).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(cos >= MIN_COSINE, "{:?}: cosine {cos}", case.sentence);
        assert!(max_abs <= MAX_ABS_ERROR, "{:?}: max abs error {max_abs}", case.sentence);
        worst_cos = worst_cos.min(cos);
        worst_abs = worst_abs.max(max_abs);
    }
    eprintln!(
        "{} sentences: worst cosine {worst_cos:.9}, worst max-abs error {worst_abs:.3e}",
        goldens.cases.len()
    );
}
