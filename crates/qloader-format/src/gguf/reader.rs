//! A bounds-checked little-endian cursor over the bytes of a GGUF file.
//!
//! Every read either returns the value and advances, or returns a reason that
//! says at which offset the file ran out. Nothing here panics, and nothing
//! allocates: strings are borrowed from the underlying bytes.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

/// Why a read failed: a human-readable reason, without the file name.
pub(crate) type ReadResult<T> = Result<T, String>;

/// Most items reserved up front for a count read from the file.
const PREALLOC_LIMIT: usize = 1 << 16;

/// Capacity to reserve for `count` items that have been checked to fit in the
/// file but not read yet. Capped, so that a crafted count costs no more
/// memory than the items actually present: beyond the cap, collections grow
/// as items are decoded.
pub(crate) fn prealloc(count: usize) -> usize {
    count.min(PREALLOC_LIMIT)
}

/// A cursor over a byte slice; all multi-byte values are little-endian.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The offset of the next byte to be read.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// How many bytes are left after the cursor.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Length of the whole buffer (the file size).
    pub(crate) fn total_len(&self) -> usize {
        self.bytes.len()
    }

    /// The next `n` bytes, or an error if fewer are left.
    pub(crate) fn take(&mut self, n: usize) -> ReadResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(format!(
                "{n} bytes at offset {} run past the end of the file ({} bytes)",
                self.pos,
                self.bytes.len()
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> ReadResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a `u8`.
    pub(crate) fn u8(&mut self) -> ReadResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads an `i8`.
    pub(crate) fn i8(&mut self) -> ReadResult<i8> {
        self.array().map(i8::from_le_bytes)
    }

    /// Reads a little-endian `u16`.
    pub(crate) fn u16(&mut self) -> ReadResult<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// Reads a little-endian `i16`.
    pub(crate) fn i16(&mut self) -> ReadResult<i16> {
        self.array().map(i16::from_le_bytes)
    }

    /// Reads a little-endian `u32`.
    pub(crate) fn u32(&mut self) -> ReadResult<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a little-endian `i32`.
    pub(crate) fn i32(&mut self) -> ReadResult<i32> {
        self.array().map(i32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    pub(crate) fn u64(&mut self) -> ReadResult<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// Reads a little-endian `i64`.
    pub(crate) fn i64(&mut self) -> ReadResult<i64> {
        self.array().map(i64::from_le_bytes)
    }

    /// Reads a little-endian IEEE-754 `f32`.
    pub(crate) fn f32(&mut self) -> ReadResult<f32> {
        self.array().map(f32::from_le_bytes)
    }

    /// Reads a little-endian IEEE-754 `f64`.
    pub(crate) fn f64(&mut self) -> ReadResult<f64> {
        self.array().map(f64::from_le_bytes)
    }

    /// Reads a GGUF string: a `u64` byte length followed by that many bytes of
    /// UTF-8 (no terminator). The length is checked against the bytes left
    /// before anything is sliced.
    pub(crate) fn string(&mut self) -> ReadResult<&'a str> {
        let len_at = self.pos;
        let len = self.u64()?;
        let n = usize::try_from(len).ok().filter(|&n| n <= self.remaining()).ok_or_else(|| {
            format!(
                "string length {len} runs past the end of the file (offset {len_at}, file {} bytes)",
                self.bytes.len()
            )
        })?;
        let start = self.pos;
        let raw = self.take(n)?;
        std::str::from_utf8(raw).map_err(|e| {
            format!(
                "string of {n} bytes at offset {start} is not valid UTF-8 (bad byte at offset {})",
                start + e.valid_up_to()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_values_in_sequence() {
        let mut bytes = vec![0x7f];
        bytes.extend_from_slice(&0x1234u16.to_le_bytes());
        bytes.extend_from_slice(&(-5i32).to_le_bytes());
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(&1.5f32.to_le_bytes());
        bytes.extend_from_slice(&(-2.25f64).to_le_bytes());
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8().unwrap(), 0x7f);
        assert_eq!(r.u16().unwrap(), 0x1234);
        assert_eq!(r.i32().unwrap(), -5);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.f32().unwrap(), 1.5);
        assert_eq!(r.f64().unwrap(), -2.25);
        assert_eq!(r.remaining(), 0);
        let err = r.u8().unwrap_err();
        assert!(err.contains(&format!("offset {}", bytes.len())), "{err}");
    }

    #[test]
    fn short_read_does_not_advance() {
        let bytes = [1u8, 2, 3];
        let mut r = Reader::new(&bytes);
        assert!(r.u32().is_err());
        assert_eq!(r.position(), 0);
        assert_eq!(r.u16().unwrap(), 0x0201);
    }

    #[test]
    fn string_length_is_checked_before_slicing() {
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let err = Reader::new(&bytes).string().unwrap_err();
        assert!(err.contains("string length 18446744073709551615"), "{err}");
        assert!(err.contains("offset 0, file 11 bytes"), "{err}");

        let mut bytes = 3u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"ab");
        assert!(Reader::new(&bytes).string().is_err());

        let mut bytes = 3u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        assert_eq!(Reader::new(&bytes).string().unwrap(), "abc");
    }

    #[test]
    fn invalid_utf8_is_rejected_with_its_offset() {
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[b'a', 0xff]);
        let err = Reader::new(&bytes).string().unwrap_err();
        assert!(err.contains("not valid UTF-8 (bad byte at offset 9)"), "{err}");
    }
}
