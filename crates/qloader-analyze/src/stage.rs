//! One stage of the analysis: a group of tensors measured together (a
//! block's, the head's, or the embedding tables') — every (tensor, format)
//! pair quantized and scored, then the end-to-end runs at the end-to-end
//! formats, each set spread over the cores — and the measures behind it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use qloader_format::{QuantMethod, WeightFormat};
use qloader_kernels::DenseMatrix;
use qloader_models::{Probe, ProbedModel, QuantizableTensor};
use qloader_quant::gptq::{self, GptqError, GptqOptions};
use qloader_quant::LinearWeight;

use crate::divergence::{one_minus_cosine, ReferenceDistributions};
use crate::error::{AnalyzeError, Result};
use crate::parallel::{par_map_with_progress, Step};
use crate::table::{E2eMetric, FormatEntry, TensorEntry};
use crate::tensor_error::{difference, lookup_proxy, mean_square, proxy, subtract_from};

/// The tensor's weight as `f32` (borrowed when it is stored so).
pub(crate) fn dense(weight: &LinearWeight) -> Cow<'_, DenseMatrix> {
    match weight {
        LinearWeight::F32(w) => Cow::Borrowed(w),
        other => Cow::Owned(other.dequantize()),
    }
}

pub(crate) fn weight_of<M: ProbedModel + ?Sized>(model: &M, index: usize) -> Result<&LinearWeight> {
    model.tensor_weight(index).ok_or_else(|| {
        AnalyzeError::Options(format!("the model has no quantizable tensor number {index}"))
    })
}

pub(crate) fn entry(
    t: &QuantizableTensor,
    formats: BTreeMap<WeightFormat, FormatEntry>,
) -> TensorEntry {
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
pub(crate) enum InputStats<'a> {
    /// No calibration data.
    None,
    /// A linear layer's input statistics.
    SecondMoment {
        /// `H = E[x xᵀ]`, `cols × cols`, that codes are fitted to (GPTQ).
        h: &'a [f32],
        /// The `imatrix` search weights (see [`crate::importance`]).
        importance: &'a [f32],
        /// `H` over the rows the proxy scores: `h` itself, or one gathered
        /// from held-out samples when the codes are fitted to `h` (see
        /// [`crate::analyzer::held_out_samples`]).
        proxy_h: &'a [f32],
    },
    /// An embedding table's row (token) frequencies: its "input" is one-hot.
    RowFrequencies(&'a [f32]),
}

/// `w` stored in `format` as `method` chooses codes: round to nearest
/// without input statistics (and for embedding tables); with them, the grid
/// search weighted by the importance vector (`imatrix`), or GPTQ against
/// `H` where it applies (`gptq`; elsewhere weighted as for `imatrix`).
pub(crate) fn store(
    w: &DenseMatrix,
    format: WeightFormat,
    stats: InputStats<'_>,
    method: QuantMethod,
) -> std::result::Result<LinearWeight, GptqError> {
    let InputStats::SecondMoment { h, importance, .. } = stats else {
        return Ok(LinearWeight::quantize_borrowed(w, format));
    };
    Ok(match method {
        QuantMethod::Rtn => LinearWeight::quantize_borrowed(w, format),
        QuantMethod::Gptq if gptq::supports(format) => {
            gptq::gptq(w, h, format, &GptqOptions::default())?
        }
        QuantMethod::Imatrix | QuantMethod::Gptq => {
            LinearWeight::quantize_weighted(w, format, Some(importance))
        }
    })
}

/// Stores `w` in `format` (codes chosen by `method`, see [`store`]) and
/// measures it: bytes, weight MSE and, given input statistics, the proxy.
/// Returns the entry (without `e2e`) and, if `keep` asks, the stored weight
/// as `f32` (what an end-to-end run multiplies by).
pub(crate) fn measure_format(
    w: &DenseMatrix,
    format: WeightFormat,
    stats: InputStats<'_>,
    method: QuantMethod,
    keep: bool,
) -> std::result::Result<(FormatEntry, Option<DenseMatrix>), GptqError> {
    let q = store(w, format, stats, method)?;
    let bytes = q.storage_bytes() as u64;
    let mut values = vec![0.0f32; w.rows() * w.cols()];
    q.dequantize_into(&mut values);
    drop(q);
    let (delta, stored) = if keep {
        let delta = difference(w.data(), &values);
        (delta, DenseMatrix::new(w.rows(), w.cols(), values))
    } else {
        subtract_from(w.data(), &mut values);
        (values, None)
    };
    let proxy = match stats {
        InputStats::None => None,
        InputStats::SecondMoment { proxy_h, .. } => {
            Some(proxy(&delta, w.rows(), w.cols(), proxy_h))
        }
        InputStats::RowFrequencies(f) => Some(lookup_proxy(&delta, w.cols(), f)),
    };
    let entry = FormatEntry {
        bytes,
        weight_mse: mean_square(&delta),
        proxy,
        e2e: None,
        e2e_estimate: None,
    };
    Ok((entry, stored))
}

/// The reference outputs of the end-to-end samples.
pub(crate) enum Reference {
    Logits(Vec<ReferenceDistributions>),
    Embeddings(Vec<Vec<f32>>),
}

impl Reference {
    pub(crate) fn metric(&self) -> E2eMetric {
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

/// Where a stage's end-to-end runs start.
#[derive(Clone, Copy)]
pub(crate) enum E2eStart<'a> {
    /// From the stage's cached input hidden states.
    Hidden(&'a [Vec<f32>]),
    /// From the token ids (the embedding lookup is what is perturbed).
    Ids(&'a [Vec<u32>]),
}

/// `count(token) / tokens` over the samples, for a vocabulary of `vocab`
/// (ids beyond it are not counted).
pub(crate) fn token_frequencies(samples: &[Vec<u32>], vocab: usize) -> Vec<f32> {
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
/// weight error and proxy, and at the end-to-end formats the end-to-end run
/// with the weight just stored, all as one queue over the cores (longest
/// jobs first), ticking progress as each measurement finishes.
pub(crate) struct StageRun<'a, M: ProbedModel + ?Sized> {
    pub(crate) model: &'a M,
    pub(crate) tensors: &'a [QuantizableTensor],
    pub(crate) formats: &'a [WeightFormat],
    pub(crate) method: QuantMethod,
    pub(crate) e2e_formats: &'a [WeightFormat],
    pub(crate) reference: Option<&'a Reference>,
    /// Lengths of the end-to-end samples.
    pub(crate) lengths: &'a [usize],
    pub(crate) tick: &'a mut dyn FnMut(),
    pub(crate) proxy_time: Duration,
    pub(crate) e2e_time: Duration,
}

/// What one job of a stage yields: the entry, and the seconds it spent
/// storing and scoring the weight and in its end-to-end run.
type JobResult = (FormatEntry, Duration, Duration);

impl<M: ProbedModel + ?Sized> StageRun<'_, M> {
    /// The rows of `members` (indices into the tensors); `stats(m)` gives
    /// member `m`'s input statistics; end-to-end runs go from `start`
    /// through blocks `from..`.
    pub(crate) fn measure<'s>(
        &mut self,
        members: &[usize],
        stats: &(dyn Fn(usize) -> InputStats<'s> + Sync),
        start: E2eStart<'_>,
        from: usize,
    ) -> Result<Vec<(usize, TensorEntry)>> {
        let clock = Instant::now();
        let model = self.model;
        let self_tensors = self.tensors;
        let weights: Vec<Cow<'_, DenseMatrix>> =
            members.iter().map(|&i| weight_of(model, i).map(dense)).collect::<Result<_>>()?;
        let (reference, lengths, method) = (self.reference, self.lengths, self.method);
        let e2e_formats = if reference.is_some() { self.e2e_formats } else { &[] };
        let jobs: Vec<(usize, WeightFormat)> =
            (0..members.len()).flat_map(|m| self.formats.iter().map(move |&f| (m, f))).collect();
        // Longest first: end-to-end runs, then by weights times the cost of
        // the proxy's product per weight (its width).
        let cost = |&(m, f): &(usize, WeightFormat)| {
            let w = &weights[m];
            let e2e = e2e_formats.contains(&f);
            (e2e, w.rows() * w.cols() * (w.cols() + 64))
        };
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_key(|&j| std::cmp::Reverse(cost(&jobs[j])));

        let run = |j: usize, step: Step<'_>| -> Result<JobResult> {
            let clock = Instant::now();
            let (m, f) = jobs[j];
            let keep = e2e_formats.contains(&f);
            let (mut entry, stored) =
                measure_format(&weights[m], f, stats(m), method, keep).map_err(|error| {
                    AnalyzeError::Gptq { tensor: self_tensors[members[m]].name.clone(), error }
                })?;
            step();
            let measured = clock.elapsed();
            let (Some(stored), Some(reference)) = (stored, reference) else {
                return Ok((entry, measured, Duration::ZERO));
            };
            let clock = Instant::now();
            let fake = LinearWeight::F32(stored);
            let tensor = members[m];
            let from_ids;
            let inputs = match start {
                E2eStart::Hidden(h) => h,
                E2eStart::Ids(ids) => {
                    from_ids = ids
                        .iter()
                        .map(|ids| model.block_input(ids, &mut Probe::substituting(tensor, &fake)))
                        .collect::<Result<Vec<_>, _>>()?;
                    &from_ids[..]
                }
            };
            entry.e2e =
                Some(e2e_divergence(model, reference, inputs, lengths, from, tensor, &fake)?);
            step();
            Ok((entry, measured, clock.elapsed()))
        };
        let done = par_map_with_progress(order.clone(), &run, self.tick)?;

        // The stage's wall time, split in proportion to the time the jobs
        // spent on each measure.
        let (measuring, e2e) = done
            .iter()
            .fold((0.0, 0.0), |(a, b), (_, m, e)| (a + m.as_secs_f64(), b + e.as_secs_f64()));
        let wall = clock.elapsed();
        let e2e_wall =
            if e2e > 0.0 { wall.mul_f64(e2e / (measuring + e2e)) } else { Duration::ZERO };
        self.e2e_time += e2e_wall;
        self.proxy_time += wall - e2e_wall;

        let mut entries: Vec<Option<FormatEntry>> = vec![None; jobs.len()];
        for (j, (entry, _, _)) in order.into_iter().zip(done) {
            entries[j] = Some(entry);
        }
        Ok(members
            .iter()
            .enumerate()
            .map(|(m, &i)| {
                let per_format = jobs
                    .iter()
                    .zip(&entries)
                    .filter(|((owner, _), _)| *owner == m)
                    .filter_map(|(&(_, f), e)| Some((f, e.clone()?)))
                    .collect();
                (i, entry(&self.tensors[i], per_format))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GPTQ measurement fits codes to `h` and scores them over `proxy_h`:
    /// with the same codes, the proxy follows `proxy_h` alone.
    #[test]
    fn the_proxy_is_taken_over_the_held_out_moments() {
        let (rows, cols) = (4, 64);
        let w = DenseMatrix::new(
            rows,
            cols,
            (0..rows * cols).map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0).collect(),
        )
        .unwrap();
        let identity: Vec<f32> =
            (0..cols * cols).map(|i| if i % (cols + 1) == 0 { 1.0 } else { 0.0 }).collect();
        let tripled: Vec<f32> = identity.iter().map(|v| 3.0 * v).collect();
        let importance = vec![1.0f32; cols];
        let format: WeightFormat = "int3".parse().unwrap();
        let proxy_over = |proxy_h: &[f32]| {
            let stats = InputStats::SecondMoment { h: &identity, importance: &importance, proxy_h };
            measure_format(&w, format, stats, QuantMethod::Gptq, false).unwrap().0.proxy.unwrap()
        };
        let (plain, held_out) = (proxy_over(&identity), proxy_over(&tripled));
        assert!(plain > 0.0);
        assert!(
            (held_out - 3.0 * plain).abs() <= 1e-9 * plain.abs().max(1.0),
            "{held_out} vs {plain}"
        );
    }
}
