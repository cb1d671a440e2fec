//! A packed decoder written as a GGUF file that llama.cpp loads: the source
//! model's metadata (architecture, tokenizer, everything but the tensors,
//! kept in the packed file at pack time, or taken from the source GGUF for
//! files packed before that), and every tensor in a GGUF type —
//! field for field where a layout holds exactly its values, else refused
//! with the tensor named unless conversion is asked for
//! ([`qloader_quant::gguf_layout`]). A model packed from a Hugging Face
//! checkpoint keeps its q/k rows in that checkpoint's RoPE pairing (halves);
//! where the family's GGUF architecture pairs adjacent dimensions (`llama`),
//! those rows are reordered as llama.cpp's converter reorders them.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use qloader_format::gguf::layouts::exact_type;
use qloader_format::gguf::writer::read_metadata;
use qloader_format::gguf::{
    write_gguf_streamed, GgmlType, GgufFile, GgufTensorSpec, MetadataValue,
};
use qloader_format::{FormatError, PackedFile, WeightFormat};
use qloader_models::family;
use qloader_models::llama::{LlamaConfig, RopeStyle, HEAD, TOKEN_EMBEDDINGS};
use qloader_quant::gguf_layout::{converted_gguf, converted_type, exact_gguf};
use qloader_quant::LinearWeight;
use serde::Deserialize;

use super::config::{DecoderPacked, GGUF_METADATA_BLOB, LLAMA};
use super::nested_load::rebuild_nested;
use super::plan_choice::plan_named;
use crate::error::{Result, RuntimeError};

/// What `export` is allowed to do.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Convert tensors whose format has no exact GGUF layout (else refuse).
    pub convert: bool,
    /// Take the metadata from this GGUF instead of the packed file (for
    /// files packed before the metadata was kept).
    pub metadata_from: Option<PathBuf>,
    /// The plan to export from a file of several (required there).
    pub plan: Option<String>,
}

/// How one tensor went into the GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedTensor {
    /// Its name in the GGUF file (a tied model's head is written as the
    /// embedding table).
    pub name: String,
    /// Its format in the packed file.
    pub stored: WeightFormat,
    /// Its GGUF type.
    pub ty: GgmlType,
    /// How: fields moved (possibly after an exact widening), or converted.
    pub how: Mapping,
    /// Its bytes in the GGUF file.
    pub bytes: usize,
}

/// How a tensor's values reached its GGUF type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// The layout holds the stored fields as they are.
    Exact,
    /// The codes were first widened exactly to this format.
    Widened(WeightFormat),
    /// Re-quantized or rounded from the de-quantized values.
    Converted,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// Every tensor, in file order.
    pub tensors: Vec<ExportedTensor>,
    /// The GGUF file's size.
    pub file_bytes: u64,
}

/// Writes the packed decoder at `packed` as a GGUF file at `out`.
pub fn export_gguf(packed: &Path, out: &Path, options: &ExportOptions) -> Result<ExportReport> {
    let mut file = PackedFile::open(packed)?;
    let invalid = |reason: String| RuntimeError::InvalidPacked { path: packed.to_owned(), reason };
    match &options.plan {
        Some(name) => {
            file.select_plan(plan_named(&file, name)?);
        }
        None if file.plans().len() > 1 => {
            let names: Vec<String> = file.plans().map(|p| format!("`{}`", p.name())).collect();
            return Err(invalid(format!(
                "holds {} plans ({}): choose the one to export with --plan",
                names.len(),
                names.join(", ")
            )));
        }
        None => {}
    }
    let file = file;
    if file.architecture() != LLAMA {
        return Err(invalid(format!(
            "only decoders ({LLAMA}) export to GGUF; this is a {} model",
            file.architecture()
        )));
    }
    let mut metadata = match &options.metadata_from {
        Some(source) => GgufFile::open(source)?.metadata().to_vec(),
        None => {
            file.verify_blob(GGUF_METADATA_BLOB).map_err(|_| {
                invalid(format!(
                    "it keeps no source GGUF metadata (`{GGUF_METADATA_BLOB}`): it was packed \
                     from a Hugging Face checkpoint directory, whose configuration and \
                     tokenizer this export cannot yet write as GGUF, or by an older qloader; \
                     give a GGUF of the same model with --metadata-from"
                ))
            })?;
            let blob = file.blob(GGUF_METADATA_BLOB).unwrap_or_default();
            read_metadata(blob).map_err(|e| invalid(format!("blob `{GGUF_METADATA_BLOB}`: {e}")))?
        }
    };
    tune_metadata(&mut metadata);
    let reorder = rope_reordering(&file).map_err(|r| invalid(format!("header config: {r}")))?;
    // A tied model's packed file holds the table once, as the head; GGUF
    // holds it once as the embedding table (llama.cpp ties the head to it).
    let tied = file.tensor(TOKEN_EMBEDDINGS).is_none();
    // First every tensor's GGUF type (from its format and shape alone), so
    // that a tensor without a layout is refused before anything is
    // written; then the file, each tensor's bytes made only when written.
    let mut specs = Vec::with_capacity(file.tensors().len());
    let mut report = Vec::with_capacity(file.tensors().len());
    for view in file.tensors() {
        let name = view.name();
        let stored = view.format();
        let (ty, how) = match exact_type(stored, view.cols()) {
            Some((ty, widened)) => (ty, widened.map_or(Mapping::Exact, Mapping::Widened)),
            None if options.convert => (converted_type(stored, view.cols()), Mapping::Converted),
            None => {
                return Err(invalid(format!(
                    "tensor `{name}`: {stored} ({} × {}) has no GGUF layout holding the same \
                     values (pass --convert to store it as the nearest GGUF type that holds at \
                     least its precision)",
                    view.rows(),
                    view.cols()
                )))
            }
        };
        let gguf_name = if tied && name == HEAD { TOKEN_EMBEDDINGS } else { name };
        let dims = match view.rows() {
            1 => vec![view.cols() as u64],
            rows => vec![view.cols() as u64, rows as u64],
        };
        let spec = GgufTensorSpec { name: gguf_name.to_owned(), dims, ty };
        let bytes = spec.expected_bytes().map_err(|e| invalid(format!("tensor `{name}`: {e}")))?;
        report.push(ExportedTensor {
            name: spec.name.clone(),
            stored,
            ty,
            how,
            bytes: bytes as usize,
        });
        specs.push(spec);
    }
    let views: Vec<_> = file.tensors().collect();
    let file_bytes = write_gguf_streamed(out, &metadata, &specs, |i| {
        let view = &views[i];
        let name = view.name();
        let gguf = |e: String| FormatError::Gguf { path: packed.to_owned(), reason: e };
        file.verify(name).map_err(|e| gguf(e.to_string()))?;
        let weight = rebuild_nested(view)
            .unwrap_or_else(|| {
                LinearWeight::from_stored_parts(view.rows(), view.cols(), view.parts())
            })
            .map_err(|e| gguf(format!("tensor `{name}`: {e}")))?;
        let data = match report[i].how {
            Mapping::Converted => converted_gguf(&weight),
            _ => exact_gguf(&weight).ok_or_else(|| {
                gguf(format!("tensor `{name}`: its {} fields do not move into GGUF", view.format()))
            })?,
        };
        if data.ty != specs[i].ty {
            return Err(gguf(format!(
                "tensor `{name}`: became {} where {} was planned",
                data.ty, specs[i].ty
            )));
        }
        Ok(Cow::Owned(match reorder.heads_of(name) {
            Some(heads) => halves_to_interleaved(&data.data, view.rows(), heads)
                .map_err(|r| gguf(format!("tensor `{name}`: {r}")))?,
            None => data.data,
        }))
    })?;
    Ok(ExportReport { tensors: report, file_bytes })
}

/// Which q/k tensors change RoPE pairing on the way to GGUF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RopeReordering {
    /// Query and key/value heads, where the rows are reordered.
    heads: Option<(usize, usize)>,
}

impl RopeReordering {
    /// The heads of tensor `name` if its rows (or, for a bias, values) are
    /// reordered.
    fn heads_of(&self, name: &str) -> Option<usize> {
        let (q, kv) = self.heads?;
        let role = name.strip_prefix("blk.")?.split_once('.')?.1;
        match role {
            "attn_q.weight" | "attn_q.bias" => Some(q),
            "attn_k.weight" | "attn_k.bias" => Some(kv),
            _ => None,
        }
    }
}

/// Whether the packed decoder's RoPE pairing differs from its family's in
/// GGUF (a Hugging Face checkpoint of a family GGUF stores as `llama`).
fn rope_reordering(file: &PackedFile) -> std::result::Result<RopeReordering, String> {
    let packed = DecoderPacked::deserialize(file.config()).map_err(|e| e.to_string())?;
    let config = LlamaConfig::from_header(&packed.model)?;
    let gguf_rope = family::by_name(&config.family)
        .map(|f| f.gguf_rope)
        .ok_or_else(|| family::unsupported(&format!("family `{}`", config.family)))?;
    let differs = config.rope_style == RopeStyle::Halves && gguf_rope == RopeStyle::Interleaved;
    Ok(RopeReordering { heads: differs.then_some((config.heads, config.kv_heads)) })
}

/// `data` (`rows` rows of equal bytes; a vector is one row of 4-byte
/// values) with each of `heads` heads' rows reordered from RoPE over halves
/// to RoPE over adjacent pairs: the head's row `2i + j` is its row
/// `j·d/2 + i` (`d` its rows, `j` 0 or 1).
fn halves_to_interleaved(
    data: &[u8],
    rows: usize,
    heads: usize,
) -> std::result::Result<Vec<u8>, String> {
    let (rows, unit) = if rows == 1 { (data.len() / 4, 4) } else { (rows, data.len() / rows) };
    let d = rows / heads.max(1);
    if rows * unit != data.len() || d * heads != rows || !d.is_multiple_of(2) {
        return Err(format!(
            "{} bytes in {rows} rows do not split into {heads} heads of an even width",
            data.len()
        ));
    }
    let mut out = Vec::with_capacity(data.len());
    for r in 0..rows {
        let (head, k) = (r / d, r % d);
        let from = head * d + (k % 2) * (d / 2) + k / 2;
        out.extend_from_slice(&data[from * unit..(from + 1) * unit]);
    }
    Ok(out)
}

/// The source's metadata made true of the exported file: its file type
/// (which named the source's tensors' type) is dropped, so that llama.cpp
/// describes the file from its tensors, and the quantization version of the
/// block layouts used is stated.
fn tune_metadata(metadata: &mut Vec<(String, MetadataValue)>) {
    const FILE_TYPE: &str = "general.file_type";
    const QUANTIZATION_VERSION: &str = "general.quantization_version";
    metadata.retain(|(k, _)| k != FILE_TYPE && k != QUANTIZATION_VERSION);
    metadata.push((QUANTIZATION_VERSION.to_owned(), MetadataValue::U32(2)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_move_from_halves_to_adjacent_pairs_per_head() {
        // Two heads of 4 rows of 2 bytes: head rows [a0 a1 b0 b1] (a: first
        // half, b: second) become [a0 b0 a1 b1].
        let rows: Vec<u8> = (0..8u8).flat_map(|r| [r, 100 + r]).collect();
        let out = halves_to_interleaved(&rows, 8, 2).unwrap();
        let order: Vec<u8> = out.chunks(2).map(|r| r[0]).collect();
        assert_eq!(order, [0, 2, 1, 3, 4, 6, 5, 7]);
        assert!(out.chunks(2).all(|r| r[1] == 100 + r[0]), "rows move whole");
        // A bias is one row of f32 values, reordered the same way.
        let bias: Vec<u8> = (0..4u8).flat_map(|v| [v, 0, 0, 0]).collect();
        let out = halves_to_interleaved(&bias, 1, 1).unwrap();
        assert_eq!(out.chunks(4).map(|v| v[0]).collect::<Vec<_>>(), [0, 2, 1, 3]);
        assert!(halves_to_interleaved(&rows, 8, 3).is_err(), "8 rows are not 3 heads");
        assert!(halves_to_interleaved(&rows[..12], 6, 2).is_err(), "heads of 3 rows are odd");
    }

    #[test]
    fn only_query_and_key_tensors_are_reordered() {
        let r = RopeReordering { heads: Some((8, 2)) };
        assert_eq!(r.heads_of("blk.3.attn_q.weight"), Some(8));
        assert_eq!(r.heads_of("blk.3.attn_k.bias"), Some(2));
        assert_eq!(r.heads_of("blk.3.attn_v.weight"), None);
        assert_eq!(r.heads_of("blk.3.attn_q_norm.weight"), None);
        assert_eq!(r.heads_of("output.weight"), None);
        assert_eq!(RopeReordering { heads: None }.heads_of("blk.0.attn_q.weight"), None);
    }
}
