//! The packed model: QLoader's own container for a model whose weights have
//! been quantized per a plan (DESIGN.md §4). This module owns the file format
//! — its [`PackedWriter`], its validating reader [`PackedFile`], and the rules
//! both share — and nothing else (no model loading, no kernels).
//!
//! # File format, version 1
//!
//! All integers are little-endian. Offsets are in bytes.
//!
//! | bytes | content |
//! |---|---|
//! | `0..8` | magic [`MAGIC`], `b"QLMODEL\0"` |
//! | `8..12` | `u32` format version, [`VERSION`] (= 1) |
//! | `12..16` | `u32` flags, 0 (no flag is defined in version 1) |
//! | `16..24` | `u64` header length `H` in bytes, at most [`MAX_HEADER_LEN`] (64 MiB) |
//! | `24..24+H` | the header: UTF-8 JSON, described below |
//! | `24+H..D` | zero bytes up to `D`, the next multiple of [`ALIGNMENT`] (64) |
//! | `D..` | the data section: blobs and tensor segments |
//!
//! Every offset in the header is relative to the data section start `D` and
//! is a multiple of 64; as `D` is too, every blob and segment starts 64-byte
//! aligned in the file and therefore in a memory map of it. Blobs and segments
//! do not overlap; the bytes between them are zero padding (readers do not
//! depend on their contents). The file ends exactly where the blob or segment
//! that ends last ends (at `D` if there is none), so a truncated or extended
//! file is rejected.
//!
//! ## Header
//!
//! ```json
//! {
//!   "schema": "qloader-packed",
//!   "version": 1,
//!   "created_by": "qloader 0.1.0",
//!   "architecture": "llama",
//!   "config": { "any": "JSON value" },
//!   "plan": { "path": "plan.json", "sha256": "<64 lowercase hex digits>" },
//!   "blobs": [ { "name": "config.json", "offset": 0, "len": 612, "crc32": 1234 } ],
//!   "tensors": [
//!     { "name": "model.layers.0.mlp.up_proj.weight", "shape": [1536, 576],
//!       "format": "int4g64",
//!       "segments": [ { "role": "codes", "offset": 640, "len": 442368 },
//!                     { "role": "scales", "offset": 443008, "len": 27648 },
//!                     { "role": "offsets", "offset": 470656, "len": 27648 } ],
//!       "crc32": 5678 }
//!   ]
//! }
//! ```
//!
//! * `schema` is exactly `"qloader-packed"`; `version` equals the preamble's.
//! * `created_by` and `architecture` are free strings (`architecture` names
//!   the model family the loader builds, e.g. `"llama"`, `"bert"`); `config`
//!   is any JSON value the loader interprets (a model's hyper-parameters).
//! * `plan` is `null` (or absent) or the path and SHA-256 (64 lowercase hex
//!   digits) of the plan file the weights were quantized by. Every other
//!   field is required.
//! * `blobs` are opaque byte strings the loader needs (`config.json`,
//!   `tokenizer.json`, ...): a name, the `offset` and `len` of the bytes in the
//!   data section, and the CRC-32 of those bytes.
//! * `tensors` are 2-D weight matrices, row-major (a vector is stored as one
//!   row, `[1, n]`). `shape` is `[rows, cols]`, both non-zero, with at most
//!   [`MAX_ELEMENTS`] (2^40) elements. `format` is a [`WeightFormat`] name
//!   (`f32`, `f16`, `int8`, `int4`, `int3g128`, ...). `segments` lists the
//!   tensor's byte ranges in the data section, exactly the roles of its format
//!   in exactly this order (see [`SegmentRole`] and [`segment_lengths`]):
//!
//!   | format | segments, in order, and their lengths in bytes |
//!   |---|---|
//!   | `f32` | `data`: `rows·cols·4`, `f32` row-major |
//!   | `f16` | `data`: `rows·cols·2`, `f16` row-major |
//!   | `int8` (per channel) | `codes`: `rows·cols`, `i8` row-major; `scales`: `rows·4`, one `f32` per row |
//!   | grouped `int{8,4,3,2}g{32,64,128}` | `codes`: `rows·row_code_bytes(cols)` ([`crate::grouped`] layout); `scales`: `rows·groups·2`, `f16`; `offsets`: `rows·groups·2`, `f16`; `groups = ceil(cols / group)`, row-major |
//!   | compact `int5k`, `int4k`, `int3k`, `int2k`, `nl4k` | `codes`: `rows·row_bytes(cols)`, each row its super-blocks ([`crate::compact`] layout) |
//!   | blocks `q4_0`, `q8_0`, `iq4_nl` | `codes`: `rows·⌈cols/32⌉·block_bytes`, each row its blocks ([`crate::block32`] layout) |
//!
//!   `crc32` is the CRC-32 (IEEE, as zlib computes it) of the tensor's
//!   segments' bytes concatenated in the listed order.
//! * Names are non-empty and unique among the tensors, and among the blobs.
//! * No other field is allowed anywhere (a new field means a new version).
//!
//! The writer lays out blobs first, then tensors in the order given, each
//! tensor's segments in the order above, each at the next multiple of 64.
//!
//! # File format, version 2: several plans in one file
//!
//! The preamble is version 1's with version 2. The header differs in three
//! places:
//!
//! * each tensor lists `variants` instead of `format`, `segments` and
//!   `crc32`: one or more stored forms, each `{ "format", "segments",
//!   "crc32" }` with version 1's rules, no two in the same format;
//! * there is no top-level `plan`;
//! * `plans` (at least one) says what can be loaded:
//!
//! ```json
//! "plans": [
//!   { "name": "4bpw", "bits_per_weight": 4.0, "bytes": 70254592,
//!     "predicted_loss": 0.213, "plan": { "path": "p4.json", "sha256": "…" },
//!     "variants": [0, 1, 0] }
//! ]
//! ```
//!
//! `variants` has one index per tensor, in the order of `tensors`: the
//! variant that plan loads. `bytes` is exactly the sum of those variants'
//! segment lengths. Names are non-empty and distinct; `bits_per_weight` is
//! positive; `predicted_loss` and `plan` may be `null`. Every variant is
//! loaded by at least one plan. Segments of all variants follow version 1's
//! placement rules (aligned, in bounds, no overlap, the file ends where the
//! last one ends). A reader shows one plan's variants at a time
//! ([`PackedFile::select_plan`]), so loading a plan touches only its bytes.
//!
//! A file with one variant per tensor and no plans is written as version 1.
//!
//! # File format, version 3: nested variants, per-variant losses
//!
//! Version 2's header, in which a variant may also have
//! `"predicted_loss"`, a finite number: the loss the first plan that loads
//! it predicted for its tensor (what a loader builds plans of its own
//! from); and `"base"`: the index
//! of another variant of the same tensor, listed before it, whose codes its
//! bit planes refine ([`crate::nested`]). A nested variant's `format` is the
//! grouped format it is rebuilt into (`int3`, `int4` or `int8g32`), wider
//! than its base's codes; its one segment, `planes`, holds
//! `rows · (bits − base bits) · ⌈cols/8⌉` bytes; its base is a uniform
//! compact variant (`int2k`, `int3k`, `int4k`) or another nested variant.
//! A plan's `bytes` count the variant it picks and every base under it, and
//! every variant is loaded by a plan or is the base of one that is. A file
//! with neither field is written as version 2.
//!
//! # Guarantees
//!
//! [`PackedFile::open`] validates all of the above before it hands out any
//! data, without allocating from an unchecked header field, so after it
//! succeeds no accessor can go out of bounds or panic. Checksums are checked
//! on request ([`PackedFile::verify`], [`PackedFile::verify_all`]) so that
//! opening a model does not read all of its weights.
//!
//! [`PackedWriter::write`] validates its input with the same rules, writes to a
//! temporary file beside the target, syncs it and renames it into place, so
//! a crash or a full disk never leaves a file at the target path that looks
//! complete.
//!
//! [`WeightFormat`]: crate::WeightFormat
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod layout;
mod reader;
mod schema;
mod validate;
mod writer;

#[cfg(test)]
mod tests;

pub use layout::{segment_lengths, SegmentRole, TensorParts};
pub use reader::{PackedFile, PlanView, TensorView};
pub use schema::{PlanRef, QuantRecord};
pub use writer::{PackedMeta, PackedPlan, PackedWriter};

/// The first eight bytes of every packed model.
pub const MAGIC: [u8; 8] = *b"QLMODEL\0";

/// The newest format version this build writes and reads (it reads every
/// version from 1; it writes version 1 for a file with one plan, 2 for
/// several plans without nested variants).
pub const VERSION: u32 = 3;

/// The value of the `schema` field of the header.
pub const SCHEMA: &str = "qloader-packed";

/// Alignment, in bytes, of the data section and of every blob and segment.
pub const ALIGNMENT: u64 = 64;

/// Largest accepted header (JSON) length, in bytes.
pub const MAX_HEADER_LEN: u64 = 64 << 20;

/// Largest accepted element count (`rows · cols`) of one tensor.
pub const MAX_ELEMENTS: u64 = 1 << 40;

/// Bytes before the header: magic, version, flags and header length.
pub const PREAMBLE_LEN: usize = 24;
