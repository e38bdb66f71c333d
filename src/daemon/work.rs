//! The daemon's work behind each job kind: where it calls the orchestrators
//! (`backup::run`, `drill::run`, `prune::run`) under the plan's completion
//! window, and turns their results into job outcomes. The one place the
//! daemon depends on their signatures.

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::job::{Job, Outcome, Work};
use super::Shared;
use crate::backup::BackupError;
use crate::catalog::{JobKind, JobStatus, RunStatus};
use crate::drill::{DrillError, DrillOptions};
use crate::locks::LockError;
use crate::notify::Notification;

/// Runs jobs with the real backup, drill and prune.
pub(crate) struct Orchestrators;

impl Work for Orchestrators {
    fn run<'a>(&'a self, shared: &'a Shared, job: &'a Job) -> BoxFuture<'a, Outcome> {
        match job.kind {
            JobKind::Backup => backup(shared, job).boxed(),
            JobKind::Drill => drill(shared, job).boxed(),
            JobKind::Prune => prune(shared, job).boxed(),
        }
    }
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
    let work = crate::backup::run(ctx, plan, job.trigger.as_str(), slot);
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
        Ok(Err(BackupError::Lock(LockError::Busy { .. }))) => {
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
            if let Ok(_lock) =
                crate::locks::PlanLock::try_acquire(&ctx.locks_dir(), &plan.name, "backup")
            {
                let _ = crate::backup::fail_interrupted(&ctx.catalog, plan).await;
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

async fn drill(shared: &Shared, job: &Job) -> Outcome {
    let (ctx, plan) = (&shared.ctx, &job.plan);
    let limit = plan.backup.completion_window;
    let opts = DrillOptions {
        region: None,
        point: None,
        keep: false,
        trigger: job.trigger.as_str().to_string(),
    };
    match tokio::time::timeout(limit, crate::drill::run(ctx, plan, &opts)).await {
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
        Ok(Err(DrillError::Lock(LockError::Busy { .. }))) => {
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

async fn prune(shared: &Shared, job: &Job) -> Outcome {
    match crate::prune::run(&shared.ctx, &job.plan, shared.clock.now_ms(), false).await {
        Ok(pruned) => match pruned.iter().filter(|p| p.result.is_err()).count() {
            0 => Outcome::succeeded(),
            failed => Outcome::failed(format!("{failed} point(s) could not be deleted")),
        },
        Err(crate::prune::PruneError::Lock(LockError::Busy { .. })) => {
            Outcome::missed("a backup or drill of this plan was running")
        }
        Err(e) => Outcome::failed(e.to_string()),
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
