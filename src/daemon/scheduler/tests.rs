//! The scheduler's rules at exact instants.
//!
//! [`Track`]'s decisions are tested as plain functions of `now`. The
//! [`Scheduler`] and its loop are tested on tokio's paused clock, with a
//! real catalog in a temporary folder and work that records what started
//! when instead of backing anything up: a test moves time to an instant,
//! lets the scheduler act, and reads the job rows it wrote.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{run, Decision, Downtime, Missed, Scheduler, Track};
use crate::catalog::{Job as JobRow, JobKind, JobStatus};
use crate::daemon::job::{self, Job, Outcome, Trigger, Work};
use crate::daemon::{metrics, Daemon, DaemonConfig, Shared};
use crate::plan::Plan;
use crate::schedule::{jitter_offset, Run};
use crate::time::Clock;

const MS: TimeDelta = TimeDelta::milliseconds(1);

/// An instant of 25 November 2026, UTC.
fn utc(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, h, m, s).unwrap()
}

/// The prunes' jitter, in minutes.
const PRUNE_MINUTES: u64 = super::PRUNE_JITTER.as_secs() / 60;

/// The run of `slot` for a plan's `kind` jittered over `jitter` minutes:
/// slot + the stable offset [`jitter_offset`] gives it.
fn jittered(plan: &str, kind: JobKind, slot: DateTime<Utc>, jitter: u64) -> Run {
    let offset = jitter_offset(plan, kind.as_str(), slot, Duration::from_secs(jitter * 60));
    assert!(offset < Duration::from_secs(jitter * 60));
    Run {
        slot,
        start: slot + TimeDelta::from_std(offset).unwrap(),
    }
}

/// Slots every 15 minutes in `[from, to]`.
fn quarter_hours(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut slots = vec![from];
    while let Some(next) = slots.last().map(|s| *s + TimeDelta::minutes(15)) {
        if next > to {
            break;
        }
        slots.push(next);
    }
    slots
}

/// A plan backed up every 15 minutes (2 min jitter) and pruned hourly;
/// `backup` and `drill` add keys to those sections.
fn plan_text(name: &str, backup: &str, drill: &str) -> String {
    format!(
        r#"name = "{name}"
owner = "sre@example.com"
rto = "10m"
rpo = "1h"

[backup]
schedule = "*/15 * * * *"
jitter = "2m"
primary_region = "primary"
{backup}

[regions.primary]
vault = "file:///srv/vaults/{name}"

[[resources]]
name = "files"
kind = "path"
path = "/srv/{name}/files"

[[resources]]
name = "db"
kind = "sqlite"
path = "/srv/{name}/app.db"

[drill]
region = "primary"
{drill}

[[drill.checks]]
name = "orders-present"
resource = "db"
sql = "SELECT count(*) > 0 FROM orders"
"#
    )
}

/// `shop`: start window 10 min, a daily drill at 04:00 with 30 min jitter.
fn shop() -> String {
    plan_text(
        "shop",
        "start_window = \"10m\"",
        "schedule = \"0 4 * * *\"\njitter = \"30m\"",
    )
}

/// `shop`, verified daily at 05:00 (15 min jitter), a third of its points
/// read in full at each run.
fn verified_shop() -> String {
    format!(
        "{}\n[verify]\nschedule = \"0 5 * * *\"\njitter = \"15m\"\nread_data_subset = \"1/3\"\n",
        shop()
    )
}

fn parse(text: &str) -> Plan {
    match crate::plan::parse_plan(Path::new("plan.toml"), text) {
        Ok((plan, _)) => plan,
        Err(e) => panic!("{:?}", e.diagnostics),
    }
}

fn track(text: &str, kind: JobKind) -> Track {
    Track::new(&parse(text), kind).unwrap()
}

// ---- Track: the rules as functions of `now` ----

#[test]
fn a_slot_starts_at_slot_plus_its_jitter_and_not_before() {
    let mut t = track(&shop(), JobKind::Backup);
    assert_eq!(
        t.resume(None, utc(2, 56, 0), utc(2, 56, 0)),
        Downtime::default()
    );
    let run = jittered("shop", JobKind::Backup, utc(3, 0, 0), 2);
    assert_eq!(t.next, Some(run));
    assert_eq!(t.due(run.start - MS), vec![]);
    assert_eq!(t.due(run.start), vec![Decision::Start(run)]);
    assert_eq!(
        t.next,
        Some(jittered("shop", JobKind::Backup, utc(3, 15, 0), 2))
    );
}

#[test]
fn a_slot_not_started_by_the_end_of_its_window_is_missed() {
    let mut t = track(&shop(), JobKind::Backup);
    t.resume(None, utc(2, 56, 0), utc(2, 56, 0));
    let run = jittered("shop", JobKind::Backup, utc(3, 0, 0), 2);
    // The 10 min window follows the jittered start, and is inclusive.
    let end = run.start + TimeDelta::minutes(10);
    let mut on_time = track(&shop(), JobKind::Backup);
    on_time.resume(None, utc(2, 56, 0), utc(2, 56, 0));
    assert_eq!(on_time.due(end), vec![Decision::Start(run)]);
    let window = Missed::WindowClosed(Duration::from_secs(600));
    assert_eq!(t.due(end + MS), vec![Decision::Miss(run, window)]);
    assert_eq!(
        window.to_string(),
        "not started within the start window (10m): the daemon was busy or asleep"
    );
}

#[test]
fn after_downtime_the_newest_slot_inside_its_window_runs_and_older_ones_are_missed() {
    // Start window 40 min; the last job was the 01:00 slot; back at 03:07.
    let mut t = track(
        &plan_text("shop", "start_window = \"40m\"", ""),
        JobKind::Backup,
    );
    let down = t.resume(Some(utc(1, 0, 0)), utc(1, 0, 0), utc(3, 7, 0));
    // Windows closed before 03:07: recorded as missed while down.
    let closed: Vec<Run> = quarter_hours(utc(1, 15, 0), utc(2, 15, 0))
        .into_iter()
        .map(|s| jittered("shop", JobKind::Backup, s, 2))
        .collect();
    assert_eq!(
        down,
        Downtime {
            runs: closed,
            total: 5
        }
    );
    // 02:30, 02:45 and 03:00 are all due and inside their windows: only
    // the newest runs.
    let run = |h, m| jittered("shop", JobKind::Backup, utc(h, m, 0), 2);
    assert_eq!(
        t.due(utc(3, 7, 0)),
        vec![
            Decision::Miss(run(2, 30), Missed::Superseded),
            Decision::Miss(run(2, 45), Missed::Superseded),
            Decision::Start(run(3, 0)),
        ]
    );
    assert_eq!(t.next, Some(run(3, 15)));
}

#[test]
fn slots_before_a_plan_was_first_loaded_are_not_missed() {
    let mut t = track(&shop(), JobKind::Backup);
    // Loaded at 03:07: the 02:45 slot's window closed before the plan
    // existed; the 03:00 slot's is still open, so it runs.
    assert_eq!(
        t.resume(None, utc(3, 7, 0), utc(3, 7, 0)),
        Downtime::default()
    );
    let run = jittered("shop", JobKind::Backup, utc(3, 0, 0), 2);
    assert_eq!(t.next, Some(run));
    assert_eq!(t.due(utc(3, 7, 0)), vec![Decision::Start(run)]);

    // A 40 min window: 02:30, 02:45 and 03:00 were all still open when the
    // plan was added at 03:07. Only the newest runs, and the older two are
    // not the plan's misses (issue #15: an alert on misses fired on every
    // new plan). A slot after the plan was added is missed as usual.
    let wide = plan_text("shop", "start_window = \"40m\"", "");
    let mut t = track(&wide, JobKind::Backup);
    assert_eq!(
        t.resume(None, utc(3, 7, 0), utc(3, 7, 0)),
        Downtime::default()
    );
    let run = |h, m| jittered("shop", JobKind::Backup, utc(h, m, 0), 2);
    assert_eq!(t.due(utc(3, 7, 0)), vec![Decision::Start(run(3, 0))]);
    let late = run(3, 15).start + TimeDelta::minutes(40) + MS;
    assert_eq!(
        t.due(late)[0],
        Decision::Miss(run(3, 15), Missed::Superseded)
    );
    // The same track resumed after downtime: misses count from when the
    // track was first seen (02:40), not before.
    let mut t = track(&wide, JobKind::Backup);
    let down = t.resume(None, utc(2, 40, 0), utc(4, 1, 0));
    assert_eq!(
        down.runs.iter().map(|r| r.slot).collect::<Vec<_>>(),
        vec![utc(2, 45, 0), utc(3, 0, 0), utc(3, 15, 0)]
    );
    assert_eq!(
        t.due(utc(4, 1, 0)),
        vec![
            Decision::Miss(run(3, 30), Missed::Superseded),
            Decision::Miss(run(3, 45), Missed::Superseded),
            Decision::Start(run(4, 0)),
        ]
    );
}

#[test]
fn a_long_downtime_is_counted_but_recorded_only_up_to_a_cap() {
    // Every second, three hours down: 10,800 slots, 10,000 recorded.
    let text = shop()
        .replace("*/15 * * * *", "* * * * * *")
        .replace("jitter = \"2m\"\n", "")
        .replace("start_window = \"10m\"", "start_window = \"1s\"");
    let mut t = track(&text, JobKind::Backup);
    let down = t.resume(Some(utc(0, 0, 0)), utc(0, 0, 0), utc(3, 0, 0));
    // 00:00:01 .. 02:59:58: each window closed before 03:00:00.
    assert_eq!(down.total, 3 * 3600 - 2);
    assert_eq!(down.runs.len(), super::MAX_MISSED_RECORDED);
    assert_eq!(down.runs[0].slot, utc(0, 0, 1));
    assert_eq!(t.next.map(|r| r.slot), Some(utc(2, 59, 59)));
}

#[test]
fn drills_and_prunes_have_their_own_tracks() {
    let mut drill = track(&shop(), JobKind::Drill);
    drill.resume(None, utc(2, 56, 0), utc(2, 56, 0));
    let run = jittered("shop", JobKind::Drill, utc(4, 0, 0), 30);
    assert_eq!(drill.next, Some(run));
    // Jittered 17 min past its slot, beyond the plan's 10 min start window:
    // it still starts (the window follows the jittered start).
    assert_eq!(run.start, utc(4, 17, 11) + TimeDelta::milliseconds(356));
    assert_eq!(drill.due(run.start), vec![Decision::Start(run)]);
    // Pruning: hourly, jittered over most of the hour, in every plan.
    let mut prune = track(&shop(), JobKind::Prune);
    prune.resume(None, utc(2, 56, 0), utc(2, 56, 0));
    let run = jittered("shop", JobKind::Prune, utc(3, 0, 0), PRUNE_MINUTES);
    assert_eq!(prune.next, Some(run));
    assert_eq!(prune.due(run.start), vec![Decision::Start(run)]);
    assert_eq!(
        prune.next,
        Some(jittered(
            "shop",
            JobKind::Prune,
            utc(4, 0, 0),
            PRUNE_MINUTES
        ))
    );
    // A plan without a drill schedule has no drill track.
    let no_drill = parse(&plan_text("shop", "", ""));
    assert!(Track::new(&no_drill, JobKind::Drill).is_none());
}

#[test]
fn verifies_follow_their_own_schedule_and_a_plan_without_verify_has_none() {
    let mut t = track(&verified_shop(), JobKind::Verify);
    assert_eq!(
        t.resume(None, utc(2, 56, 0), utc(2, 56, 0)),
        Downtime::default()
    );
    let run = jittered("shop", JobKind::Verify, utc(5, 0, 0), 15);
    assert_eq!(t.next, Some(run));
    assert_eq!(t.due(run.start - MS), vec![]);
    assert_eq!(t.due(run.start), vec![Decision::Start(run)]);
    let tomorrow = utc(5, 0, 0) + TimeDelta::days(1);
    assert_eq!(
        t.next,
        Some(jittered("shop", JobKind::Verify, tomorrow, 15))
    );
    // Jittered by its own kind: not at the drill's offset.
    let drill_offset = jitter_offset("shop", "drill", utc(5, 0, 0), Duration::from_secs(900));
    assert_ne!(
        run.start - run.slot,
        TimeDelta::from_std(drill_offset).unwrap()
    );
    // Seen after its start window closed: missed, like any other slot.
    let mut late = track(&verified_shop(), JobKind::Verify);
    late.resume(None, utc(2, 56, 0), utc(2, 56, 0));
    let window = Missed::WindowClosed(Duration::from_secs(600));
    assert_eq!(
        late.due(run.start + TimeDelta::minutes(10) + MS),
        vec![Decision::Miss(run, window)]
    );
    assert!(Track::new(&parse(&shop()), JobKind::Verify).is_none());
}

// ---- Scheduler and loop: the catalog, on tokio's paused clock ----

/// Keeps tokio's paused clock still until a test advances it. Tokio moves
/// a paused clock to the next timer whenever the runtime is idle, which it
/// is each time it waits for the catalog's SQLite thread; it does not while
/// a blocking task runs, so this one runs until dropped.
struct Hold {
    _release: std::sync::mpsc::Sender<()>,
}

impl Hold {
    fn new() -> Hold {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            // Returns when the sender is dropped.
            let _ = rx.recv();
        });
        Hold { _release: tx }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Started {
    plan: String,
    kind: JobKind,
    slot: DateTime<Utc>,
    trigger: Trigger,
    at: DateTime<Utc>,
}

/// Work that records what started when, and succeeds.
#[derive(Clone, Default)]
struct Recorder {
    started: Arc<Mutex<Vec<Started>>>,
    /// When set, a job holds its concurrency permits until given one of these.
    gate: Option<Arc<Semaphore>>,
    /// Backups fail and say their vault did.
    failing_vault: bool,
}

impl Work for Recorder {
    fn run<'a>(&'a self, shared: &'a Shared, job: &'a Job) -> BoxFuture<'a, Outcome> {
        async move {
            self.started.lock().unwrap().push(Started {
                plan: job.plan.name.clone(),
                kind: job.kind,
                slot: job.run.slot,
                trigger: job.trigger,
                at: shared.clock.now(),
            });
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            match job.kind {
                JobKind::Backup if self.failing_vault => Outcome {
                    vault_ok: Some(false),
                    ..Outcome::failed("vault unreachable")
                },
                JobKind::Backup => Outcome {
                    vault_ok: Some(true),
                    ..Outcome::succeeded()
                },
                JobKind::Drill | JobKind::Prune | JobKind::Verify => Outcome::succeeded(),
            }
        }
        .boxed()
    }
}

struct Harness {
    daemon: Daemon,
    plans: PathBuf,
    token: CancellationToken,
    tracker: TaskTracker,
    recorder: Recorder,
    _dir: tempfile::TempDir,
    _hold: Hold,
}

impl Harness {
    /// A daemon whose clock reads `start`, loaded with `plans` (file, text).
    async fn new(start: DateTime<Utc>, plans: &[(&str, &str)]) -> Harness {
        Harness::with(start, plans, Recorder::default(), |_| {}).await
    }

    async fn with(
        start: DateTime<Utc>,
        plans: &[(&str, &str)],
        recorder: Recorder,
        configure: impl FnOnce(&mut DaemonConfig),
    ) -> Harness {
        let work = Box::new(recorder.clone());
        Harness::with_work(start, plans, recorder, work, configure).await
    }

    /// A daemon whose jobs do the real work (the recorder records nothing).
    async fn with_orchestrators(start: DateTime<Utc>, plans: &[(&str, &str)]) -> Harness {
        let work = Box::new(crate::daemon::work::Orchestrators);
        Harness::with_work(start, plans, Recorder::default(), work, |_| {}).await
    }

    async fn with_work(
        start: DateTime<Utc>,
        plans: &[(&str, &str)],
        recorder: Recorder,
        work: Box<dyn Work>,
        configure: impl FnOnce(&mut DaemonConfig),
    ) -> Harness {
        let hold = Hold::new();
        let dir = tempfile::tempdir().unwrap();
        let plans_dir = dir.path().join("plans");
        std::fs::create_dir_all(&plans_dir).unwrap();
        for (file, text) in plans {
            std::fs::write(plans_dir.join(file), text).unwrap();
        }
        let mut config = DaemonConfig {
            catalog: crate::catalog::testing::location(dir.path()),
            plans_dir: plans_dir.clone(),
            work_dir: dir.path().join("work"),
            listen: "127.0.0.1:0".parse().unwrap(),
            max_jobs: 4,
            max_jobs_per_region: 2,
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_secs(300),
            grace: Duration::from_secs(30),
            watch_interval: Duration::from_secs(3600),
            heartbeat_url: None,
            notify_url: None,
            fleet: None,
        };
        configure(&mut config);
        let daemon = Daemon::build_with(config, Clock::tokio_at(start), work)
            .await
            .unwrap();
        Harness {
            daemon,
            plans: plans_dir,
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            recorder,
            _dir: dir,
            _hold: hold,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.daemon.shared
    }

    async fn scheduler(&self) -> Scheduler {
        Scheduler::start(
            self.shared().clone(),
            self.token.clone(),
            self.tracker.clone(),
        )
        .await
    }

    /// Moves the clock forward to `t`.
    async fn at(&self, t: DateTime<Utc>) {
        let now = self.shared().clock.now();
        tokio::time::advance((t - now).to_std().expect("time only moves forward")).await;
    }

    /// Waits until every job started so far has finished.
    async fn settle(&self) {
        self.tracker.close();
        self.tracker.wait().await;
        self.tracker.reopen();
    }

    /// Runs the scheduler at each instant something is due, up to `end`.
    async fn step_until(&self, scheduler: &mut Scheduler, end: DateTime<Utc>) {
        let mut next = scheduler.tick().await;
        self.settle().await;
        while let Some(t) = next.filter(|t| *t <= end) {
            self.at(t).await;
            next = scheduler.tick().await;
            self.settle().await;
        }
        self.at(end).await;
    }

    fn started(&self) -> Vec<Started> {
        let mut started = self.recorder.started.lock().unwrap().clone();
        started.sort_by_key(|s| (s.at, s.plan.clone(), s.kind));
        started
    }

    /// The job rows of `kind`, by slot.
    async fn jobs(&self, kind: JobKind) -> Vec<JobRow> {
        let mut jobs = self.shared().ctx.catalog.jobs(None).await.unwrap();
        jobs.retain(|j| j.kind == kind);
        jobs
    }

    /// Polls the catalog until `cond` holds (the scheduler runs in its own
    /// task); time stands still meanwhile.
    async fn wait_for(&self, what: &str, cond: impl Fn(&[JobRow]) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let jobs = self.shared().ctx.catalog.jobs(None).await.unwrap();
            if cond(&jobs) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {jobs:?}"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Waits until `n` jobs have started their work (some may never finish).
    async fn wait_started(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.recorder.started.lock().unwrap().len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {n} jobs to start: {:?}",
                self.started()
            );
            tokio::task::yield_now().await;
        }
    }

    /// Records a complete point of `resource` in the plan's primary region.
    async fn complete_point(&self, plan: &str, resource: &str) {
        let t = self.shared().clock.now_ms();
        self.shared()
            .ctx
            .catalog
            .execute(&format!(
                "INSERT INTO points (plan, resource, kind, region, status, started_at, data_time, completed_at)
                 VALUES ('{plan}', '{resource}', 'path', 'primary', 'complete', {t}, {t}, {t})"
            ))
            .await
            .unwrap();
    }
}

fn started(kind: JobKind, run: Run, trigger: Trigger, at: DateTime<Utc>) -> Started {
    Started {
        plan: "shop".into(),
        kind,
        slot: run.slot,
        trigger,
        at,
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[tokio::test(start_paused = true)]
async fn jobs_start_at_their_jittered_start_and_each_slot_runs_once() {
    let t0 = utc(2, 56, 0);
    let h = Harness::new(t0, &[("shop.toml", &shop())]).await;
    let mut s = h.scheduler().await;
    h.step_until(&mut s, utc(4, 59, 0)).await;

    let first = Run {
        slot: t0,
        start: t0,
    };
    let mut expected = vec![started(JobKind::Backup, first, Trigger::FirstRun, t0)];
    let mut on_schedule = |kind, slots: Vec<DateTime<Utc>>, jitter| {
        for slot in slots {
            let run = jittered("shop", kind, slot, jitter);
            expected.push(started(kind, run, Trigger::Schedule, run.start));
        }
    };
    on_schedule(
        JobKind::Backup,
        quarter_hours(utc(3, 0, 0), utc(4, 45, 0)),
        2,
    );
    on_schedule(JobKind::Drill, vec![utc(4, 0, 0)], 30);
    on_schedule(
        JobKind::Prune,
        vec![utc(3, 0, 0), utc(4, 0, 0)],
        PRUNE_MINUTES,
    );
    expected.sort_by_key(|s| (s.at, s.plan.clone(), s.kind));
    assert_eq!(h.started(), expected);
    // The catalog agrees: every slot claimed once, started on time.
    let jobs = h.shared().ctx.catalog.jobs(None).await.unwrap();
    assert_eq!(jobs.len(), expected.len());
    for j in &jobs {
        assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
        assert_eq!(j.started_at, Some(j.scheduled_start), "{j:?}");
    }

    // A slot that has a row is never run again.
    let again = jittered("shop", JobKind::Backup, utc(3, 0, 0), 2);
    let plan = h.shared().plans.read().await.get("shop").unwrap().clone();
    job::spawn(
        h.shared(),
        &h.tracker,
        &h.token,
        Job {
            plan,
            kind: JobKind::Backup,
            run: again,
            trigger: Trigger::Schedule,
        },
    );
    h.settle().await;
    assert_eq!(h.started().len(), expected.len());

    // A restart (points complete by now) picks up where the catalog is:
    // nothing missed, nothing run twice, the same next runs.
    h.complete_point("shop", "files").await;
    h.complete_point("shop", "db").await;
    let restarted = h.scheduler().await;
    h.settle().await;
    assert_eq!(restarted.next_runs(), s.next_runs());
    assert_eq!(h.started().len(), expected.len());
    assert_eq!(
        h.shared().ctx.catalog.jobs(None).await.unwrap().len(),
        jobs.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_slot_seen_after_its_window_closed_is_recorded_missed_with_why() {
    let h = Harness::new(utc(2, 56, 0), &[("shop.toml", &shop())]).await;
    let mut s = h.scheduler().await;
    s.tick().await;
    h.settle().await;
    // The scheduler does not run again until just after the 03:00 backup's
    // window closed (the daemon was busy, the machine asleep).
    let backup = jittered("shop", JobKind::Backup, utc(3, 0, 0), 2);
    let prune = jittered("shop", JobKind::Prune, utc(3, 0, 0), PRUNE_MINUTES);
    let late = backup.start + TimeDelta::minutes(10) + MS;
    h.at(late).await;
    s.tick().await;
    h.settle().await;
    let reason = Missed::WindowClosed(Duration::from_secs(600)).to_string();
    let jobs = h.jobs(JobKind::Backup).await;
    let missed = jobs.iter().find(|j| j.slot == ms(backup.slot)).unwrap();
    assert_eq!(missed.status, JobStatus::Missed);
    assert_eq!(missed.error.as_deref(), Some(reason.as_str()));
    assert_eq!(missed.scheduled_start, ms(backup.start));
    assert_eq!(missed.started_at, None);
    // The prune of 03:00 starts later, so its window is still open: it runs, late.
    assert!(prune.start < late && late <= prune.start + TimeDelta::minutes(10));
    let first = Run {
        slot: utc(2, 56, 0),
        start: utc(2, 56, 0),
    };
    assert_eq!(
        h.started(),
        vec![
            started(JobKind::Backup, first, Trigger::FirstRun, utc(2, 56, 0)),
            started(JobKind::Prune, prune, Trigger::Schedule, late),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn after_downtime_missed_slots_are_recorded_and_only_the_newest_runs() {
    let text = plan_text("shop", "start_window = \"40m\"", "");
    let h = Harness::new(utc(3, 7, 0), &[("shop.toml", &text)]).await;
    // The last job the catalog knows is the 01:00 backup, of a plan the
    // daemon has scheduled since midnight.
    let cat = &h.shared().ctx.catalog;
    cat.track_first_seen("shop", JobKind::Backup, ms(utc(0, 0, 0)))
        .await
        .unwrap();
    let last = jittered("shop", JobKind::Backup, utc(1, 0, 0), 2);
    let id = cat
        .claim_job(
            "shop",
            JobKind::Backup,
            ms(last.slot),
            ms(last.start),
            ms(last.start),
        )
        .await
        .unwrap()
        .unwrap();
    cat.finish_job(id, JobStatus::Succeeded, None, None, None, ms(last.start))
        .await
        .unwrap();

    let mut s = h.scheduler().await;
    s.tick().await;
    h.settle().await;

    let run = |h, m| jittered("shop", JobKind::Backup, utc(h, m, 0), 2);
    let mut expected: Vec<(i64, i64, JobStatus, Option<String>)> =
        vec![(ms(last.slot), ms(last.start), JobStatus::Succeeded, None)];
    for slot in quarter_hours(utc(1, 15, 0), utc(2, 15, 0)) {
        let r = jittered("shop", JobKind::Backup, slot, 2);
        let why = Missed::DaemonDown.to_string();
        expected.push((ms(r.slot), ms(r.start), JobStatus::Missed, Some(why)));
    }
    for r in [run(2, 30), run(2, 45)] {
        let why = Missed::Superseded.to_string();
        expected.push((ms(r.slot), ms(r.start), JobStatus::Missed, Some(why)));
    }
    expected.push((
        ms(run(3, 0).slot),
        ms(run(3, 0).start),
        JobStatus::Succeeded,
        None,
    ));
    let rows: Vec<_> = h
        .jobs(JobKind::Backup)
        .await
        .into_iter()
        .map(|j| (j.slot, j.scheduled_start, j.status, j.error))
        .collect();
    assert_eq!(rows, expected);
    // The newest slot ran as soon as the daemon was back; the plan has no
    // point yet, but that backup is its first: no extra first-run backup.
    let backups: Vec<Started> = h
        .started()
        .into_iter()
        .filter(|s| s.kind == JobKind::Backup)
        .collect();
    assert_eq!(
        backups,
        vec![started(
            JobKind::Backup,
            run(3, 0),
            Trigger::Schedule,
            utc(3, 7, 0)
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_backup_runs_at_once_while_a_resource_has_no_complete_point() {
    let t0 = utc(2, 56, 0);
    let a = plan_text("a", "", "");
    let b = plan_text("b", "", "");
    let h = Harness::new(t0, &[("a.toml", &a), ("b.toml", &b)]).await;
    h.complete_point("a", "files").await;
    h.complete_point("a", "db").await;
    h.complete_point("b", "files").await;
    let _s = h.scheduler().await;
    h.settle().await;
    assert_eq!(
        h.started(),
        vec![Started {
            plan: "b".into(),
            kind: JobKind::Backup,
            slot: t0,
            trigger: Trigger::FirstRun,
            at: t0,
        }]
    );
    let jobs = h.jobs(JobKind::Backup).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].slot, jobs[0].scheduled_start), (ms(t0), ms(t0)));
}

#[tokio::test(start_paused = true)]
async fn a_reload_keeps_the_last_good_plan_and_follows_added_and_removed_files() {
    let t0 = utc(2, 56, 0);
    let h = Harness::new(t0, &[("shop.toml", &shop())]).await;
    let mut s = h.scheduler().await;
    h.settle().await;
    let before = s.next_runs();

    // A broken edit of shop, and a new plan.
    std::fs::write(
        h.plans.join("shop.toml"),
        shop().replace("rto = \"10m\"", "rto = \"10 minutes please\""),
    )
    .unwrap();
    std::fs::write(h.plans.join("web.toml"), plan_text("web", "", "")).unwrap();
    s.reload().await;
    h.settle().await;
    let reload_errors = || {
        h.shared()
            .reload_errors
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(reload_errors(), 1);
    let after = s.next_runs();
    for kind in [JobKind::Backup, JobKind::Drill, JobKind::Prune] {
        let key = ("shop".to_string(), kind);
        assert_eq!(after[&key], before[&key], "{kind:?}");
    }
    assert!(after.contains_key(&("web".to_string(), JobKind::Backup)));
    let web_first: Vec<_> = h
        .started()
        .into_iter()
        .filter(|s| s.plan == "web")
        .collect();
    assert_eq!(web_first.len(), 1);
    assert_eq!(web_first[0].trigger, Trigger::FirstRun);

    // web removed: its tracks go; shop, still broken on disk, keeps running.
    std::fs::remove_file(h.plans.join("web.toml")).unwrap();
    s.reload().await;
    assert_eq!(reload_errors(), 2);
    assert!(s.next_runs().keys().all(|(plan, _)| plan == "shop"));
    let run = jittered("shop", JobKind::Backup, utc(3, 0, 0), 2);
    h.at(run.start).await;
    s.tick().await;
    h.settle().await;
    assert!(h
        .started()
        .contains(&started(JobKind::Backup, run, Trigger::Schedule, run.start)));
}

#[tokio::test(start_paused = true)]
async fn the_loop_sleeps_until_the_next_start_and_stops_when_cancelled() {
    let h = Harness::new(utc(2, 56, 0), &[("shop.toml", &shop())]).await;
    let task = tokio::spawn(run(h.shared().clone(), h.token.clone(), h.tracker.clone()));
    h.wait_for("the first backup", |jobs| {
        jobs.iter().any(|j| j.status == JobStatus::Succeeded)
    })
    .await;
    let run = jittered("shop", JobKind::Backup, utc(3, 0, 0), 2);
    h.at(run.start).await;
    h.wait_for("the 03:00 backup", |jobs| {
        jobs.iter()
            .any(|j| j.slot == ms(run.slot) && j.status == JobStatus::Succeeded)
    })
    .await;
    let job = h
        .jobs(JobKind::Backup)
        .await
        .into_iter()
        .find(|j| j.slot == ms(run.slot))
        .unwrap();
    assert_eq!(job.started_at, Some(ms(run.start)));
    h.token.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_job_waiting_for_the_concurrency_limit_past_its_window_is_missed() {
    let gate = Arc::new(Semaphore::new(0));
    let recorder = Recorder {
        gate: Some(gate.clone()),
        ..Recorder::default()
    };
    let shop = shop();
    let h = Harness::with(utc(2, 56, 0), &[("shop.toml", &shop)], recorder, |c| {
        c.max_jobs = 1
    })
    .await;
    // The first backup holds the only place until the gate opens.
    let mut s = h.scheduler().await;
    h.wait_started(1).await;
    let run = jittered("shop", JobKind::Backup, utc(3, 0, 0), 2);
    h.at(run.start).await;
    s.tick().await;
    h.wait_for("the 03:00 backup to queue", |jobs| {
        jobs.iter().any(|j| j.slot == ms(run.slot))
    })
    .await;
    // Its window closes 10 min after its start: it gives up waiting then.
    h.at(run.start + TimeDelta::minutes(10)).await;
    h.wait_for("the 03:00 backup to give up", |jobs| {
        jobs.iter()
            .any(|j| j.slot == ms(run.slot) && j.status == JobStatus::Missed)
    })
    .await;
    gate.add_permits(100);
    h.settle().await;
    let job = h
        .jobs(JobKind::Backup)
        .await
        .into_iter()
        .find(|j| j.slot == ms(run.slot))
        .unwrap();
    assert_eq!(job.status, JobStatus::Missed);
    assert_eq!(
        job.error.as_deref(),
        Some("concurrency limit reached (1 jobs at once, 2 per region) until the start window closed")
    );
    assert_eq!(job.started_at, Some(ms(run.start)));
    assert!(!h.started().iter().any(|s| s.slot == run.slot));
}

#[tokio::test(start_paused = true)]
async fn failing_backups_open_the_vault_breaker_and_later_slots_are_missed() {
    let recorder = Recorder {
        failing_vault: true,
        ..Recorder::default()
    };
    let shop = shop();
    let h = Harness::with(utc(2, 56, 0), &[("shop.toml", &shop)], recorder, |c| {
        c.breaker_threshold = 2;
        c.breaker_cooldown = Duration::from_secs(4 * 3600);
    })
    .await;
    let mut s = h.scheduler().await;
    h.step_until(&mut s, utc(4, 59, 0)).await;
    // The first backup and the 03:00 one failed and opened the breaker;
    // the later slots never reached the vault.
    let backups: Vec<Started> = h
        .started()
        .into_iter()
        .filter(|s| s.kind == JobKind::Backup)
        .collect();
    assert_eq!(backups.len(), 2);
    let jobs = h.jobs(JobKind::Backup).await;
    let statuses: Vec<JobStatus> = jobs.iter().map(|j| j.status).collect();
    let mut expected = vec![JobStatus::Failed; 2];
    expected.extend([JobStatus::Missed; 7]);
    assert_eq!(statuses, expected);
    for j in &jobs[2..] {
        let error = j.error.as_deref().unwrap();
        assert!(
            error.starts_with(
                "circuit open for vault primary file:///srv/vaults/shop after 2 consecutive failures; next probe at "
            ),
            "{error}"
        );
    }
    let metrics = metrics::render(h.shared()).await.unwrap();
    for line in [
        // The failure count is a value, not a label: one series per breaker.
        "lifeboat_breaker_open{breaker=\"vault primary file:///srv/vaults/shop\"} 1",
        "lifeboat_breaker_consecutive_failures{breaker=\"vault primary file:///srv/vaults/shop\"} 2",
        "lifeboat_jobs_total{plan=\"shop\",kind=\"backup\",status=\"missed\"} 7",
        "lifeboat_jobs_total{plan=\"shop\",kind=\"backup\",status=\"failed\"} 2",
        // No point at all: the RPO is breached.
        "lifeboat_objective_breach{plan=\"shop\",objective=\"rpo\",region=\"primary\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in\n{metrics}");
    }
}

#[tokio::test(start_paused = true)]
async fn verify_jobs_run_on_their_slots_and_are_recorded_missed_after_downtime() {
    let h = Harness::new(utc(2, 56, 0), &[("shop.toml", &verified_shop())]).await;
    let mut s = h.scheduler().await;
    let run = jittered("shop", JobKind::Verify, utc(5, 0, 0), 15);
    h.step_until(&mut s, run.start + TimeDelta::minutes(1))
        .await;
    let verifies: Vec<Started> = h
        .started()
        .into_iter()
        .filter(|s| s.kind == JobKind::Verify)
        .collect();
    assert_eq!(
        verifies,
        vec![started(JobKind::Verify, run, Trigger::Schedule, run.start)]
    );
    let jobs = h.jobs(JobKind::Verify).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].status, JobStatus::Succeeded);
    assert_eq!(
        (jobs[0].slot, jobs[0].scheduled_start),
        (ms(run.slot), ms(run.start))
    );
    let metrics = metrics::render(h.shared()).await.unwrap();
    for line in [
        "lifeboat_jobs_total{plan=\"shop\",kind=\"verify\",status=\"succeeded\"} 1",
        "lifeboat_damaged_points{plan=\"shop\",region=\"primary\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }

    // Down for two days: the two slots whose windows closed meanwhile are
    // recorded missed, and the next one is tomorrow's.
    let back = run.start + TimeDelta::days(2) + TimeDelta::minutes(30);
    h.at(back).await;
    let restarted = h.scheduler().await;
    h.settle().await;
    let missed: Vec<(i64, Option<String>)> = h
        .jobs(JobKind::Verify)
        .await
        .into_iter()
        .filter(|j| j.status == JobStatus::Missed)
        .map(|j| (j.slot, j.error))
        .collect();
    let why = Some(Missed::DaemonDown.to_string());
    let day = |n| ms(utc(5, 0, 0) + TimeDelta::days(n));
    assert_eq!(missed, vec![(day(1), why.clone()), (day(2), why)]);
    let next = restarted.next_runs()[&("shop".to_string(), JobKind::Verify)];
    assert_eq!(
        next,
        Some(jittered(
            "shop",
            JobKind::Verify,
            utc(5, 0, 0) + TimeDelta::days(3),
            15
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn a_verify_and_a_prune_of_one_plan_never_run_at_once() {
    let t0 = utc(2, 56, 0);
    let h = Harness::with_orchestrators(t0, &[("shop.toml", &verified_shop())]).await;
    let plan = h.shared().plans.read().await.get("shop").unwrap().clone();
    let spawn = |kind, minute| {
        let slot = t0 + TimeDelta::minutes(minute);
        let run = Run { slot, start: t0 };
        let job = Job {
            plan: plan.clone(),
            kind,
            run,
            trigger: Trigger::Schedule,
        };
        job::spawn(h.shared(), &h.tracker, &h.token, job);
    };
    let outcome = |jobs: Vec<JobRow>, minute| {
        let slot = ms(t0 + TimeDelta::minutes(minute));
        let j = jobs.into_iter().find(|j| j.slot == slot).unwrap();
        (j.status, j.error)
    };
    // A verify holds the plan's verify lease (as the daemon's does while it
    // reads points): the prune waits for its next slot, and so does
    // another verify.
    let lease = crate::lease::Lease::acquire(&h.shared().ctx.catalog, "shop", crate::lease::VERIFY)
        .await
        .unwrap();
    spawn(JobKind::Prune, 1);
    spawn(JobKind::Verify, 1);
    h.settle().await;
    assert_eq!(
        outcome(h.jobs(JobKind::Prune).await, 1),
        (
            JobStatus::Missed,
            Some("a verify of this plan was running".into())
        )
    );
    assert_eq!(
        outcome(h.jobs(JobKind::Verify).await, 1),
        (
            JobStatus::Missed,
            Some("a prune or another verify of this plan was running".into())
        )
    );
    // Released: both run (the plan has no points: nothing to delete or
    // check), one after the other: at once, one of them would be missed.
    lease.release().await;
    spawn(JobKind::Prune, 2);
    h.settle().await;
    spawn(JobKind::Verify, 3);
    h.settle().await;
    assert_eq!(
        outcome(h.jobs(JobKind::Prune).await, 2),
        (JobStatus::Succeeded, None)
    );
    assert_eq!(
        outcome(h.jobs(JobKind::Verify).await, 3),
        (JobStatus::Succeeded, None)
    );
}

#[tokio::test(start_paused = true)]
async fn a_daemon_that_loses_its_catalog_lease_stops() {
    let h = Harness::new(utc(3, 0, 0), &[("shop.toml", &shop())]).await;
    let catalog = h.shared().ctx.catalog.clone();
    let Harness {
        daemon,
        _dir,
        _hold,
        ..
    } = h;
    let run = tokio::spawn(daemon.run_until_stopped(std::future::pending()));
    // Another daemon took the catalog over (as after this one stalled
    // past its lease's expiry): the next heartbeat finds it gone.
    let taken = catalog
        .execute("UPDATE leases SET owner = 'another daemon' WHERE kind = 'daemon'")
        .await
        .unwrap();
    assert_eq!(taken, 1);
    // A minute of the paused clock, a second at a time, each with real time
    // for the catalog's thread to answer.
    for _ in 0..60 {
        if run.is_finished() {
            break;
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)))
            .await
            .unwrap();
    }
    assert!(run.is_finished(), "the daemon still runs without its lease");
    let e = run.await.unwrap().unwrap_err();
    assert!(matches!(e, crate::daemon::DaemonError::LeaseLost(_)), "{e}");
    assert!(e.to_string().contains("lost its lease"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_new_plan_s_drill_before_its_first_complete_point_is_skipped_not_failed() {
    let t0 = utc(2, 56, 0);
    let h = Harness::with_orchestrators(t0, &[("shop.toml", &shop())]).await;
    let plan = h.shared().plans.read().await.get("shop").unwrap().clone();
    let drill = |minute| {
        let slot = t0 + TimeDelta::minutes(minute);
        Job {
            plan: plan.clone(),
            kind: JobKind::Drill,
            run: Run { slot, start: t0 },
            trigger: Trigger::Schedule,
        }
    };
    // Only `files` has ever had a complete point in the drill region.
    h.complete_point("shop", "files").await;
    job::spawn(h.shared(), &h.tracker, &h.token, drill(1));
    h.settle().await;
    let jobs = h.jobs(JobKind::Drill).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].status, JobStatus::Skipped);
    assert_eq!(
        jobs[0].error.as_deref(),
        Some("skipped: no complete point yet of `db` in region `primary` (the plan's first backup has not reached it)")
    );
    assert_eq!(jobs[0].drill_id, None, "no drill is recorded");
    let metrics = metrics::render(h.shared()).await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "lifeboat_jobs_total{plan=\"shop\",kind=\"drill\",status=\"skipped\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("objective=\"drill\""),
        "a skipped drill is no breach:\n{metrics}"
    );

    // Once every resource has had a complete point, even if it is gone
    // since, a drill runs and its failure is the drill's.
    h.complete_point("shop", "db").await;
    h.shared()
        .ctx
        .catalog
        .execute("UPDATE points SET status = 'deleted' WHERE resource = 'db'")
        .await
        .unwrap();
    job::spawn(h.shared(), &h.tracker, &h.token, drill(2));
    h.settle().await;
    let jobs = h.jobs(JobKind::Drill).await;
    assert_eq!(jobs[1].status, JobStatus::Failed, "{:?}", jobs[1]);
    // (It restored nothing: these points have no data behind them.)
    let error = jobs[1].error.as_deref().unwrap_or_default();
    assert!(!error.starts_with("skipped"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_prune_and_a_backup_of_one_plan_due_together_run_in_turn_and_neither_is_missed() {
    let t0 = utc(2, 56, 0);
    let h = Harness::with_orchestrators(t0, &[("shop.toml", &shop())]).await;
    let plan = h.shared().plans.read().await.get("shop").unwrap().clone();
    let spawn = |kind, minute| {
        let slot = t0 + TimeDelta::minutes(minute);
        let job = Job {
            plan: plan.clone(),
            kind,
            run: Run { slot, start: t0 },
            trigger: Trigger::Schedule,
        };
        job::spawn(h.shared(), &h.tracker, &h.token, job);
    };
    // As when a daemon starts inside the hourly prune's jitter with a new
    // plan: the prune holds the plan's backup lease while it works, and a
    // backup that found it taken was missed, leaving the plan unprotected
    // until its next slot (or the prune was missed). In both orders:
    spawn(JobKind::Prune, 1);
    spawn(JobKind::Backup, 1);
    h.settle().await;
    spawn(JobKind::Backup, 2);
    spawn(JobKind::Prune, 2);
    h.settle().await;
    let prunes = h.jobs(JobKind::Prune).await;
    let backups = h.jobs(JobKind::Backup).await;
    assert_eq!((prunes.len(), backups.len()), (2, 2), "one row per slot");
    for prune in &prunes {
        assert_eq!(prune.status, JobStatus::Succeeded, "{prune:?}");
    }
    // The backups ran: they fail on their missing source (/srv/shop), not
    // on the prune.
    for backup in &backups {
        assert_eq!(backup.status, JobStatus::Failed, "{backup:?}");
        let error = backup.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("cannot read path /srv/shop/files"),
            "{error}"
        );
    }
}

/// The daemon keeps the report's days of the plans it runs: shortly after
/// its start, then after each UTC midnight (see `daemon::warm`).
#[tokio::test(start_paused = true)]
async fn the_reports_days_are_kept_after_the_start_and_after_each_midnight() {
    let start = utc(2, 56, 0);
    let h = Harness::new(start, &[("shop.toml", &shop())]).await;
    let cat = &h.shared().ctx.catalog;
    // Protected for three days: a run and a point of each resource then.
    let then = ms(start) - 3 * 86_400_000;
    cat.execute(&format!(
        "INSERT INTO backup_runs (plan, trigger, started_at, finished_at, status)
         VALUES ('shop', 'schedule', {then}, {then}, 'succeeded')"
    ))
    .await
    .unwrap();
    for resource in ["files", "db"] {
        cat.execute(&format!(
            "INSERT INTO points (plan, resource, kind, region, status, started_at, data_time, completed_at)
             VALUES ('shop', '{resource}', 'path', 'primary', 'complete', {then}, {then}, {then})"
        ))
        .await
        .unwrap();
    }
    let kept = || async {
        cat.query_i64("SELECT count(*) FROM exposure_days WHERE plan = 'shop'")
            .await
            .unwrap()
            .unwrap()
    };
    let wait_kept = |n: i64| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while kept().await < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{} days kept, not {n}",
                kept().await
            );
            tokio::task::yield_now().await;
        }
    };
    let task = tokio::spawn(crate::daemon::warm::run(
        h.shared().clone(),
        h.token.clone(),
    ));
    tokio::task::yield_now().await;
    assert_eq!(kept().await, 0, "kept before the first pass");
    // The first pass: the two whole days that ended since protection
    // started, in the plan's one region (its first, partial day is
    // walked by each report, never kept).
    h.at(start + TimeDelta::minutes(3)).await;
    wait_kept(2).await;
    // The next midnight's pass adds the day that just ended.
    h.at(utc(23, 59, 0)).await;
    tokio::task::yield_now().await;
    assert_eq!(kept().await, 2);
    h.at(utc(23, 59, 0) + TimeDelta::minutes(12)).await;
    wait_kept(3).await;
    h.token.cancel();
    task.await.unwrap();
}
