//! The fallback cache on disk: the tensors a device converted at load,
//! written beside the packed model (`model.qlm` → `model.qlm.fallback`) so
//! that the next start maps them instead of converting again.
//!
//! The cache is itself a packed container (architecture
//! [`CACHE_ARCHITECTURE`]) whose tensors are the converted weights, under the
//! names of the tensors they replace. Its header `config` records, per
//! tensor, the CRC-32 of the source tensor it was converted from
//! (`{"sources": {"name": crc32, …}}`): an entry is used only while the model
//! still holds exactly that tensor and the run format is the one wanted, so
//! a rebuilt model or a different device never picks up a stale copy.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use qloader_format::{PackedFile, PackedMeta, PackedWriter, WeightFormat};
use qloader_kernels::StableBytes;
use qloader_quant::{LinearWeight, StoredParts};
use serde::{Deserialize, Serialize};

/// Architecture name of a fallback cache.
pub const CACHE_ARCHITECTURE: &str = "qloader-fallback-cache";

/// Where the cache of the packed model at `model` lives.
pub fn cache_path(model: &Path) -> PathBuf {
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push(".fallback");
    model.with_file_name(name)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheConfig {
    sources: BTreeMap<String, u32>,
}

/// An opened cache.
pub struct FallbackCache {
    file: PackedFile,
    owner: Arc<dyn StableBytes>,
    sources: BTreeMap<String, u32>,
    verify: bool,
}

impl FallbackCache {
    /// Opens the cache at `path`: `Ok(None)` if there is none, an error
    /// saying why if it is not a valid cache (the caller ignores it then).
    pub fn open(path: &Path, verify: bool) -> Result<Option<Self>, String> {
        if !path.exists() {
            return Ok(None);
        }
        let file = PackedFile::open(path).map_err(|e| e.to_string())?;
        if file.architecture() != CACHE_ARCHITECTURE {
            return Err(format!("{}: not a fallback cache", path.display()));
        }
        let config: CacheConfig = serde_json::from_value(file.config().clone())
            .map_err(|e| format!("{}: header config: {e}", path.display()))?;
        let owner: Arc<dyn StableBytes> = file.shared_map();
        Ok(Some(Self { file, owner, sources: config.sources, verify }))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The cached conversion of tensor `name` (whose stored bytes have CRC-32
    /// `source_crc32`) to `runs_as`, read in place, if the cache has it.
    pub fn lookup(
        &self,
        name: &str,
        source_crc32: u32,
        runs_as: WeightFormat,
        shape: [usize; 2],
    ) -> Option<LinearWeight> {
        if self.sources.get(name) != Some(&source_crc32) {
            return None;
        }
        let view = self.file.tensor(name)?;
        if view.format() != runs_as || view.shape() != shape {
            return None;
        }
        if self.verify && self.file.verify(name).is_err() {
            return None;
        }
        LinearWeight::from_mapped_parts(shape[0], shape[1], view.parts(), &self.owner).ok()
    }
}

/// Converted tensors collected during a load, to be written as a cache.
#[derive(Default)]
pub struct CacheContents {
    entries: Vec<(String, [usize; 2], StoredParts, u32)>,
}

impl CacheContents {
    /// Adds the converted `weight` that replaces tensor `name` (source
    /// CRC-32 `source_crc32`).
    pub fn add(&mut self, name: &str, source_crc32: u32, weight: &LinearWeight) {
        let shape = [weight.out_features(), weight.in_features()];
        self.entries.push((name.to_owned(), shape, weight.stored_parts(), source_crc32));
    }

    /// Tensors collected.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the cache to `path` atomically; returns its length, or why it
    /// could not be written.
    pub fn write(&self, path: &Path) -> Result<u64, String> {
        let sources = self.entries.iter().map(|(n, _, _, crc)| (n.clone(), *crc)).collect();
        let meta = PackedMeta {
            created_by: format!("qloader {}", env!("CARGO_PKG_VERSION")),
            architecture: CACHE_ARCHITECTURE.to_owned(),
            config: serde_json::to_value(CacheConfig { sources }).map_err(|e| e.to_string())?,
            plan: None,
            quantization: None,
        };
        let mut writer = PackedWriter::new(meta);
        for (name, shape, parts, _) in &self.entries {
            writer.add_tensor(name.clone(), shape[0], shape[1], parts.as_tensor_parts());
        }
        writer.write(path).map_err(|e| e.to_string())
    }
}
