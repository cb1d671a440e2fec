//! Writing a packed model from an original checkpoint and a choice of
//! format per tensor (a plan): the model is built once through a
//! [`RecordingSource`], exactly as an in-memory quantized model would be, and
//! every tensor it asked for is written, with what the loader needs besides
//! (configuration, tokenizer). The file is written atomically.
//!
//! Several plans go into one file ([`pack_model_plans`]): the model is built
//! once per plan, and every distinct (tensor, format) pair it asked for is
//! stored once, as a variant that each plan using it names.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use qloader_format::gguf::writer::metadata_file_bytes;
use qloader_format::{
    PackedMeta, PackedPlan, PackedWriter, PlanRef, QuantMethod, QuantRecord, WeightFormat,
};
use qloader_models::bert::SafetensorsSource;
use qloader_models::bert::{ModelDir, PoolingMode};
use qloader_models::family::{detect, Kind};
use qloader_models::{decoder, BertEncoder, RecordedTensor, RecordingSource, ReplacingSource};
use qloader_quant::{ColumnImportance, LinearWeight, QuantSummary};

use super::config::{
    BertPacked, DecoderPacked, Pooling, BERT, CONFIG_BLOB, GGUF_METADATA_BLOB, TOKENIZER_BLOB,
};
use super::pack_nested::nest_variants;
pub use super::pack_nested::Nesting;
use crate::error::{Result, RuntimeError};

/// How the quantized tensors' codes are made, beyond their formats.
#[derive(Debug, Clone, Default)]
pub struct Quantization {
    /// The method, recorded in the header.
    pub method: QuantMethod,
    /// Its calibration in words, recorded in the header.
    pub calibration: Option<String>,
    /// Weights quantized beforehand (e.g. by GPTQ), stored as they are in
    /// place of the tensors of the same name.
    pub replacements: BTreeMap<String, LinearWeight>,
    /// Grid-search weights of the tensors quantized while packing (the
    /// `imatrix` method; with GPTQ, for the tensors it leaves out).
    pub importance: Option<ColumnImportance>,
}

impl Quantization {
    fn record(&self) -> QuantRecord {
        QuantRecord { method: self.method, calibration: self.calibration.clone() }
    }
}

/// What packing wrote.
#[derive(Debug, Clone)]
pub struct PackReport {
    /// The architecture packed.
    pub architecture: &'static str,
    /// Every tensor, as stored.
    pub summary: QuantSummary,
    /// Length of the file.
    pub file_bytes: u64,
}

/// Packs the sentence-transformers encoder in `dir`, storing each
/// quantizable tensor as `choose(name)` says, into `out`.
pub fn pack_bert(
    dir: &ModelDir,
    choose: &dyn Fn(&str) -> WeightFormat,
    plan: Option<PlanRef>,
    out: &Path,
) -> Result<PackReport> {
    pack_bert_with(dir, choose, Quantization::default(), plan, out)
}

/// [`pack_bert`], with the codes made as `quantization` says.
pub fn pack_bert_with(
    dir: &ModelDir,
    choose: &dyn Fn(&str) -> WeightFormat,
    quantization: Quantization,
    plan: Option<PlanRef>,
    out: &Path,
) -> Result<PackReport> {
    let record = quantization.record();
    let recorded = record_bert(dir, choose, quantization, out)?;
    write_single(recorded, plan, record, out)
}

/// Packs the decoder at `path` (a GGUF file or a Hugging Face checkpoint
/// directory, of any supported family), storing each quantizable tensor as
/// `choose(name)` says, into `out`; `progress(done, total)` hears about the
/// blocks.
pub fn pack_decoder(
    path: &Path,
    choose: &dyn Fn(&str) -> WeightFormat,
    plan: Option<PlanRef>,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PackReport> {
    pack_decoder_with(path, choose, Quantization::default(), plan, out, progress)
}

/// [`pack_decoder`], with the codes made as `quantization` says.
pub fn pack_decoder_with(
    path: &Path,
    choose: &dyn Fn(&str) -> WeightFormat,
    quantization: Quantization,
    plan: Option<PlanRef>,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PackReport> {
    let record = quantization.record();
    let recorded = record_decoder(path, choose, quantization, out, progress)?;
    write_single(recorded, plan, record, out)
}

/// A model built once through a [`RecordingSource`]: what a packed file of
/// it holds.
struct Recorded {
    architecture: &'static str,
    /// The header's `config`.
    config: serde_json::Value,
    blobs: Vec<(&'static str, Vec<u8>)>,
    tensors: Vec<RecordedTensor>,
    summary: QuantSummary,
}

fn record_bert(
    dir: &ModelDir,
    choose: &dyn Fn(&str) -> WeightFormat,
    quantization: Quantization,
    out: &Path,
) -> Result<Recorded> {
    let weights = dir.open_weights()?;
    let mut checkpoint = SafetensorsSource::new(&weights, choose);
    if let Some(importance) = &quantization.importance {
        checkpoint = checkpoint.with_importance(importance);
    }
    let mut source = ReplacingSource::new(&mut checkpoint, quantization.replacements);
    let mut recording = RecordingSource::new(&mut source);
    let model =
        BertEncoder::from_source(dir.config.clone(), dir.pooling, dir.normalize, &mut recording)?;
    let summary = model.summary().clone();
    drop(model);
    let tensors = recording.into_recorded();
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| {
            RuntimeError::from(qloader_format::FormatError::Io { path: path.to_owned(), error })
        })
    };
    let config = BertPacked {
        pooling: match dir.pooling {
            PoolingMode::Mean => Pooling::Mean,
            PoolingMode::Cls => Pooling::Cls,
        },
        normalize: dir.normalize,
        max_seq_length: dir.max_seq_length,
    };
    Ok(Recorded {
        architecture: BERT,
        config: header_config(&config, out)?,
        blobs: vec![
            (CONFIG_BLOB, read(&dir.root.join("config.json"))?),
            (TOKENIZER_BLOB, read(&dir.tokenizer_path)?),
        ],
        tensors,
        summary,
    })
}

fn record_decoder(
    path: &Path,
    choose: &dyn Fn(&str) -> WeightFormat,
    quantization: Quantization,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Recorded> {
    let checkpoint = decoder::open_checkpoint(path)?;
    let config = checkpoint.config();
    let (tokenizer_json, settings) = checkpoint.tokenizer()?.to_json()?;
    let mut tensors = checkpoint.source(choose, quantization.importance.as_ref());
    let mut source = ReplacingSource::new(tensors.as_mut(), quantization.replacements);
    let mut recording = RecordingSource::new(&mut source);
    let model = config.build(&mut recording, progress)?;
    let summary = model.summary().clone();
    drop(model);
    let tensors = recording.into_recorded();
    let packed = DecoderPacked { model: config.to_json(), tokenizer: settings };
    let mut blobs = vec![(TOKENIZER_BLOB, tokenizer_json.into_bytes())];
    // A GGUF source's metadata, kept for `qloader export`.
    if let Some(file) = checkpoint.gguf() {
        blobs.push((GGUF_METADATA_BLOB, metadata_file_bytes(file.metadata())));
    }
    Ok(Recorded {
        architecture: config.design().name(),
        config: header_config(&packed, out)?,
        blobs,
        tensors,
        summary,
    })
}

/// Writes one recorded model as a version 1 file.
fn write_single(
    recorded: Recorded,
    plan: Option<PlanRef>,
    record: QuantRecord,
    out: &Path,
) -> Result<PackReport> {
    let meta = meta(recorded.architecture, recorded.config.clone(), plan, record);
    let mut writer = PackedWriter::new(meta);
    for (name, bytes) in &recorded.blobs {
        writer.add_blob(*name, bytes);
    }
    for t in &recorded.tensors {
        writer.add_tensor(t.name.clone(), t.shape[0], t.shape[1], t.parts.as_tensor_parts());
    }
    let file_bytes = writer.write(out)?;
    Ok(PackReport { architecture: recorded.architecture, summary: recorded.summary, file_bytes })
}

/// The quantizable tensors of the model at `model` (a GGUF file, or a
/// sentence-transformers directory), by name.
pub fn quantizable_tensors(model: &Path) -> Result<Vec<String>> {
    Ok(model_tensors(model)?.names)
}

/// What packing checks a plan against: the model's quantizable tensors and
/// whether it is an encoder, from one look at its family.
struct ModelTensors {
    names: Vec<String>,
    encoder: bool,
}

fn model_tensors(model: &Path) -> Result<ModelTensors> {
    let family = detect(model)?;
    match family.kind {
        Kind::Encoder => {
            let dir = ModelDir::open(model)?;
            let mut names = qloader_models::bert::tensor_names(&dir.config);
            names.push(qloader_models::bert::WORD_EMBEDDINGS.to_owned());
            Ok(ModelTensors { names, encoder: true })
        }
        Kind::Decoder(design) => {
            let names = design.open_checkpoint(family, model)?.config().tensor_names();
            Ok(ModelTensors { names, encoder: false })
        }
    }
}

/// Packs the model at `model` (a GGUF file, or a sentence-transformers
/// directory) with every quantizable tensor in the format `formats` gives
/// it, into `out`. `formats` must name exactly the model's quantizable
/// tensors (as a plan made from the model's sensitivity table does). The
/// codes are made as `quantization` says; its replacements must each have
/// their tensor's format.
pub fn pack_model(
    model: &Path,
    formats: &BTreeMap<String, WeightFormat>,
    quantization: Quantization,
    plan: Option<PlanRef>,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PackReport> {
    let tensors = model_tensors(model)?;
    check_formats(model, &tensors.names, formats, &quantization)?;
    let choose = |name: &str| formats.get(name).copied().unwrap_or(WeightFormat::F32);
    if tensors.encoder {
        pack_bert_with(&ModelDir::open(model)?, &choose, quantization, plan, out)
    } else {
        pack_decoder_with(model, &choose, quantization, plan, out, progress)
    }
}

/// Checks that `formats` names exactly the quantizable tensors of `model`
/// (`names`) and that `quantization`'s replacements have their planned
/// formats.
fn check_formats(
    model: &Path,
    names: &[String],
    formats: &BTreeMap<String, WeightFormat>,
    quantization: &Quantization,
) -> Result<()> {
    let mismatch = |reason: String| RuntimeError::PlanMismatch { model: model.to_owned(), reason };
    if let Some(missing) = names.iter().find(|n| !formats.contains_key(*n)) {
        return Err(mismatch(format!("the plan has no format for tensor `{missing}`")));
    }
    if let Some(extra) = formats.keys().find(|n| !names.contains(*n)) {
        return Err(mismatch(format!(
            "the plan names tensor `{extra}`, which the model does not have"
        )));
    }
    let replacements = &quantization.replacements;
    if let Some((name, w)) = replacements.iter().find(|(n, w)| formats.get(*n) != Some(&w.format()))
    {
        return Err(mismatch(format!(
            "the weight given for tensor `{name}` is {}, not the planned {}",
            w.format(),
            formats.get(name).map_or_else(|| "format".to_owned(), |f| f.to_string())
        )));
    }
    Ok(())
}

/// One plan to store in a multi-plan file.
#[derive(Debug, Clone)]
pub struct PlanToPack {
    /// Its name in the file (e.g. `4bpw`).
    pub name: String,
    /// The format of every quantizable tensor.
    pub formats: BTreeMap<String, WeightFormat>,
    /// How its codes are made.
    pub quantization: Quantization,
    /// The loss its plan predicted, if any.
    pub predicted_loss: Option<f64>,
    /// The loss its plan predicted for each tensor, where known: recorded
    /// with each variant, for the loader to build plans from.
    pub tensor_losses: BTreeMap<String, f64>,
    /// The plan file, if any.
    pub plan: Option<PlanRef>,
}

/// What packing several plans wrote.
#[derive(Debug, Clone)]
pub struct MultiPackReport {
    /// The architecture packed.
    pub architecture: &'static str,
    /// Per plan (in the order given): its name, its tensors as stored, and
    /// the bytes it loads (all tensors).
    pub plans: Vec<(String, QuantSummary, u64)>,
    /// Bytes of the distinct variants stored (all tensors).
    pub stored_bytes: u64,
    /// Each nested tensor's root format and the formats of its links.
    pub nested: BTreeMap<String, (WeightFormat, Vec<WeightFormat>)>,
    /// Length of the file.
    pub file_bytes: u64,
}

/// Packs the model at `model` once per plan into one file at `out`: each
/// distinct (tensor, format) pair is stored once, as a variant, and each
/// plan records which variant of every tensor it loads. A variant's codes
/// are those of the first plan (in the order given) that uses its format.
/// One plan gives a version 1 file, as [`pack_model`] does.
pub fn pack_model_plans(
    model: &Path,
    plans: Vec<PlanToPack>,
    out: &Path,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<MultiPackReport> {
    pack_model_plans_with(model, plans, None, out, progress)
}

/// [`pack_model_plans`], with the wider variants of a tensor stored as bit
/// planes on its narrowest compact one where `nesting` allows (see
/// [`Nesting`]); a plan that asked for a replaced format loads the nested
/// variant standing for it. `progress` hears about the nesting as
/// `"nesting"`.
pub fn pack_model_plans_with(
    model: &Path,
    plans: Vec<PlanToPack>,
    nesting: Option<Nesting>,
    out: &Path,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<MultiPackReport> {
    let Some(first) = plans.first() else {
        return Err(RuntimeError::PlanMismatch {
            model: model.to_owned(),
            reason: "no plan to pack".to_owned(),
        });
    };
    let record = first.quantization.record();
    let importance = first.quantization.importance.clone();
    let tensors = model_tensors(model)?;
    for p in &plans {
        check_formats(model, &tensors.names, &p.formats, &p.quantization)?;
    }
    let dir = if tensors.encoder { Some(ModelDir::open(model)?) } else { None };
    // Each plan's build keeps only the variants no earlier plan recorded.
    let mut stored: HashSet<(String, WeightFormat)> = HashSet::new();
    let mut recorded: Vec<Recorded> = Vec::with_capacity(plans.len());
    let mut specs = Vec::with_capacity(plans.len());
    for p in plans {
        let choose = |name: &str| p.formats.get(name).copied().unwrap_or(WeightFormat::F32);
        let mut one = match &dir {
            Some(dir) => record_bert(dir, &choose, p.quantization, out)?,
            None => record_decoder(model, &choose, p.quantization, out, &mut |done, total| {
                progress(&p.name, done, total)
            })?,
        };
        one.tensors.retain(|t| stored.insert((t.name.clone(), t.parts.as_tensor_parts().format())));
        specs.push((p.name, p.predicted_loss, p.plan, p.tensor_losses, one.summary.clone()));
        recorded.push(one);
    }
    // Every tensor's variants, in plan order.
    let mut variants: BTreeMap<&str, Vec<&RecordedTensor>> = BTreeMap::new();
    for v in recorded.iter().flat_map(|r| &r.tensors) {
        variants.entry(v.name.as_str()).or_default().push(v);
    }
    let chains = match nesting {
        Some(nesting) => nest_variants(
            model,
            tensors.encoder,
            &variants,
            importance.as_ref(),
            nesting,
            &mut |done, total| progress("nesting", done, total),
        )?,
        None => BTreeMap::new(),
    };
    let base = &recorded[0];
    let mut writer = PackedWriter::new(meta(base.architecture, base.config.clone(), None, record));
    for (name, bytes) in &base.blobs {
        writer.add_blob(*name, bytes);
    }
    // Tensors in the first plan's order; a chain's root and links first,
    // then the variants it does not replace, in plan order.
    let mut stored_bytes = 0u64;
    for t in &base.tensors {
        let name = t.name.as_str();
        let chain = chains.get(name);
        let mut ordered: Vec<&RecordedTensor> = variants[name].clone();
        if let Some(chain) = chain {
            ordered.retain(|v| !chain.replaced.contains_key(&v.parts.as_tensor_parts().format()));
            ordered.sort_by_key(|v| v.parts.as_tensor_parts().format() != chain.root);
        }
        for (i, v) in ordered.iter().enumerate() {
            let parts = v.parts.as_tensor_parts();
            stored_bytes += parts.byte_len() as u64;
            writer.add_variant(v.name.clone(), v.shape[0], v.shape[1], parts);
            let Some(chain) = chain.filter(|_| i == 0) else { continue };
            let mut base = chain.root;
            for link in &chain.links {
                stored_bytes += link.planes.len() as u64;
                writer.add_nested_variant(name, v.shape[0], v.shape[1], link.parts(), base);
                base = link.format;
            }
        }
    }
    let mut report_plans = Vec::with_capacity(specs.len());
    for (name, mut predicted_loss, plan, mut tensor_losses, mut summary) in specs {
        for t in &mut summary.tensors {
            let Some(chain) = chains.get(&t.name) else { continue };
            if let Some(loss) = tensor_losses.get_mut(&t.name) {
                let nested = chain.nested_loss(t.format, *loss);
                predicted_loss = predicted_loss.map(|total| total + nested - *loss);
                *loss = nested;
            }
            t.format = chain.loads(t.format);
            if let Some(bytes) = chain.chain_bytes(t.format) {
                t.bytes = bytes;
            }
        }
        // The plan loads the format of every tensor it asked for.
        let formats = summary.tensors.iter().map(|t| (t.name.clone(), t.format)).collect();
        let bytes = summary.tensors.iter().map(|t| t.bytes as u64).sum();
        writer.add_plan(PackedPlan {
            name: name.clone(),
            bits_per_weight: summary.quantized_bits_per_weight(),
            predicted_loss,
            plan,
            formats,
            tensor_losses,
        });
        report_plans.push((name, summary, bytes));
    }
    let file_bytes = writer.write(out)?;
    Ok(MultiPackReport {
        architecture: base.architecture,
        plans: report_plans,
        stored_bytes,
        nested: chains
            .iter()
            .map(|(n, c)| (n.clone(), (c.root, c.links.iter().map(|l| l.format).collect())))
            .collect(),
        file_bytes,
    })
}

/// `config` as the header's JSON value.
fn header_config(config: &impl serde::Serialize, out: &Path) -> Result<serde_json::Value> {
    serde_json::to_value(config).map_err(|e| RuntimeError::InvalidPacked {
        path: out.to_owned(),
        reason: format!("cannot write the header config: {e}"),
    })
}

fn meta(
    architecture: &str,
    config: serde_json::Value,
    plan: Option<PlanRef>,
    quantization: QuantRecord,
) -> PackedMeta {
    PackedMeta {
        created_by: format!("qloader {}", env!("CARGO_PKG_VERSION")),
        architecture: architecture.to_owned(),
        config,
        plan,
        quantization: Some(quantization),
    }
}
