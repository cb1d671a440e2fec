//! Making a report: the sensitivity table (reused or measured), a greedy
//! plan per budget, the uniform formats and the fixed recipes — each packed
//! and measured end to end — and, beside each uniform format and recipe, the
//! greedy plan at exactly its size; with llama.cpp's own files
//! ([`crate::llama_files`]), beside each the greedy plan whose packed file
//! is at most that file's size.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qloader_analyze::gptq::SequentialOptions;
use qloader_analyze::request::{run as analyze, AnalyzeRequest, Calibration};
use qloader_analyze::{Measure, SensitivityTable};
use qloader_format::{fixtures, ActivationFormat, PlanRef, QuantMethod, WeightFormat};
use qloader_runtime::packed::{pack_model, pack_model_plans, PlanToPack, Quantization};
use qloader_runtime::sentences::EVAL_SENTENCES;
use qloader_runtime::{DecoderSession, EncoderSession};
use qloader_schedule::planner::sha256_hex;
use qloader_schedule::{make_plan, Budget, PlanOptions, Sources};
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result};
use crate::llama_files::{self, LlamaCppFile};
use crate::measure::{measure, Measured, Reference, DECODE_TOKENS, WINDOW};
use crate::recipe::Recipe;

/// The formats a report's analysis covers: those the plans choose from, the
/// uniform baselines, and the recipes' formats.
pub const REPORT_FORMATS: &str =
    "f16,int8,int5k,q5_0,int4,int4g64,int4g128,int4k,nl4k,int3,int3g64,int3g128,int3k,int2,int2g128,int2k";

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
    /// llama.cpp types to write the model in and compare with (decoders;
    /// empty: none). Needs llama.cpp's tools (`scripts/llama-cpp.sh`).
    pub llama_cpp: Vec<String>,
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
    /// A file written by llama.cpp, scored in QLoader's harness.
    LlamaCpp,
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
    /// Bytes of the whole file (packed model or GGUF), where there is one.
    #[serde(default)]
    pub file_bytes: Option<u64>,
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
    /// The budgets' plans packed into one file, beside their own files
    /// (with two budgets or more).
    #[serde(default)]
    pub one_file: Option<OneFile>,
    /// Seconds the whole report took.
    pub seconds: f64,
}

/// Every budget's plan in one packed file (`qloader pack --budgets`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneFile {
    /// Length of the file.
    pub file_bytes: u64,
    /// Per plan: its row's label, the bytes it loads from the one file,
    /// and the length of its own file.
    pub plans: Vec<(String, u64, u64)>,
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

    let decoder = table.model.architecture != "bert";
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
    let packing = Packing::for_table(options, table, log)?;
    let measuring = Measuring {
        options,
        table,
        packing: &packing,
        reference: &reference,
        budget_codes: RefCell::default(),
    };
    let mut rows = vec![reference_row];
    for (i, c) in configs.iter().enumerate() {
        log(&format!("[{}/{}] {}: packing and measuring …", i + 1, configs.len(), c.label));
        let packed = measuring.pack(c)?;
        rows.push(measuring.measure(c, packed)?);
    }
    let budgets: Vec<&Config> = configs.iter().filter(|c| is_budget(c)).collect();
    let one_file = if budgets.len() >= 2 {
        log(&format!("packing the {} budgets' plans into one file …", budgets.len()));
        Some(measuring.pack_together(&budgets, &rows)?)
    } else {
        None
    };
    if !options.llama_cpp.is_empty() {
        if !decoder {
            return Err(ReportError::Mismatch(
                "--llama-cpp compares llama.cpp's files of a decoder (a GGUF model); this \
                 model is an encoder"
                    .into(),
            ));
        }
        llama_files::check_types(&options.llama_cpp)?;
        let files =
            llama_files::write_files(&options.model, &options.llama_cpp, &options.out_dir, log)?;
        // What a packed file holds beyond its quantizable tensors (norms,
        // header), as the packs so far measured it: the first guess of how
        // many bytes of a file's size a plan may not spend.
        let mut overhead = rows
            .iter()
            .filter_map(|r| Some(r.file_bytes?.saturating_sub(r.bytes)))
            .max()
            .unwrap_or(0);
        for (i, file) in files.iter().enumerate() {
            log(&format!(
                "[{}/{}] llama.cpp {}: scoring the file and the plan of its size …",
                i + 1,
                files.len(),
                file.ggml_type
            ));
            let row = llama_cpp_row(file, table, &reference)?;
            let label = row.label.clone();
            rows.push(row);
            match measuring.plan_within(file.file_bytes, &mut overhead, &sources, &label, log)? {
                Some((config, packed)) => rows.push(measuring.measure(&config, packed)?),
                None => log(&format!("no plan fits in {} bytes", file.file_bytes)),
            }
        }
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
        method: packing.method,
        rows,
        rank_correlation,
        one_file,
        seconds: clock.elapsed().as_secs_f64(),
    })
}

/// Packs and measures configurations, all the same way.
struct Measuring<'a> {
    options: &'a ReportOptions,
    table: &'a SensitivityTable,
    packing: &'a Packing,
    reference: &'a Reference,
    /// The budgets' quantizations as packed (GPTQ's codes among them), kept
    /// for packing the budgets into one file without fitting them again.
    budget_codes: RefCell<BTreeMap<String, Quantization>>,
}

/// A configuration packed: where, and the packer's report.
struct Packed {
    path: PathBuf,
    report: qloader_runtime::packed::PackReport,
}

impl Measuring<'_> {
    /// Packs `c` into the output folder (its plan written beside it).
    fn pack(&self, c: &Config) -> Result<Packed> {
        let out_dir = &self.options.out_dir;
        let slug: String =
            c.label.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' }).collect();
        let path = out_dir.join(format!("{slug}.qlm"));
        let plan_ref = match &c.plan {
            Some(plan) => {
                let plan_path = out_dir.join(format!("{slug}.plan.json"));
                plan.write(&plan_path)?;
                let bytes = std::fs::read(&plan_path)
                    .map_err(|error| ReportError::Io { path: plan_path.clone(), error })?;
                Some(PlanRef { path: plan_path.display().to_string(), sha256: sha256_hex(&bytes) })
            }
            None => None,
        };
        let quantization = self.packing.quantization(&c.formats)?;
        // Kept only where the budgets will be packed together.
        if is_budget(c) && self.options.budgets.len() >= 2 {
            self.budget_codes.borrow_mut().insert(c.label.clone(), quantization.clone());
        }
        let report = pack_model(
            &self.options.model,
            &c.formats,
            quantization,
            plan_ref,
            &path,
            &mut |_, _| {},
        )?;
        Ok(Packed { path, report })
    }

    /// Packs the plans of `configs` into one file (kept with the others
    /// when they are kept), beside the files `rows` measured.
    fn pack_together(&self, configs: &[&Config], rows: &[Row]) -> Result<OneFile> {
        let path = self.options.out_dir.join("every-budget.qlm");
        let mut plans = Vec::with_capacity(configs.len());
        for c in configs {
            let kept = self.budget_codes.borrow_mut().remove(&c.label);
            let quantization = match kept {
                Some(q) => q,
                None => self.packing.quantization(&c.formats)?,
            };
            plans.push(PlanToPack {
                name: c.label.clone(),
                formats: c.formats.clone(),
                quantization,
                predicted_loss: c.plan.as_ref().map(|p| p.totals.loss),
                tensor_losses: Default::default(),
                plan: None,
            });
        }
        let report = pack_model_plans(&self.options.model, plans, &path, &mut |_, _, _| {})?;
        if !self.options.keep_packed {
            let _ = std::fs::remove_file(&path);
        }
        let own = |label: &str| {
            rows.iter().find(|r| r.label == label).and_then(|r| r.file_bytes).unwrap_or(0)
        };
        Ok(OneFile {
            file_bytes: report.file_bytes,
            plans: report
                .plans
                .iter()
                .map(|(name, _, bytes)| (name.clone(), *bytes, own(name)))
                .collect(),
        })
    }

    /// Measures a packed configuration (and removes the file unless kept).
    fn measure(&self, c: &Config, packed: Packed) -> Result<Row> {
        let measured = measure(&packed.path, self.reference, &EVAL_SENTENCES)?;
        if !self.options.keep_packed {
            let _ = std::fs::remove_file(&packed.path);
        }
        let summary = &packed.report.summary;
        let bytes = summary.quantized_bytes() as u64;
        let weights = summary.quantized_params() as f64;
        Ok(Row {
            label: c.label.clone(),
            kind: c.kind,
            bytes,
            file_bytes: Some(packed.report.file_bytes),
            bits_per_weight: bytes as f64 * 8.0 / weights.max(1.0),
            predicted: predicted_loss(self.table, &c.formats, self.table.best_measure()),
            measured,
            versus: c.versus.clone(),
        })
    }

    /// The greedy plan whose packed file is at most `limit` bytes, packed:
    /// planned for `limit` less the `overhead` a file adds to its
    /// quantizable tensors, and re-planned with the excess taken off while
    /// the file comes out larger (`overhead` learns from each try). `None`
    /// when no plan is that small.
    fn plan_within(
        &self,
        limit: u64,
        overhead: &mut u64,
        sources: &Sources,
        versus: &str,
        log: &mut dyn FnMut(&str),
    ) -> Result<Option<(Config, Packed)>> {
        const TRIES: usize = 4;
        let mut budget = limit.saturating_sub(*overhead);
        for _ in 0..TRIES {
            let options =
                PlanOptions { budget: Some(Budget::Bytes(budget)), ..PlanOptions::default() };
            let plan = match make_plan(sources, &options) {
                Ok(plan) => plan,
                Err(e) => {
                    log(&format!("no plan for {budget} bytes: {e}"));
                    return Ok(None);
                }
            };
            let config = Config {
                label: format!("mixed ≤ {versus}"),
                kind: RowKind::Mixed,
                formats: plan.tensors.iter().map(|t| (t.name.clone(), t.format)).collect(),
                plan: Some(plan),
                versus: Some(versus.to_owned()),
            };
            let packed = self.pack(&config)?;
            let file_bytes = packed.report.file_bytes;
            let quantized = packed.report.summary.quantized_bytes() as u64;
            *overhead = (*overhead).max(file_bytes.saturating_sub(quantized));
            if file_bytes <= limit {
                return Ok(Some((config, packed)));
            }
            let _ = std::fs::remove_file(&packed.path);
            let excess = file_bytes - limit;
            budget = budget.saturating_sub(excess + excess / 8 + 4096);
        }
        log(&format!("no packed file within {limit} bytes after {TRIES} plans"));
        Ok(None)
    }
}

/// A llama.cpp file's row: scored in QLoader's harness (its tensors
/// de-quantized by QLoader's GGUF reader, f32 activations, as the
/// reference), sized by the bytes of the tensors the table quantizes.
fn llama_cpp_row(
    file: &LlamaCppFile,
    table: &SensitivityTable,
    reference: &Reference,
) -> Result<Row> {
    let Reference::Text { text, windows } = reference else {
        return Err(ReportError::Mismatch("llama.cpp files are compared on decoders only".into()));
    };
    let session =
        DecoderSession::open(&file.path, WeightFormat::F32, ActivationFormat::F32, &mut |_, _| {})?;
    let p = session.perplexity(text, WINDOW, *windows, &mut |_, _| {})?;
    let bytes =
        llama_files::tensor_bytes(&file.path, table.tensors.iter().map(|t| t.name.as_str()))?;
    let weights: f64 = table.tensors.iter().map(|t| (t.shape[0] * t.shape[1]) as f64).sum();
    Ok(Row {
        label: format!("llama.cpp {}", file.ggml_type),
        kind: RowKind::LlamaCpp,
        bytes,
        file_bytes: Some(file.file_bytes),
        bits_per_weight: bytes as f64 * 8.0 / weights.max(1.0),
        predicted: None,
        measured: Measured::perplexity_only(&p),
        versus: None,
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

/// Whether `c` is one of the budgets' plans (not a plan made at another
/// row's size).
fn is_budget(c: &Config) -> bool {
    c.kind == RowKind::Mixed && c.versus.is_none()
}

/// The evaluation reference and the unquantized model's row.
fn reference(options: &ReportOptions, decoder: bool) -> Result<(Reference, Row)> {
    let row = |measured: Measured| Row {
        label: "f32 (reference)".to_owned(),
        kind: RowKind::Reference,
        bytes: 0,
        file_bytes: None,
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
        let measured = Measured::perplexity_only(&p);
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
