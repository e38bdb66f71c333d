//! One backup run of a plan: a point for every resource in the primary
//! region, then a copy of each into every `copy_to` region, one region after
//! the other. Every point is written `running` first and marked complete
//! only once its data is durable where it belongs.
//!
//! The run is a pipeline: recover what an earlier run left `running`,
//! start the run, run the plan's `before` hook, take the points, copy them
//! region by region, run its `after` hook (always, once the run started),
//! finish.
//! Each step of a point (preflight, snapshot, copy) is its kind's, in
//! `resource`; this module only records what happened.

use serde::Serialize;
use tracing::{info, instrument, warn};

use crate::catalog::{Catalog, CatalogError, Flags, NewPoint, Point, PointCompletion, RunStatus};
use crate::context::Context;
use crate::lease::{self, Lease, LeaseError};
use crate::plan::{Hook, Plan, Resource};
use crate::resource::{self, Kind, Location, Place, PointFlag, ResourceError};
use crate::time::{now_ms, Millis};

/// Why a backup run could not run or be recorded. A point that fails is
/// not an error of the run: it is recorded failed and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Another backup of the plan holds its lease (nothing was recorded).
    #[error(transparent)]
    Lock(#[from] LeaseError),
    /// The catalog could not be read or written; the run stops there and
    /// what it left `running` is failed by the plan's next backup (or the
    /// daemon at start-up).
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// What a run did; failed points are in `points` with their error.
#[derive(Debug)]
pub struct BackupOutcome {
    /// The run's id in the catalog.
    pub run_id: i64,
    /// How the run ended: succeeded, partial or failed.
    pub status: RunStatus,
    /// What went wrong, as recorded with the run: failed hooks, failed
    /// points.
    pub error: Option<String>,
    /// The `before` and `after` hooks that ran.
    pub hooks: Vec<HookRun>,
    /// Every point the run recorded, primary points and copies, in the
    /// order they were started, as the catalog holds them at the end.
    pub points: Vec<Point>,
}

/// A point is flagged `shrunk` when it holds less than this fraction of the
/// previous point's files or bytes (an emptied source, a wrong mount,
/// ransomware), provided the previous one was not tiny.
const SHRINK_RATIO: f64 = 0.5;
/// A previous point under this many bytes is too small to judge by bytes.
const SHRINK_MIN_BYTES: i64 = 64 * 1024;
/// A previous point under this many files is too small to judge by files.
const SHRINK_MIN_FILES: i64 = 10;

/// Runs one backup of `plan`. `slot` is the cron slot a scheduled run
/// belongs to (recorded with the run; RDS snapshots are named from it).
/// `trigger` says what started it (`manual`, `schedule`) and is
/// recorded with the run. Holds the plan's backup lease throughout, and
/// first fails what an interrupted earlier run left `running`.
#[instrument(skip_all, fields(plan = %plan.name))]
pub async fn run(
    ctx: &Context,
    plan: &Plan,
    trigger: &str,
    slot: Option<Millis>,
) -> Result<BackupOutcome, BackupError> {
    let _lease = Lease::acquire(&ctx.catalog, &plan.name, lease::BACKUP).await?;
    let interrupted = fail_interrupted(&ctx.catalog, plan).await?;
    if interrupted > 0 {
        warn!(
            points = interrupted,
            "marked points of an interrupted earlier backup as failed"
        );
    }
    let mut run = Run::start(ctx, plan, trigger, slot).await?;
    if let Some(hook) = &plan.backup.before {
        run.hook(Stage::Before, hook, None).await;
    }
    let taken = if run.hook_failed(Stage::Before) {
        Ok(false)
    } else {
        // Boxed: the state of every kind's snapshot and copy nested in
        // this one future is deeper than the compiler's layout queries go.
        Box::pin(run.take_points()).await
    };
    // `after` runs whatever happened once the run started: it may be
    // what thaws the application `before` froze.
    if let Some(hook) = &plan.backup.after {
        let so_far = match &taken {
            Ok(any) => run.status(*any),
            Err(_) => RunStatus::Failed,
        };
        run.hook(Stage::After, hook, Some(so_far)).await;
    }
    let any_taken = taken?;
    run.finish(any_taken).await
}

/// Which hook of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// `[backup] before`.
    Before,
    /// `[backup] after`.
    After,
}

impl Stage {
    /// As plans and records name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Before => "before",
            Stage::After => "after",
        }
    }
}

/// How a hook ended.
#[derive(Debug, Clone, Serialize)]
pub struct HookRun {
    /// Which one.
    pub hook: Stage,
    /// Exit 0 within its timeout.
    pub passed: bool,
    /// Its exit status and the last lines of its output.
    pub detail: String,
    /// How long it ran.
    pub seconds: f64,
}

/// A run in progress: what it recorded so far.
struct Run<'a> {
    cat: &'a Catalog,
    plan: &'a Plan,
    id: i64,
    slot: Option<Millis>,
    work_dir: std::path::PathBuf,
    point_ids: Vec<i64>,
    failures: usize,
    hooks: Vec<HookRun>,
}

impl<'a> Run<'a> {
    async fn start(
        ctx: &'a Context,
        plan: &'a Plan,
        trigger: &str,
        slot: Option<Millis>,
    ) -> Result<Run<'a>, CatalogError> {
        let id = ctx
            .catalog
            .start_run(&plan.name, trigger, slot, now_ms())
            .await?;
        info!(run_id = id, "backup started");
        Ok(Run {
            cat: &ctx.catalog,
            plan,
            id,
            slot,
            work_dir: ctx.tmp_dir(),
            point_ids: Vec::new(),
            failures: 0,
            hooks: Vec::new(),
        })
    }

    /// Records a new `running` point of `res` in `region`.
    async fn new_point(
        &mut self,
        res: &Resource,
        kind: Kind,
        region: &str,
        source: Option<i64>,
    ) -> Result<(i64, Millis), CatalogError> {
        let started_at = now_ms();
        let id = self
            .cat
            .insert_point(NewPoint {
                plan: &self.plan.name,
                resource: &res.name,
                kind,
                region,
                run_id: Some(self.id),
                source_point_id: source,
                started_at,
            })
            .await?;
        self.point_ids.push(id);
        Ok((id, started_at))
    }

    /// Records where point `id` will write before it does, and shows it at
    /// once, so prune finds and removes what a failed or killed run left.
    /// Every kind may leave something: objects copied one by one, a
    /// snapshot that became available after its run gave up, and for the
    /// kinds that write one artifact atomically, the temporary file of a
    /// process killed mid-put or the whole artifact of one killed between
    /// its rename and the catalog's update (found by crash trials).
    async fn record_planned(
        &self,
        id: i64,
        place: &Place<'_>,
        at: &Location,
    ) -> Result<(), CatalogError> {
        let shown = place.url_of(at).await;
        self.cat.set_point_stored(id, at, Some(&shown)).await
    }

    /// Every object a point wrote into a locked region is locked until at
    /// most now + retain: recorded before the point is complete (or
    /// failed), so prune never asks to delete a version still locked.
    async fn record_lock(
        &self,
        id: i64,
        place: &Place<'_>,
        at: &Location,
    ) -> Result<(), CatalogError> {
        match place.lock_until(at, now_ms()) {
            Some(until) => self.cat.set_point_locked_until(id, until).await,
            None => Ok(()),
        }
    }

    /// Takes a point of `res` in the primary region; the point, if it
    /// completed.
    async fn take_point(
        &mut self,
        res: &Resource,
        primary: &Place<'_>,
    ) -> Result<Option<Point>, CatalogError> {
        let kind = Kind::of(&res.spec);
        let (id, started_at) = self.new_point(res, kind, primary.region, None).await?;
        let at = resource::new_location(&self.plan.name, res, started_at, self.slot, id);
        let taken = match resource::preflight(kind, primary).await {
            Err(e) => Err(e),
            Ok(()) => {
                self.record_planned(id, primary, &at).await?;
                let taken = resource::snapshot(res, primary, &at, id, &self.work_dir).await;
                self.record_lock(id, primary, &at).await?;
                taken
            }
        };
        let (snap, stored) = match taken {
            Ok(taken) => taken,
            Err(e) => {
                warn!(resource = %res.name, region = %primary.region, error = %e, "snapshot failed");
                let error = format!("snapshot in region {}: {e}", primary.region);
                self.cat.fail_point(id, &error, None).await?;
                self.failures += 1;
                return Ok(None);
            }
        };
        let mut flags = Flags::new(snap.flags.iter().copied());
        if self.shrunk(res, primary.region, &snap).await? {
            warn!(resource = %res.name, "point is far smaller than the previous one: flagged `shrunk`");
            flags.insert(PointFlag::Shrunk);
        }
        let completion = PointCompletion {
            data_time: snap.data_time,
            completed_at: now_ms(),
            size_bytes: snap.size_bytes,
            content_bytes: snap.content_bytes,
            file_count: snap.file_count,
            sha256: snap.sha256,
            manifest_sha256: snap.manifest_sha256,
            location: primary.url_of(&stored).await,
            stored,
            flags,
        };
        self.cat.complete_point(id, &completion).await?;
        info!(resource = %res.name, point = id, region = %primary.region, "point complete");
        self.cat.point(id).await
    }

    /// Whether a new point holds far less than the newest complete one of
    /// its resource.
    async fn shrunk(
        &self,
        res: &Resource,
        region: &str,
        snap: &resource::Snapshot,
    ) -> Result<bool, CatalogError> {
        let previous = self
            .cat
            .newest_complete_point(&self.plan.name, &res.name, region)
            .await?;
        Ok(previous
            .is_some_and(|prev| shrunk(&prev, snap.file_count as i64, snap.content_bytes as i64)))
    }

    /// Copies the point `source` of `res` from `src` into `dst`.
    async fn copy_point(
        &mut self,
        res: &Resource,
        source: &Point,
        src: &Place<'_>,
        dst: &Place<'_>,
    ) -> Result<(), CatalogError> {
        let (id, _) = self
            .new_point(res, source.kind, dst.region, Some(source.id))
            .await?;
        let copied = match (&source.stored, resource::preflight(source.kind, dst).await) {
            (None, _) => Err(ResourceError::Other(format!(
                "point {} records no location",
                source.id
            ))),
            (_, Err(e)) => Err(e),
            (Some(from), Ok(())) => {
                self.record_planned(id, dst, &from.for_copy()).await?;
                let size = source.size_bytes.unwrap_or(0).max(0) as u64;
                let copied = resource::copy(source.kind, &res.name, src, from, dst, id, size).await;
                self.record_lock(id, dst, from).await?;
                copied.and_then(|c| verify_copy(source, c))
            }
        };
        match copied {
            Ok(c) => {
                let completion = PointCompletion {
                    // A copy holds its source's data.
                    data_time: source.data_time.unwrap_or(source.started_at),
                    completed_at: now_ms(),
                    size_bytes: c.size,
                    content_bytes: source.content_bytes.unwrap_or(0) as u64,
                    file_count: source.file_count.unwrap_or(0) as u64,
                    sha256: c.sha256.unwrap_or_default(),
                    // The same bytes as the source's (checked when they
                    // went through Lifeboat; any restore checks it again).
                    manifest_sha256: source.manifest_sha256.clone(),
                    location: dst.url_of(&c.location).await,
                    stored: c.location,
                    flags: source.flags.clone(),
                };
                self.cat.complete_point(id, &completion).await?;
                info!(resource = %res.name, point = id, region = %dst.region, "copy complete");
            }
            Err(e) => {
                warn!(resource = %res.name, region = %dst.region, error = %e, "copy failed");
                let error = format!("copy of point {} to region {}: {e}", source.id, dst.region);
                self.cat.fail_point(id, &error, source.data_time).await?;
                self.failures += 1;
            }
        }
        Ok(())
    }

    /// Records how the run ended; `any_taken`: a point was taken at all.
    /// A point of every resource in the primary region, then the copies:
    /// whether any point was taken.
    async fn take_points(&mut self) -> Result<bool, BackupError> {
        let plan = self.plan;
        let primary = Place::writing(plan, &plan.backup.primary_region);
        let mut taken = Vec::new();
        for res in &plan.resources {
            if let Some(point) = self.take_point(res, &primary).await? {
                taken.push((res, point));
            }
        }
        // One region after the other, so a slow or failing region does not
        // compete with the others for the same source.
        for region in &plan.backup.copy_to {
            let dst = Place::writing(plan, region);
            for (res, source) in &taken {
                self.copy_point(res, source, &primary, &dst).await?;
            }
        }
        Ok(!taken.is_empty())
    }

    /// Runs a hook, from the plan file's folder, and keeps how it ended.
    async fn hook(&mut self, stage: Stage, hook: &Hook, so_far: Option<RunStatus>) {
        let mut env = vec![
            ("LIFEBOAT_PLAN".to_string(), self.plan.name.clone()),
            ("LIFEBOAT_RUN_ID".to_string(), self.id.to_string()),
            ("LIFEBOAT_HOOK".to_string(), stage.as_str().to_string()),
        ];
        if let Some(status) = so_far {
            env.push((
                "LIFEBOAT_BACKUP_STATUS".to_string(),
                status.as_str().to_string(),
            ));
        }
        let start = std::time::Instant::now();
        let ran = crate::program::run(&hook.argv, &env, self.plan.dir(), hook.timeout).await;
        let seconds = start.elapsed().as_secs_f64();
        match &ran {
            Ok(detail) => info!(
                run_id = self.id,
                hook = stage.as_str(),
                detail,
                "hook passed"
            ),
            Err(detail) => warn!(
                run_id = self.id,
                hook = stage.as_str(),
                detail,
                "hook failed"
            ),
        }
        self.hooks.push(HookRun {
            hook: stage,
            passed: ran.is_ok(),
            detail: ran.unwrap_or_else(|e| e),
            seconds,
        });
    }

    fn hook_failed(&self, stage: Stage) -> bool {
        self.hooks.iter().any(|h| h.hook == stage && !h.passed)
    }

    /// How the run went, hooks included (`any_taken`: whether any point
    /// was taken).
    fn status(&self, any_taken: bool) -> RunStatus {
        if self.hook_failed(Stage::Before) {
            return RunStatus::Failed;
        }
        let status = match (self.failures, any_taken) {
            (0, _) => RunStatus::Succeeded,
            (_, false) => RunStatus::Failed,
            (_, true) => RunStatus::Partial,
        };
        match status {
            RunStatus::Succeeded if self.hook_failed(Stage::After) => RunStatus::Partial,
            s => s,
        }
    }

    /// What went wrong, as recorded with the run.
    fn error(&self) -> Option<String> {
        let mut parts = Vec::new();
        for h in self.hooks.iter().filter(|h| !h.passed) {
            parts.push(format!("{} hook failed: {}", h.hook.as_str(), h.detail));
        }
        if self.failures > 0 {
            parts.push(format!("{} point(s) failed", self.failures));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    async fn finish(self, any_taken: bool) -> Result<BackupOutcome, BackupError> {
        let status = self.status(any_taken);
        let error = self.error();
        self.cat
            .finish_run(self.id, status, error.as_deref(), now_ms())
            .await?;
        info!(
            run_id = self.id,
            status = status.as_str(),
            "backup finished"
        );
        let mut points = Vec::new();
        for id in &self.point_ids {
            points.extend(self.cat.point(*id).await?);
        }
        Ok(BackupOutcome {
            run_id: self.id,
            status,
            error,
            hooks: self.hooks,
            points,
        })
    }
}

/// Records the plan's `running` backups and points as failed
/// (interrupted): call holding the plan's backup lease, when anything still
/// running belongs to a holder that is gone. A point of a locked region
/// may have written locked objects before it died, each locked until at
/// most now + retain: that bound is recorded first, so prune waits for it
/// before removing what the point left. Returns how many points failed.
pub async fn fail_interrupted(cat: &Catalog, plan: &Plan) -> Result<u64, CatalogError> {
    let now = now_ms();
    for region in plan.point_regions() {
        if let Some(until) = plan.lock_until(region, now) {
            cat.bound_lock_of_running_points(&plan.name, region, until)
                .await?;
        }
    }
    cat.fail_interrupted_backups(&plan.name, now).await
}

/// A streamed copy must hash like its source; a server-side copy (no hash
/// of ours: the store verified its checksums) must at least have its size.
/// A streamed manifest must be the source's, byte for byte.
fn verify_copy(source: &Point, c: resource::Copied) -> Result<resource::Copied, ResourceError> {
    if let (Some(got), Some(want)) = (&c.manifest_sha256, &source.manifest_sha256) {
        if got != want {
            return Err(ResourceError::Mismatch(format!(
                "copied manifest has sha256 {got}, the source point recorded {want}"
            )));
        }
    }
    match &c.sha256 {
        Some(sha) if Some(sha) != source.sha256.as_ref() => Err(ResourceError::Mismatch(format!(
            "copied bytes have sha256 {sha}, the source point recorded {}",
            source.sha256.as_deref().unwrap_or("?")
        ))),
        None if source.size_bytes != Some(c.size as i64) => Err(ResourceError::Mismatch(format!(
            "server-side copy has {} bytes, the source point {}",
            c.size,
            source.size_bytes.unwrap_or(0)
        ))),
        Some(_) => Ok(c),
        None => Ok(resource::Copied {
            sha256: source.sha256.clone(),
            ..c
        }),
    }
}

/// Whether `files` / `bytes` are under [`SHRINK_RATIO`] of the previous
/// point's, counting only a measure in which the previous one was not tiny.
fn shrunk(prev: &Point, files: i64, bytes: i64) -> bool {
    let prev_files = prev.file_count.unwrap_or(0);
    let prev_bytes = prev.content_bytes.unwrap_or(0);
    (prev_bytes >= SHRINK_MIN_BYTES && (bytes as f64) < prev_bytes as f64 * SHRINK_RATIO)
        || (prev_files >= SHRINK_MIN_FILES && (files as f64) < prev_files as f64 * SHRINK_RATIO)
}
