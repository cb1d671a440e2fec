//! Activations quantized on the fly to int8, one symmetric scale per row, for
//! the integer-dot kernels (W8A8, W4A8, W3A8, W2A8): `x ≈ scale · a`,
//! `a ∈ -127..=127`, `scale = max|x| / 127`.
//!
//! Rows are padded with zeros to whole 32-value blocks (so kernels never need
//! a tail case), and each block's code sum `Σ a` is kept, because a grouped
//! weight's offset contributes `offset · Σ a` to the block's dot product.

use qloader_format::grouped::BLOCK;

/// `m` rows of int8 activations.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedActivations {
    cols: usize,
    padded: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    block_sums: Vec<i32>,
}

/// One row of [`QuantizedActivations`], as the kernels see it.
#[derive(Debug, Clone, Copy)]
pub struct ActivationRow<'a> {
    /// Codes, padded with zeros to a multiple of 32.
    pub codes: &'a [i8],
    /// `x ≈ scale · code`.
    pub scale: f32,
    /// `Σ code` per 32-value block.
    pub block_sums: &'a [i32],
}

impl QuantizedActivations {
    /// Quantizes `m` rows of `x` (`m × cols`, row-major).
    pub fn quantize(x: &[f32], m: usize, cols: usize) -> Self {
        assert_eq!(x.len(), m * cols, "x must be m × cols");
        let blocks = cols.div_ceil(BLOCK);
        let padded = blocks * BLOCK;
        let mut codes = vec![0i8; m * padded];
        let mut scales = Vec::with_capacity(m);
        let mut block_sums = Vec::with_capacity(m * blocks);
        for (row, out) in x.chunks_exact(cols.max(1)).take(m).zip(codes.chunks_exact_mut(padded)) {
            let max_abs = row.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
            let scale = if max_abs > 0.0 && max_abs.is_finite() { max_abs / 127.0 } else { 0.0 };
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            for (o, &v) in out.iter_mut().zip(row) {
                *o = (v * inv).round().clamp(-127.0, 127.0) as i8;
            }
            scales.push(scale);
            block_sums
                .extend(out.chunks_exact(BLOCK).map(|b| b.iter().map(|&a| a as i32).sum::<i32>()));
        }
        if cols == 0 {
            scales.resize(m, 0.0);
        }
        Self { cols, padded, codes, scales, block_sums }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    /// Columns (before padding).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> ActivationRow<'_> {
        let blocks = self.padded / BLOCK;
        ActivationRow {
            codes: &self.codes[i * self.padded..(i + 1) * self.padded],
            scale: self.scales[i],
            block_sums: &self.block_sums[i * blocks..(i + 1) * blocks],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_within_half_step_and_padding_is_zero() {
        let x: Vec<f32> = (0..2 * 40).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let q = QuantizedActivations::quantize(&x, 2, 40);
        for i in 0..2 {
            let r = q.row(i);
            assert_eq!(r.codes.len(), 64);
            assert!(r.codes[40..].iter().all(|&c| c == 0));
            for (c, &v) in x[i * 40..(i + 1) * 40].iter().enumerate() {
                assert!((r.codes[c] as f32 * r.scale - v).abs() <= r.scale / 2.0 + 1e-6);
            }
            let sums: Vec<i32> =
                r.codes.chunks(32).map(|b| b.iter().map(|&a| a as i32).sum()).collect();
            assert_eq!(r.block_sums, &sums[..]);
        }
    }

    #[test]
    fn zero_row_has_zero_scale() {
        let q = QuantizedActivations::quantize(&[0.0; 5], 1, 5);
        assert_eq!(q.row(0).scale, 0.0);
        assert!(q.row(0).codes.iter().all(|&c| c == 0));
    }
}
