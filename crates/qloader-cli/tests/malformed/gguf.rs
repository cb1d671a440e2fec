//! GGUF files: a tiny Llama decoder with its byte-level BPE tokenizer in the
//! metadata, written byte by byte (GGUF v3, ggml `docs/gguf.md`), and every
//! way its header, tensors, configuration or tokenizer can be broken.

use super::{f32_bytes, values, Case, Open};

use qloader_format::gguf::metadata::type_id as ty;
use qloader_format::gguf::GgmlType;

pub const HIDDEN: u64 = 8;
pub const FFN: u64 = 16;
pub const KV_WIDTH: u64 = 4;

/// The tokenizer's tokens (GPT-2 byte-level: `Ġ` is a space).
pub const TOKENS: [&str; 8] = ["<|endoftext|>", "h", "i", "hi", "Ġ", "Ġhi", "!", "<|im_start|>"];
pub const MERGES: [&str; 2] = ["h i", "Ġ hi"];
pub const TOKEN_TYPES: [i32; 8] = [3, 1, 1, 1, 1, 1, 1, 3];

/// A GGUF string: `u64` length, then the bytes.
pub fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// One metadata entry: key, value type and the value's bytes.
#[derive(Clone)]
pub struct Kv {
    pub key: String,
    pub type_id: u32,
    pub value: Vec<u8>,
}

impl Kv {
    pub fn raw(key: &str, type_id: u32, value: Vec<u8>) -> Self {
        Self { key: key.to_owned(), type_id, value }
    }
    pub fn u32(key: &str, v: u32) -> Self {
        Self::raw(key, ty::U32, v.to_le_bytes().to_vec())
    }
    pub fn f32(key: &str, v: f32) -> Self {
        Self::raw(key, ty::F32, v.to_le_bytes().to_vec())
    }
    pub fn bool(key: &str, v: bool) -> Self {
        Self::raw(key, ty::BOOL, vec![u8::from(v)])
    }
    pub fn str(key: &str, v: &str) -> Self {
        Self::raw(key, ty::STRING, string(v))
    }
    /// An array of `count` elements of type `elem` whose bytes are `items`.
    pub fn array(key: &str, elem: u32, count: u64, items: Vec<u8>) -> Self {
        let mut value = elem.to_le_bytes().to_vec();
        value.extend_from_slice(&count.to_le_bytes());
        value.extend_from_slice(&items);
        Self::raw(key, ty::ARRAY, value)
    }
    pub fn strs(key: &str, v: &[&str]) -> Self {
        Self::array(key, ty::STRING, v.len() as u64, v.iter().flat_map(|s| string(s)).collect())
    }
    pub fn i32s(key: &str, v: &[i32]) -> Self {
        Self::array(key, ty::I32, v.len() as u64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
}

/// One tensor: name, dimensions innermost first, type id and data.
#[derive(Clone)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub type_id: u32,
    pub data: Vec<u8>,
    /// Offset to record instead of the one the data is laid out at.
    pub offset: Option<u64>,
}

/// A GGUF file to be written.
#[derive(Clone)]
pub struct Gguf {
    pub version: u32,
    pub alignment: usize,
    pub kvs: Vec<Kv>,
    pub tensors: Vec<Tensor>,
}

impl Gguf {
    /// The tiny valid decoder: one block, width 8, two query heads sharing
    /// one key/value head, a feed-forward width of 16, tied embeddings.
    pub fn tiny() -> Self {
        let vocab = TOKENS.len() as u64;
        let kvs = vec![
            Kv::str("general.architecture", "llama"),
            Kv::u32("llama.block_count", 1),
            Kv::u32("llama.context_length", 16),
            Kv::u32("llama.embedding_length", HIDDEN as u32),
            Kv::u32("llama.feed_forward_length", FFN as u32),
            Kv::u32("llama.attention.head_count", 2),
            Kv::u32("llama.attention.head_count_kv", 1),
            Kv::f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
            Kv::f32("llama.rope.freq_base", 10000.0),
            Kv::str("tokenizer.ggml.model", "gpt2"),
            Kv::strs("tokenizer.ggml.tokens", &TOKENS),
            Kv::i32s("tokenizer.ggml.token_type", &TOKEN_TYPES),
            Kv::strs("tokenizer.ggml.merges", &MERGES),
            Kv::u32("tokenizer.ggml.bos_token_id", 0),
            Kv::u32("tokenizer.ggml.eos_token_id", 0),
            Kv::bool("tokenizer.ggml.add_bos_token", false),
        ];
        let specs: Vec<(&str, Vec<u64>)> = vec![
            ("token_embd.weight", vec![HIDDEN, vocab]),
            ("blk.0.attn_norm.weight", vec![HIDDEN]),
            ("blk.0.attn_q.weight", vec![HIDDEN, HIDDEN]),
            ("blk.0.attn_k.weight", vec![HIDDEN, KV_WIDTH]),
            ("blk.0.attn_v.weight", vec![HIDDEN, KV_WIDTH]),
            ("blk.0.attn_output.weight", vec![HIDDEN, HIDDEN]),
            ("blk.0.ffn_norm.weight", vec![HIDDEN]),
            ("blk.0.ffn_gate.weight", vec![HIDDEN, FFN]),
            ("blk.0.ffn_up.weight", vec![HIDDEN, FFN]),
            ("blk.0.ffn_down.weight", vec![FFN, HIDDEN]),
            ("output_norm.weight", vec![HIDDEN]),
        ];
        let tensors = specs
            .into_iter()
            .enumerate()
            .map(|(i, (name, dims))| {
                let mut v = values(dims.iter().product::<u64>() as usize, i);
                if name.ends_with("norm.weight") {
                    v.iter_mut().for_each(|x| *x += 1.0);
                }
                Tensor {
                    name: name.into(),
                    dims,
                    type_id: GgmlType::F32.id(),
                    data: f32_bytes(&v),
                    offset: None,
                }
            })
            .collect();
        Self { version: 3, alignment: 32, kvs, tensors }
    }

    pub fn kv_index(&self, key: &str) -> usize {
        self.kvs.iter().position(|k| k.key == key).unwrap_or_else(|| panic!("no key {key}"))
    }

    pub fn tensor_index(&self, name: &str) -> usize {
        self.tensors.iter().position(|t| t.name == name).unwrap_or_else(|| panic!("no {name}"))
    }

    /// Replaces the entry `key` (which must exist).
    pub fn set(mut self, kv: Kv) -> Self {
        let i = self.kv_index(&kv.key);
        self.kvs[i] = kv;
        self
    }

    /// Adds the entry `kv` (whose key must be new).
    pub fn add(mut self, kv: Kv) -> Self {
        assert!(self.kvs.iter().all(|k| k.key != kv.key), "key {} exists", kv.key);
        self.kvs.push(kv);
        self
    }

    /// Removes the entry `key` (which must exist).
    pub fn remove(mut self, key: &str) -> Self {
        let i = self.kv_index(key);
        self.kvs.remove(i);
        self
    }

    /// Changes tensor `name` (which must exist).
    pub fn tensor(mut self, name: &str, edit: impl FnOnce(&mut Tensor)) -> Self {
        let i = self.tensor_index(name);
        edit(&mut self.tensors[i]);
        self
    }

    /// Where each tensor's data goes, relative to the data section.
    fn layout(&self) -> Vec<u64> {
        let mut next = 0usize;
        self.tensors
            .iter()
            .map(|t| {
                let at = next.next_multiple_of(self.alignment);
                next = at + t.data.len();
                at as u64
            })
            .collect()
    }

    /// The file's bytes: header, padding to the alignment, tensor data in
    /// order (each at the next multiple of the alignment).
    pub fn build(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for kv in &self.kvs {
            out.extend_from_slice(&string(&kv.key));
            out.extend_from_slice(&kv.type_id.to_le_bytes());
            out.extend_from_slice(&kv.value);
        }
        let layout = self.layout();
        for (t, &at) in self.tensors.iter().zip(&layout) {
            out.extend_from_slice(&string(&t.name));
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&t.offset.unwrap_or(at).to_le_bytes());
        }
        out.resize(out.len().next_multiple_of(self.alignment), 0);
        let data_start = out.len();
        for (t, &at) in self.tensors.iter().zip(&layout) {
            out.resize(data_start + at as usize, 0);
            out.extend_from_slice(&t.data);
        }
        out
    }
}

fn case(class: &'static str, bytes: Vec<u8>, expected: &str) -> Case {
    Case::file(class, "model.gguf", bytes, Open::Gguf, expected)
}

fn patched(at: usize, with: &[u8]) -> Vec<u8> {
    let mut b = Gguf::tiny().build();
    b[at..at + with.len()].copy_from_slice(with);
    b
}

/// Every case of the GGUF reader and the decoder built from it.
pub fn cases() -> Vec<Case> {
    let good = Gguf::tiny().build();
    let q = "blk.0.attn_q.weight";
    vec![
        case(
            "gguf/empty",
            Vec::new(),
            "{path}: invalid GGUF file: magic: 4 bytes at offset 0 run past the end of the file \
             (0 bytes)",
        ),
        case(
            "gguf/bad-magic",
            patched(0, b"GGML"),
            "{path}: invalid GGUF file: bad magic [47, 47, 4d, 4c], expected \"GGUF\" ([47, 47, \
             55, 46])",
        ),
        case(
            "gguf/version-1",
            patched(4, &1u32.to_le_bytes()),
            "{path}: invalid GGUF file: GGUF version 1 is not supported (it used 32-bit counts \
             and lengths; only versions 2 and 3 are read)",
        ),
        case(
            "gguf/unknown-version",
            patched(4, &4u32.to_le_bytes()),
            "{path}: invalid GGUF file: unknown GGUF version 4 (only versions 2 and 3 are read)",
        ),
        case(
            "gguf/big-endian",
            patched(4, &3u32.to_be_bytes()),
            "{path}: invalid GGUF file: version field 0x03000000 looks like a big-endian GGUF \
             file, which is not supported",
        ),
        case(
            "gguf/truncated-in-counts",
            good[..20].to_vec(),
            "{path}: invalid GGUF file: metadata count: 8 bytes at offset 16 run past the end of \
             the file (20 bytes)",
        ),
        case(
            "gguf/counts-beyond-truncated-file",
            good[..200].to_vec(),
            "{path}: invalid GGUF file: tensor count 11 cannot fit in the 176 bytes after the \
             counts (at least 32 bytes each; file 200 bytes, truncated or corrupt)",
        ),
        case(
            "gguf/truncated-in-metadata",
            good[..700].to_vec(),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.merges` (#12): 4 bytes at \
             offset 697 run past the end of the file (700 bytes)",
        ),
        case(
            "gguf/truncated-in-tensor-infos",
            good[..1000].to_vec(),
            "{path}: invalid GGUF file: tensor count 11 cannot fit in the 140 bytes after the \
             metadata (offset 860, file 1000 bytes)",
        ),
        case(
            "gguf/tensor-count-beyond-file",
            patched(8, &(1u64 << 40).to_le_bytes()),
            "{path}: invalid GGUF file: tensor count 1099511627776 cannot fit in the 4136 bytes \
             after the counts (at least 32 bytes each; file 4160 bytes, truncated or corrupt)",
        ),
        case(
            "gguf/metadata-count-beyond-file",
            patched(16, &(1u64 << 40).to_le_bytes()),
            "{path}: invalid GGUF file: metadata key-value count 1099511627776 cannot fit in the \
             4136 bytes after the counts (at least 13 bytes each; file 4160 bytes, truncated or \
             corrupt)",
        ),
        case(
            "gguf/key-length-beyond-file",
            patched(24, &u64::MAX.to_le_bytes()),
            "{path}: invalid GGUF file: metadata key #0: string length 18446744073709551615 runs \
             past the end of the file (offset 24, file 4160 bytes)",
        ),
        case(
            "gguf/string-value-length-beyond-file",
            Gguf::tiny()
                .set(Kv::raw(
                    "general.architecture",
                    ty::STRING,
                    (1u64 << 40).to_le_bytes().to_vec(),
                ))
                .build(),
            "{path}: invalid GGUF file: metadata key `general.architecture` (#0): string length \
             1099511627776 runs past the end of the file (offset 56, file 4160 bytes)",
        ),
        case(
            "gguf/string-not-utf8",
            Gguf::tiny()
                .set(Kv::raw("general.architecture", ty::STRING, {
                    let mut v = 5u64.to_le_bytes().to_vec();
                    v.extend_from_slice(b"ll\xffma");
                    v
                }))
                .build(),
            "{path}: invalid GGUF file: metadata key `general.architecture` (#0): string of 5 \
             bytes at offset 64 is not valid UTF-8 (bad byte at offset 66)",
        ),
        case(
            "gguf/array-length-huge",
            Gguf::tiny()
                .set(Kv::array("tokenizer.ggml.merges", ty::STRING, 1 << 60, Vec::new()))
                .build(),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.merges` (#12): array length \
             1152921504606846976 of string runs past the end of the file (offset 697, file 4128 \
             bytes)",
        ),
        case(
            "gguf/array-nested-too-deep",
            Gguf::tiny()
                .set({
                    let mut kv = Kv::array("tokenizer.ggml.merges", ty::U32, 0, Vec::new());
                    for _ in 0..9 {
                        kv = Kv::array("tokenizer.ggml.merges", ty::ARRAY, 1, kv.value);
                    }
                    kv
                })
                .build(),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.merges` (#12): element 0: \
             element 0: element 0: element 0: element 0: element 0: element 0: element 0: arrays \
             nested more than 8 deep (offset 793)",
        ),
        case(
            "gguf/unknown-value-type",
            Gguf::tiny().set(Kv::raw("llama.block_count", 13, 1u32.to_le_bytes().to_vec())).build(),
            "{path}: invalid GGUF file: metadata key `llama.block_count` (#1): unknown value \
             type 13 at offset 94",
        ),
        case(
            "gguf/unknown-array-element-type",
            Gguf::tiny().set(Kv::array("tokenizer.ggml.merges", 77, 0, Vec::new())).build(),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.merges` (#12): array at \
             offset 697 has unknown element type 77",
        ),
        case(
            "gguf/bool-not-0-or-1",
            Gguf::tiny().set(Kv::raw("tokenizer.ggml.add_bos_token", ty::BOOL, vec![2])).build(),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.add_bos_token` (#15): bool \
             at offset 859 is 2, expected 0 or 1",
        ),
        case(
            "gguf/duplicate-key",
            {
                let mut g = Gguf::tiny();
                g.kvs.push(Kv::u32("llama.block_count", 2));
                g.build()
            },
            "{path}: invalid GGUF file: metadata key `llama.block_count` appears twice (#1 and \
             #16)",
        ),
        case(
            "gguf/alignment-not-power-of-two",
            {
                let mut g = Gguf::tiny();
                g.kvs.push(Kv::u32("general.alignment", 48));
                g.build()
            },
            "{path}: invalid GGUF file: metadata key `general.alignment` is 48, which is not a \
             power of two",
        ),
        case(
            "gguf/alignment-wrong-type",
            {
                let mut g = Gguf::tiny();
                g.kvs.push(Kv::str("general.alignment", "32"));
                g.build()
            },
            "{path}: invalid GGUF file: metadata key `general.alignment` is string \"32\", \
             expected a non-negative integer",
        ),
        case(
            "gguf/unknown-tensor-type",
            Gguf::tiny().tensor(q, |t| t.type_id = 4).build(),
            "{path}: invalid GGUF file: tensor `blk.0.attn_q.weight`: unknown tensor type 4 \
             (offset 1018)",
        ),
        case(
            "gguf/too-many-dimensions",
            Gguf::tiny().tensor(q, |t| t.dims = vec![2, 2, 2, 2, 4]).build(),
            "{path}: invalid GGUF file: tensor `blk.0.attn_q.weight`: 5 dimensions, expected 1 \
             to 4",
        ),
        case(
            "gguf/zero-dimension",
            Gguf::tiny().tensor(q, |t| t.dims = vec![HIDDEN, 0]).build(),
            "{path}: invalid GGUF file: tensor `blk.0.attn_q.weight`: dimension 1 is 0 (offset \
             1010)",
        ),
        case(
            "gguf/dimensions-overflow",
            Gguf::tiny().tensor(q, |t| t.dims = vec![1 << 32, 1 << 32, 1 << 32]).build(),
            "{path}: invalid GGUF file: tensor `blk.0.attn_q.weight`: dimensions [4294967296, \
             4294967296, 4294967296] overflow the element count",
        ),
        case(
            "gguf/bytes-overflow",
            Gguf::tiny().tensor(q, |t| t.dims = vec![1 << 31, 1 << 31, 2]).build(),
            "{path}: invalid GGUF file: tensor `blk.0.attn_q.weight`: dimensions [2147483648, \
             2147483648, 2] of F32 overflow the byte count",
        ),
        case(
            "gguf/partial-block",
            Gguf::tiny().tensor(q, |t| t.type_id = GgmlType::Q8_0.id()).build(),
            "{path}: invalid GGUF file: tensor `blk.0.attn_q.weight`: innermost dimension: 8 \
             elements is not a multiple of the Q8_0 block size 32",
        ),
        case(
            "gguf/tensor-data-beyond-file",
            good[..good.len() - 4].to_vec(),
            "{path}: invalid GGUF file: tensor `output_norm.weight`: 32 bytes of data at offset \
             2624 (absolute 4128) run past the end of the file (4156 bytes)",
        ),
        case(
            "gguf/tensor-offset-beyond-file",
            Gguf::tiny().tensor(q, |t| t.offset = Some(1 << 40)).build(),
            "{path}: invalid GGUF file: tensor `blk.0.attn_q.weight`: 256 bytes of data at \
             offset 1099511627776 (absolute 1099511629280) run past the end of the file (4160 \
             bytes)",
        ),
        case(
            "gguf/tensor-offset-misaligned",
            Gguf::tiny()
                .tensor("blk.0.attn_k.weight", |t| t.offset = Some(t.data.len() as u64 + 4))
                .build(),
            "{path}: invalid GGUF file: tensor `blk.0.attn_k.weight`: data offset 132 is not a \
             multiple of the alignment 32",
        ),
        case(
            "gguf/tensors-overlap",
            {
                let g = Gguf::tiny();
                let at = g.layout()[g.tensor_index(q)];
                g.tensor("blk.0.attn_k.weight", |t| t.offset = Some(at)).build()
            },
            "{path}: invalid GGUF file: tensors `blk.0.attn_q.weight` (data 288..544) and \
             `blk.0.attn_k.weight` (data 288..416) overlap",
        ),
        case(
            "gguf/duplicate-tensor-name",
            Gguf::tiny().tensor("blk.0.attn_k.weight", |t| t.name = q.into()).build(),
            "{path}: invalid GGUF file: tensor name `blk.0.attn_q.weight` appears twice (#2 and \
             #3)",
        ),
        case(
            "gguf/unsupported-architecture",
            Gguf::tiny().set(Kv::str("general.architecture", "gpt2")).build(),
            &format!(
                "{{path}}: invalid GGUF file: architecture `gpt2` is not supported (supported: {})",
                qloader_models::family::supported()
            ),
        ),
        case(
            "gguf/config-key-missing",
            Gguf::tiny().remove("llama.embedding_length").build(),
            "{path}: invalid GGUF file: metadata key `llama.embedding_length` is missing",
        ),
        case(
            "gguf/config-key-wrong-type",
            Gguf::tiny().set(Kv::str("llama.block_count", "one")).build(),
            "{path}: invalid GGUF file: metadata key `llama.block_count` is string \"one\", \
             expected a non-negative integer",
        ),
        case(
            "gguf/config-absurd-layer-count",
            Gguf::tiny().set(Kv::u32("llama.block_count", 1 << 20)).build(),
            "{path}: invalid GGUF file: `llama.block_count` = 1048576 is outside 1..=1024",
        ),
        case(
            "gguf/config-heads-not-dividing-width",
            Gguf::tiny().set(Kv::u32("llama.attention.head_count", 3)).build(),
            "{path}: invalid GGUF file: `llama.embedding_length` = 8 is not a multiple of \
             `llama.attention.head_count` = 3",
        ),
        case(
            "gguf/config-kv-heads-not-dividing-heads",
            Gguf::tiny()
                .set(Kv::u32("llama.attention.head_count", 4))
                .set(Kv::u32("llama.attention.head_count_kv", 3))
                .build(),
            "{path}: invalid GGUF file: `llama.attention.head_count` = 4 is not a multiple of \
             `llama.attention.head_count_kv` = 3",
        ),
        case(
            "gguf/config-bad-epsilon",
            Gguf::tiny().set(Kv::f32("llama.attention.layer_norm_rms_epsilon", f32::NAN)).build(),
            "{path}: invalid GGUF file: `llama.attention.layer_norm_rms_epsilon` = NaN is \
             outside (0, 1)",
        ),
        case(
            "gguf/config-partial-rope",
            {
                let mut g = Gguf::tiny();
                g.kvs.push(Kv::u32("llama.rope.dimension_count", 2));
                g.build()
            },
            "{path}: invalid GGUF file: partial RoPE (2 of 4 head dimensions) is not supported",
        ),
        case(
            "gguf/missing-tensor",
            {
                let mut g = Gguf::tiny();
                let i = g.tensor_index("blk.0.ffn_up.weight");
                g.tensors.remove(i);
                g.build()
            },
            "{path}: tensor `blk.0.ffn_up.weight` is missing",
        ),
        case(
            "gguf/missing-embeddings",
            {
                let mut g = Gguf::tiny();
                let i = g.tensor_index("token_embd.weight");
                g.tensors.remove(i);
                g.build()
            },
            "{path}: tensor `token_embd.weight` is missing",
        ),
        case(
            "gguf/tensor-wrong-shape",
            Gguf::tiny().tensor("blk.0.attn_k.weight", |t| t.dims = vec![KV_WIDTH, HIDDEN]).build(),
            "{path}: tensor `blk.0.attn_k.weight` has shape [8, 4], expected [4, 8]",
        ),
    ]
}

fn tok(class: &'static str, g: Gguf, expected: &str) -> Case {
    case(class, g.build(), expected)
}

/// Every case of the tokenizer a GGUF file carries.
pub fn tokenizer_cases() -> Vec<Case> {
    let mut dup = TOKENS;
    dup[5] = "hi";
    vec![
        tok(
            "gguf-tokenizer/missing-tokens",
            Gguf::tiny().remove("tokenizer.ggml.tokens"),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.tokens` is missing",
        ),
        tok(
            "gguf-tokenizer/missing-merges",
            Gguf::tiny().remove("tokenizer.ggml.merges"),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.merges` is missing",
        ),
        tok(
            "gguf-tokenizer/tokens-not-strings",
            Gguf::tiny().set(Kv::i32s("tokenizer.ggml.tokens", &[1, 2, 3])),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.tokens`: element 0 is i32 \
             1, expected a string",
        ),
        tok(
            "gguf-tokenizer/unsupported-model",
            Gguf::tiny().set(Kv::str("tokenizer.ggml.model", "bert")),
            "{path}: invalid tokenizer: tokenizer model `bert` is not supported (supported: \
             byte-level BPE `gpt2`, SentencePiece `llama`)",
        ),
        tok(
            "gguf-tokenizer/sentencepiece-scores-miscounted",
            Gguf::tiny().set(Kv::str("tokenizer.ggml.model", "llama")).add(Kv::array(
                "tokenizer.ggml.scores",
                ty::F32,
                3,
                [0.0f32, -1.0, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect(),
            )),
            "{path}: invalid tokenizer: 3 scores for 8 tokens",
        ),
        tok(
            "gguf-tokenizer/sentencepiece-without-scores",
            Gguf::tiny().set(Kv::str("tokenizer.ggml.model", "llama")),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.scores` is missing",
        ),
        tok(
            "gguf-tokenizer/unsupported-pre-tokenizer",
            {
                let mut g = Gguf::tiny();
                g.kvs.push(Kv::str("tokenizer.ggml.pre", "deepseek-llm"));
                g
            },
            "{path}: invalid tokenizer: pre-tokenizer `deepseek-llm` is not supported",
        ),
        tok(
            "gguf-tokenizer/types-length-mismatch",
            Gguf::tiny().set(Kv::i32s("tokenizer.ggml.token_type", &TOKEN_TYPES[..5])),
            "{path}: invalid tokenizer: 5 token types for 8 tokens",
        ),
        tok(
            "gguf-tokenizer/type-out-of-i32-range",
            Gguf::tiny().set(Kv::array(
                "tokenizer.ggml.token_type",
                ty::U64,
                8,
                (0..8u64)
                    .flat_map(|i| (if i == 2 { 1u64 << 40 } else { 1 }).to_le_bytes())
                    .collect(),
            )),
            "{path}: invalid GGUF file: metadata key `tokenizer.ggml.token_type`: element 2 is \
             u64 1099511627776, expected an integer in i32 range",
        ),
        tok(
            "gguf-tokenizer/duplicate-token",
            Gguf::tiny().set(Kv::strs("tokenizer.ggml.tokens", &dup)),
            "{path}: invalid tokenizer: token #5 `hi` appears twice in the vocabulary",
        ),
        tok(
            "gguf-tokenizer/merge-not-two-tokens",
            Gguf::tiny().set(Kv::strs("tokenizer.ggml.merges", &["h i", "Ġhi"])),
            "{path}: invalid tokenizer: merge #1 `Ġhi` is not two tokens",
        ),
        tok(
            "gguf-tokenizer/merge-of-unknown-token",
            Gguf::tiny().set(Kv::strs("tokenizer.ggml.merges", &["h i", "Ġ x"])),
            "{path}: invalid tokenizer: cannot build BPE: Token `x` out of vocabulary",
        ),
        tok(
            "gguf-tokenizer/bos-beyond-vocabulary",
            Gguf::tiny().set(Kv::u32("tokenizer.ggml.bos_token_id", 8)),
            "{path}: invalid GGUF file: `tokenizer.ggml.bos_token_id` = 8 is outside the 8 tokens",
        ),
        tok(
            "gguf-tokenizer/eos-beyond-vocabulary-in-64-bits",
            Gguf::tiny().set(Kv::raw(
                "tokenizer.ggml.eos_token_id",
                ty::U64,
                (1u64 << 32).to_le_bytes().to_vec(),
            )),
            "{path}: invalid GGUF file: `tokenizer.ggml.eos_token_id` = 4294967296 is outside \
             the 8 tokens",
        ),
        tok(
            "gguf-tokenizer/larger-than-model",
            Gguf::tiny().tensor("token_embd.weight", |t| {
                t.dims = vec![HIDDEN, 6];
                t.data.truncate((HIDDEN * 6 * 4) as usize);
            }),
            "{path}: invalid tokenizer: token id 7 is outside the model's embedding table of 6 \
             rows (tokenizer and model disagree)",
        ),
    ]
}
