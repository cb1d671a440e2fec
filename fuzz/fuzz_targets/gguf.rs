//! A GGUF file: parsed and validated, every tensor de-quantized, the
//! decoder's configuration read from its metadata, and the file written
//! again by the GGUF writer (as `export` writes) and read back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qloader_format::gguf::writer::{metadata_file_bytes, read_metadata};
use qloader_format::gguf::{write_gguf, GgufFile, GgufTensorOut};
use qloader_fuzz::file;
use qloader_models::llama::LlamaConfig;

fuzz_target!(|data: &[u8]| {
    let path = file("model.gguf", data);
    let Ok(gguf) = GgufFile::open(&path) else { return };
    for t in gguf.tensors() {
        let _ = gguf.tensor_f32(&t.name);
    }
    let _ = LlamaConfig::from_gguf(&gguf);

    // The metadata alone, as a packed model keeps it, reads back unchanged.
    let kept = metadata_file_bytes(gguf.metadata());
    assert_eq!(read_metadata(&kept).expect("written metadata reads back"), gguf.metadata());
    // The whole file rewritten: same metadata, same tensors, same bytes.
    let tensors: Vec<GgufTensorOut> = gguf
        .tensors()
        .iter()
        .map(|t| GgufTensorOut {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ty: t.ggml_type,
            data: gguf.tensor_bytes(t).to_vec(),
        })
        .collect();
    let again = path.with_extension("again.gguf");
    if write_gguf(&again, gguf.metadata(), &tensors).is_ok() {
        let back = GgufFile::open(&again).expect("a written file opens");
        assert_eq!(back.metadata(), gguf.metadata());
        for (t, out) in back.tensors().iter().zip(&tensors) {
            assert_eq!((&t.name, back.tensor_bytes(t)), (&out.name, &out.data[..]));
        }
    }
    let _ = std::fs::remove_file(&again);
});
