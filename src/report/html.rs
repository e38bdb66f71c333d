//! The report as one self-contained HTML page: inline CSS, charts as inline
//! SVG, no script and no external reference, so it can be mailed or
//! archived and still open offline. Templated with minijinja, whose HTML
//! auto-escaping (on for `.html` templates) escapes every user string.

use minijinja::{context, Environment};
use serde::Serialize;

use super::chart::{drill_chart, exposure_chart, ChartError, DrillMark};
use super::Report;
use crate::time::{human_duration_secs, parse_rfc3339, rfc3339};

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

/// The line a stakeholder reads first.
#[derive(Serialize)]
struct Headline {
    plans: usize,
    compliant: usize,
    /// RPO breaches over every plan and region in the window.
    breaches: usize,
    /// Plans whose last drill in the window failed or missed an objective.
    drills_not_passing: usize,
    /// Plans with no drill in the window.
    undrilled: usize,
    /// The newest drill of any plan: when, which plan, passed or not.
    last_drill: Option<(String, String, bool)>,
}

impl Headline {
    fn of(r: &Report) -> Headline {
        let last_drill = r
            .plans
            .iter()
            .filter_map(|p| p.drills.last.as_ref().map(|d| (p, d)))
            .max_by_key(|(_, d)| d.started_at)
            .map(|(p, d)| (rfc3339(d.started_at), p.name.clone(), d.passed));
        Headline {
            plans: r.plans.len(),
            compliant: r.plans.iter().filter(|p| p.compliant).count(),
            breaches: r
                .plans
                .iter()
                .flat_map(|p| &p.regions)
                .map(|x| x.breaches.len())
                .sum(),
            drills_not_passing: r
                .plans
                .iter()
                .filter(|p| {
                    p.drills
                        .history
                        .last()
                        .is_some_and(|d| !d.passed || !d.met_objectives)
                })
                .count(),
            undrilled: r
                .plans
                .iter()
                .filter(|p| p.drills.history.is_empty())
                .count(),
            last_drill,
        }
    }
}

/// When the plan's history in the report starts: its first exposure vertex
/// or drill, if any.
fn history_start(p: &crate::report::PlanReport) -> Option<i64> {
    let exposure = p
        .regions
        .iter()
        .filter_map(|x| x.timeline.first().map(|(t, _)| *t));
    let drills = p.drills.history.iter().map(|d| d.started_ms);
    exposure.chain(drills).min()
}

fn parse(t: &str) -> Result<i64, HtmlError> {
    parse_rfc3339(t).map_err(|_| HtmlError::Time(t.to_string()))
}

/// The report as one HTML page. The exposure charts draw each region's
/// `timeline`, which is empty unless the report was built with
/// `with_charts`.
pub fn render_html(r: &Report) -> Result<String, HtmlError> {
    let (window_from, to) = (parse(&r.from)?, parse(&r.to)?);
    let mut charts = Vec::with_capacity(r.plans.len());
    for p in &r.plans {
        // A plan younger than the window is charted from its start, not
        // squeezed into the window's last pixels.
        let from = history_start(p).map_or(window_from, |t| t.clamp(window_from, to - 1));
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
    env.add_filter("ts", |t: Option<String>| -> String {
        // `2026-12-02T16:55:12.345Z` → `2026-12-02 16:55:12Z`: fits a cell.
        t.map(|t| {
            let t = t.replacen('T', " ", 1);
            match t.split_once('.') {
                Some((whole, _)) => format!("{whole}Z"),
                None => t,
            }
        })
        .unwrap_or_else(|| "—".into())
    });
    let page = env.get_template("report.html")?.render(context! {
        report => r,
        charts => charts,
        headline => Headline::of(r),
    })?;
    Ok(page)
}
