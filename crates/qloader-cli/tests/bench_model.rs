//! `qloader bench model` end to end on the SmolLM2 fixture with tiny
//! settings (well-formed JSON, positive speeds; never a speed threshold),
//! its errors, and the tokens/s that `eval` of a packed decoder reports.

use std::path::Path;
use std::process::{Command, Output};

use qloader_format::fixtures;

fn qloader(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qloader")).args(args).output().expect("qloader runs")
}

fn qloader_with_cache(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qloader"))
        .env(fixtures::CACHE_ENV, cache)
        .args(args)
        .output()
        .expect("qloader runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn present(path: &Path) -> bool {
    let present = path.exists();
    if !present {
        assert!(std::env::var_os("CI").is_none(), "{} missing in CI", path.display());
        eprintln!("SKIP: {} missing; run scripts/fetch-fixtures.sh", path.display());
    }
    present
}

/// The tiny settings: two tests of each kind, one run each, one thread.
const TINY: [&str; 12] =
    ["--pp", "8", "--tg", "4", "--depth", "0,8", "--reps", "1", "--threads", "1", "--warmup", "0"];

fn positive_median(result: &serde_json::Value) -> f64 {
    let median = result["tokens_per_second"]["median"].as_f64().unwrap();
    assert!(median > 0.0 && median.is_finite(), "{result}");
    median
}

#[test]
fn bench_model_of_a_checkpoint_directory_times_it_quantized_at_load() {
    let hf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../qloader-models/tests/data/families/gemma2/hf");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut args = vec!["bench", "model", hf.to_str().unwrap(), "--quant", "int4"];
    args.extend(TINY);
    args.extend(["--json", json.to_str().unwrap()]);
    let o = qloader(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("weights: every quantizable tensor int4"), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!((v["input"].as_str(), v["quant"].as_str()), (Some("checkpoint-dir"), Some("int4")));
    let weights = std::fs::metadata(hf.join("model.safetensors")).unwrap().len();
    assert!(v["model"]["bytes"].as_u64().unwrap() > weights, "the directory's files counted");
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    v["results"].as_array().unwrap().iter().for_each(|r| _ = positive_median(r));
}

#[test]
fn bench_model_of_a_gguf_writes_well_formed_json() {
    let gguf = fixtures::smollm2_gguf();
    if !present(&gguf) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut args = vec!["bench", "model", gguf.to_str().unwrap(), "--quant", "int8"];
    args.extend(TINY);
    args.extend(["--json", json.to_str().unwrap()]);
    let o = qloader(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("cpu: ") && out.contains("kernel tier: "), "{out}");
    assert!(out.contains("| test (tokens/s) | 1 thread |"), "{out}");
    for row in ["| pp8 |", "| tg4 |", "| tg4@d8 |"] {
        assert!(out.contains(row), "{row} in {out}");
    }

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["input"], "gguf");
    assert_eq!(v["quant"], "int8");
    assert_eq!(v["activations"], "int8", "the decoder default");
    assert_eq!(v["model"]["bytes"].as_u64(), Some(std::fs::metadata(&gguf).unwrap().len()));
    assert!(v["tokens"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["llama_cpp"].is_null());
    let results = v["results"].as_array().unwrap();
    let names: Vec<&str> = results.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pp8", "tg4", "tg4@d8"]);
    for r in results {
        positive_median(r);
        assert_eq!(r["threads"], 1);
        assert_eq!(r["tokens_per_second"]["samples"].as_array().unwrap().len(), 1);
    }
    assert_eq!(results[2]["test"]["kind"], "generate");
    assert_eq!(results[2]["test"]["depth"], 8);
}

#[test]
fn bench_model_and_eval_of_a_packed_decoder() {
    let gguf = fixtures::smollm2_gguf();
    if !present(&gguf) || !present(&fixtures::botchan_text()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let packed = dir.path().join("smollm2-int4.qlm");
    let packed_s = packed.to_str().unwrap();
    let o =
        qloader(&["pack", "--model", gguf.to_str().unwrap(), "--quant", "int4", "-o", packed_s]);
    assert!(o.status.success(), "{}", stderr(&o));

    let json = dir.path().join("bench.json");
    let mut args = vec!["bench", "model", packed_s, "--act", "int8"];
    args.extend(TINY);
    args.extend(["--json", json.to_str().unwrap()]);
    let o = qloader(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!((v["input"].as_str(), v["activations"].as_str()), (Some("packed"), Some("int8")));
    assert!(v["quant"].is_null());
    assert!(v["tokens"].as_str().unwrap().contains("botchan.txt"), "{}", v["tokens"]);
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    v["results"].as_array().unwrap().iter().for_each(|r| _ = positive_median(r));

    // A packed model's formats are fixed.
    let o = qloader(&["bench", "model", packed_s, "--quant", "int8"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--quant applies to an original model"), "{}", stderr(&o));

    // eval of the packed decoder: tokens/s beside the time, and in its JSON.
    let eval_json = dir.path().join("eval.json");
    let o = qloader(&["eval", packed_s, "--windows", "1", "--json", eval_json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("| time | tokens/s |"), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&eval_json).unwrap()).unwrap();
    let tps = v["tokens_per_second"].as_f64().unwrap();
    let seconds = v["seconds"].as_f64().unwrap();
    assert!((tps * seconds - 511.0).abs() < 1.0, "511 scored tokens: {tps} × {seconds}");
}

#[test]
fn bench_model_of_an_encoder_is_a_clear_error() {
    let minilm = fixtures::minilm_dir();
    if !present(&minilm.join("model.safetensors")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let packed = dir.path().join("minilm.qlm");
    let packed_s = packed.to_str().unwrap();
    let o =
        qloader(&["pack", "--model", minilm.to_str().unwrap(), "--quant", "int8", "-o", packed_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = qloader(&["bench", "model", packed_s, "--pp", "8", "--reps", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("minilm.qlm is a packed encoder") && err.contains("decoders"), "{err}");
}

#[test]
fn llama_cpp_without_its_tools_says_to_build_them() {
    let gguf = fixtures::smollm2_gguf();
    if !present(&gguf) {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let o = qloader_with_cache(
        empty.path(),
        &["bench", "model", gguf.to_str().unwrap(), "--llama-cpp", "--reps", "1"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("run scripts/llama-cpp.sh first"), "{err}");
    assert!(err.contains(&empty.path().join("llama-cpp").display().to_string()), "{err}");

    let o = qloader_with_cache(
        empty.path(),
        &["bench", "model", gguf.to_str().unwrap(), "--llama-cpp", "--llama-cpp-bin", "/no/bin"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/no/bin has no llama-bench"), "{}", stderr(&o));
}

#[test]
fn bad_flag_values_are_clear_errors() {
    // Checked before any model is read: the file need not exist for these.
    let cases: [(&[&str], &str); 6] = [
        (&["--threads", "0"], "--threads values must be between 1 and 1024"),
        (&["--reps", "0"], "--reps must be between 1 and 1000"),
        (&["--pp", "0"], "test length 0"),
        (&["--tg", "99999999"], "test length 99999999"),
        (&["--depth", "99999999"], "depth 99999999"),
        (&["--warmup", "5000"], "--warmup must be at most 1000"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["bench", "model", "/no/such/model.qlm"];
        args.extend(flags);
        let o = qloader(&args);
        assert_eq!(o.status.code(), Some(1), "{flags:?}");
        assert!(stderr(&o).contains(message), "{flags:?}: {}", stderr(&o));
    }
    // Not numbers, or --llama-cpp-* without --llama-cpp: usage errors.
    for flags in [&["--pp", "abc"][..], &["--act", "int4"], &["--llama-cpp-bin", "/x"]] {
        let mut args = vec!["bench", "model", "/no/such/model.qlm"];
        args.extend(flags);
        assert_eq!(qloader(&args).status.code(), Some(2), "{flags:?}");
    }
    let o = qloader(&["bench", "model", "/no/such/model.qlm", "--reps", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/no/such/model.qlm"), "{}", stderr(&o));
}
