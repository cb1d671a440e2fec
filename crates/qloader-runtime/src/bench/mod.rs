//! Whole-model speed of a decoder, as `qloader bench model` measures it:
//! prompt processing (`ppN`: one forward pass of N tokens from an empty KV
//! cache, last-token logits only) and decoding (`tgN@dD`: N single-token
//! passes after a cache already holding D tokens, only the N steps timed),
//! in tokens per second, medians of repeated runs at a given thread count.
//!
//! The tests and their names follow llama.cpp's `llama-bench`, so the two
//! can be set side by side ([`llama_bench`] runs and reads it, [`llama_cpp`]
//! finds its tools and the model it runs on).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod llama_bench;
pub mod llama_cpp;
pub mod tokens;

use std::time::Instant;

use qloader_models::decoder::{Decoder, Logits};
use serde::Serialize;

use crate::error::{Result, RuntimeError};

/// Runs `f` with the runtime's products on `threads` threads. Every timed
/// run goes through here, so the thread team the benchmark measures is
/// chosen in one place.
pub fn at_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    qloader_hw::with_threads(threads, f)
}

/// What a test times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// Prompt processing: one forward pass of all the tokens.
    Prompt,
    /// Decoding: one forward pass per token.
    Generate,
}

/// One test: `pp64`, `tg128`, `tg128@d512`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BenchTest {
    /// Prompt processing or decoding.
    pub kind: TestKind,
    /// Tokens processed (and counted) per run.
    pub tokens: usize,
    /// Tokens already in the KV cache when the timed part starts.
    pub depth: usize,
}

impl BenchTest {
    /// The name llama-bench gives the test: `pp512`, `tg128`, `tg128@d512`.
    pub fn name(&self) -> String {
        let prefix = match self.kind {
            TestKind::Prompt => "pp",
            TestKind::Generate => "tg",
        };
        if self.depth == 0 {
            format!("{prefix}{}", self.tokens)
        } else {
            format!("{prefix}{}@d{}", self.tokens, self.depth)
        }
    }

    /// KV-cache positions a run needs.
    pub fn positions(&self) -> usize {
        self.depth + self.tokens
    }
}

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelBenchConfig {
    /// Prompt lengths (`pp` tests), each from an empty cache.
    pub prompt_lengths: Vec<usize>,
    /// Decode lengths (`tg` tests), each at every depth.
    pub generate_lengths: Vec<usize>,
    /// Cache depths the decode tests start from.
    pub depths: Vec<usize>,
    /// Timed runs per test.
    pub reps: usize,
    /// Untimed runs before them.
    pub warmup: usize,
}

/// Default prompt lengths: llama-bench's `-p 64,512`…
pub const DEFAULT_PROMPT_LENGTHS: [usize; 2] = [64, 512];
/// …decode length (its `-n 128`)…
pub const DEFAULT_GENERATE_LENGTHS: [usize; 1] = [128];
/// …the cache depths decoding is timed at: empty, and after a 512-token
/// prompt…
pub const DEFAULT_DEPTHS: [usize; 2] = [0, 512];
/// …and its repetitions per test, after one warm-up run.
pub const DEFAULT_REPS: usize = 5;
/// Warm-up runs per test.
pub const DEFAULT_WARMUP: usize = 1;

/// Most tokens a test may process or start from (far beyond any context a
/// benchmark on a CPU would use; keeps a typo from allocating without bound).
pub const MAX_TEST_TOKENS: usize = 1 << 16;
/// Most repetitions (and warm-up runs) per test.
pub const MAX_REPS: usize = 1000;

impl ModelBenchConfig {
    /// The default tests: pp64, pp512, tg128 at depth 0 and 512, five
    /// repetitions after one warm-up.
    pub fn standard() -> Self {
        Self {
            prompt_lengths: DEFAULT_PROMPT_LENGTHS.into(),
            generate_lengths: DEFAULT_GENERATE_LENGTHS.into(),
            depths: DEFAULT_DEPTHS.into(),
            reps: DEFAULT_REPS,
            warmup: DEFAULT_WARMUP,
        }
    }

    /// Every test, prompt processing first, in the order given.
    pub fn tests(&self) -> Vec<BenchTest> {
        let prompts = self.prompt_lengths.iter().map(|&tokens| BenchTest {
            kind: TestKind::Prompt,
            tokens,
            depth: 0,
        });
        let decodes = self.generate_lengths.iter().flat_map(|&tokens| {
            self.depths.iter().map(move |&depth| BenchTest {
                kind: TestKind::Generate,
                tokens,
                depth,
            })
        });
        prompts.chain(decodes).collect()
    }

    /// Token ids a run of every test reads: the longest prompt, or the
    /// deepest cache plus the longest decode.
    pub fn tokens_needed(&self) -> usize {
        self.tests().iter().map(BenchTest::positions).max().unwrap_or(0)
    }

    /// Checks the values, and that every test fits a context of `context`
    /// positions.
    pub fn validate(&self, context: usize) -> Result<()> {
        let invalid = |reason: String| Err(RuntimeError::InvalidBench(reason));
        if self.prompt_lengths.is_empty() && self.generate_lengths.is_empty() {
            return invalid("no tests: give at least one prompt or decode length".to_owned());
        }
        if !self.generate_lengths.is_empty() && self.depths.is_empty() {
            return invalid("decode tests need at least one depth".to_owned());
        }
        let lengths = self.prompt_lengths.iter().chain(&self.generate_lengths);
        if let Some(n) = lengths.into_iter().find(|&&n| n == 0 || n > MAX_TEST_TOKENS) {
            return invalid(format!("test length {n} is not between 1 and {MAX_TEST_TOKENS}"));
        }
        if let Some(d) = self.depths.iter().find(|&&d| d > MAX_TEST_TOKENS) {
            return invalid(format!("depth {d} is larger than {MAX_TEST_TOKENS}"));
        }
        if self.reps == 0 || self.reps > MAX_REPS {
            return invalid(format!("repetitions {} are not between 1 and {MAX_REPS}", self.reps));
        }
        if self.warmup > MAX_REPS {
            return invalid(format!("warm-up runs {} are more than {MAX_REPS}", self.warmup));
        }
        if let Some(t) = self.tests().into_iter().find(|t| t.positions() > context) {
            return invalid(format!(
                "{} needs {} positions; the model's context holds {context}",
                t.name(),
                t.positions()
            ));
        }
        Ok(())
    }
}

/// Speeds of the timed runs of one test, tokens per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Speed {
    /// The median run.
    pub median: f64,
    /// The slowest run.
    pub min: f64,
    /// The fastest run.
    pub max: f64,
    /// Every run, in the order run.
    pub samples: Vec<f64>,
}

impl Speed {
    /// The median (of the two middle runs, for an even count), slowest and
    /// fastest of `samples`; `None` when there are none or one is not a
    /// finite positive speed.
    pub fn from_samples(samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return None;
        }
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median =
            if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Self { median, min: sorted[0], max: sorted[n - 1], samples })
    }
}

/// One test at one thread count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    /// The test's name (`pp512`, `tg128@d512`).
    pub name: String,
    /// The test.
    pub test: BenchTest,
    /// Threads it ran on.
    pub threads: usize,
    /// How fast.
    pub tokens_per_second: Speed,
}

/// Runs every test of `config` on `model` with `threads` threads, reading
/// token ids from `tokens` (at least [`ModelBenchConfig::tokens_needed`]);
/// `progress` hears about each test before it runs.
pub fn run_model_bench(
    model: &dyn Decoder,
    tokens: &[u32],
    config: &ModelBenchConfig,
    threads: usize,
    progress: &mut dyn FnMut(&BenchTest),
) -> Result<Vec<TestResult>> {
    config.validate(model.config().context())?;
    if tokens.len() < config.tokens_needed() {
        return Err(RuntimeError::InvalidBench(format!(
            "{} token ids given; the tests read {}",
            tokens.len(),
            config.tokens_needed()
        )));
    }
    let mut results = Vec::new();
    for test in config.tests() {
        progress(&test);
        let seconds = at_threads(threads, || time_test(model, tokens, &test, config))?;
        let speeds = seconds.iter().map(|s| test.tokens as f64 / s.max(f64::MIN_POSITIVE));
        let tokens_per_second = Speed::from_samples(speeds.collect()).ok_or_else(|| {
            RuntimeError::InvalidBench(format!("{} measured no usable run", test.name()))
        })?;
        results.push(TestResult { name: test.name(), test, threads, tokens_per_second });
    }
    Ok(results)
}

/// Seconds of each timed run of `test` (the warm-up runs left out).
fn time_test(
    model: &dyn Decoder,
    tokens: &[u32],
    test: &BenchTest,
    config: &ModelBenchConfig,
) -> Result<Vec<f64>> {
    let mut cache = model.new_cache(test.positions());
    let mut seconds = Vec::with_capacity(config.reps);
    // A decode test's cache is filled to its depth once, untimed, and cut
    // back to it before every run.
    if test.kind == TestKind::Generate && test.depth > 0 {
        model.forward(&tokens[..test.depth], &mut cache, Logits::Last)?;
    }
    for run in 0..config.warmup + config.reps {
        let elapsed = match test.kind {
            TestKind::Prompt => {
                cache.clear();
                let clock = Instant::now();
                model.forward(&tokens[..test.tokens], &mut cache, Logits::Last)?;
                clock.elapsed()
            }
            TestKind::Generate => {
                cache.truncate(test.depth);
                let steps = &tokens[test.depth..test.positions()];
                let clock = Instant::now();
                for id in steps.chunks(1) {
                    model.forward(id, &mut cache, Logits::Last)?;
                }
                clock.elapsed()
            }
        };
        if run >= config.warmup {
            seconds.push(elapsed.as_secs_f64());
        }
    }
    Ok(seconds)
}

/// Our speed and another runtime's for the same test and thread count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The test's name.
    pub name: String,
    /// The test.
    pub test: BenchTest,
    /// Threads both ran on.
    pub threads: usize,
    /// Our median tokens per second.
    pub ours: f64,
    /// Theirs, when they ran the test.
    pub theirs: Option<f64>,
    /// `ours / theirs`.
    pub ratio: Option<f64>,
}

/// Each of `ours` beside the result of `theirs` with the same test and
/// thread count, in the order of `ours`.
pub fn compare(ours: &[TestResult], theirs: &[TestResult]) -> Vec<Comparison> {
    ours.iter()
        .map(|o| {
            let other = theirs.iter().find(|t| t.test == o.test && t.threads == o.threads);
            let theirs = other.map(|t| t.tokens_per_second.median);
            Comparison {
                name: o.name.clone(),
                test: o.test,
                threads: o.threads,
                ours: o.tokens_per_second.median,
                theirs,
                ratio: theirs.map(|t| o.tokens_per_second.median / t),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_are_named_like_llama_bench() {
        let config = ModelBenchConfig::standard();
        let names: Vec<String> = config.tests().iter().map(BenchTest::name).collect();
        assert_eq!(names, ["pp64", "pp512", "tg128", "tg128@d512"]);
        assert_eq!(config.tokens_needed(), 640);
    }

    #[test]
    fn validation_names_the_bad_value() {
        let ok = ModelBenchConfig::standard();
        assert!(ok.validate(2048).is_ok());
        let err = ok.validate(600).unwrap_err().to_string();
        assert!(err.contains("tg128@d512 needs 640 positions") && err.contains("600"), "{err}");
        let zero = ModelBenchConfig { prompt_lengths: vec![0], ..ok.clone() };
        assert!(zero.validate(2048).unwrap_err().to_string().contains("test length 0"));
        let no_reps = ModelBenchConfig { reps: 0, ..ok.clone() };
        assert!(no_reps.validate(2048).unwrap_err().to_string().contains("repetitions 0"));
        let no_depth = ModelBenchConfig { depths: vec![], ..ok.clone() };
        assert!(no_depth.validate(2048).unwrap_err().to_string().contains("at least one depth"));
        let nothing = ModelBenchConfig { prompt_lengths: vec![], generate_lengths: vec![], ..ok };
        assert!(nothing.validate(2048).unwrap_err().to_string().contains("no tests"));
    }

    #[test]
    fn speed_is_the_median_of_the_runs() {
        let s = Speed::from_samples(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.samples, [3.0, 1.0, 2.0], "kept in the order run");
        assert_eq!(Speed::from_samples(vec![4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Speed::from_samples(vec![]).is_none());
        assert!(Speed::from_samples(vec![1.0, f64::NAN]).is_none());
        assert!(Speed::from_samples(vec![0.0]).is_none());
    }

    #[test]
    fn comparison_pairs_test_and_threads() {
        let result = |tokens, threads, median| TestResult {
            name: String::new(),
            test: BenchTest { kind: TestKind::Generate, tokens, depth: 0 },
            threads,
            tokens_per_second: Speed::from_samples(vec![median]).unwrap(),
        };
        let ours = [result(128, 1, 60.0), result(128, 2, 90.0)];
        let theirs = [result(128, 2, 60.0), result(64, 1, 10.0)];
        let c = compare(&ours, &theirs);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].theirs, c[0].ratio), (None, None), "no 1-thread tg128 of theirs");
        assert_eq!((c[1].theirs, c[1].ratio), (Some(60.0), Some(1.5)));
    }
}
