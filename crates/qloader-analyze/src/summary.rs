//! A readable summary of a sensitivity table: the most and least sensitive
//! tensors at one format, a per-kind view over every format, and how well
//! the cheap measures rank tensors as the end-to-end one does.

use std::collections::BTreeMap;
use std::fmt::Write;

use qloader_format::WeightFormat;
use qloader_models::TensorKind;

use crate::rank::spearman;
use crate::table::{FormatEntry, Measure, SensitivityTable, TensorEntry};

/// Spearman rank correlation across tensors between two measures at one
/// format, if both are held and have spread.
pub fn rank_correlation(
    table: &SensitivityTable,
    format: WeightFormat,
    a: Measure,
    b: Measure,
) -> Option<f64> {
    ranked_agreement(table, format, [a, b], |_, e| Some((e.get(a)?, e.get(b)?)))
}

/// How well the proxy, scaled by each tensor's gain measured at the *other*
/// end-to-end formats (see [`crate::estimate`]), ranks tensors as the
/// end-to-end measure does at `format`: a held-out check of the estimates.
pub fn estimate_rank_correlation(table: &SensitivityTable, format: WeightFormat) -> Option<f64> {
    ranked_agreement(table, format, [Measure::Proxy, Measure::E2e], |t, e| {
        let gain = crate::estimate::gain(t, |f| f != format)?;
        Some((gain * e.proxy?, e.e2e?))
    })
}

/// Spearman correlation of the `pair` values of every tensor's entry at
/// `format`, if the table holds the `needs` measures there and both sides
/// have spread.
fn ranked_agreement(
    table: &SensitivityTable,
    format: WeightFormat,
    needs: [Measure; 2],
    pair: impl Fn(&TensorEntry, &FormatEntry) -> Option<(f64, f64)>,
) -> Option<f64> {
    if !needs.iter().all(|&m| table.has_at(m, format)) {
        return None;
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) =
        table.tensors.iter().filter_map(|t| pair(t, t.formats.get(&format)?)).unzip();
    // A ranking needs values that differ: when most tensors tie (e.g. a
    // format that re-quantizes the source blocks exactly scores 0 almost
    // everywhere), the ties decide the coefficient and it means nothing.
    if distinct_share(&xs) <= MIN_DISTINCT_SHARE || distinct_share(&ys) <= MIN_DISTINCT_SHARE {
        return None;
    }
    spearman(&xs, &ys)
}

/// Share of distinct values at or below which [`rank_correlation`] gives
/// none.
const MIN_DISTINCT_SHARE: f64 = 0.5;

fn distinct_share(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    sorted.len() as f64 / v.len() as f64
}

fn measure_name(m: Measure) -> &'static str {
    match m {
        Measure::WeightMse => "weight MSE",
        Measure::Proxy => "proxy tr(ΔW H ΔWᵀ)",
        Measure::E2e => "end-to-end",
        Measure::E2eEstimate => "end-to-end (estimated where not run)",
    }
}

/// The format the summary ranks tensors at by default: int3 if analyzed,
/// else the table's last format.
pub fn default_format(table: &SensitivityTable) -> WeightFormat {
    let int3 = WeightFormat::grouped(3, 32);
    if table.formats.contains(&int3) {
        int3
    } else {
        table.formats.last().copied().unwrap_or(WeightFormat::F32)
    }
}

fn value(t: &TensorEntry, format: WeightFormat, m: Measure) -> f64 {
    t.formats.get(&format).and_then(|e| e.get(m)).unwrap_or(f64::NAN)
}

/// The summary as Markdown-ish text; `format` picks the ranking format
/// (default [`default_format`]) and `top` how many tensors each end lists.
pub fn summarize(table: &SensitivityTable, format: Option<WeightFormat>, top: usize) -> String {
    let mut out = String::new();
    let format = format.unwrap_or_else(|| default_format(table));
    let m = table.best_measure();
    // The estimate is the measurement itself where e2e ran at every format.
    let label = if m == Measure::E2eEstimate
        && table.formats.iter().all(|&f| table.has_at(Measure::E2e, f))
    {
        measure_name(Measure::E2e)
    } else {
        measure_name(m)
    };
    let metric = match table.e2e_metric {
        Some(crate::table::E2eMetric::Kl) => "mean KL of next-token distributions (nats/position)",
        Some(crate::table::E2eMetric::OneMinusCosine) => "mean 1 − cosine of embeddings",
        None => "not measured",
    };
    let c = &table.calibration;
    let _ = writeln!(
        out,
        "model: {} ({}), {} quantizable tensors, {} weights",
        table.model.path,
        table.model.architecture,
        table.tensors.len(),
        table.model.quantizable_params
    );
    if c.data_free {
        let _ = writeln!(out, "calibration: none (data-free: weight error only)");
    } else {
        let _ = writeln!(
            out,
            "calibration: {} — {} samples, {} tokens (end-to-end on the first {}, {} tokens)",
            c.source.as_deref().unwrap_or("?"),
            c.samples,
            c.tokens,
            c.e2e_samples,
            c.e2e_tokens
        );
        if c.held_out > 0 {
            let _ = writeln!(
                out,
                "codes fitted to the last {} samples, scored on the first {} (held out)",
                c.samples - c.held_out,
                c.held_out
            );
        }
    }
    let _ = writeln!(out, "end-to-end measure: {metric}");
    let t = &table.timings;
    let _ = writeln!(
        out,
        "time: {:.1} s (proxy pass {:.1} s, end-to-end {:.1} s) on {} threads\n",
        t.total_seconds, t.proxy_seconds, t.e2e_seconds, t.threads
    );

    let mut ranked: Vec<&TensorEntry> =
        table.tensors.iter().filter(|t| value(t, format, m).is_finite()).collect();
    ranked.sort_by(|a, b| value(b, format, m).total_cmp(&value(a, format, m)));
    let header = "| tensor | kind | bytes | weight MSE | proxy | end-to-end |\n|---|---|---:|---:|---:|---:|";
    let row = |out: &mut String, t: &TensorEntry| {
        let e = &t.formats[&format];
        let opt = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.3e}"));
        let e2e = match (e.e2e, e.e2e_estimate) {
            (Some(v), _) => format!("{v:.3e}"),
            (None, Some(v)) => format!("≈{v:.3e}"),
            (None, None) => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.3e} | {} | {e2e} |",
            t.name,
            t.kind,
            e.bytes,
            e.weight_mse,
            opt(e.proxy),
        );
    };
    let n = top.min(ranked.len());
    let _ = writeln!(out, "## Most sensitive at {format} (by {label})\n\n{header}");
    ranked.iter().take(n).for_each(|t| row(&mut out, t));
    let _ = writeln!(out, "\n## Least sensitive at {format}\n\n{header}");
    ranked.iter().rev().take(n).for_each(|t| row(&mut out, t));

    let _ = writeln!(out, "\n## By kind: mean {label} per tensor\n");
    let mut by_kind: BTreeMap<TensorKind, Vec<&TensorEntry>> = BTreeMap::new();
    for t in &table.tensors {
        if let Some(k) = TensorKind::from_name(&t.kind) {
            by_kind.entry(k).or_default().push(t);
        }
    }
    let names: Vec<String> = table.formats.iter().map(|f| f.name()).collect();
    let _ = writeln!(out, "| kind | tensors | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|---:|{}", "---:|".repeat(table.formats.len()));
    for (kind, ts) in &by_kind {
        let cells: Vec<String> = table
            .formats
            .iter()
            .map(|&f| {
                let mean = ts.iter().map(|t| value(t, f, m)).sum::<f64>() / ts.len() as f64;
                format!("{mean:.3e}")
            })
            .collect();
        let _ = writeln!(out, "| {} | {} | {} |", kind.name(), ts.len(), cells.join(" | "));
    }

    if table.has(Measure::E2e) {
        let _ = writeln!(
            out,
            "\n## Rank agreement with the end-to-end measure (Spearman, across tensors)\n\n\
             The last column scales each tensor's proxy by its own end-to-end/proxy ratio \
             measured at the other end-to-end formats.\n"
        );
        let _ =
            writeln!(out, "| format | proxy | weight MSE | proxy × gain |\n|---|---:|---:|---:|");
        let show = |r: Option<f64>| r.map_or("—".to_owned(), |r| format!("{r:.3}"));
        for &f in &table.e2e_formats {
            let r = |a| show(rank_correlation(table, f, a, Measure::E2e));
            let _ = writeln!(
                out,
                "| {f} | {} | {} | {} |",
                r(Measure::Proxy),
                r(Measure::WeightMse),
                show(estimate_rank_correlation(table, f))
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::FormatEntry;
    fn f(name: &str) -> WeightFormat {
        name.parse().unwrap()
    }

    #[test]
    fn ranks_and_correlates() {
        let mut table = crate::table::tests::sample();
        let base = table.tensors[0].clone();
        for (i, scale) in [2.0, 0.5, 4.0].into_iter().enumerate() {
            let mut t = base.clone();
            t.name = format!("blk.{}.ffn_down.weight", i + 1);
            t.kind = "mlp_down".into();
            for e in t.formats.values_mut() {
                *e = FormatEntry {
                    bytes: e.bytes,
                    weight_mse: e.weight_mse * scale,
                    proxy: e.proxy.map(|p| p * scale),
                    e2e: e.e2e.map(|p| p * scale),
                    e2e_estimate: e.e2e.map(|p| p * scale),
                };
            }
            table.tensors.push(t);
        }
        table.validate().unwrap();
        let r = rank_correlation(&table, f("int4"), Measure::Proxy, Measure::E2e).unwrap();
        assert!((r - 1.0).abs() < 1e-12);
        let s = summarize(&table, Some(f("int4")), 2);
        let most = s.find("## Most").unwrap();
        let least = s.find("## Least").unwrap();
        assert!(
            s[most..least].find("blk.3.ffn_down").unwrap()
                < s[most..least].find("blk.1.ffn_down").unwrap(),
            "{s}"
        );
        assert!(s[least..].contains("blk.2.ffn_down"), "{s}");
        assert!(s.contains("| mlp_down | 3 |") && s.contains("| attn_q | 1 |"), "{s}");
        assert!(s.contains("| int4 | 1.000 |"), "{s}");
        // Gains are equal at int8 and int4 for each tensor: the held-out
        // estimate ranks exactly.
        assert_eq!(estimate_rank_correlation(&table, f("int4")).map(|r| r.round()), Some(1.0));
        assert!(s.contains("| 1.000 |\n"), "{s}");
        assert_eq!(default_format(&table), f("int4"));
        // Mostly ties: no coefficient.
        for t in &mut table.tensors[1..] {
            t.formats.get_mut(&f("int8")).unwrap().e2e = Some(0.0);
        }
        assert_eq!(rank_correlation(&table, f("int8"), Measure::Proxy, Measure::E2e), None);
    }
}
