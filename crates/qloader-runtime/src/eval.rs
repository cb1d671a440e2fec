//! Quantized against full precision: embeds a sentence set with the `f32`
//! model and with each requested format, and reports the cosine similarity of
//! each sentence's two embeddings together with what each format stores.
//! The quantized weights are rounded to nearest as the model loads, or given
//! already quantized by another method (see [`EvalCandidate`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use qloader_format::{ActivationFormat, WeightFormat};
use qloader_models::bert::ModelDir;
use serde::Serialize;

use crate::error::{Result, RuntimeError};
use crate::packed::Quantization;
use crate::session::EncoderSession;

/// One format's result.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRow {
    /// The weight format of every linear layer (`·a8` when its products use
    /// int8 activations), followed by the method in parentheses when it is
    /// not round-to-nearest, e.g. `int4 (gptq)`.
    pub format: String,
    /// How the codes were chosen: `rtn` (round to nearest), `imatrix` or
    /// `gptq`.
    pub method: String,
    /// Bytes of the linear weights in this format (scales included).
    pub linear_bytes: usize,
    /// Bits per linear weight, scales included.
    pub bits_per_weight: f64,
    /// Bytes of every tensor of the model (embeddings, norms and biases in f32).
    pub total_bytes: usize,
    /// Mean cosine similarity to the f32 embeddings.
    pub mean_cosine: f64,
    /// Lowest cosine similarity over the set.
    pub min_cosine: f64,
    /// Seconds spent embedding the set.
    pub embed_seconds: f64,
}

/// The evaluation of several formats on one sentence set.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The model directory.
    pub model: String,
    /// Number of sentences embedded.
    pub sentences: usize,
    /// One row per format, in the order asked.
    pub rows: Vec<EvalRow>,
}

/// One quantized model to evaluate: every linear weight in `format`.
#[derive(Debug, Clone)]
pub struct EvalCandidate {
    /// The format of the linear weights.
    pub format: WeightFormat,
    /// How their codes are made (its replacements by tensor name; the
    /// linear weights not named there are quantized as the model loads,
    /// their grids weighted by its importance vectors if it has them).
    pub quantization: Quantization,
}

impl EvalCandidate {
    /// Every linear weight rounded to nearest in `format`.
    pub fn round_to_nearest(format: WeightFormat) -> Self {
        Self { format, quantization: Quantization::default() }
    }
}

/// Evaluates each of `formats` (with activations in `act`, weights rounded
/// to nearest) against f32 on `sentences`. `progress` is told the name of
/// each format as its evaluation starts.
pub fn evaluate<S: AsRef<str>>(
    model: &Path,
    formats: &[WeightFormat],
    act: ActivationFormat,
    sentences: &[S],
    progress: &mut dyn FnMut(WeightFormat),
) -> Result<EvalReport> {
    let candidates = formats.iter().map(|&f| EvalCandidate::round_to_nearest(f)).collect();
    evaluate_candidates(model, candidates, act, sentences, progress)
}

/// Evaluates each candidate (with activations in `act`) against f32 on
/// `sentences`. `progress` is told the format of each candidate as its
/// evaluation starts.
pub fn evaluate_candidates<S: AsRef<str>>(
    model: &Path,
    candidates: Vec<EvalCandidate>,
    act: ActivationFormat,
    sentences: &[S],
    progress: &mut dyn FnMut(WeightFormat),
) -> Result<EvalReport> {
    if candidates.is_empty() {
        return Err(RuntimeError::EmptyEvaluation("no formats given"));
    }
    if sentences.is_empty() {
        return Err(RuntimeError::EmptyEvaluation("no sentences given"));
    }
    let dir = ModelDir::open(model)?;
    progress(WeightFormat::F32);
    let reference =
        EncoderSession::from_dir(dir.clone(), WeightFormat::F32, ActivationFormat::F32)?;
    let start = Instant::now();
    let reference_embeddings = reference.embed_all(sentences)?;
    let reference_seconds = start.elapsed().as_secs_f64();

    let linear_names: BTreeSet<String> =
        qloader_models::bert::tensor_names(&dir.config).into_iter().collect();
    let mut rows = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let format = candidate.format;
        let a8 = act == ActivationFormat::Int8 && format.family().takes_int8_activations();
        let method = candidate.quantization.method.name().to_owned();
        let (session, embeddings, seconds) = if format == WeightFormat::F32 {
            (None, reference_embeddings.clone(), reference_seconds)
        } else {
            progress(format);
            let s = EncoderSession::quantized(dir.clone(), format, candidate.quantization, act)?;
            let start = Instant::now();
            let e = s.embed_all(sentences)?;
            let seconds = start.elapsed().as_secs_f64();
            (Some(s), e, seconds)
        };
        let summary = session.as_ref().unwrap_or(&reference).summary();
        let linear = summary.only(|name| linear_names.contains(name));
        let cosines: Vec<f64> =
            reference_embeddings.iter().zip(&embeddings).map(|(a, b)| cosine(a, b)).collect();
        let name = if a8 { format!("{format}·a8") } else { format.name() };
        rows.push(EvalRow {
            format: if method == "rtn" { name } else { format!("{name} ({method})") },
            method,
            linear_bytes: linear.quantized_bytes(),
            bits_per_weight: linear.quantized_bits_per_weight(),
            total_bytes: summary.total_bytes(),
            mean_cosine: cosines.iter().sum::<f64>() / cosines.len() as f64,
            min_cosine: cosines.iter().copied().fold(f64::INFINITY, f64::min),
            embed_seconds: seconds,
        });
    }
    Ok(EvalReport { model: model.display().to_string(), sentences: sentences.len(), rows })
}

/// Cosine similarity, accumulated in f64.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_basics() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-12);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}
