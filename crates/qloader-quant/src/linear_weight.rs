//! One weight matrix in one storage format, and the product through it.

use std::cell::OnceCell;

use qloader_format::grouped::GROUPS;
use qloader_format::{ActivationFormat, WeightFormat};
use qloader_kernels::activations::QuantizedActivations;
use qloader_kernels::matmul::{
    matmul_f16, matmul_f32, matmul_grouped, matmul_int8, matmul_int8_a8_with, matmul_tiles,
    matmul_tiles_glu, INT8_ACTIVATION_GROUP,
};
use qloader_kernels::rowwise;
use qloader_kernels::tiles::{matmul_tiled_a8, matmul_tiled_a8_glu, TiledMatrix};
use qloader_kernels::{
    BlockMatrix, CompactMatrix, DenseMatrix, GroupedMatrix, HalfMatrix, Int8Matrix, Kernels,
};

/// The input rows of one or more linear layers (`m × cols`), with their
/// int8 quantization made once per group size on first need, so that layers
/// reading the same input (q, k and v; gate and up) share it.
pub struct LinearInput<'a> {
    x: &'a [f32],
    m: usize,
    quantized: [OnceCell<QuantizedActivations>; GROUPS.len()],
}

impl<'a> LinearInput<'a> {
    /// `m` rows of `x`.
    pub fn new(x: &'a [f32], m: usize) -> Self {
        Self { x, m, quantized: Default::default() }
    }

    /// The rows quantized to int8 in groups of `group` (32, 64 or 128).
    fn quantized(&self, group: usize) -> &QuantizedActivations {
        let slot = GROUPS.iter().position(|&g| g == group).expect("a grouped layout's group");
        let cols = self.x.len().checked_div(self.m).unwrap_or(0);
        self.quantized[slot]
            .get_or_init(|| QuantizedActivations::quantize(self.x, self.m, cols, group))
    }
}

/// A linear layer's `out × in` weight, stored in one format.
#[derive(Debug, Clone)]
pub enum LinearWeight {
    /// Unquantized.
    F32(DenseMatrix),
    /// IEEE half precision.
    F16(HalfMatrix),
    /// Int8, one symmetric scale per output channel.
    Int8(Int8Matrix),
    /// Int8/int4/int3/int2 in groups along the input dimension.
    Grouped(GroupedMatrix),
    /// Int4/int3/int2 in sub-blocks with quantized scales (`int4k`, …).
    Compact(CompactMatrix),
    /// llama.cpp's 32-value blocks (`q4_0`, `q8_0`, `iq4_nl`).
    Block(BlockMatrix),
}

impl LinearWeight {
    /// Stores `w` in `format`.
    pub fn quantize(w: DenseMatrix, format: WeightFormat) -> Self {
        match format {
            WeightFormat::F16
            | WeightFormat::Int8PerChannel
            | WeightFormat::Grouped(_)
            | WeightFormat::Compact(_)
            | WeightFormat::Block(_) => Self::quantize_borrowed(&w, format),
            _ => LinearWeight::F32(w),
        }
    }

    /// Like [`LinearWeight::quantize`], from a borrowed matrix (copied only
    /// when `format` keeps `f32`).
    pub fn quantize_borrowed(w: &DenseMatrix, format: WeightFormat) -> Self {
        Self::quantize_weighted(w, format, None)
    }

    /// Like [`LinearWeight::quantize_borrowed`], with the grid search of a
    /// grouped format weighing input column `c`'s squared error by
    /// `importance[c]` (see [`crate::ColumnImportance`]). Formats without a
    /// grid search (f16, int8 per channel) ignore it.
    ///
    /// # Panics
    /// If `importance` is given and does not hold one value per input column.
    pub fn quantize_weighted(
        w: &DenseMatrix,
        format: WeightFormat,
        importance: Option<&[f32]>,
    ) -> Self {
        match format {
            WeightFormat::F16 => LinearWeight::F16(HalfMatrix::quantize(w)),
            WeightFormat::Int8PerChannel => LinearWeight::Int8(Int8Matrix::quantize(w)),
            WeightFormat::Grouped(layout) => {
                LinearWeight::Grouped(GroupedMatrix::quantize_weighted(w, layout, importance))
            }
            WeightFormat::Compact(layout) => {
                LinearWeight::Compact(CompactMatrix::quantize(w, layout, importance))
            }
            WeightFormat::Block(layout) => {
                LinearWeight::Block(BlockMatrix::quantize(w, layout, importance))
            }
            _ => LinearWeight::F32(w.clone()),
        }
    }

    /// The storage format.
    pub fn format(&self) -> WeightFormat {
        match self {
            LinearWeight::F32(_) => WeightFormat::F32,
            LinearWeight::F16(_) => WeightFormat::F16,
            LinearWeight::Int8(_) => WeightFormat::Int8PerChannel,
            LinearWeight::Grouped(w) => WeightFormat::Grouped(w.layout()),
            LinearWeight::Compact(w) => WeightFormat::Compact(w.layout()),
            LinearWeight::Block(w) => WeightFormat::Block(w.layout()),
        }
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        match self {
            LinearWeight::F32(w) => w.rows(),
            LinearWeight::F16(w) => w.rows(),
            LinearWeight::Int8(w) => w.rows(),
            LinearWeight::Grouped(w) => w.rows(),
            LinearWeight::Compact(w) => w.rows(),
            LinearWeight::Block(w) => w.rows(),
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        match self {
            LinearWeight::F32(w) => w.cols(),
            LinearWeight::F16(w) => w.cols(),
            LinearWeight::Int8(w) => w.cols(),
            LinearWeight::Grouped(w) => w.cols(),
            LinearWeight::Compact(w) => w.cols(),
            LinearWeight::Block(w) => w.cols(),
        }
    }

    /// The `f32` matrix this weight stands for (its codes times its scales,
    /// plus offsets): what the products compute with.
    pub fn dequantize(&self) -> DenseMatrix {
        match self {
            LinearWeight::F32(w) => w.clone(),
            LinearWeight::F16(w) => w.dequantize(),
            LinearWeight::Int8(w) => w.dequantize(),
            LinearWeight::Grouped(w) => w.dequantize(),
            LinearWeight::Compact(w) => w.dequantize(),
            LinearWeight::Block(w) => w.dequantize(),
        }
    }

    /// [`LinearWeight::dequantize`] into `out` (`out_features ×
    /// in_features` values, row-major), without allocating.
    ///
    /// # Panics
    /// If `out` does not hold one value per weight.
    pub fn dequantize_into(&self, out: &mut [f32]) {
        match self {
            LinearWeight::F32(w) => out.copy_from_slice(w.data()),
            LinearWeight::F16(w) => w.dequantize_into(out),
            LinearWeight::Int8(w) => w.dequantize_into(out),
            LinearWeight::Grouped(w) => w.dequantize_into(out),
            LinearWeight::Compact(w) => w.dequantize_into(out),
            LinearWeight::Block(w) => w.dequantize_into(out),
        }
    }

    /// Whether the weight reads its values in place from a memory-mapped
    /// model (see [`LinearWeight::from_mapped_parts`]) instead of owning them.
    pub fn is_mapped(&self) -> bool {
        match self {
            LinearWeight::F32(w) => w.is_mapped(),
            LinearWeight::F16(w) => w.is_mapped(),
            LinearWeight::Int8(w) => w.is_mapped(),
            LinearWeight::Grouped(w) => w.is_mapped(),
            LinearWeight::Compact(w) => w.is_mapped(),
            LinearWeight::Block(w) => w.is_mapped(),
        }
    }

    /// Bytes of storage, scales and offsets included.
    pub fn storage_bytes(&self) -> usize {
        match self {
            LinearWeight::F32(w) => w.storage_bytes(),
            LinearWeight::F16(w) => w.storage_bytes(),
            LinearWeight::Int8(w) => w.storage_bytes(),
            LinearWeight::Grouped(w) => w.storage_bytes(),
            LinearWeight::Compact(w) => w.storage_bytes(),
            LinearWeight::Block(w) => w.storage_bytes(),
        }
    }

    /// `y = x·Wᵀ` for `m` rows of `x` (`m × in`), into `y` (`m × out`).
    pub fn matmul(&self, x: &[f32], m: usize, y: &mut [f32]) {
        match self {
            LinearWeight::F32(w) => matmul_f32(x, m, w, y),
            LinearWeight::F16(w) => matmul_f16(x, m, w, y),
            LinearWeight::Int8(w) => matmul_int8(x, m, w, y),
            LinearWeight::Grouped(w) => matmul_grouped(x, m, w, y),
            LinearWeight::Compact(w) => matmul_tiles(x, m, w.tiles(), y),
            LinearWeight::Block(w) => matmul_tiles(x, m, w.tiles(), y),
        }
    }

    /// Like [`LinearWeight::matmul`], but integer formats quantize `x` to int8
    /// in groups first and use integer dot products (W8A8, W4A8, …); float
    /// formats multiply in `f32` as usual.
    pub fn matmul_a8(&self, x: &[f32], m: usize, y: &mut [f32]) {
        self.matmul_input(ActivationFormat::Int8, &LinearInput::new(x, m), y)
    }

    /// `y = x·Wᵀ` with activations in `act`.
    pub fn matmul_with(&self, act: ActivationFormat, x: &[f32], m: usize, y: &mut [f32]) {
        self.matmul_input(act, &LinearInput::new(x, m), y)
    }

    /// `y = x·Wᵀ` for the rows of `input`, with activations in `act` (int8
    /// activations quantized once per input and group size).
    pub fn matmul_input(&self, act: ActivationFormat, input: &LinearInput<'_>, y: &mut [f32]) {
        if let (ActivationFormat::Int8, Some(tiles)) = (act, self.tiles()) {
            return matmul_tiled_a8(input.quantized(tiles.layout().group()), tiles, y);
        }
        match (act, self) {
            (ActivationFormat::Int8, LinearWeight::Int8(w)) => {
                let xq = input.quantized(INT8_ACTIVATION_GROUP);
                matmul_int8_a8_with(Kernels::detect(), xq, w, y)
            }
            _ => self.matmul(input.x, input.m, y),
        }
    }

    /// SwiGLU's `SiLU(x·Gᵀ) ⊙ (x·Uᵀ)` of `gate` (this weight) and `up`
    /// for the rows of `input`, into `y` (`m × out`): one fused pass where
    /// both are grouped weights of one shape and layout (int8 activations;
    /// `f32` ones as [`matmul_grouped_glu`] decides); else the two products
    /// (the up product into `scratch`) and the gating.
    pub fn glu_input(
        &self,
        up: &LinearWeight,
        act: ActivationFormat,
        input: &LinearInput<'_>,
        y: &mut [f32],
        scratch: &mut Vec<f32>,
    ) {
        if let (Some(g), Some(u)) = (self.tiles(), up.tiles()) {
            let same = (g.rows(), g.cols(), g.layout()) == (u.rows(), u.cols(), u.layout());
            match act {
                ActivationFormat::Int8 if same => {
                    let xq = input.quantized(g.layout().group());
                    return matmul_tiled_a8_glu(xq, g, u, y);
                }
                ActivationFormat::F32 if same => {
                    return matmul_tiles_glu(input.x, input.m, g, u, y, scratch);
                }
                _ => {}
            }
        }
        self.matmul_input(act, input, y);
        scratch.resize(y.len(), 0.0);
        up.matmul_input(act, input, scratch);
        rowwise::silu_mul(y, scratch);
    }

    /// The weight in tiles, for the formats whose products run on them
    /// (grouped and compact; made at the first call).
    pub fn tiles(&self) -> Option<&TiledMatrix> {
        match self {
            LinearWeight::Grouped(w) => Some(w.tiles()),
            LinearWeight::Compact(w) => Some(w.tiles()),
            LinearWeight::Block(w) => Some(w.tiles()),
            _ => None,
        }
    }

    /// Makes now what the products would otherwise make at their first call
    /// (a grouped weight's tiles, an `f16` weight's panels: each a copy as
    /// large as the weight), so that timing them measures products only
    /// and a decoder's first prompt does not pay for them.
    pub fn prepare_products(&self) {
        match self {
            LinearWeight::Grouped(_) | LinearWeight::Compact(_) | LinearWeight::Block(_) => {
                self.tiles();
            }
            LinearWeight::F16(w) => {
                w.panels();
            }
            _ => {}
        }
    }

    /// Bytes a `rows × cols` weight stored in `format` needs once its
    /// products are prepared ([`LinearWeight::prepare_products`]): the
    /// tiles of the grouped, compact and block formats (the products read
    /// only them); the stored rows and their panels for `f16` (the products
    /// read both); the stored bytes for `f32` and `int8`, read in place.
    pub fn prepared_bytes(format: WeightFormat, rows: usize, cols: usize) -> usize {
        use qloader_kernels::quantize::RowLayout;
        use qloader_kernels::tiles::layout::{panel_bytes, TileHeader, PANEL_ROWS};
        let tiles = |layout, header| rows.div_ceil(PANEL_ROWS) * panel_bytes(layout, header, cols);
        match format {
            WeightFormat::Grouped(l) => tiles(l, TileHeader::ScaleOffset),
            WeightFormat::Compact(l) => tiles(l.tile_layout(), l.tile_header()),
            WeightFormat::Block(l) => tiles(l.tile_layout(), l.tile_header()),
            WeightFormat::F16 => {
                let half = qloader_kernels::quantize::HALF_PANEL_ROWS;
                rows.div_ceil(half) * half * cols * 2 + format.storage_bytes(rows, cols)
            }
            other => other.storage_bytes(rows, cols),
        }
    }

    /// Whether [`LinearWeight::matmul_a8`] uses int8 activations here.
    pub fn has_a8_kernel(&self) -> bool {
        matches!(
            self,
            LinearWeight::Int8(_)
                | LinearWeight::Grouped(_)
                | LinearWeight::Compact(_)
                | LinearWeight::Block(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_format_formula() {
        let w = DenseMatrix::new(8, 96, (0..768).map(|i| i as f32 / 100.0).collect()).unwrap();
        for name in [
            "f32", "f16", "int8", "int4", "int3g64", "int2g128", "int8g32", "int4k", "int2k",
            "nl4k", "q4_0", "q8_0", "iq4_nl",
        ] {
            let f: WeightFormat = name.parse().unwrap();
            let lw = LinearWeight::quantize(w.clone(), f);
            assert_eq!(lw.format(), f);
            assert_eq!(lw.storage_bytes(), f.storage_bytes(8, 96), "{f}");
            assert_eq!((lw.out_features(), lw.in_features()), (8, 96));
            let back = lw.dequantize();
            assert_eq!(LinearWeight::quantize_borrowed(&w, f).dequantize(), back, "{f}");
            let mut into = vec![f32::NAN; 768];
            lw.dequantize_into(&mut into);
            assert_eq!(into, back.data(), "{f}");
            let worst =
                back.data().iter().zip(w.data()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            // Worst case int2g128: 4 levels over a group spanning 1.27,
            // half a step is under 0.22. (The compact formats' lowest level
            // is at most 0, so on these all-positive rows theirs start at 0:
            // int2k's 4 levels up to 7.7 are 2.6 apart.)
            let bound = if matches!(f, WeightFormat::Compact(_)) {
                1.3
            } else if matches!(f, WeightFormat::Block(_)) {
                // A symmetric 4-bit grid over [−7.7, 7.7]: steps of about 1.
                0.6
            } else {
                0.22
            };
            assert!(worst < bound, "{f}: {worst}");
        }
    }
}
