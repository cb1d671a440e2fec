//! Opening a packed model: the header's architecture and configuration say
//! which model to build, the blobs give its tokenizer, and a
//! [`PackedSource`] gives its weights (in place, or converted where this
//! device lacks a kernel).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::Path;
use std::time::Instant;

use qloader_format::{FormatError, PackedFile};
use qloader_models::bert::{BertConfig, PoolingMode};
use qloader_models::{decoder, BertEncoder, GgufTokenizer, SentenceTokenizer};

use super::config::{BertPacked, DecoderPacked, Pooling, BERT, CONFIG_BLOB, TOKENIZER_BLOB};
use super::fallback_cache::{cache_path, FallbackCache};
use super::plan_choice::{choose_plan, PlanSelection};
use super::source::{default_activations, LoadOptions, PackedSource, Placement};
use crate::decoder::DecoderSession;
use crate::error::{Result, RuntimeError};

/// A sentence encoder from a packed model, with its tokenizer.
pub struct PackedEncoder {
    /// The tokenizer.
    pub tokenizer: SentenceTokenizer,
    /// The encoder.
    pub encoder: Box<BertEncoder>,
}

impl PackedEncoder {
    /// The embedding of one text.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let ids = self.tokenizer.encode(text)?;
        Ok(self.encoder.embed_ids(&ids)?)
    }
}

/// The model a packed file holds.
pub enum PackedModel {
    /// A sentence encoder.
    Encoder(PackedEncoder),
    /// A decoder.
    Decoder(DecoderSession),
}

/// A loaded packed model and how it was loaded.
pub struct LoadedModel {
    /// The model.
    pub model: PackedModel,
    /// The file (kept open: the weights read from its map).
    pub file: PackedFile,
    /// Every tensor the model took, in load order.
    pub placements: Vec<Placement>,
    /// The plan loaded, and why.
    pub plan: PlanSelection,
    /// Seconds from opening the file to a ready model.
    pub load_seconds: f64,
}

/// Opens the packed model at `path`: validates the whole header and layout,
/// then builds the model its architecture names, checking each tensor it
/// takes (and its checksum, if `options.verify`). `on_conversion` hears one
/// line per tensor converted because this device has no kernel for it.
pub fn open_packed(
    path: &Path,
    options: &LoadOptions,
    on_conversion: &mut dyn FnMut(&str),
) -> Result<LoadedModel> {
    let clock = Instant::now();
    let mut file = PackedFile::open(path)?;
    let design = decoder::design(file.architecture());
    let act = options.activations.unwrap_or_else(|| default_activations(design.is_some()));
    let options = &LoadOptions { activations: Some(act), ..options.clone() };
    let plan = choose_plan(&file, &options.plan, &options.registry, act)?;
    match &plan.built {
        Some(variants) => {
            let chosen = plan.chosen();
            file.select_variants(&chosen.name, variants.clone(), chosen.predicted_loss);
        }
        None => {
            file.select_plan(plan.index);
        }
    }
    let file = file;
    let invalid = |reason: String| RuntimeError::InvalidPacked { path: path.to_owned(), reason };
    let blob = |name: &str| -> Result<&[u8]> {
        if options.verify {
            file.verify_blob(name)?;
        }
        file.blob(name).ok_or_else(|| {
            FormatError::MissingBlob { path: path.to_owned(), blob: name.to_owned() }.into()
        })
    };
    let cache_file = cache_path(path);
    let cache = if options.fallback_cache {
        FallbackCache::open(&cache_file, options.verify).unwrap_or_else(|reason| {
            on_conversion(&format!("ignoring the fallback cache: {reason}"));
            None
        })
    } else {
        None
    };
    let (model, (placements, to_cache)) = match file.architecture() {
        BERT => {
            let packed: BertPacked = serde_json::from_value(file.config().clone())
                .map_err(|e| invalid(format!("header config: {e}")))?;
            let config_text = std::str::from_utf8(blob(CONFIG_BLOB)?)
                .map_err(|_| invalid(format!("blob {CONFIG_BLOB} is not UTF-8")))?;
            let config = BertConfig::from_json(&path.join(CONFIG_BLOB), config_text)?;
            if packed.max_seq_length == 0 || packed.max_seq_length > config.max_position_embeddings
            {
                return Err(invalid(format!(
                    "header config: max_seq_length {} is outside 1..={}",
                    packed.max_seq_length, config.max_position_embeddings
                )));
            }
            let tokenizer_origin = path.join(TOKENIZER_BLOB);
            let tokenizer = SentenceTokenizer::from_bytes(
                &tokenizer_origin,
                blob(TOKENIZER_BLOB)?,
                packed.max_seq_length,
            )?;
            tokenizer.check_vocab(&tokenizer_origin, config.vocab_size)?;
            let pooling = match packed.pooling {
                Pooling::Mean => PoolingMode::Mean,
                Pooling::Cls => PoolingMode::Cls,
            };
            let mut source =
                PackedSource::new(&file, options, on_conversion).with_cache(cache.as_ref());
            let encoder = BertEncoder::from_source(config, pooling, packed.normalize, &mut source)?
                .with_activations(act);
            (
                PackedModel::Encoder(PackedEncoder { tokenizer, encoder: Box::new(encoder) }),
                source.finish(),
            )
        }
        arch => {
            let design = design.ok_or_else(|| {
                let known: Vec<&str> =
                    std::iter::once(BERT).chain(decoder::designs().map(|d| d.name())).collect();
                invalid(format!(
                    "architecture `{arch}` is not one this build runs ({})",
                    known.join(", ")
                ))
            })?;
            let packed: DecoderPacked = serde_json::from_value(file.config().clone())
                .map_err(|e| invalid(format!("header config: {e}")))?;
            let config = design
                .read_header(&packed.model)
                .map_err(|r| invalid(format!("header config: {r}")))?;
            let tokenizer_origin = path.join(TOKENIZER_BLOB);
            let tokenizer = GgufTokenizer::from_json(
                &tokenizer_origin,
                blob(TOKENIZER_BLOB)?,
                packed.tokenizer,
            )?;
            tokenizer.check_vocab(&tokenizer_origin, config.vocab())?;
            let mut source =
                PackedSource::new(&file, options, on_conversion).with_cache(cache.as_ref());
            let mut model = config.build(&mut source, &mut |_, _| {})?;
            model.set_activations(act);
            model.prepare_products();
            (PackedModel::Decoder(DecoderSession { model, tokenizer }), source.finish())
        }
    };
    // Pages of other plans' variants mapped around those read: not needed.
    let _ = file.release_other_variants();
    let load_seconds = clock.elapsed().as_secs_f64();
    if let Some(contents) = to_cache {
        // The model is ready; a cache that cannot be written only costs the
        // next start its conversions.
        match contents.write(&cache_file) {
            Ok(bytes) => on_conversion(&format!(
                "wrote the fallback cache {} ({} tensors, {:.2} MiB)",
                cache_file.display(),
                contents.len(),
                bytes as f64 / (1 << 20) as f64
            )),
            Err(e) => on_conversion(&format!("could not write the fallback cache: {e}")),
        }
    }
    Ok(LoadedModel { model, file, placements, plan, load_seconds })
}
