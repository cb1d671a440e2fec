//! Second moments of layer inputs, `H = E[x xᵀ]`, accumulated over the
//! calibration rows for each activation site a group of tensors shares
//! (q, k and v see the same input, so they share one `H`).

use std::collections::BTreeMap;

use qloader_kernels::gemm::gram_add_f32;

/// Running `Σ x xᵀ` and row counts, per site.
#[derive(Debug, Default)]
pub struct SecondMoments {
    sites: BTreeMap<usize, Accumulator>,
}

#[derive(Debug)]
struct Accumulator {
    width: usize,
    gram: Vec<f32>,
    rows: usize,
}

impl SecondMoments {
    /// Moments for the given `(site, width)` pairs, all zero.
    pub fn new(sites: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let sites = sites
            .into_iter()
            .map(|(site, width)| {
                (site, Accumulator { width, gram: vec![0.0; width * width], rows: 0 })
            })
            .collect();
        Self { sites }
    }

    /// Whether `site` is being accumulated.
    pub fn tracks(&self, site: usize) -> bool {
        self.sites.contains_key(&site)
    }

    /// Adds `rows` rows of `x` seen at `site` (ignored if the site is not
    /// tracked or the width does not match).
    pub fn add(&mut self, site: usize, x: &[f32], rows: usize) {
        if let Some(acc) = self.sites.get_mut(&site) {
            if rows > 0 && x.len() == rows * acc.width {
                gram_add_f32(x, rows, acc.width, &mut acc.gram);
                acc.rows += rows;
            }
        }
    }

    /// `E[x xᵀ]` at `site` (`width × width`, row-major), or `None` if the
    /// site saw no rows.
    pub fn mean(&self, site: usize) -> Option<Vec<f32>> {
        let acc = self.sites.get(&site).filter(|a| a.rows > 0)?;
        let inv = 1.0 / acc.rows as f32;
        Some(acc.gram.iter().map(|v| v * inv).collect())
    }

    /// Rows seen at `site`.
    pub fn rows(&self, site: usize) -> usize {
        self.sites.get(&site).map_or(0, |a| a.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_outer_products() {
        let mut m = SecondMoments::new([(3, 2)]);
        m.add(3, &[1.0, 2.0, 3.0, 4.0], 2);
        m.add(3, &[0.0, 0.0], 1);
        m.add(7, &[5.0, 5.0], 1);
        let h = m.mean(3).unwrap();
        // (1·1 + 3·3)/3, (1·2 + 3·4)/3, …, (2·2 + 4·4)/3
        let want = [10.0 / 3.0, 14.0 / 3.0, 14.0 / 3.0, 20.0 / 3.0];
        for (a, b) in h.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
        assert_eq!(m.rows(3), 3);
        assert!(!m.tracks(7));
        assert_eq!(m.mean(7), None);
    }
}
