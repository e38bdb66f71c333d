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
    /// Whether the live daemons have loaded different plans (names or
    /// placements): a plan placed on a daemon without it runs nowhere.
    pub plans_differ: bool,
}

/// One daemon.
#[derive(Debug, Serialize)]
pub struct DaemonView {
    /// Its row in `daemons`.
    #[serde(flatten)]
    pub record: DaemonRecord,
    /// Whether its heartbeat is current (`expires_at` in the future); a
    /// dead daemon stays listed for a day after its expiry, then the live
    /// ones forget it (a graceful stop removes the row at once).
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

    /// Whether anything needs an operator: a plan without owner, or
    /// daemons that load different plans.
    pub fn troubled(&self) -> bool {
        self.unowned() > 0 || self.plans_differ
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
    // A daemon that has not finished its first round has no digest yet.
    let mut digests: Vec<&str> = live
        .iter()
        .map(|d| d.plans_digest.as_str())
        .filter(|d| !d.is_empty())
        .collect();
    digests.sort_unstable();
    digests.dedup();
    let plans_differ = digests.len() > 1;
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
                None if plans_differ => Some(
                    "not taken: the daemons load different plans (LOADED), and the one it is placed on may lack it"
                        .to_string(),
                ),
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
    Ok(FleetView {
        daemons,
        plans,
        plans_differ,
    })
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
        "LOADED".into(),
        "OWNS".into(),
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
            format!("{} {}", r.plans_loaded, r.plans_digest),
            d.plans.len().to_string(),
        ]);
    }
    if !view.daemons.is_empty() {
        table(&mut out, &rows);
        out.push('\n');
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::NewLease;

    fn daemon(id: &str, labels: &str, digest: &str, expires_at: Millis) -> DaemonRecord {
        DaemonRecord {
            id: id.to_string(),
            host: format!("host-{id}"),
            pid: 7,
            labels: labels.to_string(),
            started_at: 0,
            heartbeat_at: expires_at - 30_000,
            expires_at,
            plans_loaded: 2,
            plans_digest: digest.to_string(),
        }
    }

    async fn own(cat: &Catalog, plan: &str, owner: &str, expires_at: Millis) {
        let lease = NewLease {
            plan,
            kind: lease::OWNER,
            owner,
            pid: 7,
            host: "h",
            node: "n",
            now: expires_at - 30_000,
            expires_at,
        };
        assert!(cat.take_lease(&lease, None).await.unwrap());
    }

    #[tokio::test]
    async fn the_view_names_owners_dead_daemons_and_why_a_plan_runs_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::testing::open(dir.path()).await;
        let now = 100_000;
        cat.register_daemon(&daemon("a", "host-a", "d1", now + 20_000))
            .await
            .unwrap();
        cat.register_daemon(&daemon("b", "", "d1", now + 20_000))
            .await
            .unwrap();
        cat.register_daemon(&daemon("dead", "gpu", "d1", now - 1))
            .await
            .unwrap();
        own(&cat, "shop", "a", now + 20_000).await;
        // A lease of the dead daemon, expired: not an owner.
        own(&cat, "render", "dead", now - 1).await;
        let view = build(&cat, &[], now).await.unwrap();
        assert!(!view.plans_differ);
        let ids: Vec<(&str, bool, usize)> = view
            .daemons
            .iter()
            .map(|d| (d.record.id.as_str(), d.live, d.plans.len()))
            .collect();
        assert_eq!(ids, [("a", true, 1), ("b", true, 0), ("dead", false, 0)]);
        assert_eq!(view.plans.len(), 1, "only live owners without plans loaded");
        assert_eq!(view.plans[0].owner.as_deref(), Some("a"));
        assert!(!view.troubled());

        // With the plans loaded here: `render` needs a label no live
        // daemon has; the table says so.
        let text = |placement: &str| {
            format!(
                "name = \"render\"\nowner = \"o\"\nrto = \"1h\"\nrpo = \"1h\"\n{placement}\n[backup]\nschedule = \"0 * * * *\"\nprimary_region = \"p\"\n[regions.p]\nvault = \"file:///v\"\n[[resources]]\nname = \"f\"\nkind = \"path\"\npath = \"/srv\"\n"
            )
        };
        let (render, _) = crate::plan::parse_plan(
            std::path::Path::new("render.toml"),
            &text("placement = { labels = [\"gpu\"] }"),
        )
        .unwrap();
        let view = build(&cat, &[render], now).await.unwrap();
        let p = view.plans.iter().find(|p| p.plan == "render").unwrap();
        assert_eq!(p.owner, None);
        assert_eq!(
            p.problem.as_deref(),
            Some("no live daemon carries the labels gpu")
        );
        assert_eq!(view.unowned(), 1);
        let table = render_table(&view, now);
        assert!(table.contains("DEAD"), "{table}");
        assert!(
            table.contains("no live daemon carries the labels gpu"),
            "{table}"
        );

        // Daemons that loaded different plans are a problem of their own.
        cat.register_daemon(&daemon("b", "", "d2", now + 20_000))
            .await
            .unwrap();
        let view = build(&cat, &[], now).await.unwrap();
        assert!(view.plans_differ);
        assert!(view.troubled());
    }
}
