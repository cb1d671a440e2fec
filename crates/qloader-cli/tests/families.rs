//! The commands on every decoder family, from both inputs: the tiny models
//! of `crates/qloader-models/tests/data/families` (one per family, as a
//! Hugging Face checkpoint directory and as a GGUF file) go through
//! `analyze`, `plan`, `pack`, `run`, `generate`, `perplexity` and `eval`;
//! a packed model gives the tokens and the perplexity of the same model
//! quantized in memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FAMILIES: [&str; 7] = ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"];

/// Prose for calibration and scoring (the models are random: only that the
/// commands agree is checked, not what they score).
const TEXT: &str = "Alice was beginning to get very tired of sitting by her sister on the \
bank, and of having nothing to do: once or twice she had peeped into the book her sister was \
reading, but it had no pictures or conversations in it, and what is the use of a book, thought \
Alice, without pictures or conversations? So she was considering in her own mind (as well as \
she could, for the hot day made her feel very sleepy and stupid), whether the pleasure of making \
a daisy-chain would be worth the trouble of getting up and picking the daisies, when suddenly a \
White Rabbit with pink eyes ran close by her.";

fn inputs(family: &str) -> [(&'static str, PathBuf); 2] {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../qloader-models/tests/data/families")
        .join(family);
    [("safetensors", dir.join("hf")), ("gguf", dir.join("model.gguf"))]
}

fn qloader(args: &[&str]) -> Output {
    let out =
        Command::new(env!("CARGO_BIN_EXE_qloader")).args(args).output().expect("qloader runs");
    assert!(
        out.status.success(),
        "qloader {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn analyze_plan_pack_and_run_every_family_from_both_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("text.txt");
    std::fs::write(&text, TEXT.repeat(3)).unwrap();
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/x86-avx2-2core.toml");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    for family in FAMILIES {
        for (input, model) in inputs(family) {
            let at = |name: &str| tmp.path().join(format!("{family}-{input}-{name}"));
            let (table, plan, packed) = (at("table.json"), at("plan.json"), at("plan.qlm"));
            let common = ["--calib", &s(&text), "--calib-samples", "2"];
            qloader(&[
                "analyze",
                "--model",
                &s(&model),
                "--calib",
                &s(&text),
                "--samples",
                "2",
                "--window",
                "32",
                "--formats",
                "f16,int8,int4",
                "-o",
                &s(&table),
            ]);
            let name = json(&table)["model"]["architecture"].clone();
            // llama.cpp writes Mistral as `llama`, and so do these files.
            let want = if input == "gguf" && family == "mistral" { "llama" } else { family };
            assert_eq!(name, want, "{family} from {input}");
            qloader(&[
                "plan",
                "--table",
                &s(&table),
                "--budget",
                "6bpw",
                "--profile",
                &s(&profile),
                "-o",
                &s(&plan),
            ]);
            let (model_arg, plan_arg, packed_arg) = (s(&model), s(&plan), s(&packed));
            let mut pack = vec!["pack", "--model", &model_arg, "--plan", &plan_arg];
            pack.extend(["-o", &packed_arg]);
            pack.extend(common);
            qloader(&pack);
            let ran = at("plan-run.json");
            qloader(&["run", &s(&packed), "--raw", "--max-tokens", "4", "-o", &s(&ran), "Alice"]);
            assert_eq!(json(&ran)["tokens"].as_array().map(Vec::len), Some(4), "{family}");

            // Packed in int8, the model generates and scores as in memory.
            let int8 = at("int8.qlm");
            qloader(&["pack", "--model", &s(&model), "--quant", "int8", "-o", &s(&int8)]);
            let (ran, generated) = (at("int8-run.json"), at("int8-generate.json"));
            qloader(&["run", &s(&int8), "--raw", "--max-tokens", "8", "-o", &s(&ran), "Alice was"]);
            qloader(&[
                "generate",
                "--model",
                &s(&model),
                "--quant",
                "int8",
                "--raw",
                "-p",
                "Alice was",
                "--max-tokens",
                "8",
                "--json",
                &s(&generated),
            ]);
            let tokens = json(&ran)["tokens"].clone();
            assert_eq!(tokens, json(&generated)["tokens"], "{family} from {input}");
            let (evaluated, scored) = (at("eval.json"), at("perplexity.json"));
            qloader(&[
                "eval",
                &s(&int8),
                "--text",
                &s(&text),
                "--windows",
                "2",
                "--json",
                &s(&evaluated),
            ]);
            qloader(&[
                "perplexity",
                "--model",
                &s(&model),
                "--text",
                &s(&text),
                "--quant",
                "int8",
                "--window",
                "64",
                "--windows",
                "2",
                "--json",
                &s(&scored),
            ]);
            let packed_ppl = json(&evaluated)["perplexity"].as_f64().unwrap();
            let memory_ppl = json(&scored)[0]["report"]["perplexity"].as_f64().unwrap();
            assert!(
                (packed_ppl - memory_ppl).abs() < 1e-9 * memory_ppl,
                "{family} from {input}: packed {packed_ppl}, in memory {memory_ppl}"
            );
        }
    }
}

#[test]
fn inspect_names_the_family_of_an_original_model_or_lists_the_families() {
    for family in FAMILIES {
        for (input, model) in inputs(family) {
            let out = qloader(&["inspect", model.to_str().unwrap()]);
            let text = String::from_utf8_lossy(&out.stdout);
            // llama.cpp writes Mistral as `llama`.
            let want = if input == "gguf" && family == "mistral" { "llama" } else { family };
            assert!(text.contains(&format!("family: {want} (decoder)")), "{family}: {text}");
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), r#"{"architectures":["GPT2LMHeadModel"]}"#)
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_qloader"))
        .args(["inspect", tmp.path().to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("architecture `GPT2LMHeadModel` is not supported (supported: llama (GGUF"),
        "{err}"
    );
    assert!(err.contains("phi3 (GGUF phi3; Hugging Face Phi3ForCausalLM)"), "{err}");
}
