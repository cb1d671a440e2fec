//! Nested variants in a multi-plan file of MiniLM (the fixture; skipped when
//! it is not fetched): wider plans stored as bit planes on the narrowest
//! plan's `int3k` codes, the file little more than the widest plan, and each
//! nested plan computing exactly what a single-plan file of its rebuilt
//! weights computes.

use std::collections::BTreeMap;
use std::path::Path;

use qloader_format::{fixtures, PackedFile, WeightFormat};
use qloader_runtime::packed::{
    open_packed, pack_model, pack_model_plans_with, quantizable_tensors, rebuild_nested,
    LoadOptions, Nesting, PackedModel, PlanChoice, PlanToPack, Quantization,
};

fn plan(name: &str, names: &[String], loss: f64, format: &str) -> PlanToPack {
    let format: WeightFormat = format.parse().unwrap();
    PlanToPack {
        name: name.to_owned(),
        formats: names.iter().map(|n| (n.clone(), format)).collect(),
        quantization: Quantization::default(),
        predicted_loss: Some(loss),
        tensor_losses: Default::default(),
        plan: None,
    }
}

fn embed(path: &Path, plan: PlanChoice) -> Vec<f32> {
    let options = LoadOptions { plan, ..LoadOptions::default() };
    let loaded = open_packed(path, &options, &mut |_| {}).unwrap();
    let PackedModel::Encoder(encoder) = loaded.model else { panic!("expected an encoder") };
    encoder.embed("The sea was calm, and the village slept.").unwrap()
}

#[test]
fn nested_plans_load_as_their_rebuilt_weights_would() {
    let dir = fixtures::minilm_dir();
    if !dir.exists() {
        eprintln!("skipping: {} is not fetched (scripts/fetch-fixtures.sh)", dir.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let names = quantizable_tensors(&dir).unwrap();
    let mut plans = vec![
        plan("p3", &names, 0.3, "int3k"),
        plan("p4", &names, 0.2, "int4k"),
        plan("p8", &names, 0.1, "q8_0"),
    ];
    // Every tensor predicted to lose 1.0 in p4's format.
    plans[1].tensor_losses = names.iter().map(|n| (n.clone(), 1.0)).collect();
    plans[1].predicted_loss = Some(names.len() as f64);
    let multi = tmp.path().join("nested.qlm");
    // A loose ratio: every wider variant nests.
    let nesting = Some(Nesting { max_error_ratio: 100.0 });
    let report =
        pack_model_plans_with(&dir, plans.clone(), nesting, &multi, &mut |_, _, _| {}).unwrap();
    assert_eq!(report.nested.len(), names.len(), "every quantizable tensor has a chain");
    let int3k: WeightFormat = "int3k".parse().unwrap();
    let chain = [WeightFormat::int4(), WeightFormat::grouped(8, 32)];
    assert!(report.nested.values().all(|(root, links)| *root == int3k && links == &chain));

    let mut file = PackedFile::open(&multi).unwrap();
    file.verify_all().unwrap();
    let bytes: Vec<u64> = file.plans().map(|p| p.bytes()).collect();
    assert!(bytes[0] < bytes[1] && bytes[1] < bytes[2], "{bytes:?}");
    // The file stores the widest plan's chain and nothing else.
    let stored: u64 = file.all_variants().map(|v| v.byte_len() as u64).sum();
    assert_eq!(stored, bytes[2]);
    assert_eq!(report.stored_bytes, stored);
    let formats: Vec<String> = report
        .plans
        .iter()
        .map(|(_, s, _)| {
            let t = s.tensors.iter().find(|t| t.quantizable).unwrap();
            t.format.to_string()
        })
        .collect();
    assert_eq!(formats, ["int3k", "int4", "int8g32"]);

    // A link carries its plan's loss scaled by its error against the
    // variant it replaced, and the plan's total follows.
    file.select_plan(1).unwrap();
    let losses: Vec<f64> = file
        .tensors()
        .filter(|t| names.iter().any(|n| n == t.name()))
        .map(|t| t.predicted_loss().unwrap())
        .collect();
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0), "{losses:?}");
    assert!(losses.iter().any(|l| (l - 1.0).abs() > 1e-6), "scaled: {losses:?}");
    let total = file.selected_plan().predicted_loss().unwrap();
    assert!((total - losses.iter().sum::<f64>()).abs() < 1e-9, "{total}");

    for (index, name) in [(1usize, "p4"), (2, "p8")] {
        // The plan's weights as a single-plan file holds them: rebuilt from
        // the chain, stored whole.
        file.select_plan(index).unwrap();
        let mut formats = BTreeMap::new();
        let mut replacements = BTreeMap::new();
        for t in file.tensors().filter(|t| names.iter().any(|n| n == t.name())) {
            assert!(t.base().is_some(), "{} is nested in {name}", t.name());
            let weight = rebuild_nested(&t).unwrap().unwrap();
            formats.insert(t.name().to_owned(), weight.format());
            replacements.insert(t.name().to_owned(), weight);
        }
        let single = tmp.path().join(format!("{name}.qlm"));
        let quantization = Quantization { replacements, ..Quantization::default() };
        pack_model(&dir, &formats, quantization, None, &single, &mut |_, _| {}).unwrap();
        let from_multi = embed(&multi, PlanChoice::Named(name.to_owned()));
        let from_single = embed(&single, PlanChoice::Available);
        assert_eq!(from_multi, from_single, "plan {name}");
    }
    // The root plan is the int3k file itself.
    let single = tmp.path().join("p3.qlm");
    pack_model(&dir, &plans[0].formats, Quantization::default(), None, &single, &mut |_, _| {})
        .unwrap();
    assert_eq!(
        embed(&multi, PlanChoice::Named("p3".into())),
        embed(&single, PlanChoice::Available)
    );
}

#[test]
fn a_strict_ratio_keeps_variants_whole() {
    let dir = fixtures::minilm_dir();
    if !dir.exists() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let names = quantizable_tensors(&dir).unwrap();
    let plans = vec![plan("p3", &names, 0.3, "int3k"), plan("p4", &names, 0.2, "int4k")];
    let multi = tmp.path().join("strict.qlm");
    // No nested variant is as good as the direct one it would replace.
    let nesting = Some(Nesting { max_error_ratio: 0.5 });
    let report = pack_model_plans_with(&dir, plans, nesting, &multi, &mut |_, _, _| {}).unwrap();
    assert!(report.nested.is_empty());
    let file = PackedFile::open(&multi).unwrap();
    assert!(file.all_variants().all(|v| v.base().is_none()));
}

#[test]
fn a_limit_between_plans_builds_one_from_the_recorded_losses() {
    use qloader_format::ActivationFormat;
    use qloader_runtime::packed::{choose_plan, pack_model_plans};
    use qloader_runtime::registry::KernelRegistry;

    let dir = fixtures::minilm_dir();
    if !dir.exists() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let names = quantizable_tensors(&dir).unwrap();
    // Per tensor, a loss that falls with bits, more for the later tensors.
    let with_losses = |mut p: PlanToPack, scale: f64| {
        p.tensor_losses =
            names.iter().enumerate().map(|(i, n)| (n.clone(), scale * (1 + i) as f64)).collect();
        p.predicted_loss = Some(p.tensor_losses.values().sum());
        p
    };
    let plans = vec![
        with_losses(plan("p3", &names, 0.0, "int3k"), 1e-3),
        with_losses(plan("p8", &names, 0.0, "q8_0"), 1e-5),
    ];
    let multi = tmp.path().join("frontier.qlm");
    pack_model_plans(&dir, plans, &multi, &mut |_, _, _| {}).unwrap();
    let file = PackedFile::open(&multi).unwrap();
    assert_eq!(file.version(), 3);
    let registry = KernelRegistry::detect();
    let act = ActivationFormat::F32;
    let all = choose_plan(&file, &PlanChoice::Memory(u64::MAX), &registry, act).unwrap();
    assert!(all.built.is_none(), "the largest plan is already the best");
    let run: Vec<u64> = all.candidates.iter().map(|c| c.run_bytes).collect();
    let losses: Vec<f64> = all.candidates.iter().map(|c| c.predicted_loss.unwrap()).collect();
    // Halfway between the two plans: a plan of both plans' variants.
    let limit = (run[0] + run[1]) / 2;
    let chosen = choose_plan(&file, &PlanChoice::Memory(limit), &registry, act).unwrap();
    let built = chosen.built.as_ref().expect("a plan built from the losses");
    assert_eq!(chosen.index, 2, "{}", chosen.reason);
    let c = chosen.chosen();
    assert!(c.run_bytes <= limit && c.run_bytes > run[0], "{} of {limit}", c.run_bytes);
    let loss = c.predicted_loss.unwrap();
    assert!(losses[1] < loss && loss < losses[0], "{loss} between {losses:?}");
    assert!(chosen.reason.contains("built here from the recorded per-tensor losses"));
    // Some quantizable tensors in the wider variant (1), not all.
    let wider = built.iter().filter(|&&v| v == 1).count();
    assert!(wider > 0 && wider < names.len(), "{built:?}");
    // The loader loads it.
    let options = LoadOptions { plan: PlanChoice::Memory(limit), ..LoadOptions::default() };
    let loaded = open_packed(&multi, &options, &mut |_| {}).unwrap();
    assert_eq!(loaded.plan.built.as_ref(), Some(built));
    let PackedModel::Encoder(encoder) = loaded.model else { panic!("expected an encoder") };
    assert_eq!(encoder.embed("The sea was calm.").unwrap().len(), 384);
}
