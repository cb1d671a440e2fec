//! Planning end to end on synthetic tables with the shipped device profiles:
//! budgets and device memory respected, formats without a kernel only ever
//! taken as their fallback, pins honoured, bad options named, plan files
//! round-tripped and checked, the frontier and its picture drawn.

use std::path::{Path, PathBuf};

use qloader_analyze::table::{
    CalibrationInfo, FormatEntry, ModelInfo, TensorEntry, Timings, SCHEMA, VERSION,
};
use qloader_analyze::{Measure, SensitivityTable};
use qloader_format::gguf::layouts::same_bytes_type;
use qloader_format::{ActivationFormat, FormatFamily, WeightFormat};
use qloader_schedule::explain::explain;
use qloader_schedule::frontier::frontier;
use qloader_schedule::{chart, make_plan, Budget, Plan, PlanOptions, SolverKind, Sources};

const FORMATS: [&str; 5] = ["f16", "int8", "int4", "int3", "int2"];

fn profile(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles").join(name)
}

/// A table of `n` tensors of `rows × cols`, losses growing as bits fall
/// and differing per tensor, written to `dir`.
fn table(dir: &Path, n: usize, rows: usize, cols: usize) -> PathBuf {
    table_of(dir, n, rows, cols, &FORMATS)
}

/// [`table`] with other candidate formats.
fn table_of(dir: &Path, n: usize, rows: usize, cols: usize, names: &[&str]) -> PathBuf {
    let tensors = (0..n)
        .map(|i| {
            let sensitivity = 1.0 + (i * 7 % 5) as f64 * 3.0;
            let formats = names
                .iter()
                .map(|&f| {
                    let format: WeightFormat = f.parse().unwrap();
                    let bits = format.bits_per_weight();
                    let loss = sensitivity * 4f64.powf(-bits);
                    let entry = FormatEntry {
                        bytes: format.storage_bytes(rows, cols) as u64,
                        weight_mse: loss,
                        proxy: Some(loss * 10.0),
                        e2e: None,
                        e2e_estimate: None,
                    };
                    (format, entry)
                })
                .collect();
            TensorEntry {
                name: format!("blk.{i}.ffn_down.weight"),
                shape: [rows, cols],
                kind: if i == n - 1 { "head".into() } else { "mlp_down".into() },
                layer: (i + 1 < n).then_some(i),
                formats,
            }
        })
        .collect();
    let table = SensitivityTable {
        schema: SCHEMA.into(),
        version: VERSION,
        model: ModelInfo {
            path: "synthetic".into(),
            architecture: "llama".into(),
            quantizable_params: (n * rows * cols) as u64,
        },
        calibration: CalibrationInfo {
            data_free: false,
            source: None,
            samples: 1,
            tokens: 1,
            e2e_samples: 0,
            e2e_tokens: 0,
            held_out: 0,
        },
        method: Default::default(),
        measures: vec![Measure::WeightMse, Measure::Proxy],
        e2e_metric: None,
        e2e_formats: Vec::new(),
        formats: names.iter().map(|f| f.parse().unwrap()).collect(),
        tensors,
        timings: Timings { proxy_seconds: 0.0, e2e_seconds: 0.0, total_seconds: 0.0, threads: 1 },
    };
    let path = dir.join(format!("table-{n}-{rows}x{cols}.json"));
    table.write(&path).unwrap();
    path
}

fn options(budget: Option<&str>) -> PlanOptions {
    PlanOptions { budget: budget.map(|b| b.parse::<Budget>().unwrap()), ..PlanOptions::default() }
}

#[test]
fn edge_plan_respects_its_memory_and_only_falls_back_where_declared() {
    let dir = tempfile::tempdir().unwrap();
    // 8 × 64 Mi weights: 1 GiB at f16, 320 MiB at int4 (the smallest the
    // device holds), so the device's 512 MiB binds.
    let sources =
        Sources::read(&table(dir.path(), 8, 16384, 4096), &profile("edge-arm-512mib.toml"))
            .unwrap();
    let plan = make_plan(&sources, &options(None)).unwrap();
    plan.validate().unwrap();
    assert_eq!(plan.constraints.max_bytes, 512 << 20);
    assert!(plan.totals.bytes <= 512 << 20, "{} bytes", plan.totals.bytes);
    for t in &plan.tensors {
        let planned = t.format;
        let runs = t.runs_as;
        let native = sources.profile.kernel(planned.family(), ActivationFormat::F32).is_some();
        assert_eq!(t.fallback, !native, "{}", t.name);
        if !native {
            // No int3/int2 kernel there: held and costed as int4.
            assert_eq!(runs.family(), FormatFamily::Int4, "{}", t.name);
            assert_eq!(t.bytes, runs.storage_bytes(t.shape[0], t.shape[1]) as u64);
        }
        assert!(
            sources.profile.kernel(runs.family(), ActivationFormat::F32).is_some(),
            "{}",
            t.name
        );
    }
    // A smaller budget than the device's applies instead.
    let plan = make_plan(&sources, &options(Some("400MiB"))).unwrap();
    assert_eq!(plan.constraints.max_bytes, 400 << 20);
    assert!(plan.totals.bytes <= 400 << 20);
}

#[test]
fn a_gguf_layout_profile_plans_only_formats_llama_cpp_reads_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "f16", "int8", "q8_0", "q5_0", "int5k", "int4", "q4_0", "iq4_nl", "int4g128", "int4k",
        "nl4k", "int3", "int3k", "int2k",
    ];
    for cols in [576, 1536] {
        let path = table_of(dir.path(), 6, 256, cols, &names);
        let sources = Sources::read(&path, &profile("llama-cpp.toml")).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let tightest = if cols == 576 { "4.6bpw" } else { "4.4bpw" };
        for budget in [tightest, "8bpw", "12bpw"] {
            let plan = make_plan(&sources, &options(Some(budget))).unwrap();
            for t in &plan.tensors {
                let ty = same_bytes_type(t.format, cols);
                assert!(ty.is_some(), "{cols} columns: {} has no GGUF layout", t.format);
                assert!(!t.fallback, "{}", t.format);
                seen.insert(t.format.name());
            }
        }
        // 576 columns: only 32-blocks (Q8_0, Q4_1, Q4_0, IQ4_NL) and f16; 1536: the
        // super-block formats too.
        assert!(seen.contains("f16"), "{cols}: {seen:?}");
        assert!(seen.iter().any(|f| ["q4_0", "iq4_nl"].contains(&f.as_str())), "{cols}: {seen:?}");
        assert_eq!(seen.iter().any(|f| f.ends_with('k')), cols == 1536, "{cols}: {seen:?}");
    }
}

#[test]
fn int8_only_device_never_gets_floats() {
    let dir = tempfile::tempdir().unwrap();
    let sources =
        Sources::read(&table(dir.path(), 6, 512, 1024), &profile("int8-only.toml")).unwrap();
    let plan = make_plan(&sources, &options(Some("8.5bpw"))).unwrap();
    for t in &plan.tensors {
        assert!(t.format.bits_per_weight() < 16.0, "{}: {}", t.name, t.format);
        assert_eq!(t.runs_as.family(), FormatFamily::Int8, "{}", t.name);
    }
    // Pinning a tensor to f16 there is refused, naming the tensor.
    let mut o = options(Some("8.5bpw"));
    o.pins = vec!["blk\\.0\\.=f16".parse().unwrap()];
    let err = make_plan(&sources, &o).unwrap_err().to_string();
    assert!(err.contains("blk.0.ffn_down.weight") && err.contains("f16"), "{err}");
}

#[test]
fn pins_budgets_and_solvers() {
    let dir = tempfile::tempdir().unwrap();
    let sources =
        Sources::read(&table(dir.path(), 10, 256, 512), &profile("edge-arm-512mib.toml")).unwrap();
    let mut o = options(Some("6bpw"));
    o.pins = vec!["head|blk\\.9\\.=int8".parse().unwrap(), "blk\\.1\\.=int2".parse().unwrap()];
    o.check_exact = true;
    let plan = make_plan(&sources, &o).unwrap();
    assert_eq!(plan.format_of("blk.9.ffn_down.weight"), Some(WeightFormat::Int8PerChannel));
    assert_eq!(plan.format_of("blk.1.ffn_down.weight"), Some("int2".parse().unwrap()));
    assert!(plan.tensors.iter().filter(|t| t.pinned).count() == 2);
    let check = plan.exact_check.as_ref().unwrap();
    assert!(check.proven_optimal && check.loss <= plan.totals.loss * (1.0 + 1e-12));
    assert!(plan.bound <= check.loss * (1.0 + 1e-9));
    let exact =
        make_plan(&sources, &PlanOptions { solver: SolverKind::Exact, ..o.clone() }).unwrap();
    assert!((exact.totals.loss - check.loss).abs() <= 1e-12 * check.loss.max(1e-300));

    let mut bad = options(Some("3bpw"));
    bad.pins = vec!["nothing-like-this=int8".parse().unwrap()];
    let err = make_plan(&sources, &bad).unwrap_err().to_string();
    assert!(err.contains("matches no tensor"), "{err}");
    bad.pins = vec!["blk=int4g128".parse().unwrap()];
    let err = make_plan(&sources, &bad).unwrap_err().to_string();
    assert!(err.contains("not among the table's formats"), "{err}");
    let err = make_plan(&sources, &options(Some("1KiB"))).unwrap_err().to_string();
    assert!(err.contains("smallest plan takes"), "{err}");
    let mut slow = options(Some("6bpw"));
    slow.max_latency_ms = Some(1e-9);
    assert!(make_plan(&sources, &slow).is_err());
    let here = Sources::read(&table(dir.path(), 2, 64, 64), &dir.path().join("none.toml"));
    assert!(here.unwrap_err().to_string().contains("none.toml"));
}

#[test]
fn latency_budget_trades_loss_for_speed() {
    let dir = tempfile::tempdir().unwrap();
    let sources =
        Sources::read(&table(dir.path(), 10, 1024, 1024), &profile("edge-arm-512mib.toml"))
            .unwrap();
    let free = make_plan(&sources, &options(Some("8bpw"))).unwrap();
    let mut o = options(Some("8bpw"));
    o.max_latency_ms = Some(free.totals.latency_ms * 0.8);
    let fast = make_plan(&sources, &o).unwrap();
    assert!(fast.totals.latency_ms <= free.totals.latency_ms * 0.8 * (1.0 + 1e-9));
    assert!(fast.totals.loss >= free.totals.loss);
}

#[test]
fn plan_files_round_trip_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let sources =
        Sources::read(&table(dir.path(), 5, 128, 256), &profile("edge-arm-512mib.toml")).unwrap();
    let plan = make_plan(&sources, &options(Some("6bpw"))).unwrap();
    let path = dir.path().join("plan.json");
    plan.write(&path).unwrap();
    assert_eq!(Plan::read(&path).unwrap(), plan);
    assert_eq!(plan.inputs.table.sha256.len(), 64);

    let text = explain(&plan, 3);
    for want in
        ["on device edge-arm-512mib", "certified gap", "| mlp_down |", "tensors losing most"]
    {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    let mut broken = plan.clone();
    broken.totals.bytes += 1;
    std::fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
    let err = Plan::read(&path).unwrap_err().to_string();
    assert!(err.contains("plan.json") && err.contains("add up to"), "{err}");
    let json = serde_json::to_string(&plan).unwrap();
    let format = format!("\"format\":\"{}\"", plan.tensors[0].format);
    assert!(json.contains(&format), "{json}");
    let broken = json.replacen(&format, "\"format\":\"int5\"", 1);
    let err = Plan::from_json(broken.as_bytes()).unwrap_err();
    assert!(err.contains("unknown weight format `int5`"), "{err}");
}

#[test]
fn frontier_is_monotone_and_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let sources =
        Sources::read(&table(dir.path(), 12, 256, 512), &profile("edge-arm-512mib.toml")).unwrap();
    let f = frontier(&sources, &PlanOptions::default(), 30).unwrap();
    assert!(f.points.len() >= 5, "{} points", f.points.len());
    for w in f.points.windows(2) {
        assert!(w[0].bytes < w[1].bytes && w[0].loss >= w[1].loss);
    }
    assert!(f.points.iter().all(|p| p.bound <= p.loss * (1.0 + 1e-9)));
    let names: Vec<String> = f.uniform.iter().map(|u| u.format.name()).collect();
    assert_eq!(names, FORMATS);
    // int3 and int2 run as int4 there: int4's size, more loss.
    let int4 = &f.uniform[2];
    assert_eq!(f.uniform[4].bytes, int4.bytes);
    assert!(f.uniform[4].loss > int4.loss && f.uniform[4].fallback_tensors == 12);
    for u in &f.uniform {
        let m = u.mixed_at_same_size.as_ref().unwrap();
        assert!(m.bytes <= u.bytes && m.loss <= u.loss * (1.0 + 1e-12), "{}", u.format);
    }
    let csv = f.to_csv();
    assert_eq!(csv.lines().count(), 1 + f.points.len() + f.uniform.len());
    let svg = dir.path().join("f.svg");
    chart::draw(&f, &svg).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("int8") && text.contains("uniform formats"));
}
