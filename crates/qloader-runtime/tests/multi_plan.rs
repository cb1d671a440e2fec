//! One packed file holding several plans of SmolLM2 (the fixture; skipped
//! when it is not fetched): each (tensor, format) pair is stored once, each
//! plan loads exactly what the single-plan file of the same formats holds
//! and computes the same logits, and the loader picks the plan by memory,
//! refusing a limit below the smallest with its size.

use std::collections::BTreeMap;
use std::path::Path;

use qloader_format::{fixtures, ActivationFormat, PackedFile, WeightFormat};
use qloader_models::decoder::Logits;
use qloader_runtime::packed::export::{export_gguf, ExportOptions};
use qloader_runtime::packed::{
    choose_plan, open_packed, pack_model, pack_model_plans, quantizable_tensors, LoadOptions,
    PackedModel, PlanChoice, PlanToPack, Quantization,
};
use qloader_runtime::registry::KernelRegistry;

fn present(path: &Path) -> bool {
    if path.exists() {
        return true;
    }
    eprintln!("skipping: {} is not fetched (scripts/fetch-fixtures.sh)", path.display());
    false
}

fn plan(
    name: &str,
    names: &[String],
    loss: f64,
    format: impl Fn(usize) -> &'static str,
) -> PlanToPack {
    PlanToPack {
        name: name.to_owned(),
        formats: names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), format(i).parse::<WeightFormat>().unwrap()))
            .collect(),
        quantization: Quantization::default(),
        predicted_loss: Some(loss),
        tensor_losses: Default::default(),
        plan: None,
    }
}

#[test]
fn a_multi_plan_file_serves_each_plan_as_its_own_file_would() {
    let gguf = fixtures::smollm2_gguf();
    if !present(&gguf) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let names = quantizable_tensors(&gguf).unwrap();
    let plans = vec![
        plan("small", &names, 0.3, |_| "int4"),
        plan("mixed", &names, 0.2, |i| if i % 3 == 0 { "int8" } else { "int4" }),
        plan("large", &names, 0.1, |_| "int8"),
    ];
    let multi = tmp.path().join("multi.qlm");
    let report = pack_model_plans(&gguf, plans.clone(), &multi, &mut |_, _, _| {}).unwrap();
    let mixed_formats: BTreeMap<String, WeightFormat> = plans[1].formats.clone();

    // Stored once: the mixed plan adds no variant, so the file holds the
    // small and large plans' quantizable bytes and one copy of the rest.
    let mut file = PackedFile::open(&multi).unwrap();
    assert_eq!(file.version(), 2);
    file.verify_all().unwrap();
    let bytes: Vec<u64> = report.plans.iter().map(|(_, _, b)| *b).collect();
    let in_file: Vec<u64> = file.plans().map(|p| p.bytes()).collect();
    assert_eq!(bytes, in_file, "the report's bytes per plan are the file's");
    assert!(bytes[0] < bytes[1] && bytes[1] < bytes[2], "{bytes:?}");
    let shared: u64 = file
        .tensors()
        .filter(|t| !names.iter().any(|n| n == t.name()))
        .map(|t| t.byte_len() as u64)
        .sum();
    assert_eq!(report.stored_bytes, bytes[0] + bytes[2] - shared);
    for t in file.all_variants() {
        let expected = if names.iter().any(|n| n == t.name()) { 2 } else { 1 };
        assert_eq!(t.variant_count(), expected, "{}", t.name());
    }

    // The mixed plan's tensors are byte for byte those of its own file.
    let single = tmp.path().join("mixed.qlm");
    pack_model(&gguf, &mixed_formats, Quantization::default(), None, &single, &mut |_, _| {})
        .unwrap();
    let alone = PackedFile::open(&single).unwrap();
    assert_eq!(alone.version(), 1);
    let chosen = file.select_plan(1).unwrap();
    assert_eq!(chosen.bytes(), alone.selected_plan().bytes());
    for (a, b) in file.tensors().zip(alone.tensors()) {
        assert_eq!((a.name(), a.format()), (b.name(), b.format()));
        assert!(a.segments().map(|s| s.1).eq(b.segments().map(|s| s.1)), "{}", a.name());
    }

    // Loaded by name, it computes the single file's logits exactly.
    let load = |path: &Path, plan: PlanChoice| {
        let options = LoadOptions { plan, ..LoadOptions::default() };
        let loaded = open_packed(path, &options, &mut |_| {}).unwrap();
        let PackedModel::Decoder(session) = loaded.model else { panic!("expected a decoder") };
        let ids = session.tokenizer.encode("The sea was calm, and the village slept.").unwrap();
        let m = session.model.as_ref();
        (loaded.plan, m.forward(&ids, &mut m.new_cache(32), Logits::All).unwrap())
    };
    let (selection, from_multi) = load(&multi, PlanChoice::Named("mixed".to_owned()));
    assert_eq!(selection.index, 1);
    let (_, from_single) = load(&single, PlanChoice::Available);
    assert_eq!(from_multi, from_single);

    // By memory: the lowest predicted loss that fits.
    let registry = KernelRegistry::detect();
    let act = ActivationFormat::Int8;
    let run: Vec<u64> = choose_plan(&file, &PlanChoice::Memory(u64::MAX), &registry, act)
        .unwrap()
        .candidates
        .iter()
        .map(|c| c.run_bytes)
        .collect();
    assert!(run[0] < run[1] && run[1] < run[2], "{run:?}");
    for (limit, expected) in [(run[2], 2), (run[2] - 1, 1), (run[1], 1), (run[0], 0)] {
        let chosen = choose_plan(&file, &PlanChoice::Memory(limit), &registry, act).unwrap();
        assert_eq!(chosen.index, expected, "limit {limit}: {}", chosen.reason);
        assert!(chosen.reason.contains("lowest predicted loss"), "{}", chosen.reason);
    }
    let err = choose_plan(&file, &PlanChoice::Memory(run[0] - 1), &registry, act)
        .unwrap_err()
        .to_string();
    assert!(err.contains("multi.qlm") && err.contains("no plan fits"), "{err}");
    assert!(err.contains("the smallest, plan `small`, needs"), "{err}");
    let err = choose_plan(&file, &PlanChoice::Named("huge".into()), &registry, act)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no plan `huge` (its plans: `small`, `mixed`, `large`)"), "{err}");

    // Through the loader.
    let (selection, _) = load(&multi, PlanChoice::Memory(run[0]));
    assert_eq!(selection.chosen().name, "small");
    assert_eq!(selection.chosen().run_bytes, run[0]);

    // Export takes one plan, named.
    let out = tmp.path().join("small.gguf");
    let err = export_gguf(&multi, &out, &ExportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("holds 3 plans (`small`, `mixed`, `large`): choose"), "{err}");
    let options = ExportOptions { plan: Some("small".into()), ..ExportOptions::default() };
    let report = export_gguf(&multi, &out, &options).unwrap();
    let gguf = qloader_format::gguf::GgufFile::open(&out).unwrap();
    assert_eq!(gguf.tensors().len(), report.tensors.len());
    assert!(report.tensors.iter().all(|t| t.stored != WeightFormat::Int8PerChannel));
}
