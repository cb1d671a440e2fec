//! A GGUF file: parsed and validated, every tensor de-quantized, and the
//! decoder's configuration read from its metadata.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qloader_format::gguf::GgufFile;
use qloader_fuzz::file;
use qloader_models::llama::LlamaConfig;

fuzz_target!(|data: &[u8]| {
    let path = file("model.gguf", data);
    let Ok(gguf) = GgufFile::open(&path) else { return };
    for t in gguf.tensors() {
        let _ = gguf.tensor_f32(&t.name);
    }
    let _ = LlamaConfig::from_gguf(&gguf);
});
