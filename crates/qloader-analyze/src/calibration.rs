//! Calibration samples from plain text: fixed-length token windows for
//! decoders, sentences for encoders.

use crate::error::{AnalyzeError, Result};

/// The first `count` whole windows of `window` tokens of `tokens`.
pub fn token_windows(tokens: &[u32], window: usize, count: usize) -> Result<Vec<Vec<u32>>> {
    if window < 2 || count == 0 {
        return Err(AnalyzeError::Calibration(format!(
            "need at least one window of at least two tokens (asked for {count} × {window})"
        )));
    }
    let available = tokens.len() / window;
    if available == 0 {
        return Err(AnalyzeError::Calibration(format!(
            "the text has {} tokens, fewer than one window of {window}",
            tokens.len()
        )));
    }
    Ok(tokens.chunks_exact(window).take(count).map(<[u32]>::to_vec).collect())
}

/// Words a calibration sentence has at least…
pub const MIN_SENTENCE_WORDS: usize = 6;
/// …and at most.
pub const MAX_SENTENCE_WORDS: usize = 60;

/// Up to `count` sentences of prose: whitespace collapsed, split after `.`,
/// `!` or `?` (with any closing quotes), kept when they have
/// [`MIN_SENTENCE_WORDS`]..=[`MAX_SENTENCE_WORDS`] words and at least one
/// lower-case letter (which drops headings).
pub fn sentences(text: &str, count: usize) -> Vec<String> {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = flat.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        if matches!(c, '.' | '!' | '?') {
            while let Some(&q) = chars.peek() {
                if matches!(q, '\'' | '"' | ')' | '’' | '”') {
                    current.push(q);
                    chars.next();
                } else {
                    break;
                }
            }
            if chars.peek().is_none_or(|&n| n == ' ') {
                let s = current.trim();
                let words = s.split(' ').count();
                if (MIN_SENTENCE_WORDS..=MAX_SENTENCE_WORDS).contains(&words)
                    && s.chars().any(|c| c.is_lowercase())
                {
                    out.push(s.to_owned());
                    if out.len() == count {
                        break;
                    }
                }
                current.clear();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_and_bounded() {
        let t: Vec<u32> = (0..10).collect();
        assert_eq!(token_windows(&t, 4, 5).unwrap(), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        assert_eq!(token_windows(&t, 4, 1).unwrap().len(), 1);
        assert!(token_windows(&t, 11, 1).is_err());
        assert!(token_windows(&t, 1, 1).is_err());
    }

    #[test]
    fn prose_splits_into_sentences() {
        let text = "CHAPTER I\n\n  Alice was beginning to get very tired of sitting.  \
                    `What is the use of a book,' thought Alice, `without pictures?'  \
                    Mr. Short.  So she was considering in her own mind what to do!";
        let s = sentences(text, 10);
        assert_eq!(s[0], "CHAPTER I Alice was beginning to get very tired of sitting.");
        assert_eq!(s[1], "`What is the use of a book,' thought Alice, `without pictures?'");
        assert_eq!(s[2], "So she was considering in her own mind what to do!");
        assert_eq!(s.len(), 3);
        assert_eq!(sentences(text, 1).len(), 1);
    }
}
