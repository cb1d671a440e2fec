//! The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`),
//! rebuilt with the `tokenizers` crate: byte-level BPE from the token list
//! and merges, the pre-tokenizer the file's `tokenizer.ggml.pre` names,
//! control tokens matched whole, and the BOS/EOS ids.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use qloader_format::gguf::GgufFile;
use qloader_format::FormatError;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior::Isolated;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{ModelError, Result};

/// Llama 3's pre-tokenizer split (`tokenizer.ggml.pre = "llama-bpe"`):
/// contractions, letters with one leading non-letter, up to three digits,
/// punctuation runs, newlines, spaces.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's: Llama 3's with one digit at a time.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token type of the unknown token.
const TOKEN_TYPE_UNKNOWN: i32 = 2;
/// GGUF token type of control tokens (`<|im_start|>`, `<|endoftext|>`, …).
const TOKEN_TYPE_CONTROL: i32 = 3;
/// GGUF token type of user-defined tokens (also matched whole).
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// What a [`GgufTokenizer`] needs besides its `tokenizer.json`, as a packed
/// model stores it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSettings {
    /// Beginning-of-sequence token.
    pub bos: Option<u32>,
    /// End-of-sequence token.
    pub eos: Option<u32>,
    /// Whether encoding puts BOS first.
    pub add_bos: bool,
    /// Whether the chat template is ChatML (files written before
    /// [`TokenizerSettings::chat`] existed say only this).
    pub chatml: bool,
    /// The turn format of the model's chat template, where QLoader knows it.
    #[serde(default)]
    pub chat: Option<ChatFormat>,
}

/// The turn formats of the chat templates QLoader applies, recognised by
/// the markers a template writes (never by the model's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatFormat {
    /// `<|im_start|>user … <|im_end|>` (Qwen, SmolLM).
    ChatMl,
    /// `<start_of_turn>user … <end_of_turn>` (Gemma).
    Gemma,
    /// `<|start_header_id|>user<|end_header_id|> … <|eot_id|>` (Llama 3).
    Llama3,
    /// `[INST] … [/INST]` (Mistral, Llama 2).
    Inst,
    /// `<|user|> … <|end|>` (Phi-3).
    Phi3,
}

impl ChatFormat {
    /// The format of the chat template `template` (Jinja text), if it is one
    /// QLoader knows.
    pub fn of_template(template: &str) -> Option<Self> {
        let has = |marker: &str| template.contains(marker);
        if has("<|im_start|>") {
            Some(Self::ChatMl)
        } else if has("<start_of_turn>") {
            Some(Self::Gemma)
        } else if has("<|start_header_id|>") {
            Some(Self::Llama3)
        } else if has("[INST]") {
            Some(Self::Inst)
        } else if has("<|user|>") && has("<|assistant|>") {
            Some(Self::Phi3)
        } else {
            None
        }
    }

    /// `user` as a single-turn prompt that asks for the assistant's answer.
    pub fn prompt(self, user: &str) -> String {
        match self {
            Self::ChatMl => format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"),
            Self::Gemma => {
                format!("<start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n")
            }
            Self::Llama3 => format!(
                "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>\
                 <|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
            Self::Inst => format!("[INST] {user} [/INST]"),
            Self::Phi3 => format!("<|user|>\n{user}<|end|>\n<|assistant|>\n"),
        }
    }
}

/// A decoder model's tokenizer.
pub struct GgufTokenizer {
    inner: Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    chat: Option<ChatFormat>,
}

/// The byte-level BPE tokenizer of `file` (`tokenizer.ggml.model =
/// "gpt2"`): `tokens` and the file's merges, the pre-tokenizer its
/// `tokenizer.ggml.pre` names.
fn byte_level_bpe(file: &GgufFile, tokens: &[&str]) -> Result<Tokenizer> {
    let bad = |reason: String| ModelError::Tokenizer { path: file.path().to_owned(), reason };
    let merges = file.get_str_array("tokenizer.ggml.merges")?;
    let vocab: Vocab = (0u32..).zip(tokens).map(|(i, t)| (t.to_string(), i)).collect();
    let merges = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| bad(format!("merge #{i} `{m}` is not two tokens")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| bad(format!("cannot build BPE: {e}")))?;
    let mut inner = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre = match file.get("tokenizer.ggml.pre").map(|_| file.get_str("tokenizer.ggml.pre")) {
        // SmolLM's pre-tokenizer splits digits one by one before the
        // GPT-2 byte-level split.
        Some(Ok("smollm")) => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(byte_level),
        ])),
        Some(Ok("gpt2" | "default")) | None => PreTokenizerWrapper::ByteLevel(byte_level),
        // Llama 3's and Qwen2's splits: a regular expression, then the byte
        // map without GPT-2's own split.
        Some(Ok(name @ ("llama-bpe" | "llama3" | "qwen2"))) => {
            let pattern = if name == "qwen2" { QWEN2_SPLIT } else { LLAMA3_SPLIT };
            let split = Split::new(SplitPattern::Regex(pattern.to_owned()), Isolated, false)
                .map_err(|e| bad(format!("pre-tokenizer `{name}`: {e}")))?;
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Split(split),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
            ]))
        }
        Some(Ok(other)) => {
            return Err(bad(format!("pre-tokenizer `{other}` is not supported")));
        }
        Some(Err(e)) => return Err(e.into()),
    };
    inner.with_pre_tokenizer(Some(pre));
    inner.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(inner)
}

impl GgufTokenizer {
    /// Builds the tokenizer stored in `file`.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let bad = |reason: String| ModelError::Tokenizer { path: file.path().to_owned(), reason };
        let model = file.get_str("tokenizer.ggml.model")?;
        if model != "gpt2" && model != "llama" {
            return Err(bad(format!(
                "tokenizer model `{model}` is not supported (supported: byte-level BPE `gpt2`, \
                 SentencePiece `llama`)"
            )));
        }
        let tokens = file.get_str_array("tokenizer.ggml.tokens")?;
        let types = match file.get("tokenizer.ggml.token_type") {
            Some(_) => file.get_i32_array("tokenizer.ggml.token_type")?,
            None => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(bad(format!("{} token types for {} tokens", types.len(), tokens.len())));
        }
        if u32::try_from(tokens.len()).is_err() {
            return Err(bad(format!("{} tokens do not fit 32-bit token ids", tokens.len())));
        }
        let mut seen = std::collections::HashSet::with_capacity(tokens.len());
        if let Some((i, t)) = tokens.iter().enumerate().find(|(_, t)| !seen.insert(**t)) {
            return Err(bad(format!("token #{i} `{t}` appears twice in the vocabulary")));
        }
        let mut inner = match model {
            "gpt2" => byte_level_bpe(file, &tokens)?,
            _ => {
                let scores = file.get_f32_array("tokenizer.ggml.scores")?;
                let unknown = types.iter().position(|&t| t == TOKEN_TYPE_UNKNOWN);
                let add_space_prefix = !matches!(
                    file.get("tokenizer.ggml.add_space_prefix"),
                    Some(qloader_format::gguf::MetadataValue::Bool(false))
                );
                let unknown = unknown.map(|i| tokens[i]);
                crate::spm_tokenizer::build(&tokens, &scores, &types, unknown, add_space_prefix)
                    .map_err(bad)?
            }
        };
        let special: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == TOKEN_TYPE_CONTROL || t == TOKEN_TYPE_USER_DEFINED)
            .map(|(tok, _)| AddedToken::from(tok.to_string(), true))
            .collect();
        inner.add_special_tokens(&special);
        let id = |key: &str| -> Result<Option<u32>> {
            match file.get(key) {
                None => Ok(None),
                Some(_) => {
                    let v = file.get_u64(key)?;
                    // Fewer than 2^32 tokens (checked above), so an id in range fits u32.
                    let in_range = usize::try_from(v).is_ok_and(|i| i < tokens.len());
                    match u32::try_from(v).ok().filter(|_| in_range) {
                        Some(id) => Ok(Some(id)),
                        None => Err(FormatError::Gguf {
                            path: file.path().to_owned(),
                            reason: format!("`{key}` = {v} is outside the {} tokens", tokens.len()),
                        }
                        .into()),
                    }
                }
            }
        };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        // SentencePiece models put BOS first unless the file says not to.
        let add_bos = match file.get("tokenizer.ggml.add_bos_token") {
            Some(qloader_format::gguf::MetadataValue::Bool(b)) => *b,
            _ => model == "llama",
        } && bos.is_some();
        let chat = file
            .get("tokenizer.chat_template")
            .and_then(|_| file.get_str("tokenizer.chat_template").ok())
            .and_then(ChatFormat::of_template);
        Ok(Self { inner, bos, eos, add_bos, chat })
    }

    /// The tokenizer of the Hugging Face checkpoint directory `root`: its
    /// `tokenizer.json`, the BOS/EOS ids of `generation_config.json` (else
    /// `config.json`), and from `tokenizer_config.json`, if there, whether
    /// BOS goes first and the chat template.
    pub fn from_hf_dir(root: &std::path::Path) -> Result<Self> {
        let path = root.join("tokenizer.json");
        if !path.is_file() {
            return Err(FormatError::MissingFile { path, what: "the tokenizer" }.into());
        }
        let json = qloader_format::hf_checkpoint::read_text(&path)?;
        let side = |name: &str| -> Result<Option<serde_json::Value>> {
            let p = root.join(name);
            if !p.is_file() {
                return Ok(None);
            }
            let text = qloader_format::hf_checkpoint::read_text(&p)?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|error| FormatError::Json { path: p, error }.into())
        };
        let (generation, config) = (side("generation_config.json")?, side("config.json")?);
        let tokenizer_config = side("tokenizer_config.json")?;
        let id = |key: &str| -> Option<u32> {
            [&generation, &config].into_iter().flatten().find_map(|v| {
                let v = v.get(key)?;
                // Some models list several end tokens; the first is the one
                // generation stops on here.
                let v = v.as_array().and_then(|a| a.first()).unwrap_or(v);
                u32::try_from(v.as_u64()?).ok()
            })
        };
        let add_bos = tokenizer_config
            .as_ref()
            .and_then(|c| c.get("add_bos_token"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let chat = tokenizer_config
            .as_ref()
            .and_then(|c| c.get("chat_template"))
            .and_then(serde_json::Value::as_str)
            .and_then(ChatFormat::of_template);
        let settings = TokenizerSettings {
            bos: id("bos_token_id"),
            eos: id("eos_token_id"),
            add_bos,
            chatml: chat == Some(ChatFormat::ChatMl),
            chat,
        };
        Self::from_json(&path, json.as_bytes(), settings)
    }

    /// The tokenizer as `tokenizer.json` text and its settings, to be rebuilt
    /// with [`GgufTokenizer::from_json`].
    pub fn to_json(&self) -> Result<(String, TokenizerSettings)> {
        let json = self.inner.to_string(false).map_err(|e| ModelError::Tokenizer {
            path: "tokenizer.json".into(),
            reason: format!("cannot serialize: {e}"),
        })?;
        let settings = TokenizerSettings {
            bos: self.bos,
            eos: self.eos,
            add_bos: self.add_bos,
            chatml: self.chat == Some(ChatFormat::ChatMl),
            chat: self.chat,
        };
        Ok((json, settings))
    }

    /// Rebuilds a tokenizer from [`GgufTokenizer::to_json`]'s output; `origin`
    /// names where the bytes came from, for errors.
    pub fn from_json(
        origin: &std::path::Path,
        json: &[u8],
        settings: TokenizerSettings,
    ) -> Result<Self> {
        let bad = |reason: String| ModelError::Tokenizer { path: origin.to_owned(), reason };
        let inner = Tokenizer::from_bytes(json).map_err(|e| bad(e.to_string()))?;
        let vocab = inner.get_vocab_size(true);
        for id in [settings.bos, settings.eos].into_iter().flatten() {
            if id as usize >= vocab {
                return Err(bad(format!("special token {id} is outside the {vocab} tokens")));
            }
        }
        let TokenizerSettings { bos, eos, add_bos, chatml, chat } = settings;
        let chat = chat.or(chatml.then_some(ChatFormat::ChatMl));
        Ok(Self { inner, bos, eos, add_bos: add_bos && bos.is_some(), chat })
    }

    /// Token ids of `text` (control tokens written in the text are matched
    /// whole), with BOS first when the model asks for it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| ModelError::Encode {
            text: text.chars().take(40).collect(),
            reason: e.to_string(),
        })?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// The text of `ids` (control tokens included as written).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| ModelError::Encode {
            text: format!("{} token ids", ids.len()),
            reason: e.to_string(),
        })
    }

    /// The end-of-sequence token, if the file names one.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Tokens in the vocabulary, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Checks that every token id this tokenizer can produce has a row in
    /// a model's embedding table of `rows` rows; `origin` names where the
    /// tokenizer came from, for the error.
    pub fn check_vocab(&self, origin: &std::path::Path, rows: usize) -> Result<()> {
        check_vocab(origin, &self.inner, rows)
    }

    /// `user` as a single-turn chat prompt in the turn format of the model's
    /// chat template ([`ChatFormat`]), or unchanged if QLoader does not know
    /// that format.
    pub fn chat_prompt(&self, user: &str) -> String {
        match self.chat {
            Some(format) => format.prompt(user),
            None => user.to_owned(),
        }
    }
}

/// Checks that the largest id of `tokenizer` (read from `origin`) has a row
/// in a model's embedding table of `rows` rows.
pub(crate) fn check_vocab(
    origin: &std::path::Path,
    tokenizer: &Tokenizer,
    rows: usize,
) -> Result<()> {
    let largest = tokenizer.get_vocab(true).into_values().max();
    match largest {
        Some(id) if usize::try_from(id).map_or(true, |id| id >= rows) => {
            Err(ModelError::Tokenizer {
                path: origin.to_owned(),
                reason: format!(
                    "token id {id} is outside the model's embedding table of {rows} rows \
                     (tokenizer and model disagree)"
                ),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_formats_are_recognised_by_their_markers() {
        let cases = [
            ("{% for m in messages %}<|im_start|>{{ m.role }}", Some(ChatFormat::ChatMl)),
            ("{{ bos_token }}<start_of_turn>{{ role }}\n", Some(ChatFormat::Gemma)),
            ("<|start_header_id|>{{ m.role }}<|end_header_id|>", Some(ChatFormat::Llama3)),
            ("{{ bos_token }}[INST] {{ m.content }} [/INST]", Some(ChatFormat::Inst)),
            ("<|user|>\n{{ m.content }}<|end|>\n<|assistant|>\n", Some(ChatFormat::Phi3)),
            ("{{ messages }}", None),
        ];
        for (template, format) in cases {
            assert_eq!(ChatFormat::of_template(template), format, "{template}");
        }
        assert_eq!(
            ChatFormat::Gemma.prompt("Hi"),
            "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(ChatFormat::Inst.prompt("Hi"), "[INST] Hi [/INST]");
    }

    #[test]
    fn settings_written_before_chat_formats_still_read() {
        let old = r#"{"bos":1,"eos":2,"add_bos":false,"chatml":true}"#;
        let s: TokenizerSettings = serde_json::from_str(old).unwrap();
        assert_eq!((s.chatml, s.chat), (true, None));
    }
}
