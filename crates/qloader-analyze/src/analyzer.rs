//! The analysis: one calibration pass, block by block, that accumulates each
//! block's input second moments while it advances every sample through the
//! block, and at each block measures that block's tensors in every candidate
//! format: the weight error, the proxy `tr(ΔW H ΔWᵀ)` from the moments just
//! gathered, and (for the first `e2e_samples` samples) the end-to-end
//! divergence of the model output when only that tensor is quantized, run
//! from the block's cached input rather than from the embeddings.
//!
//! Memory stays near one block's moments and stored weights plus the
//! samples' hidden states: both are dropped when their block is done.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use qloader_format::WeightFormat;
use qloader_kernels::DenseMatrix;
use qloader_models::{ModelOutput, Observed, Probe, ProbedModel, QuantizableTensor, TensorKind};
use qloader_quant::LinearWeight;
use rayon::prelude::*;

use crate::divergence::{one_minus_cosine, ReferenceDistributions};
use crate::error::{AnalyzeError, Result};
use crate::moments::SecondMoments;
use crate::table::{E2eMetric, FormatEntry, Measure, TensorEntry};
use crate::tensor_error::{difference, lookup_proxy, mean_square, proxy};

/// What to measure.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Candidate formats.
    pub formats: Vec<WeightFormat>,
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
    /// Seconds in the calibration pass, weight errors and proxies.
    pub proxy_seconds: f64,
    /// Seconds in end-to-end runs.
    pub e2e_seconds: f64,
}

/// The tensor's weight as `f32` (borrowed when it is stored so).
fn dense(weight: &LinearWeight) -> Cow<'_, DenseMatrix> {
    match weight {
        LinearWeight::F32(w) => Cow::Borrowed(w),
        other => Cow::Owned(other.dequantize()),
    }
}

fn weight_of<M: ProbedModel + ?Sized>(model: &M, index: usize) -> Result<&LinearWeight> {
    model.tensor_weight(index).ok_or_else(|| {
        AnalyzeError::Options(format!("the model has no quantizable tensor number {index}"))
    })
}

fn entry(t: &QuantizableTensor, formats: BTreeMap<String, FormatEntry>) -> TensorEntry {
    TensorEntry {
        name: t.name.clone(),
        shape: [t.rows, t.cols],
        kind: t.kind.name().to_owned(),
        layer: t.layer,
        formats,
    }
}

/// What the calibration data says about a tensor's input, for its proxy.
#[derive(Clone, Copy)]
enum InputStats<'a> {
    /// No calibration data.
    None,
    /// A linear layer's `H = E[x xᵀ]`.
    SecondMoment(&'a [f32]),
    /// An embedding table's row (token) frequencies: its "input" is one-hot.
    RowFrequencies(&'a [f32]),
}

/// Stores `w` in `format` and measures it: bytes, weight MSE and, given
/// input statistics, the proxy. Returns the entry (without `e2e`) and the
/// stored weight.
fn measure_format(
    w: &DenseMatrix,
    format: WeightFormat,
    stats: InputStats<'_>,
) -> (FormatEntry, LinearWeight) {
    let q = LinearWeight::quantize(w.clone(), format);
    let delta = difference(w.data(), q.dequantize().data());
    let proxy = match stats {
        InputStats::None => None,
        InputStats::SecondMoment(h) => Some(proxy(&delta, w.rows(), w.cols(), h)),
        InputStats::RowFrequencies(f) => Some(lookup_proxy(&delta, w.cols(), f)),
    };
    let entry = FormatEntry {
        bytes: q.storage_bytes() as u64,
        weight_mse: mean_square(&delta),
        proxy,
        e2e: None,
        e2e_estimate: None,
    };
    (entry, q)
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
    let measure = |(i, f): (usize, WeightFormat)| -> Result<FormatEntry> {
        Ok(measure_format(&dense(weight_of(model, i)?), f, InputStats::None).0)
    };
    let mut done = 0;
    let mut tick = || {
        done += 1;
        progress(Progress { done, total });
    };
    let measured = par_map_with_progress(jobs.clone(), &measure, &mut tick)?;
    let mut per_tensor: Vec<BTreeMap<String, FormatEntry>> = vec![BTreeMap::new(); tensors.len()];
    for ((i, f), e) in jobs.into_iter().zip(measured) {
        per_tensor[i].insert(f.name(), e);
    }
    let rows = tensors.iter().zip(per_tensor).map(|(t, m)| entry(t, m)).collect();
    Ok(Analysis {
        tensors: rows,
        measures: vec![Measure::WeightMse],
        e2e_metric: None,
        e2e_formats: Vec::new(),
        proxy_seconds: start.elapsed().as_secs_f64(),
        e2e_seconds: 0.0,
    })
}

/// The reference outputs of the end-to-end samples.
enum Reference {
    Logits(Vec<ReferenceDistributions>),
    Embeddings(Vec<Vec<f32>>),
}

impl Reference {
    fn metric(&self) -> E2eMetric {
        match self {
            Reference::Logits(_) => E2eMetric::Kl,
            Reference::Embeddings(_) => E2eMetric::OneMinusCosine,
        }
    }
}

/// Runs the end-to-end measure of one substituted weight: mean KL per
/// position, or mean `1 − cos` per sentence.
fn e2e_divergence<M: ProbedModel + ?Sized>(
    model: &M,
    reference: &Reference,
    inputs: &[Vec<f32>],
    lengths: &[usize],
    from: usize,
    tensor: usize,
    weight: &LinearWeight,
) -> Result<f64> {
    let mut sum = 0.0;
    let mut count = 0usize;
    for (s, (h, &n)) in inputs.iter().zip(lengths).enumerate() {
        let mut probe = Probe::substituting(tensor, weight);
        let out = model.output_from(h.clone(), n, from, &mut probe)?;
        match reference {
            Reference::Logits(refs) => {
                sum += refs[s].kl_sum(&out);
                count += refs[s].rows();
            }
            Reference::Embeddings(refs) => {
                sum += one_minus_cosine(&refs[s], &out);
                count += 1;
            }
        }
    }
    Ok(if count == 0 { 0.0 } else { sum / count as f64 })
}

/// Runs `work` on every job across the rayon pool while the calling thread
/// reports each finished job to `tick` (so progress reaches a terminal as it
/// happens). Results keep the jobs' order; the first error wins.
fn par_map_with_progress<J: Send, T: Send>(
    jobs: Vec<J>,
    work: &(dyn Fn(J) -> Result<T> + Sync),
    tick: &mut dyn FnMut(),
) -> Result<Vec<T>> {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let workers = scope.spawn(move || {
            jobs.into_par_iter()
                .map(|job| {
                    let result = work(job);
                    let _ = done.send(());
                    result
                })
                .collect::<Result<Vec<T>>>()
        });
        for () in finished {
            tick();
        }
        workers.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Where a stage's end-to-end runs start.
#[derive(Clone, Copy)]
enum E2eStart<'a> {
    /// From the stage's cached input hidden states.
    Hidden(&'a [Vec<f32>]),
    /// From the token ids (the embedding lookup is what is perturbed).
    Ids(&'a [Vec<u32>]),
}

/// `count(token) / tokens` over the samples, for a vocabulary of `vocab`
/// (ids beyond it are not counted).
fn token_frequencies(samples: &[Vec<u32>], vocab: usize) -> Vec<f32> {
    let mut counts = vec![0u64; vocab];
    let mut total = 0u64;
    for &id in samples.iter().flatten() {
        if let Some(c) = counts.get_mut(id as usize) {
            *c += 1;
            total += 1;
        }
    }
    counts.iter().map(|&c| c as f32 / total.max(1) as f32).collect()
}

/// Measures the tensors of one stage: every (tensor, format) pair's
/// weight error and proxy in parallel, then the end-to-end runs at the
/// end-to-end formats in parallel, ticking progress as each finishes.
struct StageRun<'a, M: ProbedModel + ?Sized> {
    model: &'a M,
    tensors: &'a [QuantizableTensor],
    formats: &'a [WeightFormat],
    e2e_formats: &'a [WeightFormat],
    reference: Option<&'a Reference>,
    /// Lengths of the end-to-end samples.
    lengths: &'a [usize],
    tick: &'a mut dyn FnMut(),
    proxy_time: Duration,
    e2e_time: Duration,
}

impl<M: ProbedModel + ?Sized> StageRun<'_, M> {
    /// The rows of `members` (indices into the tensors); `stats(m)` gives
    /// member `m`'s input statistics; end-to-end runs go from `start`
    /// through blocks `from..`.
    fn measure<'s>(
        &mut self,
        members: &[usize],
        stats: &(dyn Fn(usize) -> InputStats<'s> + Sync),
        start: E2eStart<'_>,
        from: usize,
    ) -> Result<Vec<(usize, TensorEntry)>> {
        let clock = Instant::now();
        let model = self.model;
        let weights: Vec<Cow<'_, DenseMatrix>> =
            members.iter().map(|&i| weight_of(model, i).map(dense)).collect::<Result<_>>()?;
        let jobs: Vec<(usize, WeightFormat)> =
            (0..members.len()).flat_map(|m| self.formats.iter().map(move |&f| (m, f))).collect();
        let measure = |(m, f): (usize, WeightFormat)| -> Result<(FormatEntry, LinearWeight)> {
            Ok(measure_format(&weights[m], f, stats(m)))
        };
        let measured = par_map_with_progress(jobs.clone(), &measure, self.tick)?;
        self.proxy_time += clock.elapsed();

        let clock = Instant::now();
        let runs: Vec<usize> =
            (0..jobs.len()).filter(|&j| self.e2e_formats.contains(&jobs[j].1)).collect();
        let lengths = self.lengths;
        let divergences = match self.reference {
            Some(reference) => {
                let run = |j: usize| -> Result<(usize, f64)> {
                    let fake = LinearWeight::F32(measured[j].1.dequantize());
                    let tensor = members[jobs[j].0];
                    let from_ids;
                    let inputs = match start {
                        E2eStart::Hidden(h) => h,
                        E2eStart::Ids(ids) => {
                            from_ids = ids
                                .iter()
                                .map(|ids| {
                                    model.block_input(ids, &mut Probe::substituting(tensor, &fake))
                                })
                                .collect::<Result<Vec<_>, _>>()?;
                            &from_ids[..]
                        }
                    };
                    let d = e2e_divergence(model, reference, inputs, lengths, from, tensor, &fake)?;
                    Ok((j, d))
                };
                par_map_with_progress(runs, &run, self.tick)?
            }
            None => Vec::new(),
        };
        self.e2e_time += clock.elapsed();

        let mut entries: Vec<FormatEntry> = measured.into_iter().map(|(e, _)| e).collect();
        for (j, d) in divergences {
            entries[j].e2e = Some(d);
        }
        Ok(members
            .iter()
            .enumerate()
            .map(|(m, &i)| {
                let per_format = jobs
                    .iter()
                    .zip(&entries)
                    .filter(|((owner, _), _)| *owner == m)
                    .map(|((_, f), e)| (f.name(), e.clone()))
                    .collect();
                (i, entry(&self.tensors[i], per_format))
            })
            .collect())
    }
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
    let lengths: Vec<usize> = samples.iter().map(Vec::len).collect();
    let total = tensors.len() * (opts.formats.len() + e2e_formats.len());
    // Stage of a tensor: its block, or `layers` for what follows the blocks;
    // embedding tables go before the blocks.
    let mut by_stage: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut embeddings = Vec::new();
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
        let e2e_inputs: Vec<Vec<f32>> =
            if members.is_empty() { Vec::new() } else { hidden[..e2e].to_vec() };
        {
            let mut observe = |what: Observed, x: &[f32], n: usize| {
                if let Observed::LinearInput(site) = what {
                    moments.add(site, x, n);
                }
            };
            let mut probe = Probe::observing(&mut observe);
            for (h, &n) in hidden.iter_mut().zip(&lengths) {
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
        let h_at: BTreeMap<usize, Vec<f32>> =
            sites.iter().filter_map(|&(site, _)| Some((site, moments.mean(site)?))).collect();
        drop(moments);
        let stats = |m: usize| match h_at.get(&tensors[members[m]].site) {
            Some(h) => InputStats::SecondMoment(h),
            None => InputStats::None,
        };
        let measured = stage_run.measure(members, &stats, E2eStart::Hidden(&e2e_inputs), stage)?;
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
        proxy_seconds: proxy_time.as_secs_f64(),
        e2e_seconds: e2e_time.as_secs_f64(),
    })
}
