//! The generator of the malformed-file suite: for every input QLoader reads
//! from outside (a model directory, a GGUF file, a packed model, a
//! sensitivity table, a plan, a device profile) a small valid input written
//! here, and one [`Case`] per failure class that breaks it in exactly one
//! way, with the exact error a user must get.
//!
//! Nothing here is a binary blob: every file is built by this code, so each
//! case says precisely what is wrong with it.

pub mod artifacts;
pub mod bert;
pub mod gguf;
pub mod hf_decoder;
pub mod packed;

use std::path::Path;

use anyhow::Result;
use qloader_analyze::SensitivityTable;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_hw::DeviceProfile;
use qloader_runtime::packed::{open_packed, LoadOptions};
use qloader_runtime::{DecoderSession, EncoderSession};
use qloader_schedule::Plan;

/// The contents of one file of a case.
pub enum Content {
    /// These bytes.
    Bytes(Vec<u8>),
    /// This many zero bytes, made with `set_len` (a sparse file: no disk
    /// blocks), for files that must be larger than a reader's limit.
    Sparse(u64),
}

/// The library entry point a case is opened with: the one the user's
/// command goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// A sentence-transformers directory: `EncoderSession::open` (the model
    /// directory, its tokenizer and every weight, as `qloader embed` does),
    /// then one sentence embedded.
    ModelDir,
    /// A decoder, GGUF file or Hugging Face checkpoint directory:
    /// `DecoderSession::open` (the reader, the tokenizer, the configuration
    /// and every weight, as `qloader generate` does).
    Gguf,
    /// A packed model: `open_packed` with checksums verified (as `qloader
    /// run` does).
    Packed,
    /// A packed model as `qloader inspect --verify` reads it:
    /// `PackedFile::open`, then every checksum.
    PackedInspect,
    /// A sensitivity table: `SensitivityTable::read`.
    Table,
    /// A plan: `Plan::read`.
    Plan,
    /// A device profile: `DeviceProfile::read`.
    Profile,
}

/// One failure class: the files, what to open, and the error it must give.
pub struct Case {
    /// `kind/what-is-wrong`; also the case's directory.
    pub class: &'static str,
    /// Files to write, relative to the case's directory.
    pub files: Vec<(String, Content)>,
    /// The path to open, relative to the case's directory (`""`: the
    /// directory itself).
    pub target: &'static str,
    /// How to open it.
    pub open: Open,
    /// The whole error text as `{:#}` prints it (the CLI's format), with
    /// `{path}` standing for the path opened.
    pub expected: String,
}

impl Case {
    /// A case of one file, `name`, which is also the path opened.
    pub fn file(
        class: &'static str,
        name: &'static str,
        bytes: Vec<u8>,
        open: Open,
        expected: impl Into<String>,
    ) -> Self {
        Self {
            class,
            files: vec![(name.to_owned(), Content::Bytes(bytes))],
            target: name,
            open,
            expected: expected.into(),
        }
    }
}

/// Every case of every input kind.
pub fn all_cases() -> Vec<Case> {
    let mut cases = bert::cases();
    cases.extend(gguf::cases());
    cases.extend(gguf::tokenizer_cases());
    cases.extend(hf_decoder::cases());
    cases.extend(packed::cases());
    cases.extend(artifacts::table_cases());
    cases.extend(artifacts::plan_cases());
    cases.extend(artifacts::profile_cases());
    cases
}

/// Writes `case`'s files under `dir` (the case's own directory).
pub fn write_case(case: &Case, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, content) in &case.files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match content {
            Content::Bytes(bytes) => std::fs::write(&path, bytes)?,
            Content::Sparse(len) => std::fs::File::create(&path)?.set_len(*len)?,
        }
    }
    Ok(())
}

/// Opens `path` the way `open` says; the error as anyhow carries it.
pub fn open(open: Open, path: &Path) -> Result<()> {
    match open {
        Open::ModelDir => {
            let session = EncoderSession::open(path, WeightFormat::int4(), ActivationFormat::F32)?;
            session.embed("hello the world")?;
        }
        Open::Gguf => {
            let format = WeightFormat::F32;
            DecoderSession::open(path, format, ActivationFormat::F32, &mut |_, _| {})?;
        }
        Open::Packed => {
            open_packed(path, &LoadOptions::default(), &mut |_| {})?;
        }
        Open::PackedInspect => {
            qloader_format::PackedFile::open(path)?.verify_all()?;
        }
        Open::Table => {
            SensitivityTable::read(path)?;
        }
        Open::Plan => {
            Plan::read(path)?;
        }
        Open::Profile => {
            DeviceProfile::read(path)?;
        }
    }
    Ok(())
}

/// Little-endian bytes of `values`.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `n` deterministic small values, different for each `seed`.
pub fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i * 31 + seed * 17) % 23) as f32 - 11.0) / 20.0).collect()
}

/// The undamaged inputs every case starts from; each must open without
/// error (else the cases would prove nothing).
pub fn valid_inputs() -> Vec<Case> {
    let ok = |class, name, bytes, open| Case::file(class, name, bytes, open, "");
    let model_dir = Case {
        class: "valid/model-dir",
        files: bert::model_files().into_iter().map(|(n, b)| (n, Content::Bytes(b))).collect(),
        target: "",
        open: Open::ModelDir,
        expected: String::new(),
    };
    let bert_packed = packed::bert_packed();
    let reassembled = packed::Parts::split(&bert_packed).assemble();
    let pretty = |v: &serde_json::Value| serde_json::to_vec_pretty(v).expect("JSON");
    let mut valid = vec![
        model_dir,
        ok("valid/gguf", "model.gguf", gguf::Gguf::tiny().build(), Open::Gguf),
        ok("valid/packed-bert", "model.qlm", bert_packed.clone(), Open::Packed),
        ok("valid/packed-bert-inspect", "model.qlm", bert_packed, Open::PackedInspect),
        ok("valid/packed-bert-reassembled", "model.qlm", reassembled, Open::Packed),
        ok("valid/packed-llama", "model.qlm", packed::llama_packed(), Open::Packed),
        ok("valid/table", "table.json", pretty(&artifacts::table()), Open::Table),
        ok("valid/plan", "plan.json", pretty(&artifacts::plan()), Open::Plan),
        ok("valid/profile", "profile.toml", artifacts::PROFILE.as_bytes().to_vec(), Open::Profile),
    ];
    valid.extend(hf_decoder::valid());
    valid
}
