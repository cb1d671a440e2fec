//! Bounded reads of the small text files beside a model's weights
//! (`config.json`, `tokenizer.json`, a shard index …): a file larger than
//! its limit is refused before it is read, so that a wrong path cannot make
//! a reader allocate without bound.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::Path;

use crate::atomic_file::{read_bounded, BoundedReadError};
use crate::error::{FormatError, Result};

/// Largest `config.json` (or other JSON side file of a model directory)
/// that is read: far above any real one (a few kilobytes, a few hundred
/// with label maps), so that a wrong path cannot make the reader allocate
/// without bound.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The text of the configuration file at `path`, read with the
/// [`MAX_CONFIG_BYTES`] limit.
pub fn read_config_text(path: &Path) -> Result<String> {
    read_text_bounded(path, MAX_CONFIG_BYTES)
}

/// The UTF-8 text of the file at `path`, refused if it holds more than
/// `max` bytes.
pub fn read_text_bounded(path: &Path, max: u64) -> Result<String> {
    let bytes = read_bounded(path, max).map_err(|e| match e {
        BoundedReadError::Io(error) => FormatError::Io { path: path.to_owned(), error },
        BoundedReadError::TooLarge { max } => FormatError::TooLarge { path: path.to_owned(), max },
    })?;
    String::from_utf8(bytes).map_err(|e| FormatError::Io {
        path: path.to_owned(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })
}
