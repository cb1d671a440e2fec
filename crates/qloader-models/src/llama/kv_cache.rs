//! The key/value cache of a decoder: per block, the rotated keys and the
//! values of every position seen so far, so each new token attends to them
//! without recomputing them.

/// Keys and values of the positions processed so far.
pub struct KvCache {
    width: usize,
    capacity: usize,
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

impl KvCache {
    /// An empty cache for `layers` blocks of `width` key/value features,
    /// holding at most `capacity` positions.
    pub fn new(layers: usize, width: usize, capacity: usize) -> Self {
        Self { width, capacity, keys: vec![Vec::new(); layers], values: vec![Vec::new(); layers] }
    }

    /// Positions cached (the position of the next token).
    pub fn len(&self) -> usize {
        self.keys.first().map_or(0, |k| k.len() / self.width.max(1))
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
        self.keys.iter_mut().chain(self.values.iter_mut()).for_each(Vec::clear);
    }

    /// Appends `n` positions' keys and values (`n × width` each) to `layer`.
    pub(crate) fn append(&mut self, layer: usize, keys: &[f32], values: &[f32]) {
        self.keys[layer].extend_from_slice(keys);
        self.values[layer].extend_from_slice(values);
    }

    /// All cached keys and values of `layer` (`positions × width`).
    pub(crate) fn layer(&self, layer: usize) -> (&[f32], &[f32]) {
        (&self.keys[layer], &self.values[layer])
    }
}
