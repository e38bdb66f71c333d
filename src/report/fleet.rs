//! `lifeboat fleet`: the daemons sharing a catalog, which plans each owns
//! and how fresh their leases are, read from the catalog alone so that any
//! host shows the same picture.

use std::fmt::Write as _;

use serde::Serialize;

use crate::catalog::{Catalog, CatalogError, DaemonRecord};
use crate::lease;
use crate::plan::Plan;
use crate::time::{human_duration_secs, to_datetime, Millis};

/// The whole fleet as the catalog holds it.
#[derive(Debug, Serialize)]
pub struct FleetView {
    /// Every registered daemon, live ones first, then by host.
    pub daemons: Vec<DaemonView>,
    /// Every plan that is loaded here or owned somewhere, by name.
    pub plans: Vec<PlanView>,
}

/// One daemon.
#[derive(Debug, Serialize)]
pub struct DaemonView {
    /// Its row in `daemons`.
    #[serde(flatten)]
    pub record: DaemonRecord,
    /// Whether its heartbeat is current (`expires_at` in the future); a
    /// dead daemon's row stays until its plans' new owners are settled and
    /// it is removed by a graceful stop or a restart of it.
    pub live: bool,
    /// The plans whose ownership it holds now.
    pub plans: Vec<String>,
}

/// One plan and its owner.
#[derive(Debug, Serialize)]
pub struct PlanView {
    /// The plan's name.
    pub plan: String,
    /// `[placement] labels`, when the plan is loaded here.
    pub placement: Vec<String>,
    /// The daemon holding the plan, if its lease is live.
    pub owner: Option<String>,
    /// That daemon's host.
    pub host: Option<String>,
    /// When the owner last renewed the lease.
    #[serde(with = "crate::time::serde_ms::option")]
    pub renewed_at: Option<Millis>,
    /// When the lease ends unless renewed.
    #[serde(with = "crate::time::serde_ms::option")]
    pub expires_at: Option<Millis>,
    /// Why no daemon runs the plan, when none does.
    pub problem: Option<String>,
}

impl FleetView {
    /// The plans no live daemon runs.
    pub fn unowned(&self) -> usize {
        self.plans.iter().filter(|p| p.owner.is_none()).count()
    }
}

/// Reads the fleet at `now`; `plans` are the ones loaded here (their
/// placement explains a plan no daemon may own).
pub async fn build(
    catalog: &Catalog,
    plans: &[Plan],
    now: Millis,
) -> Result<FleetView, CatalogError> {
    let records = catalog.daemons().await?;
    let owners: Vec<_> = catalog
        .leases()
        .await?
        .into_iter()
        .filter(|l| l.kind == lease::OWNER && l.expires_at > now)
        .collect();
    let live: Vec<DaemonRecord> = records
        .iter()
        .filter(|d| d.expires_at > now)
        .cloned()
        .collect();
    let mut daemons: Vec<DaemonView> = records
        .into_iter()
        .map(|record| DaemonView {
            live: record.expires_at > now,
            plans: owners
                .iter()
                .filter(|l| l.owner == record.id)
                .map(|l| l.plan.clone())
                .collect(),
            record,
        })
        .collect();
    daemons.sort_by(|a, b| {
        b.live
            .cmp(&a.live)
            .then_with(|| a.record.host.cmp(&b.record.host))
            .then_with(|| a.record.id.cmp(&b.record.id))
    });
    let mut names: Vec<String> = plans
        .iter()
        .map(|p| p.name.clone())
        .chain(owners.iter().map(|l| l.plan.clone()))
        .collect();
    names.sort();
    names.dedup();
    let plans = names
        .into_iter()
        .map(|name| {
            let placement = plans
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.placement.clone())
                .unwrap_or_default();
            let held = owners.iter().find(|l| l.plan == name);
            let problem = match held {
                Some(_) => None,
                None if live.is_empty() => Some("no live daemon in the fleet".to_string()),
                None if !live.iter().any(|d| d.has_labels(&placement)) => Some(format!(
                    "no live daemon carries the labels {}",
                    placement.join(", ")
                )),
                None => Some("not taken yet (within a lease time of a change)".to_string()),
            };
            PlanView {
                owner: held.map(|l| l.owner.clone()),
                host: held.map(|l| l.host.clone()),
                renewed_at: held.map(|l| l.heartbeat_at),
                expires_at: held.map(|l| l.expires_at),
                plan: name,
                placement,
                problem,
            }
        })
        .collect();
    Ok(FleetView { daemons, plans })
}

/// Seconds from `from` to `to`, as people read them.
fn span(from: Millis, to: Millis) -> String {
    human_duration_secs((to - from) as f64 / 1000.0)
}

/// The fleet as two aligned tables (daemons, then plans), within 100
/// columns for a few labels.
pub fn render_table(view: &FleetView, now: Millis) -> String {
    let mut out = String::new();
    let mut rows = vec![[
        "DAEMON".to_string(),
        "HOST".into(),
        "PID".into(),
        "LABELS".into(),
        "STARTED".into(),
        "HEARTBEAT".into(),
        "PLANS".into(),
    ]];
    for d in &view.daemons {
        let r = &d.record;
        rows.push([
            r.id.clone(),
            r.host.clone(),
            r.pid.to_string(),
            if r.labels.is_empty() {
                "-".into()
            } else {
                r.labels.clone()
            },
            to_datetime(r.started_at)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string(),
            if d.live {
                format!("{} ago", span(r.heartbeat_at, now))
            } else {
                format!("DEAD {} ago", span(r.heartbeat_at, now))
            },
            d.plans.len().to_string(),
        ]);
    }
    table(&mut out, &rows);
    out.push('\n');
    let mut rows = vec![[
        "PLAN".to_string(),
        "OWNER".into(),
        "HOST".into(),
        "RENEWED".into(),
        "EXPIRES IN".into(),
        "PLACEMENT".into(),
        String::new(),
    ]];
    for p in &view.plans {
        rows.push([
            p.plan.clone(),
            p.owner.clone().unwrap_or_else(|| "NONE".into()),
            p.host.clone().unwrap_or_else(|| "-".into()),
            p.renewed_at
                .map(|t| format!("{} ago", span(t, now)))
                .unwrap_or_else(|| "-".into()),
            p.expires_at
                .map(|t| span(now, t))
                .unwrap_or_else(|| "-".into()),
            if p.placement.is_empty() {
                "any".into()
            } else {
                p.placement.join(",")
            },
            p.problem.clone().unwrap_or_default(),
        ]);
    }
    table(&mut out, &rows);
    out
}

/// Left-aligned columns two spaces apart; trailing blanks trimmed.
fn table<const N: usize>(out: &mut String, rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}
