//! Making a report: the sensitivity table (reused or measured), a greedy
//! plan per budget, the uniform formats and the fixed recipes — each packed
//! and measured end to end — and, beside each uniform format and recipe, the
//! greedy plan at exactly its size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qloader_analyze::gptq::SequentialOptions;
use qloader_analyze::request::{run as analyze, AnalyzeRequest, Calibration};
use qloader_analyze::{Measure, SensitivityTable};
use qloader_format::{fixtures, ActivationFormat, PlanRef, QuantMethod, WeightFormat};
use qloader_runtime::packed::{pack_model, Quantization};
use qloader_runtime::sentences::EVAL_SENTENCES;
use qloader_runtime::{DecoderSession, EncoderSession};
use qloader_schedule::planner::sha256_hex;
use qloader_schedule::{make_plan, Budget, PlanOptions, Sources};
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result};
use crate::measure::{measure, Measured, Reference, DECODE_TOKENS, WINDOW};
use crate::recipe::Recipe;

/// The formats a report's analysis covers: those the plans choose from, the
/// uniform baselines, and the recipes' formats.
pub const REPORT_FORMATS: &str =
    "f16,int8,int4,int4g64,int4g128,int4k,int3,int3g64,int3g128,int3k,int2,int2g128,int2k";

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The model (GGUF file or encoder directory).
    pub model: PathBuf,
    /// A sensitivity table to reuse; `None`: analyze into the output folder.
    pub table: Option<PathBuf>,
    /// The device profile.
    pub profile: PathBuf,
    /// Budgets of the mixed plans, bits per weight.
    pub budgets: Vec<f64>,
    /// Uniform formats to compare with.
    pub uniform: Vec<WeightFormat>,
    /// Whether to compare with the fixed recipes.
    pub recipes: bool,
    /// Perplexity windows (decoder).
    pub windows: usize,
    /// The output folder.
    pub out_dir: PathBuf,
    /// Keep every packed model (else each is removed once measured).
    pub keep_packed: bool,
    /// How codes are chosen when analyzing and packing (a reused table's
    /// own method wins).
    pub method: QuantMethod,
}

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    /// The unquantized model.
    Reference,
    /// A greedy plan.
    Mixed,
    /// One format everywhere.
    Uniform,
    /// A fixed recipe.
    Recipe,
}

/// One configuration, measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Short label (`mixed 3.5 bpw`, `uniform int4`, `Q4_K_M`, `mixed = int4`).
    pub label: String,
    /// What it is.
    pub kind: RowKind,
    /// Bytes of the quantizable tensors.
    pub bytes: u64,
    /// Their bits per weight.
    pub bits_per_weight: f64,
    /// Summed table loss of the chosen formats (`None` for the reference,
    /// or when the table lacks a format).
    pub predicted: Option<f64>,
    /// End-to-end measurements.
    pub measured: Measured,
    /// The row this one is compared with at equal size, if any (its label).
    pub versus: Option<String>,
}

/// A whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The model.
    pub model: String,
    /// `llama` or `bert`.
    pub architecture: String,
    /// The table used.
    pub table: String,
    /// The profile's name and description.
    pub profile: String,
    /// The profile as TOML, for the record.
    pub profile_toml: String,
    /// What the degradation column is.
    pub metric: String,
    /// How every configuration's codes were chosen (the table's method).
    #[serde(default)]
    pub method: QuantMethod,
    /// Every row, reference first.
    pub rows: Vec<Row>,
    /// Spearman rank correlation of predicted and measured degradation
    /// across the quantized rows.
    pub rank_correlation: Option<f64>,
    /// Seconds the whole report took.
    pub seconds: f64,
}

/// A configuration before it is measured.
struct Config {
    label: String,
    kind: RowKind,
    formats: BTreeMap<String, WeightFormat>,
    plan: Option<qloader_schedule::Plan>,
    versus: Option<String>,
}

/// Makes the report; `log` hears one line per step.
pub fn make_report(options: &ReportOptions, log: &mut dyn FnMut(&str)) -> Result<Report> {
    let clock = std::time::Instant::now();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| ReportError::Io { path, error }
    };
    std::fs::create_dir_all(&options.out_dir).map_err(io(&options.out_dir))?;
    let table_path = match &options.table {
        Some(path) => path.clone(),
        None => {
            let path = options.out_dir.join("sensitivity.json");
            log(&format!("analyzing {} (formats {REPORT_FORMATS}) …", options.model.display()));
            let formats =
                REPORT_FORMATS.split(',').map(|f| f.parse().expect("known format")).collect();
            let req = AnalyzeRequest {
                model: options.model.clone(),
                calibration: fixtures::alice_text(),
                formats,
                samples: None,
                window: qloader_analyze::request::DEFAULT_WINDOW,
                e2e_samples: None,
                e2e_formats: Some(vec![WeightFormat::grouped(2, 32)]),
                data_free: false,
                method: options.method,
            };
            let table = analyze(&req, &mut |_| {})?;
            table.write(&path)?;
            path
        }
    };
    let sources = Sources::read(&table_path, &options.profile)?;
    let table = &sources.table;
    let measure_kind = table.best_measure();

    let decoder = !options.model.is_dir();
    log("measuring the unquantized model …");
    let (reference, reference_row) = reference(options, decoder)?;
    let metric = if decoder {
        format!(
            "perplexity on Botchan ({} × {WINDOW} tokens, f32 activations); degradation = \
             mean NLL; decode: {DECODE_TOKENS} greedy tokens as `qloader run` decodes (int8 \
             activations), {} thread(s)",
            options.windows,
            qloader_runtime::threads()
        )
    } else {
        format!(
            "mean cosine to f32 on {} sentences; degradation = 1 − mean cosine",
            EVAL_SENTENCES.len()
        )
    };

    let configs = configurations(options, &sources)?;
    let method = Packing::for_table(options, table, log)?;
    let mut rows = vec![reference_row];
    for (i, c) in configs.iter().enumerate() {
        log(&format!("[{}/{}] {}: packing and measuring …", i + 1, configs.len(), c.label));
        let slug: String =
            c.label.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' }).collect();
        let packed = options.out_dir.join(format!("{slug}.qlm"));
        let plan_ref = match &c.plan {
            Some(plan) => {
                let path = options.out_dir.join(format!("{slug}.plan.json"));
                plan.write(&path)?;
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                Some(PlanRef { path: path.display().to_string(), sha256: sha256_hex(&bytes) })
            }
            None => None,
        };
        let quantization = method.quantization(&c.formats)?;
        let report = pack_model(
            &options.model,
            &c.formats,
            quantization,
            plan_ref,
            &packed,
            &mut |_, _| {},
        )?;
        let measured = measure(&packed, &reference, &EVAL_SENTENCES)?;
        if !options.keep_packed {
            let _ = std::fs::remove_file(&packed);
        }
        let bytes = report.summary.quantized_bytes() as u64;
        let weights = report.summary.quantized_params() as f64;
        rows.push(Row {
            label: c.label.clone(),
            kind: c.kind,
            bytes,
            bits_per_weight: bytes as f64 * 8.0 / weights.max(1.0),
            predicted: predicted_loss(table, &c.formats, measure_kind),
            measured,
            versus: c.versus.clone(),
        });
    }
    let (p, m): (Vec<f64>, Vec<f64>) =
        rows.iter().filter_map(|r| Some((r.predicted?, r.measured.degradation))).unzip();
    let rank_correlation = qloader_analyze::rank::spearman(&p, &m);
    let profile = &sources.profile;
    Ok(Report {
        model: options.model.display().to_string(),
        architecture: table.model.architecture.clone(),
        table: table_path.display().to_string(),
        profile: format!("{} — {}", profile.name, profile.description),
        profile_toml: profile.to_toml(),
        metric,
        method: method.method,
        rows,
        rank_correlation,
        seconds: clock.elapsed().as_secs_f64(),
    })
}

/// How every configuration is packed: with the table's method, calibrated
/// on the table's own samples (so `imatrix` codes are the ones it scored).
/// The model and its samples are loaded once and kept for GPTQ.
struct Packing {
    method: QuantMethod,
    /// The calibration and the `imatrix` quantization, made once.
    calibrated: Option<(Calibration, Quantization)>,
}

impl Packing {
    fn for_table(
        options: &ReportOptions,
        table: &SensitivityTable,
        log: &mut dyn FnMut(&str),
    ) -> Result<Self> {
        let method = table.method;
        let info = &table.calibration;
        let calibrated = match (&info.source, method.is_calibrated()) {
            (Some(source), true) => {
                log(&format!("calibrating {method} on {source} …"));
                let window = (info.tokens / info.samples.max(1)).max(1);
                let c = Calibration::open(
                    &options.model,
                    Path::new(source),
                    Some(info.samples),
                    method,
                    window,
                )?;
                let base = Quantization {
                    method: QuantMethod::Imatrix,
                    calibration: Some(format!(
                        "{} calibration samples ({} tokens) of {source}",
                        c.samples(),
                        c.tokens(),
                    )),
                    replacements: BTreeMap::new(),
                    importance: Some(c.importance()?),
                };
                Some((c, base))
            }
            _ => None,
        };
        Ok(Self { method, calibrated })
    }

    /// How to quantize a configuration with `formats`.
    fn quantization(&self, formats: &BTreeMap<String, WeightFormat>) -> Result<Quantization> {
        let Some((calibration, base)) = &self.calibrated else {
            return Ok(Quantization::default());
        };
        let mut q = base.clone();
        if self.method == QuantMethod::Gptq {
            let supported = |name: &str| {
                formats.get(name).copied().filter(|&f| qloader_analyze::gptq::supports(f))
            };
            let done = calibration.gptq(&supported, &SequentialOptions::default(), &mut |_| {})?;
            q.method = QuantMethod::Gptq;
            q.replacements = done.weights;
        }
        Ok(q)
    }
}

/// The evaluation reference and the unquantized model's row.
fn reference(options: &ReportOptions, decoder: bool) -> Result<(Reference, Row)> {
    let row = |measured: Measured| Row {
        label: "f32 (reference)".to_owned(),
        kind: RowKind::Reference,
        bytes: 0,
        bits_per_weight: 32.0,
        predicted: None,
        measured,
        versus: None,
    };
    if decoder {
        let path = fixtures::botchan_text();
        let text =
            std::fs::read_to_string(&path).map_err(|error| ReportError::Io { path, error })?;
        let session = DecoderSession::open(
            &options.model,
            WeightFormat::F32,
            ActivationFormat::F32,
            &mut |_, _| {},
        )?;
        let p = session.perplexity(&text, WINDOW, options.windows, &mut |_, _| {})?;
        let measured = Measured {
            perplexity: Some(p.perplexity),
            mean_cosine: None,
            retrieval_agreement: None,
            degradation: p.mean_nll,
            speed: 0.0,
            load_seconds: 0.0,
        };
        Ok((Reference::Text { text, windows: options.windows }, row(measured)))
    } else {
        let session =
            EncoderSession::open(&options.model, WeightFormat::F32, ActivationFormat::F32)?;
        let embeddings = session.embed_all(&EVAL_SENTENCES)?;
        let measured = Measured {
            perplexity: None,
            mean_cosine: Some(1.0),
            retrieval_agreement: Some(1.0),
            degradation: 0.0,
            speed: 0.0,
            load_seconds: 0.0,
        };
        Ok((Reference::Embeddings(embeddings), row(measured)))
    }
}

/// Every configuration to pack and measure.
fn configurations(options: &ReportOptions, sources: &Sources) -> Result<Vec<Config>> {
    let table = &sources.table;
    let planned = |budget: Budget, label: String, versus: Option<String>| -> Result<Config> {
        let plan =
            make_plan(sources, &PlanOptions { budget: Some(budget), ..PlanOptions::default() })?;
        let formats = plan.tensors.iter().map(|t| (t.name.clone(), t.format)).collect();
        Ok(Config { label, kind: RowKind::Mixed, formats, plan: Some(plan), versus })
    };
    let mut configs = Vec::new();
    for &b in &options.budgets {
        configs.push(planned(Budget::BitsPerWeight(b), format!("mixed {b} bpw"), None)?);
    }
    let mut fixed: Vec<(String, RowKind, BTreeMap<String, WeightFormat>)> = options
        .uniform
        .iter()
        .map(|&f| {
            let formats = table.tensors.iter().map(|t| (t.name.clone(), f)).collect();
            (format!("uniform {f}"), RowKind::Uniform, formats)
        })
        .collect();
    if options.recipes {
        for r in Recipe::ALL {
            fixed.push((
                r.name().to_owned(),
                RowKind::Recipe,
                r.assign(&table.tensors).into_iter().collect(),
            ));
        }
    }
    for (label, kind, formats) in fixed {
        let bytes: u64 = table
            .tensors
            .iter()
            .map(|t| formats[&t.name].storage_bytes(t.shape[0], t.shape[1]) as u64)
            .sum();
        configs.push(Config { label: label.clone(), kind, formats, plan: None, versus: None });
        configs.push(planned(Budget::Bytes(bytes), format!("mixed = {label}"), Some(label))?);
    }
    Ok(configs)
}

/// Σ over tensors of the table's loss at the chosen format, if the table
/// holds every one.
fn predicted_loss(
    table: &SensitivityTable,
    formats: &BTreeMap<String, WeightFormat>,
    measure: Measure,
) -> Option<f64> {
    table.tensors.iter().map(|t| t.formats.get(formats.get(&t.name)?)?.get(measure)).sum()
}
