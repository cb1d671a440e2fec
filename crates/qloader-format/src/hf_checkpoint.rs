//! The weights of a Hugging Face checkpoint directory: one
//! `model.safetensors`, or the shards that `model.safetensors.index.json`
//! lists, each memory-mapped with a validated header. A tensor is read from
//! its shard on request, never the whole checkpoint at once. The index may
//! only name plain files in the directory, each tensor once, each in the
//! shard that holds it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{FormatError, Result};
use crate::safetensors_file::{SafetensorsFile, TensorF32};
use crate::side_file::{read_config_text, read_text_bounded};

/// The single-file checkpoint's name.
pub const SINGLE_FILE: &str = "model.safetensors";
/// The sharded checkpoint's index.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";
/// More shards than any checkpoint has (the largest public ones have a few
/// hundred): a bound on what an index may ask to open.
const MAX_SHARDS: usize = 4096;

/// The memory-mapped weight files of a checkpoint directory.
pub struct HfWeights {
    root: PathBuf,
    shards: Vec<SafetensorsFile>,
    /// Which shard holds each tensor.
    index: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl HfWeights {
    /// Opens the weights of the directory `root`: `model.safetensors` if it
    /// is there, else the shards of `model.safetensors.index.json`.
    pub fn open(root: &Path) -> Result<Self> {
        let single = root.join(SINGLE_FILE);
        let index_path = root.join(SHARD_INDEX);
        if single.is_file() {
            let file = SafetensorsFile::open(&single)?;
            let index = file.tensor_names().into_iter().map(|n| (n, 0)).collect();
            return Ok(Self { root: root.to_owned(), shards: vec![file], index });
        }
        if !index_path.is_file() {
            return Err(FormatError::MissingFile {
                path: single,
                what: "the model weights (or model.safetensors.index.json for a sharded model)",
            });
        }
        let text = read_config_text(&index_path)?;
        let parsed: ShardIndex = serde_json::from_str(&text)
            .map_err(|error| FormatError::Json { path: index_path.clone(), error })?;
        let bad = |reason: String| FormatError::Safetensors { path: index_path.clone(), reason };
        let mut names: Vec<&str> = parsed.weight_map.values().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() > MAX_SHARDS {
            return Err(bad(format!("{} shards, more than {MAX_SHARDS}", names.len())));
        }
        if let Some(outside) = names.iter().find(|n| !is_plain_file_name(n)) {
            return Err(bad(format!(
                "shard `{outside}` is not a file name in the model directory"
            )));
        }
        let mut shards = Vec::with_capacity(names.len());
        for name in &names {
            let path = root.join(name);
            if !path.is_file() {
                return Err(FormatError::MissingFile { path, what: "a shard the index lists" });
            }
            shards.push(SafetensorsFile::open(&path)?);
        }
        let mut index = HashMap::with_capacity(parsed.weight_map.len());
        for (tensor, shard) in &parsed.weight_map {
            let at = names.binary_search(&shard.as_str()).map_err(|_| bad(shard.clone()))?;
            if shards[at].info(tensor).is_none() {
                return Err(bad(format!("tensor `{tensor}` is not in its shard `{shard}`")));
            }
            index.insert(tensor.clone(), at);
        }
        for (file, name) in shards.iter().zip(&names) {
            if let Some(extra) = file.tensor_names().into_iter().find(|t| !index.contains_key(t)) {
                return Err(bad(format!(
                    "shard `{name}` holds tensor `{extra}`, which the index omits"
                )));
            }
        }
        Ok(Self { root: root.to_owned(), shards, index })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the checkpoint has a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The file that holds `name` (the first shard if none does, for
    /// messages).
    pub fn path_of(&self, name: &str) -> &Path {
        let at = self.index.get(name).copied().unwrap_or(0);
        self.shards.get(at).map_or(&self.root, |f| f.path())
    }

    /// The shape of `name`, outermost first.
    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        self.shard(name)?.shape(name)
    }

    /// Reads `name` as `f32` (from F32, F16 or BF16), checking that its
    /// shape is `expected`.
    pub fn tensor_f32(&self, name: &str, expected: &[usize]) -> Result<TensorF32> {
        self.shard(name)?.tensor_f32(name, expected)
    }

    fn shard(&self, name: &str) -> Result<&SafetensorsFile> {
        self.index.get(name).and_then(|&at| self.shards.get(at)).ok_or_else(|| {
            FormatError::MissingTensor {
                path: self.path_of(name).to_owned(),
                tensor: name.to_owned(),
            }
        })
    }
}

/// Whether `name` names a file directly inside a directory (no separators,
/// not `.` or `..`, not absolute).
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.contains('\0')
        && Path::new(name).components().count() == 1
}

/// Largest side file read (`tokenizer.json` of large vocabularies is tens of
/// megabytes): a bound, so that a wrong path cannot make the reader
/// allocate without limit.
pub const MAX_SIDE_FILE_BYTES: u64 = 256 << 20;

/// The text of a model directory's side file at `path` (`tokenizer.json`,
/// `generation_config.json`, …), read with the [`MAX_SIDE_FILE_BYTES`]
/// limit.
pub fn read_text(path: &Path) -> Result<String> {
    read_text_bounded(path, MAX_SIDE_FILE_BYTES)
}

/// The `config.json` of the directory `root`, parsed as JSON (read with the
/// configuration-file size limit).
pub fn read_config_json(root: &Path) -> Result<serde_json::Value> {
    let path = root.join("config.json");
    if !path.is_file() {
        return Err(FormatError::MissingFile { path, what: "the model configuration" });
    }
    let text = read_config_text(&path)?;
    serde_json::from_str(&text).map_err(|error| FormatError::Json { path, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_must_stay_in_the_directory() {
        for ok in ["model-00001-of-00002.safetensors", "a.safetensors"] {
            assert!(is_plain_file_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x.safetensors", "/etc/passwd", "sub/x", "a\\b"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}
