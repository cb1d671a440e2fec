//! The analyzer on the real SmolLM2 decoder with one short calibration
//! window: every tensor measured, and the end-to-end KL of a block tensor
//! and of the head (run from cached hidden states with a substituted
//! weight) equal to that of a model loaded with only that tensor quantized.

use qloader_analyze::divergence::ReferenceDistributions;
use qloader_analyze::request::{run, AnalyzeRequest};
use qloader_analyze::{calibration, Measure};
use qloader_format::gguf::GgufFile;
use qloader_format::{fixtures, WeightFormat};
use qloader_models::llama::{LlamaModel, Logits};
use qloader_models::GgufTokenizer;

const WINDOW: usize = 24;

#[test]
fn decoder_table_matches_direct_runs() {
    let (model, text) = (fixtures::smollm2_gguf(), fixtures::alice_text());
    for p in [&model, &text] {
        assert!(p.exists(), "{} is missing: run scripts/fetch-fixtures.sh", p.display());
    }
    let req = AnalyzeRequest {
        model: model.clone(),
        calibration: text.clone(),
        formats: vec![WeightFormat::Int8PerChannel],
        samples: Some(1),
        window: WINDOW,
        e2e_samples: Some(1),
        e2e_formats: None,
        data_free: false,
    };
    let table = run(&req, &mut |_| {}).unwrap();
    table.validate().unwrap();
    assert_eq!(table.model.architecture, "llama");
    assert_eq!(table.tensors.len(), 30 * 7 + 1);
    assert!(table.has(Measure::E2e) && table.calibration.tokens == WINDOW);

    let file = GgufFile::open(&model).unwrap();
    let tokenizer = GgufTokenizer::from_gguf(&file).unwrap();
    let tokens = tokenizer.encode(&std::fs::read_to_string(&text).unwrap()).unwrap();
    let window = &calibration::token_windows(&tokens, WINDOW, 1).unwrap()[0];
    let logits = |m: &LlamaModel| m.forward(window, &mut m.new_cache(WINDOW), Logits::All).unwrap();
    let f32_model = LlamaModel::from_gguf(&file, &|_| WeightFormat::F32, &mut |_, _| {}).unwrap();
    let reference = ReferenceDistributions::from_logits(&logits(&f32_model), 49152);
    for name in ["blk.7.ffn_down.weight", "output.weight"] {
        let choose =
            |n: &str| if n == name { WeightFormat::Int8PerChannel } else { WeightFormat::F32 };
        let model = LlamaModel::from_gguf(&file, &choose, &mut |_, _| {}).unwrap();
        let direct = reference.kl_sum(&logits(&model)) / WINDOW as f64;
        let row = table.tensors.iter().find(|t| t.name == name).unwrap();
        let analyzed = row.formats["int8"].e2e.unwrap();
        assert!(
            (analyzed - direct).abs() <= 0.05 * direct,
            "{name}: analyzer {analyzed:.6e}, direct {direct:.6e}"
        );
    }
}
