//! Analyzing a model on disk: opens it as the family its architecture names
//! (a decoder of any design, or a BERT sentence encoder), turns the calibration text
//! into samples with the model's own tokenizer, runs the analysis and
//! assembles the [`SensitivityTable`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use qloader_format::{QuantMethod, WeightFormat};
use qloader_models::bert::ModelDir;
use qloader_models::family::Kind;
use qloader_models::{BertEncoder, Decoder, GgufTokenizer, ProbedModel, SentenceTokenizer};

use crate::analyzer::{analyze, analyze_data_free, Analysis, AnalyzeOptions, Progress};
use crate::calibration::{sentences, token_windows};
use crate::error::{AnalyzeError, Result};
use crate::gptq::{quantize_sequential, GptqModel, SequentialOptions};
use crate::importance::column_importance;
use crate::table::{CalibrationInfo, ModelInfo, SensitivityTable, Timings, SCHEMA, VERSION};
use qloader_quant::ColumnImportance;

/// Default candidate formats.
pub const DEFAULT_FORMATS: &str = "f16,int8,int5k,q5_0,int4,int4k,nl4k,int3,int3k,int2,int2k";
/// Default tokens per decoder calibration window.
pub const DEFAULT_WINDOW: usize = 256;
/// Default decoder calibration windows for the proxy pass…
pub const DEFAULT_DECODER_SAMPLES: usize = 16;
/// …of which the end-to-end measure runs this many.
pub const DEFAULT_DECODER_E2E: usize = 1;
/// Default encoder calibration sentences for the proxy pass…
pub const DEFAULT_ENCODER_SAMPLES: usize = 128;
/// …of which the end-to-end measure runs this many.
pub const DEFAULT_ENCODER_E2E: usize = 32;
/// Default decoder calibration windows when codes are chosen with GPTQ,
/// which fits them to the whole `H` and so wants more rows than `imatrix`
/// (which reads its diagonal only). SmolLM2-135M, `qloader perplexity
/// --method gptq --windows 8`, 16 windows → 64: int3k 44.35 → 42.45, int2k
/// 205.2 → 176.9, int3g128 62.94 → 58.59, int4g128 37.09 → 36.62 (with
/// `imatrix`, 64 windows gave no gain: int3k 48.83 → 48.72).
pub const DEFAULT_DECODER_GPTQ_SAMPLES: usize = 64;

/// Calibration samples when none are asked for: windows for a decoder,
/// sentences for an encoder, more for GPTQ than for the other methods. The
/// analysis and `pack` take the same, so that a table scores the codes
/// that will be packed.
pub fn default_samples(encoder: bool, method: QuantMethod) -> usize {
    match (encoder, method) {
        (false, QuantMethod::Gptq) => DEFAULT_DECODER_GPTQ_SAMPLES,
        (false, _) => DEFAULT_DECODER_SAMPLES,
        (true, QuantMethod::Gptq) => crate::gptq::DEFAULT_SENTENCES,
        (true, _) => DEFAULT_ENCODER_SAMPLES,
    }
}

/// What to analyze and how.
#[derive(Debug, Clone)]
pub struct AnalyzeRequest {
    /// A GGUF file (decoder) or a model directory (encoder).
    pub model: PathBuf,
    /// Calibration text (ignored when `data_free`).
    pub calibration: PathBuf,
    /// Candidate formats.
    pub formats: Vec<WeightFormat>,
    /// Calibration samples (windows or sentences); `None`: the default.
    pub samples: Option<usize>,
    /// Tokens per decoder window.
    pub window: usize,
    /// Samples run end to end; `None`: the default.
    pub e2e_samples: Option<usize>,
    /// Formats run end to end; `None`: every format. The others get the
    /// end-to-end measure estimated from the proxy.
    pub e2e_formats: Option<Vec<WeightFormat>>,
    /// No calibration data: weight error only.
    pub data_free: bool,
    /// How each format's codes are chosen (ignored when `data_free`: round
    /// to nearest).
    pub method: QuantMethod,
}

/// Stages of [`run`], for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the model.
    Loading,
    /// Measuring tensors.
    Measuring(Progress),
}

enum Loaded {
    Decoder(Box<dyn Decoder>, GgufTokenizer),
    Encoder(Box<BertEncoder>, SentenceTokenizer),
}

fn load(path: &Path) -> Result<Loaded> {
    let family = qloader_models::family::detect(path)?;
    match family.kind {
        Kind::Encoder => {
            let dir = ModelDir::open(path).map_err(qloader_models::ModelError::from)?;
            let tokenizer = SentenceTokenizer::from_file(&dir.tokenizer_path, dir.max_seq_length)?;
            let model = BertEncoder::load(&dir, &|_| WeightFormat::F32)?;
            Ok(Loaded::Encoder(Box::new(model), tokenizer))
        }
        Kind::Decoder(design) => {
            let checkpoint = design.open_checkpoint(family, path)?;
            let tokenizer = checkpoint.tokenizer()?;
            let model = checkpoint.build(&|_| WeightFormat::F32, &mut |_, _| {})?;
            Ok(Loaded::Decoder(model, tokenizer))
        }
    }
}

impl Loaded {
    fn model(&self) -> &dyn ProbedModel {
        match self {
            Loaded::Decoder(m, _) => m.as_ref(),
            Loaded::Encoder(m, _) => m.as_ref(),
        }
    }

    /// The model's family, as the registry names it.
    fn architecture(&self) -> &str {
        match self {
            Loaded::Decoder(m, _) => m.config().family(),
            Loaded::Encoder(..) => "bert",
        }
    }

    /// The calibration samples of `text` for codes chosen by `method`:
    /// `count` (default: [`default_samples`]) windows of `window` tokens for
    /// a decoder, the first `count` sentences for an encoder.
    fn samples(
        &self,
        text: &str,
        source: &Path,
        count: Option<usize>,
        method: QuantMethod,
        window: usize,
    ) -> Result<Vec<Vec<u32>>> {
        let encoder = matches!(self, Loaded::Encoder(..));
        let count = count.unwrap_or(default_samples(encoder, method));
        match self {
            Loaded::Decoder(model, tokenizer) => {
                let window = window.min(model.config().context());
                token_windows(&tokenizer.encode(text)?, window, count)
            }
            Loaded::Encoder(_, tokenizer) => {
                let found = sentences(text, count);
                if found.is_empty() {
                    return Err(AnalyzeError::Calibration(format!(
                        "{}: no sentences of prose found",
                        source.display()
                    )));
                }
                Ok(found.iter().map(|s| tokenizer.encode(s)).collect::<Result<_, _>>()?)
            }
        }
    }
}

/// Calibration of a model on disk for the `imatrix` method: its importance
/// vectors and the samples they came from.
#[derive(Debug, Clone)]
pub struct Calibrated {
    /// The importance vector of every multiplied tensor.
    pub importance: ColumnImportance,
    /// Calibration samples (windows or sentences).
    pub samples: usize,
    /// Their tokens.
    pub tokens: usize,
    /// Seconds spent.
    pub seconds: f64,
}

/// A model on disk, loaded in `f32`, with its calibration samples: what the
/// calibrated methods (`imatrix`, `gptq`) start from, loaded and tokenized
/// once however many quantizations it serves.
pub struct Calibration {
    loaded: Loaded,
    samples: Vec<Vec<u32>>,
}

impl Calibration {
    /// The model at `model` (a GGUF file or an encoder directory) and the
    /// samples of the calibration text at `calibration` that [`run`] would
    /// take for the same `samples`, `method` and `window` — so a table and
    /// a model packed with the same method agree.
    pub fn open(
        model: &Path,
        calibration: &Path,
        samples: Option<usize>,
        method: QuantMethod,
        window: usize,
    ) -> Result<Self> {
        let loaded = load(model)?;
        let text = std::fs::read_to_string(calibration)
            .map_err(|error| AnalyzeError::Io { path: calibration.to_owned(), error })?;
        let samples = loaded.samples(&text, calibration, samples, method, window)?;
        Ok(Self { loaded, samples })
    }

    /// Calibration samples (windows or sentences).
    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    /// Their tokens.
    pub fn tokens(&self) -> usize {
        self.samples.iter().map(Vec::len).sum()
    }

    /// The importance vector of every multiplied tensor.
    pub fn importance(&self) -> Result<ColumnImportance> {
        column_importance(self.loaded.model(), &self.samples)
    }

    /// GPTQ of every multiplied tensor `formats` gives a format GPTQ
    /// produces (see [`crate::gptq::quantize_sequential`]).
    pub fn gptq(
        &self,
        formats: &dyn Fn(&str) -> Option<WeightFormat>,
        opts: &SequentialOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<GptqModel> {
        quantize_sequential(self.loaded.model(), &self.samples, formats, opts, progress)
    }
}

/// The importance vectors of the model at `model` from the calibration text
/// at `calibration` (see [`Calibration::open`]).
pub fn calibrate(
    model: &Path,
    calibration: &Path,
    samples: Option<usize>,
    window: usize,
) -> Result<Calibrated> {
    let start = Instant::now();
    let c = Calibration::open(model, calibration, samples, QuantMethod::Imatrix, window)?;
    Ok(Calibrated {
        importance: c.importance()?,
        samples: c.samples(),
        tokens: c.tokens(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Analyzes the model of `req`, reporting progress to `progress`.
pub fn run(req: &AnalyzeRequest, progress: &mut dyn FnMut(Stage)) -> Result<SensitivityTable> {
    let start = Instant::now();
    if req.formats.is_empty() {
        return Err(AnalyzeError::Options("no formats to analyze".into()));
    }
    progress(Stage::Loading);
    let loaded = load(&req.model)?;
    let text = if req.data_free {
        String::new()
    } else {
        std::fs::read_to_string(&req.calibration)
            .map_err(|error| AnalyzeError::Io { path: req.calibration.clone(), error })?
    };
    let samples = if req.data_free {
        Vec::new()
    } else {
        loaded.samples(&text, &req.calibration, req.samples, req.method, req.window)?
    };
    let (model, architecture) = (loaded.model(), loaded.architecture());
    let e2e_default = match loaded {
        Loaded::Decoder(..) => DEFAULT_DECODER_E2E,
        Loaded::Encoder(..) => DEFAULT_ENCODER_E2E,
    };
    let mut on_progress = |p: Progress| progress(Stage::Measuring(p));
    let analysis: Analysis = if req.data_free {
        analyze_data_free(model, &req.formats, &mut on_progress)?
    } else {
        let opts = AnalyzeOptions {
            formats: req.formats.clone(),
            method: req.method,
            e2e_samples: req.e2e_samples.unwrap_or(e2e_default),
            e2e_formats: req.e2e_formats.clone().unwrap_or_else(|| req.formats.clone()),
        };
        analyze(model, &samples, &opts, &mut on_progress)?
    };
    let e2e_samples = if req.data_free || analysis.e2e_metric.is_none() {
        0
    } else {
        req.e2e_samples.unwrap_or(e2e_default).min(samples.len())
    };
    let quantizable_params =
        model.quantizable_tensors().iter().map(|t| (t.rows * t.cols) as u64).sum();
    Ok(SensitivityTable {
        schema: SCHEMA.to_owned(),
        version: VERSION,
        model: ModelInfo {
            path: req.model.display().to_string(),
            architecture: architecture.to_owned(),
            quantizable_params,
        },
        calibration: CalibrationInfo {
            data_free: req.data_free,
            source: (!req.data_free).then(|| req.calibration.display().to_string()),
            samples: samples.len(),
            tokens: samples.iter().map(Vec::len).sum(),
            e2e_samples,
            e2e_tokens: samples[..e2e_samples].iter().map(Vec::len).sum(),
            held_out: analysis.held_out,
        },
        method: if req.data_free { QuantMethod::Rtn } else { req.method },
        measures: analysis.measures,
        e2e_metric: analysis.e2e_metric,
        e2e_formats: analysis.e2e_formats.clone(),
        formats: req.formats.clone(),
        tensors: analysis.tensors,
        timings: Timings {
            proxy_seconds: analysis.proxy_seconds,
            e2e_seconds: analysis.e2e_seconds,
            total_seconds: start.elapsed().as_secs_f64(),
            threads: rayon::current_num_threads(),
        },
    })
}
