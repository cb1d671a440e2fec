//! GGUF metadata: the typed values of the key-value section, how they are
//! decoded (with every length checked against the bytes left before anything
//! is allocated), and the typed look-ups by key.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::HashMap;

use super::reader::{prealloc, ReadResult, Reader};

/// Deepest nesting of arrays inside arrays that is accepted (a plain array
/// has depth 1).
pub const MAX_ARRAY_DEPTH: usize = 8;

/// One metadata value. Arrays hold values of a single element type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetadataValue {
    /// `uint8` (type 0).
    U8(u8),
    /// `int8` (type 1).
    I8(i8),
    /// `uint16` (type 2).
    U16(u16),
    /// `int16` (type 3).
    I16(i16),
    /// `uint32` (type 4).
    U32(u32),
    /// `int32` (type 5).
    I32(i32),
    /// `uint64` (type 10).
    U64(u64),
    /// `int64` (type 11).
    I64(i64),
    /// `float32` (type 6).
    F32(f32),
    /// `float64` (type 12).
    F64(f64),
    /// `bool` (type 7), stored as one byte that must be 0 or 1.
    Bool(bool),
    /// `string` (type 8): UTF-8 with a `u64` length prefix.
    String(String),
    /// `array` (type 9): element type, `u64` count, then the elements.
    Array(Vec<MetadataValue>),
}

/// Value type ids of the GGUF specification (for writers of test files too).
pub mod type_id {
    #![allow(missing_docs)]
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

impl MetadataValue {
    /// The GGUF value type id of this value.
    pub fn value_type(&self) -> u32 {
        match self {
            Self::U8(_) => type_id::U8,
            Self::I8(_) => type_id::I8,
            Self::U16(_) => type_id::U16,
            Self::I16(_) => type_id::I16,
            Self::U32(_) => type_id::U32,
            Self::I32(_) => type_id::I32,
            Self::U64(_) => type_id::U64,
            Self::I64(_) => type_id::I64,
            Self::F32(_) => type_id::F32,
            Self::F64(_) => type_id::F64,
            Self::Bool(_) => type_id::BOOL,
            Self::String(_) => type_id::STRING,
            Self::Array(_) => type_id::ARRAY,
        }
    }

    /// Short name of the value's type, for messages (`"u32"`, `"string"`, ...).
    pub fn type_name(&self) -> &'static str {
        type_name(self.value_type())
    }

    /// The value as an integer, if it is one of the integer types.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Self::U8(v) => v.into(),
            Self::I8(v) => v.into(),
            Self::U16(v) => v.into(),
            Self::I16(v) => v.into(),
            Self::U32(v) => v.into(),
            Self::I32(v) => v.into(),
            Self::U64(v) => v.into(),
            Self::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// The value as a `u64`, if it is an integer that is not negative.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_i128().and_then(|v| u64::try_from(v).ok())
    }

    /// The value as an `f32`, if it is `F32` or `F64` (the latter rounded).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Self::F32(v) => Some(v),
            Self::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if the value is an array.
    pub fn as_array(&self) -> Option<&[MetadataValue]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// Type and (for scalars) value, for error messages.
    fn describe(&self) -> String {
        match self {
            Self::String(s) if s.len() <= 40 => format!("string {s:?}"),
            Self::String(s) => format!("string of {} bytes", s.len()),
            Self::Array(items) => format!("array of {} elements", items.len()),
            Self::F32(v) => format!("f32 {v}"),
            Self::F64(v) => format!("f64 {v}"),
            Self::Bool(v) => format!("bool {v}"),
            other => match other.as_i128() {
                Some(v) => format!("{} {v}", other.type_name()),
                None => other.type_name().to_owned(),
            },
        }
    }
}

/// Short name of a GGUF value type id.
pub(crate) fn type_name(id: u32) -> &'static str {
    match id {
        type_id::U8 => "u8",
        type_id::I8 => "i8",
        type_id::U16 => "u16",
        type_id::I16 => "i16",
        type_id::U32 => "u32",
        type_id::I32 => "i32",
        type_id::F32 => "f32",
        type_id::BOOL => "bool",
        type_id::STRING => "string",
        type_id::ARRAY => "array",
        type_id::U64 => "u64",
        type_id::I64 => "i64",
        type_id::F64 => "f64",
        _ => "unknown",
    }
}

/// The fewest bytes a value of type `id` can occupy (`None` for an unknown
/// type): used to bound array counts before anything is allocated.
fn min_encoded_len(id: u32) -> Option<usize> {
    Some(match id {
        type_id::U8 | type_id::I8 | type_id::BOOL => 1,
        type_id::U16 | type_id::I16 => 2,
        type_id::U32 | type_id::I32 | type_id::F32 => 4,
        type_id::U64 | type_id::I64 | type_id::F64 => 8,
        // A u64 length, possibly zero bytes of text.
        type_id::STRING => 8,
        // A u32 element type and a u64 count, possibly no elements.
        type_id::ARRAY => 12,
        _ => return None,
    })
}

/// Decodes one value of type `id` at the reader's position. `depth` is the
/// number of arrays already enclosing it.
pub(crate) fn read_value(r: &mut Reader<'_>, id: u32, depth: usize) -> ReadResult<MetadataValue> {
    Ok(match id {
        type_id::U8 => MetadataValue::U8(r.u8()?),
        type_id::I8 => MetadataValue::I8(r.i8()?),
        type_id::U16 => MetadataValue::U16(r.u16()?),
        type_id::I16 => MetadataValue::I16(r.i16()?),
        type_id::U32 => MetadataValue::U32(r.u32()?),
        type_id::I32 => MetadataValue::I32(r.i32()?),
        type_id::U64 => MetadataValue::U64(r.u64()?),
        type_id::I64 => MetadataValue::I64(r.i64()?),
        type_id::F32 => MetadataValue::F32(r.f32()?),
        type_id::F64 => MetadataValue::F64(r.f64()?),
        type_id::BOOL => {
            let at = r.position();
            match r.u8()? {
                0 => MetadataValue::Bool(false),
                1 => MetadataValue::Bool(true),
                b => return Err(format!("bool at offset {at} is {b}, expected 0 or 1")),
            }
        }
        type_id::STRING => MetadataValue::String(r.string()?.to_owned()),
        type_id::ARRAY => read_array(r, depth)?,
        other => {
            return Err(format!(
                "unknown value type {other} at offset {}",
                r.position().saturating_sub(4)
            ))
        }
    })
}

/// Decodes an array (element type, count, elements) enclosed in `depth` arrays.
fn read_array(r: &mut Reader<'_>, depth: usize) -> ReadResult<MetadataValue> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(format!(
            "arrays nested more than {MAX_ARRAY_DEPTH} deep (offset {})",
            r.position()
        ));
    }
    let at = r.position();
    let elem = r.u32()?;
    let min = min_encoded_len(elem)
        .ok_or_else(|| format!("array at offset {at} has unknown element type {elem}"))?;
    let count = r.u64()?;
    let fits = usize::try_from(count)
        .ok()
        .filter(|&n| n.checked_mul(min).is_some_and(|bytes| bytes <= r.remaining()));
    let Some(n) = fits else {
        return Err(format!(
            "array length {count} of {} runs past the end of the file (offset {at}, file {} bytes)",
            type_name(elem),
            r.total_len()
        ));
    };
    let mut items = Vec::with_capacity(prealloc(n));
    for i in 0..n {
        let item = read_value(r, elem, depth + 1).map_err(|e| format!("element {i}: {e}"))?;
        items.push(item);
    }
    Ok(MetadataValue::Array(items))
}

/// The metadata section: entries in file order, with an index by key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metadata {
    entries: Vec<(String, MetadataValue)>,
    index: HashMap<String, usize>,
}

impl Metadata {
    /// An empty section expecting `count` entries (already bounded by the
    /// caller against the file size).
    pub(crate) fn expecting(count: usize) -> Self {
        let n = prealloc(count);
        Self { entries: Vec::with_capacity(n), index: HashMap::with_capacity(n) }
    }

    /// Appends an entry; a key already present is an error naming both positions.
    pub(crate) fn push(&mut self, key: String, value: MetadataValue) -> Result<(), String> {
        let n = self.entries.len();
        if let Some(&first) = self.index.get(&key) {
            return Err(format!("metadata key `{key}` appears twice (#{first} and #{n})"));
        }
        self.index.insert(key.clone(), n);
        self.entries.push((key, value));
        Ok(())
    }

    /// All entries, in file order.
    pub(crate) fn entries(&self) -> &[(String, MetadataValue)] {
        &self.entries
    }

    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.index.get(key).and_then(|&i| self.entries.get(i)).map(|(_, v)| v)
    }

    fn require(&self, key: &str) -> Result<&MetadataValue, String> {
        self.get(key).ok_or_else(|| format!("metadata key `{key}` is missing"))
    }

    /// A non-negative integer of any integer type.
    pub(crate) fn get_u64(&self, key: &str) -> Result<u64, String> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| wrong_type(key, v, "a non-negative integer"))
    }

    /// A non-negative integer that fits `usize`.
    pub(crate) fn get_usize(&self, key: &str) -> Result<usize, String> {
        let v = self.get_u64(key)?;
        usize::try_from(v)
            .map_err(|_| format!("metadata key `{key}` is {v}, which does not fit in usize"))
    }

    /// An `F32` or `F64` value.
    pub(crate) fn get_f32(&self, key: &str) -> Result<f32, String> {
        let v = self.require(key)?;
        v.as_f32().ok_or_else(|| wrong_type(key, v, "a float"))
    }

    /// A string value.
    pub(crate) fn get_str(&self, key: &str) -> Result<&str, String> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| wrong_type(key, v, "a string"))
    }

    fn require_array(&self, key: &str, what: &str) -> Result<&[MetadataValue], String> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| wrong_type(key, v, what))
    }

    /// An array of strings.
    pub(crate) fn get_str_array(&self, key: &str) -> Result<Vec<&str>, String> {
        let items = self.require_array(key, "an array of strings")?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().ok_or_else(|| wrong_element(key, i, v, "a string")))
            .collect()
    }

    /// An array of integers of any integer type, each within `i32` range.
    pub(crate) fn get_i32_array(&self, key: &str) -> Result<Vec<i32>, String> {
        let items = self.require_array(key, "an array of integers")?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_i128()
                    .and_then(|x| i32::try_from(x).ok())
                    .ok_or_else(|| wrong_element(key, i, v, "an integer in i32 range"))
            })
            .collect()
    }

    /// An array of `F32` or `F64` values.
    pub(crate) fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, String> {
        let items = self.require_array(key, "an array of floats")?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_f32().ok_or_else(|| wrong_element(key, i, v, "a float")))
            .collect()
    }
}

fn wrong_type(key: &str, v: &MetadataValue, expected: &str) -> String {
    format!("metadata key `{key}` is {}, expected {expected}", v.describe())
}

fn wrong_element(key: &str, i: usize, v: &MetadataValue, expected: &str) -> String {
    format!("metadata key `{key}`: element {i} is {}, expected {expected}", v.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(id: u32, bytes: &[u8]) -> ReadResult<MetadataValue> {
        read_value(&mut Reader::new(bytes), id, 0)
    }

    fn array_header(elem: u32, count: u64) -> Vec<u8> {
        let mut b = elem.to_le_bytes().to_vec();
        b.extend_from_slice(&count.to_le_bytes());
        b
    }

    #[test]
    fn absurd_array_length_is_rejected_before_allocating() {
        for elem in [type_id::U8, type_id::U64, type_id::STRING, type_id::ARRAY] {
            let err = decode(type_id::ARRAY, &array_header(elem, u64::MAX)).unwrap_err();
            assert!(err.contains("array length 18446744073709551615"), "{err}");
        }
        // Exactly as many u16 elements as there are bytes for is fine.
        let mut b = array_header(type_id::U16, 2);
        b.extend_from_slice(&[1, 0, 2, 0]);
        assert_eq!(
            decode(type_id::ARRAY, &b).unwrap(),
            MetadataValue::Array(vec![MetadataValue::U16(1), MetadataValue::U16(2)])
        );
        b.pop();
        assert!(decode(type_id::ARRAY, &b).is_err());
    }

    #[test]
    fn nesting_is_limited() {
        let mut b = Vec::new();
        for _ in 0..MAX_ARRAY_DEPTH + 1 {
            b.extend_from_slice(&array_header(type_id::ARRAY, 1));
        }
        b.extend_from_slice(&array_header(type_id::U8, 0));
        let err = decode(type_id::ARRAY, &b).unwrap_err();
        assert!(err.contains("nested more than 8 deep"), "{err}");

        let mut b = Vec::new();
        for _ in 0..MAX_ARRAY_DEPTH - 1 {
            b.extend_from_slice(&array_header(type_id::ARRAY, 1));
        }
        b.extend_from_slice(&array_header(type_id::U8, 0));
        assert!(decode(type_id::ARRAY, &b).is_ok());
    }

    #[test]
    fn bad_bool_and_unknown_types_are_errors() {
        assert_eq!(decode(type_id::BOOL, &[1]).unwrap(), MetadataValue::Bool(true));
        assert!(decode(type_id::BOOL, &[2]).unwrap_err().contains("expected 0 or 1"));
        assert!(decode(13, &[0; 16]).unwrap_err().contains("unknown value type 13"));
        let err = decode(type_id::ARRAY, &array_header(77, 0)).unwrap_err();
        assert!(err.contains("unknown element type 77"), "{err}");
    }

    #[test]
    fn typed_getters_convert_and_explain() {
        let mut m = Metadata::default();
        m.push("a.u32".into(), MetadataValue::U32(7)).unwrap();
        m.push("a.neg".into(), MetadataValue::I64(-3)).unwrap();
        m.push("a.f64".into(), MetadataValue::F64(0.5)).unwrap();
        m.push("a.s".into(), MetadataValue::String("llama".into())).unwrap();
        m.push(
            "a.ints".into(),
            MetadataValue::Array(vec![MetadataValue::U8(1), MetadataValue::I64(-2)]),
        )
        .unwrap();
        m.push("a.big".into(), MetadataValue::Array(vec![MetadataValue::U64(1 << 40)])).unwrap();
        assert_eq!(m.get_u64("a.u32"), Ok(7));
        assert_eq!(m.get_usize("a.u32"), Ok(7));
        assert_eq!(m.get_f32("a.f64"), Ok(0.5));
        assert_eq!(m.get_str("a.s"), Ok("llama"));
        assert_eq!(m.get_i32_array("a.ints"), Ok(vec![1, -2]));
        let err = m.get_u64("a.neg").unwrap_err();
        assert_eq!(err, "metadata key `a.neg` is i64 -3, expected a non-negative integer");
        let err = m.get_u64("a.s").unwrap_err();
        assert_eq!(err, "metadata key `a.s` is string \"llama\", expected a non-negative integer");
        assert_eq!(m.get_str("nope").unwrap_err(), "metadata key `nope` is missing");
        let err = m.get_i32_array("a.big").unwrap_err();
        assert!(err.contains("element 0 is u64 1099511627776"), "{err}");
        let err = m.get_str_array("a.ints").unwrap_err();
        assert!(err.contains("element 0 is u8 1, expected a string"), "{err}");
        let err = m.push("a.s".into(), MetadataValue::Bool(true)).unwrap_err();
        assert_eq!(err, "metadata key `a.s` appears twice (#3 and #6)");
    }
}
