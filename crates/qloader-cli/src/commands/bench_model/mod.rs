//! `qloader bench model`: a decoder's prompt-processing and decode speed per
//! thread count, and with `--llama-cpp` llama.cpp's `llama-bench` on a GGUF
//! of about the same size, run in turn at each thread count, with the
//! ratios. The timing itself is `qloader_runtime::bench`.

mod table;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qloader_format::{fixtures, WeightFormat};
use qloader_hw::cpu;
use qloader_runtime::bench::llama_bench::{self, LlamaBenchRecord};
use qloader_runtime::bench::llama_cpp::{self, LlamaCppTools, LLAMA_BENCH};
use qloader_runtime::bench::tokens::bench_tokens;
use qloader_runtime::bench::{
    compare, run_model_bench, BenchTest, Comparison, ModelBenchConfig, TestResult, MAX_REPS,
};
use qloader_runtime::packed::{LoadedModel, PackedModel};
use qloader_runtime::DecoderSession;
use serde::Serialize;

use crate::args::BenchModelArgs;
use crate::commands::bench::{print_cpu, thread_counts};
use crate::commands::load;
use crate::output::{count, write_json};

/// A file and its size.
#[derive(Serialize)]
struct FileInfo {
    path: PathBuf,
    bytes: u64,
}

impl FileInfo {
    /// The size of the file at `path`, or of the files directly in the
    /// directory at `path` (a checkpoint's weights, configuration and
    /// tokenizer).
    fn of(path: &Path) -> Result<Self> {
        let reading = || format!("reading {}", path.display());
        let meta = std::fs::metadata(path).with_context(reading)?;
        let bytes = if meta.is_dir() {
            let mut total = 0;
            for entry in std::fs::read_dir(path).with_context(reading)? {
                let meta = entry.with_context(reading)?.metadata().with_context(reading)?;
                if meta.is_file() {
                    total += meta.len();
                }
            }
            total
        } else {
            meta.len()
        };
        Ok(Self { path: path.to_owned(), bytes })
    }

    fn mib(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64
    }
}

/// What llama.cpp ran and measured (the tools' directory, the GGUF, every
/// llama-bench command line and record), and how ours compare.
#[derive(Serialize)]
struct LlamaCppReport {
    bin: PathBuf,
    model: FileInfo,
    command_lines: Vec<String>,
    records: Vec<LlamaBenchRecord>,
    results: Vec<TestResult>,
    comparisons: Vec<Comparison>,
}

/// What kind of model `bench model` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Input {
    /// A packed model: its formats are fixed.
    Packed,
    /// A GGUF file, quantized at load.
    Gguf,
    /// A Hugging Face checkpoint directory, quantized at load.
    CheckpointDir,
}

impl Input {
    /// The kind of model at `path`.
    fn of(path: &Path) -> Result<Self> {
        Ok(if path.is_dir() {
            Input::CheckpointDir
        } else if is_gguf(path)? {
            Input::Gguf
        } else {
            Input::Packed
        })
    }
}

/// Everything `--json` writes.
#[derive(Serialize)]
struct ModelBenchReport {
    cpu: cpu::CpuInfo,
    model: FileInfo,
    input: Input,
    /// The format of every quantizable tensor (GGUF input).
    quant: Option<String>,
    activations: String,
    tokens: String,
    config: ModelBenchConfig,
    threads: Vec<usize>,
    results: Vec<TestResult>,
    llama_cpp: Option<LlamaCppReport>,
}

/// Runs `qloader bench model`.
pub fn run(args: BenchModelArgs) -> Result<()> {
    let config = config(&args)?;
    let info = cpu::detect();
    let threads = thread_counts(&args.threads, info.cores)?;
    let input = Input::of(&args.model)?;
    if input == Input::Packed && args.quant.is_some() {
        bail!(
            "--quant applies to an original model (GGUF file or checkpoint directory); {} is packed",
            args.model.display()
        );
    }
    let quant = (input != Input::Packed).then(|| args.quant.unwrap_or(WeightFormat::F32));
    // Found (or made) before anything is loaded or timed.
    let mut llama_cpp = if args.llama_cpp { Some(llama_cpp_setup(&args)?) } else { None };
    let mut model_file = FileInfo::of(&args.model)?;
    let mut plan_note = String::new();
    // A packed decoder's weights are mapped from its file: keep both.
    let (owned, loaded);
    let session = match quant {
        Some(format) => {
            owned = DecoderSession::open(&args.model, format, args.act, &mut |_, _| {})
                .with_context(|| format!("loading {}", args.model.display()))?;
            &owned
        }
        None => {
            loaded = open_packed(&args)?;
            if loaded.plan.candidates.len() > 1 {
                // Of a file of several plans, the bytes the chosen one reads.
                model_file.bytes = loaded.plan.chosen().stored_bytes;
                plan_note = format!(", plan `{}` of the file", loaded.plan.chosen().name);
            }
            match &loaded.model {
                PackedModel::Decoder(session) => session,
                PackedModel::Encoder(_) => bail!(
                    "{} is a packed encoder; `bench model` times decoders (prompt processing \
                     and decoding)",
                    args.model.display()
                ),
            }
        }
    };
    let tokens = bench_tokens(
        &session.tokenizer,
        session.model.config().vocab(),
        &fixtures::botchan_text(),
        config.tokens_needed(),
    )?;

    print_cpu(&info);
    println!("model: {} ({:.1} MiB{plan_note})", model_file.path.display(), model_file.mib());
    if let Some(format) = quant {
        println!("weights: every quantizable tensor {format} (quantized at load)");
    }
    println!("activations: {}; tokens: {}", args.act, tokens.source);
    println!(
        "each test: median of {} after {} (min–max in brackets)",
        count(config.reps, "run"),
        count(config.warmup, "warm-up run")
    );
    if let Some(l) = &llama_cpp {
        println!(
            "llama.cpp: {} on {} ({:.1} MiB)",
            l.bin.display(),
            l.model.path.display(),
            l.model.mib()
        );
        if model_file.bytes > l.model.bytes {
            eprintln!(
                "warning: {} ({:.1} MiB) is larger than llama.cpp's {} ({:.1} MiB)",
                model_file.path.display(),
                model_file.mib(),
                l.model.path.display(),
                l.model.mib()
            );
        }
    }

    let mut results = Vec::new();
    for &t in &threads {
        results.extend(measure_ours(session, &tokens.ids, &config, t, &args.model)?);
        if let Some(l) = &mut llama_cpp {
            l.measure(&config, t)?;
        }
    }

    println!();
    match &mut llama_cpp {
        Some(l) => {
            l.comparisons = compare(&results, &l.results);
            table::print_comparison(&l.comparisons, &threads, &results, &l.results);
        }
        None => table::print_table(&results, &threads),
    }
    if let Some(path) = &args.json {
        let report = ModelBenchReport {
            cpu: info,
            model: model_file,
            input,
            quant: quant.map(|f| f.to_string()),
            activations: args.act.to_string(),
            tokens: tokens.source,
            config,
            threads,
            results,
            llama_cpp,
        };
        write_json(path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The tests the flags ask for, their values checked (the model's context
/// is checked once it is loaded).
fn config(args: &BenchModelArgs) -> Result<ModelBenchConfig> {
    if args.reps == 0 || args.reps > MAX_REPS {
        bail!("--reps must be between 1 and {MAX_REPS}");
    }
    if args.warmup > MAX_REPS {
        bail!("--warmup must be at most {MAX_REPS}");
    }
    let config = ModelBenchConfig {
        prompt_lengths: args.pp.clone(),
        generate_lengths: args.tg.clone(),
        depths: args.depth.clone(),
        reps: args.reps,
        warmup: args.warmup,
    };
    config.validate(usize::MAX).context("--pp, --tg, --depth")?;
    Ok(config)
}

/// Our tests at `threads` threads, with progress on a terminal.
fn measure_ours(
    session: &DecoderSession,
    ids: &[u32],
    config: &ModelBenchConfig,
    threads: usize,
    path: &Path,
) -> Result<Vec<TestResult>> {
    let verbose = std::io::stderr().is_terminal();
    let mut progress = |test: &BenchTest| {
        if verbose {
            eprintln!("[{}] {}…", count(threads, "thread"), test.name());
        }
    };
    run_model_bench(session.model.as_ref(), ids, config, threads, &mut progress)
        .with_context(|| format!("timing {}", path.display()))
}

impl LlamaCppReport {
    /// Runs llama-bench's tests at `threads` threads and keeps what it printed.
    fn measure(&mut self, config: &ModelBenchConfig, threads: usize) -> Result<()> {
        let bench = self.bin.join(LLAMA_BENCH);
        for command in llama_bench::commands(&bench, &self.model.path, config, threads) {
            let line = command.command_line();
            if std::io::stderr().is_terminal() {
                eprintln!("[{}] {line}", count(threads, "thread"));
            }
            let records = command.run()?;
            self.results.extend(records.iter().filter_map(LlamaBenchRecord::result));
            self.records.extend(records);
            self.command_lines.push(line);
        }
        Ok(())
    }
}

/// Whether `path` starts with GGUF's magic (else it is taken as packed).
pub(crate) fn is_gguf(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = file.read(&mut magic).with_context(|| format!("reading {}", path.display()))?;
    Ok(n == magic.len() && magic == qloader_format::gguf::MAGIC)
}

/// Opens a packed model as `run` does.
fn open_packed(args: &BenchModelArgs) -> Result<LoadedModel> {
    let options = load::options(&args.load, Some(args.act))?;
    let loaded = load::open(&args.model, &options)?;
    eprintln!("{}", load::describe(&loaded));
    Ok(loaded)
}

/// llama.cpp's tools and the GGUF it runs, found (or made) before anything
/// is timed.
fn llama_cpp_setup(args: &BenchModelArgs) -> Result<LlamaCppReport> {
    let cache = fixtures::cache_dir();
    let tools = match &args.llama_cpp_bin {
        Some(dir) => LlamaCppTools::in_dir(dir).context("--llama-cpp-bin")?,
        None => LlamaCppTools::find_in_cache(&cache)
            .context("--llama-cpp (or give the tools' directory with --llama-cpp-bin DIR)")?,
    };
    let model = match &args.llama_cpp_model {
        Some(path) => {
            if !is_gguf(path).context("--llama-cpp-model")? {
                bail!("--llama-cpp-model: {} is not a GGUF file", path.display());
            }
            path.clone()
        }
        None => {
            let target = llama_cpp::root(&cache).join(llama_cpp::COMPARISON_MODEL);
            if !target.exists() {
                eprintln!(
                    "making llama.cpp's comparison model {} with {}…",
                    target.display(),
                    llama_cpp::LLAMA_QUANTIZE
                );
            }
            llama_cpp::comparison_model(&tools, &cache, &fixtures::smollm2_gguf())
                .context("--llama-cpp (or give the GGUF with --llama-cpp-model FILE)")?
        }
    };
    Ok(LlamaCppReport {
        bin: tools.bin,
        model: FileInfo::of(&model)?,
        command_lines: Vec::new(),
        records: Vec::new(),
        results: Vec::new(),
        comparisons: Vec::new(),
    })
}
