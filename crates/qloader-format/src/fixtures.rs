//! Where `scripts/fetch-fixtures.sh` puts the real models and text QLoader
//! is tested and demonstrated on: `$QLOADER_CACHE` if set, else
//! `~/.cache/qloader`.

use std::path::PathBuf;

/// Environment variable overriding the fixture cache directory.
pub const CACHE_ENV: &str = "QLOADER_CACHE";

/// Directory name of the all-MiniLM-L6-v2 fixture inside the cache.
pub const MINILM_DIR: &str = "all-minilm-l6-v2";

/// The fixture cache directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("qloader")
}

/// Directory of the all-MiniLM-L6-v2 fixture (which may not exist yet).
pub fn minilm_dir() -> PathBuf {
    cache_dir().join(MINILM_DIR)
}

/// Directory name of the SmolLM2-135M-Instruct GGUF fixture inside the cache.
pub const SMOLLM2_DIR: &str = "smollm2-135m-instruct";

/// The SmolLM2-135M-Instruct GGUF file (Q4_1 blocks; which may not exist yet).
pub fn smollm2_gguf() -> PathBuf {
    cache_dir().join(SMOLLM2_DIR).join("model.gguf")
}

/// The evaluation prose: the text of "Botchan" (Project Gutenberg #8868,
/// public domain), as `scripts/fetch-fixtures.sh` extracts it.
pub fn botchan_text() -> PathBuf {
    cache_dir().join("botchan").join("botchan.txt")
}

/// The default calibration prose, disjoint from the evaluation text: "Alice's
/// Adventures in Wonderland" (Lewis Carroll, public domain), as
/// `scripts/fetch-fixtures.sh` extracts it.
pub fn alice_text() -> PathBuf {
    cache_dir().join("alice").join("alice.txt")
}
