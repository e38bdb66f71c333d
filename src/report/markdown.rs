//! The report as Markdown, for a wiki page or an email: a summary table of
//! every plan, then one section per plan.

use std::fmt::Write;

use super::{BackupSummary, DrillSummary, PlanReport, Report};
use crate::time::{human_duration_secs, rfc3339};

// Writing to a String cannot fail: every `writeln!` result below is ignored.

fn dur(v: Option<f64>) -> String {
    v.map(human_duration_secs).unwrap_or_else(|| "—".into())
}

fn pct(v: Option<f64>) -> String {
    v.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// The whole report: the window, a summary table of every plan, then one
/// section per plan.
pub fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Lifeboat DR report\n");
    let _ = writeln!(
        s,
        "Window: {} → {} (generated {})\n",
        r.from, r.to, r.generated_at
    );
    let _ = writeln!(
        s,
        "| plan | owner | status | RPO objective | worst exposure | RTO objective | last drill |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for p in &r.plans {
        summary_row(&mut s, p);
    }
    for p in &r.plans {
        plan_section(&mut s, p);
    }
    s
}

fn summary_row(s: &mut String, p: &PlanReport) {
    let worst = p
        .regions
        .iter()
        .filter_map(|x| x.exposure.worst_exposure_seconds)
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    let last = match &p.drills.last {
        Some(d) => format!(
            "{} (RTO {}, RPO {})",
            if d.passed { "passed" } else { "FAILED" },
            dur(d.rto_seconds),
            dur(d.rpo_seconds)
        ),
        None => "none".into(),
    };
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} | {} |",
        p.name,
        p.owner,
        if p.compliant {
            "✅ compliant"
        } else {
            "❌ breached"
        },
        human_duration_secs(p.rpo_objective_seconds),
        dur(worst),
        human_duration_secs(p.rto_objective_seconds),
        last
    );
}

fn plan_section(s: &mut String, p: &PlanReport) {
    let _ = writeln!(s, "\n## {}\n", p.name);
    let _ = writeln!(
        s,
        "Owner: {} · RTO objective {} · RPO objective {} · **{}**\n",
        p.owner,
        human_duration_secs(p.rto_objective_seconds),
        human_duration_secs(p.rpo_objective_seconds),
        if p.compliant {
            "compliant"
        } else {
            "not compliant"
        }
    );
    if !p.problems.is_empty() {
        let _ = writeln!(s, "Problems:\n");
        for problem in &p.problems {
            let _ = writeln!(s, "- {problem}");
        }
        let _ = writeln!(s);
    }
    exposure(s, p);
    drills(s, &p.drills);
    backups(s, &p.backups);
    last_drill(s, &p.drills);
    evidence(s, p);
    flagged_points(s, p);
    restores(s, p);
}

fn restores(s: &mut String, p: &PlanReport) {
    if p.restores.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nRestores:\n");
    for r in &p.restores {
        let _ = writeln!(
            s,
            "- restore {} at {} by {} from {} ({}): {}{}",
            r.id,
            r.started_at,
            r.by_whom,
            r.region,
            r.moment,
            r.status,
            r.error
                .as_deref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        );
        for what in &r.resources {
            let _ = writeln!(s, "  - {what}");
        }
    }
}

/// The exposure table, then the periods over the RPO.
fn exposure(s: &mut String, p: &PlanReport) {
    let _ = writeln!(
        s,
        "| region | newest data | worst RPO exposure | time within RPO |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    for x in &p.regions {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            x.region,
            x.exposure.newest_data_time.as_deref().unwrap_or("none"),
            dur(x.exposure.worst_exposure_seconds),
            pct(x.exposure.within_rpo_ratio)
        );
    }
    let _ = writeln!(
        s,
        "| verified (drilled points only) | {} | {} | {} |\n",
        p.verified.newest_data_time.as_deref().unwrap_or("none"),
        dur(p.verified.worst_exposure_seconds),
        pct(p.verified.within_rpo_ratio)
    );
    let breaches: Vec<String> = p
        .regions
        .iter()
        .flat_map(|x| {
            x.breaches.iter().map(move |b| {
                format!(
                    "- {}: {} → {} (worst {})",
                    x.region,
                    b.start,
                    b.end,
                    human_duration_secs(b.worst_exposure_seconds)
                )
            })
        })
        .collect();
    if !breaches.is_empty() {
        let _ = writeln!(s, "RPO breaches:\n\n{}\n", breaches.join("\n"));
    }
}

fn drills(s: &mut String, d: &DrillSummary) {
    let _ = writeln!(
        s,
        "Drills: {} run, {} passed ({}) · RTO p50 {} · RTO p95 {} · RTO max {} · RPO max {} · last pass {}",
        d.count,
        d.passed,
        pct(d.pass_rate),
        dur(d.rto_p50_seconds),
        dur(d.rto_p95_seconds),
        dur(d.rto_max_seconds),
        dur(d.rpo_max_seconds),
        d.since_last_pass_seconds
            .map(|v| format!("{} before the window's end", human_duration_secs(v)))
            .unwrap_or_else(|| "never".into())
    );
}

fn backups(s: &mut String, b: &BackupSummary) {
    let _ = writeln!(
        s,
        "\nBackups: {}, {} failed or partial, {}",
        plural(b.runs, "run", "runs"),
        b.failed,
        plural(b.missed, "missed slot", "missed slots")
    );
    if !b.incidents.is_empty() {
        // Drill failures are listed here too: one list of what went wrong.
        let _ = writeln!(
            s,
            "\nIncidents (failed or partial backups, failed drills, missed slots):\n"
        );
        for i in &b.incidents {
            let _ = writeln!(
                s,
                "- {} {} {} #{} {}: {}",
                i.at,
                i.kind,
                i.source,
                i.id,
                i.status,
                i.reason.as_deref().unwrap_or("no reason recorded")
            );
        }
    }
}

/// `1 run`, `3 runs`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The checks of the last drill.
fn last_drill(s: &mut String, d: &DrillSummary) {
    let Some(last) = &d.last else {
        return;
    };
    let _ = writeln!(
        s,
        "\nLast drill #{} ({}):\n",
        last.id,
        rfc3339(last.started_at)
    );
    let _ = writeln!(s, "| check | resource | result | detail |");
    let _ = writeln!(s, "|---|---|---|---|");
    for c in &last.checks {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            c.name,
            c.resource,
            if c.passed { "pass" } else { "FAIL" },
            c.detail.replace('|', "\\|")
        );
    }
}

fn evidence(s: &mut String, p: &PlanReport) {
    let Some(chain) = &p.evidence else {
        return;
    };
    let _ = writeln!(
        s,
        "\nDrill evidence: {} record(s) in {}, {}",
        chain.records,
        chain.location,
        if chain.intact {
            "chain intact".to_string()
        } else {
            format!(
                "CHAIN BROKEN: {}",
                chain.problem.as_deref().unwrap_or("unknown")
            )
        }
    );
}

fn flagged_points(s: &mut String, p: &PlanReport) {
    if p.flagged_points.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nFlagged points:\n");
    for f in &p.flagged_points {
        let _ = writeln!(
            s,
            "- point {} ({} in {}): {}",
            f.id,
            f.resource,
            f.region,
            f.flags.join(", ")
        );
    }
}
