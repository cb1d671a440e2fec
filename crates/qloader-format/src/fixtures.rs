//! Where `scripts/fetch-fixtures.sh` puts the real models QLoader is tested
//! and demonstrated on: `$QLOADER_CACHE` if set, else `~/.cache/qloader`.

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
