//! GPTQ over a whole model: the sequential driver around
//! [`qloader_quant::gptq`] (Frantar et al. 2022: Algorithm 1 applied to one
//! Transformer block after another, as in the paper's experimental setup).
//!
//! Blocks are quantized in order, and each block's calibration inputs come
//! from the model with every earlier block already quantized, so a block
//! compensates for the error its predecessors left. Within a block, the
//! input second moment `H = E[x xᵀ]` of each activation site is gathered
//! while the calibration samples run through the block, and every linear
//! tensor at that site is quantized with GPTQ against it. With
//! `sequential_sites` (the "true sequential" variant of the paper's
//! reference setup) each site is measured after the sites before it in the
//! block are quantized, so e.g. the output projection sees the context the
//! quantized q, k and v produce; otherwise one pass measures every site of
//! the block against its full-precision weights.
//!
//! Embedding tables that are only looked up are not quantized here: the
//! caller stores them as it would anyway. A head tied to the embedding
//! table is (last, against the final hidden states): its codes then also
//! serve the look-up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use qloader_format::WeightFormat;
use qloader_models::{Observed, Probe, ProbedModel, TensorKind};
use qloader_quant::gptq::gptq;
pub use qloader_quant::gptq::{supports, GptqOptions};
use qloader_quant::LinearWeight;
use rayon::prelude::*;

use crate::analyzer::Progress;
use crate::error::{AnalyzeError, Result};
use crate::moments::SecondMoments;
use crate::stage::{dense, weight_of};

/// How to quantize (each tensor's format is given separately, see
/// [`quantize_sequential`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SequentialOptions {
    /// The per-tensor algorithm's settings.
    pub gptq: GptqOptions,
    /// Measure each activation site of a block after the sites before it
    /// are quantized (one pass through the block per site). Off by default:
    /// on all-MiniLM-L6-v2 at int4 g32, sites in sequence cost three times
    /// as long and gave a slightly lower `qloader eval` cosine: 0.98645
    /// against 0.98685, 128 sentences, unweighted group fits.
    pub sequential_sites: bool,
}

/// Default calibration sentences for an encoder: on all-MiniLM-L6-v2 at
/// int4 g32 the `qloader eval` mean cosine is 0.9890 with 128 sentences of
/// the Alice text, 0.9905 with 512 and 0.9904 with 1000.
pub const DEFAULT_SENTENCES: usize = 512;

/// A model's tensors quantized with GPTQ.
#[derive(Debug, Clone)]
pub struct GptqModel {
    /// The quantized weight of every tensor GPTQ quantized, by tensor name.
    pub weights: BTreeMap<String, LinearWeight>,
    /// Calibration samples used.
    pub samples: usize,
    /// Calibration tokens used.
    pub tokens: usize,
    /// Seconds spent.
    pub seconds: f64,
}

/// Quantizes every multiplied tensor of `model` (not embedding tables) that
/// `formats` gives a format, to that format (int8 per channel or grouped),
/// with GPTQ over the calibration `samples`, block by block (see the module
/// documentation). Tensors `formats` maps to `None` are left out, and the
/// calibration passes use them at full precision. `progress` hears after
/// each tensor.
pub fn quantize_sequential<M: ProbedModel + ?Sized>(
    model: &M,
    samples: &[Vec<u32>],
    formats: &dyn Fn(&str) -> Option<WeightFormat>,
    opts: &SequentialOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<GptqModel> {
    let start = Instant::now();
    if samples.is_empty() || samples.iter().any(Vec::is_empty) {
        return Err(AnalyzeError::Calibration("no calibration samples, or an empty one".into()));
    }
    let layers = model.layers();
    let tensors = model.quantizable_tensors();
    let mut format_of: Vec<Option<WeightFormat>> = vec![None; tensors.len()];
    let mut by_stage: BTreeMap<usize, BTreeMap<usize, Vec<usize>>> = BTreeMap::new();
    for (i, t) in tensors.iter().enumerate() {
        if t.kind == TensorKind::Embedding {
            continue;
        }
        if let Some(format) = formats(&t.name) {
            if !supports(format) {
                return Err(AnalyzeError::Options(format!(
                    "GPTQ quantizes to int8 or grouped formats, not {format} (tensor {})",
                    t.name
                )));
            }
            format_of[i] = Some(format);
            let stage = t.layer.unwrap_or(layers).min(layers);
            by_stage.entry(stage).or_default().entry(t.site).or_default().push(i);
        }
    }
    let total: usize = by_stage.values().flat_map(|s| s.values()).map(Vec::len).sum();
    let lengths: Vec<usize> = samples.iter().map(Vec::len).collect();
    let mut hidden: Vec<Vec<f32>> = samples
        .iter()
        .map(|ids| model.block_input(ids, &mut Probe::none()))
        .collect::<Result<_, _>>()?;
    let mut substitutes: Vec<Option<LinearWeight>> = vec![None; tensors.len()];
    let mut done = 0;
    for stage in 0..=layers {
        let sites = by_stage.remove(&stage).unwrap_or_default();
        let passes: Vec<Vec<usize>> = if opts.sequential_sites {
            sites.keys().map(|&s| vec![s]).collect()
        } else {
            vec![sites.keys().copied().collect()]
        };
        for pass in passes.into_iter().filter(|p| !p.is_empty()) {
            let widths: BTreeSet<(usize, usize)> = pass
                .iter()
                .flat_map(|s| &sites[s])
                .map(|&i| (tensors[i].site, tensors[i].cols))
                .collect();
            let mut moments = SecondMoments::new(widths.iter().copied());
            {
                let mut observe = |what: Observed, x: &[f32], n: usize| {
                    if let Observed::LinearInput(site) = what {
                        moments.add(site, x, n);
                    }
                };
                let mut probe = Probe::observing(&mut observe).with_substitutes(&substitutes);
                for (h, &n) in hidden.iter().zip(&lengths) {
                    let mut h = h.clone();
                    if stage < layers {
                        model.run_block(stage, &mut h, n, &mut probe)?;
                    } else {
                        model.output(h, n, &mut probe)?;
                    }
                }
            }
            let members: Vec<usize> = pass.iter().flat_map(|s| sites[s].iter().copied()).collect();
            let hessians: BTreeMap<usize, Vec<f32>> = widths
                .iter()
                .map(|&(site, cols)| {
                    (site, moments.mean(site).unwrap_or_else(|| vec![0.0; cols * cols]))
                })
                .collect();
            drop(moments);
            let quantized: Vec<(usize, LinearWeight)> = members
                .par_iter()
                .map(|&i| {
                    let w = dense(weight_of(model, i)?);
                    let format = format_of[i].ok_or_else(|| {
                        AnalyzeError::Options(format!("no format for {}", tensors[i].name))
                    })?;
                    let q = gptq(&w, &hessians[&tensors[i].site], format, &opts.gptq).map_err(
                        |error| AnalyzeError::Gptq { tensor: tensors[i].name.clone(), error },
                    )?;
                    Ok((i, q))
                })
                .collect::<Result<_>>()?;
            for (i, q) in quantized {
                substitutes[i] = Some(q);
                done += 1;
                progress(Progress { done, total });
            }
        }
        if stage < layers {
            let mut probe = Probe::none().with_substitutes(&substitutes);
            for (h, &n) in hidden.iter_mut().zip(&lengths) {
                model.run_block(stage, h, n, &mut probe)?;
            }
        }
    }
    let weights = substitutes
        .into_iter()
        .enumerate()
        .filter_map(|(i, w)| Some((tensors[i].name.clone(), w?)))
        .collect();
    Ok(GptqModel {
        weights,
        samples: samples.len(),
        tokens: lengths.iter().sum(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_formats_gptq_does_not_produce() {
        // Checked before the model is touched: any model will do.
        struct NoModel;
        impl ProbedModel for NoModel {
            fn quantizable_tensors(&self) -> Vec<qloader_models::QuantizableTensor> {
                vec![qloader_models::QuantizableTensor {
                    name: "w".to_owned(),
                    kind: TensorKind::AttnQ,
                    layer: Some(0),
                    rows: 1,
                    cols: 1,
                    site: 0,
                }]
            }
            fn tensor_weight(&self, _: usize) -> Option<&LinearWeight> {
                None
            }
            fn layers(&self) -> usize {
                0
            }
            fn output_kind(&self) -> qloader_models::ModelOutput {
                qloader_models::ModelOutput::Embedding { dim: 1 }
            }
            fn block_input(
                &self,
                ids: &[u32],
                _: &mut Probe<'_>,
            ) -> qloader_models::error::Result<Vec<f32>> {
                Ok(vec![0.0; ids.len()])
            }
            fn run_block(
                &self,
                _: usize,
                _: &mut [f32],
                _: usize,
                _: &mut Probe<'_>,
            ) -> qloader_models::error::Result<()> {
                Ok(())
            }
            fn output(
                &self,
                h: Vec<f32>,
                _: usize,
                _: &mut Probe<'_>,
            ) -> qloader_models::error::Result<Vec<f32>> {
                Ok(h)
            }
        }
        let opts = SequentialOptions::default();
        let f16 = |_: &str| Some(WeightFormat::F16);
        let err = quantize_sequential(&NoModel, &[vec![1]], &f16, &opts, &mut |_| {}).unwrap_err();
        assert!(matches!(err, AnalyzeError::Options(_)), "{err}");
        let int4 = |_: &str| Some("int4".parse().unwrap());
        let err = quantize_sequential(&NoModel, &[], &int4, &opts, &mut |_| {}).unwrap_err();
        assert!(matches!(err, AnalyzeError::Calibration(_)), "{err}");
        // A tensor given no format is left alone.
        let done =
            quantize_sequential(&NoModel, &[vec![1]], &|_| None, &opts, &mut |_| {}).unwrap();
        assert!(done.weights.is_empty());
    }
}
