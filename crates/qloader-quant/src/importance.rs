//! Per-input-column importance of linear weights, for the `imatrix` method:
//! for each tensor, the mean square of each input feature over calibration
//! activations (the diagonal of the layer's input second moment
//! `H = E[x xᵀ]`). A weighted grid search with these weights minimises the
//! diagonal part of the output error `tr(ΔW H ΔWᵀ)` instead of the weight
//! error.

use std::collections::BTreeMap;

/// Columns whose mean square is below this fraction of the tensor's mean
/// get it instead: an input never seen in calibration still keeps some
/// weight (a group of such columns would otherwise have no error to fit).
pub const FLOOR: f32 = 1e-4;

/// Importance vectors by tensor name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnImportance {
    tensors: BTreeMap<String, Vec<f32>>,
}

impl ColumnImportance {
    /// No tensor has an importance vector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `tensor`'s importance from the mean squares of its input columns
    /// (floored at [`FLOOR`] × their mean; all ones if every mean square is
    /// zero or any is not finite).
    pub fn insert_mean_squares(&mut self, tensor: impl Into<String>, mean_squares: &[f32]) {
        self.tensors.insert(tensor.into(), weights_from_mean_squares(mean_squares));
    }

    /// `tensor`'s importance vector, one value per input column.
    pub fn get(&self, tensor: &str) -> Option<&[f32]> {
        self.tensors.get(tensor).map(Vec::as_slice)
    }

    /// Tensors with an importance vector.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether no tensor has one.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// The search weights of a tensor whose input columns have `mean_squares`
/// (see [`ColumnImportance::insert_mean_squares`]).
pub fn weights_from_mean_squares(mean_squares: &[f32]) -> Vec<f32> {
    let n = mean_squares.len().max(1) as f64;
    let mean = mean_squares.iter().map(|&v| v as f64).sum::<f64>() / n;
    if !(mean.is_finite() && mean > 0.0) || mean_squares.iter().any(|v| !v.is_finite()) {
        return vec![1.0; mean_squares.len()];
    }
    let floor = (mean * FLOOR as f64) as f32;
    mean_squares.iter().map(|&v| v.max(floor)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_dead_columns_and_falls_back_to_uniform() {
        let w = weights_from_mean_squares(&[4.0, 0.0, 2.0, 2.0]);
        assert_eq!(w, vec![4.0, 2.0 * FLOOR, 2.0, 2.0]);
        assert_eq!(weights_from_mean_squares(&[0.0, 0.0]), vec![1.0, 1.0]);
        assert_eq!(weights_from_mean_squares(&[1.0, f32::NAN]), vec![1.0, 1.0]);
        let mut m = ColumnImportance::new();
        assert!(m.is_empty());
        m.insert_mean_squares("w", &[1.0, 3.0]);
        assert_eq!(m.get("w"), Some(&[1.0, 3.0][..]));
        assert_eq!(m.get("v"), None);
        assert_eq!(m.len(), 1);
    }
}
