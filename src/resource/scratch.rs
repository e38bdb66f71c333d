//! Where one drill, or one restore before it is put in place, restores
//! one resource. Everything created there is named from these,
//! deterministically, so it can be removed by name after a failed restore
//! or a crash, without any record of having created it.

use std::path::PathBuf;

/// Scratch databases of drills are named `lifeboat_drill_…`; nothing else
/// is ever dropped, but a restore's staging database (see
/// [`RESTORE_DATABASE_PREFIX`]).
pub const SCRATCH_DATABASE_PREFIX: &str = "lifeboat_drill_";

/// A restore's staging database is named `lifeboat_restore_…` until its
/// checks pass and it takes the target's name.
pub const RESTORE_DATABASE_PREFIX: &str = "lifeboat_restore_";

/// What a scratch place is for: the two never share names, since drill
/// and restore ids come from different tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchFor {
    /// A drill: removed by its clean-up unless kept.
    Drill,
    /// A restore: the staging place, put in the target once verified.
    Restore,
}

/// The scratch place of one resource in one drill or restore.
#[derive(Debug, Clone)]
pub struct Scratch {
    /// A folder that does not exist yet, removed by the drill's cleanup.
    pub dir: PathBuf,
    /// The plan's name: part of every scratch name outside the folder.
    pub plan: String,
    /// The drill's (or restore's) catalog id: never reused within a
    /// catalog, so names made from it do not collide with an earlier one's.
    pub drill_id: i64,
    /// The resource's name in the plan.
    pub resource: String,
    /// A drill's or a restore's.
    pub purpose: ScratchFor,
    /// The PostgreSQL server (a URL) a restore stages its database on,
    /// instead of the resource's drill server: the target's server.
    pub server: Option<String>,
    /// A restore of an RDS point: the instance or cluster it creates,
    /// named by the operator, in place of a scratch one.
    pub instance: Option<InstanceTarget>,
}

/// The RDS instance (or cluster) a restore creates: never a scratch one,
/// never deleted by Lifeboat.
#[derive(Debug, Clone)]
pub struct InstanceTarget {
    /// Its identifier.
    pub id: String,
    /// Instance class, subnet group and security groups; unset, RDS's
    /// defaults (an instance gets its snapshot's class).
    pub settings: crate::plan::RdsRestore,
}

impl Scratch {
    /// `lifeboat_drill_<drill id>_<plan>_<resource>` (a restore's:
    /// `lifeboat_restore_…`): the id alone would collide when a plan has
    /// two databases on one drill server, or two catalogs drill into one
    /// server. PostgreSQL names are at most 63 bytes: a longer name is cut
    /// and ends with a hash of the whole.
    pub fn database_name(&self) -> String {
        let prefix = match self.purpose {
            ScratchFor::Drill => SCRATCH_DATABASE_PREFIX,
            ScratchFor::Restore => RESTORE_DATABASE_PREFIX,
        };
        let full = format!("{prefix}{}_{}_{}", self.drill_id, self.plan, self.resource)
            .replace('-', "_")
            .to_ascii_lowercase();
        if full.len() <= 63 {
            return full;
        }
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(full.as_bytes()));
        format!("{}_{}", &full[..54], &hash[..8])
    }
}
