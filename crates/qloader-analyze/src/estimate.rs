//! The end-to-end measure estimated where it was not run. The proxy
//! `tr(ΔW H ΔWᵀ)` sees only a tensor's own output error; how much of that
//! error survives to the model output (norms, residual paths, attention)
//! is a property of the tensor, not of the format. So a tensor's ratio of
//! end-to-end to proxy — its *gain* — measured at a few formats carries to
//! the others: `estimate = gain × proxy`.

use qloader_format::WeightFormat;

use crate::table::TensorEntry;

/// The tensor's end-to-end-to-proxy ratio over the formats `use_format`
/// admits where both are measured: `Σ e2e / Σ proxy` (sums weight the
/// lower-bit formats, whose larger errors are measured more reliably).
/// `None` when no admitted format has both, or their proxies sum to zero.
pub fn gain(t: &TensorEntry, use_format: impl Fn(WeightFormat) -> bool) -> Option<f64> {
    let (mut e2e, mut proxy) = (0.0, 0.0);
    for (&format, entry) in &t.formats {
        if let (true, Some(e), Some(p)) = (use_format(format), entry.e2e, entry.proxy) {
            e2e += e;
            proxy += p;
        }
    }
    (proxy > 0.0).then(|| e2e / proxy)
}

/// The median of the finite, non-negative `gains`, if any.
fn median(mut gains: Vec<f64>) -> Option<f64> {
    gains.retain(|g| g.is_finite() && *g >= 0.0);
    if gains.is_empty() {
        return None;
    }
    gains.sort_by(f64::total_cmp);
    Some(gains[gains.len() / 2])
}

/// Fills every entry's `e2e_estimate`: the measured `e2e` where there is
/// one, else `gain × proxy` with the tensor's own gain (the median gain of
/// all tensors when its own cannot be formed). Entries without a proxy are
/// left as they are.
pub fn fill_estimates(tensors: &mut [TensorEntry]) {
    let gains: Vec<Option<f64>> = tensors.iter().map(|t| gain(t, |_| true)).collect();
    let fallback = median(gains.iter().flatten().copied().collect()).unwrap_or(0.0);
    for (t, g) in tensors.iter_mut().zip(gains) {
        let g = g.unwrap_or(fallback);
        for entry in t.formats.values_mut() {
            entry.e2e_estimate = entry.e2e.or(entry.proxy.map(|p| g * p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::FormatEntry;
    fn f(name: &str) -> WeightFormat {
        name.parse().unwrap()
    }

    fn tensor(values: &[(&str, f64, Option<f64>)]) -> TensorEntry {
        TensorEntry {
            name: "t".into(),
            shape: [1, 1],
            kind: "attn_q".into(),
            layer: Some(0),
            formats: values
                .iter()
                .map(|&(f, proxy, e2e)| {
                    let entry = FormatEntry {
                        bytes: 1,
                        weight_mse: proxy,
                        proxy: Some(proxy),
                        e2e,
                        e2e_estimate: None,
                    };
                    (f.parse().unwrap(), entry)
                })
                .collect(),
        }
    }

    #[test]
    fn scales_the_proxy_by_the_measured_ratio() {
        let mut ts = vec![
            tensor(&[("int2", 4.0, Some(2.0)), ("int4", 1.0, None)]),
            tensor(&[("int2", 0.0, Some(0.0)), ("int4", 3.0, None)]),
            tensor(&[("int2", 2.0, Some(2.0)), ("int4", 0.5, None)]),
        ];
        assert_eq!(gain(&ts[0], |_| true), Some(0.5));
        assert_eq!(gain(&ts[0], |f| f != "int2".parse().unwrap()), None);
        fill_estimates(&mut ts);
        assert_eq!(ts[0].formats[&f("int2")].e2e_estimate, Some(2.0));
        assert_eq!(ts[0].formats[&f("int4")].e2e_estimate, Some(0.5));
        assert_eq!(ts[2].formats[&f("int4")].e2e_estimate, Some(0.5));
        // No gain of its own: the median of the others (0.5 and 1.0 → 1.0).
        assert_eq!(ts[1].formats[&f("int4")].e2e_estimate, Some(3.0));
    }
}
