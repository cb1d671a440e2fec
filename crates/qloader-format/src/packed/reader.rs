//! Reading a packed model: [`PackedFile`] memory-maps the file and validates
//! all of its header and layout at open time; [`TensorView`] hands out a
//! tensor's segments as byte slices of the map, 64-byte aligned.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::layout::{SegmentRole, TensorParts};
use super::schema::{PlanRef, QuantRecord};
use super::validate::{parse_file, ValidHeader, ValidPlan, ValidTensor, ValidVariant};
use crate::error::{FormatError, Result};
use crate::nested::ChainLinks;
use crate::weight_format::WeightFormat;

/// A packed model, memory-mapped, whose header and layout have been validated.
///
/// A version 2 file holds several plans, each a choice of one variant per
/// tensor; the tensor accessors show the *selected* plan's variants (the
/// first plan until [`PackedFile::select_plan`] picks another). A version 1
/// file has one plan.
pub struct PackedFile {
    path: PathBuf,
    map: Arc<Mmap>,
    data_start: usize,
    header: ValidHeader,
    selected: usize,
}

impl PackedFile {
    /// Maps `path` and validates everything but the checksums: preamble,
    /// header, every tensor's format, shape and segments, and every blob's
    /// and segment's place in the data section.
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            File::open(path).map_err(|error| FormatError::Io { path: path.to_owned(), error })?;
        // SAFETY: the map is read-only and private to this process. Another
        // process truncating the file while it is mapped could fault the
        // reader; that is the accepted contract of memory-mapped model files
        // (our own writer replaces files by rename, which keeps maps valid).
        let map = unsafe { Mmap::map(&file) }
            .map_err(|error| FormatError::Io { path: path.to_owned(), error })?;
        let parsed = parse_file(&map).map_err(|p| p.at(path))?;
        Ok(Self {
            path: path.to_owned(),
            map: Arc::new(map),
            data_start: parsed.data_start,
            header: parsed.header,
            selected: 0,
        })
    }

    /// Adds a plan of the caller's own, `variants` (one index per tensor, in
    /// header order), named `name`, with `predicted_loss`, and selects it;
    /// its index. `None` (and nothing changes) if an index is out of range
    /// or the count is not one per tensor.
    pub fn select_variants(
        &mut self,
        name: &str,
        variants: Vec<usize>,
        predicted_loss: Option<f64>,
    ) -> Option<usize> {
        let tensors = &self.header.tensors;
        if variants.len() != tensors.len()
            || variants.iter().zip(tensors).any(|(&v, t)| v >= t.variants.len())
        {
            return None;
        }
        let bytes = variants.iter().zip(tensors).map(|(&v, t)| t.chain_bytes(v)).sum();
        self.header.plans.push(ValidPlan {
            name: name.to_owned(),
            bits_per_weight: None,
            bytes,
            predicted_loss,
            plan: None,
            variants,
        });
        self.selected = self.header.plans.len() - 1;
        Some(self.selected)
    }

    /// The format version of the file (1 to 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Every plan, in header order (one, unnamed, for a version 1 file).
    pub fn plans(&self) -> impl ExactSizeIterator<Item = PlanView<'_>> + '_ {
        (0..self.header.plans.len()).map(move |i| self.plan_view(i))
    }

    /// The plan whose tensors the accessors show.
    pub fn selected_plan(&self) -> PlanView<'_> {
        self.plan_view(self.selected)
    }

    /// Makes plan `index` (in header order) the one whose tensors the
    /// accessors show; `None` (and no change) if there is no such plan.
    pub fn select_plan(&mut self, index: usize) -> Option<PlanView<'_>> {
        if index >= self.header.plans.len() {
            return None;
        }
        self.selected = index;
        Some(self.plan_view(index))
    }

    fn plan_view(&self, index: usize) -> PlanView<'_> {
        PlanView { file: self, index, plan: &self.header.plans[index] }
    }

    /// The memory map itself, for weights that read their segments in place
    /// (they keep the map alive after this `PackedFile` is dropped).
    pub fn shared_map(&self) -> Arc<Mmap> {
        Arc::clone(&self.map)
    }

    /// Length of the file in bytes.
    pub fn file_len(&self) -> usize {
        self.map.len()
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header's `created_by`: the program that wrote the file.
    pub fn created_by(&self) -> &str {
        &self.header.created_by
    }

    /// The header's `architecture`: the model family (`llama`, `bert`, ...).
    pub fn architecture(&self) -> &str {
        &self.header.architecture
    }

    /// The header's `config`: the model's hyper-parameters as the writer
    /// stored them.
    pub fn config(&self) -> &serde_json::Value {
        &self.header.config
    }

    /// The plan file the selected plan's weights were quantized by, if the
    /// writer recorded one.
    pub fn plan(&self) -> Option<&PlanRef> {
        self.selected_plan().plan_ref()
    }

    /// How the codes were chosen, if the writer recorded it.
    pub fn quantization(&self) -> Option<&QuantRecord> {
        self.header.quantization.as_ref()
    }

    /// All tensors, in header order, each in the selected plan's variant.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = TensorView<'_>> + '_ {
        self.selected_plan().tensors()
    }

    /// The tensor called `name` in the selected plan's variant, if the file
    /// has one.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        let i = *self.header.tensor_index.get(name)?;
        Some(self.view(i, self.header.plans[self.selected].variants[i]))
    }

    /// Every variant of every tensor, in header order: what the file holds.
    pub fn all_variants(&self) -> impl Iterator<Item = TensorView<'_>> + '_ {
        self.header
            .tensors
            .iter()
            .enumerate()
            .flat_map(move |(i, t)| (0..t.variants.len()).map(move |v| self.view(i, v)))
    }

    /// Names of all blobs, in header order.
    pub fn blob_names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.header.blobs.iter().map(|b| b.name.as_str())
    }

    /// The bytes of blob `name`, if the file has one (not checksummed here:
    /// see [`PackedFile::verify_blob`]).
    pub fn blob(&self, name: &str) -> Option<&[u8]> {
        let b = self.header.blob_index.get(name).and_then(|&i| self.header.blobs.get(i))?;
        Some(self.data().get(b.range.clone()).unwrap_or_default())
    }

    /// Checks tensor `name`'s bytes against the CRC-32 in the header: its
    /// variant in the selected plan and, for a nested one, every base under
    /// it.
    pub fn verify(&self, name: &str) -> Result<()> {
        let mut t = self.tensor(name).ok_or_else(|| FormatError::MissingTensor {
            path: self.path.clone(),
            tensor: name.to_owned(),
        })?;
        loop {
            self.check_tensor(&t)?;
            match t.base() {
                Some(base) => t = base,
                None => return Ok(()),
            }
        }
    }

    /// Checks blob `name`'s bytes against the CRC-32 in the header.
    pub fn verify_blob(&self, name: &str) -> Result<()> {
        let b = self.header.blob_index.get(name).and_then(|&i| self.header.blobs.get(i));
        let b = b.ok_or_else(|| FormatError::MissingBlob {
            path: self.path.clone(),
            blob: name.to_owned(),
        })?;
        let actual = crc32fast::hash(self.data().get(b.range.clone()).unwrap_or_default());
        self.check_crc("blob", &b.name, b.crc32, actual)
    }

    /// Lets the kernel drop this process's pages of tensor `name` (every
    /// variant: those of other plans are mapped only when the kernel maps
    /// pages around the ones read): for a tensor the model copied (tiles,
    /// values), so that the copy is all it keeps resident. Reading the
    /// tensor again re-reads the same bytes from the file. Does nothing for
    /// an unknown name; an `madvise` failure is returned (the map stays
    /// valid either way).
    pub fn release(&self, name: &str) -> std::io::Result<()> {
        let Some(&t) = self.header.tensor_index.get(name) else { return Ok(()) };
        for v in 0..self.header.tensors[t].variants.len() {
            self.release_view(&self.view(t, v))?;
        }
        Ok(())
    }

    /// Lets the kernel drop this process's pages of every variant the
    /// selected plan does not load: those the kernel mapped around the
    /// pages that were read (fault-around), which a plan never uses.
    pub fn release_other_variants(&self) -> std::io::Result<()> {
        let plan = &self.header.plans[self.selected];
        for (t, tensor) in self.header.tensors.iter().enumerate() {
            let loaded: Vec<usize> = tensor.chain(plan.variants[t]).collect();
            for v in (0..tensor.variants.len()).filter(|v| !loaded.contains(v)) {
                self.release_view(&self.view(t, v))?;
            }
        }
        Ok(())
    }

    fn release_view(&self, view: &TensorView<'_>) -> std::io::Result<()> {
        let base = self.map.as_ptr() as usize;
        for (_, bytes) in view.segments() {
            if bytes.is_empty() {
                continue;
            }
            let offset = bytes.as_ptr() as usize - base;
            // SAFETY: the map is a read-only shared mapping of the file that
            // this process never writes, so after MADV_DONTNEED every page
            // reads back from the file with the bytes it had: slices
            // borrowed from the map see no change. (A file changed by
            // another process is outside the contract of `open`.)
            unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    offset,
                    bytes.len(),
                )?;
            }
        }
        Ok(())
    }

    /// Checks every blob and every variant of every tensor (all plans)
    /// against its CRC-32; the first mismatch (blobs first, then tensors in
    /// header order) is the error.
    pub fn verify_all(&self) -> Result<()> {
        for b in &self.header.blobs {
            self.verify_blob(&b.name)?;
        }
        for t in self.all_variants() {
            self.check_tensor(&t)?;
        }
        Ok(())
    }

    fn check_tensor(&self, t: &TensorView<'_>) -> Result<()> {
        let mut hasher = crc32fast::Hasher::new();
        for (_, bytes) in t.segments() {
            hasher.update(bytes);
        }
        self.check_crc("tensor", t.name(), t.crc32(), hasher.finalize())
    }

    fn check_crc(&self, kind: &'static str, name: &str, expected: u32, actual: u32) -> Result<()> {
        if expected == actual {
            Ok(())
        } else {
            Err(FormatError::ChecksumMismatch {
                path: self.path.clone(),
                kind,
                name: name.to_owned(),
                expected,
                actual,
            })
        }
    }

    /// The data section (its bounds were checked at open).
    fn data(&self) -> &[u8] {
        self.map.get(self.data_start..).unwrap_or_default()
    }

    /// Variant `variant` of tensor `tensor` (both indices valid).
    fn view(&self, tensor: usize, variant: usize) -> TensorView<'_> {
        let tensor = &self.header.tensors[tensor];
        TensorView { tensor, variant: &tensor.variants[variant], index: variant, data: self.data() }
    }
}

/// One plan of a [`PackedFile`]: its name, size, predicted loss and the
/// variant it loads for each tensor.
#[derive(Clone, Copy)]
pub struct PlanView<'a> {
    file: &'a PackedFile,
    index: usize,
    plan: &'a ValidPlan,
}

impl<'a> PlanView<'a> {
    /// Its position among the file's plans.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its name (empty for a version 1 file's one plan).
    pub fn name(&self) -> &'a str {
        &self.plan.name
    }

    /// Bits per weight of its quantizable tensors, as the writer recorded
    /// (`None` in a version 1 file).
    pub fn bits_per_weight(&self) -> Option<f64> {
        self.plan.bits_per_weight
    }

    /// Bytes of the variants it loads (all tensors).
    pub fn bytes(&self) -> u64 {
        self.plan.bytes
    }

    /// The loss its plan predicted, if recorded.
    pub fn predicted_loss(&self) -> Option<f64> {
        self.plan.predicted_loss
    }

    /// The plan file it was packed from, if recorded.
    pub fn plan_ref(&self) -> Option<&'a PlanRef> {
        self.plan.plan.as_ref()
    }

    /// Every tensor in the variant this plan loads, in header order.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = TensorView<'a>> + 'a {
        let (file, plan) = (self.file, self.plan);
        plan.variants.iter().enumerate().map(move |(t, &v)| file.view(t, v))
    }
}

impl fmt::Debug for PlanView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanView")
            .field("index", &self.index)
            .field("name", &self.plan.name)
            .field("bytes", &self.plan.bytes)
            .finish()
    }
}

impl fmt::Debug for PackedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedFile")
            .field("path", &self.path)
            .field("architecture", &self.header.architecture)
            .field("tensors", &self.header.tensors.len())
            .field("plans", &self.header.plans.len())
            .field("blobs", &self.header.blobs.len())
            .field("file_len", &self.map.len())
            .finish()
    }
}

/// One tensor of a [`PackedFile`]: its shape, format and segment bytes.
/// Every segment starts 64-byte aligned in memory and has exactly the length
/// its format and shape require.
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    tensor: &'a ValidTensor,
    variant: &'a ValidVariant,
    /// `variant`'s index among the tensor's variants.
    index: usize,
    /// The file's data section.
    data: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// The tensor's name.
    pub fn name(&self) -> &'a str {
        &self.tensor.name
    }

    /// Rows (output features).
    pub fn rows(&self) -> usize {
        self.tensor.rows
    }

    /// Columns (input features).
    pub fn cols(&self) -> usize {
        self.tensor.cols
    }

    /// `[rows, cols]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.tensor.rows, self.tensor.cols]
    }

    /// The format the tensor is stored in.
    pub fn format(&self) -> WeightFormat {
        self.variant.format
    }

    /// The CRC-32 the header records for the tensor's segments.
    pub fn crc32(&self) -> u32 {
        self.variant.crc32
    }

    /// How many variants the file holds of this tensor (1 in a version 1
    /// file).
    pub fn variant_count(&self) -> usize {
        self.tensor.variants.len()
    }

    /// The segments in header order, each with its role.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = (SegmentRole, &'a [u8])> + 'a {
        let data = self.data;
        self.variant
            .segments
            .iter()
            .map(move |(role, range)| (*role, data.get(range.clone()).unwrap_or_default()))
    }

    /// The bytes of the segment with `role`, if the tensor's format has one.
    pub fn segment(&self, role: SegmentRole) -> Option<&'a [u8]> {
        self.segments().find(|(r, _)| *r == role).map(|(_, bytes)| bytes)
    }

    /// Total bytes of all segments.
    pub fn byte_len(&self) -> usize {
        self.segments().map(|(_, s)| s.len()).sum()
    }

    /// The loss a plan predicted for the tensor in this variant, if the
    /// file records it (version 3).
    pub fn predicted_loss(&self) -> Option<f64> {
        self.variant.predicted_loss
    }

    /// Which of its tensor's variants this is (in header order).
    pub fn variant_index(&self) -> usize {
        self.index
    }

    /// This tensor's variant `index` (in header order), if it has one.
    pub fn variant(&self, index: usize) -> Option<TensorView<'a>> {
        let variant = self.tensor.variants.get(index)?;
        Some(TensorView { variant, index, ..*self })
    }

    /// Bytes that loading variant `index` reads (its own and every base's),
    /// if the tensor has it.
    pub fn variant_chain_bytes(&self, index: usize) -> Option<u64> {
        (index < self.tensor.variants.len()).then(|| self.tensor.chain_bytes(index))
    }

    /// For a nested variant, the variant its planes refine
    /// ([`crate::nested`]); `None` for a variant stored whole.
    pub fn base(&self) -> Option<TensorView<'a>> {
        let base = self.variant.base?;
        Some(TensorView { variant: &self.tensor.variants[base], index: base, ..*self })
    }

    /// Bytes of this variant and every base under it: what loading it reads.
    pub fn chain_byte_len(&self) -> usize {
        std::iter::successors(Some(*self), TensorView::base).map(|v| v.byte_len()).sum()
    }

    /// For a nested variant, its root (layout and super-blocks) and every
    /// link's planes from the root up to this variant: what
    /// [`crate::nested::rebuild_row`] reads. `None` for a variant stored
    /// whole.
    pub fn nested_chain(&self) -> Option<ChainLinks<'a>> {
        self.variant.base?;
        let mut links = Vec::new();
        let mut at = *self;
        loop {
            match at.parts() {
                TensorParts::Planes { extra, planes, .. } => links.push((extra, planes)),
                TensorParts::Compact { layout, codes } => {
                    links.reverse();
                    return Some(ChainLinks { root: layout, root_codes: codes, links });
                }
                // The container checked that a chain ends at a compact root.
                _ => return None,
            }
            at = at.base()?;
        }
    }

    /// The segments by format.
    pub fn parts(&self) -> TensorParts<'a> {
        let seg = |role| self.segment(role).unwrap_or_default();
        if let (Some(base), WeightFormat::Grouped(layout)) = (self.base(), self.variant.format) {
            let width = match base.format() {
                WeightFormat::Compact(l) => l.bits(),
                WeightFormat::Grouped(l) => l.bits(),
                _ => layout.bits(),
            };
            return TensorParts::Planes {
                layout,
                extra: layout.bits().saturating_sub(width),
                planes: seg(SegmentRole::Planes),
            };
        }
        match self.variant.format {
            WeightFormat::F32 => TensorParts::F32 { data: seg(SegmentRole::Data) },
            WeightFormat::F16 => TensorParts::F16 { data: seg(SegmentRole::Data) },
            WeightFormat::Int8PerChannel => TensorParts::Int8PerChannel {
                codes: seg(SegmentRole::Codes),
                scales: seg(SegmentRole::Scales),
            },
            WeightFormat::Grouped(layout) => TensorParts::Grouped {
                layout,
                codes: seg(SegmentRole::Codes),
                scales: seg(SegmentRole::Scales),
                offsets: seg(SegmentRole::Offsets),
            },
            WeightFormat::Compact(layout) => {
                TensorParts::Compact { layout, codes: seg(SegmentRole::Codes) }
            }
            WeightFormat::Block(layout) => {
                TensorParts::Block { layout, codes: seg(SegmentRole::Codes) }
            }
        }
    }
}

impl fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let segments: Vec<(SegmentRole, usize)> =
            self.segments().map(|(r, s)| (r, s.len())).collect();
        f.debug_struct("TensorView")
            .field("name", &self.tensor.name)
            .field("shape", &self.shape())
            .field("format", &self.variant.format)
            .field("segments", &segments)
            .finish()
    }
}
