//! Packed models: the tiny BERT of [`super::bert`] and the tiny decoder of
//! [`super::gguf`] packed by the real packer (`pack_bert`, `pack_decoder`,
//! through `PackedWriter`), then broken in the preamble, the header, the
//! layout, the data or the configuration the header carries.

use qloader_format::{PlanRef, WeightFormat};
use qloader_models::bert::ModelDir;
use qloader_runtime::packed::{
    pack_bert, pack_decoder, pack_model_plans_with, quantizable_tensors, Nesting, PlanToPack,
    Quantization,
};
use serde_json::{json, Value};

use super::{bert, gguf, Case, Open};

/// Bytes before the header: magic, version, flags, header length.
const PREAMBLE: usize = 24;

/// The format the tiny BERT's tensor `name` is packed in: a mixture, so
/// that every segment kind appears.
fn bert_format(name: &str) -> WeightFormat {
    let f = if name.contains("query") {
        "int8"
    } else if name.contains("key") {
        "int4g32"
    } else if name.contains("value") {
        "int2g32"
    } else if name.contains("intermediate") {
        "f16"
    } else if name.contains("word_embeddings") {
        "int8g32"
    } else {
        "int4"
    };
    f.parse().expect("a format name")
}

/// The tiny BERT, packed.
pub fn bert_packed() -> Vec<u8> {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    for (name, bytes) in bert::model_files() {
        std::fs::write(scratch.path().join(name), bytes).expect("writing the tiny model");
    }
    let dir = ModelDir::open(scratch.path()).expect("the tiny model is valid");
    let out = scratch.path().join("model.qlm");
    let plan = PlanRef { path: "plan.json".into(), sha256: "0".repeat(64) };
    pack_bert(&dir, &bert_format, Some(plan), &out).expect("packing the tiny model");
    std::fs::read(&out).expect("reading the packed model")
}

/// The tiny decoder, packed with every quantizable tensor in int8.
pub fn llama_packed() -> Vec<u8> {
    llama_packed_in(WeightFormat::Int8PerChannel)
}

/// The tiny decoder, packed with every quantizable tensor in `format`.
fn llama_packed_in(format: WeightFormat) -> Vec<u8> {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let path = scratch.path().join("model.gguf");
    std::fs::write(&path, gguf::Gguf::tiny().build()).expect("writing the tiny decoder");
    let out = scratch.path().join("model.qlm");
    pack_decoder(&path, &|_| format, None, &out, &mut |_, _| {}).expect("packing the tiny decoder");
    std::fs::read(&out).expect("reading the packed decoder")
}

/// The tiny decoder packed with two plans: `small` (every quantizable
/// tensor int4) and `big` (int8), in one version 2 file.
fn llama_two_plans() -> Vec<u8> {
    llama_plans([("small", "int4", 0.5), ("big", "int8", 0.1)], None)
}

/// The tiny decoder packed with two plans, `small` (every quantizable
/// tensor int3k) and `big` (int4k, stored nested: one bit plane on the
/// int3k codes, rebuilt into int4).
fn llama_nested_plans() -> Vec<u8> {
    let nesting = Some(Nesting { max_error_ratio: 1000.0 });
    llama_plans([("small", "int3k", 0.5), ("big", "int4k", 0.1)], nesting)
}

/// The tiny decoder packed with two plans, each (name, format of every
/// quantizable tensor, predicted loss), nested as `nesting` says.
fn llama_plans(plans: [(&str, &str, f64); 2], nesting: Option<Nesting>) -> Vec<u8> {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let path = scratch.path().join("model.gguf");
    std::fs::write(&path, gguf::Gguf::tiny().build()).expect("writing the tiny decoder");
    let names = quantizable_tensors(&path).expect("the tiny decoder's tensors");
    let plans = plans
        .into_iter()
        .map(|(name, format, loss)| PlanToPack {
            name: name.to_owned(),
            formats: names.iter().map(|n| (n.clone(), format.parse().expect("a format"))).collect(),
            quantization: Quantization::default(),
            predicted_loss: Some(loss),
            tensor_losses: Default::default(),
            plan: None,
        })
        .collect();
    let out = scratch.path().join("model.qlm");
    pack_model_plans_with(&path, plans, nesting, &out, &mut |_, _, _| {})
        .expect("packing two plans");
    std::fs::read(&out).expect("reading the packed decoder")
}

/// A packed file taken apart: its version, its header as JSON and its data
/// section.
#[derive(Clone)]
pub struct Parts {
    pub version: u32,
    pub header: Value,
    pub data: Vec<u8>,
}

impl Parts {
    /// Takes apart a file written by `PackedWriter`.
    pub fn split(bytes: &[u8]) -> Self {
        let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")) as usize;
        let header = serde_json::from_slice(&bytes[PREAMBLE..PREAMBLE + len]).expect("header");
        let data_start = (PREAMBLE + len).next_multiple_of(64);
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        Self { version, header, data: bytes[data_start..].to_vec() }
    }

    /// The version 1 file: preamble, `json`, zero padding to 64, the data
    /// section.
    pub fn assemble_json(json: &[u8], data: &[u8]) -> Vec<u8> {
        Self::assemble_version(1, json, data)
    }

    /// [`Parts::assemble_json`] with `version` in the preamble.
    fn assemble_version(version: u32, json: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = b"QLMODEL\0".to_vec();
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(json);
        out.resize(out.len().next_multiple_of(64), 0);
        out.extend_from_slice(data);
        out
    }

    /// The file again, with the header as it is now (keys sorted: the
    /// reader does not depend on their order).
    pub fn assemble(&self) -> Vec<u8> {
        let json = serde_json::to_vec(&self.header).expect("JSON");
        Self::assemble_version(self.version, &json, &self.data)
    }

    /// The header entry of tensor `name`.
    pub fn tensor(&mut self, name: &str) -> &mut Value {
        let tensors = self.header["tensors"].as_array_mut().expect("tensors");
        tensors.iter_mut().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no {name}"))
    }

    /// Offset and length in the data section of blob `name`.
    pub fn blob_range(&self, name: &str) -> (usize, usize) {
        let blobs = self.header["blobs"].as_array().expect("blobs");
        let b = blobs.iter().find(|b| b["name"] == name).unwrap_or_else(|| panic!("no {name}"));
        (b["offset"].as_u64().expect("offset") as usize, b["len"].as_u64().expect("len") as usize)
    }

    /// Replaces `from` by `to` (of the same length) in blob `name` and
    /// records the new checksum, so only the blob's meaning changes.
    pub fn edit_blob(&mut self, name: &str, from: &str, to: &str) {
        assert_eq!(from.len(), to.len());
        let (offset, len) = self.blob_range(name);
        let blob = &mut self.data[offset..offset + len];
        let at = blob.windows(from.len()).position(|w| w == from.as_bytes()).expect("text in blob");
        blob[at..at + to.len()].copy_from_slice(to.as_bytes());
        let crc = crc32fast::hash(blob);
        let blobs = self.header["blobs"].as_array_mut().expect("blobs");
        let b = blobs.iter_mut().find(|b| b["name"] == name).expect("blob");
        b["crc32"] = json!(crc);
    }
}

const LN: &str = "embeddings.LayerNorm.weight";
const QUERY: &str = "encoder.layer.0.attention.self.query.weight";
const KEY: &str = "encoder.layer.0.attention.self.key.weight";

fn case(class: &'static str, bytes: Vec<u8>, expected: &str) -> Case {
    Case::file(class, "model.qlm", bytes, Open::Packed, expected)
}

fn header_case(
    class: &'static str,
    good: &Parts,
    edit: impl FnOnce(&mut Parts),
    expected: &str,
) -> Case {
    let mut p = good.clone();
    edit(&mut p);
    case(class, p.assemble(), expected)
}

fn patched(good: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
    let mut b = good.to_vec();
    b[at..at + with.len()].copy_from_slice(with);
    b
}

fn segment(p: &mut Parts, tensor: &str, role: &str) -> (u64, u64) {
    let segs = p.tensor(tensor)["segments"].as_array().expect("segments").clone();
    let s = segs.iter().find(|s| s["role"] == role).expect("segment");
    (s["offset"].as_u64().expect("offset"), s["len"].as_u64().expect("len"))
}

fn set_segment(p: &mut Parts, tensor: &str, role: &str, key: &str, v: Value) {
    let segs = p.tensor(tensor)["segments"].as_array_mut().expect("segments");
    let s = segs.iter_mut().find(|s| s["role"] == role).expect("segment");
    s[key] = v;
}

/// Every packed-model case.
pub fn cases() -> Vec<Case> {
    // The packer's own file, with `created_by` fixed so that the offsets and
    // lengths in the expected errors do not move with the crate's version.
    let mut parts = Parts::split(&bert_packed());
    parts.header["created_by"] = json!("qloader");
    let good = parts.assemble();
    let p = &parts;
    let data_len = p.data.len() as u64;
    let mut cases = vec![
        case(
            "packed/empty",
            Vec::new(),
            "{path}: invalid packed model: file is 0 bytes, shorter than the 24-byte preamble \
             (truncated?)",
        ),
        case(
            "packed/bad-magic",
            patched(&good, 0, b"GGUF"),
            "{path}: invalid packed model: wrong magic b\"GGUFDEL\\x00\" (expected \
             b\"QLMODEL\\0\"): not a QLoader packed model",
        ),
        case(
            "packed/truncated-preamble",
            good[..12].to_vec(),
            "{path}: invalid packed model: file is 12 bytes, shorter than the 24-byte preamble \
             (truncated?)",
        ),
        case(
            "packed/unsupported-version",
            patched(&good, 8, &4u32.to_le_bytes()),
            "{path}: packed model version 4, this build reads versions 1 to 3",
        ),
        case(
            "packed/unknown-flags",
            patched(&good, 12, &1u32.to_le_bytes()),
            "{path}: invalid packed model: flags 0x1 are not defined in version 1 (expected 0)",
        ),
        case(
            "packed/header-length-beyond-file",
            patched(&good, 16, &(good.len() as u64).to_le_bytes()),
            "{path}: invalid packed model: header length 8480 runs past the end of the file \
             (8456 bytes after the preamble; truncated?)",
        ),
        case(
            "packed/header-length-over-limit",
            patched(&good, 16, &((64u64 << 20) + 1).to_le_bytes()),
            "{path}: invalid packed model: header length 67108865 exceeds the limit of 67108864 \
             bytes",
        ),
        case(
            "packed/header-not-utf8",
            {
                let mut json = serde_json::to_vec(&p.header).expect("JSON");
                let at = json.windows(7).position(|w| w == b"qloader").expect("created_by");
                json[at] = 0xff;
                Parts::assemble_json(&json, &p.data)
            },
            "{path}: invalid packed model: header is not UTF-8: invalid utf-8 sequence of 1 \
             bytes from index 242",
        ),
        case(
            "packed/header-not-json",
            {
                let mut json = serde_json::to_vec(&p.header).expect("JSON");
                let n = json.len();
                json[n - 1] = b' ';
                Parts::assemble_json(&json, &p.data)
            },
            "{path}: invalid packed model: header is not a valid packed-model header: EOF while \
             parsing an object at line 1 column 4105",
        ),
        case(
            "packed/padding-not-zero",
            {
                let mut json = serde_json::to_vec(&p.header).expect("JSON");
                if (PREAMBLE + json.len()).is_multiple_of(64) {
                    json.push(b' ');
                }
                let mut b = Parts::assemble_json(&json, &p.data);
                b[PREAMBLE + json.len()] = 1;
                b
            },
            "{path}: invalid packed model: padding between the header and the data section \
             (bytes 4129..4160) is not zero",
        ),
        header_case(
            "packed/header-unknown-field",
            p,
            |p| p.header["compression"] = json!("zstd"),
            "{path}: invalid packed model: header is not a valid packed-model header: unknown \
             field `compression`, expected one of `schema`, `version`, `created_by`, \
             `architecture`, `config`, `plan`, `quantization`, `blobs`, `tensors` at line 1 \
             column 175",
        ),
        header_case(
            "packed/unknown-quantization-method",
            p,
            |p| p.header["quantization"]["method"] = json!("awq"),
            "{path}: invalid packed model: header is not a valid packed-model header: unknown \
             variant `awq`, expected one of `rtn`, `imatrix`, `gptq` at line 1 column 404",
        ),
        header_case(
            "packed/header-missing-field",
            p,
            |p| {
                p.header.as_object_mut().expect("object").remove("created_by");
            },
            "{path}: invalid packed model: header is not a valid packed-model header: missing \
             field `created_by` at line 1 column 4082",
        ),
        header_case(
            "packed/header-wrong-schema",
            p,
            |p| p.header["schema"] = json!("qloader-packed-2"),
            "{path}: invalid packed model: header schema is `qloader-packed-2`, expected \
             `qloader-packed`",
        ),
        header_case(
            "packed/header-version-disagrees",
            p,
            |p| p.header["version"] = json!(2),
            "{path}: invalid packed model: header says version 2 but the preamble says version 1",
        ),
        header_case(
            "packed/bad-plan-digest",
            p,
            |p| p.header["plan"]["sha256"] = json!("abc"),
            "{path}: invalid packed model: plan sha256 `abc` is not 64 lowercase hexadecimal \
             digits",
        ),
        header_case(
            "packed/blob-out-of-range",
            p,
            |p| p.header["blobs"][0]["offset"] = json!(1u64 << 40),
            "{path}: invalid packed model: blob `config.json`: bytes \
             1099511627776..1099511628024 of the data section run past its end (4320 bytes; \
             truncated file?)",
        ),
        header_case(
            "packed/blob-offset-overflows",
            p,
            |p| {
                p.header["blobs"][0]["offset"] = json!(u64::MAX - 63);
            },
            "{path}: invalid packed model: blob `config.json`: offset 18446744073709551552 + \
             length 248 overflows",
        ),
        header_case(
            "packed/duplicate-blob",
            p,
            |p| p.header["blobs"][1]["name"] = json!("config.json"),
            "{path}: invalid packed model: two blobs are named `config.json`",
        ),
        header_case(
            "packed/empty-tensor-name",
            p,
            |p| p.tensor(QUERY)["name"] = json!(""),
            "{path}: invalid packed model: a tensor has an empty name",
        ),
        header_case(
            "packed/duplicate-tensor",
            p,
            |p| p.tensor(KEY)["name"] = json!(QUERY),
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             two tensors have this name",
        ),
        header_case(
            "packed/unknown-format",
            p,
            |p| p.tensor(QUERY)["format"] = json!("int5"),
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             unknown format `int5`",
        ),
        header_case(
            "packed/shape-not-2d",
            p,
            |p| p.tensor(QUERY)["shape"] = json!([64]),
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             shape [64] has 1 dimensions, expected 2 ([rows, cols])",
        ),
        header_case(
            "packed/shape-zero",
            p,
            |p| p.tensor(QUERY)["shape"] = json!([0, 8]),
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             shape [0, 8] has a zero dimension",
        ),
        header_case(
            "packed/shape-absurd",
            p,
            |p| p.tensor(QUERY)["shape"] = json!([1u64 << 21, 1u64 << 20]),
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             shape [2097152, 1048576] has 2199023255552 elements, more than the limit of \
             1099511627776",
        ),
        header_case(
            "packed/shape-overflows",
            p,
            |p| p.tensor(QUERY)["shape"] = json!([1u64 << 40, 1u64 << 40]),
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             shape [1099511627776, 1099511627776]: rows·cols overflows 64 bits",
        ),
        header_case(
            "packed/segment-unknown-role",
            p,
            |p| {
                set_segment(p, QUERY, "scales", "role", json!("bias"));
            },
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             unknown segment role `bias`",
        ),
        header_case(
            "packed/segment-of-another-format",
            p,
            |p| {
                set_segment(p, QUERY, "scales", "role", json!("offsets"));
            },
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             segment `offsets` does not belong to format int8 (expected segments: codes, scales)",
        ),
        header_case(
            "packed/segment-missing",
            p,
            |p| {
                p.tensor(QUERY)["segments"].as_array_mut().expect("segments").pop();
            },
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             segment `scales` is missing (format int8 has segments: codes, scales)",
        ),
        header_case(
            "packed/segment-listed-twice",
            p,
            |p| {
                set_segment(p, QUERY, "scales", "role", json!("codes"));
            },
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             segment `codes` is listed twice",
        ),
        header_case(
            "packed/segments-out-of-order",
            p,
            |p| {
                p.tensor(QUERY)["segments"].as_array_mut().expect("segments").swap(0, 1);
            },
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             segments must be listed in the order codes, scales",
        ),
        header_case(
            "packed/segment-wrong-length",
            p,
            |p| {
                let (_, len) = segment(p, QUERY, "codes");
                set_segment(p, QUERY, "codes", "len", json!(len + 1));
            },
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             segment `codes` is 65 bytes, format int8 with shape [8, 8] needs 64",
        ),
        header_case(
            "packed/segment-unaligned",
            p,
            |p| {
                let (offset, _) = segment(p, QUERY, "codes");
                set_segment(p, QUERY, "codes", "offset", json!(offset + 8));
            },
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             segment `codes`: offset 2376 is not a multiple of 64",
        ),
        header_case(
            "packed/segment-out-of-range",
            p,
            |p| {
                set_segment(p, QUERY, "codes", "offset", json!(data_len.next_multiple_of(64)));
            },
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.query.weight`: \
             segment `codes`: bytes 4352..4416 of the data section run past its end (4320 bytes; \
             truncated file?)",
        ),
        header_case(
            "packed/segments-overlap",
            p,
            |p| {
                let (offset, _) = segment(p, QUERY, "codes");
                set_segment(p, KEY, "codes", "offset", json!(offset));
            },
            "{path}: invalid packed model: tensor `encoder.layer.0.attention.self.key.weight` \
             segment `codes` (bytes 2368..2496 of the data section) overlaps tensor \
             `encoder.layer.0.attention.self.query.weight` segment `codes` (bytes 2368..2432)",
        ),
        case(
            "packed/data-truncated",
            good[..good.len() - 10].to_vec(),
            "{path}: invalid packed model: tensor `encoder.layer.0.output.LayerNorm.bias`: \
             segment `data`: bytes 4288..4320 of the data section run past its end (4310 bytes; \
             truncated file?)",
        ),
        case(
            "packed/data-extended",
            {
                let mut b = good.clone();
                b.extend_from_slice(&[0; 64]);
                b
            },
            "{path}: invalid packed model: the data section is 4384 bytes but its last blob or \
             segment ends at 4320: 64 bytes follow it",
        ),
        header_case(
            "packed/tensor-checksum-mismatch",
            p,
            |p| {
                let (offset, _) = segment(p, LN, "data");
                p.data[offset as usize + 5] ^= 0x40;
            },
            "{path}: tensor `embeddings.LayerNorm.weight`: checksum mismatch (header has \
             0x41ef9f74, data has 0xe34c3461)",
        ),
        header_case(
            "packed/blob-checksum-mismatch",
            p,
            |p| {
                let (offset, _) = p.blob_range("tokenizer.json");
                p.data[offset + 3] ^= 0x01;
            },
            "{path}: blob `tokenizer.json`: checksum mismatch (header has 0x37534d0b, data has \
             0xd7dddbc8)",
        ),
        header_case(
            "packed/unknown-architecture",
            p,
            |p| p.header["architecture"] = json!("gpt2"),
            "{path}: architecture `gpt2` is not one this build runs (bert, llama)",
        ),
        header_case(
            "packed/missing-tensor",
            p,
            |p| {
                let tensors = p.header["tensors"].as_array_mut().expect("tensors");
                tensors.retain(|t| t["name"] != KEY);
            },
            "{path}: tensor `encoder.layer.0.attention.self.key.weight` is missing",
        ),
        header_case(
            "packed/missing-blob",
            p,
            |p| {
                let blobs = p.header["blobs"].as_array_mut().expect("blobs");
                blobs.retain(|b| b["name"] != "tokenizer.json");
            },
            "{path}: blob `tokenizer.json` is missing",
        ),
        header_case(
            "packed/config-unknown-pooling",
            p,
            |p| p.header["config"]["pooling"] = json!("max"),
            "{path}: header config: unknown variant `max`, expected `mean` or `cls`",
        ),
        header_case(
            "packed/config-max-seq-length-zero",
            p,
            |p| p.header["config"]["max_seq_length"] = json!(0),
            "{path}: header config: max_seq_length 0 is outside 1..=16",
        ),
        header_case(
            "packed/embedded-config-invalid",
            p,
            |p| {
                p.edit_blob("config.json", "\"hidden_act\":\"gelu\"", "\"hidden_act\":\"relu\"");
            },
            "{path}/config.json: field `hidden_act`: `relu` is not supported (only the exact erf \
             `gelu`)",
        ),
        header_case(
            "packed/embedded-tokenizer-invalid",
            p,
            |p| {
                p.edit_blob("tokenizer.json", "\"WordPiece\"", "\"WordPeace\"");
            },
            "{path}/tokenizer.json: invalid tokenizer: data did not match any variant of \
             untagged enum ModelUntagged at line 9 column 225",
        ),
        header_case(
            "packed/tensor-shape-disagrees-with-config",
            p,
            |p| {
                p.edit_blob("config.json", "\"intermediate_size\":16", "\"intermediate_size\":32");
            },
            "{path}: tensor `encoder.layer.0.intermediate.dense.weight` has shape [16, 8], \
             expected [32, 8]",
        ),
    ];
    let mut llama = Parts::split(&llama_packed());
    llama.header["created_by"] = json!("qloader");
    let l = &llama;
    cases.extend([
        header_case(
            "packed/llama-config-invalid",
            l,
            |p| p.header["config"]["model"]["kv_heads"] = json!(3),
            "{path}: header config: kv_heads = 3 is outside 1..=2",
        ),
        header_case(
            "packed/llama-config-missing-field",
            l,
            |p| {
                p.header["config"]["model"].as_object_mut().expect("object").remove("rope_base");
            },
            "{path}: header config: missing field `rope_base`",
        ),
        header_case(
            "packed/llama-special-token-beyond-vocabulary",
            l,
            |p| {
                p.header["config"]["tokenizer"]["eos"] = json!(99);
            },
            "{path}/tokenizer.json: invalid tokenizer: special token 99 is outside the 8 tokens",
        ),
    ]);
    // A compact or block format's codes segment one byte short or long.
    for (class, format, delta, expected) in [
        (
            "packed/compact-segment-wrong-length",
            "int3k",
            -1,
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: segment `codes` is 143 \
             bytes, format int3k with shape [8, 8] needs 144",
        ),
        (
            "packed/nl4k-segment-wrong-length",
            "nl4k",
            1,
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: segment `codes` is 153 \
             bytes, format nl4k with shape [8, 8] needs 152",
        ),
        (
            "packed/block-segment-wrong-length",
            "q8_0",
            1,
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: segment `codes` is 273 \
             bytes, format q8_0 with shape [8, 8] needs 272",
        ),
    ] {
        let parts = Parts::split(&llama_packed_in(format.parse().expect("a format")));
        cases.push(header_case(
            class,
            &parts,
            |p| {
                let (_, len) = segment(p, "blk.0.attn_q.weight", "codes");
                let len = len.checked_add_signed(delta).expect("a length");
                set_segment(p, "blk.0.attn_q.weight", "codes", "len", json!(len));
            },
            expected,
        ));
    }
    cases.extend(two_plan_cases());
    cases.extend(nested_cases());
    let mut inspect = header_case(
        "packed-inspect/tensor-checksum-mismatch",
        p,
        |p| {
            let last =
                p.header["tensors"].as_array().expect("tensors").last().expect("a tensor").clone();
            let offset = last["segments"][0]["offset"].as_u64().expect("offset");
            p.data[offset as usize] ^= 0x80;
        },
        "{path}: tensor `encoder.layer.0.output.LayerNorm.bias`: checksum mismatch (header has \
         0x5e6d38a4, data has 0xb4a64fec)",
    );
    inspect.open = Open::PackedInspect;
    cases.push(inspect);
    cases
}

/// A multi-plan file of the tiny decoder taken apart, with `created_by`
/// fixed, and the index of `blk.0.attn_q.weight` among its tensors.
fn plans_file(bytes: &[u8]) -> (Parts, usize) {
    let mut parts = Parts::split(bytes);
    parts.header["created_by"] = json!("qloader");
    let at = parts.header["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .position(|t| t["name"] == "blk.0.attn_q.weight")
        .expect("the tensor");
    (parts, at)
}

/// The classes of a version 2 file's plans and variants, each breaking the
/// tiny decoder's two-plan file in one way.
fn two_plan_cases() -> Vec<Case> {
    let (parts, at) = plans_file(&llama_two_plans());
    let p = &parts;
    vec![
        header_case(
            "packed/plan-picks-a-missing-variant",
            p,
            |p| p.header["plans"][1]["variants"][at] = json!(5),
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: plan `big` picks \
             variant 5, but the tensor has 2 (numbered from 0)",
        ),
        header_case(
            "packed/variant-in-no-plan",
            p,
            |p| {
                let small = p.header["plans"][0].clone();
                p.header["plans"] = json!([small]);
            },
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: variant 1 (int8) is in \
             no plan, nor the base of one that is",
        ),
        header_case(
            "packed/plan-bytes-disagree",
            p,
            |p| p.header["plans"][0]["bytes"] = json!(1),
            "{path}: invalid packed model: plan `small` says it loads 1 bytes but the variants it \
             picks hold 1536",
        ),
        header_case(
            "packed/no-plans",
            p,
            |p| p.header["plans"] = json!([]),
            "{path}: invalid packed model: the header lists no plans (version 2 needs at least \
             one)",
        ),
        header_case(
            "packed/plans-with-one-name",
            p,
            |p| p.header["plans"][1]["name"] = json!("small"),
            "{path}: invalid packed model: two plans are named `small`",
        ),
        header_case(
            "packed/plan-without-a-variant-per-tensor",
            p,
            |p| {
                p.header["plans"][1]["variants"].as_array_mut().expect("variants").pop();
            },
            "{path}: invalid packed model: plan `big` picks 10 variants for 11 tensors (one per \
             tensor, in header order)",
        ),
        header_case(
            "packed/two-variants-in-one-format",
            p,
            |p| {
                let first = p.header["tensors"][at]["variants"][0].clone();
                p.header["tensors"][at]["variants"][1] = first;
            },
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: two variants are in \
             format int4",
        ),
        header_case(
            "packed/version-1-tensor-in-version-2",
            p,
            |p| p.header["tensors"][at]["format"] = json!("int4"),
            "{path}: invalid packed model: header is not a valid packed-model header: unknown \
             field `format`, expected one of `name`, `shape`, `variants` at line 1 column 1057",
        ),
    ]
}

/// The classes of nested variants (`base`), each breaking the tiny
/// decoder's nested two-plan file in one way.
fn nested_cases() -> Vec<Case> {
    let (parts, at) = plans_file(&llama_nested_plans());
    assert_eq!(parts.header["tensors"][at]["variants"][1]["base"], json!(0), "nested");
    let p = &parts;
    vec![
        header_case(
            "packed/nested-base-not-before-it",
            p,
            |p| p.header["tensors"][at]["variants"][1]["base"] = json!(1),
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: variant 1: its base is \
             variant 1, which is not listed before it (a base comes first, so a chain cannot \
             loop)",
        ),
        header_case(
            "packed/nested-in-a-format-planes-do-not-rebuild",
            p,
            |p| p.header["tensors"][at]["variants"][1]["format"] = json!("int2"),
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: variant 1: a nested \
             variant is int3, int4 or int8g32 (what its planes rebuild into), not int2",
        ),
        header_case(
            "packed/nested-cycle",
            p,
            |p| {
                // The root as the nested variant's base, the nested one as
                // the root's: the first has a base that comes after it.
                p.header["tensors"][at]["variants"][0]["base"] = json!(1);
            },
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: variant 0: its base is \
             variant 1, which is not listed before it (a base comes first, so a chain cannot \
             loop)",
        ),
        header_case(
            "packed/nested-planes-of-the-wrong-length",
            p,
            |p| {
                let seg = &mut p.header["tensors"][at]["variants"][1]["segments"][0];
                let len = seg["len"].as_u64().expect("len");
                seg["len"] = json!(len - 1);
            },
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: variant 1: segment \
             `planes` is 7 bytes, a nested int4 on 3-bit codes with shape [8, 8] needs 8",
        ),
        header_case(
            "packed/nested-in-version-2",
            p,
            |p| {
                p.version = 2;
                p.header["version"] = json!(2);
            },
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: variant 1 has a base (a \
             nested variant), which needs version 3, not 2",
        ),
        header_case(
            "packed/planes-without-a-base",
            p,
            |p| {
                p.header["tensors"][at]["variants"][1]
                    .as_object_mut()
                    .expect("a variant")
                    .remove("base");
            },
            "{path}: invalid packed model: tensor `blk.0.attn_q.weight`: variant 1: segment \
             `planes` does not belong to format int4 (expected segments: codes, scales, offsets)",
        ),
    ]
}
