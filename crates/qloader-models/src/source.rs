//! Where a model's tensors come from while it is built. A model asks its
//! [`WeightSource`] for each tensor by name and shape; the source decides how
//! it is stored. The original checkpoints (safetensors, GGUF) quantize each
//! quantizable tensor to a chosen format; a packed model hands out its
//! stored tensors (in place, or converted where the device lacks a kernel);
//! a [`RecordingSource`] passes another source's tensors through and keeps a
//! copy of each, which is how a packed model is written; a
//! [`ReplacingSource`] hands out weights quantized beforehand (e.g. by GPTQ)
//! in place of some of another source's.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;

use qloader_format::WeightFormat;
use qloader_kernels::DenseMatrix;
use qloader_quant::{LinearWeight, QuantSummary, StoredParts};

use crate::error::Result;

/// What a matrix is to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightRole {
    /// A quantizable weight the model multiplies by (a linear layer, an
    /// output head): a plan chooses its format, and the device needs a
    /// kernel for it.
    Linear,
    /// A quantizable embedding table: a plan chooses its format, and the
    /// model only reads rows of it (no kernel needed).
    Embedding,
    /// A table kept as the source stores it (an untied embedding table that
    /// is not among the quantizable tensors), read by rows.
    Table,
}

impl WeightRole {
    /// Whether a plan chooses the tensor's format.
    pub fn is_quantizable(self) -> bool {
        matches!(self, WeightRole::Linear | WeightRole::Embedding)
    }
}

/// A supplier of named tensors.
pub trait WeightSource {
    /// Whether the source has a tensor called `name`.
    fn contains(&self, name: &str) -> bool;

    /// The `f32` values of `name`, which must have `shape` (outermost first):
    /// norm scales, biases, position tables.
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;

    /// The `rows × cols` matrix `name`.
    fn weight(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        role: WeightRole,
    ) -> Result<LinearWeight>;

    /// What was handed out so far, tensor by tensor.
    fn summary(&self) -> &QuantSummary;
}

/// `[rows, cols]` of a value tensor of `shape` as a container stores it:
/// a vector is one row; a higher-rank tensor is its outermost dimension ×
/// the rest.
pub fn value_shape(shape: &[usize]) -> [usize; 2] {
    match shape {
        [] => [1, 1],
        [n] => [1, *n],
        [rows, rest @ ..] => [*rows, rest.iter().product()],
    }
}

/// Records a value tensor handed out by a source.
pub fn record_values(summary: &mut QuantSummary, name: &str, len: usize) {
    summary.record(name, len, WeightFormat::F32, len * 4, false);
}

/// Records a matrix handed out by a source.
pub fn record_weight(summary: &mut QuantSummary, name: &str, w: &LinearWeight, role: WeightRole) {
    let params = w.out_features() * w.in_features();
    summary.record(name, params, w.format(), w.storage_bytes(), role.is_quantizable());
}

/// Stores `data` (`rows × cols`, tensor `tensor` of the checkpoint at
/// `path`) as `role` asks: quantized to `format` if quantizable (a grouped
/// format's grid search weighted by `importance`, if given), else as it is.
/// Errors if `data` does not hold `rows × cols` values or `importance` not
/// one value per column.
pub(crate) fn store(
    (path, tensor): (&std::path::Path, &str),
    data: Vec<f32>,
    (rows, cols): (usize, usize),
    format: WeightFormat,
    role: WeightRole,
    importance: Option<&[f32]>,
) -> crate::error::Result<LinearWeight> {
    let values = data.len();
    let error = |reason: String| crate::ModelError::Source {
        path: path.to_owned(),
        tensor: tensor.to_owned(),
        reason,
    };
    let dense = DenseMatrix::new(rows, cols, data)
        .ok_or_else(|| error(format!("{values} values do not make a {rows}×{cols} matrix")))?;
    if let Some(imp) = importance.filter(|imp| imp.len() != cols) {
        return Err(error(format!(
            "the importance vector has {} values for {cols} input columns",
            imp.len()
        )));
    }
    Ok(match (role.is_quantizable(), importance) {
        (false, _) => LinearWeight::F32(dense),
        (true, None) => LinearWeight::quantize(dense, format),
        (true, Some(imp)) => LinearWeight::quantize_weighted(&dense, format, Some(imp)),
    })
}

/// One tensor as a [`RecordingSource`] saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedTensor {
    /// Its name.
    pub name: String,
    /// Rows and columns (a vector is one row; a higher-rank value tensor is
    /// flattened to its outermost dimension × the rest).
    pub shape: [usize; 2],
    /// Its bytes, in the container's layout.
    pub parts: StoredParts,
}

/// Passes another source's tensors through, keeping a copy of each in the
/// container's layout, in the order the model asked for them.
pub struct RecordingSource<'a> {
    inner: &'a mut dyn WeightSource,
    recorded: Vec<RecordedTensor>,
}

impl<'a> RecordingSource<'a> {
    /// Records what `inner` hands out.
    pub fn new(inner: &'a mut dyn WeightSource) -> Self {
        Self { inner, recorded: Vec::new() }
    }

    /// The recorded tensors, in request order.
    pub fn into_recorded(self) -> Vec<RecordedTensor> {
        self.recorded
    }
}

impl WeightSource for RecordingSource<'_> {
    fn contains(&self, name: &str) -> bool {
        self.inner.contains(name)
    }

    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let v = self.inner.values(name, shape)?;
        self.recorded.push(RecordedTensor {
            name: name.to_owned(),
            shape: value_shape(shape),
            parts: StoredParts::from_f32(&v),
        });
        Ok(v)
    }

    fn weight(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        role: WeightRole,
    ) -> Result<LinearWeight> {
        let w = self.inner.weight(name, rows, cols, role)?;
        self.recorded.push(RecordedTensor {
            name: name.to_owned(),
            shape: [rows, cols],
            parts: w.stored_parts(),
        });
        Ok(w)
    }

    fn summary(&self) -> &QuantSummary {
        self.inner.summary()
    }
}

/// Hands out the weights of a map in place of the tensors of the same name
/// in another source, and everything else from that source.
pub struct ReplacingSource<'a> {
    inner: &'a mut dyn WeightSource,
    weights: BTreeMap<String, LinearWeight>,
    summary: QuantSummary,
}

impl<'a> ReplacingSource<'a> {
    /// Takes the tensors named in `weights` from there, the rest from
    /// `inner`.
    pub fn new(inner: &'a mut dyn WeightSource, weights: BTreeMap<String, LinearWeight>) -> Self {
        Self { inner, weights, summary: QuantSummary::default() }
    }
}

impl WeightSource for ReplacingSource<'_> {
    /// What the checkpoint holds: a replacement stands in for a tensor, it
    /// does not add one (a head tied to the embeddings, replaced, stays
    /// tied: its codes also serve the look-up).
    fn contains(&self, name: &str) -> bool {
        self.inner.contains(name)
    }

    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let v = self.inner.values(name, shape)?;
        record_values(&mut self.summary, name, v.len());
        Ok(v)
    }

    fn weight(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        role: WeightRole,
    ) -> Result<LinearWeight> {
        let w = match self.weights.remove(name) {
            Some(w) => {
                let got = [w.out_features(), w.in_features()];
                if got != [rows, cols] {
                    return Err(crate::ModelError::ReplacementShape {
                        tensor: name.to_owned(),
                        want: [rows, cols],
                        got,
                    });
                }
                w
            }
            None => self.inner.weight(name, rows, cols, role)?,
        };
        record_weight(&mut self.summary, name, &w, role);
        Ok(w)
    }

    fn summary(&self) -> &QuantSummary {
        &self.summary
    }
}
