//! Writing a packed model from an original checkpoint and a choice of
//! format per tensor (a plan): the model is built once through a
//! [`RecordingSource`], exactly as an in-memory quantized model would be, and
//! every tensor it asked for is written, with what the loader needs besides
//! (configuration, tokenizer). The file is written atomically.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;
use std::path::Path;

use qloader_format::gguf::writer::metadata_file_bytes;
use qloader_format::{PackedMeta, PackedWriter, PlanRef, QuantMethod, QuantRecord, WeightFormat};
use qloader_models::bert::SafetensorsSource;
use qloader_models::bert::{ModelDir, PoolingMode};
use qloader_models::family::{detect, Kind};
use qloader_models::{decoder, BertEncoder, RecordedTensor, RecordingSource, ReplacingSource};
use qloader_quant::{ColumnImportance, LinearWeight, QuantSummary};

use super::config::{
    BertPacked, DecoderPacked, Pooling, BERT, CONFIG_BLOB, GGUF_METADATA_BLOB, TOKENIZER_BLOB,
};
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
    let weights = dir.open_weights()?;
    let record = quantization.record();
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
    let config_json = read(&dir.root.join("config.json"))?;
    let tokenizer_json = read(&dir.tokenizer_path)?;
    let config = BertPacked {
        pooling: match dir.pooling {
            PoolingMode::Mean => Pooling::Mean,
            PoolingMode::Cls => Pooling::Cls,
        },
        normalize: dir.normalize,
        max_seq_length: dir.max_seq_length,
    };
    let meta = meta(BERT, header_config(&config, out)?, plan, record);
    let mut writer = PackedWriter::new(meta);
    writer.add_blob(CONFIG_BLOB, &config_json).add_blob(TOKENIZER_BLOB, &tokenizer_json);
    let file_bytes = write(writer, &tensors, out)?;
    Ok(PackReport { architecture: BERT, summary, file_bytes })
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
    let checkpoint = decoder::open_checkpoint(path)?;
    let config = checkpoint.config();
    let (tokenizer_json, settings) = checkpoint.tokenizer()?.to_json()?;
    let record = quantization.record();
    let mut tensors = checkpoint.source(choose, quantization.importance.as_ref());
    let mut source = ReplacingSource::new(tensors.as_mut(), quantization.replacements);
    let mut recording = RecordingSource::new(&mut source);
    let model = config.build(&mut recording, progress)?;
    let summary = model.summary().clone();
    drop(model);
    let tensors = recording.into_recorded();
    let architecture = config.design().name();
    let packed = DecoderPacked { model: config.to_json(), tokenizer: settings };
    let meta = meta(architecture, header_config(&packed, out)?, plan, record);
    let mut writer = PackedWriter::new(meta);
    writer.add_blob(TOKENIZER_BLOB, tokenizer_json.as_bytes());
    // A GGUF source's metadata, kept for `qloader export`.
    let source_metadata = checkpoint.gguf().map(|file| metadata_file_bytes(file.metadata()));
    if let Some(bytes) = &source_metadata {
        writer.add_blob(GGUF_METADATA_BLOB, bytes);
    }
    let file_bytes = write(writer, &tensors, out)?;
    Ok(PackReport { architecture, summary, file_bytes })
}

/// The quantizable tensors of the model at `model` (a GGUF file, or a
/// sentence-transformers directory), by name.
pub fn quantizable_tensors(model: &Path) -> Result<Vec<String>> {
    if detect(model)?.kind == Kind::Encoder {
        let dir = ModelDir::open(model)?;
        let mut names = qloader_models::bert::tensor_names(&dir.config);
        names.push(qloader_models::bert::WORD_EMBEDDINGS.to_owned());
        Ok(names)
    } else {
        Ok(decoder::open_checkpoint(model)?.config().tensor_names())
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
    let names = quantizable_tensors(model)?;
    let mismatch = |reason: String| RuntimeError::PlanMismatch { model: model.to_owned(), reason };
    if let Some(missing) = names.iter().find(|n| !formats.contains_key(*n)) {
        return Err(mismatch(format!("the plan has no format for tensor `{missing}`")));
    }
    if let Some(extra) = formats.keys().find(|n| !names.contains(n)) {
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
    let choose = |name: &str| formats.get(name).copied().unwrap_or(WeightFormat::F32);
    if detect(model)?.kind == Kind::Encoder {
        pack_bert_with(&ModelDir::open(model)?, &choose, quantization, plan, out)
    } else {
        pack_decoder_with(model, &choose, quantization, plan, out, progress)
    }
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

fn write<'a>(
    mut writer: PackedWriter<'a>,
    tensors: &'a [RecordedTensor],
    out: &Path,
) -> Result<u64> {
    for t in tensors {
        writer.add_tensor(t.name.clone(), t.shape[0], t.shape[1], t.parts.as_tensor_parts());
    }
    Ok(writer.write(out)?)
}
