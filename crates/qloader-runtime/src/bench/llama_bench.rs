//! llama.cpp's `llama-bench` beside our model benchmark: the command lines
//! that run the same tests at one thread count, and its JSON output
//! (`-o json`) read into the same [`TestResult`]s.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::llama_cpp::run_tool;
use super::{BenchTest, ModelBenchConfig, Speed, TestKind, TestResult};
use crate::error::{Result, RuntimeError};

/// One test as llama-bench reports it (the fields we read; it prints many
/// more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaBenchRecord {
    /// Prompt tokens (0 for a decode test).
    pub n_prompt: usize,
    /// Generated tokens (0 for a prompt test).
    pub n_gen: usize,
    /// Tokens in the cache before the timed part (older builds lack it).
    #[serde(default)]
    pub n_depth: usize,
    /// Threads.
    pub n_threads: usize,
    /// Mean tokens per second over the repetitions.
    pub avg_ts: f64,
    /// Their standard deviation.
    #[serde(default)]
    pub stddev_ts: f64,
    /// Tokens per second of each repetition.
    #[serde(default)]
    pub samples_ts: Vec<f64>,
    /// The model file.
    #[serde(default)]
    pub model_filename: String,
    /// Bytes of the model's tensors.
    #[serde(default)]
    pub model_size: u64,
    /// The llama.cpp commit it was built from.
    #[serde(default)]
    pub build_commit: String,
}

impl LlamaBenchRecord {
    /// The test this record timed; `None` for a combined prompt-and-decode
    /// (`-pg`) test, which ours do not run.
    pub fn test(&self) -> Option<BenchTest> {
        let (kind, tokens) = match (self.n_prompt, self.n_gen) {
            (p, 0) if p > 0 => (TestKind::Prompt, p),
            (0, g) if g > 0 => (TestKind::Generate, g),
            _ => return None,
        };
        Some(BenchTest { kind, tokens, depth: self.n_depth })
    }

    /// The speed: median, slowest and fastest of the repetitions, or the
    /// mean alone when the record has no samples.
    pub fn speed(&self) -> Option<Speed> {
        if self.samples_ts.is_empty() {
            Speed::from_samples(vec![self.avg_ts])
        } else {
            Speed::from_samples(self.samples_ts.clone())
        }
    }

    /// The record as a result beside ours; `None` for a test ours do not run
    /// or a record without a usable speed.
    pub fn result(&self) -> Option<TestResult> {
        let test = self.test()?;
        Some(TestResult {
            name: test.name(),
            test,
            threads: self.n_threads,
            tokens_per_second: self.speed()?,
        })
    }
}

/// Reads llama-bench's `-o json` output: an array of records.
pub fn parse(json: &str) -> Result<Vec<LlamaBenchRecord>> {
    serde_json::from_str(json).map_err(|e| {
        RuntimeError::LlamaCpp(format!("llama-bench printed JSON this build cannot read: {e}"))
    })
}

/// One llama-bench invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaBenchCommand {
    /// The llama-bench executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

impl LlamaBenchCommand {
    /// The command line as a shell would take it (for the output).
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| shell_word(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs it and reads its records.
    pub fn run(&self) -> Result<Vec<LlamaBenchRecord>> {
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.args);
        let stdout = run_tool(&mut command, &self.command_line())?;
        parse(&String::from_utf8_lossy(&stdout))
    }
}

/// The llama-bench runs of `config`'s tests on `model` at `threads`
/// threads: one for the prompt tests (`-p 64,512 -n 0`), one for the decode
/// tests at every depth (`-p 0 -n 128 -d 0,512`), so that no prompt test
/// runs at a depth ours do not. llama-bench warms up once per test unless
/// told not to; with `config.warmup == 0` it is.
pub fn commands(
    llama_bench: &Path,
    model: &Path,
    config: &ModelBenchConfig,
    threads: usize,
) -> Vec<LlamaBenchCommand> {
    let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let mut runs = Vec::new();
    if !config.prompt_lengths.is_empty() {
        runs.push(vec!["-p".to_owned(), list(&config.prompt_lengths), "-n".into(), "0".into()]);
    }
    if !config.generate_lengths.is_empty() {
        runs.push(vec![
            "-p".to_owned(),
            "0".into(),
            "-n".into(),
            list(&config.generate_lengths),
            "-d".into(),
            list(&config.depths),
        ]);
    }
    runs.into_iter()
        .map(|tests| {
            let mut args: Vec<OsString> = vec!["-m".into(), model.as_os_str().to_owned()];
            args.extend(tests.into_iter().map(OsString::from));
            for a in ["-t", &threads.to_string(), "-r", &config.reps.to_string(), "-o", "json"] {
                args.push(a.into());
            }
            if config.warmup == 0 {
                args.push("--no-warmup".into());
            }
            LlamaBenchCommand { program: llama_bench.to_owned(), args }
        })
        .collect()
}

/// `word`, single-quoted if a shell would split or expand it.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./,=:@+%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `llama-bench -m smol-q4_0.gguf -p 8 -n 4 -d 0,8 -t 1 -r 2 -o json` of
    /// the build scripts/llama-cpp.sh makes, as printed.
    const SAMPLE: &str = include_str!("testdata/llama-bench.json");

    #[test]
    fn reads_real_llama_bench_output() {
        let records = parse(SAMPLE).unwrap();
        assert_eq!(records.len(), 4);
        let names: Vec<String> = records.iter().map(|r| r.result().unwrap().name).collect();
        assert_eq!(names, ["pp8", "tg4", "pp8@d8", "tg4@d8"]);
        let tg = records[1].result().unwrap();
        assert_eq!(tg.test, BenchTest { kind: TestKind::Generate, tokens: 4, depth: 0 });
        assert_eq!(tg.threads, 1);
        assert_eq!(tg.tokens_per_second.samples, [11.629, 11.6812]);
        assert!((tg.tokens_per_second.median - 11.6551).abs() < 1e-9, "median of the samples");
        assert_eq!(records[0].model_size, 89_941_248);
        assert_eq!(records[0].build_commit, "0c1e570");
    }

    #[test]
    fn falls_back_to_the_mean_and_rejects_garbage() {
        let r: Vec<LlamaBenchRecord> = parse(
            r#"[{"n_prompt": 0, "n_gen": 16, "n_threads": 2, "avg_ts": 50.5},
                {"n_prompt": 8, "n_gen": 8, "n_threads": 2, "avg_ts": 9.0}]"#,
        )
        .unwrap();
        let s = r[0].speed().unwrap();
        assert_eq!((s.median, s.min, s.max), (50.5, 50.5, 50.5));
        assert_eq!(r[0].test().unwrap().name(), "tg16", "no n_depth: depth 0");
        assert!(r[1].result().is_none(), "a -pg test is not ours");
        let err = parse("| model | size |").unwrap_err().to_string();
        assert!(err.contains("llama-bench printed JSON"), "{err}");
        assert!(parse(r#"[{"n_prompt": 1}]"#).is_err(), "fields missing");
    }

    #[test]
    fn one_run_for_prompts_and_one_for_decodes() {
        let config = ModelBenchConfig::standard();
        let runs = commands(Path::new("/b/llama-bench"), Path::new("/m/q 4.gguf"), &config, 2);
        let lines: Vec<String> = runs.iter().map(LlamaBenchCommand::command_line).collect();
        assert_eq!(
            lines,
            [
                "/b/llama-bench -m '/m/q 4.gguf' -p 64,512 -n 0 -t 2 -r 5 -o json",
                "/b/llama-bench -m '/m/q 4.gguf' -p 0 -n 128 -d 0,512 -t 2 -r 5 -o json",
            ]
        );
        let config = ModelBenchConfig { prompt_lengths: vec![], warmup: 0, ..config };
        let runs = commands(Path::new("lb"), Path::new("m"), &config, 1);
        assert_eq!(runs.len(), 1);
        assert!(runs[0].command_line().ends_with("-o json --no-warmup"));
    }
}
