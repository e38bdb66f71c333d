//! Drill evidence: each finished drill writes a JSON record into its
//! region's vault, carrying the key and SHA-256 of the record before it, so
//! each vault holds, per plan, a hash chain of every drill restored from
//! it, outside the catalog. The catalog anchors each chain: its head (the
//! newest record's key and hash, and the chain's length) moves in the step
//! that writes a record, and each drill knows whether its record is written.
//!
//! Records are written in drill-id order. A drill (and prune, and the
//! recovery of interrupted drills) first writes the record of every
//! earlier finished drill of the same plan and region still without one,
//! so a write that failed heals on the next one, and an interrupted drill
//! gets its record (failed, saying so) once it is recovered.
//!
//! [`verify`] walks each chain back from the catalog's head: a record
//! edited, removed or reordered, a chain deleted or cut short, a record
//! whose drill differs from the catalog's in any recorded field, or a drill
//! without its record, shows up as a broken chain, saying what broke. The
//! `report` command calls it and hands the result to the report, which
//! itself reads only the catalog.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tracing::{info, warn};

use crate::catalog::{Catalog, CatalogError, DrillView, EvidenceHead};
use crate::plan::Plan;
use crate::resource::{region_vault, RegionVaultError};
use crate::time::now_ms;
use crate::vault::{Vault, VaultError};

const VERSION: u64 = 1;

/// Why a drill's evidence record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The drill region's vault cannot be opened (none configured, or
    /// its URL or credentials are wrong).
    #[error("region `{region}` has no vault for drill evidence: {reason}")]
    NoVault {
        /// The drill's region.
        region: String,
        /// Why its vault could not be opened.
        reason: String,
    },
    /// Listing, reading or writing the chain failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A record could not be read to the end.
    #[error("cannot read {location}: {source}")]
    Read {
        /// The record's URL.
        location: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The drill's checks or points could not be read, or the chain's head
    /// written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The drill's record key already holds a record that is not this
    /// drill's (left by another catalog, whose drill ids were the same).
    #[error("{location} already holds a record of another drill (of a catalog lost or replaced?); evidence is never overwritten")]
    Occupied {
        /// The record's URL.
        location: String,
    },
    /// The record could not be serialised (cannot happen with finite numbers).
    #[error("cannot encode the evidence record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One record of the chain, as written.
#[derive(Serialize)]
struct Record<'a> {
    version: u64,
    plan: &'a str,
    drill: &'a DrillView,
    prev_key: Option<&'a str>,
    prev_sha256: Option<&'a str>,
}

/// A record as read back: the drill view stays JSON, to be compared field
/// by field with the catalog's.
#[derive(Deserialize)]
struct StoredRecord {
    plan: String,
    prev_key: Option<String>,
    prev_sha256: Option<String>,
    drill: Value,
}

impl StoredRecord {
    fn drill_id(&self) -> Option<i64> {
        self.drill.get("id")?.as_i64()
    }

    /// Whether the record follows `head` (the start of a chain for `None`).
    fn follows(&self, head: Option<&EvidenceHead>) -> bool {
        self.prev_key.as_deref() == head.map(|h| h.key.as_str())
            && self.prev_sha256.as_deref() == head.map(|h| h.sha256.as_str())
    }
}

fn prefix(plan: &str) -> String {
    format!("evidence/{plan}/")
}

/// Zero-padded drill ids: the vault's key order is the drill order.
fn key(plan: &str, drill: i64) -> String {
    format!("{}{drill:012}.json", prefix(plan))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn read(vault: &Vault, key: &str) -> Result<Vec<u8>, EvidenceError> {
    let mut reader = vault.get(key).await?;
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .await
        .map_err(|source| EvidenceError::Read {
            location: vault.location(key),
            source,
        })?;
    Ok(buf)
}

/// Keys of the plan's evidence records, in key order.
async fn keys(vault: &Vault, plan: &str) -> Result<Vec<String>, VaultError> {
    let mut keys: Vec<String> = vault
        .list(&prefix(plan))
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".json"))
        .collect();
    keys.sort();
    Ok(keys)
}

async fn vault_of(plan: &Plan, region: &str) -> Result<Vault, EvidenceError> {
    region_vault(plan, region)
        .await
        .map_err(|e| EvidenceError::NoVault {
            region: region.to_string(),
            reason: e.to_string(),
        })
}

/// The head of a chain as the vault shows it, and the drills whose records
/// it takes in without the catalog knowing them yet.
struct Adopted {
    head: Option<EvidenceHead>,
    drills: Vec<(i64, EvidenceHead)>,
}

/// Extends the catalog's head of `plan`'s chain in `region` with the
/// records written after it whose head update was lost (a crash between
/// writing the record and the head): the record of a drill still without
/// one, whose previous record is the head. A chain without a head (a
/// catalog from before migration 0009, or a crash after the first record)
/// takes in the records found from its start, in key order (the order the
/// old code appended them in), as long as each follows the one before and
/// belongs to a drill of this plan and region. Reads only.
async fn adopt(
    cat: &Catalog,
    vault: &Vault,
    plan: &Plan,
    region: &str,
    keys: &[String],
) -> Result<Adopted, EvidenceError> {
    let name = plan.name.as_str();
    let mut head = cat.evidence_head(name, region).await?;
    let mut drills = Vec::new();
    let pending = cat.drills_without_evidence(name, region).await?;
    if head.is_none() {
        for k in keys {
            let bytes = read(vault, k).await?;
            let Ok(record) = serde_json::from_slice::<StoredRecord>(&bytes) else {
                break;
            };
            let id = record.drill_id();
            // Only this catalog's own records: a record left by another
            // catalog (one lost and started again, whose ids restart at 1)
            // differs from the drill of the same id here.
            let ours = agrees_with_catalog(cat, plan, region, k, &record)
                .await
                .is_ok();
            if !ours || !record.follows(head.as_ref()) {
                break;
            }
            let next = EvidenceHead {
                key: k.clone(),
                sha256: sha256_hex(&bytes),
                length: head.as_ref().map_or(1, |h| h.length + 1),
            };
            drills.push((id.unwrap_or_default(), next.clone()));
            head = Some(next);
        }
    }
    for d in &pending {
        let k = key(name, d.id);
        if drills.iter().any(|(id, _)| *id == d.id) || keys.binary_search(&k).is_err() {
            continue;
        }
        let bytes = read(vault, &k).await?;
        let Ok(record) = serde_json::from_slice::<StoredRecord>(&bytes) else {
            continue;
        };
        let follows = record.follows(head.as_ref())
            && agrees_with_catalog(cat, plan, region, &k, &record)
                .await
                .is_ok();
        if follows {
            let next = EvidenceHead {
                key: k,
                sha256: sha256_hex(&bytes),
                length: head.as_ref().map_or(1, |h| h.length + 1),
            };
            drills.push((d.id, next.clone()));
            head = Some(next);
        }
    }
    Ok(Adopted { head, drills })
}

/// Writes, in drill-id order, the record of every finished drill of `plan`
/// in `region` that has none yet (the drill just finished, an earlier one
/// whose write failed, an interrupted one once recovered), each followed
/// by the chain's new head in the catalog. Returns the keys written. Call
/// while holding the plan's drill lock: it is the chain's only writer.
pub async fn write_pending(
    cat: &Catalog,
    plan: &Plan,
    region: &str,
) -> Result<Vec<String>, EvidenceError> {
    if cat
        .drills_without_evidence(&plan.name, region)
        .await?
        .is_empty()
    {
        return Ok(Vec::new());
    }
    let vault = vault_of(plan, region).await?;
    let keys = keys(&vault, &plan.name).await?;
    let adopted = adopt(cat, &vault, plan, region, &keys).await?;
    for (drill, head) in &adopted.drills {
        cat.advance_evidence_head(&plan.name, region, *drill, head, now_ms())
            .await?;
        info!(drill, key = %head.key, "drill evidence found written; the chain's head now records it");
    }
    let mut head = adopted.head;
    let mut written = Vec::new();
    for drill in cat.drills_without_evidence(&plan.name, region).await? {
        let view = cat.drill_view(&drill).await?;
        let record = Record {
            version: VERSION,
            plan: &plan.name,
            drill: &view,
            prev_key: head.as_ref().map(|h| h.key.as_str()),
            prev_sha256: head.as_ref().map(|h| h.sha256.as_str()),
        };
        let bytes = serde_json::to_vec_pretty(&record)?;
        let key = key(&plan.name, drill.id);
        if keys.binary_search(&key).is_ok() {
            // Not adopted above, so not this drill's record: evidence is
            // never overwritten.
            return Err(EvidenceError::Occupied {
                location: vault.location(&key),
            });
        }
        vault.put(&key, bytes.as_slice()).await?;
        // A crash here leaves a record one past the head that follows it:
        // the next write or verify adopts it (see `adopt`).
        let next = EvidenceHead {
            key: key.clone(),
            sha256: sha256_hex(&bytes),
            length: head.as_ref().map_or(1, |h| h.length + 1),
        };
        cat.advance_evidence_head(&plan.name, region, drill.id, &next, now_ms())
            .await?;
        head = Some(next);
        written.push(key);
    }
    Ok(written)
}

/// [`write_pending`] in every region where `plan` has finished drills
/// without their record; failures are logged (the next drill or prune
/// retries them). For prune and the recovery of interrupted drills.
pub async fn write_all_pending(cat: &Catalog, plan: &Plan) {
    let regions = match cat.regions_missing_evidence(&plan.name).await {
        Ok(r) => r,
        Err(e) => {
            warn!(plan = %plan.name, error = %e, "cannot look for drills without evidence");
            return;
        }
    };
    for region in regions {
        match write_pending(cat, plan, &region).await {
            Ok(keys) => {
                for key in keys {
                    info!(plan = %plan.name, %region, key, "drill evidence written");
                }
            }
            Err(e) => {
                warn!(plan = %plan.name, %region, error = %e, "cannot write drill evidence; the next drill or prune retries")
            }
        }
    }
}

/// One record of a chain as found in a vault, in chain order.
#[derive(Debug, Clone)]
pub struct FoundRecord {
    /// The record's vault key.
    pub key: String,
    /// The drill view it holds, as JSON.
    pub drill: Value,
    /// The chain's head once this record is in it.
    pub head: EvidenceHead,
}

/// The records of `plan`'s chain in `region`'s vault, from its first
/// record for as long as each follows the one before (key, hash) and
/// belongs to this plan; with why the walk stopped early, if it did. For
/// `catalog rebuild`, which records their drills again.
pub async fn read_chain(
    plan: &Plan,
    region: &str,
) -> Result<(Vec<FoundRecord>, Option<String>), EvidenceError> {
    let vault = vault_of(plan, region).await?;
    let mut found: Vec<FoundRecord> = Vec::new();
    for k in keys(&vault, &plan.name).await? {
        let bytes = read(&vault, &k).await?;
        let head = found.last().map(|f| f.head.clone());
        let head = head.as_ref();
        let record = match serde_json::from_slice::<StoredRecord>(&bytes) {
            Ok(r) => r,
            Err(e) => return Ok((found, Some(format!("{k} is not an evidence record: {e}")))),
        };
        let belongs = record.plan == plan.name
            && record.drill_id().is_some_and(|id| key(&plan.name, id) == k);
        if !belongs || !record.follows(head) {
            let after = head.map_or("the start", |h| h.key.as_str());
            return Ok((found, Some(format!("{k} does not follow {after}"))));
        }
        let head = EvidenceHead {
            key: k.clone(),
            sha256: sha256_hex(&bytes),
            length: head.map_or(1, |h| h.length + 1),
        };
        found.push(FoundRecord {
            key: k,
            drill: record.drill,
            head,
        });
    }
    Ok((found, None))
}

/// What the report says about a plan's evidence chains.
#[derive(Debug, Clone, Serialize)]
pub struct ChainStatus {
    /// Where the chain lives (several locations, comma-separated, when the
    /// plan's drills restored from several regions).
    pub location: String,
    /// Records read before the end of the chain or the first problem.
    pub records: usize,
    /// Every link, record and field is there and agrees with the catalog.
    pub intact: bool,
    /// Why the chain is not intact.
    pub problem: Option<String>,
}

/// Where a chain breaks: after how many good records, and why.
#[derive(Debug)]
struct Broken {
    records: usize,
    problem: String,
}

impl Broken {
    fn new(records: usize, problem: impl Into<String>) -> Broken {
        Broken {
            records,
            problem: problem.into(),
        }
    }
}

/// Verifies the plan's chain in every region that has one (a head in the
/// catalog, or a finished drill): see [`check_region`]. Regions the plan no
/// longer has, or that have no vault, are skipped: there is nothing to
/// read. `None` when no chain can be read at all.
pub async fn verify(cat: &Catalog, plan: &Plan) -> Option<ChainStatus> {
    let regions = match cat.evidence_regions(&plan.name).await {
        Ok(r) => r,
        Err(e) => {
            return Some(ChainStatus {
                location: "the catalog".into(),
                records: 0,
                intact: false,
                problem: Some(e.to_string()),
            })
        }
    };
    let mut checked: Vec<(String, String, Result<usize, Broken>)> = Vec::new();
    for region in regions {
        let vault = match region_vault(plan, &region).await {
            Ok(v) => v,
            Err(RegionVaultError::NoRegion(_) | RegionVaultError::NoVault(_)) => continue,
            Err(e) => {
                let broken = Broken::new(0, format!("cannot open the vault: {e}"));
                checked.push((region.clone(), region, Err(broken)));
                continue;
            }
        };
        let location = vault.location(&prefix(&plan.name));
        let result = check_region(cat, &vault, plan, &region).await;
        checked.push((region, location, result));
    }
    if checked.is_empty() {
        // No drill yet: an empty chain where the next drill will write.
        let vault = region_vault(plan, &plan.drill.region).await.ok()?;
        return Some(ChainStatus {
            location: vault.location(&prefix(&plan.name)),
            records: 0,
            intact: true,
            problem: None,
        });
    }
    let several = checked.len() > 1;
    let location = checked
        .iter()
        .map(|(_, l, _)| l.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut records = 0;
    let mut problem = None;
    for (region, _, result) in checked {
        match result {
            Ok(n) => records += n,
            Err(b) => {
                records += b.records;
                if problem.is_none() {
                    problem = Some(if several {
                        format!("region `{region}`: {}", b.problem)
                    } else {
                        b.problem
                    });
                }
            }
        }
    }
    Some(ChainStatus {
        location,
        records,
        intact: problem.is_none(),
        problem,
    })
}

/// Checks `plan`'s chain in `region`, from the catalog's head back to its
/// start: each record is there, agrees in every recorded field with the
/// catalog's view of its drill, and hashes to what the record after it
/// (or the head) says; the chain's length is the head's; no other record
/// sits in the vault; and every finished drill of the region has its
/// record in the chain. Returns the number of records.
async fn check_region(
    cat: &Catalog,
    vault: &Vault,
    plan: &Plan,
    region: &str,
) -> Result<usize, Broken> {
    let at_start = |e: &dyn std::fmt::Display| Broken::new(0, e.to_string());
    let keys = keys(vault, &plan.name).await.map_err(|e| at_start(&e))?;
    let adopted = adopt(cat, vault, plan, region, &keys)
        .await
        .map_err(|e| at_start(&e))?;
    let mut written: BTreeSet<i64> = cat
        .drills_with_evidence(&plan.name, region)
        .await
        .map_err(|e| at_start(&e))?
        .into_iter()
        .collect();
    written.extend(adopted.drills.iter().map(|(id, _)| *id));
    let pending: Vec<i64> = cat
        .drills_without_evidence(&plan.name, region)
        .await
        .map_err(|e| at_start(&e))?
        .iter()
        .map(|d| d.id)
        .filter(|id| !written.contains(id))
        .collect();
    let Some(head) = adopted.head else {
        if !written.is_empty() {
            return Err(Broken::new(
                0,
                format!(
                    "the chain is gone: drill(s) {} wrote their record, and no record starts a chain",
                    ids(written.iter())
                ),
            ));
        }
        if let Some(k) = keys.first() {
            return Err(Broken::new(
                0,
                format!("{k} does not start a chain of this catalog's drills"),
            ));
        }
        return not_missing(0, &pending).map(|_| 0);
    };
    let listed: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let mut visited: HashSet<String> = HashSet::new();
    let mut in_chain: BTreeSet<i64> = BTreeSet::new();
    let (mut k, mut sha) = (head.key.clone(), head.sha256.clone());
    let mut after: Option<String> = None;
    let mut count = 0usize;
    loop {
        if !listed.contains(k.as_str()) {
            return Err(Broken::new(
                count,
                match &after {
                    None => format!(
                        "the newest record {k} is missing: the catalog's head says the chain holds {} record(s) ending there; records were deleted",
                        head.length
                    ),
                    Some(a) => format!("{k}, which {a} names as the record before it, is missing"),
                },
            ));
        }
        let bytes = read(vault, &k)
            .await
            .map_err(|e| Broken::new(count, e.to_string()))?;
        let record: StoredRecord = serde_json::from_slice(&bytes)
            .map_err(|e| Broken::new(count, format!("{k} is not an evidence record: {e}")))?;
        let id = agrees_with_catalog(cat, plan, region, &k, &record)
            .await
            .map_err(|p| Broken::new(count, p))?;
        if sha256_hex(&bytes) != sha {
            return Err(Broken::new(
                count,
                match &after {
                    None => format!(
                        "the newest record {k} was changed after it was written: its SHA-256 is not the one the catalog's head records"
                    ),
                    Some(a) => format!(
                        "{a} does not follow {k}: {k} was changed after {a} was written"
                    ),
                },
            ));
        }
        count += 1;
        in_chain.insert(id);
        visited.insert(k.clone());
        match (record.prev_key, record.prev_sha256) {
            (None, None) => break,
            (Some(pk), Some(ps)) if !visited.contains(&pk) => {
                after = Some(std::mem::replace(&mut k, pk));
                sha = ps;
            }
            _ => {
                return Err(Broken::new(
                    count,
                    format!("{k} names no valid record before it"),
                ))
            }
        }
    }
    if count as i64 != head.length {
        return Err(Broken::new(
            count,
            format!(
                "the chain ending at {} holds {count} record(s), but the catalog's head says {}: records were removed",
                head.key, head.length
            ),
        ));
    }
    if let Some(stray) = keys.iter().find(|k| !visited.contains(*k)) {
        return Err(Broken::new(
            count,
            format!("{stray} is not part of the chain ending at {}", head.key),
        ));
    }
    // Drills older than the chain's first record predate it (catalogs
    // from before migration 0009 assume every finished drill written);
    // any record removed from a chain's start breaks the link after it.
    let first = in_chain.first().copied().unwrap_or(i64::MAX);
    let missing: Vec<&i64> = written
        .iter()
        .filter(|id| **id >= first && !in_chain.contains(id))
        .collect();
    if !missing.is_empty() {
        return Err(Broken::new(
            count,
            format!(
                "drill(s) {} have no evidence record in the chain",
                ids(missing.into_iter())
            ),
        ));
    }
    not_missing(count, &pending)?;
    Ok(count)
}

/// Finished drills whose record is still to be written break the chain
/// until a drill or prune writes them.
fn not_missing(count: usize, pending: &[i64]) -> Result<(), Broken> {
    if pending.is_empty() {
        return Ok(());
    }
    Err(Broken::new(
        count,
        format!(
            "drill(s) {} have no evidence record yet (writing it failed or the drill was interrupted; the plan's next drill or prune writes it)",
            ids(pending.iter())
        ),
    ))
}

fn ids<'a>(ids: impl Iterator<Item = &'a i64>) -> String {
    ids.map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// Checks that the record at `k` is of this plan, of a drill of this plan
/// and region, and that every field it records holds the value the
/// catalog's view of that drill has now. Returns the drill's id.
async fn agrees_with_catalog(
    cat: &Catalog,
    plan: &Plan,
    region: &str,
    k: &str,
    record: &StoredRecord,
) -> Result<i64, String> {
    if record.plan != plan.name {
        return Err(format!("{k} is a record of plan `{}`", record.plan));
    }
    let Some(id) = record.drill_id() else {
        return Err(format!("{k} names no drill"));
    };
    if key(&plan.name, id) != k {
        return Err(format!("{k} holds the record of drill {id}"));
    }
    let drill = cat
        .drill(id)
        .await
        .map_err(|e| e.to_string())?
        .filter(|d| d.plan == plan.name && d.region == region)
        .ok_or_else(|| format!("{k}: drill {id} is not in the catalog (as a drill of this plan in region `{region}`)"))?;
    let view = cat.drill_view(&drill).await.map_err(|e| e.to_string())?;
    // Through the same text as the record, so numbers compare exactly.
    let current: Value = serde_json::to_vec(&view)
        .and_then(|b| serde_json::from_slice(&b))
        .map_err(|e| e.to_string())?;
    match first_difference(&record.drill, &current, "") {
        None => Ok(id),
        Some(d) => Err(format!(
            "{k}: `{}` is {} in the record but {} in the catalog's drill {id}",
            d.path, d.recorded, d.current
        )),
    }
}

/// The first field whose recorded value differs from the catalog's.
#[derive(Debug, PartialEq)]
struct Difference {
    path: String,
    recorded: String,
    current: String,
}

/// Compares every field the record holds (recursively) with the catalog's
/// value. Fields the catalog's view has and the record lacks are not
/// compared: a newer build may show more than an older record holds; the
/// record's own bytes are covered by the hash chain.
fn first_difference(recorded: &Value, current: &Value, path: &str) -> Option<Difference> {
    let differ = |path: String, recorded: String, current: String| Difference {
        path,
        recorded,
        current,
    };
    match (recorded, current) {
        (Value::Object(r), Value::Object(c)) => r.iter().find_map(|(name, rv)| {
            let p = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            match c.get(name) {
                None => Some(differ(p, show(rv), "absent".into())),
                Some(cv) => first_difference(rv, cv, &p),
            }
        }),
        (Value::Array(r), Value::Array(c)) if r.len() != c.len() => Some(differ(
            path.to_string(),
            format!("{} item(s)", r.len()),
            format!("{} item(s)", c.len()),
        )),
        (Value::Array(r), Value::Array(c)) => r
            .iter()
            .zip(c)
            .enumerate()
            .find_map(|(i, (rv, cv))| first_difference(rv, cv, &format!("{path}[{i}]"))),
        (r, c) if r != c => Some(differ(path.to_string(), show(r), show(c))),
        _ => None,
    }
}

/// A JSON value in a message, cut short.
fn show(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_differing_field_is_named_with_its_path() {
        let current = json!({"id": 3, "rpo_seconds": 12.5, "checks": [
            {"name": "restore", "detail": "ok"}, {"name": "rows", "detail": "returned 1"}]});
        assert_eq!(first_difference(&current, &current, ""), None);
        let mut edited = current.clone();
        edited["checks"][1]["detail"] = json!("returned 2");
        assert_eq!(
            first_difference(&edited, &current, ""),
            Some(Difference {
                path: "checks[1].detail".into(),
                recorded: "\"returned 2\"".into(),
                current: "\"returned 1\"".into(),
            })
        );
        let mut edited = current.clone();
        edited["rpo_seconds"] = json!(1.5);
        assert_eq!(
            first_difference(&edited, &current, "").unwrap().path,
            "rpo_seconds"
        );
        let mut edited = current.clone();
        edited["checks"].as_array_mut().unwrap().pop();
        let d = first_difference(&edited, &current, "").unwrap();
        assert_eq!(
            (d.path.as_str(), d.recorded.as_str()),
            ("checks", "1 item(s)")
        );
        // A field the record has and the catalog's view lacks differs; one
        // the view has and an older record lacks is not compared.
        let mut edited = current.clone();
        edited["forged"] = json!(true);
        assert_eq!(
            first_difference(&edited, &current, "").unwrap().current,
            "absent"
        );
        let mut older = current.clone();
        older.as_object_mut().unwrap().remove("rpo_seconds");
        assert_eq!(first_difference(&older, &current, ""), None);
    }
}
