//! Drill evidence: each finished drill writes a JSON record into its
//! region's vault, carrying the SHA-256 of the plan's previous record, so
//! the vault holds a hash chain of every drill outside the catalog.
//! [`verify`] checks the chain: a record edited, removed or reordered after
//! the fact, or a catalog whose drill verdict disagrees with its record,
//! shows up as a broken chain. The `report` command calls it and hands the
//! result to the report, which itself reads only the catalog.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::catalog::{Catalog, CatalogError, DrillRecord, DrillView};
use crate::plan::Plan;
use crate::resource::region_vault;
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
    /// The previous record could not be read to the end.
    #[error("cannot read {location}: {source}")]
    Read {
        /// The record's URL.
        location: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The drill's checks or points could not be read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
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

/// The parts of a record that verification reads back; the rest (the
/// whole drill view) is covered by the next record's hash.
#[derive(Deserialize)]
struct StoredRecord {
    prev_key: Option<String>,
    prev_sha256: Option<String>,
    drill: StoredDrill,
}

#[derive(Deserialize)]
struct StoredDrill {
    id: i64,
    passed: bool,
}

fn prefix(plan: &str) -> String {
    format!("evidence/{plan}/")
}

/// Zero-padded drill ids: the vault's key order is the chain's order.
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

/// Keys of the plan's evidence records, oldest first.
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

/// Appends the evidence record of a finished drill to the chain in the
/// drill region's vault. Returns the record's key.
pub async fn write(
    cat: &Catalog,
    plan: &Plan,
    drill: &DrillRecord,
) -> Result<String, EvidenceError> {
    let vault = vault_of(plan, &drill.region).await?;
    let previous = keys(&vault, &plan.name).await?.pop();
    let prev_sha256 = match &previous {
        Some(k) => Some(sha256_hex(&read(&vault, k).await?)),
        None => None,
    };
    let view = cat.drill_view(drill).await?;
    let record = Record {
        version: VERSION,
        plan: &plan.name,
        drill: &view,
        prev_key: previous.as_deref(),
        prev_sha256: prev_sha256.as_deref(),
    };
    let bytes = serde_json::to_vec_pretty(&record)?;
    let key = key(&plan.name, drill.id);
    vault.put(&key, bytes.as_slice()).await?;
    Ok(key)
}

/// What the report says about a plan's evidence chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainStatus {
    /// Where the chain lives.
    pub location: String,
    /// Records read before the end of the chain or the first problem.
    pub records: usize,
    /// Every link, verdict and record is there.
    pub intact: bool,
    /// Why the chain is not intact.
    pub problem: Option<String>,
}

/// Where a chain breaks: after how many good records, and why.
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

/// Verifies the chain of a plan in its drill region's vault: every record's
/// `prev_sha256` is the hash of the record before it, every record's
/// verdict matches the catalog's drill, and every drill of that region since
/// the chain began has its record. `None` when the drill region has no
/// vault this build can read.
pub async fn verify(cat: &Catalog, plan: &Plan) -> Option<ChainStatus> {
    let vault = region_vault(plan, &plan.drill.region).await.ok()?;
    let location = vault.location(&prefix(&plan.name));
    Some(match check_chain(cat, &vault, plan).await {
        Ok(records) => ChainStatus {
            location,
            records,
            intact: true,
            problem: None,
        },
        Err(b) => ChainStatus {
            location,
            records: b.records,
            intact: false,
            problem: Some(b.problem),
        },
    })
}

/// The number of records of an intact chain.
async fn check_chain(cat: &Catalog, vault: &Vault, plan: &Plan) -> Result<usize, Broken> {
    let keys = keys(vault, &plan.name)
        .await
        .map_err(|e| Broken::new(0, e.to_string()))?;
    let drills = cat
        .drills_between(Some(&plan.name), i64::MIN, i64::MAX)
        .await
        .map_err(|e| Broken::new(0, e.to_string()))?;
    let drills: HashMap<i64, &DrillRecord> = drills.iter().map(|d| (d.id, d)).collect();
    let mut prev: Option<(&str, String)> = None;
    for (i, k) in keys.iter().enumerate() {
        let bytes = read(vault, k)
            .await
            .map_err(|e| Broken::new(i, e.to_string()))?;
        let record: StoredRecord = serde_json::from_slice(&bytes)
            .map_err(|e| Broken::new(i, format!("{k} is not an evidence record: {e}")))?;
        let expected_key = prev.as_ref().map(|(k, _)| *k);
        let expected_hash = prev.as_ref().map(|(_, h)| h.as_str());
        if record.prev_key.as_deref() != expected_key
            || record.prev_sha256.as_deref() != expected_hash
        {
            let after = expected_key.unwrap_or("the start");
            return Err(Broken::new(i, format!("{k} does not follow {after}")));
        }
        match drills.get(&record.drill.id) {
            Some(d) if d.passed() == record.drill.passed => {}
            Some(d) => {
                return Err(Broken::new(
                    i,
                    format!(
                        "{k}: the catalog's drill {} verdict differs from its evidence",
                        d.id
                    ),
                ))
            }
            None => {
                return Err(Broken::new(
                    i,
                    format!("{k}: its drill is not in the catalog"),
                ))
            }
        }
        prev = Some((k, sha256_hex(&bytes)));
    }
    check_no_drill_missing(plan, &keys, drills.values().copied())?;
    Ok(keys.len())
}

/// Every finished drill of the plan's drill region since the chain began
/// must have its record.
fn check_no_drill_missing<'a>(
    plan: &Plan,
    keys: &[String],
    drills: impl Iterator<Item = &'a DrillRecord>,
) -> Result<(), Broken> {
    let first_id = keys
        .first()
        .and_then(|k| k.rsplit('/').next())
        .and_then(|name| name.trim_end_matches(".json").parse::<i64>().ok());
    let Some(first_id) = first_id else {
        return Ok(());
    };
    let mut missing: Vec<i64> = drills
        .filter(|d| d.region == plan.drill.region && !d.is_running() && d.id >= first_id)
        .filter(|d| keys.binary_search(&key(&plan.name, d.id)).is_err())
        .map(|d| d.id)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    let missing: Vec<String> = missing.iter().map(i64::to_string).collect();
    Err(Broken::new(
        keys.len(),
        format!("drill(s) {} have no evidence record", missing.join(", ")),
    ))
}
