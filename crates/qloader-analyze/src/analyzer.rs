//! The analysis: one calibration pass, block by block, that accumulates each
//! block's input second moments while it advances every sample through the
//! block, and at each block measures that block's tensors in every candidate
//! format: the weight error, the proxy `tr(ΔW H ΔWᵀ)` from the moments just
//! gathered, and (for the first `e2e_samples` samples) the end-to-end
//! divergence of the model output when only that tensor is quantized, run
//! from the block's cached input rather than from the embeddings. Embedding
//! tables are measured first, their proxy weighted by token frequency and
//! their end-to-end runs starting from the token ids (see `stage.rs`).
//!
//! With GPTQ, whose codes are fitted to `H` itself, the first samples are
//! held out of that `H` and the proxy and end-to-end runs score on them
//! (see [`held_out_samples`]).
//!
//! Memory stays near one block's moments and stored weights plus the
//! samples' hidden states: both are dropped when their block is done.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use qloader_format::{QuantMethod, WeightFormat};
use qloader_models::{ModelOutput, Observed, Probe, ProbedModel, TensorKind};

use crate::divergence::ReferenceDistributions;
use crate::error::{AnalyzeError, Result};
use crate::importance::ColumnSquares;
use crate::moments::SecondMoments;
use crate::parallel::{par_map_with_progress, Step};
use crate::stage::{
    dense, entry, measure_format, token_frequencies, weight_of, E2eStart, InputStats, Reference,
    StageRun,
};
use crate::table::{E2eMetric, FormatEntry, Measure, TensorEntry};
use qloader_quant::weights_from_mean_squares;

/// What to measure.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Candidate formats.
    pub formats: Vec<WeightFormat>,
    /// How each format's codes are chosen (the method that will pack them).
    pub method: QuantMethod,
    /// How many of the samples (from the first) the end-to-end measure runs;
    /// 0 skips it.
    pub e2e_samples: usize,
    /// The formats the end-to-end measure runs at (a subset of `formats`);
    /// the others get an estimate (see [`crate::estimate`]).
    pub e2e_formats: Vec<WeightFormat>,
}

/// A step of a long analysis, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Measurements (a tensor's weight error and proxy at one format, or one
    /// end-to-end run) done so far.
    pub done: usize,
    /// Measurements in all.
    pub total: usize,
}

/// The measured rows, ready for a [`crate::SensitivityTable`].
#[derive(Debug, Clone)]
pub struct Analysis {
    /// One entry per quantizable tensor, in model order.
    pub tensors: Vec<TensorEntry>,
    /// The measures every entry holds.
    pub measures: Vec<Measure>,
    /// How `e2e` compares outputs, if measured.
    pub e2e_metric: Option<E2eMetric>,
    /// The formats where `e2e` is measured.
    pub e2e_formats: Vec<WeightFormat>,
    /// Samples held out of the fit (see [`held_out_samples`]).
    pub held_out: usize,
    /// Seconds in the calibration pass, weight errors and proxies.
    pub proxy_seconds: f64,
    /// Seconds in end-to-end runs.
    pub e2e_seconds: f64,
}

/// Weight error only, no calibration data.
pub fn analyze_data_free<M: ProbedModel + ?Sized>(
    model: &M,
    formats: &[WeightFormat],
    progress: &mut dyn FnMut(Progress),
) -> Result<Analysis> {
    let start = Instant::now();
    let tensors = model.quantizable_tensors();
    let total = tensors.len() * formats.len();
    let jobs: Vec<(usize, WeightFormat)> =
        (0..tensors.len()).flat_map(|i| formats.iter().map(move |&f| (i, f))).collect();
    let measure = |(i, f): (usize, WeightFormat), step: Step<'_>| {
        let w = dense(weight_of(model, i)?);
        let entry = measure_format(&w, f, InputStats::None, QuantMethod::Rtn, false)
            .map_err(|error| AnalyzeError::Gptq { tensor: tensors[i].name.clone(), error })?
            .0;
        step();
        Ok(entry)
    };
    let mut done = 0;
    let mut tick = || {
        done += 1;
        progress(Progress { done, total });
    };
    let measured = par_map_with_progress(jobs.clone(), &measure, &mut tick)?;
    let mut per_tensor: Vec<BTreeMap<WeightFormat, FormatEntry>> =
        vec![BTreeMap::new(); tensors.len()];
    for ((i, f), e) in jobs.into_iter().zip(measured) {
        per_tensor[i].insert(f, e);
    }
    let rows = tensors.iter().zip(per_tensor).map(|(t, m)| entry(t, m)).collect();
    Ok(Analysis {
        tensors: rows,
        measures: vec![Measure::WeightMse],
        e2e_metric: None,
        e2e_formats: Vec::new(),
        held_out: 0,
        proxy_seconds: start.elapsed().as_secs_f64(),
        e2e_seconds: 0.0,
    })
}

/// One activation site's statistics over the calibration samples.
struct SiteStats {
    /// `H` over the samples codes are fitted to.
    h: Vec<f32>,
    /// The `imatrix` weights from the same samples.
    importance: Vec<f32>,
    /// `H` over the held-out samples, if any are held out.
    held_out: Option<Vec<f32>>,
}

/// How many of the first calibration samples are held out of the `H` that
/// codes are fitted to, and score them instead (the proxy's `H` and the
/// end-to-end runs). GPTQ minimises `tr(ΔW H ΔWᵀ)` on its own `H`, so the
/// same `H` would score its codes in-sample: the error it reports shrinks
/// with how closely the codes fit those rows (most for low bits and wide
/// inputs), and the planner would trust GPTQ's low-bit formats more than
/// text it has not seen bears out. Held out: a quarter of the samples, and
/// at least the end-to-end ones. Other methods fit nothing to `H` beyond
/// its diagonal and hold nothing out.
pub(crate) fn held_out_samples(method: QuantMethod, samples: usize, e2e: usize) -> usize {
    if method != QuantMethod::Gptq || samples < 2 {
        return 0;
    }
    e2e.max(samples / 4).min(samples - 1)
}

/// Measures every quantizable tensor of `model` in every format of `opts`
/// over the calibration `samples` (token ids, one sequence each).
///
/// At each block: one pass of every sample through the block gathers the
/// input moments; then every (tensor, format) pair is quantized and scored
/// in parallel; then, in parallel again, the end-to-end runs go from the
/// block's cached input to the model output. Each parallel job runs its
/// products on one core (see `qloader_kernels::gemm`), so the jobs, not the
/// products, share the cores.
pub fn analyze<M: ProbedModel + ?Sized>(
    model: &M,
    samples: &[Vec<u32>],
    opts: &AnalyzeOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Analysis> {
    if samples.is_empty() || samples.iter().any(Vec::is_empty) {
        return Err(AnalyzeError::Calibration("no calibration samples, or an empty one".into()));
    }
    if opts.formats.is_empty() {
        return Err(AnalyzeError::Options("no formats to analyze".into()));
    }
    if let Some(f) = opts.e2e_formats.iter().find(|f| !opts.formats.contains(f)) {
        return Err(AnalyzeError::Options(format!(
            "end-to-end format {} is not one of the analyzed formats",
            f.name()
        )));
    }
    let layers = model.layers();
    let tensors = model.quantizable_tensors();
    let e2e = if opts.e2e_formats.is_empty() { 0 } else { opts.e2e_samples.min(samples.len()) };
    let e2e_formats: Vec<WeightFormat> =
        if e2e == 0 { Vec::new() } else { opts.e2e_formats.clone() };
    let holdout = held_out_samples(opts.method, samples.len(), e2e);
    let lengths: Vec<usize> = samples.iter().map(Vec::len).collect();
    let total = tensors.len() * (opts.formats.len() + e2e_formats.len());
    // Stage of a tensor: its block, or `layers` for what follows the blocks;
    // embedding tables go before the blocks.
    let mut by_stage: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut embeddings = Vec::new();
    // A head tied to the embeddings is also the embedding look-up: its
    // end-to-end runs start from the token ids, like an embedding table's.
    let tied = model.tied_embedding();
    for (i, t) in tensors.iter().enumerate() {
        if t.kind == TensorKind::Embedding {
            embeddings.push(i);
        } else {
            by_stage.entry(t.layer.unwrap_or(layers).min(layers)).or_default().push(i);
        }
    }

    let clock = Instant::now();
    let mut hidden: Vec<Vec<f32>> = samples
        .iter()
        .map(|ids| model.block_input(ids, &mut Probe::none()))
        .collect::<Result<_, _>>()?;
    let reference = if e2e == 0 {
        None
    } else {
        let outputs = hidden[..e2e]
            .iter()
            .zip(&lengths)
            .map(|(h, &n)| model.output_from(h.clone(), n, 0, &mut Probe::none()))
            .collect::<Result<Vec<_>, _>>()?;
        Some(match model.output_kind() {
            ModelOutput::Logits { vocab } => Reference::Logits(
                outputs.iter().map(|o| ReferenceDistributions::from_logits(o, vocab)).collect(),
            ),
            ModelOutput::Embedding { .. } => Reference::Embeddings(outputs),
        })
    };
    let reference_time = clock.elapsed();

    let mut rows: Vec<Option<TensorEntry>> = vec![None; tensors.len()];
    let mut done = 0;
    let mut tick = || {
        done += 1;
        progress(Progress { done, total });
    };
    let mut stage_run = StageRun {
        model,
        tensors: &tensors,
        formats: &opts.formats,
        method: opts.method,
        e2e_formats: &e2e_formats,
        reference: reference.as_ref(),
        lengths: &lengths[..e2e],
        tick: &mut tick,
        proxy_time: Duration::ZERO,
        e2e_time: Duration::ZERO,
    };

    // Embedding tables first: their proxy weighs each row by how often its
    // token occurs; their end-to-end runs start from the token ids.
    if !embeddings.is_empty() {
        let clock = Instant::now();
        let freqs: Vec<Vec<f32>> =
            embeddings.iter().map(|&i| token_frequencies(samples, tensors[i].rows)).collect();
        stage_run.proxy_time += clock.elapsed();
        let stats = |m: usize| InputStats::RowFrequencies(&freqs[m]);
        let measured = stage_run.measure(&embeddings, &stats, E2eStart::Ids(&samples[..e2e]), 0)?;
        for (i, entry) in measured {
            rows[i] = Some(entry);
        }
    }

    for stage in 0..=layers {
        let clock = Instant::now();
        let members = by_stage.get(&stage).map(Vec::as_slice).unwrap_or(&[]);
        let sites: BTreeSet<(usize, usize)> =
            members.iter().map(|&i| (tensors[i].site, tensors[i].cols)).collect();
        let mut moments = SecondMoments::new(sites.iter().copied());
        let mut held_out =
            SecondMoments::new(sites.iter().copied().filter(|_| holdout > 0).collect::<Vec<_>>());
        let mut squares = ColumnSquares::default();
        let e2e_inputs: Vec<Vec<f32>> =
            if members.is_empty() { Vec::new() } else { hidden[..e2e].to_vec() };
        {
            let fitting = Cell::new(true);
            let mut observe = |what: Observed, x: &[f32], n: usize| {
                if let Observed::LinearInput(site) = what {
                    if !fitting.get() {
                        held_out.add(site, x, n);
                    } else if moments.tracks(site) {
                        moments.add(site, x, n);
                        squares.add(site, x, n);
                    }
                }
            };
            let mut probe = Probe::observing(&mut observe);
            for (k, (h, &n)) in hidden.iter_mut().zip(&lengths).enumerate() {
                fitting.set(k >= holdout);
                if stage < layers {
                    model.run_block(stage, h, n, &mut probe)?;
                } else if !members.is_empty() {
                    model.output(h.clone(), n, &mut probe)?;
                }
            }
        }
        stage_run.proxy_time += clock.elapsed();
        if members.is_empty() {
            continue;
        }
        // Per site: H, the imatrix weights from the same rows summed as
        // `column_importance` sums them (so `pack` gets the same vectors),
        // and the held-out H if there is one.
        let h_at: BTreeMap<usize, SiteStats> = sites
            .iter()
            .filter_map(|&(site, _)| {
                let importance = weights_from_mean_squares(&squares.mean(site)?);
                let h = moments.mean(site)?;
                Some((site, SiteStats { h, importance, held_out: held_out.mean(site) }))
            })
            .collect();
        drop((moments, held_out));
        let (from_ids, from_hidden): (Vec<usize>, Vec<usize>) =
            members.iter().partition(|&&i| Some(i) == tied);
        let stats_of = |list: &[usize], m: usize| match h_at.get(&tensors[list[m]].site) {
            Some(s) => InputStats::SecondMoment {
                h: &s.h,
                importance: &s.importance,
                proxy_h: s.held_out.as_deref().unwrap_or(&s.h),
            },
            None => InputStats::None,
        };
        let mut measured = stage_run.measure(
            &from_hidden,
            &|m| stats_of(&from_hidden, m),
            E2eStart::Hidden(&e2e_inputs),
            stage,
        )?;
        if !from_ids.is_empty() {
            measured.extend(stage_run.measure(
                &from_ids,
                &|m| stats_of(&from_ids, m),
                E2eStart::Ids(&samples[..e2e]),
                0,
            )?);
        }
        for (i, entry) in measured {
            rows[i] = Some(entry);
        }
    }
    let (proxy_time, e2e_time) = (stage_run.proxy_time, reference_time + stage_run.e2e_time);

    let mut tensors: Vec<TensorEntry> = rows.into_iter().flatten().collect();
    let mut measures = vec![Measure::WeightMse, Measure::Proxy];
    if reference.is_some() {
        measures.extend([Measure::E2e, Measure::E2eEstimate]);
        crate::estimate::fill_estimates(&mut tensors);
    }
    Ok(Analysis {
        tensors,
        measures,
        e2e_metric: reference.as_ref().map(Reference::metric),
        e2e_formats,
        held_out: holdout,
        proxy_seconds: proxy_time.as_secs_f64(),
        e2e_seconds: e2e_time.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gptq_holds_samples_out() {
        assert_eq!(held_out_samples(QuantMethod::Gptq, 64, 1), 16);
        assert_eq!(held_out_samples(QuantMethod::Gptq, 16, 8), 8);
        // At least one sample is left to fit to.
        assert_eq!(held_out_samples(QuantMethod::Gptq, 4, 4), 3);
        assert_eq!(held_out_samples(QuantMethod::Gptq, 1, 1), 0);
        assert_eq!(held_out_samples(QuantMethod::Imatrix, 64, 1), 0);
        assert_eq!(held_out_samples(QuantMethod::Rtn, 64, 1), 0);
    }
}
