//! Exclusion that holds: one backup, drill, verify or restore of a plan at
//! a time, and one daemon per catalog, by leases kept in the catalog
//! itself (`catalog::leases`), not files beside it. So no catalog path
//! spelling, work folder or second host can run the same plan twice.
//!
//! A [`Lease`] is taken in one statement, renewed by a background
//! heartbeat every third of its time to live, and released when dropped
//! (or by [`Lease::release`]). A holder that stops heartbeating loses its
//! lease when it expires. A holder on this node (same boot, same pid
//! namespace) whose process no longer exists is taken over at once, with a
//! warning, as restic does with its stale locks: a `kill -9`'d backup does
//! not block the next run for a whole time to live. Another host's lease
//! is only taken once expired. So a `running` row found while holding a
//! lease belongs to a holder that is gone: recovery touches only that.

mod process;

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::catalog::{Catalog, CatalogError, LeaseRecord, NewLease};
use crate::time::{human_duration_secs, now_ms, rfc3339, Millis};

/// One backup run of a plan at a time (prune holds it too).
pub const BACKUP: &str = "backup";
/// One drill of a plan at a time (prune holds it too).
pub const DRILL: &str = "drill";
/// One verify of a plan at a time; the daemon's prune jobs hold it too.
pub const VERIFY: &str = "verify";
/// One restore of a plan at a time; prune holds it too, so it never
/// deletes a point being restored.
pub const RESTORE: &str = "restore";
/// One daemon per catalog (with [`CATALOG_WIDE`] as the plan).
pub const DAEMON: &str = "daemon";
/// A fleet daemon's ownership of a plan (`daemon::fleet`): held by
/// expiry alone, renewed by the owner's rebalancing.
pub const OWNER: &str = "owner";
/// The plan of a lease on the whole catalog (no plan is named `*`).
pub const CATALOG_WIDE: &str = "*";

/// A lease's time to live when `LIFEBOAT_LEASE_TTL` does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// The shortest `LIFEBOAT_LEASE_TTL` allowed: a heartbeat every third of
/// it must have time to reach the catalog.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The environment variable that sets the time to live (`60s`, `5m`).
pub const TTL_ENV: &str = "LIFEBOAT_LEASE_TTL";

/// Why a lease was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Someone else holds it; nothing waits for it.
    #[error("a {kind} of plan `{plan}` is already running on {}", describe(holder, *now))]
    Busy {
        /// The plan's name.
        plan: String,
        /// What was asked for: `backup`, `drill`, `verify`, `restore`.
        kind: String,
        /// Who holds it.
        holder: Box<LeaseRecord>,
        /// When it was found held.
        now: Millis,
    },
    /// The lease changed hands at every attempt (released, expired, taken
    /// over): someone else is starting the same work right now.
    #[error("the {kind} lease of plan `{plan}` kept changing hands; another {kind} is starting: try again")]
    Contended {
        /// The plan's name.
        plan: String,
        /// What was asked for.
        kind: String,
    },
    /// `LIFEBOAT_LEASE_TTL` is not a duration of at least a second.
    #[error("{TTL_ENV} `{0}` is not a duration of at least 1s (e.g. 60s, 5m)")]
    BadTtl(String),
    /// The catalog could not be read or written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl LeaseError {
    /// Who holds the lease, as [`describe`] says, when it is busy.
    pub fn holder(&self) -> Option<String> {
        match self {
            LeaseError::Busy { holder, now, .. } => Some(describe(holder, *now)),
            _ => None,
        }
    }
}

/// Who holds a lease, for an operator: `host h (pid 123, since …,
/// heartbeat 3s ago)`, and when another host's lease would expire if
/// that host is gone (ours are judged by their pid instead).
pub fn describe(holder: &LeaseRecord, now: Millis) -> String {
    let age = human_duration_secs((now - holder.heartbeat_at) as f64 / 1000.0);
    let mut text = format!(
        "host {} (pid {}, since {}, heartbeat {age} ago)",
        holder.host,
        holder.pid,
        rfc3339(holder.acquired_at)
    );
    if holder.node != process::me().node {
        let left = human_duration_secs((holder.expires_at - now) as f64 / 1000.0);
        text.push_str(&format!(
            "; if that process is gone, its lease expires in {left}"
        ));
    }
    text
}

/// Where this process's pid means something (boot id and pid namespace),
/// as leases record it.
pub fn node_id() -> String {
    process::me().node.clone()
}

/// The time to live from `LIFEBOAT_LEASE_TTL`, else [`DEFAULT_TTL`].
pub fn ttl_from_env() -> Result<Duration, LeaseError> {
    match std::env::var(TTL_ENV) {
        Ok(text) => parse_ttl(&text),
        Err(_) => Ok(DEFAULT_TTL),
    }
}

/// A time to live as `LIFEBOAT_LEASE_TTL` gives it (`60s`, `5m`).
fn parse_ttl(text: &str) -> Result<Duration, LeaseError> {
    match humantime::parse_duration(text.trim()) {
        Ok(ttl) if ttl >= MIN_TTL => Ok(ttl),
        _ => Err(LeaseError::BadTtl(text.to_string())),
    }
}

/// Tokens of the leases this process holds (a [`Lease`] not yet dropped).
/// A row with our pid and node whose token is not here was left by a
/// lease dropped while its release was still on its way: it is stale.
static LIVE: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Releases started by dropped leases; [`settle`] waits for them.
static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Locks a mutex even if a thread panicked while holding it: the sets
/// stay consistent (each change is one insert or remove).
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn set_live(owner: &str, live: bool) {
    let mut set = locked(&LIVE);
    let set = set.get_or_insert_with(HashSet::new);
    if live {
        set.insert(owner.to_string());
    } else {
        set.remove(owner);
    }
}

fn is_live(owner: &str) -> bool {
    locked(&LIVE).as_ref().is_some_and(|s| s.contains(owner))
}

/// Waits for the releases of leases dropped so far. The CLI calls it
/// before it exits, so a command that ended leaves no lease behind for the
/// next to judge.
pub async fn settle() {
    let tasks = std::mem::take(&mut *locked(&PENDING));
    for task in tasks {
        let _ = task.await;
    }
}

/// Why a held lease is stale though not expired: its holder is a process
/// of this node that no longer exists (or a lease of this process already
/// dropped). `None` when it may still be running.
fn dead_holder(holder: &LeaseRecord) -> Option<&'static str> {
    let me = process::me();
    if holder.node != me.node {
        return None;
    }
    if holder.pid == me.pid {
        return (!is_live(&holder.owner)).then_some("a lease this process has dropped");
    }
    (!process::alive(holder.pid)).then_some("its process no longer exists")
}

/// A held lease: renewed in the background while it lives, released when
/// dropped.
#[derive(Debug)]
pub struct Lease {
    held: Option<Held>,
    lost: CancellationToken,
}

#[derive(Debug)]
struct Held {
    catalog: Catalog,
    plan: String,
    kind: String,
    owner: String,
    heartbeat: JoinHandle<()>,
}

/// Forgets a token from [`LIVE`] unless the lease was taken.
struct Registered(Option<String>);

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(owner) = self.0.take() {
            set_live(&owner, false);
        }
    }
}

impl Lease {
    /// Takes the `kind` lease of `plan` without waiting, for the time to
    /// live `LIFEBOAT_LEASE_TTL` gives (else a minute).
    pub async fn acquire(catalog: &Catalog, plan: &str, kind: &str) -> Result<Lease, LeaseError> {
        Lease::acquire_for(catalog, plan, kind, ttl_from_env()?).await
    }

    /// Takes the `kind` lease of `plan` without waiting, renewed every
    /// third of `ttl`: free, expired, or held by a dead process of this
    /// node (taken over with a warning). [`LeaseError::Busy`] names the
    /// holder otherwise.
    pub async fn acquire_for(
        catalog: &Catalog,
        plan: &str,
        kind: &str,
        ttl: Duration,
    ) -> Result<Lease, LeaseError> {
        let me = process::me();
        let owner = format!("{:032x}", rand::random::<u128>());
        // Live before the row exists: another task of this process that
        // finds the row meanwhile must not think it stale.
        set_live(&owner, true);
        let mut registered = Registered(Some(owner.clone()));
        let ttl_ms = Millis::try_from(ttl.as_millis()).unwrap_or(Millis::MAX / 2);
        let mut dead: Option<(LeaseRecord, &'static str)> = None;
        // The row can change between the attempt and the read (released,
        // expired, found dead): then try again, a few times.
        for _ in 0..4 {
            let now = now_ms();
            let new = NewLease {
                plan,
                kind,
                owner: &owner,
                pid: me.pid,
                host: &me.host,
                node: &me.node,
                now,
                expires_at: now.saturating_add(ttl_ms),
            };
            let dead_owner = dead.as_ref().map(|(h, _)| h.owner.as_str());
            if catalog.take_lease(&new, dead_owner).await? {
                match &dead {
                    // Our own dropped lease whose release is on its way.
                    Some((h, why)) if h.pid == me.pid => debug!(plan, kind, "took over {why}"),
                    Some((h, why)) => warn!(
                        plan, kind, pid = h.pid, host = %h.host, since = %rfc3339(h.acquired_at),
                        "took over a stale lease: {why}"
                    ),
                    None => {}
                }
                registered.0 = None;
                return Ok(Lease::start(catalog, plan, kind, owner, ttl, ttl_ms));
            }
            dead = None;
            let Some(holder) = catalog.lease(plan, kind).await? else {
                continue;
            };
            if holder.expires_at <= now_ms() {
                continue;
            }
            match dead_holder(&holder) {
                Some(why) => dead = Some((holder, why)),
                None => {
                    return Err(LeaseError::Busy {
                        plan: plan.to_string(),
                        kind: kind.to_string(),
                        holder: Box::new(holder),
                        now: now_ms(),
                    })
                }
            }
        }
        Err(LeaseError::Contended {
            plan: plan.to_string(),
            kind: kind.to_string(),
        })
    }

    /// Starts the heartbeat of a lease just taken.
    fn start(
        catalog: &Catalog,
        plan: &str,
        kind: &str,
        owner: String,
        ttl: Duration,
        ttl_ms: Millis,
    ) -> Lease {
        let lost = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(
            catalog.clone(),
            plan.to_string(),
            kind.to_string(),
            owner.clone(),
            ttl,
            ttl_ms,
            lost.clone(),
        ));
        debug!(plan, kind, "lease taken");
        Lease {
            held: Some(Held {
                catalog: catalog.clone(),
                plan: plan.to_string(),
                kind: kind.to_string(),
                owner,
                heartbeat,
            }),
            lost,
        }
    }

    /// Cancelled once a heartbeat finds the lease gone (it expired and was
    /// taken over): the holder should stop, someone else may be running.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Releases the lease now (and waits for it). An error is logged: the
    /// lease then expires by itself.
    pub async fn release(mut self) {
        if let Some(held) = self.held.take() {
            held.heartbeat.abort();
            set_live(&held.owner, false);
            release_row(held).await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        held.heartbeat.abort();
        set_live(&held.owner, false);
        // Outside a runtime nothing can be awaited: the lease expires, or
        // is found dead by the next holder on this node.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let task = rt.spawn(release_row(held));
            let mut pending = locked(&PENDING);
            pending.retain(|t| !t.is_finished());
            pending.push(task);
        }
    }
}

/// Deletes a held lease's row, if it is still ours.
async fn release_row(held: Held) {
    let Held {
        catalog,
        plan,
        kind,
        owner,
        ..
    } = held;
    match catalog.release_lease(&plan, &kind, &owner).await {
        Ok(true) => debug!(plan, kind, "lease released"),
        Ok(false) => debug!(plan, kind, "lease already taken over when released"),
        Err(e) => warn!(plan, kind, error = %e, "cannot release the lease; it expires by itself"),
    }
}

/// Renews the lease every third of its time to live until aborted, or
/// until a renewal finds it gone (logged as an error, and `lost`
/// cancelled). A failed renewal is retried at the next beat: two can fail
/// before the lease expires.
async fn heartbeat(
    catalog: Catalog,
    plan: String,
    kind: String,
    owner: String,
    ttl: Duration,
    ttl_ms: Millis,
    lost: CancellationToken,
) {
    let period = (ttl / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        let now = now_ms();
        match catalog
            .renew_lease(&plan, &kind, &owner, now, now.saturating_add(ttl_ms))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                error!(
                    plan, kind,
                    "lost the lease: it expired without a heartbeat and another process may have taken it; this {kind} no longer excludes others"
                );
                lost.cancel();
                return;
            }
            Err(e) => warn!(plan, kind, error = %e, "cannot renew the lease; retrying"),
        }
    }
}

#[cfg(test)]
mod tests;
