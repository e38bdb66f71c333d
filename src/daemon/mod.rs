//! The daemon: runs every plan's backups, drills and pruning on their
//! jittered schedules, unattended, surviving crashes, outages and bad edits.
//!
//! Built separately from run (`Daemon::build` binds the listener and takes
//! the catalog's daemon lease; `run_until_stopped` takes the shutdown trigger
//! as a future) so tests can start it on port 0 and stop it without signals.
//! Shutdown is two-phase: a `CancellationToken` stops new work, then a
//! `TaskTracker` waits for running jobs, up to a grace period.

mod alerts;
mod breaker;
pub mod fleet;
mod heartbeat;
mod http;
mod job;
mod metrics;
mod plans;
mod scheduler;
mod warm;
mod work;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{Notify, RwLock, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::catalog::{Catalog, CatalogError, Integrity, OpenMode};
use crate::context::Context;
use crate::lease::{self, Lease, LeaseError};
use crate::notify::{Notifier, RetryPolicy};
use crate::plan::SecretUrl;
use crate::time::Clock;

pub use breaker::{Breakers, State as BreakerState};
pub use plans::PlanSet;

/// How the daemon runs: its catalog, folders, listener and limits.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The catalog's SQLite file. One daemon per catalog: it holds the
    /// catalog's `daemon` lease (in the catalog, so whatever the path
    /// spelling).
    pub catalog: PathBuf,
    /// The plans folder: every `*.toml` directly inside is a plan, re-read
    /// on a reload request or when a file there changes.
    pub plans_dir: PathBuf,
    /// Scratch space: drill restores, temporary copies (see
    /// [`Context`]).
    pub work_dir: PathBuf,
    /// Address of `/healthz`, `/readyz` and `/metrics`; port 0 picks a free
    /// one (see [`Daemon::local_addr`]).
    pub listen: SocketAddr,
    /// Jobs running at once, all plans and regions together. A job that
    /// finds no place before its start window closes is missed, so 0 would
    /// miss every job (the CLI refuses it).
    pub max_jobs: usize,
    /// Jobs running at once that load one region (a drill its drill
    /// region, a backup or prune the primary); 0 would miss every job.
    pub max_jobs_per_region: usize,
    /// Consecutive failed backups on one vault that open its circuit
    /// breaker (0 counts as 1).
    pub breaker_threshold: u32,
    /// How long a breaker first stays open: between half of it and all of
    /// it (jittered). Each reopening doubles it, up to an hour or 64 times
    /// this, whichever is less, but never below this; a success resets it.
    pub breaker_cooldown: Duration,
    /// How long running jobs may take to finish after SIGTERM.
    pub grace: Duration,
    /// How often the plans folder is checked for edits.
    pub watch_interval: Duration,
    /// Pinged after each successful job (a dead man's switch).
    pub heartbeat_url: Option<String>,
    /// Told about every plan's failures and RPO breaches, besides the
    /// plans' own `[[notify]]` webhooks.
    pub notify_url: Option<String>,
    /// Run as one daemon of a fleet sharing the catalog (PostgreSQL only):
    /// `None` for the single daemon of a catalog.
    pub fleet: Option<fleet::FleetConfig>,
}

/// How long queued notifications may take to go out at shutdown, once
/// the running jobs are done.
const NOTIFY_DRAIN: Duration = Duration::from_secs(5);

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds the catalog's daemon lease: the catalog, then
    /// who holds it (host, pid, since when, last heartbeat).
    #[error(
        "another lifeboat daemon is already running on catalog {0}, on {1}; refusing to start"
    )]
    AlreadyRunning(PathBuf, String),
    /// The daemon lease could not be taken (the catalog failed, or
    /// `LIFEBOAT_LEASE_TTL` is wrong).
    #[error("cannot take the catalog's daemon lease: {0}")]
    Lease(LeaseError),
    /// The daemon's lease expired without a heartbeat and was lost: another
    /// daemon may have started on the catalog, so this one stopped.
    #[error("the daemon lost its lease on catalog {0} (no heartbeat reached the catalog in time); stopped so that two daemons never run at once")]
    LeaseLost(PathBuf),
    /// The HTTP listener could not bind the address (given).
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The plans folder (given) could not be read at start-up. An invalid
    /// plan file is not this error: it is logged and not loaded.
    #[error("cannot read plans folder {0}: {1}")]
    Plans(PathBuf, std::io::Error),
    /// A setting was refused, with why: the notification URL, or the
    /// notifier that would use it.
    #[error("{0}")]
    Config(String),
    /// The heartbeat URL cannot be used.
    #[error(transparent)]
    Heartbeat(#[from] heartbeat::HeartbeatError),
    /// The catalog could not be opened, or read or written while cleaning
    /// up after a previous daemon.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Takes the catalog's `daemon` lease (one daemon per catalog), or joins
/// the catalog's fleet (`--fleet`, PostgreSQL only). Neither starts beside
/// the other.
async fn start_alone_or_in_fleet(
    catalog: &Catalog,
    config: &DaemonConfig,
    clock: &Clock,
) -> Result<(Option<Lease>, Option<fleet::Member>), DaemonError> {
    let now = clock.now_ms();
    let Some(fleet_config) = &config.fleet else {
        let live = catalog.live_daemons(now).await?;
        if let Some(d) = live.first() {
            return Err(DaemonError::AlreadyRunning(
                catalog.path().to_path_buf(),
                format!(
                    "a fleet of {} daemon(s), one on host {} (pid {})",
                    live.len(),
                    d.host,
                    d.pid
                ),
            ));
        }
        return match Lease::acquire(catalog, lease::CATALOG_WIDE, lease::DAEMON).await {
            Ok(lease) => Ok((Some(lease), None)),
            Err(e) => Err(match e.holder() {
                Some(holder) => DaemonError::AlreadyRunning(catalog.path().to_path_buf(), holder),
                None => DaemonError::Lease(e),
            }),
        };
    };
    if catalog.is_sqlite() {
        return Err(DaemonError::Config(
            "--fleet needs a catalog on PostgreSQL (--catalog postgres://...): a SQLite file is one host's"
                .to_string(),
        ));
    }
    if let Some(solo) = catalog
        .lease(lease::CATALOG_WIDE, lease::DAEMON)
        .await?
        .filter(|l| l.expires_at > now)
    {
        return Err(DaemonError::AlreadyRunning(
            catalog.path().to_path_buf(),
            lease::describe(&solo, now),
        ));
    }
    let member = fleet::join(catalog, fleet_config.clone(), now).await?;
    Ok((None, Some(member)))
}

/// State shared by the scheduler, the jobs and the HTTP endpoints.
pub(crate) struct Shared {
    pub ctx: Context,
    pub config: DaemonConfig,
    pub plans: RwLock<PlanSet>,
    pub breakers: Breakers,
    pub global: Arc<Semaphore>,
    pub regions: std::sync::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
    /// Each plan's turn (see [`Shared::plan_turn`]).
    pub plan_turns:
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    pub reload_errors: AtomicU64,
    pub ready: AtomicBool,
    pub reload: Notify,
    pub heartbeat: Option<heartbeat::Heartbeat>,
    pub notifier: Notifier,
    /// Plans whose RPO exposure to look at now (see [`alerts`]).
    pub recheck: UnboundedSender<String>,
    /// Where the scheduler, the jobs and the alerts read the time.
    pub clock: Clock,
    /// What a job does once it may start (the real backup, drill, prune).
    pub work: Box<dyn job::Work>,
    /// Bytes written per plan and region, brought up to date at each scrape.
    pub written: tokio::sync::Mutex<crate::catalog::WrittenBytes>,
    /// Finished runs of each kind, brought up to date at each scrape.
    pub runs: tokio::sync::Mutex<Vec<crate::catalog::RunTally>>,
    /// This daemon in its fleet; `None` for the single daemon of a catalog.
    pub fleet: Option<fleet::Member>,
}

impl Shared {
    /// Whether this daemon runs `plan`: always, alone on its catalog; in
    /// a fleet, while it owns the plan.
    pub fn owns(&self, plan: &str) -> bool {
        self.fleet.as_ref().is_none_or(|m| m.owns(plan))
    }

    /// Asks the RPO alert watcher to look at a plan now.
    pub fn recheck(&self, plan: &str) {
        // Only fails once the watcher has stopped (shutdown): nothing to do.
        let _ = self.recheck.send(plan.to_string());
    }

    /// The concurrency limit of jobs loading `region`.
    pub fn region_limit(&self, region: &str) -> Arc<Semaphore> {
        let mut map = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(region.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.max_jobs_per_region)))
            .clone()
    }

    /// A plan's turn among its own jobs: a prune takes it alone (it holds
    /// the plan's backup, drill and verify leases), the others share it
    /// (each kind's own lease keeps two of a kind apart). So a prune and a
    /// backup whose slots fall together run one after the other instead of
    /// one of them finding the other's lease taken and being missed: an
    /// hourly prune used to make a new plan's first backup miss when their
    /// starts met (found by the crash trials).
    pub fn plan_turn(&self, plan: &str) -> Arc<tokio::sync::RwLock<()>> {
        let mut map = self.plan_turns.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(plan.to_string()).or_default().clone()
    }
}

/// A daemon built and ready to run (see the module docs).
pub struct Daemon {
    shared: Arc<Shared>,
    recheck: UnboundedReceiver<String>,
    listener: tokio::net::TcpListener,
    /// The catalog's `daemon` lease; `None` in a fleet, whose daemons
    /// register instead.
    lease: Option<Lease>,
}

impl Daemon {
    /// Opens the catalog, takes its daemon lease, loads the plans and binds
    /// the HTTP listener (port 0 picks a free one).
    pub async fn build(config: DaemonConfig) -> Result<Daemon, DaemonError> {
        Daemon::build_with(config, Clock::System, Box::new(work::Orchestrators)).await
    }

    /// [`Daemon::build`] with the clock and the work given: the scheduler's
    /// tests run it on tokio's paused clock with work that records.
    async fn build_with(
        config: DaemonConfig,
        clock: Clock,
        work: Box<dyn job::Work>,
    ) -> Result<Daemon, DaemonError> {
        let heartbeat = config
            .heartbeat_url
            .as_deref()
            .map(heartbeat::Heartbeat::new)
            .transpose()?;
        if let Some(h) = &heartbeat {
            info!(host = %h.host(), "heartbeat pings after each successful job");
        }
        let global = config
            .notify_url
            .as_deref()
            .map(SecretUrl::parse)
            .transpose()
            .map_err(|e| {
                DaemonError::Config(format!(
                    "the notification URL (--notify-url or LIFEBOAT_NOTIFY_URL) {e}"
                ))
            })?;
        if let Some(u) = &global {
            info!(webhook = %u.host(), "failures and RPO breaches of every plan are notified");
        }
        let notifier = Notifier::new(global, RetryPolicy::default())
            .map_err(|e| DaemonError::Config(e.to_string()))?;
        let (recheck_tx, recheck) = tokio::sync::mpsc::unbounded_channel();
        // The daemon starts a catalog, and checks all of it once at start.
        let catalog =
            Catalog::open_with(&config.catalog, OpenMode::Create, Integrity::Full).await?;
        let (lease, member) = match start_alone_or_in_fleet(&catalog, &config, &clock).await {
            Ok(started) => started,
            Err(e) => {
                catalog.close().await;
                return Err(e);
            }
        };
        let ctx = Context {
            catalog,
            work_dir: config.work_dir.clone(),
        };
        let mut plans = PlanSet::default();
        let report = plans
            .reload(&config.plans_dir)
            .map_err(|e| DaemonError::Plans(config.plans_dir.clone(), e))?;
        for d in &report.errors {
            error!(diagnostic = %d, "invalid plan file; not loaded");
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| DaemonError::Listen(config.listen, e))?;
        let shared = Arc::new(Shared {
            breakers: Breakers::new(config.breaker_threshold, config.breaker_cooldown),
            global: Arc::new(Semaphore::new(config.max_jobs)),
            regions: Default::default(),
            plan_turns: Default::default(),
            reload_errors: AtomicU64::new(report.errors.len() as u64),
            ready: AtomicBool::new(false),
            reload: Notify::new(),
            heartbeat,
            notifier,
            recheck: recheck_tx,
            clock,
            work,
            written: Default::default(),
            runs: tokio::sync::Mutex::new(
                crate::catalog::RunSource::ALL
                    .into_iter()
                    .map(crate::catalog::RunTally::new)
                    .collect(),
            ),
            plans: RwLock::new(plans),
            ctx,
            config,
            fleet: member,
        });
        Ok(Daemon {
            shared,
            recheck,
            listener,
            lease,
        })
    }

    /// Where the HTTP endpoints listen (the port chosen for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// How many plans were loaded.
    pub async fn plan_count(&self) -> usize {
        self.shared.plans.read().await.len()
    }

    /// A handle that asks the daemon to reload its plans (SIGHUP).
    pub fn reloader(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.reload.notify_one()
    }

    /// Runs until `shutdown` completes, then stops starting work and lets
    /// running jobs finish within the grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), DaemonError> {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let shared = self.shared.clone();

        // In a fleet, each plan's new owner does this for the plan
        // (`fleet::take_over`): other daemons' work is running now.
        if shared.fleet.is_none() {
            // Clean up what a previous daemon left: jobs, points and drills it
            // was running (it is gone: we hold the daemon lease).
            let interrupted = shared
                .ctx
                .catalog
                .fail_interrupted_jobs(shared.clock.now_ms())
                .await?;
            if !interrupted.is_empty() {
                warn!(
                    jobs = interrupted.len(),
                    "recorded jobs of a previous daemon run as interrupted"
                );
            }
            let with_running = shared.ctx.catalog.plans_with_running_work().await?;
            let plans: Vec<_> = shared
                .plans
                .read()
                .await
                .plans()
                .filter(|p| with_running.contains(&p.name))
                .cloned()
                .collect();
            for plan in &plans {
                // Only when no `lifeboat backup run` of the plan holds its lease.
                match Lease::acquire(&shared.ctx.catalog, &plan.name, lease::BACKUP).await {
                    Ok(lease) => {
                        if let Err(e) =
                            crate::backup::fail_interrupted(&shared.ctx.catalog, plan).await
                        {
                            warn!(plan = %plan.name, error = %e, "cannot record interrupted backups");
                        }
                        lease.release().await;
                    }
                    Err(e) => {
                        warn!(plan = %plan.name, error = %e, "not touching its running backup rows")
                    }
                }
                if let Err(e) = crate::drill::recover(&shared.ctx, plan).await {
                    warn!(plan = %plan.name, error = %e, "cannot clean up interrupted drills");
                }
            }
            // What crashed processes left in the vaults and the work folder.
            let all: Vec<_> = shared.plans.read().await.plans().cloned().collect();
            let removed =
                crate::leftovers::remove_temporaries(&shared.ctx, &all, crate::time::now_ms())
                    .await;
            if removed > 0 {
                warn!(
                    removed,
                    "removed partial uploads and snapshot folders that crashed processes left"
                );
            }
        }

        let http = {
            let token = token.clone();
            let app = http::router(shared.clone());
            let listener = self.listener;
            tracker.spawn(async move {
                let result = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await;
                if let Err(e) = result {
                    error!(error = %e, "HTTP server stopped");
                }
            })
        };
        let scheduler = {
            let token = token.clone();
            let tracker2 = tracker.clone();
            let shared = shared.clone();
            tokio::spawn(async move { scheduler::run(shared, token, tracker2).await })
        };
        let alerts = {
            let token = token.clone();
            let shared = shared.clone();
            let recheck = self.recheck;
            tokio::spawn(async move { alerts::run(shared, token, recheck).await })
        };
        let warm = {
            let token = token.clone();
            let shared = shared.clone();
            tokio::spawn(async move { warm::run(shared, token).await })
        };
        shared.ready.store(true, Ordering::SeqCst);
        info!("daemon running");

        // Stop as for SIGTERM if the daemon lease is lost: another daemon
        // may have taken the catalog. Jobs running hold leases of their own.
        let lost = self
            .lease
            .as_ref()
            .map_or_else(CancellationToken::new, |l| l.lost());
        let lease_lost = tokio::select! {
            _ = shutdown => false,
            _ = lost.cancelled() => true,
        };
        info!(grace = ?shared.config.grace, "stopping: no new work; waiting for running jobs");
        shared.ready.store(false, Ordering::SeqCst);
        token.cancel();
        let _ = scheduler.await;
        let _ = alerts.await;
        let _ = warm.await;
        tracker.close();
        if tokio::time::timeout(shared.config.grace, tracker.wait())
            .await
            .is_err()
        {
            warn!("grace period over: jobs still running are abandoned and will be recorded as interrupted at the next start");
        }
        shared.notifier.drain(NOTIFY_DRAIN).await;
        drop(http);
        // Leases of jobs that ended are released before the catalog closes;
        // an abandoned job's lease is found dead by the next start.
        lease::settle().await;
        if let Some(lease) = self.lease {
            lease.release().await;
        }
        if let Some(member) = &shared.fleet {
            fleet::leave(&shared.ctx.catalog, member).await;
        }
        shared.ctx.catalog.close().await;
        if lease_lost {
            return Err(DaemonError::LeaseLost(
                shared.ctx.catalog.path().to_path_buf(),
            ));
        }
        Ok(())
    }
}
