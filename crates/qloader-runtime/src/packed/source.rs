//! [`PackedSource`]: a packed model's tensors handed to the model code. Each
//! tensor the model asks for is checked (name, shape, format, checksum
//! unless verification is off) and then read in place from the memory map;
//! a tensor whose format has no kernel here is converted once, in memory, to
//! what the [`KernelRegistry`] chooses, with one line of log. Tensors the
//! model does not ask for are never touched.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::sync::Arc;
use std::time::Instant;

use qloader_format::{ActivationFormat, FormatError, PackedFile, TensorParts, WeightFormat};
use qloader_kernels::StableBytes;
use qloader_models::source::{record_values, record_weight, value_shape};
use qloader_models::{ModelError, WeightRole, WeightSource};
use qloader_quant::{f32_values, LinearWeight, QuantSummary};

use super::fallback_cache::{CacheContents, FallbackCache};
use super::nested_load::rebuild_nested;
use super::plan_choice::PlanChoice;
use crate::registry::{KernelChoice, KernelRegistry};

/// How a packed model is loaded.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Check every tensor's CRC-32 before using it.
    pub verify: bool,
    /// Activation format of the linear layers; `None`: the architecture's
    /// default ([`default_activations`]).
    pub activations: Option<ActivationFormat>,
    /// The kernels this device has.
    pub registry: KernelRegistry,
    /// Keep the tensors converted at load in a cache file beside the model,
    /// and use it at the next start.
    pub fallback_cache: bool,
    /// Which plan of a multi-plan file to load.
    pub plan: PlanChoice,
}

/// The activations a model runs with unless told otherwise: int8 for a
/// decoder (quantized per weight group on the fly, as llama.cpp runs its
/// quantized models: integer products, within 1 % of `f32` activations'
/// perplexity on SmolLM2), `f32` for an encoder (whose embeddings are
/// compared with `f32` ones).
pub fn default_activations(decoder: bool) -> ActivationFormat {
    if decoder {
        ActivationFormat::Int8
    } else {
        ActivationFormat::F32
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            verify: true,
            activations: None,
            registry: KernelRegistry::detect(),
            fallback_cache: false,
            plan: PlanChoice::default(),
        }
    }
}

/// Where one tensor of a loaded packed model lives and how it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The tensor.
    pub name: String,
    /// Rows and columns.
    pub shape: [usize; 2],
    /// The format the file stores.
    pub stored: WeightFormat,
    /// What the model does with it.
    pub role: PlacementRole,
    /// The kernel choice, for weights the model multiplies by.
    pub kernel: Option<KernelChoice>,
    /// Bytes held at run time: the tiles of a weight multiplied in tiles
    /// (its stored pages are let go), a converted weight's copy and tiles,
    /// or the stored bytes read in place.
    pub bytes: usize,
    /// Whether those bytes are read in place from the map (else owned).
    pub mapped: bool,
    /// Seconds spent converting at load (0 when not converted).
    pub convert_seconds: f64,
}

/// What the model does with a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementRole {
    /// Multiplies by it (a kernel is chosen).
    Product,
    /// Reads rows of it (an embedding table).
    LookUp,
    /// Uses its values directly (norm scales, biases, position tables).
    Values,
}

impl PlacementRole {
    /// `product`, `look-up`, `values`.
    pub fn name(self) -> &'static str {
        match self {
            PlacementRole::Product => "product",
            PlacementRole::LookUp => "look-up",
            PlacementRole::Values => "values",
        }
    }
}

/// A packed model's tensors as a [`WeightSource`].
pub struct PackedSource<'a> {
    file: &'a PackedFile,
    owner: Arc<dyn StableBytes>,
    options: &'a LoadOptions,
    summary: QuantSummary,
    placements: Vec<Placement>,
    on_conversion: &'a mut dyn FnMut(&str),
    cache: Option<&'a FallbackCache>,
    /// Converted weights to write to the cache (when it is on).
    to_cache: Option<CacheContents>,
    /// Conversions done at this load (not taken from the cache).
    fresh_conversions: usize,
}

impl<'a> PackedSource<'a> {
    /// A source over `file`; `on_conversion` hears one line per tensor
    /// converted at load.
    pub fn new(
        file: &'a PackedFile,
        options: &'a LoadOptions,
        on_conversion: &'a mut dyn FnMut(&str),
    ) -> Self {
        let owner: Arc<dyn StableBytes> = file.shared_map();
        Self {
            file,
            owner,
            options,
            summary: QuantSummary::default(),
            placements: Vec::new(),
            on_conversion,
            cache: None,
            to_cache: options.fallback_cache.then(CacheContents::default),
            fresh_conversions: 0,
        }
    }

    /// Takes converted tensors from `cache` where it has them.
    pub fn with_cache(mut self, cache: Option<&'a FallbackCache>) -> Self {
        self.cache = cache;
        self
    }

    /// Every tensor handed out so far, and the converted weights to cache if
    /// any conversion was done at this load (with the cache on).
    pub fn finish(self) -> (Vec<Placement>, Option<CacheContents>) {
        let write = self.fresh_conversions > 0;
        (self.placements, self.to_cache.filter(|_| write))
    }

    /// Drops this process's pages of tensor `name` (it keeps a copy). A
    /// failure only costs memory, so it is ignored.
    fn release(&self, name: &str) {
        let _ = self.file.release(name);
    }

    fn error(&self, tensor: &str, reason: String) -> ModelError {
        ModelError::Source { path: self.file.path().to_owned(), tensor: tensor.to_owned(), reason }
    }

    /// The tensor `name`, checked to be `rows × cols` and (if asked) against
    /// its checksum.
    fn checked(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<qloader_format::TensorView<'a>, ModelError> {
        let view = self.file.tensor(name).ok_or_else(|| FormatError::MissingTensor {
            path: self.file.path().to_owned(),
            tensor: name.to_owned(),
        })?;
        if view.shape() != [rows, cols] {
            return Err(FormatError::ShapeMismatch {
                path: self.file.path().to_owned(),
                tensor: name.to_owned(),
                expected: vec![rows, cols],
                got: view.shape().to_vec(),
            }
            .into());
        }
        if self.options.verify {
            self.file.verify(name)?;
        }
        Ok(view)
    }
}

impl WeightSource for PackedSource<'_> {
    fn contains(&self, name: &str) -> bool {
        self.file.tensor(name).is_some()
    }

    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let [rows, cols] = value_shape(shape);
        let view = self.checked(name, rows, cols)?;
        let TensorParts::F32 { data } = view.parts() else {
            return Err(
                self.error(name, format!("stored as {}, expected f32 values", view.format()))
            );
        };
        // The container checked that the segment holds rows × cols values.
        let values = f32_values(data);
        self.release(name);
        let len = values.len();
        record_values(&mut self.summary, name, len);
        self.placements.push(Placement {
            name: name.to_owned(),
            shape: view.shape(),
            stored: WeightFormat::F32,
            role: PlacementRole::Values,
            kernel: None,
            bytes: len * 4,
            mapped: false,
            convert_seconds: 0.0,
        });
        Ok(values)
    }

    fn weight(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        role: WeightRole,
    ) -> Result<LinearWeight, ModelError> {
        let view = self.checked(name, rows, cols)?;
        // A nested variant is rebuilt from its chain into the grouped
        // weight it runs as; any other is read in place.
        let stored = match rebuild_nested(&view) {
            Some(rebuilt) => rebuilt,
            None => LinearWeight::from_mapped_parts(rows, cols, view.parts(), &self.owner),
        }
        .map_err(|r| self.error(name, r))?;
        let (weight, kernel, seconds) = if role == WeightRole::Linear {
            let choice = self
                .options
                .registry
                .choose(stored.format(), self.options.activations.unwrap_or(ActivationFormat::F32))
                .map_err(|e| self.error(name, e.to_string()))?;
            if choice.runs_as == choice.stored {
                (stored, Some(choice), 0.0)
            } else {
                let clock = Instant::now();
                let shape = [rows, cols];
                let cached =
                    self.cache.and_then(|c| c.lookup(name, view.crc32(), choice.runs_as, shape));
                let (converted, how) = match cached {
                    Some(w) => {
                        let from = self.cache.map(|c| c.path().display().to_string());
                        (w, format!("the copy in {}", from.unwrap_or_default()))
                    }
                    None => {
                        self.fresh_conversions += 1;
                        let w =
                            stored.convert_to(choice.runs_as).map_err(|r| self.error(name, r))?;
                        (w, "converted".to_owned())
                    }
                };
                let seconds = clock.elapsed().as_secs_f64();
                if let Some(contents) = &mut self.to_cache {
                    contents.add(name, view.crc32(), &converted);
                }
                (self.on_conversion)(&format!(
                    "{name}: no {} kernel here; {} → {} ({how}, {}, {:.1} ms, {:.2} MiB)",
                    choice.stored.family(),
                    choice.stored,
                    choice.runs_as,
                    choice.conversion.map_or("exact", |f| f.name()),
                    seconds * 1e3,
                    converted.storage_bytes() as f64 / (1 << 20) as f64,
                ));
                (converted, Some(choice), seconds)
            }
        } else {
            (stored, None, 0.0)
        };
        // What the model keeps of it: a weight the products read in tiles
        // keeps only the tiles (its stored pages are let go), a converted
        // one its owned copy and tiles, others what their products read.
        let (mut bytes, mut mapped) = (weight.storage_bytes(), weight.is_mapped());
        if role == WeightRole::Linear {
            weight.prepare_products();
            let tiles = weight.tiles().map(|t| t.storage_bytes());
            if tiles.is_some() || !mapped {
                self.release(name);
            }
            match (tiles, mapped) {
                (Some(tiles), true) => (bytes, mapped) = (tiles, false),
                (Some(tiles), false) => bytes += tiles,
                (None, _) => bytes = LinearWeight::prepared_bytes(weight.format(), rows, cols),
            }
        }
        record_weight(&mut self.summary, name, &weight, role);
        self.placements.push(Placement {
            name: name.to_owned(),
            shape: [rows, cols],
            stored: view.format(),
            role: if role == WeightRole::Linear {
                PlacementRole::Product
            } else {
                PlacementRole::LookUp
            },
            kernel,
            bytes,
            mapped,
            convert_seconds: seconds,
        });
        Ok(weight)
    }

    fn summary(&self) -> &QuantSummary {
        &self.summary
    }
}
