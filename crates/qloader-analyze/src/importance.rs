//! The `imatrix` method's statistics: one pass of the calibration samples
//! through the full-precision model, accumulating at every activation site
//! the mean square of each input column — the diagonal of the `H = E[x xᵀ]`
//! the analyzer's proxy uses. Each linear tensor gets its site's vector;
//! embedding tables (looked up, not multiplied) get none. The analyzer
//! derives the same vectors from the `H` it gathers, so a table measured
//! with `imatrix` scores the codes `pack --method imatrix` writes.

use std::collections::BTreeMap;

use qloader_models::{Observed, Probe, ProbedModel, TensorKind};
use qloader_quant::ColumnImportance;

use crate::error::{AnalyzeError, Result};

/// Running `Σ x²` per column and row counts, per site.
#[derive(Debug, Default)]
pub(crate) struct ColumnSquares {
    sites: BTreeMap<usize, (Vec<f64>, usize)>,
}

impl ColumnSquares {
    pub(crate) fn add(&mut self, site: usize, x: &[f32], rows: usize) {
        if rows == 0 || !x.len().is_multiple_of(rows) {
            return;
        }
        let width = x.len() / rows;
        let (sums, count) = self.sites.entry(site).or_insert_with(|| (vec![0.0; width], 0));
        if sums.len() != width {
            return;
        }
        for row in x.chunks_exact(width) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += (v as f64) * (v as f64);
            }
        }
        *count += rows;
    }

    pub(crate) fn mean(&self, site: usize) -> Option<Vec<f32>> {
        let (sums, count) = self.sites.get(&site).filter(|(_, c)| *c > 0)?;
        Some(sums.iter().map(|s| (s / *count as f64) as f32).collect())
    }
}

/// The importance vector of every multiplied tensor of `model`, from its
/// input's per-column mean square over `samples` (token ids, one sequence
/// each) run through the model as loaded.
pub fn column_importance<M: ProbedModel + ?Sized>(
    model: &M,
    samples: &[Vec<u32>],
) -> Result<ColumnImportance> {
    if samples.is_empty() || samples.iter().any(Vec::is_empty) {
        return Err(AnalyzeError::Calibration("no calibration samples, or an empty one".into()));
    }
    let mut squares = ColumnSquares::default();
    for ids in samples {
        let h = model.block_input(ids, &mut Probe::none())?;
        let mut observe = |what: Observed, x: &[f32], n: usize| {
            if let Observed::LinearInput(site) = what {
                squares.add(site, x, n);
            }
        };
        let mut probe = Probe::observing(&mut observe);
        model.output_from(h, ids.len(), 0, &mut probe)?;
    }
    let mut importance = ColumnImportance::new();
    for t in model.quantizable_tensors() {
        if t.kind == TensorKind::Embedding {
            continue;
        }
        if let Some(mean) = squares.mean(t.site).filter(|m| m.len() == t.cols) {
            importance.insert_mean_squares(t.name, &mean);
        }
    }
    Ok(importance)
}

/// The importance vector of a `cols`-wide tensor whose input second moment
/// is `h` (`cols × cols`, row-major): its diagonal, as
/// [`ColumnImportance::insert_mean_squares`] floors it.
pub fn importance_from_second_moment(h: &[f32], cols: usize) -> Vec<f32> {
    let diagonal: Vec<f32> = (0..cols).map(|c| h[c * cols + c]).collect();
    qloader_quant::weights_from_mean_squares(&diagonal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_squares_average_rows_per_site() {
        let mut s = ColumnSquares::default();
        s.add(3, &[1.0, 2.0, 3.0, 4.0], 2);
        s.add(3, &[0.0, 0.0], 1);
        s.add(3, &[1.0, 1.0, 1.0], 1); // wrong width: ignored
        assert_eq!(s.mean(3), Some(vec![10.0 / 3.0, 20.0 / 3.0]));
        assert_eq!(s.mean(4), None);
        let h = [4.0, 1.0, 1.0, 0.0];
        assert_eq!(importance_from_second_moment(&h, 2), vec![4.0, 2.0 * qloader_quant::FLOOR]);
    }
}
