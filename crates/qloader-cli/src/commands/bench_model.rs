//! `qloader bench model`: a decoder's prompt-processing and decode speed per
//! thread count, and with `--llama-cpp` llama.cpp's `llama-bench` on a GGUF
//! of about the same size, run in turn at each thread count, with the
//! ratios. The timing itself is `qloader_runtime::bench`.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qloader_format::{fixtures, WeightFormat};
use qloader_hw::cpu;
use qloader_runtime::bench::llama_bench::{self, LlamaBenchRecord};
use qloader_runtime::bench::llama_cpp::{self, LlamaCppTools, LLAMA_BENCH};
use qloader_runtime::bench::tokens::bench_tokens;
use qloader_runtime::bench::{
    compare, run_model_bench, Comparison, ModelBenchConfig, Speed, TestResult, MAX_REPS,
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
    fn of(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
        Ok(Self { path: path.to_owned(), bytes })
    }

    fn mib(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64
    }
}

/// What llama.cpp ran and measured.
#[derive(Serialize)]
struct LlamaCppReport {
    bin: PathBuf,
    model: FileInfo,
    command_lines: Vec<String>,
    records: Vec<LlamaBenchRecord>,
    results: Vec<TestResult>,
    comparisons: Vec<Comparison>,
}

/// Everything `--json` writes.
#[derive(Serialize)]
struct ModelBenchReport {
    cpu: cpu::CpuInfo,
    model: FileInfo,
    /// `packed` or `gguf`.
    input: &'static str,
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
    let config = ModelBenchConfig {
        prompt_lengths: args.pp.clone(),
        generate_lengths: args.tg.clone(),
        depths: args.depth.clone(),
        reps: args.reps,
        warmup: args.warmup,
    };
    if args.reps == 0 || args.reps > MAX_REPS {
        bail!("--reps must be between 1 and {MAX_REPS}");
    }
    if args.warmup > MAX_REPS {
        bail!("--warmup must be at most {MAX_REPS}");
    }
    // The values alone, before anything is loaded; the context later.
    config.validate(usize::MAX).context("--pp, --tg, --depth")?;
    let info = cpu::detect();
    let threads = thread_counts(&args.threads, info.cores)?;
    let gguf = is_gguf(&args.model)?;
    if !gguf && args.quant.is_some() {
        bail!("--quant applies to a GGUF input; {} is packed", args.model.display());
    }
    let quant = gguf.then(|| args.quant.unwrap_or(WeightFormat::F32));
    let llama = match args.llama_cpp {
        true => Some(llama_cpp_setup(&args)?),
        false => None,
    };
    let model_file = FileInfo::of(&args.model)?;
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
        session.model.config().vocab,
        &fixtures::botchan_text(),
        config.tokens_needed(),
    )?;
    print_cpu(&info);
    println!("model: {} ({:.1} MiB)", model_file.path.display(), model_file.mib());
    if let Some(format) = quant {
        println!("weights: every quantizable tensor {format} (quantized at load)");
    }
    println!("activations: {}; tokens: {}", args.act, tokens.source);
    println!(
        "each test: median of {} after {} (min–max in brackets)",
        count(config.reps, "run"),
        count(config.warmup, "warm-up run")
    );
    if let Some((tools, llama_model)) = &llama {
        println!(
            "llama.cpp: {} on {} ({:.1} MiB)",
            tools.bin.display(),
            llama_model.path.display(),
            llama_model.mib()
        );
        if model_file.bytes > llama_model.bytes {
            eprintln!(
                "warning: {} ({:.1} MiB) is larger than llama.cpp's {} ({:.1} MiB)",
                model_file.path.display(),
                model_file.mib(),
                llama_model.path.display(),
                llama_model.mib()
            );
        }
    }

    let verbose = std::io::stderr().is_terminal();
    let (mut results, mut theirs, mut records, mut command_lines) =
        (vec![], vec![], vec![], vec![]);
    for &t in &threads {
        let mut progress = |test: &qloader_runtime::bench::BenchTest| {
            if verbose {
                eprintln!("[{}] {}…", count(t, "thread"), test.name());
            }
        };
        let ours = run_model_bench(&session.model, &tokens.ids, &config, t, &mut progress)
            .with_context(|| format!("timing {}", args.model.display()))?;
        results.extend(ours);
        if let Some((tools, llama_model)) = &llama {
            let bench = tools.tool(LLAMA_BENCH);
            for command in llama_bench::commands(&bench, &llama_model.path, &config, t) {
                if verbose {
                    eprintln!("[{}] {}", count(t, "thread"), command.command_line());
                }
                let run = command.run()?;
                theirs.extend(run.iter().filter_map(LlamaBenchRecord::result));
                records.extend(run);
                command_lines.push(command.command_line());
            }
        }
    }

    println!();
    let llama_cpp = match llama {
        Some((tools, model)) => {
            let comparisons = compare(&results, &theirs);
            print_comparison(&comparisons, &threads, &results, &theirs);
            Some(LlamaCppReport {
                bin: tools.bin,
                model,
                command_lines,
                records,
                results: theirs,
                comparisons,
            })
        }
        None => {
            print_table(&results, &threads);
            None
        }
    };
    if let Some(path) = &args.json {
        let report = ModelBenchReport {
            cpu: info,
            model: model_file,
            input: if gguf { "gguf" } else { "packed" },
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

/// Whether `path` starts with GGUF's magic (else it is taken as packed).
fn is_gguf(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = file.read(&mut magic).with_context(|| format!("reading {}", path.display()))?;
    Ok(n == magic.len() && magic == qloader_format::gguf::MAGIC)
}

/// Opens a packed model as `run` does.
fn open_packed(args: &BenchModelArgs) -> Result<LoadedModel> {
    let options = load::options(&args.load, args.act)?;
    let loaded = load::open(&args.model, &options)?;
    eprintln!("{}", load::describe(&loaded));
    Ok(loaded)
}

/// llama.cpp's tools and the GGUF it runs, found (or made) before anything
/// is timed.
fn llama_cpp_setup(args: &BenchModelArgs) -> Result<(LlamaCppTools, FileInfo)> {
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
    Ok((tools, FileInfo::of(&model)?))
}

/// `median (min–max)` tokens per second.
fn speed(s: &Speed) -> String {
    format!("{:.1} ({:.1}–{:.1})", s.median, s.min, s.max)
}

/// Tests down, thread counts across.
fn print_table(results: &[TestResult], threads: &[usize]) {
    let header: Vec<String> = threads.iter().map(|&t| count(t, "thread")).collect();
    println!("| test (tokens/s) | {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(threads.len()));
    let mut names: Vec<&str> = Vec::new();
    for r in results {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    for name in names {
        let cells: Vec<String> = threads
            .iter()
            .map(|&t| {
                results
                    .iter()
                    .find(|r| r.name == name && r.threads == t)
                    .map_or("–".to_owned(), |r| speed(&r.tokens_per_second))
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}

/// One row per test and thread count: ours, llama.cpp's, the ratio.
fn print_comparison(
    comparisons: &[Comparison],
    threads: &[usize],
    ours: &[TestResult],
    theirs: &[TestResult],
) {
    println!("| test | threads | qloader tok/s | llama.cpp tok/s | qloader / llama.cpp |");
    println!("|---|---:|---:|---:|---:|");
    let find = |set: &[TestResult], c: &Comparison| {
        set.iter()
            .find(|r| r.test == c.test && r.threads == c.threads)
            .map_or("–".to_owned(), |r| speed(&r.tokens_per_second))
    };
    let mut rows: Vec<&Comparison> = comparisons.iter().collect();
    // Tests in the order run, each at every thread count.
    rows.sort_by_key(|c| {
        let first = comparisons.iter().position(|o| o.test == c.test).unwrap_or(0);
        (first, threads.iter().position(|&t| t == c.threads).unwrap_or(0))
    });
    for c in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            c.name,
            c.threads,
            find(ours, c),
            find(theirs, c),
            c.ratio.map_or("–".to_owned(), |r| format!("{r:.2}×"))
        );
    }
}
