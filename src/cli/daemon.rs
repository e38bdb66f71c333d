//! `daemon`: run every plan on its schedule until SIGTERM/SIGINT; SIGHUP
//! reloads the plans.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use super::{bad_input, Cli};
use lifeboat::daemon::{Daemon, DaemonConfig};

#[derive(Debug, Args, Clone)]
pub struct DaemonArgs {
    /// Address of /healthz, /readyz and /metrics (port 0: any free port).
    #[arg(long, env = "LIFEBOAT_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Jobs running at once.
    #[arg(long, env = "LIFEBOAT_MAX_JOBS", default_value_t = 4, value_parser = super::count_option(1024))]
    pub max_jobs: usize,
    /// Jobs running at once in one region.
    #[arg(
        long,
        env = "LIFEBOAT_MAX_JOBS_PER_REGION",
        default_value_t = 2,
        value_parser = super::count_option(1024)
    )]
    pub max_jobs_per_region: usize,
    /// Consecutive failed backups that open a region's circuit breaker.
    #[arg(
        long,
        env = "LIFEBOAT_BREAKER_THRESHOLD",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub breaker_threshold: u32,
    /// Cool-down before an open breaker lets a probe through (doubles on failure).
    #[arg(long, env = "LIFEBOAT_BREAKER_COOLDOWN", default_value = "5m", value_parser = super::duration_option)]
    pub breaker_cooldown: Duration,
    /// Time running jobs get to finish after SIGTERM.
    #[arg(long, env = "LIFEBOAT_GRACE", default_value = "30s", value_parser = super::duration_option)]
    pub grace: Duration,
    /// How often the plans folder is checked for edits.
    #[arg(long, env = "LIFEBOAT_WATCH_INTERVAL", default_value = "2s", value_parser = super::duration_option)]
    pub watch_interval: Duration,
    /// Pinged (GET) after each successful job: a dead man's switch such as a
    /// healthchecks URL. Only its host is ever logged.
    #[arg(long, env = "LIFEBOAT_HEARTBEAT_URL", hide_env_values = true)]
    pub heartbeat_url: Option<String>,
    /// Run as one daemon of a fleet sharing a PostgreSQL catalog: plans are
    /// spread over the live daemons and move when one dies (docs/fleet.md).
    #[arg(long, env = "LIFEBOAT_FLEET")]
    pub fleet: bool,
    /// This fleet daemon's labels, comma-separated (for `[placement]`).
    #[arg(
        long,
        env = "LIFEBOAT_LABELS",
        value_delimiter = ',',
        requires = "fleet"
    )]
    pub labels: Vec<String>,
    /// How long a fleet daemon and its plans count as alive without a
    /// heartbeat; a dead daemon's plans move within about this.
    #[arg(long, env = "LIFEBOAT_FLEET_LEASE", default_value = "30s", value_parser = super::duration_option)]
    pub fleet_lease: Duration,
}

pub async fn run(cli: &Cli, args: &DaemonArgs) -> Result<ExitCode> {
    if !cli.plans.is_dir() {
        return Err(bad_input(format!(
            "plans folder {} does not exist (set --plans or LIFEBOAT_PLANS)",
            cli.plans.display()
        )));
    }
    cli.global_notify_url()?;
    if args.max_jobs == 0 || args.max_jobs_per_region == 0 {
        return Err(bad_input(
            "--max-jobs and --max-jobs-per-region must be at least 1",
        ));
    }
    if let Some(bad) = args
        .labels
        .iter()
        .find(|l| !l.is_empty() && !lifeboat::plan::is_label(l))
    {
        return Err(bad_input(format!(
            "--labels: `{bad}` must be 1 to 63 characters of a-z, 0-9, '-', '_' and '.'"
        )));
    }
    let config = DaemonConfig {
        catalog: cli.catalog.clone(),
        plans_dir: cli.plans.clone(),
        work_dir: cli.work_dir(),
        listen: args.listen,
        max_jobs: args.max_jobs,
        max_jobs_per_region: args.max_jobs_per_region,
        breaker_threshold: args.breaker_threshold,
        breaker_cooldown: args.breaker_cooldown,
        grace: args.grace,
        watch_interval: args.watch_interval.max(Duration::from_millis(100)),
        heartbeat_url: args.heartbeat_url.clone(),
        notify_url: cli.notify_url.clone(),
        fleet: args.fleet.then(|| lifeboat::daemon::fleet::FleetConfig {
            labels: args
                .labels
                .iter()
                .filter(|l| !l.is_empty())
                .cloned()
                .collect(),
            lease: args.fleet_lease.max(Duration::from_secs(1)),
        }),
    };
    // Before the catalog is opened: a SIGTERM during start-up (systemd
    // stopping a unit that is starting) is then a graceful stop, which
    // still records the jobs a killed predecessor left running, instead of
    // the default action ending the process half-started (found by the
    // crash trials: a job row left `running` until the next start).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let daemon = Daemon::build(config).await?;
    let addr = daemon.local_addr()?;
    outln!(
        "lifeboat daemon: {} plan(s) from {}, catalog {}",
        daemon.plan_count().await,
        cli.plans.display(),
        lifeboat::catalog::display_location(&cli.catalog)
    );
    outln!("  health:  http://{addr}/healthz   ready: http://{addr}/readyz");
    outln!("  metrics: http://{addr}/metrics");
    outln!(
        "  status:  lifeboat --catalog {} --plans {} status",
        lifeboat::catalog::display_location(&cli.catalog),
        cli.plans.display()
    );
    outln!("  stop with Ctrl-C (SIGINT) or SIGTERM; reload plans with SIGHUP (edits are also picked up by themselves)");

    let reload = daemon.reloader();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading plans");
            reload();
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    };
    daemon.run_until_stopped(shutdown).await?;
    outln!("lifeboat daemon stopped");
    Ok(ExitCode::SUCCESS)
}
