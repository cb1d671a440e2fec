//! A test-only GGUF writer: builds valid files with chosen metadata and
//! tensors, with hooks (raw type ids, forced offsets) for building invalid ones.

use crate::gguf::{GgmlType, MetadataValue, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};

/// One tensor to write.
#[derive(Debug, Clone)]
pub(crate) struct TensorSpec {
    pub name: String,
    /// GGUF order: innermost first.
    pub dims: Vec<u64>,
    pub type_id: u32,
    pub data: Vec<u8>,
    /// Offset to record instead of the one the builder lays the data out at.
    pub forced_offset: Option<u64>,
}

/// Builds a GGUF file in memory. Tensor data is laid out in order, each at the
/// next multiple of the alignment, with no padding after the last tensor.
#[derive(Debug, Clone)]
pub(crate) struct GgufBuilder {
    version: u32,
    alignment: usize,
    metadata: Vec<(String, MetadataValue)>,
    tensors: Vec<TensorSpec>,
}

impl GgufBuilder {
    pub(crate) fn new() -> Self {
        Self { version: 3, alignment: DEFAULT_ALIGNMENT, metadata: Vec::new(), tensors: Vec::new() }
    }

    pub(crate) fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Sets `general.alignment` (as a u32) and lays data out with it.
    pub(crate) fn alignment(mut self, alignment: u32) -> Self {
        self.alignment = alignment as usize;
        self.kv(ALIGNMENT_KEY, MetadataValue::U32(alignment))
    }

    pub(crate) fn kv(mut self, key: &str, value: MetadataValue) -> Self {
        self.metadata.push((key.to_owned(), value));
        self
    }

    pub(crate) fn tensor(self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> Self {
        self.raw_tensor(TensorSpec {
            name: name.to_owned(),
            dims: dims.to_vec(),
            type_id: ty.id(),
            data,
            forced_offset: None,
        })
    }

    pub(crate) fn raw_tensor(mut self, spec: TensorSpec) -> Self {
        self.tensors.push(spec);
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

    pub(crate) fn build(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(&mut out, key);
            out.extend_from_slice(&value.value_type().to_le_bytes());
            put_value(&mut out, value);
        }
        let layout = self.layout();
        for (t, &at) in self.tensors.iter().zip(&layout) {
            put_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&t.forced_offset.unwrap_or(at).to_le_bytes());
        }
        if !self.tensors.is_empty() {
            out.resize(out.len().next_multiple_of(self.alignment), 0);
        }
        let data_start = out.len();
        for (t, &at) in self.tensors.iter().zip(&layout) {
            out.resize(data_start + at as usize, 0);
            out.extend_from_slice(&t.data);
        }
        out
    }
}

pub(crate) use crate::gguf::writer::{put_string, put_value};

/// Little-endian bytes of `values`.
pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
