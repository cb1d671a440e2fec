//! The token ids a model benchmark feeds the decoder: the start of a text
//! (the Botchan fixture by default) when it is long enough, else a fixed
//! pseudo-random sequence in the vocabulary. Either way the same ids every
//! run, and a description of where they came from for the output.

use std::path::Path;

use qloader_models::GgufTokenizer;
use serde::Serialize;

use crate::error::Result;

/// Seed of the pseudo-random ids.
pub const SEED: u64 = 0x5eed_b07c;

/// Token ids and their origin.
#[derive(Debug, Clone, Serialize)]
pub struct BenchTokens {
    /// The ids, in order.
    #[serde(skip)]
    pub ids: Vec<u32>,
    /// Where they came from, in words.
    pub source: String,
}

/// `needed` ids: the first of `text_path`'s tokens when the file can be read
/// and holds that many, else [`pseudo_random`] ones.
pub fn bench_tokens(
    tokenizer: &GgufTokenizer,
    vocab: usize,
    text_path: &Path,
    needed: usize,
) -> Result<BenchTokens> {
    let why_not = match std::fs::read_to_string(text_path) {
        Ok(text) => {
            let mut ids = tokenizer.encode(&text)?;
            if ids.len() >= needed {
                ids.truncate(needed);
                let source = format!("the first {needed} tokens of {}", text_path.display());
                return Ok(BenchTokens { ids, source });
            }
            format!("{} holds only {} tokens", text_path.display(), ids.len())
        }
        Err(e) => format!("{} is not readable: {e}", text_path.display()),
    };
    Ok(BenchTokens {
        ids: pseudo_random(vocab, needed, SEED),
        source: format!("{needed} pseudo-random ids (seed {SEED:#x}; {why_not})"),
    })
}

/// `n` ids spread over `0..vocab` by splitmix64 from `seed`.
pub fn pseudo_random(vocab: usize, n: usize, seed: u64) -> Vec<u32> {
    let vocab = vocab.clamp(1, u32::MAX as usize) as u64;
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z % vocab) as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_random_ids_are_fixed_and_in_the_vocabulary() {
        let a = pseudo_random(49152, 1000, SEED);
        assert_eq!(a, pseudo_random(49152, 1000, SEED));
        assert!(a.iter().all(|&id| id < 49152));
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert!(distinct.len() > 950, "spread over the vocabulary: {}", distinct.len());
        assert_ne!(a, pseudo_random(49152, 1000, SEED + 1));
        assert!(pseudo_random(1, 5, SEED).iter().all(|&id| id == 0));
    }
}
