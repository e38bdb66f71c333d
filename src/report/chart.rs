//! Report charts as inline SVG (plotters' SVG backend writes text as SVG
//! `<text>`, so no font library or bitmap is involved, and it escapes the
//! text it writes).

use chrono::{DateTime, Utc};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::time::{to_datetime, Millis};

const WIDTH: u32 = 900;
const HEIGHT: u32 = 300;

/// Colours for successive regions, readable on white.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
];
const OBJECTIVE: RGBColor = RGBColor(214, 39, 40);
/// Chart text: the SVG is drawn 900 px wide and shown about as wide, so
/// this is close to the size it reads at.
const FONT_PX: u32 = 15;

/// A chart plotters could not draw, named with plotters' reason.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the {chart} chart: {message}")]
pub struct ChartError {
    chart: &'static str,
    message: String,
}

/// A unit that keeps the axis numbers readable for values up to `max_s`.
fn unit_for(max_s: f64) -> (&'static str, f64) {
    if max_s >= 2.0 * 3600.0 {
        ("hours", 3600.0)
    } else if max_s >= 120.0 {
        ("minutes", 60.0)
    } else {
        ("seconds", 1.0)
    }
}

fn time_label(d: &DateTime<Utc>) -> String {
    d.format("%Y-%m-%d %H:%M").to_string()
}

/// The chart area both charts draw on: time over the window, values in the
/// unit [`unit_for`] chose.
type TimeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedDateTime<DateTime<Utc>>, RangedCoordf64>>;

/// An error of drawing chart `chart`.
fn drawing_error(chart: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ChartError {
    move |e| ChartError {
        chart,
        message: e.to_string(),
    }
}

/// What both charts share: the time axis over `[from, to)`, a y axis up to
/// `max_s` in a readable unit, the objective as a dashed line and the
/// legend. `series` draws the chart's own data, its values divided by the
/// unit's seconds (its second argument).
fn render(
    chart_name: &'static str,
    y_label: &str,
    (from, to): (Millis, Millis),
    max_s: f64,
    (objective_label, objective_s): (String, f64),
    series: impl FnOnce(&mut TimeChart<'_, '_>, f64) -> Result<(), ChartError>,
) -> Result<String, ChartError> {
    let err = drawing_error(chart_name);
    let (unit, div) = unit_for(max_s);
    let (x0, x1) = (to_datetime(from), to_datetime(to));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, 0f64..(max_s / div * 1.1).max(1e-9))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&time_label)
            .y_desc(format!("{y_label} ({unit})"))
            .label_style(("sans-serif", FONT_PX))
            .axis_desc_style(("sans-serif", FONT_PX))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| err(&e))?;
        series(&mut chart, div)?;
        let objective = objective_s / div;
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, objective), (x1, objective)],
                8,
                5,
                OBJECTIVE.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(objective_label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], OBJECTIVE));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .label_font(("sans-serif", FONT_PX))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// The vertices of `pts` (in time order) that draw the same picture at
/// `columns` pixels across `[from, to)`: per pixel column the first, the
/// lowest, the highest and the last vertex, in time order (the M4
/// reduction). A year of 15-minute points is 70,000 vertices per region;
/// drawn whole, the dashed lines of a 100-plan report made a 700 MB page.
fn per_column(pts: &[(Millis, i64)], from: Millis, to: Millis, columns: i64) -> Vec<(Millis, i64)> {
    let span = (to - from).max(1);
    let column =
        |t: Millis| ((t - from).clamp(0, span) as i128 * columns as i128 / span as i128) as i64;
    let mut out = Vec::new();
    let mut i = 0;
    while i < pts.len() {
        let c = column(pts[i].0);
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j + 1 < pts.len() && column(pts[j + 1].0) == c {
            j += 1;
            if pts[j].1 < pts[lo].1 {
                lo = j;
            }
            if pts[j].1 > pts[hi].1 {
                hi = j;
            }
        }
        let mut keep = [i, lo, hi, j];
        keep.sort_unstable();
        let mut last = None;
        for k in keep {
            if last != Some(k) {
                out.push(pts[k]);
                last = Some(k);
            }
        }
        i = j + 1;
    }
    out
}

/// RPO exposure over the window: one sawtooth line per region (from
/// [`super::exposure::timeline`]) and the RPO objective as a dashed line.
/// `regions` pairs each region's name with its `(t, exposure_ms)` vertices;
/// `rpo_s` is in seconds. Returns the SVG markup.
pub fn exposure_chart(
    regions: &[(&str, &[(Millis, i64)])],
    from: Millis,
    to: Millis,
    rpo_s: f64,
) -> Result<String, ChartError> {
    let max_s = regions
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|(_, v)| *v as f64 / 1000.0))
        .fold(rpo_s, f64::max);
    let objective = ("RPO objective".to_string(), rpo_s);
    let svg = render(
        "exposure",
        "exposure",
        (from, to),
        max_s,
        objective,
        |chart, div| {
            let err = drawing_error("exposure");
            // Regions often coincide (a copy lands seconds after its
            // point): the first is drawn wide and solid, the others
            // narrower and dashed on top, so each stays visible. Dashed
            // by SVG (below), not by plotters, which draws every dash as
            // an element of its own: 11,000 a region for 30 days.
            for (i, (region, pts)) in regions.iter().enumerate() {
                let colour = PALETTE[i % PALETTE.len()];
                let line = per_column(pts, from, to, i64::from(WIDTH))
                    .into_iter()
                    .map(|(t, v)| (to_datetime(t), v as f64 / 1000.0 / div));
                let width = if i == 0 { 4 } else { 2 };
                chart
                    .draw_series(LineSeries::new(line, colour.stroke_width(width)))
                    .map_err(|e| err(&e))?
                    .label(*region)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(width))
                    });
            }
            Ok(())
        },
    )?;
    Ok(dash_regions(svg, regions.len()))
}

/// Dashes the lines (and legend marks) of every region but the first:
/// they are the only strokes 2 px wide in their palette colour.
fn dash_regions(mut svg: String, regions: usize) -> String {
    for colour in PALETTE.iter().take(regions.min(PALETTE.len())).skip(1) {
        let RGBColor(r, g, b) = *colour;
        let stroke = format!("stroke=\"#{r:02X}{g:02X}{b:02X}\" stroke-width=\"2\"");
        let dashed = format!(
            "stroke=\"#{r:02X}{g:02X}{b:02X}\" stroke-dasharray=\"10 6\" stroke-width=\"2\""
        );
        svg = svg.replace(&stroke, &dashed);
    }
    svg
}

/// One drill on the history chart: when it started, the measured value
/// (RTO or RPO; `None` when the drill failed before measuring it), and
/// whether it passed.
pub struct DrillMark {
    /// Drill start (catalog ms).
    pub at: Millis,
    /// The measured RTO or RPO, in seconds.
    pub value_s: Option<f64>,
    /// A failed drill is also marked with a band across the chart.
    pub passed: bool,
}

/// Each drill's RTO or RPO (`what`) against the objective: every measured
/// value as a dot, the dots joined by a line, and each failed drill as a
/// red band across the chart (a failed drill that measured an RPO gets
/// both).
pub fn drill_chart(
    what: &'static str,
    drills: &[DrillMark],
    from: Millis,
    to: Millis,
    objective_s: f64,
) -> Result<String, ChartError> {
    let max_s = drills
        .iter()
        .filter_map(|d| d.value_s)
        .fold(objective_s, f64::max);
    let objective = (format!("{what} objective"), objective_s);
    render(what, what, (from, to), max_s, objective, |chart, div| {
        let err = drawing_error(what);
        let measured: Vec<(DateTime<Utc>, f64)> = drills
            .iter()
            .filter_map(|d| Some((to_datetime(d.at), d.value_s? / div)))
            .collect();
        let colour = PALETTE[0];
        chart
            .draw_series(LineSeries::new(
                measured.iter().copied(),
                colour.stroke_width(1),
            ))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(measured.iter().map(|p| Circle::new(*p, 4, colour.filled())))
            .map_err(|e| err(&e))?
            .label(format!("drill {what}"))
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
        let failed: Vec<DateTime<Utc>> = drills
            .iter()
            .filter(|d| !d.passed)
            .map(|d| to_datetime(d.at))
            .collect();
        // A failed drill has no value to plot (a cross at 0 would read as
        // the best one): it is a red band across the whole height.
        if !failed.is_empty() {
            let top = chart.y_range().end;
            let band = OBJECTIVE.mix(0.35).stroke_width(3);
            chart
                .draw_series(
                    failed
                        .iter()
                        .map(|t| PathElement::new(vec![(*t, 0.0), (*t, top)], band)),
                )
                .map_err(|e| err(&e))?
                .label("failed drill")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x + 10, y - 7), (x + 10, y + 7)], band)
                });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::per_column;

    #[test]
    fn regions_after_the_first_are_dashed_by_svg_with_one_line_each() {
        let pts: Vec<(i64, i64)> = (0..10_000).map(|i| (i * 1000, (i % 60) * 1000)).collect();
        let svg = super::exposure_chart(
            &[("primary", &pts), ("dr", &pts), ("far", &pts)],
            0,
            10_000_000,
            30.0,
        )
        .unwrap();
        assert_eq!(
            svg.matches("stroke=\"#2CA02C\" stroke-dasharray=\"10 6\"")
                .count(),
            2,
            "the line and its legend mark"
        );
        assert_eq!(
            svg.matches("stroke=\"#9467BD\" stroke-dasharray=\"10 6\"")
                .count(),
            2
        );
        assert!(
            !svg.contains("stroke=\"#1F77B4\" stroke-dasharray"),
            "the first region is solid"
        );
        assert!(svg.len() < 300_000, "{} bytes", svg.len());
    }

    #[test]
    fn per_column_keeps_first_lowest_highest_and_last_of_each_column_in_order() {
        // Two columns of 10 ms over [0, 20).
        let pts = [(0, 5), (2, 9), (4, 1), (6, 7), (8, 3), (10, 4), (19, 4)];
        assert_eq!(
            per_column(&pts, 0, 20, 2),
            vec![(0, 5), (2, 9), (4, 1), (8, 3), (10, 4), (19, 4)]
        );
        // A sparse line is kept whole.
        let sparse = [(0, 1), (10, 2)];
        assert_eq!(per_column(&sparse, 0, 20, 900), sparse.to_vec());
        // Dense input is bounded by four vertices a column.
        let dense: Vec<(i64, i64)> = (0..100_000).map(|t| (t, t % 97)).collect();
        assert!(per_column(&dense, 0, 100_000, 900).len() <= 4 * 901);
    }
}
