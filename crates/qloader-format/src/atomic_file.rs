//! Small artifact files (tables, profiles, plans): written atomically — the
//! bytes go to a temporary file in the destination's directory, are synced,
//! and the file is renamed over the destination, so a crash or a full disk
//! never leaves a file that looks complete but is not — and read back with
//! a size limit, so a wrong or hostile path never makes a reader allocate
//! without bound.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::{FormatError, Result};

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_io(path, bytes).map_err(|error| FormatError::Io { path: path.to_owned(), error })
}

/// `value` as pretty JSON and a final newline, written to `path`
/// atomically. The error is left for the caller to name the file in.
pub fn write_json_atomic<T: Serialize + ?Sized>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_atomic_io(path, &bytes)
}

/// [`write_atomic`], the error left for the caller to name the file in.
pub fn write_atomic_io(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |out| out.write_all(bytes))
}

/// Writes `path` atomically through `fill`, which streams the contents into
/// a buffered writer on a fresh temporary file beside `path`: the file is
/// synced and renamed over `path` only if `fill` succeeds, and the
/// temporary is removed on any error.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = temporary_path(path)?;
    let result = (|| {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable where the platform allows it.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A fresh name for a temporary file beside `path` (unique within the
/// process, and created with `create_new`, so never someone else's file).
fn temporary_path(path: &Path) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the target path has no file name")
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp_name = format!(".{}.{}.{n}.tmp", name.to_string_lossy(), std::process::id());
    Ok(path.with_file_name(tmp_name))
}

/// Why [`read_bounded`] returned no bytes.
#[derive(Debug)]
pub enum BoundedReadError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// The file holds more than the limit.
    TooLarge {
        /// The limit.
        max: u64,
    },
}

impl fmt::Display for BoundedReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundedReadError::Io(e) => e.fmt(f),
            BoundedReadError::TooLarge { max } => {
                write!(f, "larger than the {max} bytes such a file may have")
            }
        }
    }
}

impl std::error::Error for BoundedReadError {}

/// The bytes of `path`, if it holds at most `max` of them. Reads at most
/// `max + 1` bytes whatever the file claims, so a file that grows while it
/// is read cannot exceed the limit either.
pub fn read_bounded(path: &Path, max: u64) -> std::result::Result<Vec<u8>, BoundedReadError> {
    let file = File::open(path).map_err(BoundedReadError::Io)?;
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0);
    if hint > max {
        return Err(BoundedReadError::TooLarge { max });
    }
    let mut bytes = Vec::with_capacity(hint as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(BoundedReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(BoundedReadError::TooLarge { max });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary left");
    }

    #[test]
    fn bounded_reads_refuse_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        write_json_atomic(&p, &[1, 2, 3]).unwrap();
        let bytes = read_bounded(&p, 100).unwrap();
        assert_eq!(bytes, b"[\n  1,\n  2,\n  3\n]\n");
        let err = read_bounded(&p, 4).unwrap_err();
        assert!(matches!(err, BoundedReadError::TooLarge { max: 4 }), "{err}");
        assert!(err.to_string().contains("larger than the 4 bytes"), "{err}");
        assert!(matches!(read_bounded(&dir.path().join("no"), 9), Err(BoundedReadError::Io(_))));
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_file() {
        let err = write_atomic(Path::new("/nonexistent-dir/x.json"), b"x").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.json"), "{err}");
    }
}
