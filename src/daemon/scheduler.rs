//! The scheduler loop: for every plan, its backup, drill and prune slots,
//! each started at slot + its stable jitter offset, within the start window
//! that follows it (`Run::window_end`),
//! or recorded as missed. After downtime the slots that passed are recorded
//! as missed and the next slot runs: no catch-up storm.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, info_span, warn, Instrument};

use super::plans::fingerprint;
use super::Shared;
use crate::backup::BackupError;
use crate::catalog::{JobKind, JobStatus};
use crate::drill::{DrillError, DrillOptions};
use crate::locks::LockError;
use crate::notify::Notification;
use crate::plan::Plan;
use crate::schedule::{jitter_offset, Cron, Run, Timing};
use crate::time::{now_ms, rfc3339, Millis};

/// Slots older than this many are not recorded one by one after downtime.
const MAX_MISSED_RECORDED: usize = 10_000;
/// The scheduler wakes at least this often (reloads, clock jumps).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Pruning runs hourly per plan, jittered over ten minutes.
fn prune_timing() -> Option<Timing> {
    Some(Timing {
        cron: Cron::parse("0 * * * *").ok()?,
        timezone: chrono_tz::UTC,
        jitter: Duration::from_secs(600),
    })
}

fn timing_of(plan: &Plan, kind: JobKind) -> Option<Timing> {
    match kind {
        JobKind::Backup => Some(plan.backup.timing.clone()),
        JobKind::Drill => plan.drill.timing.clone(),
        JobKind::Prune => prune_timing(),
    }
}

fn at(ms: Millis) -> DateTime<Utc> {
    crate::time::to_datetime(ms)
}

fn run_of(plan: &str, kind: JobKind, timing: &Timing, slot: DateTime<Utc>) -> Run {
    let offset = jitter_offset(plan, kind.as_str(), slot, timing.jitter);
    Run {
        slot,
        start: slot + chrono::Duration::from_std(offset).unwrap_or_default(),
    }
}

struct Track {
    plan: Plan,
    kind: JobKind,
    timing: Timing,
    next: Option<Run>,
}

impl Track {
    fn advance(&mut self, after: DateTime<Utc>) {
        self.next = self
            .timing
            .cron
            .next_after(after, self.timing.timezone)
            .map(|slot| run_of(&self.plan.name, self.kind, &self.timing, slot));
    }
}

/// Builds a plan's track for `kind`, recording the slots missed since the
/// last one the catalog knows (daemon down).
async fn init_track(shared: &Shared, plan: &Plan, kind: JobKind) -> Option<Track> {
    let timing = timing_of(plan, kind)?;
    let window = chrono::Duration::from_std(plan.backup.start_window).unwrap_or_default();
    let now = Utc::now();
    let last = match shared.ctx.catalog.last_job_slot(&plan.name, kind).await {
        Ok(l) => l,
        Err(e) => {
            error!(plan = %plan.name, error = %e, "cannot read the catalog; scheduling from now");
            None
        }
    };
    let mut track = Track {
        plan: plan.clone(),
        kind,
        timing,
        next: None,
    };
    // A plan new to the catalog starts now: slots before it was known are
    // not its misses.
    let mut cursor = match last {
        Some(ms) => at(ms).max(now - chrono::Duration::days(366)),
        None => now - window,
    };
    let mut missed = 0usize;
    loop {
        track.advance(cursor);
        let Some(run) = track.next else { break };
        if run.window_end(plan.backup.start_window) >= now {
            break;
        }
        if missed < MAX_MISSED_RECORDED {
            let _ = shared
                .ctx
                .catalog
                .record_missed(
                    &plan.name,
                    kind,
                    run.slot.timestamp_millis(),
                    run.start.timestamp_millis(),
                    "not started within the start window: the daemon was not running",
                    now_ms(),
                )
                .await;
        }
        missed += 1;
        cursor = run.slot;
        if missed > MAX_MISSED_RECORDED * 10 {
            // Years of a per-second schedule: jump to now.
            cursor = now - window;
        }
    }
    if missed > 0 {
        warn!(plan = %plan.name, kind = kind.as_str(), missed, "slots missed while the daemon was down are recorded; the next slot runs (no catch-up)");
    }
    Some(track)
}

async fn build_tracks(shared: &Shared) -> HashMap<(String, JobKind), Track> {
    let plans: Vec<Plan> = shared.plans.read().await.plans().cloned().collect();
    let mut tracks = HashMap::new();
    for plan in &plans {
        add_plan_tracks(shared, plan, &mut tracks).await;
    }
    tracks
}

async fn add_plan_tracks(
    shared: &Shared,
    plan: &Plan,
    tracks: &mut HashMap<(String, JobKind), Track>,
) {
    for kind in [JobKind::Backup, JobKind::Drill, JobKind::Prune] {
        if let Some(t) = init_track(shared, plan, kind).await {
            tracks.insert((plan.name.clone(), kind), t);
        }
    }
}

/// Protection starts when a plan is added: a plan without a complete point
/// for every resource in its primary region gets a backup right away.
async fn first_run_if_needed(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    token: &CancellationToken,
    plan: &Plan,
    tracks: &HashMap<(String, JobKind), Track>,
) {
    // A slot due now is the first backup already.
    let due_soon = tracks
        .get(&(plan.name.clone(), JobKind::Backup))
        .and_then(|t| t.next)
        .is_some_and(|r| r.start <= Utc::now() + chrono::Duration::seconds(5));
    if due_soon {
        return;
    }
    let mut missing = false;
    for res in &plan.resources {
        match shared
            .ctx
            .catalog
            .newest_complete_point(&plan.name, &res.name, &plan.backup.primary_region)
            .await
        {
            Ok(None) => missing = true,
            Ok(_) => {}
            Err(e) => warn!(plan = %plan.name, error = %e, "cannot read the catalog"),
        }
    }
    if missing {
        let now = Utc::now();
        info!(plan = %plan.name, "no complete point yet: first backup now");
        dispatch(
            shared,
            tracker,
            token,
            plan.clone(),
            JobKind::Backup,
            Run {
                slot: now,
                start: now,
            },
            "first-run",
        );
    }
}

pub(crate) async fn run(shared: Arc<Shared>, token: CancellationToken, tracker: TaskTracker) {
    let mut tracks = build_tracks(&shared).await;
    let plans: Vec<Plan> = shared.plans.read().await.plans().cloned().collect();
    for plan in &plans {
        first_run_if_needed(&shared, &tracker, &token, plan, &tracks).await;
    }
    let dir = shared.config.plans_dir.clone();
    let mut seen = fingerprint(&dir);
    let mut watch = tokio::time::interval(shared.config.watch_interval);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = Utc::now();
        for track in tracks.values_mut() {
            while let Some(run) = track.next {
                if run.start > now {
                    break;
                }
                track.advance(run.slot);
                // Only the latest due slot runs; older ones are recorded as
                // superseded (after a pause there is no catch-up storm).
                let superseded = track.next.is_some_and(|n| n.start <= now);
                if superseded || now > run.window_end(track.plan.backup.start_window) {
                    let reason = if superseded {
                        "superseded by a later slot that was also due: no catch-up".to_string()
                    } else {
                        format!(
                            "not started within the start window ({}): the daemon was busy or asleep",
                            humantime::format_duration(track.plan.backup.start_window)
                        )
                    };
                    warn!(plan = %track.plan.name, kind = track.kind.as_str(), slot = %run.slot, "{reason}");
                    let _ = shared
                        .ctx
                        .catalog
                        .record_missed(
                            &track.plan.name,
                            track.kind,
                            run.slot.timestamp_millis(),
                            run.start.timestamp_millis(),
                            &reason,
                            now_ms(),
                        )
                        .await;
                } else {
                    dispatch(
                        &shared,
                        &tracker,
                        &token,
                        track.plan.clone(),
                        track.kind,
                        run,
                        "schedule",
                    );
                }
            }
        }
        let earliest = tracks
            .values()
            .filter_map(|t| t.next.map(|r| r.start))
            .min();
        let sleep = earliest
            .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(sleep) => {}
            _ = shared.reload.notified() => {
                reload(&shared, &tracker, &token, &mut tracks).await;
                seen = fingerprint(&dir);
            }
            _ = watch.tick() => {
                let now_seen = fingerprint(&dir);
                if now_seen != seen {
                    seen = now_seen;
                    reload(&shared, &tracker, &token, &mut tracks).await;
                }
            }
        }
    }
}

async fn reload(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    token: &CancellationToken,
    tracks: &mut HashMap<(String, JobKind), Track>,
) {
    let report = {
        let mut plans = shared.plans.write().await;
        match plans.reload(&shared.config.plans_dir) {
            Ok(r) => r,
            Err(e) => {
                error!(dir = %shared.config.plans_dir.display(), error = %e, "cannot read the plans folder; keeping the plans already loaded");
                shared.reload_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    };
    for d in &report.errors {
        error!(diagnostic = %d, "invalid plan file: keeping its last good version");
    }
    shared
        .reload_errors
        .fetch_add(report.errors.len() as u64, Ordering::Relaxed);
    for name in report.removed.iter().chain(&report.changed) {
        tracks.retain(|(p, _), _| p != name);
    }
    let plans: Vec<Plan> = shared.plans.read().await.plans().cloned().collect();
    for name in report.added.iter().chain(&report.changed) {
        // Its objective or regions may have changed.
        shared.recheck(name);
        if let Some(plan) = plans.iter().find(|p| &p.name == name) {
            add_plan_tracks(shared, plan, tracks).await;
            first_run_if_needed(shared, tracker, token, plan, tracks).await;
        }
    }
    info!(
        plans = plans.len(),
        added = ?report.added,
        changed = ?report.changed,
        removed = ?report.removed,
        errors = report.errors.len(),
        "plans reloaded"
    );
}

/// Starts a job in its own task (tracked for graceful shutdown).
fn dispatch(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    token: &CancellationToken,
    plan: Plan,
    kind: JobKind,
    run: Run,
    trigger: &'static str,
) {
    let span = info_span!("job", plan = %plan.name, kind = kind.as_str(), slot = %rfc3339(run.slot.timestamp_millis()), trigger);
    let shared = shared.clone();
    let token = token.clone();
    tracker.spawn(
        async move { run_job(shared, token, plan, kind, run, trigger).await }.instrument(span),
    );
}

/// What a finished job records, and what to notify about it.
struct Outcome {
    status: JobStatus,
    run_id: Option<i64>,
    drill_id: Option<i64>,
    error: Option<String>,
    notification: Option<Notification>,
}

impl Outcome {
    fn missed(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: JobStatus::Missed,
            run_id: None,
            drill_id: None,
            error: Some(reason.into()),
            notification: None,
        }
    }
    fn failed(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: JobStatus::Failed,
            run_id: None,
            drill_id: None,
            error: Some(reason.into()),
            notification: None,
        }
    }

    /// Failed, and worth a notification.
    fn failed_notified(reason: impl Into<String>, n: Notification) -> Outcome {
        Outcome {
            notification: Some(n),
            ..Outcome::failed(reason)
        }
    }
}

async fn run_job(
    shared: Arc<Shared>,
    token: CancellationToken,
    plan: Plan,
    kind: JobKind,
    run: Run,
    trigger: &'static str,
) {
    let cat = &shared.ctx.catalog;
    let slot = run.slot.timestamp_millis();
    let job = match cat
        .claim_job(
            &plan.name,
            kind,
            slot,
            run.start.timestamp_millis(),
            now_ms(),
        )
        .await
    {
        Ok(Some(id)) => id,
        Ok(None) => return, // this slot already has a row: never run it twice
        Err(e) => {
            error!(error = %e, "cannot record the job; not running it");
            return;
        }
    };
    let outcome = execute(&shared, &token, &plan, kind, run, trigger).await;
    match outcome.status {
        JobStatus::Succeeded => {
            info!("job succeeded");
            if let Some(h) = &shared.heartbeat {
                h.ping();
            }
        }
        JobStatus::Missed => warn!(
            reason = outcome.error.as_deref().unwrap_or(""),
            "job missed"
        ),
        _ => warn!(error = outcome.error.as_deref().unwrap_or(""), "job failed"),
    }
    if let Err(e) = cat
        .finish_job(
            job,
            outcome.status,
            outcome.run_id,
            outcome.drill_id,
            outcome.error.as_deref(),
            now_ms(),
        )
        .await
    {
        error!(error = %e, "cannot record the job's outcome");
    }
    if let Some(n) = &outcome.notification {
        shared.notifier.notify(&plan, n);
    }
    // New or pruned points change the RPO exposure.
    if matches!(kind, JobKind::Backup | JobKind::Prune) {
        shared.recheck(&plan.name);
    }
}

async fn execute(
    shared: &Arc<Shared>,
    token: &CancellationToken,
    plan: &Plan,
    kind: JobKind,
    run: Run,
    trigger: &'static str,
) -> Outcome {
    let region = match kind {
        JobKind::Drill => plan.drill.region.clone(),
        _ => plan.backup.primary_region.clone(),
    };
    let vault = plan
        .regions
        .get(&region)
        .and_then(|r| r.vault.clone())
        .unwrap_or_default();
    let breaker_key = format!("vault {region} {vault}");
    // Backups are what hammers an endpoint on a schedule: they go through
    // the region's breaker.
    if kind == JobKind::Backup {
        if let Err(refusal) = shared.breakers.allow(&breaker_key, now_ms()) {
            return Outcome::missed(refusal.to_string());
        }
    }
    // Wait for a slot in the concurrency limits, but not past the window.
    let deadline = run.window_end(plan.backup.start_window);
    let wait = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let region_limit = shared.region_limit(&region);
    let global = shared.global.clone();
    let permits = tokio::select! {
        _ = token.cancelled() => return Outcome::missed("the daemon was stopping"),
        r = tokio::time::timeout(wait, async move {
            let g = global.acquire_owned().await;
            let r = region_limit.acquire_owned().await;
            (g, r)
        }) => r,
    };
    let _permits = match permits {
        Ok((Ok(g), Ok(r))) => (g, r),
        Ok(_) => return Outcome::failed("concurrency limiter closed"),
        Err(_) => {
            return Outcome::missed(format!(
                "concurrency limit reached ({} jobs at once, {} per region) until the start window closed",
                shared.config.max_jobs, shared.config.max_jobs_per_region
            ))
        }
    };
    let limit = plan.backup.completion_window;
    let ctx = &shared.ctx;
    match kind {
        JobKind::Backup => {
            let work = crate::backup::run(ctx, plan, trigger, Some(run.slot.timestamp_millis()));
            match tokio::time::timeout(limit, work).await {
                Ok(Ok(outcome)) => {
                    shared
                        .breakers
                        .record(&breaker_key, outcome.status != "failed", now_ms());
                    let first_error = outcome.points.iter().find_map(|p| p.error.clone());
                    let notification = Notification::from_backup(plan, &outcome, now_ms());
                    Outcome {
                        status: if outcome.status == "succeeded" {
                            JobStatus::Succeeded
                        } else {
                            JobStatus::Failed
                        },
                        run_id: Some(outcome.run_id),
                        drill_id: None,
                        error: (outcome.status != "succeeded").then(|| {
                            format!(
                                "backup {}: {}",
                                outcome.status,
                                first_error.unwrap_or_default()
                            )
                        }),
                        notification,
                    }
                }
                Ok(Err(BackupError::Lock(LockError::Busy { .. }))) => {
                    Outcome::missed("another backup of this plan was still running")
                }
                Ok(Err(e)) => Outcome::failed_notified(
                    e.to_string(),
                    Notification::backup_failed(plan, None, "failed", &e.to_string(), now_ms()),
                ),
                Err(_) => {
                    // The run was cancelled by dropping it; record its points failed.
                    if let Ok(_lock) =
                        crate::locks::PlanLock::try_acquire(&ctx.locks_dir(), &plan.name, "backup")
                    {
                        let _ = crate::backup::fail_interrupted(&ctx.catalog, plan).await;
                    }
                    shared.breakers.record(&breaker_key, false, now_ms());
                    let reason = format!(
                        "cancelled: still running after the completion window ({})",
                        humantime::format_duration(limit)
                    );
                    let n = Notification::backup_failed(plan, None, "failed", &reason, now_ms());
                    Outcome::failed_notified(reason, n)
                }
            }
        }
        JobKind::Drill => {
            let opts = DrillOptions {
                region: None,
                point: None,
                keep: false,
                trigger: trigger.to_string(),
            };
            match tokio::time::timeout(limit, crate::drill::run(ctx, plan, &opts)).await {
                Ok(Ok(d)) => Outcome {
                    status: if d.record.passed() {
                        JobStatus::Succeeded
                    } else {
                        JobStatus::Failed
                    },
                    run_id: None,
                    drill_id: Some(d.record.id),
                    error: d.record.error.clone(),
                    notification: Notification::from_drill(&ctx.catalog, plan, &d.record).await,
                },
                Ok(Err(DrillError::Lock(LockError::Busy { .. }))) => {
                    Outcome::missed("another drill of this plan was still running")
                }
                Ok(Err(e)) => Outcome::failed_notified(
                    e.to_string(),
                    Notification::drill_error(plan, &region, &e.to_string(), now_ms()),
                ),
                Err(_) => {
                    let _ = crate::drill::recover(ctx, plan).await;
                    let reason = format!(
                        "cancelled: still running after the completion window ({})",
                        humantime::format_duration(limit)
                    );
                    let n = Notification::drill_error(plan, &region, &reason, now_ms());
                    Outcome::failed_notified(reason, n)
                }
            }
        }
        JobKind::Prune => match crate::prune::run(ctx, plan, now_ms(), false).await {
            Ok(pruned) => {
                let failed = pruned.iter().filter(|p| p.result.is_err()).count();
                Outcome {
                    status: if failed == 0 {
                        JobStatus::Succeeded
                    } else {
                        JobStatus::Failed
                    },
                    run_id: None,
                    drill_id: None,
                    error: (failed > 0).then(|| format!("{failed} point(s) could not be deleted")),
                    notification: None,
                }
            }
            Err(crate::prune::PruneError::Lock(LockError::Busy { .. })) => {
                Outcome::missed("a backup or drill of this plan was running")
            }
            Err(e) => Outcome::failed(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
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
    }
}
