//! A small report on MiniLM end to end: a data-free table, one budget, one
//! uniform format and both recipes, each packed and measured, then the
//! Markdown, HTML and charts written. Needs the MiniLM fixture
//! (`scripts/fetch-fixtures.sh`); skips without it outside CI.

use qloader_analyze::request::{run as analyze, AnalyzeRequest};
use qloader_format::{fixtures, QuantMethod, WeightFormat};
use qloader_report::render::{self, verdicts};
use qloader_report::{make_report, ReportOptions, RowKind};

#[test]
fn a_small_minilm_report() {
    let model = fixtures::minilm_dir();
    if !model.join("model.safetensors").exists() {
        assert!(std::env::var_os("CI").is_none(), "MiniLM fixture missing in CI");
        eprintln!("SKIP: MiniLM fixture missing; run scripts/fetch-fixtures.sh");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let formats: Vec<WeightFormat> =
        ["int8", "int4", "int4g64", "int3g64"].iter().map(|f| f.parse().unwrap()).collect();
    let table = analyze(
        &AnalyzeRequest {
            model: model.clone(),
            calibration: fixtures::alice_text(),
            formats,
            samples: None,
            window: 256,
            e2e_samples: None,
            e2e_formats: None,
            data_free: true,
            // Ignored without calibration data: the table records rtn.
            method: QuantMethod::Imatrix,
        },
        &mut |_| {},
    )
    .unwrap();
    let table_path = dir.path().join("table.json");
    table.write(&table_path).unwrap();
    let options = ReportOptions {
        model,
        table: Some(table_path),
        profile: concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/x86-avx2-2core.toml").into(),
        budgets: vec![4.5],
        uniform: vec!["int4".parse().unwrap()],
        recipes: true,
        windows: 1,
        out_dir: dir.path().join("report"),
        keep_packed: false,
        method: QuantMethod::Imatrix,
        llama_cpp: Vec::new(),
    };
    let report = make_report(&options, &mut |_| {}).unwrap();
    // A reused table's method wins: a data-free table's is round to nearest.
    assert_eq!(report.method, QuantMethod::Rtn);
    // Reference, one mixed plan, uniform int4 + its mixed twin, two recipes
    // + their twins.
    assert_eq!(report.rows.len(), 8);
    assert_eq!(report.rows[0].kind, RowKind::Reference);
    for r in &report.rows[1..] {
        let c = r.measured.mean_cosine.unwrap();
        assert!(c > 0.9 && c < 1.0, "{}: cosine {c}", r.label);
        assert!(r.predicted.is_some(), "{}", r.label);
        assert!((0.0..=1.0).contains(&r.measured.retrieval_agreement.unwrap()));
    }
    let v = verdicts(&report);
    assert_eq!(v.len(), 3, "int4, Q3_K_M and Q4_K_M each beside the mixed plan of their size");
    let q4 = report.rows.iter().find(|r| r.label == "Q4_K_M").unwrap();
    let twin = report.rows.iter().find(|r| r.label == "mixed = Q4_K_M").unwrap();
    assert!(twin.bytes <= q4.bytes, "the twin fits in the recipe's size");
    assert!(report.rank_correlation.is_some());

    render::write(&report, &options.out_dir).unwrap();
    let md = std::fs::read_to_string(options.out_dir.join("report.md")).unwrap();
    assert!(md.contains("| uniform int4 |") && md.contains("| Q3_K_M |"), "{md}");
    let html = std::fs::read_to_string(options.out_dir.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.matches("<svg").count() == 2);
    assert!(html.contains("<td>mixed = Q4_K_M</td>"));
    // No packed model is left behind; plans are.
    let left: Vec<_> =
        std::fs::read_dir(&options.out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().ends_with(".qlm")), "{left:?}");
    assert!(left.iter().any(|n| n.to_string_lossy().ends_with(".plan.json")));
}
