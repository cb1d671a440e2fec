//! A sentence-transformers model directory: `config.json` and
//! `model.safetensors` from the input, then the validated directory, every
//! tensor read with its own shape, and the encoder loaded in f32 and int4.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qloader_format::WeightFormat;
use qloader_models::bert::ModelDir;
use qloader_fuzz::{file, scratch, split};
use qloader_models::BertEncoder;

fuzz_target!(|data: &[u8]| {
    let (config, weights) = split(data);
    file("config.json", config);
    file("model.safetensors", weights);
    file("tokenizer.json", b"{}");
    let Ok(dir) = ModelDir::open(scratch()) else { return };
    if let Ok(st) = dir.open_weights() {
        for name in st.tensor_names() {
            if let Ok(shape) = st.shape(&name) {
                let shape = shape.to_vec();
                let _ = st.tensor_f32(&name, &shape);
            }
        }
    }
    let _ = BertEncoder::load(&dir, &|_| WeightFormat::F32);
    let _ = BertEncoder::load(&dir, &|_| WeightFormat::int4());
});
