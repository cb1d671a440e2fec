//! The analyzer on the real MiniLM encoder with a small slice of the Alice
//! calibration text: a complete, valid table whose measures grow as the
//! format loses bits, and whose end-to-end figure (run from a cached block
//! input with a substituted weight) equals a model loaded with only that
//! tensor quantized.

use qloader_analyze::request::{run, AnalyzeRequest};
use qloader_analyze::{calibration, divergence, Measure, SensitivityTable};
use qloader_format::{fixtures, QuantMethod, WeightFormat};
use qloader_models::bert::ModelDir;
use qloader_models::{BertEncoder, SentenceTokenizer};

fn request(formats: &[&str]) -> AnalyzeRequest {
    let model = fixtures::minilm_dir();
    let calibration = fixtures::alice_text();
    for p in [&model, &calibration] {
        assert!(p.exists(), "{} is missing: run scripts/fetch-fixtures.sh", p.display());
    }
    AnalyzeRequest {
        model,
        calibration,
        formats: formats.iter().map(|f| f.parse().unwrap()).collect(),
        samples: Some(8),
        window: 256,
        e2e_samples: Some(3),
        e2e_formats: None,
        data_free: false,
        method: QuantMethod::Rtn,
    }
}

fn analyze(formats: &[&str]) -> SensitivityTable {
    let table = run(&request(formats), &mut |_| {}).unwrap();
    table.validate().unwrap();
    table
}

#[test]
fn table_is_complete_and_ordered_by_bits() {
    let table = analyze(&["f16", "int8", "int4", "int2"]);
    assert_eq!(table.model.architecture, "bert");
    // 36 linear weights and the word-embedding table.
    assert_eq!(table.tensors.len(), 37);
    let emb = table.tensors.last().unwrap();
    assert_eq!((emb.kind.as_str(), emb.layer, emb.shape), ("embedding", None, [30522, 384]));
    assert_eq!(table.calibration.samples, 8);
    assert_eq!(table.calibration.e2e_samples, 3);
    assert!(table.has(Measure::Proxy) && table.has(Measure::E2e));
    for t in &table.tensors {
        let f = |name: &str| &t.formats[&name.parse::<WeightFormat>().unwrap()];
        let want: WeightFormat = "int4".parse().unwrap();
        assert_eq!(
            f("int4").bytes as usize,
            want.storage_bytes(t.shape[0], t.shape[1]),
            "{}",
            t.name
        );
        for m in [Measure::WeightMse, Measure::Proxy, Measure::E2e] {
            let (h, a, b, c) = (
                f("f16").get(m).unwrap(),
                f("int8").get(m).unwrap(),
                f("int4").get(m).unwrap(),
                f("int2").get(m).unwrap(),
            );
            assert!(
                h < a && a < b && b < c,
                "{} {m:?}: f16 {h}, int8 {a}, int4 {b}, int2 {c}",
                t.name
            );
        }
        // f16 is as good as exact: the embedding does not move.
        assert!(f("f16").e2e.unwrap() < 1e-6, "{}: f16 {:e}", t.name, f("f16").e2e.unwrap());
        // int8 barely moves the embedding.
        assert!(f("int8").e2e.unwrap() < 1e-3, "{}", t.name);
    }
    // Each tensor's end-to-end/proxy gain measured at int8 and int2 ranks
    // the tensors at int4 much as the end-to-end measure does.
    let held_out =
        qloader_analyze::summary::estimate_rank_correlation(&table, WeightFormat::int4()).unwrap();
    let raw = qloader_analyze::summary::rank_correlation(
        &table,
        WeightFormat::int4(),
        Measure::Proxy,
        Measure::E2e,
    )
    .unwrap();
    eprintln!("int4 Spearman vs e2e: proxy {raw:.3}, proxy × gain {held_out:.3}");
    assert!(held_out > 0.8 && held_out > raw, "proxy × gain {held_out}, proxy {raw}");
}

#[test]
fn end_to_end_at_some_formats_estimates_the_rest() {
    let mut req = request(&["int8", "int4", "int2"]);
    req.e2e_formats = Some(vec!["int2".parse().unwrap()]);
    let table = run(&req, &mut |_| {}).unwrap();
    table.validate().unwrap();
    assert_eq!(table.e2e_formats, vec![WeightFormat::grouped(2, 32)]);
    assert_eq!(table.best_measure(), Measure::E2eEstimate);
    for t in &table.tensors {
        let f = |name: &str| &t.formats[&name.parse::<WeightFormat>().unwrap()];
        assert_eq!(f("int2").e2e_estimate, f("int2").e2e, "{}", t.name);
        assert!(f("int4").e2e.is_none() && f("int8").e2e.is_none(), "{}", t.name);
        let (a, b, c) = (
            f("int8").e2e_estimate.unwrap(),
            f("int4").e2e_estimate.unwrap(),
            f("int2").e2e_estimate.unwrap(),
        );
        assert!(a < b && b < c, "{}: int8 {a}, int4 {b}, int2 {c}", t.name);
    }
}

#[test]
fn end_to_end_matches_a_model_with_one_tensor_quantized() {
    let table = analyze(&["int2"]);
    let dir = ModelDir::open(&fixtures::minilm_dir()).unwrap();
    let tokenizer = SentenceTokenizer::from_file(&dir.tokenizer_path, dir.max_seq_length).unwrap();
    let text = std::fs::read_to_string(fixtures::alice_text()).unwrap();
    let sentences = calibration::sentences(&text, 3);
    let reference = BertEncoder::load(&dir, &|_| WeightFormat::F32).unwrap();
    for name in [
        "encoder.layer.0.attention.self.value.weight",
        "encoder.layer.3.intermediate.dense.weight",
        "encoder.layer.5.output.dense.weight",
    ] {
        let int2: WeightFormat = "int2".parse().unwrap();
        let model =
            BertEncoder::load(&dir, &|n| if n == name { int2 } else { WeightFormat::F32 }).unwrap();
        let mut sum = 0.0;
        for s in &sentences {
            let ids = tokenizer.encode(s).unwrap();
            let a = reference.embed_ids(&ids).unwrap();
            let b = model.embed_ids(&ids).unwrap();
            sum += divergence::one_minus_cosine(&a, &b);
        }
        let direct = sum / sentences.len() as f64;
        let row = table.tensors.iter().find(|t| t.name == name).unwrap();
        let analyzed = row.formats[&"int2".parse::<WeightFormat>().unwrap()].e2e.unwrap();
        assert!(
            (analyzed - direct).abs() <= 0.02 * direct,
            "{name}: analyzer {analyzed:.6e}, direct {direct:.6e}"
        );
    }
}

#[test]
fn data_free_holds_weight_error_only() {
    let mut req = request(&["int8", "int3"]);
    req.data_free = true;
    let table = run(&req, &mut |_| {}).unwrap();
    table.validate().unwrap();
    assert!(table.calibration.data_free);
    assert_eq!(table.measures, vec![Measure::WeightMse]);
    assert!(table.tensors.iter().all(|t| t.formats[&"int3".parse::<WeightFormat>().unwrap()]
        .proxy
        .is_none()
        && t.formats[&"int3".parse::<WeightFormat>().unwrap()].weight_mse
            > t.formats[&"int8".parse::<WeightFormat>().unwrap()].weight_mse));
}
