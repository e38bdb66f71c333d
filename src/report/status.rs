//! `status`: per plan and region, how old the newest point is against the
//! RPO, and how the last drill went.

use serde::Serialize;

use crate::catalog::{Catalog, CatalogError};
use crate::plan::Plan;
use crate::time::{parse_rfc3339, rfc3339, to_datetime, Millis};

/// A plan's status now.
#[derive(Debug, Serialize)]
pub struct PlanStatus {
    /// The plan's name.
    pub plan: String,
    /// The plan's RPO objective, in seconds.
    pub rpo_objective_seconds: f64,
    /// The plan's RTO objective, in seconds.
    pub rto_objective_seconds: f64,
    /// One per region that holds points: the primary, then `copy_to`.
    pub regions: Vec<RegionStatus>,
    /// The newest finished drill, in any region; `None` before the first.
    pub last_drill: Option<LastDrill>,
    /// The next scheduled backup start, jitter applied.
    pub next_backup: Option<String>,
    /// The next scheduled drill start; `None` without a drill schedule.
    pub next_drill: Option<String>,
    /// Work holding one of the plan's leases now (a backup, drill,
    /// verify or restore, by the daemon or by hand), oldest first.
    pub running: Vec<Running>,
    /// What is wrong now, one sentence each: a region without a point
    /// within the RPO, a last drill that failed or missed an objective.
    /// Empty when the plan is within its objectives (`status --check`
    /// exits 1 when any plan's is not).
    pub problems: Vec<String>,
}

/// Work holding one of a plan's leases.
#[derive(Debug, Serialize)]
pub struct Running {
    /// `backup`, `drill`, `verify` or `restore`.
    pub kind: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's process id (on `host`).
    pub pid: i64,
    /// Since when it holds the lease, RFC 3339.
    pub since: String,
    /// The holder stopped renewing it: crashed or cut off. The next run of
    /// that kind takes the lease over.
    pub expired: bool,
}

/// A plan's newest points in one region.
#[derive(Debug, Serialize)]
pub struct RegionStatus {
    /// The region's name.
    pub region: String,
    /// Newest data time of the worst resource; `None` unless every
    /// resource has a complete point here.
    pub newest_data_time: Option<String>,
    /// Now − `newest_data_time`.
    pub age_seconds: Option<f64>,
    /// `age_seconds` is within the RPO objective.
    pub within_rpo: bool,
    /// Resources with no complete point in this region.
    pub missing: Vec<String>,
    /// Flags of the newest points (e.g. `shrunk`), as `resource: flag`.
    pub flags: Vec<String>,
}

/// The plan's newest finished drill.
#[derive(Debug, Serialize)]
pub struct LastDrill {
    /// The drill's catalog id.
    pub id: i64,
    /// Drill start, RFC 3339.
    pub started_at: String,
    /// Every restore and check passed.
    pub passed: bool,
    /// Passed, with RTO and RPO within the objectives recorded when it ran.
    pub met_objectives: bool,
    /// Measured RTO in seconds; `None` when the drill failed.
    pub rto_seconds: Option<f64>,
    /// Measured RPO in seconds; `None` when a resource had no point or the
    /// drill stopped with an error.
    pub rpo_seconds: Option<f64>,
}

/// The status of each plan at `now`.
pub async fn build(
    cat: &Catalog,
    plans: &[Plan],
    now: Millis,
) -> Result<Vec<PlanStatus>, CatalogError> {
    let leases = cat.leases().await?;
    // A few plans at once: each is a handful of quick lookups, and most of
    // a lookup's time is handing it to the catalog's thread and back, which
    // plans in flight together overlap (the pool has four connections).
    let mut out = Vec::with_capacity(plans.len());
    for some in plans.chunks(4) {
        let statuses = some.iter().map(|plan| plan_status(cat, plan, &leases, now));
        out.extend(futures_util::future::try_join_all(statuses).await?);
    }
    Ok(out)
}

/// One plan's status at `now`; `leases` are the catalog's.
async fn plan_status(
    cat: &Catalog,
    plan: &Plan,
    leases: &[crate::catalog::LeaseRecord],
    now: Millis,
) -> Result<PlanStatus, CatalogError> {
    let rpo_s = plan.rpo.as_secs_f64();
    let mut regions = Vec::new();
    for region in plan.point_regions() {
        let mut oldest_newest: Option<Millis> = None;
        let mut missing = Vec::new();
        let mut flags = Vec::new();
        for res in &plan.resources {
            let newest = cat
                .newest_complete_point(&plan.name, &res.name, region)
                .await?;
            match newest {
                Some(p) => {
                    let dt = p.data_time.unwrap_or(p.started_at);
                    oldest_newest = Some(oldest_newest.map_or(dt, |o| o.min(dt)));
                    for f in p.flag_list() {
                        flags.push(format!("{}: {f}", res.name));
                    }
                }
                None => missing.push(res.name.clone()),
            }
        }
        let newest = if missing.is_empty() {
            oldest_newest
        } else {
            None
        };
        let age = newest.map(|t| (now - t) as f64 / 1000.0);
        regions.push(RegionStatus {
            region: region.to_string(),
            newest_data_time: newest.map(rfc3339),
            age_seconds: age,
            within_rpo: age.is_some_and(|a| a <= rpo_s),
            missing,
            flags,
        });
    }
    let last_drill = cat.last_drill(&plan.name).await?.map(|d| LastDrill {
        id: d.id,
        started_at: rfc3339(d.started_at),
        passed: d.passed(),
        met_objectives: d.met_objectives(),
        rto_seconds: d.rto_ms.map(|v| v as f64 / 1000.0),
        rpo_seconds: d.rpo_ms.map(|v| v as f64 / 1000.0),
    });
    let next = |t: &crate::schedule::Timing, kind: &str| {
        t.upcoming(&plan.name, kind, to_datetime(now), 1)
            .first()
            .map(|r| rfc3339(r.start.timestamp_millis()))
    };
    let mut running: Vec<Running> = leases
        .iter()
        .filter(|l| l.plan == plan.name && l.kind != crate::lease::OWNER)
        .map(|l| Running {
            kind: l.kind.clone(),
            host: l.host.clone(),
            pid: l.pid,
            since: rfc3339(l.acquired_at),
            expired: l.expires_at <= now,
        })
        .collect();
    running.sort_by(|a, b| a.since.cmp(&b.since));
    let problems = problems(rpo_s, &regions, last_drill.as_ref());
    Ok(PlanStatus {
        running,
        problems,
        plan: plan.name.clone(),
        rpo_objective_seconds: rpo_s,
        rto_objective_seconds: plan.rto.as_secs_f64(),
        regions,
        last_drill,
        next_backup: next(&plan.backup.timing, "backup"),
        next_drill: plan.drill.timing.as_ref().and_then(|t| next(t, "drill")),
    })
}

/// What keeps a plan from its objectives now: each region whose newest
/// points are missing or older than the RPO, and a last drill that failed
/// or missed its RTO or RPO. A plan not yet drilled is not a problem here:
/// its first scheduled drill may still be ahead.
fn problems(rpo_s: f64, regions: &[RegionStatus], last: Option<&LastDrill>) -> Vec<String> {
    use crate::time::human_duration_secs as dur;
    let mut out = Vec::new();
    for r in regions.iter().filter(|r| !r.within_rpo) {
        match r.age_seconds {
            _ if !r.missing.is_empty() => out.push(format!(
                "region {}: no complete point of {}",
                r.region,
                r.missing.join(", ")
            )),
            Some(age) => out.push(format!(
                "region {}: newest point is {} old, over the RPO of {}",
                r.region,
                dur(age),
                dur(rpo_s)
            )),
            None => out.push(format!("region {}: no complete point", r.region)),
        }
    }
    match last {
        Some(d) if !d.passed => out.push(format!("last drill #{} failed", d.id)),
        Some(d) if !d.met_objectives => {
            out.push(format!("last drill #{} missed its objectives", d.id))
        }
        _ => {}
    }
    out
}

/// ANSI colours for the table; only used when stdout is a terminal.
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// A cell padded to `width` first, then coloured, so escape codes never
/// upset the column alignment.
fn cell(text: &str, width: usize, colour: Option<&str>) -> String {
    let padded = format!("{text:<width$}");
    match colour {
        Some(c) => format!("{c}{padded}{RESET}"),
        None => padded,
    }
}

/// When, relative to `now`: `2026-11-25 16:00 UTC (in 12m)`.
fn when(at: Option<&str>, now: Millis) -> String {
    let Some(at) = at else {
        return "—".into();
    };
    match crate::time::parse_rfc3339(at) {
        Ok(ms) => {
            // Seconds are noise an hour or more ahead; keep the column narrow.
            let mut secs = (ms - now) / 1000;
            if secs >= 3600 {
                secs = (secs + 30) / 60 * 60;
            }
            format!(
                "{} UTC (in {})",
                to_datetime(ms).format("%Y-%m-%d %H:%M"),
                crate::time::human_duration_secs(secs as f64)
            )
        }
        Err(_) => at.to_string(),
    }
}

/// The last drill's cell and its colour.
fn last_drill_cell(last: Option<&LastDrill>) -> (String, &'static str) {
    let Some(d) = last else {
        return ("none yet".to_string(), YELLOW);
    };
    let (verdict, colour) = if !d.passed {
        ("FAILED", RED)
    } else if !d.met_objectives {
        ("passed, missed obj.", YELLOW)
    } else {
        ("passed", GREEN)
    };
    (format!("#{} {verdict}", d.id), colour)
}

/// The `status` screen: one row per plan and region with the newest point's
/// age against the RPO, the last drill on the plan's first row, then a line
/// with the plan's next runs (full dates, so the table stays within 100
/// columns). Colours (green ok, red breach, yellow warnings) only when
/// `colour`.
pub fn render_table(plans: &[PlanStatus], now: Millis, colour: bool) -> String {
    use crate::time::human_duration_secs as dur;
    let paint = |c: &'static str| colour.then_some(c);
    let widths = [14, 10, 12, 8, 8, 26];
    let headers = ["PLAN", "REGION", "NEWEST AGE", "RPO", "STATE", "LAST DRILL"];
    let mut out = String::new();
    let header: Vec<String> = headers
        .iter()
        .zip(widths)
        .map(|(h, w)| cell(h, w, paint(DIM)))
        .collect();
    out.push_str(header.join(" ").trim_end());
    out.push('\n');
    for p in plans {
        for (i, r) in p.regions.iter().enumerate() {
            let first = i == 0;
            let age = r.age_seconds.map(dur).unwrap_or_else(|| "no point".into());
            let (state, state_colour) = if r.within_rpo {
                ("ok", GREEN)
            } else {
                ("BREACH", RED)
            };
            let (drill, drill_colour) = if first {
                let (text, colour) = last_drill_cell(p.last_drill.as_ref());
                (text, paint(colour))
            } else {
                (String::new(), None)
            };
            let row = [
                cell(if first { &p.plan } else { "" }, widths[0], None),
                cell(&r.region, widths[1], None),
                cell(&age, widths[2], None),
                cell(
                    &if first {
                        dur(p.rpo_objective_seconds)
                    } else {
                        String::new()
                    },
                    widths[3],
                    None,
                ),
                cell(state, widths[4], paint(state_colour)),
                cell(&drill, widths[5], drill_colour),
            ];
            let mut line = row.join(" ").trim_end().to_string();
            if !r.missing.is_empty() {
                line.push_str(&format!("  missing: {}", r.missing.join(", ")));
            }
            if !r.flags.is_empty() {
                line.push_str(&format!("  flags: {}", r.flags.join(", ")));
            }
            out.push_str(&line);
            out.push('\n');
        }
        let next = format!(
            "  next backup {} · next drill {}",
            when(p.next_backup.as_deref(), now),
            when(p.next_drill.as_deref(), now)
        );
        out.push_str(&cell(&next, 0, paint(DIM)));
        out.push('\n');
        if !p.running.is_empty() {
            let work: Vec<String> = p
                .running
                .iter()
                .map(|r| {
                    let age = parse_rfc3339(&r.since)
                        .map(|t| dur((now - t).max(0) as f64 / 1000.0))
                        .unwrap_or_default();
                    let stale = if r.expired { ", lease expired" } else { "" };
                    format!("{} for {age} (pid {} on {}{stale})", r.kind, r.pid, r.host)
                })
                .collect();
            out.push_str(&cell(&format!("  running: {}", work.join(" · ")), 0, None));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(within: bool) -> Vec<PlanStatus> {
        vec![PlanStatus {
            running: vec![],
            plan: "shop".into(),
            rpo_objective_seconds: 3600.0,
            rto_objective_seconds: 600.0,
            regions: vec![
                RegionStatus {
                    region: "primary".into(),
                    newest_data_time: None,
                    age_seconds: Some(120.0),
                    within_rpo: within,
                    missing: vec![],
                    flags: vec![],
                },
                RegionStatus {
                    region: "dr".into(),
                    newest_data_time: None,
                    age_seconds: None,
                    within_rpo: false,
                    missing: vec!["db".into()],
                    flags: vec![],
                },
            ],
            last_drill: None,
            next_backup: Some("2026-01-01T00:15:00Z".into()),
            next_drill: None,
            problems: vec![],
        }]
    }

    #[test]
    fn plain_table_has_no_escape_codes_and_aligned_rows() {
        let t = render_table(&sample(true), 1_767_225_600_000, false);
        assert!(!t.contains('\x1b'), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("PLAN"));
        assert!(lines[1].contains("shop") && lines[1].contains("ok"));
        assert!(lines[2].contains("BREACH") && lines[2].contains("missing: db"));
        assert!(
            lines[3].contains("next backup 2026-01-01 00:15 UTC (in 15m)"),
            "{t}"
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 100), "{t}");
        // Columns line up: STATE starts at the same offset on every row.
        let col = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][col..col + 2], "ok");
    }

    #[test]
    fn work_holding_a_lease_is_shown_with_its_holder_and_age() {
        let now = 1_767_225_600_000;
        let mut plans = sample(true);
        plans[0].running = vec![
            Running {
                kind: "backup".into(),
                host: "db-1".into(),
                pid: 4242,
                since: rfc3339(now - 125_000),
                expired: false,
            },
            Running {
                kind: "drill".into(),
                host: "db-2".into(),
                pid: 7,
                since: rfc3339(now - 3_600_000),
                expired: true,
            },
        ];
        let t = render_table(&plans, now, false);
        let last = t.lines().last().unwrap();
        assert_eq!(
            last,
            "  running: backup for 2m 5s (pid 4242 on db-1) · drill for 1h (pid 7 on db-2, lease expired)",
            "{t}"
        );
        // Nothing running: no such line.
        let t = render_table(&sample(true), now, false);
        assert!(!t.contains("running:"), "{t}");
    }

    #[test]
    fn colour_marks_breaches_red() {
        let t = render_table(&sample(false), 0, true);
        assert!(t.contains(&format!("{RED}BREACH")), "{t:?}");
        assert!(!t.contains(GREEN));
    }
}
