//! The frontier as a picture (SVG): predicted loss (log scale) against bits
//! per weight, the greedy plans as a line with their lower bounds dashed
//! beneath, and each uniform format as a labelled marker on the same axes.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Result, ScheduleError};
use crate::frontier::Frontier;

/// Draws `frontier` into the SVG file `path` (written whole, then renamed).
pub fn draw(frontier: &Frontier, path: &Path) -> Result<()> {
    let svg = render(frontier)
        .map_err(|reason| ScheduleError::Chart { path: path.to_owned(), reason })?;
    qloader_format::atomic_file::write_atomic_io(path, svg.as_bytes())
        .map_err(|error| ScheduleError::Io { path: path.to_owned(), error })
}

/// The SVG text of the chart.
pub fn render(frontier: &Frontier) -> std::result::Result<String, String> {
    let plans: Vec<(f64, f64)> =
        frontier.points.iter().map(|p| (p.bits_per_weight, p.loss)).collect();
    let bounds: Vec<(f64, f64)> =
        frontier.points.iter().map(|p| (p.bits_per_weight, p.bound)).collect();
    let uniform: Vec<(f64, f64, String)> =
        frontier.uniform.iter().map(|u| (u.bits_per_weight, u.loss, u.format.name())).collect();
    let xs = plans.iter().map(|p| p.0).chain(uniform.iter().map(|u| u.0));
    let ys = plans
        .iter()
        .map(|p| p.1)
        .chain(bounds.iter().map(|p| p.1))
        .chain(uniform.iter().map(|u| u.1));
    let positive: Vec<f64> = ys.filter(|y| *y > 0.0 && y.is_finite()).collect();
    if plans.is_empty() || positive.is_empty() {
        return Err("nothing to draw: no plan with a positive loss".into());
    }
    let floor = positive.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    let top = positive.iter().copied().fold(0.0, f64::max) * 2.0;
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    let pad = ((x1 - x0) * 0.05).max(0.1);
    let clamp = |y: f64| y.max(floor);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 600)).into_drawing_area();
        let e = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{} on {}: predicted loss vs size",
                    short_name(&frontier.model),
                    frontier.device
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), (floor..top).log_scale())
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("bits per weight (run-time bytes × 8 / weights)")
            .y_desc(format!("predicted loss ({:?}, summed)", frontier.measure))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(|x| e(&x))?;
        let blue = RGBColor(31, 119, 180);
        chart
            .draw_series(LineSeries::new(
                plans.iter().map(|&(x, y)| (x, clamp(y))),
                blue.stroke_width(2),
            ))
            .map_err(|x| e(&x))?
            .label("mixed-precision plans (greedy)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2))
            });
        chart
            .draw_series(plans.iter().map(|&(x, y)| Circle::new((x, clamp(y)), 3, blue.filled())))
            .map_err(|x| e(&x))?;
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(DashedLineSeries::new(
                bounds.iter().map(|&(x, y)| (x, clamp(y))),
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(|x| e(&x))?
            .label("lower bound on the optimum")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
            });
        let red = RGBColor(214, 39, 40);
        chart
            .draw_series(
                uniform
                    .iter()
                    .map(|&(x, y, _)| TriangleMarker::new((x, clamp(y)), 7, red.filled())),
            )
            .map_err(|x| e(&x))?
            .label("uniform formats")
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, red.filled()));
        for &(x, y, ref name) in &uniform {
            chart
                .draw_series(std::iter::once(Text::new(
                    name.clone(),
                    (x, clamp(y) * 1.25),
                    ("sans-serif", 14).into_font().color(&red),
                )))
                .map_err(|x| e(&x))?;
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

/// The last path component of a model path, for titles.
fn short_name(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}
