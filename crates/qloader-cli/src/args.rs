//! Command-line arguments as the user types them, and their mapping onto the
//! library's types (each CLI enum maps explicitly to a library enum).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use qloader_format::{fixtures, ActivationFormat, FormatFamily, QuantMethod, WeightFormat};
use qloader_runtime::bench;

/// Hardware-aware mixed-precision quantization: measure, plan, pack, run.
#[derive(Parser)]
#[command(name = "qloader", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Print (or write as JSON) the sentence embeddings of texts.
    Embed(EmbedArgs),
    /// Compare quantized embeddings with f32 on the built-in sentence set.
    Eval(EvalArgs),
    /// Generate text with a decoder model (GGUF or Hugging Face checkpoint), greedy or sampled.
    Generate(GenerateArgs),
    /// Perplexity of a decoder model on a text, per weight format.
    Perplexity(PerplexityArgs),
    /// Measure how much each tensor suffers in each format (sensitivity
    /// table), or summarise a table with --summary.
    Analyze(AnalyzeArgs),
    /// Measure this machine: kernel speed per format, memory bandwidth.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Choose a format per tensor for a device and budget from a
    /// sensitivity table (a plan), sweep the loss-vs-size frontier with
    /// --pareto, or print a plan with --explain.
    Plan(PlanArgs),
    /// Write a packed model (.qlm): every quantizable tensor quantized as a
    /// plan (or --quant) says, with the configuration and tokenizer.
    Pack(PackArgs),
    /// Measure mixed-precision plans against uniform formats and llama.cpp's
    /// recipes at equal size, end to end, into a Markdown + HTML report.
    Report(ReportArgs),
    /// Print a packed model's header: model, plan, sizes per format.
    Inspect(InspectArgs),
    /// Write a packed decoder as a GGUF file llama.cpp loads.
    Export(ExportArgs),
    /// Load a packed model and embed texts or generate from a prompt; with
    /// --explain, list the kernel each tensor runs with.
    Run(RunArgs),
    /// Write this machine's device profile (features, memory, kernels and
    /// their measured speed), or check a hand-written one with --check.
    Profile(ProfileArgs),
}

/// Arguments of `qloader pack`.
#[derive(Args)]
pub struct PackArgs {
    /// A decoder (GGUF file, or Hugging Face checkpoint directory with
    /// config.json, safetensors weights and tokenizer.json: Llama, Mistral,
    /// Qwen2, Qwen3, Gemma 2, Gemma 3, Phi-3) or a sentence-transformers
    /// model directory (BERT encoder); the family comes from the file's
    /// architecture. Default: the SmolLM2-135M-Instruct fixture.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Plan (from `qloader plan`) giving every quantizable tensor's format.
    #[arg(long, value_name = "PLAN", required_unless_present_any = ["quant", "plans", "budgets"])]
    pub plan: Option<PathBuf>,
    /// Instead of a plan, store every quantizable tensor in this format.
    #[arg(long, value_parser = parse_format, conflicts_with_all = ["plan", "plans", "budgets"])]
    pub quant: Option<WeightFormat>,
    /// Several plans in one file (comma-separated plan files): each tensor
    /// keeps every format the plans give it, stored once; the loader picks a
    /// plan by memory (`--memory`) or name (`--plan`). Plans are named
    /// after their files.
    #[arg(long, value_delimiter = ',', value_name = "PLANS", conflicts_with_all = ["plan", "budgets"])]
    pub plans: Vec<PathBuf>,
    /// Several plans in one file, made here from --table and --profile, one
    /// per budget (comma-separated, e.g. 3.5bpw,4bpw,5bpw,8bpw or 64MiB);
    /// each plan is named by its budget.
    #[arg(long, value_delimiter = ',', value_name = "BUDGETS", conflicts_with = "plan",
          requires_all = ["table", "profile"])]
    pub budgets: Vec<String>,
    /// Sensitivity table the --budgets plans are made from.
    #[arg(long, value_name = "TABLE")]
    pub table: Option<PathBuf>,
    /// Device profile the --budgets plans are made for.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<PathBuf>,
    /// With several plans: store a tensor's wider variants as bit planes on
    /// its narrowest compact one (int2k, int3k, int4k) where the nested
    /// variant's error is at most RATIO times the one it replaces (default
    /// 1.25 when given without a value).
    #[arg(long, value_name = "RATIO", num_args = 0..=1, default_missing_value = "1.25")]
    pub nest: Option<f64>,
    /// The packed model to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// How codes are chosen.
    #[command(flatten)]
    pub method: MethodArgs,
}

/// Arguments of `qloader inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The packed model; or an original model (GGUF file, model directory),
    /// to see which family QLoader reads it as and its configuration.
    pub packed: PathBuf,
    /// List every tensor (name, shape, format, bytes).
    #[arg(long)]
    pub tensors: bool,
    /// Also check every blob and tensor against its checksum.
    #[arg(long)]
    pub verify: bool,
}

/// Arguments of `qloader export`.
#[derive(Args)]
pub struct ExportArgs {
    /// The packed decoder.
    pub packed: PathBuf,
    /// The GGUF file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Store tensors whose format has no exact GGUF layout in the nearest
    /// GGUF type holding at least their precision (Q8_0 for 4 bits or fewer,
    /// F16 for 8 bits), each said; without it they are refused.
    #[arg(long)]
    pub convert: bool,
    /// A GGUF of the same model, for its metadata (architecture,
    /// tokenizer), when the packed file keeps none: packed from a Hugging
    /// Face checkpoint directory, or before the metadata was kept.
    #[arg(long, value_name = "GGUF")]
    pub metadata_from: Option<PathBuf>,
    /// The plan to export, for a file holding several (`qloader inspect`
    /// lists them).
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
}

/// How a packed model is loaded.
#[derive(Args)]
pub struct LoadArgs {
    /// Do not check tensors against their checksums (faster start).
    #[arg(long)]
    pub no_verify: bool,
    /// Act as if this device had no kernel for these format families
    /// (comma-separated, e.g. int2,int3): their tensors are converted at load.
    #[arg(long, value_delimiter = ',', value_name = "FAMILIES")]
    pub disable_kernels: Vec<FormatFamily>,
    /// Device profile: use only the kernels it lists, and its fallbacks.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<PathBuf>,
    /// Keep tensors converted at load in MODEL.qlm.fallback and map them
    /// from there at the next start.
    #[arg(long)]
    pub fallback_cache: bool,
    /// For a file holding several plans (`qloader pack --budgets`): load the
    /// best plan whose tensors take at most this much memory at run time
    /// (e.g. 64MiB, 1.5GB). Default: the memory the system has available.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, conflicts_with = "plan")]
    pub memory: Option<u64>,
    /// For a file holding several plans: load the plan with this name
    /// (`qloader inspect` lists them).
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
}

/// Arguments of `qloader run`.
#[derive(Args)]
pub struct RunArgs {
    /// The packed model (from `qloader pack`).
    pub packed: PathBuf,
    /// Texts to embed (encoder), or the prompt (decoder; the words are
    /// joined). Without any, an encoder reads one text per line from
    /// standard input and a decoder needs --explain.
    pub texts: Vec<String>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Activations of integer-weight products: f32, or int8 quantized per
    /// weight group [default: int8 for a decoder, f32 for an encoder].
    #[arg(long, value_parser = parse_act)]
    pub act: Option<ActivationFormat>,
    /// Print how every tensor runs: stored format, run format, kernel, bytes.
    #[arg(long)]
    pub explain: bool,
    /// Most tokens to generate (decoder).
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Use the prompt as it is, without the model's chat template (decoder).
    #[arg(long)]
    pub raw: bool,
    /// Also write the embeddings or the generation as JSON to this file.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `qloader report`.
#[derive(Args)]
pub struct ReportArgs {
    /// A decoder (GGUF file, or Hugging Face checkpoint directory with
    /// config.json, safetensors weights and tokenizer.json: Llama, Mistral,
    /// Qwen2, Qwen3, Gemma 2, Gemma 3, Phi-3) or a sentence-transformers
    /// model directory (BERT encoder); the family comes from the file's
    /// architecture. Default: the SmolLM2-135M-Instruct fixture.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// A sensitivity table to reuse (from `qloader analyze` with the
    /// report's formats); without it the model is analyzed first.
    #[arg(long, value_name = "TABLE")]
    pub table: Option<PathBuf>,
    /// Device profile; without it this machine is measured (a few seconds)
    /// and the profile written into the output folder.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<PathBuf>,
    /// Budgets of the mixed plans (bits per weight, comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "2.5,3,3.5,4,5,6")]
    pub budgets: Vec<String>,
    /// Uniform formats to compare with (comma-separated).
    #[arg(long, value_parser = parse_format, value_delimiter = ',', default_value = "int8,int4,int3,int2")]
    pub uniform: Vec<WeightFormat>,
    /// Leave out llama.cpp's Q3_K_M / Q4_K_M recipes.
    #[arg(long)]
    pub no_recipes: bool,
    /// Perplexity windows of 512 tokens (decoder).
    #[arg(long, default_value_t = 8)]
    pub windows: usize,
    /// Keep every packed model in the output folder.
    #[arg(long)]
    pub keep_packed: bool,
    /// Also compare with llama.cpp's own files (decoder): an importance
    /// matrix from the calibration text, the model written by
    /// `llama-quantize` in each of --llama-cpp-types, each file scored in
    /// QLoader's harness beside the mixed plan whose packed file is at most
    /// its size. Needs llama.cpp's tools, built by scripts/llama-cpp.sh.
    #[arg(long)]
    pub llama_cpp: bool,
    /// The llama.cpp types --llama-cpp writes (comma-separated, as
    /// llama-quantize names them; implies --llama-cpp). Default: Q8_0,
    /// Q5_K_M, Q4_K_M, Q4_K_S, Q3_K_M, Q4_0, IQ4_XS, Q3_K_S, Q2_K, IQ3_XXS,
    /// IQ2_XS.
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub llama_cpp_types: Option<Vec<String>>,
    /// How codes are chosen when the model is analyzed and when every
    /// configuration is packed: rtn, imatrix or gptq (a reused --table's own
    /// method wins). GPTQ runs once per configuration.
    #[arg(long, value_parser = parse_method, default_value = "imatrix", value_name = "METHOD")]
    pub method: QuantMethod,
    /// Output folder (report.md, report.html, charts, JSON, plans).
    #[arg(short, long, value_name = "DIR", default_value = "report")]
    pub output: PathBuf,
}

/// Arguments of `qloader plan`.
#[derive(Args)]
pub struct PlanArgs {
    /// Sensitivity table (from `qloader analyze`).
    #[arg(long, value_name = "TABLE", required_unless_present = "explain")]
    pub table: Option<PathBuf>,
    /// Device profile (from `qloader profile`, or one in profiles/).
    #[arg(long, value_name = "PROFILE", required_unless_present = "explain")]
    pub profile: Option<PathBuf>,
    /// Size budget for the planned tensors: bytes with a unit (60MiB, 0.5GB)
    /// or bits per weight (3.5bpw). The profile's model memory, if stated,
    /// applies too.
    #[arg(long, value_parser = parse_budget)]
    pub budget: Option<qloader_schedule::Budget>,
    /// Latency budget: predicted product time per token, milliseconds.
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<f64>,
    /// Fix the format of tensors whose name matches REGEX (repeatable; the
    /// first match wins), e.g. --pin 'output\.weight=int8'.
    #[arg(long = "pin", value_name = "REGEX=FORMAT", value_parser = parse_pin)]
    pub pins: Vec<qloader_schedule::Pin>,
    /// Solver: greedy (fast, with a certified gap) or exact (branch and bound).
    #[arg(long, value_enum, default_value_t = SolverArg::Greedy)]
    pub solver: SolverArg,
    /// Also solve exactly and record the plan's gap to the optimum.
    #[arg(long)]
    pub check_exact: bool,
    /// Activations the kernels take: f32, or int8 (quantized per row).
    #[arg(long, default_value = "f32")]
    pub activations: ActivationFormat,
    /// Input rows per product the latency is predicted for (1: decoding).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Sweep budgets from the smallest plan to the best and write the
    /// frontier (JSON at -o, plus .csv and .svg beside it).
    #[arg(long, conflicts_with_all = ["budget", "latency_ms", "solver", "check_exact"])]
    pub pareto: bool,
    /// Budgets in the --pareto sweep.
    #[arg(long, default_value_t = 40)]
    pub steps: usize,
    /// Where to write the plan (default plan.json) or the frontier (default
    /// frontier.json).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print an existing plan readably instead of planning.
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["table", "profile", "pareto"])]
    pub explain: Option<PathBuf>,
    /// Tensors listed among the lossiest in the explanation.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// `--solver` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SolverArg {
    /// Greedy with a certified gap.
    Greedy,
    /// Branch and bound.
    Exact,
}

impl From<SolverArg> for qloader_schedule::SolverKind {
    fn from(s: SolverArg) -> Self {
        match s {
            SolverArg::Greedy => qloader_schedule::SolverKind::Greedy,
            SolverArg::Exact => qloader_schedule::SolverKind::Exact,
        }
    }
}

fn parse_budget(s: &str) -> Result<qloader_schedule::Budget, String> {
    s.parse()
}

fn parse_pin(s: &str) -> Result<qloader_schedule::Pin, String> {
    s.parse()
}

/// Arguments of `qloader profile`.
#[derive(Args)]
pub struct ProfileArgs {
    /// Where to write the profile (TOML); without it, print it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Name recorded in the profile.
    #[arg(long, default_value = "this-machine")]
    pub name: String,
    /// Memory the model may occupy, recorded as the profile's size limit
    /// (e.g. 512MiB, 2GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub model_memory: Option<u64>,
    /// Validate and describe an existing profile instead of measuring.
    #[arg(long, value_name = "PROFILE", conflicts_with_all = ["output", "name", "model_memory"])]
    pub check: Option<PathBuf>,
}

/// Parses a byte size such as 512MiB.
fn parse_size(s: &str) -> Result<u64, String> {
    qloader_schedule::budget::parse_size(s)
}

/// What `qloader bench` measures.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time Y = X·Wᵀ for every weight format side by side, with the measured
    /// read bandwidth, ratios to f32 and int8, and unpacking overhead.
    Kernels(BenchKernelsArgs),
    /// Time a decoder end to end: prompt processing (pp) and decoding (tg)
    /// in tokens/s per thread count, with --llama-cpp beside llama.cpp's
    /// llama-bench in the same run.
    Model(BenchModelArgs),
}

/// Arguments of `qloader bench model`.
#[derive(Args)]
pub struct BenchModelArgs {
    /// A packed decoder (.qlm, from `qloader pack`), a GGUF file or a
    /// Hugging Face checkpoint directory.
    #[arg(value_name = "MODEL.qlm|FILE.gguf|DIR")]
    pub model: PathBuf,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Thread counts to measure with (comma-separated; default: 1 and all cores).
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Prompt lengths: one forward pass of N tokens from an empty cache.
    #[arg(long, value_delimiter = ',', default_values_t = bench::DEFAULT_PROMPT_LENGTHS)]
    pub pp: Vec<usize>,
    /// Decode lengths: N single-token passes, timed after the cache holds
    /// --depth tokens.
    #[arg(long, value_delimiter = ',', default_values_t = bench::DEFAULT_GENERATE_LENGTHS)]
    pub tg: Vec<usize>,
    /// Tokens in the cache before each decode test (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = bench::DEFAULT_DEPTHS)]
    pub depth: Vec<usize>,
    /// Timed repetitions per test (the median is reported, with min and max).
    #[arg(long, default_value_t = bench::DEFAULT_REPS)]
    pub reps: usize,
    /// Untimed runs of each test before the timed ones.
    #[arg(long, default_value_t = bench::DEFAULT_WARMUP)]
    pub warmup: usize,
    /// Activations of integer-weight products: f32, or int8 quantized per
    /// weight group [default: int8, as `run` decodes].
    #[arg(long, value_parser = parse_act, default_value = "int8")]
    pub act: ActivationFormat,
    /// For an original model (GGUF file or checkpoint directory): the format
    /// every quantizable tensor is stored in (names as for `embed`; default
    /// f32, as `generate`).
    #[arg(long, value_parser = parse_format)]
    pub quant: Option<WeightFormat>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also run llama.cpp's llama-bench (built by scripts/llama-cpp.sh) on a
    /// GGUF of about the same size, interleaved per thread count, and print
    /// the ratios.
    #[arg(long)]
    pub llama_cpp: bool,
    /// Directory holding llama-bench (default: the build scripts/llama-cpp.sh
    /// made for this CPU in the cache).
    #[arg(long, value_name = "DIR", requires = "llama_cpp")]
    pub llama_cpp_bin: Option<PathBuf>,
    /// The GGUF llama.cpp runs (default: a Q4_0 of the SmolLM2 fixture, made
    /// once with llama-quantize into the cache).
    #[arg(long, value_name = "FILE.gguf", requires = "llama_cpp")]
    pub llama_cpp_model: Option<PathBuf>,
}

/// Parses `ROWSxCOLS`.
fn parse_shape(s: &str) -> Result<(usize, usize), String> {
    let (r, c) = s.split_once(['x', 'X', '×']).ok_or_else(|| format!("`{s}` is not ROWSxCOLS"))?;
    let dim = |v: &str| match v.trim().parse::<usize>() {
        Ok(n) if (1..=1 << 20).contains(&n) => Ok(n),
        _ => Err(format!("`{v}` in `{s}` is not a dimension between 1 and 1048576")),
    };
    Ok((dim(r)?, dim(c)?))
}

/// Arguments of `qloader bench kernels`.
#[derive(Args)]
pub struct BenchKernelsArgs {
    /// Weight shapes OUTxIN (comma-separated).
    #[arg(long, value_parser = parse_shape, value_delimiter = ',',
          default_value = "576x1536,1536x576,4096x4096,4096x11008")]
    pub shapes: Vec<(usize, usize)>,
    /// Activation rows per product (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub batch: Vec<usize>,
    /// Formats to time besides the f32 baseline (comma-separated).
    #[arg(long, value_parser = parse_format, value_delimiter = ',',
          default_value = "f16,int8,int4,int3,int2")]
    pub formats: Vec<WeightFormat>,
    /// Do not also time integer formats with int8 activations (W·A8).
    #[arg(long)]
    pub no_a8: bool,
    /// Time each weight from a single copy, warm in cache when it fits
    /// (default: rotate through copies larger than the cache, as a model does).
    #[arg(long)]
    pub warm: bool,
    /// Thread counts to measure with (comma-separated; default: 1 and all cores).
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Minimum measured time per case, in milliseconds (median of the runs).
    #[arg(long, default_value_t = 300)]
    pub min_time_ms: u64,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
}

/// Parses a weight-format name (`f32`, `f16`, `int8`, `int4`, `int3g64`, …).
fn parse_format(s: &str) -> Result<WeightFormat, String> {
    s.parse::<WeightFormat>().map_err(|e| e.to_string())
}

/// Parses an activation-format name (`f32`, `int8`).
fn parse_act(s: &str) -> Result<ActivationFormat, String> {
    s.parse::<ActivationFormat>().map_err(|e| e.to_string())
}

/// Where the model is.
#[derive(Args)]
pub struct ModelArg {
    /// Model directory (config.json, model.safetensors, tokenizer.json).
    /// Default: the all-MiniLM-L6-v2 fixture fetched by scripts/fetch-fixtures.sh.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
}

impl ModelArg {
    /// The directory to open.
    pub fn dir(&self) -> PathBuf {
        self.model.clone().unwrap_or_else(fixtures::minilm_dir)
    }
}

/// Arguments of `qloader embed`.
#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Weight format of the linear layers: f32, f16, int8 (per channel), or
    /// int8/int4/int3/int2 with an optional group size (int4 = int4g32, int3g128, …).
    #[arg(long, value_parser = parse_format, default_value = "f32")]
    pub quant: WeightFormat,
    /// Activations of integer-weight products: f32, or int8 quantized per row
    /// on the fly (W8A8, W4A8, …).
    #[arg(long, value_parser = parse_act, default_value = "f32")]
    pub act: ActivationFormat,
    /// Write the embeddings as JSON to this file instead of printing them.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Texts to embed; with none, one text per line is read from standard input.
    pub texts: Vec<String>,
}

/// Arguments of `qloader eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A packed model (from `qloader pack`) to evaluate instead: an encoder
    /// against the f32 model in --model on the built-in sentences, a decoder
    /// by perplexity on --text.
    pub packed: Option<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub model: ModelArg,
    /// Text a packed decoder's perplexity is measured on. Default: the
    /// "Botchan" text fetched by scripts/fetch-fixtures.sh.
    #[arg(long, value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// Windows of the packed decoder's perplexity.
    #[arg(long, default_value_t = qloader_runtime::perplexity::STANDARD_WINDOWS)]
    pub windows: usize,
    /// Score a packed decoder as llama.cpp's `llama-perplexity -c 512` does
    /// (only the second half of each window), to compare with its figure
    /// for the file `qloader export` writes.
    #[arg(long)]
    pub llama_cpp_scoring: bool,
    /// Weight formats to evaluate, comma-separated (names as for `embed`).
    #[arg(long, value_parser = parse_format, value_delimiter = ',', default_value = "f32,int8,int4")]
    pub quant: Vec<WeightFormat>,
    /// Activations of integer-weight products: f32, or int8 quantized per row
    /// on the fly (W8A8, W4A8, …).
    #[arg(long, value_parser = parse_act, default_value = "f32")]
    pub act: ActivationFormat,
    #[command(flatten)]
    pub method: MethodArgs,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// How quantized weights are made (for commands that quantize a model).
#[derive(Args, Clone)]
pub struct MethodArgs {
    /// How codes are chosen: rtn (round to nearest), imatrix (each group's
    /// grid search weighted by its input columns' mean square on --calib),
    /// or gptq (codes compensated column by column with the inverse Hessian
    /// measured on --calib; int8 and grouped formats). Default: rtn, or the
    /// method the plan records.
    #[arg(long, value_parser = parse_method, value_name = "METHOD")]
    pub method: Option<QuantMethod>,
    /// Calibration text (plain prose) of imatrix and gptq. Default: "Alice's
    /// Adventures in Wonderland" fetched by scripts/fetch-fixtures.sh,
    /// disjoint from the evaluation texts.
    #[arg(long, value_name = "FILE")]
    pub calib: Option<PathBuf>,
    /// Calibration samples of imatrix and gptq (the first ones of --calib):
    /// token windows for a decoder (default 16 of 256 tokens for imatrix, 64
    /// for gptq), sentences for an encoder (default 128 for imatrix, 512 for
    /// gptq); as `analyze` takes them.
    #[arg(long, value_name = "N", alias = "calib-sentences")]
    pub calib_samples: Option<usize>,
    /// GPTQ damping added to each Hessian's diagonal, as a fraction of its
    /// mean diagonal.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.01)]
    pub damping: f64,
    /// GPTQ: quantize columns in order of decreasing input energy
    /// ("act-order"), every group's grid fitted to the original weights.
    #[arg(long)]
    pub act_order: bool,
}

/// Parses a quantization-method name (`rtn`, `imatrix`, `gptq`).
fn parse_method(s: &str) -> Result<QuantMethod, String> {
    s.parse::<QuantMethod>().map_err(|e| e.to_string())
}

/// Where the decoder model is.
#[derive(Args)]
pub struct DecoderArg {
    /// A decoder: GGUF file or Hugging Face checkpoint directory (Llama,
    /// Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3, Phi-3).
    /// Default: the SmolLM2-135M-Instruct fixture fetched by scripts/fetch-fixtures.sh.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
}

impl DecoderArg {
    /// The file to open.
    pub fn file(&self) -> PathBuf {
        self.model.clone().unwrap_or_else(fixtures::smollm2_gguf)
    }
}

/// Arguments of `qloader generate`.
#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: DecoderArg,
    /// The prompt.
    #[arg(long, short = 'p')]
    pub prompt: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Weight format of the linear layers (names as for `embed`).
    #[arg(long, value_parser = parse_format, default_value = "f32")]
    pub quant: WeightFormat,
    /// Activations of integer-weight products: f32, or int8 quantized per
    /// weight group (as `run` decodes).
    #[arg(long, value_parser = parse_act, default_value = "int8")]
    pub act: ActivationFormat,
    /// Sampling temperature; 0 picks the most likely token (greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Sample only among the K most likely tokens (0: all).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Sample only within the top-p probability mass.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use the prompt as it is, without the model's chat template.
    #[arg(long)]
    pub raw: bool,
    /// Also write the result (text, tokens, timings) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Arguments of `qloader perplexity`.
#[derive(Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: DecoderArg,
    /// Plain-text file to score. Default: the "Botchan" text fetched by
    /// scripts/fetch-fixtures.sh (the standard set).
    #[arg(long, value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// Weight formats to evaluate, comma-separated.
    #[arg(long, value_parser = parse_format, value_delimiter = ',', default_value = "f32,int8,int4")]
    pub quant: Vec<WeightFormat>,
    /// Activations of integer-weight products: f32 or int8.
    #[arg(long, value_parser = parse_act, default_value = "f32")]
    pub act: ActivationFormat,
    /// Tokens per window.
    #[arg(long, default_value_t = qloader_runtime::perplexity::STANDARD_WINDOW)]
    pub window: usize,
    /// Windows to score, from the start of the text.
    #[arg(long, default_value_t = qloader_runtime::perplexity::STANDARD_WINDOWS)]
    pub windows: usize,
    /// How codes are chosen.
    #[command(flatten)]
    pub method: MethodArgs,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Arguments of `qloader analyze`.
#[derive(Args)]
pub struct AnalyzeArgs {
    /// A decoder (GGUF file, or Hugging Face checkpoint directory with
    /// config.json, safetensors weights and tokenizer.json: Llama, Mistral,
    /// Qwen2, Qwen3, Gemma 2, Gemma 3, Phi-3) or a sentence-transformers
    /// model directory (BERT encoder); the family comes from the file's
    /// architecture. Default: the SmolLM2-135M-Instruct fixture.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Calibration text (plain prose). Default: "Alice's Adventures in
    /// Wonderland" fetched by scripts/fetch-fixtures.sh, disjoint from the
    /// evaluation texts.
    #[arg(long, value_name = "FILE")]
    pub calib: Option<PathBuf>,
    /// Candidate formats, comma-separated.
    #[arg(long, value_parser = parse_format, value_delimiter = ',',
          default_value = qloader_analyze::request::DEFAULT_FORMATS)]
    pub formats: Vec<WeightFormat>,
    /// Calibration samples: token windows for a decoder (default 16; 64
    /// with --method gptq), sentences for an encoder (default 128; 512 with
    /// --method gptq). With gptq a quarter of them (at least the end-to-end
    /// ones) are held out of the fit and score it.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Tokens per decoder calibration window.
    #[arg(long, default_value_t = qloader_analyze::request::DEFAULT_WINDOW)]
    pub window: usize,
    /// Samples (the first ones) the end-to-end measure runs: default 1 window
    /// for a decoder, 32 sentences for an encoder; 0 skips it.
    #[arg(long)]
    pub e2e_samples: Option<usize>,
    /// Formats the end-to-end measure runs at, comma-separated (default:
    /// every format). At the others it is estimated from the proxy and each
    /// tensor's measured end-to-end/proxy ratio, e.g. `--e2e-formats int2`
    /// for a run about five times cheaper.
    #[arg(long, value_parser = parse_format, value_delimiter = ',')]
    pub e2e_formats: Option<Vec<WeightFormat>>,
    /// No calibration data: record the weight error only.
    #[arg(long)]
    pub data_free: bool,
    /// How each format's codes are chosen when measuring it (the method
    /// that will pack it): rtn, imatrix or gptq. Plans made from the table
    /// record it and `pack` uses it.
    #[arg(long, value_parser = parse_method, default_value = "imatrix", value_name = "METHOD")]
    pub method: QuantMethod,
    /// Where to write the sensitivity table (JSON).
    #[arg(short, long, value_name = "FILE", default_value = "sensitivity.json")]
    pub output: PathBuf,
    /// Print a summary of an existing table instead of analyzing.
    #[arg(long, value_name = "TABLE", conflicts_with_all = ["model", "calib", "data_free"])]
    pub summary: Option<PathBuf>,
    /// Format the summary ranks tensors at (default: int3 if analyzed).
    #[arg(long, value_name = "FORMAT")]
    pub rank_format: Option<WeightFormat>,
    /// Tensors listed at each end of the ranking.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}
