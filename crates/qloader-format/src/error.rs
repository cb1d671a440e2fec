//! The error type of the format crate: every variant names the file (and the
//! tensor or field where there is one) and says what is wrong with it.

use std::path::PathBuf;

/// Why a model file could not be read or is not what QLoader expects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The model directory itself does not exist or is not a directory.
    #[error("model directory {path}: {reason}")]
    ModelDir {
        /// The directory that was given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file the model needs is absent.
    #[error("{path}: missing ({what})")]
    MissingFile {
        /// Where the file was expected.
        path: PathBuf,
        /// What the file is for.
        what: &'static str,
    },
    /// The operating system refused to read a file.
    #[error("{path}: cannot read: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (not its `source()`: the message shows it).
        error: std::io::Error,
    },
    /// A file is larger than the limit for its kind (it is not read).
    #[error("{path}: larger than the {max} bytes such a file may have")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        max: u64,
    },
    /// A JSON file is not valid JSON or does not have the expected structure.
    #[error("{path}: invalid JSON: {error}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error, with line and column (not its `source()`: the message shows it).
        error: serde_json::Error,
    },
    /// A configuration field has a value QLoader cannot use.
    #[error("{path}: field `{field}`: {reason}")]
    ConfigField {
        /// The configuration file.
        path: PathBuf,
        /// The field's name.
        field: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
    /// The safetensors header or layout is invalid (truncated file, bad offsets, ...).
    #[error("{path}: invalid safetensors file: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors validator reported.
        reason: String,
    },
    /// The GGUF file is malformed or uses something this reader does not support.
    #[error("{path}: invalid GGUF file: {reason}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the tensor or metadata key and the offset where relevant.
        reason: String,
    },
    /// A tensor the model needs is not in the file.
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor has a different shape from the one the configuration implies.
    #[error("{path}: tensor `{tensor}` has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The shape implied by the configuration.
        expected: Vec<usize>,
        /// The shape stored in the file.
        got: Vec<usize>,
    },
    /// A tensor is stored in an element type QLoader does not read here.
    #[error("{path}: tensor `{tensor}` has dtype {got}, expected one of {expected}")]
    UnexpectedDtype {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The accepted dtypes.
        expected: &'static str,
        /// The dtype stored in the file.
        got: String,
    },
    /// A file could not be written (or its temporary could not be created,
    /// synced or renamed into place).
    #[error("{path}: cannot write: {error}")]
    Write {
        /// The file that was being written.
        path: PathBuf,
        /// The underlying error (not its `source()`: the message shows it).
        error: std::io::Error,
    },
    /// A packed model is malformed (or a writer was asked to produce a
    /// malformed one): bad preamble, header, layout or limits.
    #[error("{path}: invalid packed model: {reason}")]
    Packed {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the offending values.
        reason: String,
    },
    /// One tensor of a packed model is malformed (or was given to the writer
    /// in a form that does not match its format and shape).
    #[error("{path}: invalid packed model: tensor `{tensor}`: {reason}")]
    PackedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong, with the offending values.
        reason: String,
    },
    /// A packed model has a format version this build does not read.
    #[error("{path}: packed model version {found}, this build reads versions 1 to {supported}")]
    PackedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file's preamble.
        found: u32,
        /// The newest version this build reads (it reads every one from 1).
        supported: u32,
    },
    /// The bytes of a tensor or blob do not match the CRC-32 in the header.
    #[error(
        "{path}: {kind} `{name}`: checksum mismatch (header has {expected:#010x}, data has {actual:#010x})"
    )]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// What the object is: `"tensor"` or `"blob"`.
        kind: &'static str,
        /// The tensor's or blob's name.
        name: String,
        /// The CRC-32 recorded in the header.
        expected: u32,
        /// The CRC-32 of the bytes in the file.
        actual: u32,
    },
    /// A blob that was asked for is not in the packed model.
    #[error("{path}: blob `{blob}` is missing")]
    MissingBlob {
        /// The file.
        path: PathBuf,
        /// The blob's name.
        blob: String,
    },
    /// A weight-format name was not recognised.
    #[error("unknown weight format `{name}` (known: {known})")]
    UnknownFormat {
        /// The name that was given.
        name: String,
        /// The names that are accepted.
        known: &'static str,
    },
    /// An activation-format name was not recognised.
    #[error("unknown activation format `{name}` (known: f32, int8)")]
    UnknownActivations {
        /// The name that was given.
        name: String,
    },
    /// A format-family name was not recognised.
    #[error("unknown format family `{name}` (known: {known})")]
    UnknownFamily {
        /// The name that was given.
        name: String,
        /// The names that are accepted.
        known: String,
    },
    /// A quantization-method name was not recognised.
    #[error("unknown quantization method `{name}` (known: rtn, imatrix, gptq)")]
    UnknownMethod {
        /// The name that was given.
        name: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;
