//! Command-line arguments as the user types them, and their mapping onto the
//! library's types (each CLI enum maps explicitly to a library enum).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use qloader_format::{fixtures, WeightFormat};

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
}

/// Parses a weight-format name (`f32`, `f16`, `int8`, `int4`, `int3g64`, …).
fn parse_format(s: &str) -> Result<WeightFormat, String> {
    s.parse::<WeightFormat>().map_err(|e| e.to_string())
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
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}
