//! The report as files: `report.md` (the table and the verdicts),
//! `report.html` (the same, with the charts inline, self-contained), the
//! charts as `frontier.svg` and `predicted.svg`, and `report.json`. Every
//! file is written atomically.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use qloader_format::atomic_file::{write_atomic_io, write_json_atomic};

use crate::error::{ReportError, Result};
use crate::run::{Report, Row, RowKind};

/// One equal-size comparison: a baseline and the mixed plan of its size.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The baseline's label.
    pub baseline: String,
    /// What the baseline is.
    pub baseline_kind: RowKind,
    /// Its bits per weight.
    pub bits_per_weight: f64,
    /// Its measured degradation.
    pub baseline_degradation: f64,
    /// The mixed plan's measured degradation.
    pub mixed_degradation: f64,
}

impl Verdict {
    /// Whether the mixed plan is better (lower degradation).
    pub fn mixed_wins(&self) -> bool {
        self.mixed_degradation < self.baseline_degradation && !self.tie()
    }

    /// Whether both measure the same (the plan chose the baseline's formats).
    pub fn tie(&self) -> bool {
        (self.mixed_degradation - self.baseline_degradation).abs()
            <= 1e-9 * self.baseline_degradation.abs().max(1e-12)
    }
}

/// The equal-size comparisons of a report.
pub fn verdicts(report: &Report) -> Vec<Verdict> {
    report
        .rows
        .iter()
        .filter_map(|mixed| {
            let name = mixed.versus.as_ref()?;
            let base = report.rows.iter().find(|r| &r.label == name)?;
            Some(Verdict {
                baseline: base.label.clone(),
                baseline_kind: base.kind,
                bits_per_weight: base.bits_per_weight,
                baseline_degradation: base.measured.degradation,
                mixed_degradation: mixed.measured.degradation,
            })
        })
        .collect()
}

/// Each budget's mixed plan against the smallest uniform format at least
/// as large (the tightest uniform competitor it must beat).
pub fn budget_verdicts(report: &Report) -> Vec<(String, f64, Verdict)> {
    let uniform: Vec<&Row> = report.rows.iter().filter(|r| r.kind == RowKind::Uniform).collect();
    report
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Mixed && r.versus.is_none())
        .filter_map(|mixed| {
            let base = uniform.iter().filter(|u| u.bytes >= mixed.bytes).min_by_key(|u| u.bytes)?;
            Some((
                mixed.label.clone(),
                mixed.bits_per_weight,
                Verdict {
                    baseline: base.label.clone(),
                    baseline_kind: base.kind,
                    bits_per_weight: base.bits_per_weight,
                    baseline_degradation: base.measured.degradation,
                    mixed_degradation: mixed.measured.degradation,
                },
            ))
        })
        .collect()
}

fn verdict_text(v: &Verdict) -> &'static str {
    if v.tie() {
        "equal (the plan is the baseline)"
    } else if v.mixed_wins() {
        "mixed better"
    } else {
        "**baseline better**"
    }
}

/// Writes every file of `report` into `dir`.
pub fn write(report: &Report, dir: &Path) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| ReportError::Io { path, error }
    };
    let frontier = frontier_svg(report).map_err(ReportError::Mismatch)?;
    let predicted = predicted_svg(report).map_err(ReportError::Mismatch)?;
    let files = [
        ("frontier.svg", frontier.clone()),
        ("predicted.svg", predicted.clone()),
        ("report.md", markdown(report)),
        ("report.html", html(report, &frontier, &predicted)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        write_atomic_io(&path, text.as_bytes()).map_err(io(&path))?;
    }
    let path = dir.join("report.json");
    write_json_atomic(&path, report).map_err(io(&path))
}

fn metric_cells(r: &Row) -> String {
    match (r.measured.perplexity, r.measured.mean_cosine) {
        (Some(p), _) => format!("{p:.3}"),
        (None, Some(c)) => {
            format!("{c:.5} | {:.0} %", 100.0 * r.measured.retrieval_agreement.unwrap_or(0.0))
        }
        _ => "—".into(),
    }
}

fn is_decoder(report: &Report) -> bool {
    report.rows.iter().any(|r| r.measured.perplexity.is_some())
}

/// The report as Markdown.
pub fn markdown(report: &Report) -> String {
    let mut s = String::new();
    let decoder = is_decoder(report);
    let _ = writeln!(s, "# QLoader report: {}\n", report.model);
    let _ = writeln!(s, "* device profile: {}", report.profile);
    let _ = writeln!(s, "* sensitivity table: {}", report.table);
    let _ = writeln!(s, "* measure: {}", report.metric);
    let _ =
        writeln!(s, "* codes: {} (every configuration, as the table measured them)", report.method);
    let _ = writeln!(s, "* made in {:.0} s\n", report.seconds);
    let header = if decoder {
        "| configuration | bits/weight | size | perplexity | predicted loss | decode tok/s | load s |\n|---|---:|---:|---:|---:|---:|---:|"
    } else {
        "| configuration | bits/weight | size | mean cosine | retrieval | predicted loss | sentences/s | load s |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    };
    let _ = writeln!(s, "{header}");
    for r in &report.rows {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {} | {} | {} | {} | {} |",
            r.label,
            r.bits_per_weight,
            if r.bytes == 0 {
                "—".to_owned()
            } else {
                format!("{:.2} MiB", r.bytes as f64 / (1 << 20) as f64)
            },
            metric_cells(r),
            r.predicted.map_or("—".to_owned(), |p| format!("{p:.4}")),
            if r.measured.speed > 0.0 { format!("{:.1}", r.measured.speed) } else { "—".into() },
            if r.measured.load_seconds > 0.0 {
                format!("{:.2}", r.measured.load_seconds)
            } else {
                "—".into()
            },
        );
    }
    let _ = writeln!(s, "\n## Mixed precision against each baseline at the same size\n");
    let _ = writeln!(s, "| baseline | bits/weight | baseline | mixed plan, same size | verdict |\n|---|---:|---:|---:|---|");
    // The degradation is the mean NLL (decoder) or 1 − mean cosine
    // (encoder): shown as the measure the main table prints.
    let show = |d: f64| {
        if decoder {
            format!("{:.3}", d.exp())
        } else {
            format!("{:.5}", 1.0 - d)
        }
    };
    for v in verdicts(report).iter().filter(|v| v.baseline_kind != RowKind::LlamaCpp) {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {} | {} | {} |",
            v.baseline,
            v.bits_per_weight,
            show(v.baseline_degradation),
            show(v.mixed_degradation),
            verdict_text(v)
        );
    }
    llama_cpp_table(&mut s, report);
    let _ = writeln!(s, "\n## Each budget against the smallest uniform format at least as large\n");
    let _ = writeln!(s, "| mixed plan | bits/weight | measured | uniform | bits/weight | measured | verdict |\n|---|---:|---:|---|---:|---:|---|");
    for (label, bpw, v) in budget_verdicts(report) {
        let _ = writeln!(
            s,
            "| {label} | {bpw:.2} | {} | {} | {:.2} | {} | {} |",
            show(v.mixed_degradation),
            v.baseline,
            v.bits_per_weight,
            show(v.baseline_degradation),
            verdict_text(&v)
        );
    }
    let _ = writeln!(
        s,
        "\nPredicted (summed per-tensor sensitivity) against measured degradation, Spearman rank correlation across the quantized rows: {}.",
        report.rank_correlation.map_or("—".to_owned(), |r| format!("{r:.3}"))
    );
    one_file_table(&mut s, report);
    s
}

/// The budgets' plans in one file beside their own files (nothing without
/// it).
fn one_file_table(s: &mut String, report: &Report) {
    let Some(one) = &report.one_file else { return };
    let mib = |b: u64| format!("{:.2} MiB", b as f64 / (1 << 20) as f64);
    let _ = writeln!(s, "\n## Every budget in one file\n");
    let _ = writeln!(
        s,
        "The plans above packed into one file (`qloader pack --budgets`), each (tensor, format) \
         stored once; the loader picks a plan by memory (`--memory`) or name (`--plan`).\n"
    );
    let _ =
        writeln!(s, "| plan | bytes it loads from the one file | its own file |\n|---|---:|---:|");
    for (label, loads, own) in &one.plans {
        let _ = writeln!(s, "| {label} | {} | {} |", mib(*loads), mib(*own));
    }
    let largest = one.plans.iter().map(|p| p.2).max().unwrap_or(0).max(1);
    let all: u64 = one.plans.iter().map(|p| p.2).sum();
    let _ = writeln!(
        s,
        "\nOne file: {} = {:.3}× the largest plan's own file ({:.3}× all of them together).",
        mib(one.file_bytes),
        one.file_bytes as f64 / largest as f64,
        one.file_bytes as f64 / all.max(1) as f64
    );
}

/// The section comparing llama.cpp's own files with the mixed plans whose
/// packed files are at most their size (nothing without such rows).
fn llama_cpp_table(s: &mut String, report: &Report) {
    let pairs: Vec<(&Row, Option<&Row>)> = report
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::LlamaCpp)
        .map(|file| {
            (file, report.rows.iter().find(|r| r.versus.as_deref() == Some(file.label.as_str())))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    let _ =
        writeln!(s, "\n## llama.cpp's own files against the mixed plan of at most their size\n");
    let _ = writeln!(
        s,
        "Each file written by llama.cpp's `llama-quantize` with its importance matrix from the \
         calibration text, de-quantized by QLoader's GGUF reader and scored in QLoader's harness \
         as every other row; sizes are whole files (embedding, norms and header included).\n"
    );
    let _ = writeln!(s, "| llama.cpp file | file size | bits/weight | perplexity | mixed plan | file size | bits/weight | perplexity | verdict |\n|---|---:|---:|---:|---|---:|---:|---:|---|");
    let mib = |r: &Row| {
        r.file_bytes.map_or("—".to_owned(), |b| format!("{:.2} MiB", b as f64 / (1 << 20) as f64))
    };
    let ppl = |r: &Row| r.measured.perplexity.map_or("—".to_owned(), |p| format!("{p:.3}"));
    for (file, mixed) in pairs {
        let (plan, verdict) = match mixed {
            Some(m) => {
                let v = Verdict {
                    baseline: file.label.clone(),
                    baseline_kind: file.kind,
                    bits_per_weight: file.bits_per_weight,
                    baseline_degradation: file.measured.degradation,
                    mixed_degradation: m.measured.degradation,
                };
                (
                    format!("{} | {} | {:.2} | {}", m.label, mib(m), m.bits_per_weight, ppl(m)),
                    verdict_text(&v),
                )
            }
            None => ("no plan that small | — | — | —".to_owned(), "—"),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {} | {plan} | {verdict} |",
            file.label,
            mib(file),
            file.bits_per_weight,
            ppl(file),
        );
    }
}

/// The report as one self-contained HTML page.
pub fn html(report: &Report, frontier: &str, predicted: &str) -> String {
    let md = markdown(report);
    let mut body = String::new();
    let mut in_table = false;
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(body, "<h1>{}</h1>", escape(h));
        } else if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(body, "<h2>{}</h2>", escape(h));
        } else if let Some(item) = line.strip_prefix("* ") {
            let _ = writeln!(body, "<p class=\"meta\">{}</p>", escape(item));
        } else if line.starts_with('|') {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if cells.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) {
                continue;
            }
            if !in_table {
                let _ = writeln!(
                    body,
                    "<table><tr>{}</tr>",
                    cells.iter().map(|c| format!("<th>{}</th>", escape(c))).collect::<String>()
                );
                in_table = true;
            } else {
                let _ = writeln!(
                    body,
                    "<tr>{}</tr>",
                    cells
                        .iter()
                        .map(|c| format!("<td>{}</td>", escape(&c.replace("**", ""))))
                        .collect::<String>()
                );
            }
        } else {
            if in_table {
                let _ = writeln!(body, "</table>");
                in_table = false;
            }
            if !line.trim().is_empty() {
                let _ = writeln!(body, "<p>{}</p>", escape(line));
            }
        }
    }
    if in_table {
        let _ = writeln!(body, "</table>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>QLoader report</title>\n<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}th{{background:#eee}}.meta{{margin:0.2em 0;color:#555}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head><body>\n{body}<h2>Measured frontier</h2>\n{frontier}\n<h2>Predicted against measured</h2>\n{predicted}\n<h2>Device profile</h2>\n<pre>{}</pre>\n</body></html>\n",
        escape(&report.profile_toml)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Measured degradation against bits per weight.
pub fn frontier_svg(report: &Report) -> std::result::Result<String, String> {
    let quantized: Vec<&Row> =
        report.rows.iter().filter(|r| r.kind != RowKind::Reference).collect();
    if quantized.is_empty() {
        return Err("nothing to draw: no quantized configuration".into());
    }
    let decoder = is_decoder(report);
    let y = |r: &Row| {
        if decoder {
            r.measured.perplexity.unwrap_or(0.0)
        } else {
            r.measured.degradation.max(1e-6)
        }
    };
    let reference = report.rows.iter().find(|r| r.kind == RowKind::Reference).map(y);
    let (x0, x1) = quantized.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
        (a.min(r.bits_per_weight), b.max(r.bits_per_weight))
    });
    let ys: Vec<f64> =
        quantized.iter().map(|r| y(r)).chain(reference.filter(|_| decoder)).collect();
    let (lo, hi) = ys.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let mut mixed: Vec<(f64, f64)> = quantized
        .iter()
        .filter(|r| r.kind == RowKind::Mixed)
        .map(|r| (r.bits_per_weight, y(r)))
        .collect();
    mixed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut svg = String::new();
    {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let root = SVGBackend::with_string(&mut svg, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let ylabel =
            if decoder { "perplexity (log scale)" } else { "1 − mean cosine (log scale)" };
        let mut chart = ChartBuilder::on(&root)
            .caption("measured quality against size", ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d((x0 - 0.3)..(x1 + 0.3), ((lo / 1.3)..(hi * 1.3)).log_scale())
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("bits per weight of the quantizable tensors")
            .y_desc(ylabel)
            .draw()
            .map_err(|x| e(&x))?;
        let blue = RGBColor(31, 119, 180);
        chart
            .draw_series(LineSeries::new(mixed.iter().copied(), blue.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label("mixed precision (greedy plans)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2))
            });
        chart
            .draw_series(mixed.iter().map(|&p| Circle::new(p, 4, blue.filled())))
            .map_err(|x| e(&x))?;
        for (kind, color, name) in [
            (RowKind::Uniform, RGBColor(214, 39, 40), "uniform formats"),
            (RowKind::Recipe, RGBColor(44, 160, 44), "llama.cpp recipes"),
            (RowKind::LlamaCpp, RGBColor(255, 127, 14), "llama.cpp's own files"),
        ] {
            if !quantized.iter().any(|r| r.kind == kind) {
                continue;
            }
            let points: Vec<(f64, f64, String)> = quantized
                .iter()
                .filter(|r| r.kind == kind)
                .map(|r| (r.bits_per_weight, y(r), r.label.clone()))
                .collect();
            chart
                .draw_series(
                    points.iter().map(|p| TriangleMarker::new((p.0, p.1), 7, color.filled())),
                )
                .map_err(|x| e(&x))?
                .label(name)
                .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, color.filled()));
            for p in &points {
                chart
                    .draw_series(std::iter::once(Text::new(
                        p.2.replace("uniform ", "").replace("llama.cpp ", ""),
                        (p.0 + 0.06, p.1 * 1.06),
                        ("sans-serif", 13).into_font().color(&color),
                    )))
                    .map_err(|x| e(&x))?;
            }
        }
        if let (Some(r), true) = (reference, decoder) {
            let grey = RGBColor(120, 120, 120);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0 - 0.3, r), (x1 + 0.3, r)],
                    6,
                    4,
                    grey.stroke_width(1),
                ))
                .map_err(|x| e(&x))?
                .label("f32")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(svg)
}

/// Predicted loss against measured degradation, one point per row.
pub fn predicted_svg(report: &Report) -> std::result::Result<String, String> {
    let points: Vec<(f64, f64)> = report
        .rows
        .iter()
        .filter_map(|r| Some((r.predicted.filter(|p| *p > 0.0)?, r.measured.degradation.max(1e-9))))
        .collect();
    if points.is_empty() {
        return Err("nothing to draw: no row with a predicted loss".into());
    }
    let bounds = |f: fn(&(f64, f64)) -> f64| {
        points.iter().map(f).fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)))
    };
    let ((px0, px1), (my0, my1)) = (bounds(|p| p.0), bounds(|p| p.1));
    let mut svg = String::new();
    {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let root = SVGBackend::with_string(&mut svg, (700, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("predicted against measured", ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(
                ((px0 / 1.5)..(px1 * 1.5)).log_scale(),
                ((my0 / 1.5)..(my1 * 1.5)).log_scale(),
            )
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("predicted loss (summed per-tensor sensitivity)")
            .y_desc("measured degradation")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(|x| e(&x))?;
        let blue = RGBColor(31, 119, 180);
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, blue.filled())))
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Measured;
    use crate::run::{Row, RowKind};
    use qloader_format::QuantMethod;

    fn row(label: &str, kind: RowKind, bits: f64, ppl: f64, versus: Option<&str>) -> Row {
        Row {
            label: label.into(),
            kind,
            bytes: (bits * 1000.0) as u64,
            file_bytes: None,
            bits_per_weight: bits,
            predicted: None,
            measured: Measured {
                perplexity: Some(ppl),
                mean_cosine: None,
                retrieval_agreement: None,
                degradation: ppl.ln(),
                speed: 1.0,
                load_seconds: 0.1,
            },
            versus: versus.map(Into::into),
        }
    }

    fn decoder_report(rows: Vec<Row>) -> Report {
        Report {
            model: "m".into(),
            architecture: "llama".into(),
            table: "t".into(),
            profile: "p".into(),
            profile_toml: String::new(),
            metric: "perplexity".into(),
            method: QuantMethod::Imatrix,
            rows,
            rank_correlation: None,
            one_file: None,
            seconds: 1.0,
        }
    }

    #[test]
    fn the_one_file_section_compares_with_the_plans_own_files() {
        let mut report = decoder_report(Vec::new());
        assert!(!markdown(&report).contains("Every budget in one file"));
        let mib = 1u64 << 20;
        report.one_file = Some(crate::run::OneFile {
            file_bytes: 30 * mib,
            plans: vec![
                ("mixed 4 bpw".into(), 10 * mib, 11 * mib),
                ("mixed 8 bpw".into(), 20 * mib, 21 * mib),
            ],
        });
        let md = markdown(&report);
        assert!(md.contains("| mixed 4 bpw | 10.00 MiB | 11.00 MiB |"), "{md}");
        assert!(md.contains("One file: 30.00 MiB = 1.429× the largest plan's own file (0.938×"));
    }

    /// The equal-size tables print each row's measured perplexity, the
    /// same figure as the main table (not scaled by the reference's).
    #[test]
    fn comparison_tables_show_the_measured_perplexities() {
        let report = decoder_report(vec![
            row("f32 (reference)", RowKind::Reference, 32.0, 34.701, None),
            row("uniform int3", RowKind::Uniform, 4.0, 136.847, None),
            row("mixed = uniform int3", RowKind::Mixed, 4.0, 56.712, Some("uniform int3")),
            row("mixed 3.5 bpw", RowKind::Mixed, 3.5, 123.022, None),
        ]);
        let md = markdown(&report);
        let (main, comparisons) = md.split_once("## Mixed precision against").unwrap();
        assert!(main.contains("| uniform int3 | 4.00 | 0.00 MiB | 136.847 |"), "{main}");
        let lines: Vec<&str> = comparisons.lines().collect();
        assert!(
            lines.contains(&"| uniform int3 | 4.00 | 136.847 | 56.712 | mixed better |"),
            "{md}"
        );
        assert!(
            lines.contains(
                &"| mixed 3.5 bpw | 3.50 | 123.022 | uniform int3 | 4.00 | 136.847 | mixed better |"
            ),
            "{md}"
        );
    }

    /// With llama.cpp's files: their section pairs each file with the plan
    /// that names it, at the sizes and perplexities of the rows; and every
    /// three-decimal figure of every table is some row's measured
    /// perplexity.
    #[test]
    fn llama_cpp_section_and_every_table_figure_name_a_measurement() {
        let mut file = row("llama.cpp Q4_K_M", RowKind::LlamaCpp, 5.6, 36.1234, None);
        file.file_bytes = Some(105 << 20);
        let mut plan =
            row("mixed ≤ llama.cpp Q4_K_M", RowKind::Mixed, 5.5, 34.9, Some("llama.cpp Q4_K_M"));
        plan.file_bytes = Some(104 << 20);
        let mut small = row("llama.cpp IQ2_XS", RowKind::LlamaCpp, 2.3, 45.4031, None);
        small.file_bytes = Some(80 << 20);
        let report = decoder_report(vec![
            row("f32 (reference)", RowKind::Reference, 32.0, 34.701, None),
            row("uniform int4", RowKind::Uniform, 5.0, 35.436, None),
            row("mixed = uniform int4", RowKind::Mixed, 5.0, 35.436, Some("uniform int4")),
            row("mixed 4 bpw", RowKind::Mixed, 4.0, 39.811, None),
            file,
            plan,
            small,
        ]);
        let md = markdown(&report);
        let lines: Vec<&str> = md.lines().collect();
        assert!(
            lines.contains(
                &"| llama.cpp Q4_K_M | 105.00 MiB | 5.60 | 36.123 | mixed ≤ llama.cpp Q4_K_M | \
                  104.00 MiB | 5.50 | 34.900 | mixed better |"
            ),
            "{md}"
        );
        assert!(
            lines.contains(
                &"| llama.cpp IQ2_XS | 80.00 MiB | 2.30 | 45.403 | no plan that small | — | — | — | — |"
            ),
            "{md}"
        );
        // The llama.cpp pair is in its own section, not among the
        // equal-size comparisons.
        let generic = md.split("## Mixed precision against").nth(1).unwrap();
        let generic = generic.split("## llama.cpp").next().unwrap();
        assert!(!generic.contains("Q4_K_M"), "{generic}");
        let measured: Vec<String> = report
            .rows
            .iter()
            .filter_map(|r| r.measured.perplexity)
            .map(|p| format!("{p:.3}"))
            .collect();
        let mut checked = 0;
        for line in lines.iter().filter(|l| l.starts_with('|')) {
            for cell in line.trim_matches('|').split('|').map(str::trim) {
                let three_decimals = cell.split_once('.').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && a.chars().all(|c| c.is_ascii_digit())
                        && b.len() == 3
                        && b.chars().all(|c| c.is_ascii_digit())
                });
                if three_decimals {
                    assert!(measured.iter().any(|m| m == cell), "{cell} in {line}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 12, "only {checked} figures checked:\n{md}");
    }
}
