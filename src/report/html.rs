//! The report as one self-contained HTML page: inline CSS, charts as inline
//! SVG, no script and no external reference, so it can be mailed or
//! archived and still open offline. Templated with minijinja, whose HTML
//! auto-escaping (on for `.html` templates) escapes every user string.

use minijinja::{context, Environment};
use serde::Serialize;

use super::chart::{drill_chart, exposure_chart, ChartError, DrillMark};
use super::Report;
use crate::time::{human_duration_secs, parse_rfc3339};

const TEMPLATE: &str = include_str!("../../templates/report.html");

/// Why the HTML report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// The embedded template failed to load or render.
    #[error("cannot render the HTML report template: {0}")]
    Template(#[from] minijinja::Error),
    /// The report's `from` or `to` is not RFC 3339 (one built by
    /// [`super::build`] always is).
    #[error("report time `{0}` is not RFC 3339")]
    Time(String),
}

/// The charts of one plan, as SVG markup.
#[derive(Serialize)]
struct Charts {
    exposure: String,
    rto: String,
    rpo: String,
}

fn parse(t: &str) -> Result<i64, HtmlError> {
    parse_rfc3339(t).map_err(|_| HtmlError::Time(t.to_string()))
}

/// The report as one HTML page. The exposure charts draw each region's
/// `timeline`, which is empty unless the report was built with
/// `with_charts`.
pub fn render_html(r: &Report) -> Result<String, HtmlError> {
    let (from, to) = (parse(&r.from)?, parse(&r.to)?);
    let mut charts = Vec::with_capacity(r.plans.len());
    for p in &r.plans {
        let series: Vec<(&str, &[(i64, i64)])> = p
            .regions
            .iter()
            .map(|x| (x.region.as_str(), x.timeline.as_slice()))
            .collect();
        let marks = |rto: bool| -> Vec<DrillMark> {
            p.drills
                .history
                .iter()
                .map(|d| DrillMark {
                    at: d.started_ms,
                    value_s: if rto { d.rto_seconds } else { d.rpo_seconds },
                    passed: d.passed,
                })
                .collect()
        };
        charts.push(Charts {
            exposure: exposure_chart(&series, from, to, p.rpo_objective_seconds)?,
            rto: drill_chart("RTO", &marks(true), from, to, p.rto_objective_seconds)?,
            rpo: drill_chart("RPO", &marks(false), from, to, p.rpo_objective_seconds)?,
        });
    }
    let mut env = Environment::new();
    env.add_filter("dur", |v: Option<f64>| -> String {
        v.map(human_duration_secs).unwrap_or_else(|| "—".into())
    });
    env.add_filter("pct", |v: Option<f64>| -> String {
        v.map(|r| format!("{:.1}%", r * 100.0))
            .unwrap_or_else(|| "—".into())
    });
    // The `.html` name turns on HTML auto-escaping for every `{{ }}`.
    env.add_template("report.html", TEMPLATE)?;
    let page = env.get_template("report.html")?.render(context! {
        report => r,
        charts => charts,
    })?;
    Ok(page)
}
