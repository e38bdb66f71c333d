//! Which daemon of a fleet owns a plan: rendezvous (highest random weight)
//! hashing of the plan's name over the live daemons that carry the plan's
//! placement labels. Every daemon computes the same answer from the same
//! rows, with no coordination beyond the catalog; plans spread evenly, and
//! when a daemon joins or leaves only the plans it gains or held move.

use sha2::{Digest, Sha256};

use crate::catalog::DaemonRecord;

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
