//! A Hugging Face decoder checkpoint directory: `config.json`, the shard
//! index and one shard from the input (or, with an empty index, a single
//! `model.safetensors`), then the family looked up, the checkpoint opened and
//! the decoder loaded in f32 and int4.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qloader_format::WeightFormat;
use qloader_fuzz::{file, scratch, split};
use qloader_models::decoder;

/// The shard the seeds' indexes name.
const SHARD: &str = "model-00001-of-00001.safetensors";

fuzz_target!(|data: &[u8]| {
    let (config, rest) = split(data);
    let (index, weights) = split(rest);
    file("config.json", config);
    file("tokenizer.json", b"{}");
    let (single, index_path) =
        (scratch().join("model.safetensors"), scratch().join("model.safetensors.index.json"));
    if index.is_empty() {
        let _ = std::fs::remove_file(&index_path);
        file("model.safetensors", weights);
    } else {
        let _ = std::fs::remove_file(&single);
        file("model.safetensors.index.json", index);
        file(SHARD, weights);
    }
    let _ = qloader_models::family::detect(scratch());
    if let Ok(checkpoint) = decoder::open_checkpoint(scratch()) {
        let _ = checkpoint.tokenizer();
    }
    let _ = decoder::open(scratch(), &|_| WeightFormat::F32, &mut |_, _| {});
    let _ = decoder::open(scratch(), &|_| WeightFormat::int4(), &mut |_, _| {});
});
