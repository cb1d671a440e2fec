//! The analyzer on the real SmolLM2 decoder with one short calibration
//! window: every tensor measured, and the end-to-end KL of a block tensor
//! and of the head (run from cached hidden states with a substituted
//! weight) equal to that of a model loaded with only that tensor quantized —
//! at int3 with the `imatrix` codes `calibrate` (what `pack` uses) makes.

use qloader_analyze::divergence::ReferenceDistributions;
use qloader_analyze::request::{calibrate, run, AnalyzeRequest};
use qloader_analyze::{calibration, Measure};
use qloader_format::gguf::GgufFile;
use qloader_format::{fixtures, QuantMethod, WeightFormat};
use qloader_models::llama::{GgufSource, LlamaConfig, LlamaModel, Logits};
use qloader_models::GgufTokenizer;

const WINDOW: usize = 24;

#[test]
fn decoder_table_matches_direct_runs() {
    let (model, text) = (fixtures::smollm2_gguf(), fixtures::alice_text());
    for p in [&model, &text] {
        assert!(p.exists(), "{} is missing: run scripts/fetch-fixtures.sh", p.display());
    }
    let int3 = WeightFormat::grouped(3, 32);
    let req = AnalyzeRequest {
        model: model.clone(),
        calibration: text.clone(),
        formats: vec![WeightFormat::Int8PerChannel, int3],
        samples: Some(1),
        window: WINDOW,
        e2e_samples: Some(1),
        e2e_formats: None,
        data_free: false,
        method: QuantMethod::Imatrix,
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
    let config = LlamaConfig::from_gguf(&file).unwrap();
    let reference = ReferenceDistributions::from_logits(&logits(&f32_model), 49152);
    let calibrated = calibrate(&model, &text, Some(1), WINDOW).unwrap();
    assert_eq!(calibrated.importance.len(), 30 * 7 + 1, "every multiplied tensor");
    for name in ["blk.7.ffn_down.weight", "output.weight"] {
        for format in [WeightFormat::Int8PerChannel, int3] {
            let choose = |n: &str| if n == name { format } else { WeightFormat::F32 };
            let mut source =
                GgufSource::new(&file, &choose).with_importance(&calibrated.importance);
            let model =
                LlamaModel::from_source(config.clone(), &mut source, &mut |_, _| {}).unwrap();
            let direct = reference.kl_sum(&logits(&model)) / WINDOW as f64;
            let row = table.tensors.iter().find(|t| t.name == name).unwrap();
            let analyzed = row.formats[&format].e2e.unwrap();
            assert!(
                (analyzed - direct).abs() <= 0.05 * direct,
                "{name} {format}: analyzer {analyzed:.6e}, direct {direct:.6e}"
            );
        }
    }
}
