//! Keeps the report's days warm: a report reads each closed UTC day's
//! exposure from the catalog ([`crate::report::daily`]) and walks only
//! the days not kept yet, which on a catalog new to this version (or a
//! day just over) is every point of the window: 24 s for a year of 100
//! plans (BENCHMARKS.md). The daemon walks them instead, shortly after it
//! starts and after each UTC midnight, for the plans it runs, one at a
//! time and one day per plan and region once caught up, so the first
//! report of the day reads kept days like every other.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Shared;
use crate::time::Millis;

/// Days kept warm: the longest window reports commonly ask (`--since 365d`).
const KEPT_DAYS: i64 = 366;
/// The first pass waits this long after the start: the backups and drills
/// a restart found late go first.
const FIRST_PASS: Duration = Duration::from_secs(120);
/// How long after midnight the daily pass runs: the last backups of the
/// day have completed by then in most plans.
const AFTER_MIDNIGHT: Millis = 10 * 60 * 1000;
const DAY: Millis = 86_400_000;

/// Until `token` is cancelled: a pass after [`FIRST_PASS`], then one
/// [`AFTER_MIDNIGHT`] past each UTC midnight.
pub(super) async fn run(shared: Arc<Shared>, token: CancellationToken) {
    let mut deadline = tokio::time::Instant::now() + FIRST_PASS;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep_until(deadline) => {}
        }
        // The next pass is reckoned from when this one starts: a pass that
        // ends after midnight does not skip the day.
        let now = shared.clock.now_ms();
        let next = now + until_next_pass(now).as_millis() as Millis;
        pass(&shared, &token).await;
        deadline = shared.clock.deadline(crate::time::to_datetime(next));
    }
}

/// Keeps the days of every plan this daemon runs. A plan that fails is
/// logged and retried at the next pass: a report walks what is missing.
async fn pass(shared: &Shared, token: &CancellationToken) {
    let plans: Vec<_> = shared
        .plans
        .read()
        .await
        .plans()
        .filter(|p| shared.owns(&p.name))
        .cloned()
        .collect();
    let started = std::time::Instant::now();
    for plan in &plans {
        if token.is_cancelled() {
            return;
        }
        let now = shared.clock.now_ms();
        if let Err(e) = crate::report::keep_days(&shared.ctx.catalog, plan, KEPT_DAYS, now).await {
            warn!(plan = %plan.name, error = %e, "cannot keep the report's days; a report will walk them");
        }
    }
    debug!(plans = plans.len(), elapsed = ?started.elapsed(), "report days kept");
}

/// From `now`, how long until the next pass.
fn until_next_pass(now: Millis) -> Duration {
    let today = now - now.rem_euclid(DAY) + AFTER_MIDNIGHT;
    let next = if today > now { today } else { today + DAY };
    Duration::from_millis((next - now) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_pass_is_just_after_the_coming_midnight() {
        let midnight = 20_000 * DAY;
        let at = |ms: Millis| until_next_pass(ms).as_millis() as Millis;
        assert_eq!(at(midnight), AFTER_MIDNIGHT);
        assert_eq!(at(midnight + AFTER_MIDNIGHT - 1), 1);
        assert_eq!(at(midnight + AFTER_MIDNIGHT), DAY);
        assert_eq!(at(midnight + DAY - 1), AFTER_MIDNIGHT + 1);
    }
}
