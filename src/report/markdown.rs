//! The report as Markdown, for a wiki page or an email.

use std::fmt::Write;

use super::Report;
use crate::time::human_duration_secs;

fn dur(v: Option<f64>) -> String {
    v.map(human_duration_secs).unwrap_or_else(|| "—".into())
}

fn pct(v: Option<f64>) -> String {
    v.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "—".into())
}

pub fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
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
        let worst = p
            .regions
            .iter()
            .filter_map(|x| x.exposure.worst_exposure_seconds)
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        let last = match &p.drills.last {
            Some(d) => format!(
                "{} (RTO {}, RPO {})",
                if d["passed"].as_bool() == Some(true) {
                    "passed"
                } else {
                    "FAILED"
                },
                dur(d["rto_seconds"].as_f64()),
                dur(d["rpo_seconds"].as_f64())
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
    for p in &r.plans {
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
        let d = &p.drills;
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
        let _ = writeln!(
            s,
            "\nBackups: {} runs, {} failed or partial, {} missed slots",
            p.backups.runs, p.backups.failed, p.backups.missed
        );
        if !p.backups.incidents.is_empty() {
            let _ = writeln!(s);
            for i in &p.backups.incidents {
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
        if let Some(last) = &d.last {
            let _ = writeln!(
                s,
                "\nLast drill #{} ({}):\n",
                last["id"],
                last["started_at"].as_str().unwrap_or("")
            );
            let _ = writeln!(s, "| check | resource | result | detail |");
            let _ = writeln!(s, "|---|---|---|---|");
            for c in last["checks"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    c["name"].as_str().unwrap_or(""),
                    c["resource"].as_str().unwrap_or(""),
                    if c["passed"].as_bool() == Some(true) {
                        "pass"
                    } else {
                        "FAIL"
                    },
                    c["detail"].as_str().unwrap_or("").replace('|', "\\|")
                );
            }
        }
        if let Some(chain) = &p.evidence {
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
        if !p.flagged_points.is_empty() {
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
    }
    s
}
