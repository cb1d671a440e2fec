//! Command-line arguments as the user types them, and their mapping onto the
//! library's types (each CLI enum maps explicitly to a library enum).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use qloader_format::{fixtures, ActivationFormat, WeightFormat};

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
    /// Measure this machine: kernel speed per format, memory bandwidth.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// What `qloader bench` measures.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time Y = X·Wᵀ for every weight format side by side, with the measured
    /// read bandwidth, ratios to f32 and int8, and unpacking overhead.
    Kernels(BenchKernelsArgs),
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
    #[command(flatten)]
    pub model: ModelArg,
    /// Weight formats to evaluate, comma-separated (names as for `embed`).
    #[arg(long, value_parser = parse_format, value_delimiter = ',', default_value = "f32,int8,int4")]
    pub quant: Vec<WeightFormat>,
    /// Activations of integer-weight products: f32, or int8 quantized per row
    /// on the fly (W8A8, W4A8, …).
    #[arg(long, value_parser = parse_act, default_value = "f32")]
    pub act: ActivationFormat,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}
