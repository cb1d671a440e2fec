//! The fixed recipes a popular tool uses, expressed in QLoader's formats:
//! llama.cpp's `Q4_K_M` and `Q3_K_M` mixtures (its `llama_tensor_get_type`,
//! `src/llama-quant.cpp`), which give some tensors more bits by role and
//! layer without measuring anything.
//!
//! The rules reproduced (for Llama-family models; `n` blocks, block `i`):
//!
//! * `use_more_bits(i, n)`: `i < n/8 || i ≥ 7n/8 || (i − n/8) mod 3 = 2`.
//! * `Q4_K_M`: base `Q4_K`; the output head `Q6_K`; `attn_v` and `ffn_down`
//!   `Q6_K` where `use_more_bits`.
//! * `Q3_K_M`: base `Q3_K`; the output head `Q6_K`; `attn_v` `Q5_K` in the
//!   first two blocks, else `Q4_K`; `ffn_down` `Q5_K` in the first `n/16`
//!   blocks, else `Q4_K`; `attn_output` `Q4_K`.
//!
//! K-quant types map to the nearest QLoader format that has at least their
//! precision: `Q6_K` and `Q5_K` → `int8` (per channel), `Q4_K` (4-bit codes
//! in groups of 32 with 6-bit scales) → `int4g64`, `Q3_K` → `int3g64`. An
//! encoder's tensors map by role (value projection as `attn_v`, the
//! feed-forward down projection as `ffn_down`, attention output as
//! `attn_output`, the word-embedding table at the base type).

use qloader_analyze::table::TensorEntry;
use qloader_format::WeightFormat;

/// A fixed recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// llama.cpp `Q4_K_M`.
    Q4KM,
    /// llama.cpp `Q3_K_M`.
    Q3KM,
}

impl Recipe {
    /// Both recipes.
    pub const ALL: [Recipe; 2] = [Recipe::Q3KM, Recipe::Q4KM];

    /// The name llama.cpp gives it.
    pub fn name(self) -> &'static str {
        match self {
            Recipe::Q4KM => "Q4_K_M",
            Recipe::Q3KM => "Q3_K_M",
        }
    }

    /// The format of one tensor (kind as in the sensitivity table: `attn_v`,
    /// `mlp_down`, `attn_o`, `head`, …) in block `layer` of `blocks`.
    pub fn format(self, kind: &str, layer: Option<usize>, blocks: usize) -> WeightFormat {
        let (q6, q5, q4, q3) = (
            WeightFormat::Int8PerChannel,
            WeightFormat::Int8PerChannel,
            WeightFormat::grouped(4, 64),
            WeightFormat::grouped(3, 64),
        );
        let i = layer.unwrap_or(0);
        match (self, kind) {
            (_, "head") => q6,
            (Recipe::Q4KM, "attn_v" | "mlp_down") if use_more_bits(i, blocks) => q6,
            (Recipe::Q4KM, _) => q4,
            (Recipe::Q3KM, "attn_v") => {
                if i < 2 {
                    q5
                } else {
                    q4
                }
            }
            (Recipe::Q3KM, "mlp_down") => {
                if i < blocks / 16 {
                    q5
                } else {
                    q4
                }
            }
            (Recipe::Q3KM, "attn_o") => q4,
            (Recipe::Q3KM, _) => q3,
        }
    }

    /// The recipe's format for every tensor of a table, by name.
    pub fn assign(self, tensors: &[TensorEntry]) -> Vec<(String, WeightFormat)> {
        let blocks = tensors.iter().filter_map(|t| t.layer).max().map_or(0, |l| l + 1);
        tensors.iter().map(|t| (t.name.clone(), self.format(&t.kind, t.layer, blocks))).collect()
    }
}

/// llama.cpp's choice of layers that get more bits: the first and last
/// eighth, and every third layer in between.
pub fn use_more_bits(i: usize, n: usize) -> bool {
    let eighth = n / 8;
    i < eighth || i >= 7 * n / 8 || (i - eighth) % 3 == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_bits_for_the_ends_and_every_third_layer() {
        // 30 blocks (SmolLM2-135M): n/8 = 3, 7n/8 = 26.
        let more: Vec<usize> = (0..30).filter(|&i| use_more_bits(i, 30)).collect();
        assert_eq!(more, vec![0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]);
    }

    #[test]
    fn recipes_follow_the_rules() {
        let f = |name: &str| name.parse::<WeightFormat>().unwrap();
        let r = Recipe::Q4KM;
        assert_eq!(r.format("head", None, 30), f("int8"));
        assert_eq!(r.format("attn_v", Some(5), 30), f("int8"));
        assert_eq!(r.format("attn_v", Some(6), 30), f("int4g64"));
        assert_eq!(r.format("mlp_down", Some(29), 30), f("int8"));
        assert_eq!(r.format("attn_q", Some(0), 30), f("int4g64"));
        let r = Recipe::Q3KM;
        assert_eq!(r.format("attn_v", Some(1), 30), f("int8"));
        assert_eq!(r.format("attn_v", Some(2), 30), f("int4g64"));
        assert_eq!(r.format("mlp_down", Some(0), 30), f("int8"));
        assert_eq!(r.format("mlp_down", Some(1), 30), f("int4g64"));
        assert_eq!(r.format("attn_o", Some(9), 30), f("int4g64"));
        assert_eq!(r.format("mlp_up", Some(9), 30), f("int3g64"));
        assert_eq!(r.format("embedding", None, 6), f("int3g64"));
    }
}
