//! Writing a packed model: [`PackedWriter`] collects borrowed blobs and
//! tensors, lays them out, validates the result with the reader's rules, and
//! streams it to a temporary file that is synced and renamed over the target.
//! The model is never assembled in memory; only the header is.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use super::layout::{align_up, TensorParts};
use super::schema::{
    PlanRef, QuantRecord, RawBlob, RawHeader, RawHeaderV2, RawPlan, RawSegment, RawTensor,
    RawTensorV2, RawVariant,
};
use super::validate::{validate_header, validate_header_v2, Problem};
use super::{MAGIC, MAX_HEADER_LEN, PREAMBLE_LEN, SCHEMA, VERSION};
use crate::atomic_file::write_atomic_with;
use crate::error::{FormatError, Result};
use crate::weight_format::WeightFormat;

/// The header fields of a packed model other than its blobs and tensors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackedMeta {
    /// The program that writes the file, e.g. `"qloader 0.1.0"`.
    pub created_by: String,
    /// The model family the loader should build (`llama`, `bert`, ...).
    pub architecture: String,
    /// The model's hyper-parameters, in whatever JSON the loader reads.
    pub config: serde_json::Value,
    /// The plan the weights were quantized by, if any.
    pub plan: Option<PlanRef>,
    /// How their codes were chosen, if recorded.
    pub quantization: Option<QuantRecord>,
}

/// One plan of a multi-plan (version 2) file, as given to the writer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackedPlan {
    /// Its name, unique in the file (e.g. `"4bpw"`).
    pub name: String,
    /// Bits per weight of its quantizable tensors.
    pub bits_per_weight: f64,
    /// The loss its plan predicted, if known.
    pub predicted_loss: Option<f64>,
    /// The plan file it came from, if any.
    pub plan: Option<PlanRef>,
    /// The format it loads for each tensor with more than one variant
    /// (others may be left out: their one variant is loaded).
    pub formats: BTreeMap<String, WeightFormat>,
    /// The loss it predicts for each tensor in the variant it loads, where
    /// known: recorded with that variant (the first plan's, if several
    /// load it), so that a loader can build plans of its own from them.
    pub tensor_losses: BTreeMap<String, f64>,
}

struct PendingTensor<'a> {
    name: String,
    rows: usize,
    cols: usize,
    /// Each variant's parts and, for a nested one, its base's format.
    variants: Vec<(TensorParts<'a>, Option<WeightFormat>)>,
}

/// Builds a packed model from borrowed bytes and writes it atomically.
///
/// A model with one variant per tensor and no plans is written as version
/// 1; one with plans ([`PackedWriter::add_plan`]) as version 2 (3 if it has
/// nested variants, [`PackedWriter::add_nested_variant`]), each tensor
/// with every variant added for it ([`PackedWriter::add_variant`]).
///
/// Inputs are checked when [`PackedWriter::write`] runs (so that errors can
/// name the target file): names unique and non-empty, shapes non-zero and
/// within limits, and every segment exactly as long as its format and shape
/// require. A writer that succeeds produces a file [`super::PackedFile`]
/// accepts.
pub struct PackedWriter<'a> {
    meta: PackedMeta,
    blobs: Vec<(String, &'a [u8])>,
    tensors: Vec<PendingTensor<'a>>,
    plans: Vec<PackedPlan>,
}

impl<'a> PackedWriter<'a> {
    /// A writer with no blobs and no tensors.
    pub fn new(meta: PackedMeta) -> Self {
        Self { meta, blobs: Vec::new(), tensors: Vec::new(), plans: Vec::new() }
    }

    /// Adds an opaque blob (e.g. `config.json`, `tokenizer.json`).
    pub fn add_blob(&mut self, name: impl Into<String>, bytes: &'a [u8]) -> &mut Self {
        self.blobs.push((name.into(), bytes));
        self
    }

    /// Adds a `rows × cols` tensor stored as `parts`.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        parts: TensorParts<'a>,
    ) -> &mut Self {
        self.tensors.push(PendingTensor {
            name: name.into(),
            rows,
            cols,
            variants: vec![(parts, None)],
        });
        self
    }

    /// Adds `parts` as a variant of the tensor `name`: to the tensor added
    /// last under that name, or as a new tensor if there is none. (Shapes
    /// must agree; a second variant in the same format is refused when
    /// writing.)
    pub fn add_variant(
        &mut self,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        parts: TensorParts<'a>,
    ) -> &mut Self {
        self.push_variant(name.into(), rows, cols, (parts, None))
    }

    /// Adds a nested variant of the tensor `name` (as
    /// [`PackedWriter::add_variant`] does): `planes` ([`TensorParts::Planes`])
    /// refine the tensor's variant in format `base`, which must have been
    /// added before it ([`crate::nested`]).
    pub fn add_nested_variant(
        &mut self,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        planes: TensorParts<'a>,
        base: WeightFormat,
    ) -> &mut Self {
        self.push_variant(name.into(), rows, cols, (planes, Some(base)))
    }

    fn push_variant(
        &mut self,
        name: String,
        rows: usize,
        cols: usize,
        variant: (TensorParts<'a>, Option<WeightFormat>),
    ) -> &mut Self {
        let same = |t: &&mut PendingTensor<'a>| t.name == name && (t.rows, t.cols) == (rows, cols);
        match self.tensors.iter_mut().rev().find(same) {
            Some(t) => t.variants.push(variant),
            // Another shape under the same name is a second tensor of that
            // name, refused when writing.
            None => self.tensors.push(PendingTensor { name, rows, cols, variants: vec![variant] }),
        }
        self
    }

    /// Adds a plan: the file is then written as version 2.
    pub fn add_plan(&mut self, plan: PackedPlan) -> &mut Self {
        self.plans.push(plan);
        self
    }

    /// Validates the model and writes it to `path` atomically: to a temporary
    /// file in the same directory, synced, then renamed over `path`. On any
    /// error the temporary is removed and `path` is left as it was. Returns
    /// the file's length in bytes.
    pub fn write(&self, path: &Path) -> Result<u64> {
        let (mut header, pieces, data_len) = self.layout().map_err(|p| p.at(path))?;
        // One variant per tensor and no plans: version 1.
        let v1 = self.plans.is_empty() && header.tensors.iter().all(|t| t.variants.len() == 1);
        // Nested variants and per-variant losses need version 3; other
        // multi-plan files stay at 2.
        let newer = header
            .tensors
            .iter()
            .flat_map(|t| &t.variants)
            .any(|v| v.base.is_some() || v.predicted_loss.is_some());
        header.version = if newer { VERSION } else { 2 };
        if v1 {
            validate_header(&self.as_v1(header.clone()), data_len).map(|_| ())
        } else {
            validate_header_v2(&header, header.version, data_len).map(|_| ())
        }
        .map_err(|p| p.at(path))?;
        // Checksums, now that the input is known to be well-formed.
        for (raw, (_, bytes)) in header.blobs.iter_mut().zip(&self.blobs) {
            raw.crc32 = crc32fast::hash(bytes);
        }
        for (raw, t) in header.tensors.iter_mut().zip(&self.tensors) {
            for (v, (parts, _)) in raw.variants.iter_mut().zip(&t.variants) {
                let mut hasher = crc32fast::Hasher::new();
                for (_, bytes) in parts.segments() {
                    hasher.update(bytes);
                }
                v.crc32 = hasher.finalize();
            }
        }
        let (version, json) = if v1 {
            (1, serde_json::to_vec(&self.as_v1(header)))
        } else {
            (header.version, serde_json::to_vec(&header))
        };
        let json =
            json.map_err(|e| Problem::File(format!("header cannot be serialized: {e}")).at(path))?;
        let json_len = json.len() as u64;
        if json_len > MAX_HEADER_LEN {
            return Err(Problem::File(format!(
                "header is {json_len} bytes, more than the limit of {MAX_HEADER_LEN}"
            ))
            .at(path));
        }
        let data_start = align_up(PREAMBLE_LEN as u64 + json_len)
            .ok_or_else(|| Problem::File("file size overflows".to_owned()).at(path))?;
        let file_len = data_start
            .checked_add(data_len)
            .ok_or_else(|| Problem::File("file size overflows".to_owned()).at(path))?;

        let mut preamble = [0u8; PREAMBLE_LEN];
        preamble[..8].copy_from_slice(&MAGIC);
        preamble[8..12].copy_from_slice(&version.to_le_bytes());
        preamble[12..16].copy_from_slice(&0u32.to_le_bytes());
        preamble[16..24].copy_from_slice(&json_len.to_le_bytes());

        write_atomic_with(path, |out| {
            write_to(out, &preamble, &json, data_start, &pieces, file_len)
        })
        .map_err(|error| FormatError::Write { path: path.to_owned(), error })?;
        Ok(file_len)
    }

    /// The header in version 2's shape (checksums still zero), the byte
    /// strings to write with their offsets in the data section, in order, and
    /// the data section's length.
    #[allow(clippy::type_complexity)]
    fn layout(&self) -> Result<(RawHeaderV2, Vec<(u64, &'a [u8])>, u64), Problem> {
        let overflow = || Problem::File("data section size overflows".to_owned());
        let mut pieces = Vec::new();
        let mut cursor = 0u64;
        let mut end = 0u64;
        let mut place = |bytes: &'a [u8]| -> Result<(u64, u64), Problem> {
            let offset = align_up(cursor).ok_or_else(overflow)?;
            let len = bytes.len() as u64;
            end = offset.checked_add(len).ok_or_else(overflow)?;
            cursor = end;
            pieces.push((offset, bytes));
            Ok((offset, len))
        };

        let mut blobs = Vec::with_capacity(self.blobs.len());
        for (name, bytes) in &self.blobs {
            let (offset, len) = place(bytes)?;
            blobs.push(RawBlob { name: name.clone(), offset, len, crc32: 0 });
        }
        let mut tensors = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let mut variants = Vec::with_capacity(t.variants.len());
            for (parts, base) in &t.variants {
                let mut segments = Vec::new();
                for (role, bytes) in parts.segments() {
                    let (offset, len) = place(bytes)?;
                    segments.push(RawSegment { role: role.name().to_owned(), offset, len });
                }
                let base = match base {
                    None => None,
                    Some(format) => {
                        let found = t.variants.iter().position(|(p, _)| p.format() == *format);
                        Some(found.ok_or_else(|| {
                            Problem::tensor(
                                &t.name,
                                format!(
                                    "its nested {} variant builds on {format}, a variant it does \
                                     not have",
                                    parts.format()
                                ),
                            )
                        })? as u64)
                    }
                };
                variants.push(RawVariant {
                    format: parts.format().name(),
                    base,
                    predicted_loss: None,
                    segments,
                    crc32: 0,
                });
            }
            tensors.push(RawTensorV2 {
                name: t.name.clone(),
                shape: vec![t.rows as u64, t.cols as u64],
                variants,
            });
        }
        let plans: Vec<RawPlan> =
            self.plans.iter().map(|p| self.raw_plan(p, &tensors)).collect::<Result<_, _>>()?;
        // Each variant's predicted loss: the first plan's that loads it.
        for (spec, raw) in self.plans.iter().zip(&plans) {
            for ((t, pending), &v) in tensors.iter_mut().zip(&self.tensors).zip(&raw.variants) {
                let Some(&loss) = spec.tensor_losses.get(&pending.name) else { continue };
                let variant = &mut t.variants[v as usize];
                variant.predicted_loss = variant.predicted_loss.or(Some(loss));
            }
        }
        let header = RawHeaderV2 {
            schema: SCHEMA.to_owned(),
            version: VERSION,
            created_by: self.meta.created_by.clone(),
            architecture: self.meta.architecture.clone(),
            config: self.meta.config.clone(),
            quantization: self.meta.quantization.clone(),
            blobs,
            tensors,
            plans,
        };
        Ok((header, pieces, end))
    }

    /// `header` (one variant per tensor, no plans) as version 1 writes it,
    /// with the meta's plan reference.
    fn as_v1(&self, header: RawHeaderV2) -> RawHeader {
        RawHeader {
            schema: header.schema,
            version: 1,
            created_by: header.created_by,
            architecture: header.architecture,
            config: header.config,
            plan: self.meta.plan.clone(),
            quantization: header.quantization,
            blobs: header.blobs,
            tensors: header.tensors.into_iter().filter_map(single_variant).collect(),
        }
    }

    /// `plan` as the header lists it: the variant it picks for each tensor
    /// and the bytes they hold.
    fn raw_plan(&self, plan: &PackedPlan, tensors: &[RawTensorV2]) -> Result<RawPlan, Problem> {
        let mut variants = Vec::with_capacity(tensors.len());
        let mut bytes = 0u64;
        for (pending, raw) in self.tensors.iter().zip(tensors) {
            let index = match plan.formats.get(&pending.name) {
                Some(format) => {
                    pending.variants.iter().position(|(p, _)| p.format() == *format).ok_or_else(
                        || {
                            Problem::tensor(
                                &pending.name,
                                format!(
                                    "plan `{}` loads it as {format}, a variant it does not have",
                                    plan.name
                                ),
                            )
                        },
                    )?
                }
                None if pending.variants.len() == 1 => 0,
                None => {
                    return Err(Problem::tensor(
                        &pending.name,
                        format!(
                            "plan `{}` gives no format for it, and it has {} variants",
                            plan.name,
                            pending.variants.len()
                        ),
                    ))
                }
            };
            // The variant and every base under it.
            let chain = std::iter::successors(Some(index as u64), |&i| {
                raw.variants.get(i as usize).and_then(|v| v.base).filter(|&b| b < i)
            });
            bytes += chain
                .filter_map(|i| raw.variants.get(i as usize))
                .flat_map(|v| &v.segments)
                .map(|s| s.len)
                .sum::<u64>();
            variants.push(index as u64);
        }
        if let Some(name) =
            plan.formats.keys().find(|n| !self.tensors.iter().any(|t| &t.name == *n))
        {
            return Err(Problem::File(format!(
                "plan `{}` names tensor `{name}`, which the model does not have",
                plan.name
            )));
        }
        Ok(RawPlan {
            name: plan.name.clone(),
            bits_per_weight: plan.bits_per_weight,
            bytes,
            predicted_loss: plan.predicted_loss,
            plan: plan.plan.clone(),
            variants,
        })
    }
}

/// A version 2 tensor with one variant as a version 1 tensor.
fn single_variant(t: RawTensorV2) -> Option<RawTensor> {
    let v = t.variants.into_iter().next()?;
    Some(RawTensor {
        name: t.name,
        shape: t.shape,
        format: v.format,
        segments: v.segments,
        crc32: v.crc32,
    })
}

/// Streams the file's bytes into `out`.
fn write_to(
    out: &mut impl Write,
    preamble: &[u8],
    json: &[u8],
    data_start: u64,
    pieces: &[(u64, &[u8])],
    file_len: u64,
) -> io::Result<()> {
    out.write_all(preamble)?;
    out.write_all(json)?;
    let mut pos = (preamble.len() + json.len()) as u64;
    pad_to(out, &mut pos, data_start)?;
    for &(offset, bytes) in pieces {
        pad_to(out, &mut pos, data_start + offset)?;
        out.write_all(bytes)?;
        pos += bytes.len() as u64;
    }
    if pos != file_len {
        return Err(io::Error::other(format!("wrote {pos} bytes where the layout has {file_len}")));
    }
    Ok(())
}

/// Writes zero bytes until `*pos` reaches `target`.
fn pad_to(out: &mut impl Write, pos: &mut u64, target: u64) -> io::Result<()> {
    const ZEROS: [u8; 64] = [0; 64];
    while *pos < target {
        let n = (target - *pos).min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..n])?;
        *pos += n as u64;
    }
    Ok(())
}
