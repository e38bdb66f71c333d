//! The daemon's work behind each job kind: where it calls the orchestrators
//! (`backup::run`, `drill::run`, `prune::run`, `verify::run`) under the
//! plan's completion window, and turns their results into job outcomes. The
//! one place the daemon depends on their signatures.
//!
//! A verify job and a prune job of one plan never run at once: both take
//! the plan's `verify` lease (prune deletes points a verify would otherwise
//! find missing). `lifeboat prune` by hand takes no such lease; for it, the
//! catalog marks a point damaged only while it is complete (or damaged),
//! and a verify job counts only the points still damaged once it is done.

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tracing::Instrument;

use super::job::{Job, Outcome, Work};
use super::Shared;
use crate::backup::BackupError;
use crate::catalog::{Catalog, PointStatus};
use crate::catalog::{JobKind, JobStatus, RunStatus};
use crate::drill::{DrillError, DrillOptions};
use crate::lease::{self, Lease, LeaseError};
use crate::notify::Notification;
use crate::plan::{Plan, VerifyDepth};
use crate::time::{rfc3339, Millis};
use crate::verify::{Checked, Depth, Subset, Verdict, VerifyOptions};

/// Runs jobs with the real backup, drill and prune.
pub(crate) struct Orchestrators;

impl Work for Orchestrators {
    fn run<'a>(&'a self, shared: &'a Shared, job: &'a Job) -> BoxFuture<'a, Outcome> {
        match job.kind {
            JobKind::Backup => backup(shared, job).boxed(),
            JobKind::Drill => drill(shared, job).boxed(),
            JobKind::Prune => prune_and_sweep(shared, job).boxed(),
            JobKind::Verify => verify(shared, job).boxed(),
        }
    }
}

/// The span a backup or drill runs in: the job's, but without the plan,
/// which the orchestrator's own span carries (a log line said `plan=`
/// twice otherwise). A root span, so the job's does not show around it.
fn orchestrator_span(job: &Job) -> tracing::Span {
    tracing::info_span!(
        parent: None,
        "job",
        kind = job.kind.as_str(),
        slot = %rfc3339(job.run.slot.timestamp_millis()),
        trigger = job.trigger.as_str()
    )
}

fn over_completion_window(limit: Duration) -> String {
    format!(
        "cancelled: still running after the completion window ({})",
        humantime::format_duration(limit)
    )
}

async fn backup(shared: &Shared, job: &Job) -> Outcome {
    let (ctx, plan) = (&shared.ctx, &job.plan);
    let limit = plan.backup.completion_window;
    let slot = Some(job.run.slot.timestamp_millis());
    let work = crate::backup::run(ctx, plan, job.trigger.as_str(), slot)
        .instrument(orchestrator_span(job));
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(outcome)) => {
            let succeeded = outcome.status == RunStatus::Succeeded;
            let first_error = outcome.points.iter().find_map(|p| p.error.clone());
            Outcome {
                status: if succeeded {
                    JobStatus::Succeeded
                } else {
                    JobStatus::Failed
                },
                run_id: Some(outcome.run_id),
                drill_id: None,
                error: (!succeeded).then(|| {
                    format!(
                        "backup {}: {}",
                        outcome.status,
                        first_error.unwrap_or_default()
                    )
                }),
                notification: Notification::from_backup(plan, &outcome, shared.clock.now_ms()),
                vault_ok: Some(outcome.status != RunStatus::Failed),
            }
        }
        Ok(Err(BackupError::Lock(LeaseError::Busy { .. }))) => {
            Outcome::missed("another backup of this plan was still running")
        }
        Ok(Err(e)) => Outcome::failed_notified(
            e.to_string(),
            Notification::backup_failed(
                plan,
                None,
                "failed",
                &e.to_string(),
                shared.clock.now_ms(),
            ),
        ),
        Err(_) => {
            // The run was cancelled by dropping it; record its points failed.
            if let Ok(lease) = Lease::acquire(&ctx.catalog, &plan.name, lease::BACKUP).await {
                let _ = crate::backup::fail_interrupted(&ctx.catalog, plan).await;
                lease.release().await;
            }
            let reason = over_completion_window(limit);
            let n =
                Notification::backup_failed(plan, None, "failed", &reason, shared.clock.now_ms());
            Outcome {
                vault_ok: Some(false),
                ..Outcome::failed_notified(reason, n)
            }
        }
    }
}

/// Why a scheduled drill has nothing to restore yet: the resources of
/// which no point was ever complete in the drill region (a new plan whose
/// first backup or copy has not finished). `None` when every resource has
/// had one — then a missing point is the drill's failure to report.
async fn not_ready(shared: &Shared, plan: &Plan) -> Result<Option<String>, String> {
    let region = &plan.drill.region;
    let mut waiting = Vec::new();
    for res in &plan.resources {
        let ever = shared
            .ctx
            .catalog
            .ever_complete(&plan.name, &res.name, region)
            .await
            .map_err(|e| e.to_string())?;
        if !ever {
            waiting.push(format!("`{}`", res.name));
        }
    }
    Ok((!waiting.is_empty()).then(|| {
        format!(
            "skipped: no complete point yet of {} in region `{region}` (the plan's first backup has not reached it)",
            waiting.join(", ")
        )
    }))
}

async fn drill(shared: &Shared, job: &Job) -> Outcome {
    let (ctx, plan) = (&shared.ctx, &job.plan);
    match not_ready(shared, plan).await {
        Ok(Some(why)) => return Outcome::skipped(why),
        Ok(None) => {}
        Err(e) => return Outcome::failed(e),
    }
    let limit = plan.backup.completion_window;
    let opts = DrillOptions {
        region: None,
        point: None,
        keep: false,
        trigger: job.trigger.as_str().to_string(),
    };
    let work = crate::drill::run(ctx, plan, &opts).instrument(orchestrator_span(job));
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(d)) => Outcome {
            status: if d.record.passed() {
                JobStatus::Succeeded
            } else {
                JobStatus::Failed
            },
            drill_id: Some(d.record.id),
            error: d.record.error.clone(),
            notification: Notification::from_drill(&ctx.catalog, plan, &d.record).await,
            ..Outcome::succeeded()
        },
        Ok(Err(DrillError::Lock(LeaseError::Busy { .. }))) => {
            Outcome::missed("another drill of this plan was still running")
        }
        Ok(Err(e)) => Outcome::failed_notified(
            e.to_string(),
            Notification::drill_error(plan, job.region(), &e.to_string(), shared.clock.now_ms()),
        ),
        Err(_) => {
            let _ = crate::drill::recover(ctx, plan).await;
            let reason = over_completion_window(limit);
            let n = Notification::drill_error(plan, job.region(), &reason, shared.clock.now_ms());
            Outcome::failed_notified(reason, n)
        }
    }
}

/// A prune, then the sweep of what crashed processes left
/// (`leftovers::sweep`, which needs no lock): its failures are logged
/// and retried by the next prune, and change nothing of the prune's
/// outcome.
async fn prune_and_sweep(shared: &Shared, job: &Job) -> Outcome {
    let outcome = prune(shared, job).await;
    // File times are the wall clock's, whatever the scheduler's clock.
    let now = crate::time::now_ms();
    let grace = crate::leftovers::UNOWNED_GRACE;
    if let Err(e) = crate::leftovers::sweep(&shared.ctx, &job.plan, grace, now).await {
        // The job's span says which plan.
        tracing::warn!(error = %e, "cannot look for what crashed processes left");
    }
    outcome
}

async fn prune(shared: &Shared, job: &Job) -> Outcome {
    let _verify = match Lease::acquire(&shared.ctx.catalog, &job.plan.name, lease::VERIFY).await {
        Ok(lease) => lease,
        Err(LeaseError::Busy { .. }) => {
            return Outcome::missed("a verify of this plan was running")
        }
        Err(e) => return Outcome::failed(e.to_string()),
    };
    match crate::prune::run(&shared.ctx, &job.plan, shared.clock.now_ms(), false).await {
        Ok(pruned) => match pruned.iter().filter(|p| p.result.is_err()).count() {
            0 => Outcome::succeeded(),
            failed => Outcome::failed(format!("{failed} point(s) could not be deleted")),
        },
        Err(crate::prune::PruneError::Lock(LeaseError::Busy { .. })) => {
            Outcome::missed("a backup, drill or restore of this plan was running")
        }
        Err(e) => Outcome::failed(e.to_string()),
    }
}

/// Points named in a verify job's error, at most; the rest are counted.
const MAX_POINTS_NAMED: usize = 5;

async fn verify(shared: &Shared, job: &Job) -> Outcome {
    let (ctx, plan) = (&shared.ctx, &job.plan);
    let Some(spec) = &plan.verify else {
        // Only plans with [verify] have a verify track: not reached, but
        // recorded rather than a panic.
        return Outcome::failed("the plan has no [verify] table");
    };
    let _lease = match Lease::acquire(&ctx.catalog, &plan.name, lease::VERIFY).await {
        Ok(lease) => lease,
        Err(LeaseError::Busy { .. }) => {
            return Outcome::missed("a prune or another verify of this plan was running")
        }
        Err(e) => return Outcome::failed(e.to_string()),
    };
    let depth = match spec.depth {
        VerifyDepth::Presence => Depth::Presence,
        VerifyDepth::ReadData => Depth::ReadData,
        VerifyDepth::ReadDataSubset { parts } => {
            let slot = job.run.slot.timestamp_millis();
            match ctx
                .catalog
                .jobs_ran_before(&plan.name, JobKind::Verify, slot)
                .await
            {
                Ok(ran) => Depth::ReadDataSubset(rotation(ran, parts)),
                Err(e) => return Outcome::failed(e.to_string()),
            }
        }
    };
    let opts = VerifyOptions {
        region: None,
        depth,
    };
    let limit = plan.backup.completion_window;
    let at = || shared.clock.now_ms();
    match tokio::time::timeout(limit, crate::verify::run(ctx, plan, &opts, |_| {})).await {
        Ok(Ok(checked)) => verify_outcome(&ctx.catalog, plan, &checked, at()).await,
        Ok(Err(e)) => {
            let reason = format!("verify could not run: {e}");
            let n = Notification::verify_failed(plan, Vec::new(), Vec::new(), &reason, at());
            Outcome::failed_notified(reason, n)
        }
        Err(_) => {
            // What was checked before is recorded; the rest waits for the
            // next run.
            let reason = over_completion_window(limit);
            let n = Notification::verify_failed(plan, Vec::new(), Vec::new(), &reason, at());
            Outcome::failed_notified(reason, n)
        }
    }
}

/// The part of `read_data_subset = "1/parts"` a verify job reads, after
/// `ran` verify jobs of the plan: 1, 2, … parts, 1, …
fn rotation(ran: i64, parts: u64) -> Subset {
    let parts = parts.max(1);
    Subset {
        n: u64::try_from(ran).unwrap_or(0) % parts + 1,
        m: parts,
    }
}

/// A verify job succeeds when every point is known good; damaged points,
/// or points that could not be checked, fail it and are notified.
async fn verify_outcome(cat: &Catalog, plan: &Plan, checked: &[Checked], now: Millis) -> Outcome {
    let mut damaged = Vec::new();
    for c in checked.iter().filter(|c| c.verdict == Verdict::Damaged) {
        // A point pruned while it was read is not damage: the catalog did
        // not mark it, and it is not counted.
        match cat.point(c.point).await {
            Ok(Some(p)) if p.status != PointStatus::Damaged => {}
            _ => damaged.push(c),
        }
    }
    let unchecked: Vec<&Checked> = checked
        .iter()
        .filter(|c| c.verdict == Verdict::Unchecked)
        .collect();
    if damaged.is_empty() && unchecked.is_empty() {
        return Outcome::succeeded();
    }
    let mut parts = Vec::new();
    if !damaged.is_empty() {
        parts.push(format!(
            "{} point(s) damaged: {}",
            damaged.len(),
            named(&damaged, |c| match c.damaged_since {
                Some(since) => format!("{}, damaged since {}", c.detail, rfc3339(since)),
                None => c.detail.clone(),
            })
        ));
    }
    if !unchecked.is_empty() {
        parts.push(format!(
            "{} point(s) could not be checked (left as they were): {}",
            unchecked.len(),
            named(&unchecked, |c| c.detail.clone())
        ));
    }
    let reason = parts.join("; ");
    let ids = |v: &[&Checked]| v.iter().map(|c| c.point).collect::<Vec<_>>();
    let n = Notification::verify_failed(plan, ids(&damaged), ids(&unchecked), &reason, now);
    Outcome::failed_notified(reason, n)
}

/// `resource region point N (why)`, for the first few points.
fn named(points: &[&Checked], why: impl Fn(&Checked) -> String) -> String {
    let mut text: Vec<String> = points
        .iter()
        .take(MAX_POINTS_NAMED)
        .map(|c| format!("{} {} point {} ({})", c.resource, c.region, c.point, why(c)))
        .collect();
    if points.len() > MAX_POINTS_NAMED {
        text.push(format!("and {} more", points.len() - MAX_POINTS_NAMED));
    }
    text.join("; ")
}

#[cfg(test)]
mod tests {
    use crate::catalog::{Catalog, JobStatus};
    use crate::plan::NotifyEvent;
    use crate::resource::Kind;
    use crate::time::rfc3339;
    use crate::verify::{Checked, Verdict};

    /// The daemon spawns these futures: they must be `Send` for any
    /// lifetime (sqlx's PostgreSQL executor calls written as
    /// `raw_sql(..).execute(&mut conn)` once broke this).
    #[allow(dead_code)]
    fn job_futures_are_send(
        ctx: &'static crate::context::Context,
        plan: &'static crate::plan::Plan,
        opts: &'static crate::drill::DrillOptions,
    ) {
        fn is_send<T: Send>(_: T) {}
        is_send(crate::backup::run(ctx, plan, "x", None));
        is_send(crate::drill::run(ctx, plan, opts));
        is_send(crate::prune::run(ctx, plan, 0, false));
        let opts = crate::verify::VerifyOptions {
            region: None,
            depth: crate::verify::Depth::Presence,
        };
        is_send(async move { crate::verify::run(ctx, plan, &opts, |_| {}).await });
    }

    /// A point of `files` in `dr`, in `status`; returns its id.
    async fn point(cat: &Catalog, status: &str) -> i64 {
        cat.query_i64(&format!(
            "INSERT INTO points (plan, resource, kind, region, status, started_at, data_time, completed_at)
             VALUES ('shop', 'files', 'path', 'dr', '{status}', 1, 1, 2) RETURNING id"
        ))
        .await
        .unwrap()
        .unwrap()
    }

    fn checked(point: i64, verdict: Verdict, detail: &str) -> Checked {
        Checked {
            point,
            plan: "shop".into(),
            region: "dr".into(),
            resource: "files".into(),
            kind: Kind::Path,
            data_time: Some(1),
            size_bytes: Some(10),
            read_data: false,
            bytes_read: 0,
            verdict,
            detail: detail.into(),
            damaged_since: (verdict == Verdict::Damaged).then_some(1_000),
        }
    }

    fn plan() -> crate::plan::Plan {
        let text = r#"name = "shop"
owner = "sre@example.com"
rto = "10m"
rpo = "1h"

[backup]
schedule = "*/15 * * * *"
primary_region = "primary"
copy_to = ["dr"]

[regions.primary]
vault = "file:///srv/vaults/primary"

[regions.dr]
vault = "file:///srv/vaults/dr"

[[resources]]
name = "files"
kind = "path"
path = "/srv/files"

[drill]
region = "dr"

[verify]
schedule = "0 5 * * *"
"#;
        crate::plan::parse_plan(std::path::Path::new("shop.toml"), text)
            .unwrap()
            .0
    }

    #[tokio::test]
    async fn a_verify_job_fails_on_damage_or_unchecked_points_never_on_a_point_pruned_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::testing::open(dir.path()).await;
        let plan = plan();
        let (good, damaged, pruned, unreachable) = (
            point(&cat, "complete").await,
            point(&cat, "damaged").await,
            point(&cat, "deleted").await,
            point(&cat, "complete").await,
        );
        let ok = checked(good, Verdict::Ok, "artifact present, 10 B");

        let all_good = [
            ok.clone(),
            checked(damaged, Verdict::Repaired, "whole again"),
        ];
        let o = super::verify_outcome(&cat, &plan, &all_good, 5_000).await;
        assert_eq!(
            (o.status, o.error, o.notification.is_none()),
            (JobStatus::Succeeded, None, true)
        );

        // The pruned point was found missing, but the catalog never marked
        // it: it is not damage.
        let found = [
            ok.clone(),
            checked(damaged, Verdict::Damaged, "artifact missing at file:///v/1"),
            checked(pruned, Verdict::Damaged, "artifact missing at file:///v/2"),
        ];
        let o = super::verify_outcome(&cat, &plan, &found, 5_000).await;
        assert_eq!(o.status, JobStatus::Failed);
        let expected = format!(
            "1 point(s) damaged: files dr point {damaged} (artifact missing at file:///v/1, damaged since {})",
            rfc3339(1_000)
        );
        assert_eq!(o.error.as_deref(), Some(expected.as_str()));
        let n = o.notification.expect("a notification");
        assert_eq!(n.event, NotifyEvent::VerifyFailed);
        assert_eq!(n.damaged_points, [damaged]);
        assert!(n.text.contains("verify of plan shop FAILED"), "{}", n.text);

        // An outage fails the job too, saying the points were left alone.
        let outage = [
            ok,
            checked(unreachable, Verdict::Unchecked, "vault unreachable"),
        ];
        let o = super::verify_outcome(&cat, &plan, &outage, 5_000).await;
        assert_eq!(o.status, JobStatus::Failed);
        assert_eq!(
            o.error.as_deref(),
            Some(format!("1 point(s) could not be checked (left as they were): files dr point {unreachable} (vault unreachable)").as_str())
        );
        let n = o.notification.expect("a notification");
        assert_eq!(
            (n.damaged_points.len(), n.unchecked_points.clone()),
            (0, vec![unreachable])
        );
    }

    #[test]
    fn read_data_subset_parts_rotate_one_run_after_the_other() {
        let parts: Vec<u64> = (0..7).map(|ran| super::rotation(ran, 3).n).collect();
        assert_eq!(parts, [1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(super::rotation(4, 3).m, 3);
        assert_eq!(super::rotation(5, 1).n, 1);
    }
}
