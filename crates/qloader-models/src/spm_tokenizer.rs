//! A SentencePiece BPE tokenizer as GGUF stores it (`tokenizer.ggml.model
//! = "llama"`: pieces, their scores and types), rebuilt as a `tokenizers`
//! BPE model. SentencePiece merges, again and again, the adjacent pair whose
//! concatenation is the highest-scoring piece; a BPE model whose merge list
//! holds every split of every piece, ranked by the piece's score, merges the
//! same pairs in the same order. Spaces become `▁` and, where the file asks
//! for it (`tokenizer.ggml.add_space_prefix`, true unless it says
//! otherwise), one is put before the text; characters no piece holds fall
//! back to their UTF-8 bytes (`<0xE2>` …).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{NormalizerWrapper, Prepend, Replace, Sequence};
use tokenizers::Tokenizer;

/// GGUF token types that never take part in merges: unknown, control,
/// unused and byte tokens.
const NOT_MERGED: [i32; 4] = [2, 3, 5, 6];

/// The word-boundary mark that stands for a space.
const SPACE: &str = "\u{2581}";

/// Builds the tokenizer of `tokens` (their `scores` and GGUF `types`), with
/// the `unknown` piece; `add_space_prefix` puts a space before the text.
/// The error is a reason, for the caller to name the file.
pub(crate) fn build(
    tokens: &[&str],
    scores: &[f32],
    types: &[i32],
    unknown: Option<&str>,
    add_space_prefix: bool,
) -> Result<Tokenizer, String> {
    if scores.len() != tokens.len() {
        return Err(format!("{} scores for {} tokens", scores.len(), tokens.len()));
    }
    let vocab: Vocab = (0u32..).zip(tokens).map(|(i, t)| (t.to_string(), i)).collect();
    let merges = merges(tokens, scores, types, &vocab);
    let mut builder = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true);
    if let Some(unk) = unknown {
        builder = builder.unk_token(unk.to_owned()).fuse_unk(true);
    }
    let bpe = builder.build().map_err(|e| format!("cannot build the SentencePiece model: {e}"))?;
    let mut inner = Tokenizer::new(bpe);
    let replace = Replace::new(" ", SPACE).map_err(|e| e.to_string())?;
    let mut normalizers = vec![NormalizerWrapper::Replace(replace)];
    if add_space_prefix {
        normalizers.insert(0, NormalizerWrapper::Prepend(Prepend::new(SPACE.to_owned())));
    }
    inner.with_normalizer(Some(Sequence::new(normalizers)));
    // The decoders' Replace is the normalizers' one.
    let space = Replace::new(SPACE, " ").map_err(|e| e.to_string())?;
    let mut decoders = vec![
        DecoderWrapper::Replace(space),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
    ];
    if add_space_prefix {
        decoders.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
    }
    inner.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(inner)
}

/// Every split `(a, b)` of every mergeable piece into two pieces, ordered
/// by the piece's score (highest first; ties by id, then by split point).
fn merges(tokens: &[&str], scores: &[f32], types: &[i32], vocab: &Vocab) -> Vec<(String, String)> {
    let mut pieces: Vec<usize> =
        (0..tokens.len()).filter(|&i| !NOT_MERGED.contains(types.get(i).unwrap_or(&1))).collect();
    pieces.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut out = Vec::new();
    for i in pieces {
        let piece = tokens[i];
        for (at, _) in piece.char_indices().skip(1) {
            let (a, b) = piece.split_at(at);
            if vocab.contains_key(a) && vocab.contains_key(b) {
                out.push((a.to_owned(), b.to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made vocabulary: bytes, characters, and merges whose scores
    /// disagree with a left-to-right greedy reading.
    fn tiny() -> Tokenizer {
        let mut tokens = vec!["<unk>", "<s>", "</s>"];
        let bytes: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        tokens.extend(bytes.iter().map(String::as_str));
        let pieces = ["▁", "a", "b", "c", "ab", "bc", "▁a", "▁abc"];
        tokens.extend(pieces);
        let mut scores = vec![0.0; 3 + 256];
        // "bc" outranks "ab", so "abc" reads a + bc unless "▁abc" exists.
        scores.extend([-1.0, -2.0, -2.0, -2.0, -5.0, -3.0, -4.0, -0.5]);
        let mut types = vec![2, 3, 3];
        types.extend([6; 256]);
        types.extend([1; 8]);
        build(&tokens, &scores, &types, Some("<unk>"), true).unwrap()
    }

    fn ids(t: &Tokenizer, text: &str) -> Vec<String> {
        let enc = t.encode(text, false).unwrap();
        enc.get_tokens().to_vec()
    }

    #[test]
    fn merges_follow_the_scores_and_unknown_text_falls_back_to_bytes() {
        let t = tiny();
        // "▁abc" (−0.5) is formed via ▁a + bc: bc (−3) before ▁a (−4) before ab (−5).
        assert_eq!(ids(&t, "abc"), ["▁abc"]);
        assert_eq!(ids(&t, "cab"), ["▁", "c", "ab"]);
        assert_eq!(ids(&t, "ab bc"), ["▁a", "b", "▁", "bc"]);
        assert_eq!(ids(&t, "é"), ["▁", "<0xC3>", "<0xA9>"]);
        let enc = t.encode("abc é", false).unwrap();
        assert_eq!(t.decode(enc.get_ids(), false).unwrap(), "abc é");
    }
}
