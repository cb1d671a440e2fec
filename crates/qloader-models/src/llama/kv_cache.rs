//! The key/value cache of a decoder: per block, the rotated keys and the
//! values of every position seen so far, so each new token attends to them
//! without recomputing them. Stored head-major with room for every position
//! up front: one key/value head's vectors are one contiguous run
//! (`positions × head_dim`), which attention streams front to back, and
//! appending never moves what is there.
//!
//! The cache also carries the decoder's scratch buffers, so that a forward
//! pass over a sequence allocates nothing once they have grown.

use super::scratch::Scratch;

/// Keys and values of the positions processed so far.
pub struct KvCache {
    heads: usize,
    head_dim: usize,
    capacity: usize,
    /// Positions filled, per block.
    lens: Vec<usize>,
    /// Per block, `heads × capacity × head_dim`.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    pub(crate) scratch: Scratch,
}

/// One block's cached keys (or values): head `h`'s vectors for positions
/// `0..len` are `head(h)`, `len × head_dim`.
#[derive(Clone, Copy)]
pub(crate) struct HeadMajor<'a> {
    data: &'a [f32],
    capacity: usize,
    head_dim: usize,
    len: usize,
}

impl<'a> HeadMajor<'a> {
    /// Head `h`'s vectors of every cached position, contiguous.
    pub(crate) fn head(&self, h: usize) -> &'a [f32] {
        let start = h * self.capacity * self.head_dim;
        &self.data[start..start + self.len * self.head_dim]
    }
}

impl KvCache {
    /// An empty cache for `layers` blocks of `heads` key/value heads of
    /// `head_dim` features, holding at most `capacity` positions.
    /// A block's room is allocated at its first append.
    pub fn new(layers: usize, heads: usize, head_dim: usize, capacity: usize) -> Self {
        Self {
            heads,
            head_dim,
            capacity,
            lens: vec![0; layers],
            keys: vec![Vec::new(); layers],
            values: vec![Vec::new(); layers],
            scratch: Scratch::default(),
        }
    }

    /// Positions cached (the position of the next token).
    pub fn len(&self) -> usize {
        self.lens.first().copied().unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most positions the cache may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position (a new sequence).
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Forgets the positions from `len` on (keeps the first `len`).
    pub fn truncate(&mut self, len: usize) {
        self.lens.iter_mut().for_each(|l| *l = (*l).min(len));
    }

    /// Appends `n` positions' keys and values (`n × heads·head_dim` each,
    /// position-major as the projections produce them) to `layer`.
    ///
    /// # Panics
    /// If that would exceed the capacity (callers check first).
    pub(crate) fn append(&mut self, layer: usize, keys: &[f32], values: &[f32]) {
        let (d, width) = (self.head_dim, self.heads * self.head_dim);
        let n = keys.len() / width.max(1);
        let at = self.lens[layer];
        assert!(at + n <= self.capacity, "KV cache full: {} + {n} > {}", at, self.capacity);
        let size = self.heads * self.capacity * d;
        for (src, dst) in [(keys, &mut self.keys[layer]), (values, &mut self.values[layer])] {
            if dst.len() != size {
                dst.resize(size, 0.0);
            }
            for (t, row) in src.chunks_exact(width).enumerate() {
                for (h, v) in row.chunks_exact(d).enumerate() {
                    let start = (h * self.capacity + at + t) * d;
                    dst[start..start + d].copy_from_slice(v);
                }
            }
        }
        self.lens[layer] = at + n;
    }

    /// All cached keys and values of `layer` (after at least one append).
    pub(crate) fn layer<'a>(&'a self, layer: usize) -> (HeadMajor<'a>, HeadMajor<'a>) {
        let (capacity, head_dim, len) = (self.capacity, self.head_dim, self.lens[layer]);
        let view = |data: &'a [f32]| HeadMajor { data, capacity, head_dim, len };
        (view(&self.keys[layer]), view(&self.values[layer]))
    }
}
