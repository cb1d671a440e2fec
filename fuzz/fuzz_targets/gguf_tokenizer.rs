//! The tokenizer built from a GGUF file's metadata, then used: a fixed text
//! encoded and decoded, a chat prompt formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qloader_format::gguf::GgufFile;
use qloader_fuzz::file;
use qloader_models::GgufTokenizer;

fuzz_target!(|data: &[u8]| {
    let path = file("tokenizer.gguf", data);
    let Ok(gguf) = GgufFile::open(&path) else { return };
    let Ok(tok) = GgufTokenizer::from_gguf(&gguf) else { return };
    if let Ok(ids) = tok.encode("Hello <|im_start|> wörld 1234!") {
        let _ = tok.decode(&ids);
    }
    let _ = tok.chat_prompt("hi");
    let _ = tok.to_json();
});
