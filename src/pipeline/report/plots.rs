//! PNG line plots with `plotters` (bitmap backend, no system libraries): text is drawn with the
//! bundled DejaVu Sans (`assets/fonts/`, compiled into the binary), so no fontconfig or freetype
//! is needed to build or run.

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// The font family name plots use; registered on first use.
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

fn register_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the bundled font assets/fonts/DejaVuSans.ttf could not be loaded"
        ))
    }
}

/// Where the legend goes (away from where the lines are expected to end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    /// For falling curves (losses).
    UpperRight,
    /// For rising curves (accuracy, reward).
    LowerRight,
}

/// One line of a plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// (x, y) points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed and grey (for targets).
    pub dashed: bool,
}

impl Series {
    pub fn line(name: &str, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.to_string(),
            points,
            dashed: false,
        }
    }

    /// A horizontal dashed line at `y` across `[x0, x1]`.
    pub fn target(name: &str, y: f64, x0: f64, x1: f64) -> Self {
        Self {
            name: name.to_string(),
            points: vec![(x0, y), (x1, y)],
            dashed: true,
        }
    }
}

/// `[lo, hi]` padded by 5% (a single value gets ±1, or ±5% of itself).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        let p = 0.05 * (hi - lo);
        (lo - p, hi + p)
    } else {
        let p = if lo == 0.0 { 1.0 } else { 0.05 * lo.abs() };
        (lo - p, hi + p)
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The x and y ranges that hold every point of `data`, padded.
fn axis_ranges(data: &[&Series]) -> ((f64, f64), (f64, f64)) {
    let pts = data.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    (padded(x0, x1), padded(y0, y1))
}

fn drawing_error(path: &Path, e: &dyn std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing {}: {e}", path.display())
}

/// The chart `line_plot` draws on: f64 axes on a PNG.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Each series of `data` as a line with its legend entry: targets dashed and grey, the others
/// in turn in [`COLORS`], with dots when there are few points.
fn draw_lines(chart: &mut Chart<'_, '_>, data: &[&Series], path: &Path) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| drawing_error(path, e);
    for (i, s) in data.iter().enumerate() {
        let pts = s.points.clone();
        if s.dashed {
            let style = RGBColor(120, 120, 120).stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(pts, 8, 6, style))
                .map_err(|e| err(&e))?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        } else {
            let color = COLORS[i % COLORS.len()];
            let dots = if pts.len() <= 40 { 3 } else { 0 };
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)).point_size(dots))
                .map_err(|e| err(&e))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
    }
    Ok(())
}

/// Draws `series` into a 900×500 PNG at `path`. Returns false (and writes nothing) when no
/// series has a point.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    legend: Legend,
) -> Result<bool> {
    let data: Vec<&Series> = series.iter().filter(|s| !s.points.is_empty()).collect();
    if data.iter().all(|s| s.dashed) {
        return Ok(false);
    }
    register_font()?;
    let ((x0, x1), (y0, y1)) = axis_ranges(&data);
    let err = |e: &dyn std::fmt::Display| drawing_error(path, e);
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    let wide = x1 - x0 >= 10.0;
    let x_fmt = move |v: &f64| {
        if wide {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    chart
        .configure_mesh()
        .x_label_formatter(&x_fmt)
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| err(&e))?;
    draw_lines(&mut chart, &data, path)?;
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(match legend {
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::LowerRight => SeriesLabelPosition::LowerRight,
        })
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(true)
}
