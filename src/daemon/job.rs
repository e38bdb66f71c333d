//! One job of the scheduler, from its claim to its recorded outcome:
//! claim (a `running` row for its plan, kind and slot, so a slot never runs
//! twice) → admit (a backup passes its vault's circuit breaker) → queue
//! (for the concurrency limits, until the start window closes) → work (a
//! backup, drill or prune: see [`Work`]) → record (the job row, the
//! notification, the heartbeat).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, info_span, warn, Instrument};

use super::Shared;
use crate::catalog::{JobKind, JobStatus};
use crate::notify::Notification;
use crate::plan::Plan;
use crate::schedule::Run;
use crate::time::rfc3339;

/// Why a job was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Its slot came.
    Schedule,
    /// The plan has no complete point yet (see the scheduler's first-run rule).
    FirstRun,
}

impl Trigger {
    /// As recorded with the backup run or drill.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::FirstRun => "first-run",
        }
    }
}

/// A job to run: one slot of one plan's track.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub plan: Plan,
    pub kind: JobKind,
    pub run: Run,
    pub trigger: Trigger,
}

impl Job {
    /// Where the job puts its load: the drill region for drills, the
    /// primary region for backups, and for prunes and verifies (which
    /// touch every region, the primary always).
    pub fn region(&self) -> &str {
        match self.kind {
            JobKind::Drill => &self.plan.drill.region,
            JobKind::Backup | JobKind::Prune | JobKind::Verify => &self.plan.backup.primary_region,
        }
    }

    /// The circuit breaker of the job's region's vault.
    fn breaker(&self) -> String {
        let region = self.region();
        let vault = self
            .plan
            .regions
            .get(region)
            .and_then(|r| r.vault.as_deref())
            .unwrap_or_default();
        format!("vault {region} {vault}")
    }
}

/// What a finished job records, and what to notify about it.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub status: JobStatus,
    pub run_id: Option<i64>,
    pub drill_id: Option<i64>,
    pub error: Option<String>,
    pub notification: Option<Notification>,
    /// Whether the job found its vault working, for the breaker (backups
    /// only: they are what hammers an endpoint on a schedule).
    pub vault_ok: Option<bool>,
}

impl Outcome {
    pub fn succeeded() -> Outcome {
        Outcome {
            status: JobStatus::Succeeded,
            run_id: None,
            drill_id: None,
            error: None,
            notification: None,
            vault_ok: None,
        }
    }

    pub fn missed(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: JobStatus::Missed,
            error: Some(reason.into()),
            ..Outcome::succeeded()
        }
    }

    /// Nothing to do yet (see [`JobStatus::Skipped`]), with why.
    pub fn skipped(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: JobStatus::Skipped,
            error: Some(reason.into()),
            ..Outcome::succeeded()
        }
    }

    pub fn failed(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: JobStatus::Failed,
            error: Some(reason.into()),
            ..Outcome::succeeded()
        }
    }

    /// Failed, and worth a notification.
    pub fn failed_notified(reason: impl Into<String>, n: Notification) -> Outcome {
        Outcome {
            notification: Some(n),
            ..Outcome::failed(reason)
        }
    }
}

/// The work of a job once it may start: a backup, a drill, a prune or a
/// verify.
/// The daemon's is `work::Orchestrators`; the scheduler's tests put in one
/// that records what started when.
pub(crate) trait Work: Send + Sync {
    fn run<'a>(&'a self, shared: &'a Shared, job: &'a Job) -> BoxFuture<'a, Outcome>;
}

/// Starts a job in its own task, tracked for graceful shutdown.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    token: &CancellationToken,
    job: Job,
) {
    let span = info_span!("job", plan = %job.plan.name, kind = job.kind.as_str(), slot = %rfc3339(job.run.slot.timestamp_millis()), trigger = job.trigger.as_str());
    let shared = shared.clone();
    let token = token.clone();
    tracker.spawn(async move { run(&shared, &token, &job).await }.instrument(span));
}

async fn run(shared: &Arc<Shared>, token: &CancellationToken, job: &Job) {
    let Some(id) = claim(shared, job).await else {
        return;
    };
    let outcome = execute(shared, token, job).await;
    record(shared, job, id, &outcome).await;
}

/// The job's row, inserted as running; `None` when the slot already has
/// one (never run a slot twice) or the catalog cannot be written.
async fn claim(shared: &Shared, job: &Job) -> Option<i64> {
    let claimed = shared
        .ctx
        .catalog
        .claim_job(
            &job.plan.name,
            job.kind,
            job.run.slot.timestamp_millis(),
            job.run.start.timestamp_millis(),
            shared.clock.now_ms(),
        )
        .await;
    match claimed {
        Ok(id) => id,
        Err(e) => {
            error!(error = %e, "cannot record the job; not running it");
            None
        }
    }
}

async fn execute(shared: &Shared, token: &CancellationToken, job: &Job) -> Outcome {
    let breaker = job.breaker();
    if job.kind == JobKind::Backup {
        if let Err(refusal) = shared.breakers.allow(&breaker, shared.clock.now_ms()) {
            return Outcome::missed(refusal.to_string());
        }
    }
    let _permits = match queue(shared, token, job).await {
        Ok(permits) => permits,
        Err(outcome) => return outcome,
    };
    let outcome = shared.work.run(shared, job).await;
    if let Some(ok) = outcome.vault_ok {
        shared.breakers.record(&breaker, ok, shared.clock.now_ms());
    }
    outcome
}

/// What a job holds while it works: its plan's turn, then a place in the
/// global and the region's concurrency limits.
type Admission = (PlanTurn, OwnedSemaphorePermit, OwnedSemaphorePermit);

/// A plan's turn, alone (a prune) or shared (see [`Shared::plan_turn`]).
enum PlanTurn {
    Alone(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
}

/// Waits for the plan's turn, then for a place in the global and the
/// region's concurrency limits, but not past the start window. The turn
/// comes first, so a job waiting for it holds no place another plan's job
/// could use.
async fn queue(
    shared: &Shared,
    token: &CancellationToken,
    job: &Job,
) -> Result<Admission, Outcome> {
    let deadline = job.run.window_end(job.plan.backup.start_window);
    let turn = shared.plan_turn(&job.plan.name);
    let alone = job.kind == JobKind::Prune;
    let global = shared.global.clone();
    let region = shared.region_limit(job.region());
    let mut waited_for_turn = true;
    let admitted = async {
        let turn = if alone {
            PlanTurn::Alone(turn.write_owned().await)
        } else {
            PlanTurn::Shared(turn.read_owned().await)
        };
        waited_for_turn = false;
        let g = global.acquire_owned().await;
        let r = region.acquire_owned().await;
        (turn, g, r)
    };
    tokio::select! {
        _ = token.cancelled() => Err(Outcome::missed("the daemon was stopping")),
        r = tokio::time::timeout_at(shared.clock.deadline(deadline), admitted) => match r {
            Ok((turn, Ok(g), Ok(r))) => Ok((turn, g, r)),
            Ok(_) => Err(Outcome::failed("concurrency limiter closed")),
            Err(_) if waited_for_turn => Err(Outcome::missed(if alone {
                "the plan's other jobs ran until the start window closed"
            } else {
                "the plan's prune ran until the start window closed"
            })),
            Err(_) => Err(Outcome::missed(format!(
                "concurrency limit reached ({} jobs at once, {} per region) until the start window closed",
                shared.config.max_jobs, shared.config.max_jobs_per_region
            ))),
        },
    }
}

/// Logs and records the outcome, notifies, and pings the heartbeat.
async fn record(shared: &Shared, job: &Job, id: i64, outcome: &Outcome) {
    let reason = outcome.error.as_deref().unwrap_or("");
    match outcome.status {
        JobStatus::Succeeded => {
            info!("job succeeded");
            if let Some(h) = &shared.heartbeat {
                h.ping();
            }
        }
        JobStatus::Missed => warn!(reason, "job missed"),
        JobStatus::Skipped => info!(reason, "job skipped"),
        JobStatus::Failed | JobStatus::Running => warn!(error = reason, "job failed"),
    }
    let finished = shared
        .ctx
        .catalog
        .finish_job(
            id,
            outcome.status,
            outcome.run_id,
            outcome.drill_id,
            outcome.error.as_deref(),
            shared.clock.now_ms(),
        )
        .await;
    if let Err(e) = finished {
        error!(error = %e, "cannot record the job's outcome");
    }
    if let Some(n) = &outcome.notification {
        shared.notifier.notify(&job.plan, n);
    }
    // New, pruned, damaged or repaired points change the RPO exposure.
    if matches!(job.kind, JobKind::Backup | JobKind::Prune | JobKind::Verify) {
        shared.recheck(&job.plan.name);
    }
}
