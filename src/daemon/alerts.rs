//! RPO breach alerts: the daemon watches each plan's RPO exposure per
//! region (DESIGN.md: now − the newest data time usable there, worst
//! resource; before a resource's first point, now − the plan's first
//! backup attempt) and notifies when it goes over the objective and when
//! it comes back. Each transition is stored in the catalog before it is
//! notified, so a restart neither repeats nor forgets one.
//!
//! Cheap with many plans: a plan is looked at when one of its jobs
//! finishes (a point completed or was pruned), at the exact instant its
//! exposure would cross the objective if no new point arrives, and at
//! least every [`SWEEP`] (points taken by `lifeboat backup run` outside
//! the daemon). Plans without any webhook are not looked at.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Shared;
use crate::catalog::{AlertState, CatalogError};
use crate::notify::Notification;
use crate::plan::Plan;
use crate::time::Millis;

/// Every plan is looked at least this often.
const SWEEP: Duration = Duration::from_secs(300);

/// A region's RPO exposure now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observation {
    /// The worst resource's newest usable data time (or the protection start).
    pub base: Millis,
    /// When the newest of those points became usable, if every resource has one.
    pub last_completed: Option<Millis>,
}

/// What to notify about a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alert {
    Breach { since: Millis },
    Recovered { since: Millis, ended: Millis },
}

/// Compares what was notified with what is observed: the state to store
/// (when it changed) and what to notify. Pure, so it is tested with tables.
pub(crate) fn transition(
    prev: Option<AlertState>,
    obs: Observation,
    rpo_ms: i64,
    now: Millis,
) -> Option<(AlertState, Option<Alert>)> {
    let breached = now - obs.base > rpo_ms;
    match (prev, breached) {
        (Some(p), b) if p.breached == b => None,
        (_, true) => {
            // The exposure crossed the objective at base + rpo, even if the
            // daemon was not running then.
            let since = obs.base + rpo_ms;
            Some((
                AlertState {
                    breached: true,
                    since,
                },
                Some(Alert::Breach { since }),
            ))
        }
        (None, false) => Some((
            AlertState {
                breached: false,
                since: now,
            },
            None,
        )),
        (Some(p), false) => {
            // The breach ended when the point that lowered the exposure
            // became usable; the detection time bounds it.
            let ended = obs.last_completed.unwrap_or(now).clamp(p.since, now);
            Some((
                AlertState {
                    breached: false,
                    since: ended,
                },
                Some(Alert::Recovered {
                    since: p.since,
                    ended,
                }),
            ))
        }
    }
}

/// Looks at one plan: stores and notifies transitions; returns when the
/// plan should be looked at next.
async fn check_plan(shared: &Shared, plan: &Plan, now: Millis) -> Result<Millis, CatalogError> {
    let cat = &shared.ctx.catalog;
    let sweep = now + SWEEP.as_millis() as i64;
    let Some(start) = cat.first_run_start(&plan.name).await? else {
        // Not protected yet: no exposure. Its first backup job rechecks.
        return Ok(sweep);
    };
    let rpo_ms = plan.rpo.as_millis() as i64;
    let known: HashMap<String, AlertState> =
        cat.rpo_alerts(&plan.name).await?.into_iter().collect();
    let mut next = sweep;
    for region in plan.point_regions() {
        let mut base = Millis::MAX;
        let mut last_completed = Some(Millis::MIN);
        for res in &plan.resources {
            match cat
                .newest_complete_point(&plan.name, &res.name, region)
                .await?
            {
                Some(p) => {
                    base = base.min(p.data_time.unwrap_or(p.started_at));
                    last_completed = last_completed.map(|l| l.max(p.completed_at.unwrap_or(now)));
                }
                None => {
                    base = base.min(start);
                    last_completed = None;
                }
            }
        }
        let obs = Observation {
            base,
            last_completed,
        };
        if now - base <= rpo_ms {
            // Nothing changes before the exposure crosses the objective,
            // unless a point is pruned (its job rechecks).
            next = next.min(base + rpo_ms + 1);
        }
        let Some((state, alert)) = transition(known.get(region).copied(), obs, rpo_ms, now) else {
            continue;
        };
        cat.set_rpo_alert(&plan.name, region, state).await?;
        let exposure = now - base;
        let n = match alert {
            None => continue,
            Some(Alert::Breach { since }) => {
                warn!(plan = %plan.name, region, exposure_ms = exposure, "RPO exposure over the objective");
                Notification::rpo_breach(plan, region, since, exposure, now)
            }
            Some(Alert::Recovered { since, ended }) => {
                tracing::info!(plan = %plan.name, region, "RPO exposure back within the objective");
                Notification::rpo_recovered(plan, region, since, ended, exposure, now)
            }
        };
        shared.notifier.notify(plan, &n);
    }
    Ok(next)
}

/// Runs until `token` is cancelled. `recheck` carries the names of plans
/// to look at now (a job of theirs finished, or they were reloaded).
pub(crate) async fn run(
    shared: Arc<Shared>,
    token: CancellationToken,
    mut recheck: UnboundedReceiver<String>,
) {
    let mut due: HashMap<String, Millis> = HashMap::new();
    loop {
        let plans: Vec<Plan> = shared
            .plans
            .read()
            .await
            .plans()
            .filter(|p| shared.notifier.has_targets(p) && shared.owns(&p.name))
            .cloned()
            .collect();
        due.retain(|name, _| plans.iter().any(|p| &p.name == name));
        let now = shared.clock.now_ms();
        for plan in &plans {
            let at = *due.entry(plan.name.clone()).or_insert(now);
            if at > now {
                continue;
            }
            let next = match check_plan(&shared, plan, now).await {
                Ok(next) => next,
                Err(e) => {
                    warn!(plan = %plan.name, error = %e, "cannot check the RPO exposure; retrying in a minute");
                    now + 60_000
                }
            };
            due.insert(plan.name.clone(), next);
        }
        let wake = due
            .values()
            .min()
            .copied()
            .unwrap_or(now + SWEEP.as_millis() as i64);
        let sleep = Duration::from_millis(
            (wake - shared.clock.now_ms()).clamp(0, SWEEP.as_millis() as i64) as u64,
        );
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(sleep) => {}
            name = recheck.recv() => match name {
                Some(name) => {
                    due.insert(name, 0);
                    // Jobs finishing together: take every name queued.
                    while let Ok(name) = recheck.try_recv() {
                        due.insert(name, 0);
                    }
                }
                None => break,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000;

    fn obs(base: Millis, last_completed: Option<Millis>) -> Observation {
        Observation {
            base,
            last_completed,
        }
    }

    fn state(breached: bool, since: Millis) -> Option<AlertState> {
        Some(AlertState { breached, since })
    }

    #[test]
    fn transitions_are_notified_once() {
        let rpo = 15 * M;
        // First look, within: stored quietly.
        assert_eq!(
            transition(None, obs(0, Some(M)), rpo, 10 * M),
            Some((
                AlertState {
                    breached: false,
                    since: 10 * M
                },
                None
            ))
        );
        // First look, over: notified, dated when the exposure crossed.
        assert_eq!(
            transition(None, obs(0, Some(M)), rpo, 20 * M),
            Some((
                AlertState {
                    breached: true,
                    since: 15 * M
                },
                Some(Alert::Breach { since: 15 * M })
            ))
        );
        // Exactly at the objective is within (breach is "exceeds").
        assert_eq!(transition(state(false, 0), obs(0, None), rpo, 15 * M), None);
        // Still over, or still within: nothing to store or say.
        assert_eq!(
            transition(state(true, 15 * M), obs(0, None), rpo, 60 * M),
            None
        );
        assert_eq!(
            transition(state(false, 0), obs(50 * M, Some(51 * M)), rpo, 60 * M),
            None
        );
        // Within -> over.
        assert_eq!(
            transition(state(false, 0), obs(40 * M, Some(41 * M)), rpo, 56 * M),
            Some((
                AlertState {
                    breached: true,
                    since: 55 * M
                },
                Some(Alert::Breach { since: 55 * M })
            ))
        );
        // Over -> within: ended when the new point became usable.
        assert_eq!(
            transition(state(true, 55 * M), obs(58 * M, Some(59 * M)), rpo, 62 * M),
            Some((
                AlertState {
                    breached: false,
                    since: 59 * M
                },
                Some(Alert::Recovered {
                    since: 55 * M,
                    ended: 59 * M
                })
            ))
        );
        // A completion time outside the breach is clamped into it.
        assert_eq!(
            transition(state(true, 55 * M), obs(58 * M, Some(10 * M)), rpo, 62 * M),
            Some((
                AlertState {
                    breached: false,
                    since: 55 * M
                },
                Some(Alert::Recovered {
                    since: 55 * M,
                    ended: 55 * M
                })
            ))
        );
    }
}
