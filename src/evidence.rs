//! Drill evidence: each finished drill writes a JSON record into its
//! region's vault, carrying the SHA-256 of the plan's previous record, so
//! the vault holds a hash chain of every drill outside the catalog. The
//! report verifies the chain: a record edited, removed or reordered after
//! the fact, or a catalog whose drill verdict disagrees with its record,
//! shows up as a broken chain.

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::catalog::{Catalog, DrillRecord};
use crate::plan::Plan;
use crate::resource::region_vault;
use crate::vault::Vault;

const VERSION: u64 = 1;

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

async fn read(vault: &Vault, key: &str) -> Result<Vec<u8>, String> {
    let mut reader = vault.get(key).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .await
        .map_err(|e| format!("cannot read {}: {e}", vault.location(key)))?;
    Ok(buf)
}

/// Keys of the plan's evidence records, oldest first.
async fn keys(vault: &Vault, plan: &str) -> Result<Vec<String>, String> {
    let mut keys: Vec<String> = vault
        .list(&prefix(plan))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".json"))
        .collect();
    keys.sort();
    Ok(keys)
}

/// Appends the evidence record of a finished drill to the chain in the
/// drill region's vault. Returns the record's key.
pub async fn write(cat: &Catalog, plan: &Plan, drill: &DrillRecord) -> Result<String, String> {
    let vault = region_vault(plan, &drill.region)
        .await
        .map_err(|e| e.to_string())?;
    let previous = keys(&vault, &plan.name).await?.pop();
    let prev_sha256 = match &previous {
        Some(k) => Some(sha256_hex(&read(&vault, k).await?)),
        None => None,
    };
    let drill_json = crate::report::drill_json(cat, drill)
        .await
        .map_err(|e| e.to_string())?;
    let record = json!({
        "version": VERSION,
        "plan": plan.name,
        "drill": drill_json,
        "prev_key": previous,
        "prev_sha256": prev_sha256,
    });
    let bytes = serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?;
    let key = key(&plan.name, drill.id);
    vault
        .put(&key, bytes.as_slice())
        .await
        .map_err(|e| e.to_string())?;
    Ok(key)
}

/// What the report says about a plan's evidence chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainStatus {
    /// Where the chain lives.
    pub location: String,
    pub records: usize,
    pub intact: bool,
    /// Why the chain is not intact.
    pub problem: Option<String>,
}

/// Verifies the chain of a plan in its drill region's vault: every record's
/// `prev_sha256` is the hash of the record before it, and every record's
/// verdict matches the catalog's drill. `None` when the drill region has no
/// vault this build can read.
pub async fn verify(cat: &Catalog, plan: &Plan) -> Option<ChainStatus> {
    let vault = region_vault(plan, &plan.drill.region).await.ok()?;
    let location = vault.location(&prefix(&plan.name));
    let broken = |records: usize, problem: String| ChainStatus {
        location: location.clone(),
        records,
        intact: false,
        problem: Some(problem),
    };
    let keys = match keys(&vault, &plan.name).await {
        Ok(k) => k,
        Err(e) => return Some(broken(0, e)),
    };
    let mut prev: Option<(String, String)> = None;
    for (i, k) in keys.iter().enumerate() {
        let bytes = match read(&vault, k).await {
            Ok(b) => b,
            Err(e) => return Some(broken(i, e)),
        };
        let record: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => return Some(broken(i, format!("{k} is not JSON: {e}"))),
        };
        let expected_key = prev.as_ref().map(|(k, _)| k.as_str());
        let expected_hash = prev.as_ref().map(|(_, h)| h.as_str());
        if record["prev_key"].as_str() != expected_key
            || record["prev_sha256"].as_str() != expected_hash
        {
            return Some(broken(
                i,
                format!(
                    "{k} does not follow {}",
                    expected_key.unwrap_or("the start")
                ),
            ));
        }
        let id = record["drill"]["id"].as_i64();
        let drill = match id {
            Some(id) => cat.drill(id).await.ok().flatten(),
            None => None,
        };
        match drill {
            Some(d) if Some(d.passed()) == record["drill"]["passed"].as_bool() => {}
            Some(d) => {
                return Some(broken(
                    i,
                    format!(
                        "{k}: the catalog's drill {} verdict differs from its evidence",
                        d.id
                    ),
                ))
            }
            None => return Some(broken(i, format!("{k}: its drill is not in the catalog"))),
        }
        prev = Some((k.clone(), sha256_hex(&bytes)));
    }
    // Every drill of that region since the chain began must have its record.
    let first_id = keys
        .first()
        .and_then(|k| k.rsplit('/').next())
        .and_then(|name| name.trim_end_matches(".json").parse::<i64>().ok());
    if let Some(first_id) = first_id {
        let drills = match cat
            .drills_between(Some(&plan.name), i64::MIN, i64::MAX)
            .await
        {
            Ok(d) => d,
            Err(e) => return Some(broken(keys.len(), e.to_string())),
        };
        let missing: Vec<String> = drills
            .iter()
            .filter(|d| d.region == plan.drill.region && d.status != "running" && d.id >= first_id)
            .filter(|d| !keys.contains(&key(&plan.name, d.id)))
            .map(|d| d.id.to_string())
            .collect();
        if !missing.is_empty() {
            return Some(broken(
                keys.len(),
                format!("drill(s) {} have no evidence record", missing.join(", ")),
            ));
        }
    }
    Some(ChainStatus {
        location,
        records: keys.len(),
        intact: true,
        problem: None,
    })
}
