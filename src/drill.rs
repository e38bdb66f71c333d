//! One drill: choose the points, restore them into scratch places, run the
//! checks, measure RTO and RPO exactly as DESIGN.md defines them, clean up
//! (whatever happened), and record everything.
//!
//! - Drill RPO = drill start − `data_time` of the point restored (the worst
//!   resource's).
//! - Drill RTO = time all checks passed − drill start; none if any fails.
//!
//! The drill is a pipeline of named phases (choose → restore → check →
//! measure). Once the drill is recorded as started, [`run`] always cleans up
//! and always records how the drill ended, whichever phase failed and how:
//! the phases return their errors to it instead of leaving it early.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{info, instrument, warn};

use crate::catalog::{
    Catalog, CatalogError, DrillOutcome, DrillRecord, DrillStatus, NewCheck, Point,
};
use crate::context::Context;
use crate::lease::{self, Lease, LeaseError};
use crate::plan::{Cleanup, Plan, PointChoice, Resource};
use crate::resource::{self, Place, Scratch, ScratchFor};
use crate::restore::choose::{Candidates, Moment};
use crate::restore::steps::{self, RestoredResource};
use crate::time::{now_ms, Millis};

/// Which points to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointSelector {
    /// The same choice (latest, oldest, random) for every resource,
    /// overriding the plan's `[drill] point`.
    Choice(PointChoice),
    /// A point id: pins that point's resource; the others use the plan's
    /// `[drill] point` choice.
    Id(i64),
}

/// Text that names no point: not an id, nor `latest`, `oldest`, `random`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a point id, nor latest, oldest or random")]
pub struct BadSelector(String);

impl PointSelector {
    /// `latest`, `oldest`, `random`, or a point id, as `--point` takes
    /// them.
    pub fn parse(text: &str) -> Result<PointSelector, BadSelector> {
        if let Some(c) = PointChoice::parse(text) {
            return Ok(PointSelector::Choice(c));
        }
        text.parse::<i64>()
            .map(PointSelector::Id)
            .map_err(|_| BadSelector(text.to_string()))
    }
}

/// How to run one drill: the command line's flags, or the daemon's
/// defaults (all `None` / `false`).
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Restore from this region instead of the plan's drill region; it
    /// must hold points, and not be the primary under `isolate_primary`.
    pub region: Option<String>,
    /// Which points to restore; `None` takes the plan's `[drill] point`.
    pub point: Option<PointSelector>,
    /// Keep what was restored whatever the plan's `cleanup` says.
    pub keep: bool,
    /// What started the drill (`manual`, `schedule`), recorded with it.
    pub trigger: String,
}

/// Why a drill did not run, or stopped before it could be judged. A drill
/// whose restore or checks fail is not an error: it is a recorded verdict.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Bad input: the drill did not start.
    #[error("{0}")]
    Invalid(String),
    /// Another drill of the plan holds its lock (nothing was recorded).
    #[error(transparent)]
    Lock(#[from] LeaseError),
    /// The catalog could not be read or written. Once the drill was
    /// recorded as started it is still cleaned up, and recorded failed
    /// if the catalog allows.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A fault injected by a test into a phase.
    #[cfg(test)]
    #[error("injected failure in the {0:?} phase")]
    Injected(Phase),
}

/// The phases of a drill, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Pick a point per resource among those complete at drill start.
    Choose,
    /// Restore each chosen point into its scratch place and verify it.
    Restore,
    /// Run the kinds' built-in checks, then the plan's SQL checks.
    Check,
    /// Compute RTO and RPO and record the checks.
    Measure,
}

/// A finished drill as recorded.
#[derive(Debug)]
pub struct DrillRun {
    /// The drill as the catalog now holds it: verdict, RTO, RPO, phases.
    pub record: DrillRecord,
    /// The scratch folder left in place (`--keep`, or the plan's
    /// cleanup), if it exists.
    pub kept: Option<PathBuf>,
    /// Scratch databases kept (`--keep`, or the plan's cleanup): where to
    /// look at the restored data.
    pub kept_databases: Vec<String>,
}

/// Runs one drill of `plan`: checks the options, takes the plan's drill
/// lock, cleans up after interrupted drills, then runs the phases and the
/// clean-up and records the outcome. Returns `Ok` for a drill that ran,
/// passed or not; `Err` when it could not start, or a phase stopped with
/// an error (recorded as failed before it is returned).
#[instrument(skip_all, fields(plan = %plan.name))]
pub async fn run(ctx: &Context, plan: &Plan, opts: &DrillOptions) -> Result<DrillRun, DrillError> {
    let region = drill_region(plan, opts)?;
    let pinned = pinned_point(&ctx.catalog, plan, opts, &region).await?;
    let choice = match opts.point {
        Some(PointSelector::Choice(c)) => c,
        _ => plan.drill.point,
    };
    let _lease = Lease::acquire(&ctx.catalog, &plan.name, lease::DRILL).await?;
    clean_up_interrupted(ctx, plan).await?;

    let place = Place::reading(plan, &region);
    let mut drill = Drill::start(ctx, plan, &place, &opts.trigger).await?;
    let attempt = drill.attempt(choice, pinned.as_ref()).await;
    let passed = attempt.as_ref().is_ok_and(|m| m.passed);
    let keep = opts.keep
        || match plan.drill.cleanup {
            Cleanup::Always => false,
            Cleanup::OnSuccess => !passed,
            Cleanup::Never => true,
        };
    let cleaned = drill.clean_up(keep).await;
    drill.finish(attempt, cleaned).await
}

/// The region a drill restores from, checked against the plan.
fn drill_region(plan: &Plan, opts: &DrillOptions) -> Result<String, DrillError> {
    let region = opts
        .region
        .clone()
        .unwrap_or_else(|| plan.drill.region.clone());
    if !plan.point_regions().contains(&region.as_str()) {
        return Err(DrillError::Invalid(format!(
            "plan `{}` keeps no points in region `{region}` (regions: {})",
            plan.name,
            plan.point_regions().join(", ")
        )));
    }
    if plan.drill.isolate_primary && region == plan.backup.primary_region {
        return Err(DrillError::Invalid(format!(
            "plan `{}` sets isolate_primary: a drill may not restore from the primary region `{region}`",
            plan.name
        )));
    }
    Ok(region)
}

/// The point pinned on the command line, checked: of this plan, of a
/// resource it still has, complete in the drill's region.
async fn pinned_point(
    cat: &Catalog,
    plan: &Plan,
    opts: &DrillOptions,
    region: &str,
) -> Result<Option<Point>, DrillError> {
    let Some(PointSelector::Id(id)) = opts.point else {
        return Ok(None);
    };
    let p = steps::point_of_plan(cat, plan, id)
        .await?
        .map_err(DrillError::Invalid)?;
    if p.region == region && p.status == crate::catalog::PointStatus::Damaged {
        return Err(DrillError::Invalid(format!(
            "point {id} is {}; `lifeboat verify` makes it complete again if its data comes back",
            crate::verify::damaged_note(&p)
        )));
    }
    if p.region != region || !p.is_complete() {
        return Err(DrillError::Invalid(format!(
            "point {id} is {} in region `{}`; a drill in region `{region}` needs a complete point there",
            p.status.as_str(),
            p.region
        )));
    }
    Ok(Some(p))
}

/// What the measure phase established.
#[derive(Debug, Clone, Copy)]
struct Measured {
    passed: bool,
    rto_ms: Option<i64>,
    rpo_ms: Option<i64>,
}

/// What the clean-up did.
#[derive(Debug, Default)]
struct Cleaned {
    kept: Option<PathBuf>,
    kept_databases: Vec<String>,
    error: Option<String>,
    ms: i64,
}

/// A drill in progress: what it chose, restored and checked so far.
struct Drill<'a> {
    cat: &'a Catalog,
    plan: &'a Plan,
    place: &'a Place<'a>,
    id: i64,
    /// RTO and RPO are measured from this instant.
    started_at: Millis,
    clock: Instant,
    /// The drill's scratch folder; one subfolder per resource.
    dir: PathBuf,
    chosen: Vec<(&'a Resource, Option<Point>)>,
    /// Per resource chosen, the damaged points the choice passed over,
    /// said in its `restore` check (`point 12 skipped: damaged …`).
    skipped: Vec<String>,
    restored: Vec<RestoredResource<'a>>,
    checks: Vec<NewCheck>,
    phase_ms: [i64; 3],
}

impl<'a> Drill<'a> {
    /// Records the drill as started: from here on it is cleaned up and
    /// finished, whatever happens.
    async fn start(
        ctx: &'a Context,
        plan: &'a Plan,
        place: &'a Place<'a>,
        trigger: &str,
    ) -> Result<Drill<'a>, CatalogError> {
        let started_at = now_ms();
        let clock = Instant::now();
        let id = ctx
            .catalog
            .start_drill(
                &plan.name,
                place.region,
                trigger,
                started_at,
                plan.rto.as_millis() as i64,
                plan.rpo.as_millis() as i64,
            )
            .await?;
        info!(drill = id, region = %place.region, "drill started");
        Ok(Drill {
            cat: &ctx.catalog,
            plan,
            place,
            id,
            started_at,
            clock,
            dir: ctx.drills_dir().join(id.to_string()),
            chosen: Vec::new(),
            skipped: Vec::new(),
            restored: Vec::new(),
            checks: Vec::new(),
            phase_ms: [0; 3],
        })
    }

    /// choose → restore → check → measure.
    async fn attempt(
        &mut self,
        choice: PointChoice,
        pinned: Option<&Point>,
    ) -> Result<Measured, DrillError> {
        let t = Instant::now();
        let chosen = self.choose(choice, pinned).await;
        self.phase_ms[0] = t.elapsed().as_millis() as i64;
        chosen?;
        fail_point(Phase::Choose)?;
        let t = Instant::now();
        self.restore().await;
        self.phase_ms[1] = t.elapsed().as_millis() as i64;
        fail_point(Phase::Restore)?;
        let t = Instant::now();
        self.check().await;
        self.phase_ms[2] = t.elapsed().as_millis() as i64;
        fail_point(Phase::Check)?;
        let measured = self.measure();
        fail_point(Phase::Measure)?;
        Ok(measured)
    }

    /// Per resource, among the points complete in the drill's region at
    /// drill start: the plan's choice (or the pinned point and the rest of
    /// its moment), the way a restore chooses (`restore::choose`).
    async fn choose(
        &mut self,
        choice: PointChoice,
        pinned: Option<&Point>,
    ) -> Result<(), CatalogError> {
        let mut candidates = Vec::new();
        for res in &self.plan.resources {
            let points: Vec<Point> = self
                .cat
                .complete_points(&self.plan.name, &res.name, self.place.region)
                .await?
                .into_iter()
                .filter(|p| p.completed_at.is_some_and(|c| c <= self.started_at))
                .collect();
            candidates.push(Candidates {
                resource: res.name.clone(),
                points,
            });
        }
        let moment = match pinned {
            Some(p) => Moment::Pinned(Box::new(p.clone())),
            None => Moment::Choice(choice),
        };
        let chosen = crate::restore::choose::choose(&candidates, &moment);
        for (res, point) in self.plan.resources.iter().zip(chosen.points) {
            if let Some(p) = &point {
                self.cat.add_drill_point(self.id, p.id).await?;
            }
            let skipped = match pinned {
                Some(p) if p.resource == res.name => String::new(),
                _ => self.skipped_damaged(res, point.as_ref(), choice).await?,
            };
            self.skipped.push(skipped);
            self.chosen.push((res, point));
        }
        Ok(())
    }

    /// The damaged points of `res` the choice passed over, said: a drill
    /// never restores a damaged point, and never hides that it skipped one.
    async fn skipped_damaged(
        &self,
        res: &Resource,
        chosen: Option<&Point>,
        choice: PointChoice,
    ) -> Result<String, CatalogError> {
        let damaged = self
            .cat
            .damaged_points(&self.plan.name, &res.name, self.place.region)
            .await?;
        let notes: Vec<String> = crate::verify::skipped_by(&damaged, chosen, choice)
            .into_iter()
            .map(|d| {
                warn!(drill = self.id, point = d.id, "damaged point skipped");
                format!("point {} skipped: {}", d.id, crate::verify::damaged_note(d))
            })
            .collect();
        Ok(notes.join("; "))
    }

    /// Where this drill restores `res`.
    fn scratch(&self, res: &Resource) -> Scratch {
        scratch_of(self.plan, self.id, &self.dir, res)
    }

    /// Restores every chosen point and verifies it against its manifest;
    /// each restore is the resource's `restore` check.
    async fn restore(&mut self) {
        for ((res, point), skipped) in self.chosen.iter().zip(&self.skipped) {
            let t = Instant::now();
            let outcome = match point {
                None => Err(format!(
                    "no complete point of `{}` in region `{}` at drill start",
                    res.name, self.place.region
                )),
                Some(p) => {
                    let scratch = self.scratch(res);
                    steps::restore_point(self.cat, res, p, self.place, &scratch).await
                }
            };
            let mut prefix = point
                .as_ref()
                .map(|p| format!("point {}: ", p.id))
                .unwrap_or_default();
            if !skipped.is_empty() {
                prefix = format!("{prefix}({skipped}) ");
            }
            self.checks.push(NewCheck {
                name: "restore".into(),
                resource: res.name.clone(),
                passed: outcome.is_ok(),
                detail: match &outcome {
                    Ok(r) => format!("{prefix}{}", r.verification),
                    Err(e) => format!("{prefix}{e}"),
                },
                ms: t.elapsed().as_millis() as i64,
            });
            if let Ok(restored) = outcome {
                self.restored.push(RestoredResource {
                    resource: res,
                    restored,
                    scratch: self.scratch(res),
                });
            }
        }
    }

    /// The kinds' built-in checks on each restore, then the plan's SQL
    /// checks: the same as a restore runs.
    async fn check(&mut self) {
        let chosen: Vec<&str> = self
            .plan
            .resources
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        let checks = steps::run_checks(self.plan, self.place, &self.restored, &chosen).await;
        self.checks.extend(checks);
    }

    /// RTO ends when the last check passed: now, before the clean-up. RPO
    /// is the worst resource's, and only when every resource had a point.
    fn measure(&self) -> Measured {
        let passed = self.checks.iter().all(|c| c.passed);
        let rto_ms = passed.then(|| self.clock.elapsed().as_millis() as i64);
        let rpo_ms = self
            .chosen
            .iter()
            .filter_map(|(_, p)| p.as_ref()?.data_time)
            .map(|data_time| self.started_at - data_time)
            .max()
            .filter(|_| self.chosen.iter().all(|(_, p)| p.is_some()));
        Measured {
            passed,
            rto_ms,
            rpo_ms,
        }
    }

    /// Keeps what was restored, or removes whatever each restore got to
    /// create (even half-way) and the scratch folder.
    async fn clean_up(&self, keep: bool) -> Cleaned {
        let t = Instant::now();
        let mut cleaned = Cleaned::default();
        if keep {
            cleaned.kept = self.dir.exists().then(|| self.dir.clone());
            for r in &self.restored {
                if let Some(db) = r.restored.database() {
                    info!(drill = self.id, database = %db, "scratch database kept");
                    cleaned.kept_databases.push(db.to_string());
                }
            }
        } else {
            for (res, _) in self.chosen.iter().filter(|(_, p)| p.is_some()) {
                if let Err(e) = resource::discard(&res.spec, self.place, &self.scratch(res)).await {
                    warn!(resource = %res.name, error = %e, "drill cleanup failed");
                    cleaned
                        .error
                        .get_or_insert_with(|| format!("cleanup of `{}` failed: {e}", res.name));
                }
            }
            if let Err(e) = remove_dir(&self.dir).await {
                warn!(dir = %self.dir.display(), error = %e, "drill cleanup failed");
                cleaned.error.get_or_insert_with(|| {
                    format!("cleanup of {} failed: {e}", self.dir.display())
                });
            }
        }
        cleaned.ms = t.elapsed().as_millis() as i64;
        cleaned
    }

    /// The one line a finished drill logs: its verdict with the RTO and
    /// RPO measured against their objectives and the checks that failed,
    /// so a log pipeline alone can tell what went wrong.
    fn log_finished(&self, o: &DrillOutcome) {
        let secs = |ms: Option<i64>| ms.map(|v| v as f64 / 1000.0);
        let rto_objective = self.plan.rto.as_secs_f64();
        let rpo_objective = self.plan.rpo.as_secs_f64();
        let met = |v: Option<f64>, objective: f64| v.is_some_and(|v| v <= objective);
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} ({}): {}", c.name, c.resource, c.detail))
            .collect();
        let passed = o.status == DrillStatus::Passed;
        let (rto, rpo) = (secs(o.rto_ms), secs(o.rpo_ms));
        info!(
            drill = self.id,
            region = %self.place.region,
            passed,
            met_objectives = passed && met(rto, rto_objective) && met(rpo, rpo_objective),
            rto_seconds = rto,
            rto_objective_seconds = rto_objective,
            rpo_seconds = rpo,
            rpo_objective_seconds = rpo_objective,
            failed_checks = ?failed,
            error = o.error.as_deref(),
            "drill finished"
        );
    }

    /// Records how the drill ended and appends its evidence record. A
    /// phase that failed with an error fails the drill, saying why; the
    /// error is returned once recorded.
    async fn finish(
        self,
        attempt: Result<Measured, DrillError>,
        cleaned: Cleaned,
    ) -> Result<DrillRun, DrillError> {
        let (measured, fault) = match attempt {
            Ok(m) => (m, None),
            Err(e) => {
                let none = Measured {
                    passed: false,
                    rto_ms: None,
                    rpo_ms: None,
                };
                (none, Some(e))
            }
        };
        let failed_check = self.checks.iter().find(|c| !c.passed).map(|c| {
            format!(
                "check `{}` of `{}` failed: {}",
                c.name, c.resource, c.detail
            )
        });
        let error = fault
            .as_ref()
            .map(|e| format!("drill stopped: {e}"))
            .or(failed_check)
            .or(cleaned.error);
        let [choose_ms, restore_ms, checks_ms] = self.phase_ms;
        let outcome = DrillOutcome {
            status: DrillStatus::verdict(measured.passed),
            finished_at: now_ms(),
            rto_ms: measured.rto_ms,
            rpo_ms: measured.rpo_ms,
            choose_ms,
            restore_ms,
            checks_ms,
            cleanup_ms: cleaned.ms,
            kept_path: cleaned.kept.as_ref().map(|p| p.display().to_string()),
            error,
        };
        let recorded = self.record(&outcome).await;
        self.log_finished(&outcome);
        match (fault, recorded) {
            (Some(fault), Err(e)) => {
                warn!(drill = self.id, error = %e, "cannot record the drill's failure");
                Err(fault)
            }
            (Some(fault), Ok(_)) => Err(fault),
            (None, recorded) => Ok(DrillRun {
                record: recorded?,
                kept: cleaned.kept,
                kept_databases: cleaned.kept_databases,
            }),
        }
    }

    /// Writes how the drill ended, reads it back, and appends its evidence
    /// record, whatever the verdict: every finished drill is in the chain.
    /// The checks that ran are recorded too, also those of a drill stopped
    /// half-way.
    async fn record(&self, outcome: &DrillOutcome) -> Result<DrillRecord, DrillError> {
        for c in &self.checks {
            self.cat.add_check(self.id, c).await?;
        }
        self.cat.finish_drill(self.id, outcome).await?;
        // The row was just written; it can only be missing if the catalog
        // was deleted under us.
        let record = self.cat.drill(self.id).await?.ok_or_else(|| {
            DrillError::Invalid(format!("drill {} vanished from the catalog", self.id))
        })?;
        // The verdict stands in the catalog either way; earlier drills
        // still without their record are written first, and a record that
        // cannot be written now is retried by the next drill or prune.
        match crate::evidence::write_pending(self.cat, self.plan, &record.region).await {
            Ok(keys) => info!(drill = self.id, ?keys, "drill evidence written"),
            Err(e) => {
                warn!(drill = self.id, error = %e, "cannot write drill evidence; the next drill or prune retries")
            }
        }
        Ok(record)
    }
}

/// Fails the drill at the end of `phase` when a test asks for it.
fn fail_point(phase: Phase) -> Result<(), DrillError> {
    #[cfg(test)]
    if tests::FAIL_AT.try_with(|at| *at == phase).unwrap_or(false) {
        return Err(DrillError::Injected(phase));
    }
    let _ = phase;
    Ok(())
}

/// Removes a scratch folder (off the async threads: it may be large).
async fn remove_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || resource::remove_scratch(&dir))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Where drill `drill_id` restores `res` (`dir` is the drill's folder).
fn scratch_of(plan: &Plan, drill_id: i64, dir: &Path, res: &Resource) -> Scratch {
    Scratch {
        dir: dir.join(&res.name),
        plan: plan.name.clone(),
        drill_id,
        resource: res.name.clone(),
        purpose: ScratchFor::Drill,
        server: None,
        instance: None,
    }
}

/// Records the plan's drills still `running` as failed and removes what
/// they restored. Call while holding the plan's drill lock: anything still
/// running then belongs to a process that died.
pub async fn clean_up_interrupted(ctx: &Context, plan: &Plan) -> Result<Vec<i64>, CatalogError> {
    let stale = ctx
        .catalog
        .fail_interrupted_drills(&plan.name, now_ms())
        .await?;
    for &stale_id in &stale {
        let dir = ctx.drills_dir().join(stale_id.to_string());
        let region = match ctx.catalog.drill(stale_id).await? {
            Some(d) => d.region,
            None => plan.drill.region.clone(),
        };
        let place = Place::reading(plan, &region);
        // Scratch places are named from the drill id, so no record of
        // them is needed to find them; then the folder.
        for res in &plan.resources {
            let scratch = scratch_of(plan, stale_id, &dir, res);
            match resource::discard(&res.spec, &place, &scratch).await {
                Ok(Some(what)) => {
                    warn!(drill = stale_id, resource = %res.name, "dropped what an interrupted drill restored: {what}")
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(drill = stale_id, resource = %res.name, error = %e, "cannot clean up after an interrupted drill")
                }
            }
        }
        if dir.exists() {
            warn!(drill = stale_id, dir = %dir.display(), "removing what an interrupted drill restored");
            let _ = remove_dir(&dir).await;
        }
    }
    // Interrupted drills get their record (failed, saying so), as do
    // earlier drills whose write failed.
    crate::evidence::write_all_pending(&ctx.catalog, plan).await;
    Ok(stale)
}

/// Takes the plan's drill lock and cleans up after interrupted drills
/// (the daemon does this at start-up).
pub async fn recover(ctx: &Context, plan: &Plan) -> Result<Vec<i64>, DrillError> {
    let _lease = Lease::acquire(&ctx.catalog, &plan.name, lease::DRILL).await?;
    Ok(clean_up_interrupted(ctx, plan).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    tokio::task_local! {
        /// The phase a test makes fail.
        pub(super) static FAIL_AT: Phase;
    }

    /// A plan with a folder and a SQLite database (a SQL check on it),
    /// backed up into `primary` and copied to `dr`, where drills restore.
    async fn backed_up(root: &Path) -> (Context, Plan) {
        let data = root.join("data");
        std::fs::create_dir_all(data.join("files/sub")).unwrap();
        for i in 0..5 {
            std::fs::write(data.join(format!("files/sub/f{i}")), vec![i as u8; 1000]).unwrap();
        }
        let db = data.join("app.db");
        orders_db(&db).await;
        let toml = format!(
            r#"
name = "shop"
owner = "t@example.com"
rto = "5m"
rpo = "3m"
[backup]
schedule = "* * * * *"
primary_region = "primary"
copy_to = ["dr"]
[regions.primary]
vault = "file://{root}/vaults/primary"
[regions.dr]
vault = "file://{root}/vaults/dr"
[[resources]]
name = "files"
kind = "path"
path = "{root}/data/files"
[[resources]]
name = "app-db"
kind = "sqlite"
path = "{root}/data/app.db"
[drill]
region = "dr"
[[drill.checks]]
name = "orders-present"
resource = "app-db"
sql = "SELECT count(*) = 3 FROM orders"
"#,
            root = root.display()
        );
        let (plan, _) = crate::plan::parse_plan(&root.join("shop.toml"), &toml).unwrap();
        let ctx = Context {
            catalog: crate::catalog::testing::open(root).await,
            work_dir: root.join("work"),
        };
        let outcome = crate::backup::run(&ctx, &plan, "test", None).await.unwrap();
        assert_eq!(outcome.status, crate::catalog::RunStatus::Succeeded);
        (ctx, plan)
    }

    /// A SQLite database with three orders, written through sqlx.
    async fn orders_db(path: &Path) {
        use sqlx::{ConnectOptions, Executor};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY); INSERT INTO orders VALUES (1), (2), (3);")
            .await
            .unwrap();
    }

    fn options() -> DrillOptions {
        DrillOptions {
            region: None,
            point: None,
            keep: false,
            trigger: "test".into(),
        }
    }

    #[tokio::test]
    async fn a_drill_that_fails_in_any_phase_is_cleaned_up_and_recorded_failed() {
        let root = tempfile::tempdir().unwrap();
        let (ctx, plan) = backed_up(root.path()).await;
        for phase in [Phase::Choose, Phase::Restore, Phase::Check, Phase::Measure] {
            let result = FAIL_AT.scope(phase, run(&ctx, &plan, &options())).await;
            let Err(DrillError::Injected(failed)) = result else {
                panic!("{phase:?}: the injected failure was not returned: {result:?}");
            };
            assert_eq!(failed, phase);
            let drill = ctx.catalog.last_drill("shop").await.unwrap().unwrap();
            assert_eq!(drill.status, DrillStatus::Failed, "{phase:?}");
            assert!(
                drill.rto_ms.is_none(),
                "{phase:?}: a failed drill has no RTO"
            );
            let error = drill.error.unwrap_or_default();
            assert!(
                error.contains(&format!("{phase:?} phase")),
                "{phase:?}: {error}"
            );
            // The checks that ran before the failure are recorded.
            let ran = match phase {
                Phase::Choose => 0,
                Phase::Restore => 2,
                Phase::Check | Phase::Measure => 4,
            };
            let recorded = ctx.catalog.drill_checks(drill.id).await.unwrap();
            assert_eq!(recorded.len(), ran, "{phase:?}: {recorded:?}");
            let scratch = ctx.drills_dir().join(drill.id.to_string());
            assert!(
                !scratch.exists(),
                "{phase:?}: {} left behind",
                scratch.display()
            );
        }
        // Nothing a failed drill left stands in the way of the next one.
        let passed = run(&ctx, &plan, &options()).await.unwrap();
        assert!(passed.record.passed(), "{:?}", passed.record);
        // Every drill, failed or not, is in the evidence chain.
        let chain = crate::evidence::verify(&ctx.catalog, &plan).await.unwrap();
        assert!(chain.intact && chain.records == 5, "{chain:?}");
        assert_eq!(
            ctx.catalog
                .drill_checks(passed.record.id)
                .await
                .unwrap()
                .len(),
            4
        );
    }

    #[tokio::test]
    async fn a_kept_drill_keeps_its_scratch_folder_even_when_a_phase_fails() {
        let root = tempfile::tempdir().unwrap();
        let (ctx, plan) = backed_up(root.path()).await;
        let keep = DrillOptions {
            keep: true,
            ..options()
        };
        let result = FAIL_AT.scope(Phase::Check, run(&ctx, &plan, &keep)).await;
        assert!(matches!(result, Err(DrillError::Injected(Phase::Check))));
        let drill = ctx.catalog.last_drill("shop").await.unwrap().unwrap();
        let kept = drill.kept_path.expect("the kept folder is recorded");
        assert!(Path::new(&kept).join("files/sub/f4").is_file(), "{kept}");
    }
}
