//! The scheduler: for every plan, a backup, a drill, a prune and a verify
//! track; each slot starts at slot + its stable jitter offset, within the
//! start window that follows (see [`Run::window_end`]), or is recorded as missed
//! (DESIGN.md's missed slot). After downtime the
//! slots whose window closed are recorded as missed and only the newest
//! slot still inside its window runs: no catch-up storm.
//!
//! Three layers, so the rules can be tested at exact instants: a [`Track`]
//! decides what becomes of its slots at a given `now` (pure); the
//! [`Scheduler`] reads the daemon's clock, writes those decisions to the
//! catalog and starts jobs; [`run`] is the loop that sleeps until the next
//! start. Time comes only from `Shared::clock`, so the tests (in `tests`)
//! run all three on tokio's paused clock.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::job::{self, Job, Trigger};
use super::plans::fingerprint;
use super::{fleet, Shared};
use crate::catalog::JobKind;
use crate::lease::{self, Lease};
use crate::plan::Plan;
use crate::schedule::{Cron, Run, Timing};
use crate::time::to_datetime;

/// Slots older than this many are not recorded one by one after downtime.
const MAX_MISSED_RECORDED: usize = 10_000;
/// The scheduler wakes at least this often: the system clock may jump.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// A backup slot starting this soon is a new plan's first backup already.
const FIRST_RUN_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
/// How far back slots are looked at after downtime.
const MAX_DOWNTIME: chrono::TimeDelta = chrono::TimeDelta::days(366);

/// Why the scheduler itself recorded a slot as missed (a job that could not
/// start gives its own reason: breaker open, concurrency full, plan busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missed {
    /// Its window closed while the daemon was not running.
    DaemonDown,
    /// A later slot of the same track was due too: only the newest runs.
    Superseded,
    /// Due, but only seen after its start window (given) had closed.
    WindowClosed(Duration),
}

impl fmt::Display for Missed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missed::DaemonDown => {
                f.write_str("not started within the start window: the daemon was not running")
            }
            Missed::Superseded => {
                f.write_str("superseded by a later slot that was also due: no catch-up")
            }
            Missed::WindowClosed(window) => write!(
                f,
                "not started within the start window ({}): the daemon was busy or asleep",
                humantime::format_duration(*window)
            ),
        }
    }
}

/// What becomes of one due slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Start(Run),
    Miss(Run, Missed),
}

/// The slots a track found missed when it was (re)built.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Downtime {
    /// The ones to record, oldest first (at most [`MAX_MISSED_RECORDED`]).
    pub runs: Vec<Run>,
    /// How many there were.
    pub total: usize,
}

/// How far past the hour a plan's prune may start: most of the hour, so
/// a daemon with many plans prunes a few at a time all hour long instead
/// of all of them in a burst after :00 (1,000 plans in ten minutes was
/// ~1.7 prunes a second), and still one prune per plan per hour.
pub(crate) const PRUNE_JITTER: Duration = Duration::from_secs(50 * 60);

/// Pruning runs hourly per plan, jittered over [`PRUNE_JITTER`].
fn prune_timing() -> Timing {
    Timing {
        // A constant, valid crontab expression: parsing cannot fail.
        cron: Cron::parse("0 * * * *").expect("hourly cron expression"),
        timezone: chrono_tz::UTC,
        jitter: PRUNE_JITTER,
    }
}

/// One plan's schedule for one kind of job, and its next run.
#[derive(Debug)]
pub(crate) struct Track {
    pub plan: Plan,
    pub kind: JobKind,
    timing: Timing,
    /// The plan's start window (every kind shares it).
    window: Duration,
    /// When the daemon first scheduled this track (see [`Track::resume`]).
    first_seen: DateTime<Utc>,
    pub next: Option<Run>,
}

impl Track {
    /// The plan's track for `kind`; `None` when the plan does not schedule
    /// it (a drill without a schedule, a plan without `[verify]`). Not positioned: see [`Track::resume`].
    pub fn new(plan: &Plan, kind: JobKind) -> Option<Track> {
        let timing = match kind {
            JobKind::Backup => plan.backup.timing.clone(),
            JobKind::Drill => plan.drill.timing.clone()?,
            JobKind::Prune => prune_timing(),
            JobKind::Verify => plan.verify.as_ref()?.timing.clone(),
        };
        Some(Track {
            plan: plan.clone(),
            kind,
            timing,
            window: plan.backup.start_window,
            first_seen: DateTime::<Utc>::MIN_UTC,
            next: None,
        })
    }

    /// Moves `next` to the first slot strictly after `after`.
    fn advance(&mut self, after: DateTime<Utc>) {
        self.next = self
            .timing
            .cron
            .next_after(after, self.timing.timezone)
            .map(|slot| self.timing.run(&self.plan.name, self.kind.as_str(), slot));
    }

    /// Positions a new track at `now`. `last` is the newest slot the catalog
    /// has a job for: the slots after it whose window closed before `now`
    /// are returned as missed (the daemon was not running), and `next` is
    /// the first slot whose window is still open. `first_seen` is when the
    /// daemon first scheduled this track: slots before it are never missed
    /// (the plan did not exist for the daemon), though the newest of them
    /// still inside its window runs.
    pub fn resume(
        &mut self,
        last: Option<DateTime<Utc>>,
        first_seen: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Downtime {
        let window = chrono::TimeDelta::from_std(self.window).unwrap_or_default();
        self.first_seen = first_seen;
        // Walk from the last slot with a job, or else from the first slot
        // whose window could still have been open when the track was first
        // seen (older ones are nobody's misses), but never years back.
        let seen = first_seen.checked_sub_signed(window).unwrap_or(first_seen);
        let mut cursor = last.unwrap_or(seen).max(seen).max(now - MAX_DOWNTIME);
        let mut missed = Downtime::default();
        loop {
            self.advance(cursor);
            let Some(run) = self.next else { break };
            if run.window_end(self.window) >= now {
                break;
            }
            cursor = run.slot;
            if run.slot < first_seen {
                continue;
            }
            if missed.total < MAX_MISSED_RECORDED {
                missed.runs.push(run);
            }
            missed.total += 1;
            if missed.total > MAX_MISSED_RECORDED * 10 {
                // Years of a per-second schedule: jump to now.
                cursor = now - window;
            }
        }
        missed
    }

    /// What becomes of every slot due at `now`, oldest first, and moves
    /// `next` past them. Only the newest due slot can start; a slot seen
    /// after its window closed is missed. A slot from before the track was
    /// first seen that cannot start is dropped, not missed.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Decision> {
        let mut decisions = Vec::new();
        while let Some(run) = self.next.filter(|r| r.start <= now) {
            self.advance(run.slot);
            let superseded = self.next.is_some_and(|n| n.start <= now);
            let closed = now > run.window_end(self.window);
            if run.slot < self.first_seen && (superseded || closed) {
                continue;
            }
            decisions.push(if superseded {
                Decision::Miss(run, Missed::Superseded)
            } else if closed {
                Decision::Miss(run, Missed::WindowClosed(self.window))
            } else {
                Decision::Start(run)
            });
        }
        decisions
    }
}

/// Every plan's tracks, and what the scheduler needs to act on them.
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
    tracks: BTreeMap<(String, JobKind), Track>,
    /// Plans this fleet daemon took over whose previous owner's leftovers
    /// are not cleaned up yet (its jobs' leases were still live).
    pending_takeover: std::collections::BTreeSet<String>,
}

impl Scheduler {
    /// Builds the tracks of every loaded plan, recording the slots missed
    /// while the daemon was down, and starts the first backups plans need.
    pub async fn start(
        shared: Arc<Shared>,
        token: CancellationToken,
        tracker: TaskTracker,
    ) -> Scheduler {
        let mut scheduler = Scheduler {
            shared,
            token,
            tracker,
            tracks: BTreeMap::new(),
            pending_takeover: Default::default(),
        };
        for plan in scheduler.loaded_plans().await {
            // In a fleet, none yet: plans come with ownership (`rebalance`).
            if scheduler.shared.owns(&plan.name) {
                scheduler.add_plan(&plan).await;
            }
        }
        scheduler
    }

    async fn loaded_plans(&self) -> Vec<Plan> {
        self.shared.plans.read().await.plans().cloned().collect()
    }

    /// The next run of each track, for tests to state what is expected.
    #[cfg(test)]
    pub fn next_runs(&self) -> BTreeMap<(String, JobKind), Option<Run>> {
        self.tracks
            .iter()
            .map(|(k, t)| (k.clone(), t.next))
            .collect()
    }

    /// Starts or records as missed every slot due now; returns when the
    /// next one is due.
    pub async fn tick(&mut self) -> Option<DateTime<Utc>> {
        let now = self.shared.clock.now();
        let mut decisions = Vec::new();
        for track in self.tracks.values_mut() {
            for decision in track.due(now) {
                decisions.push((track.plan.clone(), track.kind, decision));
            }
        }
        for (plan, kind, decision) in decisions {
            match decision {
                Decision::Start(run) => self.start_job(Job {
                    plan,
                    kind,
                    run,
                    trigger: Trigger::Schedule,
                }),
                Decision::Miss(run, why) => {
                    warn!(plan = %plan.name, kind = kind.as_str(), slot = %run.slot, "{why}");
                    self.record_missed(&plan, kind, run, why).await;
                }
            }
        }
        self.tracks
            .values()
            .filter_map(|t| t.next.map(|r| r.start))
            .min()
    }

    fn start_job(&self, job: Job) {
        job::spawn(&self.shared, &self.tracker, &self.token, job);
    }

    async fn record_missed(&self, plan: &Plan, kind: JobKind, run: Run, why: Missed) {
        let result = self
            .shared
            .ctx
            .catalog
            .record_missed(
                &plan.name,
                kind,
                run.slot.timestamp_millis(),
                run.start.timestamp_millis(),
                &why.to_string(),
                self.shared.clock.now_ms(),
            )
            .await;
        if let Err(e) = result {
            error!(plan = %plan.name, kind = kind.as_str(), error = %e, "cannot record a missed slot");
        }
    }

    /// Adds a plan's tracks and starts its first backup if it needs one.
    /// A kind the plan does not schedule (any longer) is forgotten, so it
    /// starts afresh should it come back.
    async fn add_plan(&mut self, plan: &Plan) {
        for kind in JobKind::ALL {
            if let Some(track) = self.resume_track(plan, kind).await {
                self.tracks.insert((plan.name.clone(), kind), track);
            } else {
                self.forget(&plan.name, Some(kind)).await;
            }
        }
        self.first_run_if_needed(plan).await;
    }

    async fn forget(&self, plan: &str, kind: Option<JobKind>) {
        if let Err(e) = self.shared.ctx.catalog.forget_track(plan, kind).await {
            warn!(plan, error = %e, "cannot forget when a plan's schedule was first seen");
        }
    }

    /// A plan's track for `kind`, positioned after the last slot the
    /// catalog knows, with the slots missed since recorded (but none from
    /// before the track was first seen).
    async fn resume_track(&self, plan: &Plan, kind: JobKind) -> Option<Track> {
        let mut track = Track::new(plan, kind)?;
        let now = self.shared.clock.now();
        let first_seen = match self
            .shared
            .ctx
            .catalog
            .track_first_seen(&plan.name, kind, now.timestamp_millis())
            .await
        {
            Ok(first) => to_datetime(first),
            Err(e) => {
                error!(plan = %plan.name, error = %e, "cannot read the catalog; no slot before now is missed");
                now
            }
        };
        let last = match self
            .shared
            .ctx
            .catalog
            .last_job_slot(&plan.name, kind)
            .await
        {
            Ok(last) => last.map(to_datetime),
            Err(e) => {
                error!(plan = %plan.name, error = %e, "cannot read the catalog; scheduling from now");
                None
            }
        };
        let missed = track.resume(last, first_seen, now);
        for run in &missed.runs {
            self.record_missed(plan, kind, *run, Missed::DaemonDown)
                .await;
        }
        if missed.total > 0 {
            warn!(plan = %plan.name, kind = kind.as_str(), missed = missed.total, "slots missed while the daemon was down are recorded; the next slot runs (no catch-up)");
        }
        Some(track)
    }

    /// Protection starts when a plan is added: a plan without a complete
    /// point for every resource in every region it keeps points in gets a
    /// backup right away, unless a backup slot is about to start anyway.
    /// Every region, not only the primary: a daemon killed during its
    /// first backup's copies left the primary whole and the drill region
    /// empty until the next slot (found by crash trials).
    async fn first_run_if_needed(&self, plan: &Plan) {
        let now = self.shared.clock.now();
        let due_soon = self
            .tracks
            .get(&(plan.name.clone(), JobKind::Backup))
            .and_then(|t| t.next)
            .is_some_and(|r| r.start <= now + FIRST_RUN_SLACK);
        if due_soon {
            return;
        }
        let mut missing = false;
        for region in plan.point_regions() {
            for res in &plan.resources {
                match self
                    .shared
                    .ctx
                    .catalog
                    .newest_complete_point(&plan.name, &res.name, region)
                    .await
                {
                    Ok(None) => missing = true,
                    Ok(Some(_)) => {}
                    Err(e) => warn!(plan = %plan.name, error = %e, "cannot read the catalog"),
                }
            }
        }
        if missing {
            info!(plan = %plan.name, "no complete point yet: first backup now");
            self.start_job(Job {
                plan: plan.clone(),
                kind: JobKind::Backup,
                run: Run {
                    slot: now,
                    start: now,
                },
                trigger: Trigger::FirstRun,
            });
        }
    }

    /// Re-reads the plans folder: new and changed plans get fresh tracks,
    /// removed ones lose theirs, and a file whose new version is invalid
    /// keeps running its last good plan.
    pub async fn reload(&mut self) {
        let shared = self.shared.clone();
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
            self.tracks.retain(|(p, _), _| p != name);
        }
        for name in &report.removed {
            self.forget(name, None).await;
        }
        let plans = self.loaded_plans().await;
        for name in report.added.iter().chain(&report.changed) {
            // Its objective or regions may have changed.
            shared.recheck(name);
            if let Some(plan) = plans
                .iter()
                .find(|p| &p.name == name && shared.owns(&p.name))
            {
                self.add_plan(plan).await;
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
}

impl Scheduler {
    /// A fleet daemon's heartbeat and rebalancing round (`fleet`): plans
    /// gained are cleaned up after their previous owner, then scheduled
    /// as after a restart (slots still in their window run late, older
    /// ones are recorded missed); plans lost stop being scheduled, their
    /// running jobs finish under their own leases.
    pub async fn rebalance(&mut self) {
        let shared = self.shared.clone();
        let Some(me) = shared.fleet.as_ref() else {
            return;
        };
        let plans = self.loaded_plans().await;
        let wanted: Vec<(String, Vec<String>)> = plans
            .iter()
            .map(|p| (p.name.clone(), p.placement.clone()))
            .collect();
        let now = shared.clock.now_ms();
        let changes = match fleet::rebalance(&shared.ctx.catalog, me, &wanted, now).await {
            Ok(c) => c,
            Err(e) => {
                me.counters
                    .failed_rounds
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                warn!(error = %e, "cannot reach the catalog to beat and rebalance; plans stay as they were until their leases expire");
                return;
            }
        };
        for name in &changes.lost {
            info!(plan = %name, "the plan moved to another daemon of the fleet");
            self.tracks.retain(|(p, _), _| p != name);
            self.pending_takeover.remove(name);
        }
        for name in &changes.gained {
            info!(plan = %name, "took the plan over");
            self.pending_takeover.insert(name.clone());
        }
        if !self.pending_takeover.is_empty() {
            // One read of the leases for every plan waiting (a takeover
            // may bring hundreds).
            let busy: std::collections::BTreeSet<String> = match shared.ctx.catalog.leases().await {
                Ok(leases) => leases
                    .into_iter()
                    .filter(|l| l.kind != lease::OWNER && l.expires_at > now)
                    .map(|l| l.plan)
                    .collect(),
                Err(e) => {
                    warn!(error = %e, "cannot read the leases of the plans taken over");
                    return;
                }
            };
            let pending: Vec<String> = self.pending_takeover.iter().cloned().collect();
            for name in pending {
                if busy.contains(&name) {
                    continue;
                }
                if let Some(plan) = plans.iter().find(|p| p.name == name) {
                    if self.clean_up_before_us(plan).await {
                        self.pending_takeover.remove(&name);
                    }
                }
            }
        }
        for name in &changes.gained {
            if let Some(plan) = plans.iter().find(|p| &p.name == name) {
                self.add_plan(plan).await;
            }
        }
    }

    /// Records what the plan's previous owner left running as interrupted
    /// (jobs, backups, drills); called once no lease of the plan is live
    /// (a live one is a job still running, on a daemon that handed the
    /// plan over). `false` when it must wait.
    async fn clean_up_before_us(&self, plan: &Plan) -> bool {
        let cat = &self.shared.ctx.catalog;
        let now = self.shared.clock.now_ms();
        match cat.fail_interrupted_jobs_of(&plan.name, now).await {
            Ok(0) => {}
            Ok(n) => {
                warn!(plan = %plan.name, jobs = n, "recorded jobs of the plan's previous owner as interrupted")
            }
            Err(e) => {
                warn!(plan = %plan.name, error = %e, "cannot record interrupted jobs");
                return false;
            }
        }
        match Lease::acquire(cat, &plan.name, lease::BACKUP).await {
            Ok(held) => {
                if let Err(e) = crate::backup::fail_interrupted(cat, plan).await {
                    warn!(plan = %plan.name, error = %e, "cannot record interrupted backups");
                }
                held.release().await;
            }
            Err(_) => return false,
        }
        if let Err(e) = crate::drill::recover(&self.shared.ctx, plan).await {
            warn!(plan = %plan.name, error = %e, "cannot clean up interrupted drills");
        }
        true
    }
}

/// Runs the scheduler until `token` is cancelled: sleeps until the next
/// start (or [`MAX_SLEEP`]), a reload request, or an edit of the plans folder.
pub(crate) async fn run(shared: Arc<Shared>, token: CancellationToken, tracker: TaskTracker) {
    let dir = shared.config.plans_dir.clone();
    let mut scheduler = Scheduler::start(shared.clone(), token.clone(), tracker).await;
    let mut seen = fingerprint(&dir);
    let mut watch = tokio::time::interval(shared.config.watch_interval);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A fleet daemon beats and rebalances every third of its lease time.
    let in_fleet = shared.fleet.is_some();
    let beat = shared
        .fleet
        .as_ref()
        .map_or(Duration::from_secs(3600), |m| m.config.lease / 3)
        .max(Duration::from_millis(100));
    let mut rebalance = tokio::time::interval(beat);
    rebalance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = scheduler.tick().await;
        let cap = tokio::time::Instant::now() + MAX_SLEEP;
        let wake = next.map_or(cap, |t| shared.clock.deadline(t).min(cap));
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep_until(wake) => {}
            // Boxed: its future is deep (catalog calls in a loop).
            _ = rebalance.tick(), if in_fleet => Box::pin(scheduler.rebalance()).await,
            _ = shared.reload.notified() => {
                scheduler.reload().await;
                seen = fingerprint(&dir);
            }
            _ = watch.tick() => {
                let now_seen = fingerprint(&dir);
                if now_seen != seen {
                    seen = now_seen;
                    scheduler.reload().await;
                }
            }
        }
    }
}
