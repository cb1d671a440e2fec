//! Where a matrix's arrays live: in memory the matrix owns, or in place
//! inside bytes shared with others — above all a memory-mapped packed model,
//! whose tensor segments the kernels then read directly, so that loading a
//! model copies nothing and only the pages a kernel touches become resident.
//!
//! [`Storage`] dereferences to a slice either way. A shared view is made only
//! where it is sound: the bytes lie inside the owner, their address is
//! aligned for the element type, their length is a whole number of
//! elements, and (for elements wider than a byte) the host is little-endian,
//! the byte order of every QLoader file.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use half::f16;

/// Bytes that stay at one address, unchanged, for as long as the value
/// lives (a read-only memory map, a boxed buffer nobody writes).
///
/// # Safety
/// Every call of [`StableBytes::stable_bytes`] on one value must return the
/// same slice (address and length), and nothing may write to those bytes
/// while the value is alive.
pub unsafe trait StableBytes: Send + Sync + 'static {
    /// The bytes.
    fn stable_bytes(&self) -> &[u8];
}

// SAFETY: a `Vec` that is never mutated (it sits behind an `Arc`, shared
// only immutably) keeps its buffer where it is.
unsafe impl StableBytes for Vec<u8> {
    fn stable_bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: a read-only map stays at its address until it is unmapped on drop;
// the process never writes through it. (Another process truncating the file
// is outside what a memory-mapped loader can guard against; QLoader's own
// writer replaces files by rename, which leaves existing maps intact.)
unsafe impl StableBytes for memmap2::Mmap {
    fn stable_bytes(&self) -> &[u8] {
        self
    }
}

/// Element types that may be viewed in place from little-endian bytes: every
/// bit pattern is a valid value and there is no padding.
///
/// # Safety
/// Implementors must be plain old data with those two properties.
pub unsafe trait Plain: Copy + Send + Sync + PartialEq + fmt::Debug + 'static {}

// SAFETY: integers and IEEE floats: any bits are a value, no padding.
unsafe impl Plain for u8 {}
// SAFETY: as above.
unsafe impl Plain for i8 {}
// SAFETY: as above.
unsafe impl Plain for f32 {}
// SAFETY: `f16` is a transparent wrapper of `u16`.
unsafe impl Plain for f16 {}

/// An immutable array of `T`, owned or viewed in shared bytes.
pub struct Storage<T: Plain> {
    repr: Repr<T>,
}

enum Repr<T> {
    Owned(Vec<T>),
    Shared {
        /// Keeps the bytes alive.
        _owner: Arc<dyn StableBytes>,
        ptr: *const T,
        len: usize,
    },
}

// SAFETY: a shared view only reads immutable bytes whose owner is `Send +
// Sync`; an owned array is a `Vec<T>` of `Send + Sync` elements.
unsafe impl<T: Plain> Send for Storage<T> {}
// SAFETY: as above; nothing is ever written through a `Storage`.
unsafe impl<T: Plain> Sync for Storage<T> {}

impl<T: Plain> Storage<T> {
    /// An owned array.
    pub fn owned(values: Vec<T>) -> Self {
        Self { repr: Repr::Owned(values) }
    }

    /// A view of `range` of `owner`'s bytes as `T`s, or `None` where that is
    /// not sound (out of range, misaligned, not a whole number of elements,
    /// or a big-endian host for multi-byte elements): the caller then copies.
    pub fn shared(owner: &Arc<dyn StableBytes>, range: Range<usize>) -> Option<Self> {
        let size = std::mem::size_of::<T>();
        if size > 1 && cfg!(target_endian = "big") {
            return None;
        }
        let bytes = owner.stable_bytes().get(range)?;
        if bytes.len() % size != 0
            || !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>())
        {
            return None;
        }
        Some(Self {
            repr: Repr::Shared {
                _owner: Arc::clone(owner),
                ptr: bytes.as_ptr().cast::<T>(),
                len: bytes.len() / size,
            },
        })
    }

    /// Whether the array is a view of shared bytes (not owned).
    pub fn is_shared(&self) -> bool {
        matches!(self.repr, Repr::Shared { .. })
    }
}

impl<T: Plain> Deref for Storage<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.repr {
            Repr::Owned(v) => v,
            // SAFETY: `shared` checked that `len` elements at `ptr` lie inside
            // the owner's bytes and that `ptr` is aligned; the owner, kept
            // alive by the `Arc`, never moves or changes them (`StableBytes`),
            // and every bit pattern is a `T` (`Plain`).
            Repr::Shared { ptr, len, .. } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
        }
    }
}

impl<T: Plain> From<Vec<T>> for Storage<T> {
    fn from(values: Vec<T>) -> Self {
        Self::owned(values)
    }
}

impl<T: Plain> Clone for Storage<T> {
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Owned(v) => Self::owned(v.clone()),
            Repr::Shared { _owner, ptr, len } => {
                Self { repr: Repr::Shared { _owner: Arc::clone(_owner), ptr: *ptr, len: *len } }
            }
        }
    }
}

impl<T: Plain> PartialEq for Storage<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Plain> fmt::Debug for Storage<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_shared() { "shared" } else { "owned" };
        write!(f, "Storage({kind}, {} × {})", self.len(), std::any::type_name::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(bytes: Vec<u8>) -> Arc<dyn StableBytes> {
        Arc::new(bytes)
    }

    #[test]
    fn a_shared_view_reads_the_owner_in_place() {
        let values = [1.5f32, -2.0, 3.25];
        let mut bytes = vec![0u8; 4];
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let o = owner(bytes);
        let base = o.stable_bytes().as_ptr() as usize;
        // A Vec's buffer is at least 4-aligned for these sizes on every
        // allocator we run on, but do not depend on it.
        if base.is_multiple_of(4) {
            let s = Storage::<f32>::shared(&o, 4..16).unwrap();
            assert!(s.is_shared());
            assert_eq!(&*s, &values);
            assert_eq!(s.clone(), Storage::owned(values.to_vec()));
        }
    }

    #[test]
    fn unsound_views_are_refused() {
        let o = owner(vec![0u8; 64]);
        let aligned = (o.stable_bytes().as_ptr() as usize).is_multiple_of(4);
        assert!(Storage::<f32>::shared(&o, 0..6).is_none(), "not whole elements");
        assert!(Storage::<f32>::shared(&o, 60..68).is_none(), "out of range");
        if aligned {
            assert!(Storage::<f32>::shared(&o, 1..5).is_none(), "misaligned");
        }
        assert!(Storage::<u8>::shared(&o, 1..5).is_some(), "bytes are never misaligned");
    }
}
