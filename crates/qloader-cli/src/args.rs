//! Command-line arguments as the user types them, and their mapping onto the
//! library's types (each CLI enum maps explicitly to a library enum).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
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

/// A weight format as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QuantArg {
    /// 32-bit floats (no quantization).
    F32,
    /// int8, one symmetric scale per output channel.
    Int8,
    /// int4, groups of 32 with f16 scale and offset.
    Int4,
}

impl From<QuantArg> for WeightFormat {
    fn from(q: QuantArg) -> Self {
        match q {
            QuantArg::F32 => WeightFormat::F32,
            QuantArg::Int8 => WeightFormat::Int8PerChannel,
            QuantArg::Int4 => WeightFormat::Int4Group32,
        }
    }
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
    /// Weight format of the linear layers.
    #[arg(long, value_enum, default_value = "f32")]
    pub quant: QuantArg,
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
    /// Weight formats to evaluate (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "f32,int8,int4")]
    pub quant: Vec<QuantArg>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}
