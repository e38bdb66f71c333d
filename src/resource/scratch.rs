//! Where one drill restores one resource. Everything a drill creates is
//! named from these, deterministically, so it can be removed by name after
//! a failed restore or a crash, without any record of having created it.

use std::path::PathBuf;

/// Scratch databases of drills are named `lifeboat_drill_…`; nothing else
/// is ever dropped.
pub const SCRATCH_DATABASE_PREFIX: &str = "lifeboat_drill_";

/// The scratch place of one resource in one drill.
#[derive(Debug, Clone)]
pub struct Scratch {
    /// A folder that does not exist yet, removed by the drill's cleanup.
    pub dir: PathBuf,
    /// The plan's name: part of every scratch name outside the folder.
    pub plan: String,
    /// The drill's catalog id: never reused within a catalog, so names
    /// made from it do not collide with an earlier drill's.
    pub drill_id: i64,
    /// The resource's name in the plan.
    pub resource: String,
}

impl Scratch {
    /// `lifeboat_drill_<drill id>_<plan>_<resource>`: the drill id alone
    /// would collide when a plan has two databases on one drill server, or
    /// two catalogs drill into one server. PostgreSQL names are at most 63
    /// bytes: a longer name is cut and ends with a hash of the whole.
    pub fn database_name(&self) -> String {
        let full = format!(
            "{SCRATCH_DATABASE_PREFIX}{}_{}_{}",
            self.drill_id, self.plan, self.resource
        )
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
