//! Element-wise and row-wise operations of a transformer block, on row-major
//! `rows × width` buffers.

/// Adds `bias` to every row of `x`.
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// `x ← cap · tanh(x / cap)`: soft-capping (Gemma 2's attention scores and
/// logits).
pub fn soft_cap(x: &mut [f32], cap: f32) {
    for v in x {
        *v = cap * (*v / cap).tanh();
    }
}

/// GeGLU's gating, in place: `gate = GELU(gate) · up`, with GELU's tanh
/// approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu_tanh_mul(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh()) * u;
    }
}

/// `x += y`, element-wise.
pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Layer normalisation of each row of `x` (width `gamma.len()`), in place.
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    for row in x.chunks_exact_mut(width) {
        let mean = row.iter().sum::<f32>() / width as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// The exact GELU, `x · Φ(x) = ½·x·(1 + erf(x/√2))`, in place.
pub fn gelu_erf(x: &mut [f32]) {
    for v in x {
        let z = *v as f64;
        *v = (0.5 * z * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))) as f32;
    }
}

/// RMS normalisation of each row of `x` (width `gamma.len()`), in place:
/// `x · γ / √(mean(x²) + ε)`.
pub fn rms_norm(x: &mut [f32], gamma: &[f32], eps: f32) {
    let width = gamma.len();
    for row in x.chunks_exact_mut(width) {
        let mean_sq = row.iter().map(|v| v * v).sum::<f32>() / width as f32;
        let inv = 1.0 / (mean_sq + eps).sqrt();
        for (v, g) in row.iter_mut().zip(gamma) {
            *v *= inv * g;
        }
    }
}

/// SwiGLU's gating, `gate = SiLU(gate) · up = gate·σ(gate) · up`, in place.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// Rotary position embedding of one head vector at position `pos`, rotating
/// adjacent pairs `(x[2i], x[2i+1])` by `pos · base^(−2i/d)` — the pairing
/// GGUF's Llama tensors are stored for.
pub fn rope_pairs(x: &mut [f32], pos: usize, base: f32) {
    let d = x.len();
    for (i, pair) in x.chunks_exact_mut(2).enumerate() {
        let freq = (base as f64).powf(-2.0 * i as f64 / d as f64);
        let (sin, cos) = (pos as f64 * freq).sin_cos();
        let (a, b) = (pair[0] as f64, pair[1] as f64);
        pair[0] = (a * cos - b * sin) as f32;
        pair[1] = (a * sin + b * cos) as f32;
    }
}

/// Numerically stable softmax of `x`, in place.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// Scales `x` to unit Euclidean norm (a zero vector stays zero).
pub fn l2_normalize(x: &mut [f32]) {
    let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for v in x {
            *v /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_gives_zero_mean_unit_variance() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 2.0];
        layer_norm(&mut x, &[1.0; 4], &[0.0; 4], 1e-12);
        for row in x.chunks(4) {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| v * v).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{row:?}");
        }
    }

    #[test]
    fn gelu_known_values() {
        let mut x = vec![0.0, 1.0, -1.0, 3.0];
        gelu_erf(&mut x);
        // Φ(1) = 0.841344746..., Φ(3) = 0.998650102...
        let want: [f32; 4] = [0.0, 0.841_344_7, -0.158_655_3, 2.995_950_3];
        for (g, w) in x.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn rms_norm_gives_unit_root_mean_square() {
        let mut x = vec![3.0, -4.0, 0.0, 0.0];
        rms_norm(&mut x, &[1.0, 1.0, 2.0, 1.0], 0.0);
        // mean(x²) = 25/4, so x / 2.5.
        assert_eq!(x, vec![1.2, -1.6, 0.0, 0.0]);
    }

    #[test]
    fn silu_mul_known_values() {
        let mut g = vec![0.0, 1.0, -2.0];
        silu_mul(&mut g, &[5.0, 2.0, 1.0]);
        let want = [0.0, 2.0 / (1.0 + (-1.0f32).exp()), -2.0 / (1.0 + 2.0f32.exp())];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn rope_rotates_pairs_and_keeps_norms() {
        let mut x = vec![1.0, 0.0, 0.0, 1.0];
        rope_pairs(&mut x, 0, 10_000.0);
        assert_eq!(x, vec![1.0, 0.0, 0.0, 1.0], "position 0 is the identity");
        rope_pairs(&mut x, 1, 10_000.0);
        // First pair turns by 1 radian, second by 1/100 radian.
        assert!((x[0] - 1.0f32.cos()).abs() < 1e-6 && (x[1] - 1.0f32.sin()).abs() < 1e-6);
        assert!((x[2] + 0.01f32.sin()).abs() < 1e-6 && (x[3] - 0.01f32.cos()).abs() < 1e-6);
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_inputs() {
        let mut x = vec![1000.0, 1001.0, 999.0];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[1] > x[0] && x[0] > x[2]);
    }
}
