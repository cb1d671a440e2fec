//! Packed models at run time: writing one from a checkpoint and a plan
//! ([`pack`]), the header configuration each architecture carries
//! ([`config`]), the weight source that reads tensors in place and converts
//! those without a kernel ([`source`]), and opening a file into a ready model
//! ([`model`]), with the on-disk cache of load-time conversions
//! ([`fallback_cache`]), and writing a packed decoder as GGUF ([`export`]). The container format itself is `qloader_format::packed`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod export;
pub mod fallback_cache;
pub mod model;
mod nested_load;
pub mod pack;
mod pack_nested;
mod plan_choice;
pub mod source;

pub use model::{open_packed, LoadedModel, PackedEncoder, PackedModel};
pub use nested_load::rebuild_nested;
pub use pack::{
    pack_bert, pack_bert_with, pack_decoder, pack_decoder_with, pack_model, pack_model_plans,
    pack_model_plans_with, quantizable_tensors, MultiPackReport, Nesting, PackReport, PlanToPack,
    Quantization,
};
pub use plan_choice::{choose_plan, plan_named, PlanCandidate, PlanChoice, PlanSelection};
pub use source::{default_activations, LoadOptions, PackedSource, Placement, PlacementRole};
