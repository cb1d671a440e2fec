//! Nesting a multi-plan file's variants (`qloader_format::nested`): for each
//! tensor whose plans use a uniform compact format (`int2k`, `int3k`,
//! `int4k`), the narrowest of them becomes the root of a chain, and each
//! wider variant the plans use is replaced by bit planes on it — at 3, 4 or
//! 8 bits, by the code width of the format it replaces (`f16`, `f32` and
//! the 8-bit formats by 8 bits; 5-bit formats are left whole) — where the
//! nested form's error is at most [`Nesting::max_error_ratio`] times the
//! replaced variant's. Errors are squared differences from the source
//! weights, each input column weighed by its importance where the plans
//! were calibrated (the `imatrix` mean squares), so a variant that holds the
//! source exactly (a GGUF's own blocks) is never replaced.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;
use std::path::Path;

use qloader_format::nested::{encode_link, link_row_bytes, rebuilt_layout, Chain, WIDTHS};
use qloader_format::{TensorParts, WeightFormat};
use qloader_kernels::DenseMatrix;
use qloader_models::bert::{ModelDir, SafetensorsSource};
use qloader_models::{decoder, RecordedTensor, WeightRole, WeightSource};
use qloader_quant::{ColumnImportance, LinearWeight, StoredParts};
use rayon::prelude::*;

use super::nested_load::rebuild_chain;
use crate::error::{Result, RuntimeError};

/// How far nesting may lower a variant's quality.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nesting {
    /// The largest ratio of a nested variant's weighted squared error to
    /// that of the variant it replaces.
    pub max_error_ratio: f64,
}

impl Default for Nesting {
    /// Up to 1.25 times the replaced variant's error.
    fn default() -> Self {
        Self { max_error_ratio: 1.25 }
    }
}

/// One link of a tensor's chain: the format it rebuilds into, the planes it
/// adds and their bytes.
pub(super) struct Link {
    pub format: WeightFormat,
    pub extra: u8,
    pub planes: Vec<u8>,
}

impl Link {
    pub fn parts(&self) -> TensorParts<'_> {
        let WeightFormat::Grouped(layout) = self.format else {
            unreachable!("links are made in grouped formats")
        };
        TensorParts::Planes { layout, extra: self.extra, planes: &self.planes }
    }
}

/// A tensor's chain: its root's format, the links on it, and which of the
/// plans' formats each link replaces.
pub(super) struct NestedTensor {
    pub root: WeightFormat,
    /// Bytes of the root variant.
    pub root_bytes: usize,
    pub links: Vec<Link>,
    /// Replaced format → the nested format that stands for it, and the
    /// ratio of the link's error to the replaced variant's.
    pub replaced: BTreeMap<WeightFormat, (WeightFormat, f64)>,
}

impl NestedTensor {
    /// The format a plan that asked for `format` loads.
    pub fn loads(&self, format: WeightFormat) -> WeightFormat {
        self.replaced.get(&format).map_or(format, |&(nested, _)| nested)
    }

    /// A plan's predicted loss for the tensor in `format` carried over to
    /// the link that replaces it: scaled by the ratio of their errors (the
    /// analyzer's proxy grows with the weighted squared error).
    pub fn nested_loss(&self, format: WeightFormat, loss: f64) -> f64 {
        self.replaced.get(&format).map_or(loss, |&(_, ratio)| loss * ratio)
    }

    /// Bytes a plan loading `format` (as [`NestedTensor::loads`] maps it)
    /// reads of the chain, if `format` is nested.
    pub fn chain_bytes(&self, format: WeightFormat) -> Option<usize> {
        let at = self.links.iter().position(|l| l.format == format)?;
        Some(self.root_bytes + self.links[..=at].iter().map(|l| l.planes.len()).sum::<usize>())
    }
}

/// The width a nested variant standing for `format` has, if it can have
/// one: its code width when that is 3, 4 or 8 bits; 8 for `f16` and `f32`.
fn nested_width(format: WeightFormat) -> Option<u8> {
    let bits = match format {
        WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Int8PerChannel => 8,
        WeightFormat::Grouped(l) => l.bits(),
        WeightFormat::Compact(l) => l.bits(),
        WeightFormat::Block(l) => l.bits(),
        _ => return None,
    };
    WIDTHS.contains(&bits).then_some(bits)
}

/// Chains for the tensors of `variants` (per tensor name, every distinct
/// variant the plans use) that have a root, by name. `progress(done,
/// total)` hears about the tensors.
pub(super) fn nest_variants(
    model: &Path,
    encoder: bool,
    variants: &BTreeMap<&str, Vec<&RecordedTensor>>,
    importance: Option<&ColumnImportance>,
    nesting: Nesting,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BTreeMap<String, NestedTensor>> {
    let candidates: Vec<(&str, &[&RecordedTensor], &RecordedTensor)> = variants
        .iter()
        .filter(|(_, vs)| vs.len() > 1)
        .filter_map(|(n, vs)| Some((*n, vs.as_slice(), root_of(vs)?)))
        .collect();
    let mut out = BTreeMap::new();
    with_source(model, encoder, &mut |source| {
        for (done, &(name, vs, root)) in candidates.iter().enumerate() {
            progress(done, candidates.len());
            let [rows, cols] = vs[0].shape;
            let source = source.weight(name, rows, cols, WeightRole::Linear)?.dequantize();
            let weights = importance.and_then(|i| i.get(name)).filter(|w| w.len() == cols);
            if let Some(chain) = nest_one(model, name, (vs, root), &source, weights, nesting)? {
                out.insert(name.to_owned(), chain);
            }
        }
        progress(candidates.len(), candidates.len());
        Ok(())
    })?;
    Ok(out)
}

/// The narrowest uniform compact variant of `vs`, if any.
fn root_of<'a>(vs: &[&'a RecordedTensor]) -> Option<&'a RecordedTensor> {
    vs.iter()
        .filter(|v| {
            matches!(v.parts, StoredParts::Compact { layout, .. }
                if qloader_format::nested::is_root(layout))
        })
        .min_by_key(|v| v.parts.as_tensor_parts().format().bits_per_weight() as u32)
        .copied()
}

/// Hands `each` the model's tensors in `f32`, as the checkpoint stores them.
fn with_source(
    model: &Path,
    encoder: bool,
    each: &mut dyn FnMut(&mut dyn WeightSource) -> Result<()>,
) -> Result<()> {
    let keep = |_: &str| WeightFormat::F32;
    if encoder {
        let dir = ModelDir::open(model)?;
        let weights = dir.open_weights()?;
        let mut source = SafetensorsSource::new(&weights, &keep);
        each(&mut source)
    } else {
        let checkpoint = decoder::open_checkpoint(model)?;
        let mut source = checkpoint.source(&keep, None);
        each(source.as_mut())
    }
}

/// Squared error of `values` against `source`, input column `c` weighed by
/// `weights[c]` (1 without weights).
fn weighted_error(source: &DenseMatrix, values: &DenseMatrix, weights: Option<&[f32]>) -> f64 {
    let cols = source.cols();
    source
        .data()
        .par_chunks(cols)
        .zip(values.data().par_chunks(cols))
        .map(|(s, v)| {
            s.iter()
                .zip(v)
                .enumerate()
                .map(|(c, (a, b))| {
                    let w = weights.map_or(1.0, |w| w[c] as f64);
                    w * ((a - b) as f64).powi(2)
                })
                .sum::<f64>()
        })
        .sum()
}

/// Tensor `name`'s chain on `root` ([`root_of`] `vs`), if nesting
/// replaces any of its variants `vs`.
fn nest_one(
    model: &Path,
    name: &str,
    (vs, root): (&[&RecordedTensor], &RecordedTensor),
    source: &DenseMatrix,
    weights: Option<&[f32]>,
    nesting: Nesting,
) -> Result<Option<NestedTensor>> {
    let StoredParts::Compact { layout: root_layout, codes: root_codes } = &root.parts else {
        return Ok(None);
    };
    let [rows, cols] = root.shape;
    let bad = |reason: String| RuntimeError::PlanMismatch {
        model: model.to_owned(),
        reason: format!("nesting tensor `{name}`: {reason}"),
    };
    // The variants a nested one could stand for, by the width it would have.
    let mut by_width: BTreeMap<u8, Vec<(WeightFormat, f64)>> = BTreeMap::new();
    for v in vs.iter().filter(|v| !std::ptr::eq(**v, root)) {
        let format = v.parts.as_tensor_parts().format();
        let Some(width) = nested_width(format).filter(|&w| w > root_layout.bits()) else {
            continue;
        };
        let values = LinearWeight::from_stored_parts(rows, cols, v.parts.as_tensor_parts())
            .map_err(bad)?
            .dequantize();
        by_width.entry(width).or_default().push((format, weighted_error(source, &values, weights)));
    }
    let mut chain = NestedTensor {
        root: WeightFormat::Compact(*root_layout),
        root_bytes: root.parts.as_tensor_parts().byte_len(),
        links: Vec::new(),
        replaced: BTreeMap::new(),
    };
    let mut bits = root_layout.bits();
    for (width, direct) in by_width {
        let format = WeightFormat::Grouped(
            rebuilt_layout(width)
                .ok_or_else(|| bad(format!("no grouped format of {width} bits")))?,
        );
        let extra = width - bits;
        let mut links: Vec<(u8, &[u8])> =
            chain.links.iter().map(|l| (l.extra, l.planes.as_slice())).collect();
        let on = Chain { root: *root_layout, root_codes, links: &links };
        let planes = encode_rows(&on, extra, source, rows, cols);
        links.push((extra, &planes));
        let nested =
            rebuild_chain(rows, cols, Chain { root: *root_layout, root_codes, links: &links })
                .map_err(bad)?
                .dequantize();
        let error = weighted_error(source, &nested, weights);
        let nests = |e: f64| error <= nesting.max_error_ratio * e;
        // A replaced variant of the nested format itself would clash with it.
        if direct.iter().any(|&(f, e)| f == format && !nests(e)) {
            continue;
        }
        let replaced: Vec<(WeightFormat, f64)> =
            direct.iter().filter(|&&(_, e)| nests(e)).copied().collect();
        if replaced.is_empty() {
            continue;
        }
        for (f, e) in replaced {
            let ratio = if e > 0.0 { error / e } else { 1.0 };
            chain.replaced.insert(f, (format, ratio));
        }
        chain.links.push(Link { format, extra, planes });
        bits = width;
    }
    Ok((!chain.links.is_empty()).then_some(chain))
}

/// [`encode_link`] over row blocks in parallel.
fn encode_rows(
    chain: &Chain<'_>,
    extra: u8,
    source: &DenseMatrix,
    rows: usize,
    cols: usize,
) -> Vec<u8> {
    const BLOCK_ROWS: usize = 64;
    let root_row = chain.root.row_bytes(cols);
    let blocks: Vec<Vec<u8>> = (0..rows.div_ceil(BLOCK_ROWS))
        .into_par_iter()
        .map(|b| {
            let (start, end) = (b * BLOCK_ROWS, ((b + 1) * BLOCK_ROWS).min(rows));
            let links: Vec<(u8, &[u8])> = chain
                .links
                .iter()
                .map(|&(e, p)| {
                    let row = link_row_bytes(e, cols);
                    (e, &p[start * row..end * row])
                })
                .collect();
            let part = Chain {
                root: chain.root,
                root_codes: &chain.root_codes[start * root_row..end * root_row],
                links: &links,
            };
            encode_link(&part, extra, &source.data()[start * cols..end * cols], end - start, cols)
        })
        .collect();
    blocks.concat()
}
