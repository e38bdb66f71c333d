//! Which daemon of a fleet owns a plan: rendezvous (highest random weight)
//! hashing of the plan's name over the live daemons that carry the plan's
//! placement labels. Every daemon computes the same answer from the same
//! rows, with no coordination beyond the catalog; plans spread evenly, and
//! when a daemon joins or leaves only the plans it gains or held move.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::catalog::{Catalog, CatalogError, DaemonRecord, NewLease};
use crate::lease;
use crate::time::Millis;

/// How long a dead daemon stays listed (`lifeboat fleet`, "DEAD") before
/// the live ones forget its row.
const DEAD_KEPT: Millis = 24 * 3600 * 1000;

/// How a daemon joins a fleet (`daemon --fleet`).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// What `[placement] labels` this daemon can serve (its host, a zone).
    pub labels: Vec<String>,
    /// How long a daemon (and its plans) count as alive without a
    /// heartbeat; heartbeats and rebalancing come every third of it.
    pub lease: Duration,
}

/// This daemon as a member of its fleet: who it is and which plans it owns.
pub(crate) struct Member {
    pub id: String,
    pub config: FleetConfig,
    host: String,
    node: String,
    started_at: Millis,
    owned: std::sync::Mutex<BTreeSet<String>>,
    /// How many plans it has loaded and their digest ([`plans_digest`]).
    loaded: std::sync::Mutex<(i64, String)>,
    /// What `/metrics` shows of this member's rounds.
    pub counters: Counters,
}

/// Counts of a member's heartbeat and rebalancing rounds, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Rounds that beat and renewed the owned plans' leases.
    pub rounds: AtomicU64,
    /// Rounds that could not reach the catalog.
    pub failed_rounds: AtomicU64,
    /// Plans taken over, and plans given up or lost.
    pub gained: AtomicU64,
    pub lost: AtomicU64,
    /// Live daemons seen by the last round, this one included.
    pub live: AtomicU64,
    /// When the last round succeeded (Unix millis; 0 before the first).
    pub last_round_ms: AtomicI64,
}

impl Member {
    fn lease_ms(&self) -> Millis {
        i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// This daemon's row as of a heartbeat at `now`.
    fn record(&self, now: Millis) -> DaemonRecord {
        let (plans_loaded, plans_digest) = self.loaded();
        DaemonRecord {
            plans_loaded,
            plans_digest,
            id: self.id.clone(),
            host: self.host.clone(),
            pid: i64::from(std::process::id()),
            labels: self.config.labels.join(","),
            started_at: self.started_at,
            heartbeat_at: now,
            expires_at: now + self.lease_ms(),
        }
    }

    fn loaded(&self) -> (i64, String) {
        self.loaded.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Whether this daemon owns `plan` now.
    pub fn owns(&self, plan: &str) -> bool {
        self.owned.lock().map(|o| o.contains(plan)).unwrap_or(false)
    }

    /// The plans it owns.
    pub fn owned(&self) -> BTreeSet<String> {
        self.owned.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn set_owned(&self, plan: &str, owned: bool) {
        if let Ok(mut o) = self.owned.lock() {
            if owned {
                o.insert(plan.to_string());
            } else {
                o.remove(plan);
            }
        }
    }

    fn owner_lease<'a>(&'a self, plan: &'a str, now: Millis) -> NewLease<'a> {
        NewLease {
            plan,
            kind: lease::OWNER,
            owner: &self.id,
            pid: i64::from(std::process::id()),
            host: &self.host,
            node: &self.node,
            now,
            expires_at: now + self.lease_ms(),
        }
    }
}

/// Registers this daemon in the catalog's fleet.
pub(crate) async fn join(
    catalog: &Catalog,
    config: FleetConfig,
    now: Millis,
) -> Result<Member, CatalogError> {
    let member = Member {
        id: format!("{:016x}", rand::random::<u64>()),
        config,
        host: crate::host::name(),
        node: crate::lease::node_id(),
        started_at: now,
        owned: Default::default(),
        loaded: Default::default(),
        counters: Counters::default(),
    };
    catalog.register_daemon(&member.record(now)).await?;
    info!(daemon = %member.id, labels = ?member.config.labels, "joined the fleet");
    Ok(member)
}

/// What one round of rebalancing changed.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Plans this daemon took (to schedule from now on).
    pub gained: Vec<String>,
    /// Plans it gave up or lost (to stop scheduling).
    pub lost: Vec<String>,
}

/// One heartbeat and rebalancing round: beats, reads the live daemons, and
/// takes, renews or releases the ownership of each of `plans` (name and
/// required labels) as [`owner`] decides. Owned plans no longer loaded are
/// released.
pub(crate) async fn rebalance(
    catalog: &Catalog,
    me: &Member,
    plans: &[(String, Vec<String>)],
    now: Millis,
) -> Result<Changes, CatalogError> {
    let loaded = (plans.len() as i64, plans_digest(plans));
    if let Ok(mut l) = me.loaded.lock() {
        *l = loaded.clone();
    }
    if !catalog
        .renew_daemon(&me.id, now, now + me.lease_ms(), (loaded.0, &loaded.1))
        .await?
    {
        warn!(daemon = %me.id, "this daemon's row was gone from the fleet: registered again");
        catalog.register_daemon(&me.record(now)).await?;
    }
    catalog.forget_dead_daemons(now - DEAD_KEPT).await?;
    let live = catalog.live_daemons(now).await?;
    me.counters.live.store(live.len() as u64, Ordering::Relaxed);
    let mut changes = Changes::default();
    let held = me.owned();
    let renewed: BTreeSet<String> = catalog
        .renew_leases_of(lease::OWNER, &me.id, now, now + me.lease_ms())
        .await?
        .into_iter()
        .collect();
    for (plan, required) in plans {
        let mine = owner(plan, required, &live).is_some_and(|d| d.id == me.id);
        let had = held.contains(plan);
        match (mine, had) {
            (true, false) => {
                // Taken only once the previous owner released it or its
                // lease expired: never two owners at once.
                if catalog.take_lease(&me.owner_lease(plan, now), None).await? {
                    me.set_owned(plan, true);
                    changes.gained.push(plan.clone());
                }
            }
            (true, true) => {
                if !renewed.contains(plan) {
                    me.set_owned(plan, false);
                    changes.lost.push(plan.clone());
                }
            }
            (false, true) => {
                catalog.release_lease(plan, lease::OWNER, &me.id).await?;
                me.set_owned(plan, false);
                changes.lost.push(plan.clone());
            }
            (false, false) => {}
        }
    }
    for plan in held.iter().filter(|h| !plans.iter().any(|(p, _)| &p == h)) {
        catalog.release_lease(plan, lease::OWNER, &me.id).await?;
        me.set_owned(plan, false);
        changes.lost.push(plan.clone());
    }
    let c = &me.counters;
    c.rounds.fetch_add(1, Ordering::Relaxed);
    c.gained
        .fetch_add(changes.gained.len() as u64, Ordering::Relaxed);
    c.lost
        .fetch_add(changes.lost.len() as u64, Ordering::Relaxed);
    c.last_round_ms.store(now, Ordering::Relaxed);
    Ok(changes)
}

/// Leaves the fleet at a graceful stop: releases every plan at once (the
/// others take them at their next round) and removes this daemon's row.
pub(crate) async fn leave(catalog: &Catalog, me: &Member) {
    for plan in me.owned() {
        if let Err(e) = catalog.release_lease(&plan, lease::OWNER, &me.id).await {
            warn!(plan, error = %e, "cannot release the plan; it moves once its lease expires");
        }
        me.set_owned(&plan, false);
    }
    if let Err(e) = catalog.remove_daemon(&me.id).await {
        warn!(error = %e, "cannot leave the fleet; this daemon's row expires by itself");
    }
}

/// A digest of the plans a daemon has loaded: their names and placement
/// labels, in name order, hashed (the first 8 bytes of SHA-256, in hex).
/// What decides ownership; two daemons that differ would place a plan on
/// one that has not loaded it.
pub(crate) fn plans_digest(plans: &[(String, Vec<String>)]) -> String {
    let mut sorted: Vec<&(String, Vec<String>)> = plans.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for (name, labels) in sorted {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(labels.join(",").as_bytes());
        h.update([b'\n']);
    }
    hex::encode(&h.finalize()[..8])
}

/// The weight of `daemon` for `plan`: the first 8 bytes of
/// SHA-256(plan, NUL, daemon id). A hash of both names, so each plan ranks
/// the daemons in its own order.
fn weight(plan: &str, daemon: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(plan.as_bytes());
    h.update([0]);
    h.update(daemon.as_bytes());
    let digest = h.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The daemon that owns `plan` among `live`: the eligible one (carrying
/// every label of `required`) of highest weight, ties to the lowest id.
/// `None` when no live daemon is eligible: the plan runs nowhere, which
/// the fleet view shows.
pub(crate) fn owner<'a>(
    plan: &str,
    required: &[String],
    live: &'a [DaemonRecord],
) -> Option<&'a DaemonRecord> {
    live.iter()
        .filter(|d| d.has_labels(required))
        .max_by(|a, b| {
            weight(plan, &a.id)
                .cmp(&weight(plan, &b.id))
                .then_with(|| b.id.cmp(&a.id))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(id: &str, labels: &str) -> DaemonRecord {
        DaemonRecord {
            id: id.to_string(),
            host: id.to_string(),
            pid: 1,
            labels: labels.to_string(),
            started_at: 0,
            heartbeat_at: 0,
            expires_at: 1,
            plans_loaded: 0,
            plans_digest: String::new(),
        }
    }

    fn owners(plans: &[String], live: &[DaemonRecord]) -> Vec<String> {
        plans
            .iter()
            .map(|p| owner(p, &[], live).unwrap().id.clone())
            .collect()
    }

    #[test]
    fn plans_spread_evenly_and_only_a_leavers_or_joiners_share_moves() {
        let plans: Vec<String> = (0..3000).map(|i| format!("plan-{i}")).collect();
        let three = [daemon("a", ""), daemon("b", ""), daemon("c", "")];
        let before = owners(&plans, &three);
        for id in ["a", "b", "c"] {
            let n = before.iter().filter(|o| *o == id).count();
            assert!((900..=1100).contains(&n), "{id} owns {n} of 3000");
        }
        // `b` dies: only its plans move, spread over the other two.
        let two = [daemon("a", ""), daemon("c", "")];
        let after = owners(&plans, &two);
        for (was, is) in before.iter().zip(&after) {
            if was != "b" {
                assert_eq!(was, is);
            }
        }
        let to_a = before
            .iter()
            .zip(&after)
            .filter(|(w, i)| *w == "b" && *i == "a")
            .count();
        let from_b = before.iter().filter(|w| *w == "b").count();
        assert!(
            to_a * 3 > from_b && to_a * 3 < from_b * 2,
            "{to_a} of {from_b} to a"
        );
        // `d` joins: it takes about a quarter, each from whoever held it.
        let four = [three.to_vec(), vec![daemon("d", "")]].concat();
        let joined = owners(&plans, &four);
        let moved = before.iter().zip(&joined).filter(|(w, i)| w != i).count();
        assert!(moved == joined.iter().filter(|o| *o == "d").count());
        assert!((600..=900).contains(&moved), "{moved} moved to d");
    }

    #[test]
    fn the_plans_digest_ignores_order_and_sees_names_and_labels() {
        let p = |name: &str, labels: &[&str]| {
            (
                name.to_string(),
                labels.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
            )
        };
        let one = plans_digest(&[p("a", &[]), p("b", &["x"])]);
        assert_eq!(one.len(), 16);
        assert_eq!(one, plans_digest(&[p("b", &["x"]), p("a", &[])]));
        assert_ne!(one, plans_digest(&[p("a", &[]), p("b", &[])]));
        assert_ne!(one, plans_digest(&[p("a", &[]), p("c", &["x"])]));
        assert_ne!(one, plans_digest(&[p("a", &[])]));
    }

    #[test]
    fn a_pinned_plan_is_owned_only_by_a_daemon_with_its_labels() {
        let live = [
            daemon("a", "host-a,ssd"),
            daemon("b", "ssd"),
            daemon("c", ""),
        ];
        let pinned = ["host-a".to_string()];
        for i in 0..200 {
            let plan = format!("plan-{i}");
            assert_eq!(owner(&plan, &pinned, &live).unwrap().id, "a");
            let ssd = owner(&plan, &["ssd".to_string()], &live).unwrap();
            assert!(ssd.id == "a" || ssd.id == "b");
        }
        assert!(owner("p", &["gpu".to_string()], &live).is_none());
        assert!(owner("p", &[], &[]).is_none());
    }
}
