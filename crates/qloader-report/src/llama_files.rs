//! llama.cpp's own files as report baselines: an importance matrix from the
//! report's calibration text, the model re-quantized by `llama-quantize` to
//! each of llama.cpp's usual types with it, and each file's bytes (whole
//! file, and the quantizable tensors alone).
//!
//! The tools come from the build `scripts/llama-cpp.sh` made for this CPU.

use std::path::{Path, PathBuf};

use qloader_analyze::request::{DEFAULT_DECODER_SAMPLES, DEFAULT_WINDOW};
use qloader_format::fixtures;
use qloader_format::gguf::GgufFile;
use qloader_models::llama::{HEAD, TOKEN_EMBEDDINGS};
use qloader_runtime::bench::llama_cpp::{self, LlamaCppTools};

use crate::error::{ReportError, Result};

/// The llama.cpp types a report compares with by default: the k-quants
/// users pick, the 32-block Q4_0 and Q8_0, and the importance-matrix types.
pub const DEFAULT_TYPES: [&str; 11] = [
    "Q8_0", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q4_0", "IQ4_XS", "Q3_K_S", "Q2_K", "IQ3_XXS",
    "IQ2_XS",
];

/// One file written by llama.cpp.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaCppFile {
    /// The llama.cpp type it was written in (`Q4_K_M`).
    pub ggml_type: String,
    /// Where it is.
    pub path: PathBuf,
    /// The whole file's bytes.
    pub file_bytes: u64,
}

/// Writes `model` in each of `types` into `dir` with llama.cpp, using an
/// importance matrix computed from the calibration text (the one the
/// analysis uses: [`DEFAULT_DECODER_SAMPLES`] windows of [`DEFAULT_WINDOW`]
/// tokens of Alice). `log` hears one line per step.
pub fn write_files(
    model: &Path,
    types: &[String],
    dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<LlamaCppFile>> {
    let tools = LlamaCppTools::find_in_cache(&fixtures::cache_dir())?;
    let imatrix = dir.join("llama-imatrix.dat");
    log(&format!(
        "llama.cpp: importance matrix of {} on {DEFAULT_DECODER_SAMPLES} × {DEFAULT_WINDOW} \
         tokens of the calibration text …",
        model.display()
    ));
    llama_cpp::importance_matrix(
        &tools,
        model,
        &fixtures::alice_text(),
        DEFAULT_WINDOW,
        DEFAULT_DECODER_SAMPLES,
        &imatrix,
    )?;
    let mut files = Vec::with_capacity(types.len());
    for ty in types {
        log(&format!("llama.cpp: writing {ty} …"));
        let path = dir.join(format!("llama-{ty}.gguf"));
        llama_cpp::quantize(&tools, model, Some(&imatrix), ty, &path)?;
        let file_bytes = std::fs::metadata(&path)
            .map_err(|error| ReportError::Io { path: path.clone(), error })?
            .len();
        files.push(LlamaCppFile { ggml_type: ty.clone(), path, file_bytes });
    }
    Ok(files)
}

/// Bytes the tensors `names` take in the GGUF at `path` (their data as
/// stored, without alignment padding); a name the file lacks is an error,
/// except a tied model's head, which the file holds as the embedding table.
pub fn tensor_bytes<'a>(path: &Path, names: impl IntoIterator<Item = &'a str>) -> Result<u64> {
    let file = GgufFile::open(path)?;
    names.into_iter().try_fold(0u64, |sum, name| {
        let info = match (file.tensor(name), name) {
            (Err(_), HEAD) => file.tensor(TOKEN_EMBEDDINGS)?,
            (found, _) => found?,
        };
        Ok(sum + info.byte_len as u64)
    })
}

/// Checks a list of llama.cpp type names (as `llama-quantize` spells them)
/// before anything is run: non-empty, each a plain name.
pub fn check_types(types: &[String]) -> Result<()> {
    if types.is_empty() {
        return Err(ReportError::Mismatch("no llama.cpp type to compare with".into()));
    }
    for ty in types {
        if ty.is_empty() || !ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ReportError::Mismatch(format!(
                "`{ty}` is not a llama.cpp type name (like Q4_K_M or IQ2_XS)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_checked() {
        assert!(check_types(&["Q4_K_M".into(), "IQ2_XS".into()]).is_ok());
        assert!(check_types(&[]).is_err());
        let e = check_types(&["Q4_K_M; rm".into()]).unwrap_err().to_string();
        assert!(e.contains("`Q4_K_M; rm` is not a llama.cpp type name"), "{e}");
    }

    #[test]
    fn tensor_bytes_count_the_stored_data_and_a_tied_head_as_the_table() {
        use qloader_format::gguf::{write_gguf, GgmlType, GgufTensorOut};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        let tensor = |name: &str, ty, bytes| GgufTensorOut {
            name: name.into(),
            dims: vec![32, 2],
            ty,
            data: vec![0; bytes],
        };
        let tensors = [
            tensor(TOKEN_EMBEDDINGS, GgmlType::Q8_0, 2 * 34),
            tensor("blk.0.attn_q.weight", GgmlType::F32, 2 * 32 * 4),
        ];
        write_gguf(&path, &[], &tensors).unwrap();
        assert_eq!(tensor_bytes(&path, [HEAD, "blk.0.attn_q.weight"]).unwrap(), 68 + 256);
        let e = tensor_bytes(&path, ["blk.1.attn_q.weight"]).unwrap_err().to_string();
        assert!(e.contains("blk.1.attn_q.weight"), "{e}");
    }
}
