//! `restore --from-vault`: a restore for the day the catalog is lost with
//! the host that ran Lifeboat. The vault's manifests say what it holds
//! (see [`crate::rebuild`]); they are recorded into the catalog the
//! restore then chooses from, exactly as `catalog rebuild` would, so the
//! restore is the same code as every other and later commands (drills,
//! `restores list`, reports) find the points it used.
//!
//! The vault is named by its region (as the plan names it) or by its URL:
//! the URL of one of the plan's regions, or, for a vault that was moved or
//! replicated elsewhere, any URL together with `--region`, whose settings
//! (encryption key, AWS region) then apply to it.

use crate::catalog::Catalog;
use crate::plan::Plan;
use crate::rebuild::{rebuild, RebuildError, Rebuilt};

use super::RestoreError;

/// Records the points of `plan` that the vault of `region` holds (see
/// [`vault_region`]), and returns what was recorded.
pub async fn read_vault(
    cat: &Catalog,
    plan: &Plan,
    region: &str,
    resources: &[String],
) -> Result<Rebuilt, RestoreError> {
    refuse_rds(plan, resources)?;
    rebuild(cat, plan, region).await.map_err(|e| match e {
        RebuildError::NotEmpty { plan, region } => already_recorded(&plan, &region),
        RebuildError::NoVault { reason, .. } => RestoreError::Invalid(reason),
        RebuildError::Catalog(e) => RestoreError::Catalog(e),
        e => RestoreError::Target(format!("cannot read the vault: {e}")),
    })
}

/// Refuses, as [`read_vault`] would, a catalog that already records the
/// plan's points or drills in `region`: a dry run reads the vault into a
/// throwaway catalog, and says what the real run would.
pub async fn refuse_if_recorded(
    cat: &Catalog,
    plan: &Plan,
    region: &str,
) -> Result<(), RestoreError> {
    if cat.has_points_in(&plan.name, region).await? || cat.has_drills_in(&plan.name, region).await?
    {
        return Err(already_recorded(&plan.name, region));
    }
    Ok(())
}

fn already_recorded(plan: &str, region: &str) -> RestoreError {
    RestoreError::Invalid(format!(
        "the catalog already records points of plan `{plan}` in region `{region}`: \
         restore without --from-vault (each point is still verified against the vault), \
         or give --catalog a new file to read the vault alone"
    ))
}

/// The region whose vault `from` (a region or a URL) names; see the
/// module's doc. For a moved vault, the region's URL in `plan` becomes
/// `from`.
pub fn vault_region(
    plan: &mut Plan,
    from: &str,
    region: Option<&str>,
) -> Result<String, RestoreError> {
    let vaults: Vec<(String, String)> = plan
        .point_regions()
        .into_iter()
        .filter_map(|r| Some((r.to_string(), plan.regions.get(r)?.vault.clone()?)))
        .collect();
    let listed = || {
        vaults
            .iter()
            .map(|(r, v)| format!("{r} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let invalid = |m: String| RestoreError::Invalid(m);
    if !from.contains("://") {
        return match vaults.iter().find(|(r, _)| r == from) {
            Some((r, _)) if region.is_none_or(|asked| asked == r) => Ok(r.clone()),
            Some(_) => Err(invalid(format!(
                "--from-vault {from} and --region {} name two regions",
                region.unwrap_or_default()
            ))),
            None => Err(invalid(format!(
                "plan `{}` keeps no vault in region `{from}` (its vaults: {})",
                plan.name,
                listed()
            ))),
        };
    }
    let url = absolute(from).map_err(invalid)?;
    if let Some((r, _)) = vaults.iter().find(|(_, v)| same_url(v, &url)) {
        return match region {
            Some(asked) if asked != r => Err(invalid(format!(
                "{from} is the vault of region `{r}`, not of `{asked}`"
            ))),
            _ => Ok(r.clone()),
        };
    }
    let Some(asked) = region else {
        return Err(invalid(format!(
            "{from} is none of plan `{}`'s vaults ({}); for a vault moved elsewhere, \
             say with --region which region's points it holds",
            plan.name,
            listed()
        )));
    };
    let Some(settings) = plan
        .regions
        .get_mut(asked)
        .filter(|_| vaults.iter().any(|(r, _)| r == asked))
    else {
        return Err(invalid(format!(
            "plan `{}` keeps no vault in region `{asked}` (its vaults: {})",
            plan.name,
            listed()
        )));
    };
    settings.vault = Some(url);
    Ok(asked.to_string())
}

/// A `file://` URL with a relative path made absolute from the current
/// folder, as the plan's own relative vaults are from the plan's folder.
fn absolute(url: &str) -> Result<String, String> {
    let Some(path) = url.strip_prefix("file://") else {
        return Ok(url.to_string());
    };
    let path = std::path::Path::new(path);
    if path.is_absolute() {
        return Ok(url.to_string());
    }
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current folder: {e}"))?;
    Ok(format!("file://{}", cwd.join(path).display()))
}

/// Equal but for a trailing slash.
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// RDS points live in RDS, not in a vault: a restore from the vault cannot
/// hold them, and saying so beats "no complete point".
fn refuse_rds(plan: &Plan, resources: &[String]) -> Result<(), RestoreError> {
    let rds: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| resources.is_empty() || resources.contains(&r.name))
        .filter(|r| !r.spec.uses_vault())
        .map(|r| r.name.as_str())
        .collect();
    if rds.is_empty() {
        return Ok(());
    }
    Err(RestoreError::Invalid(format!(
        "{} {} RDS snapshots, which live in RDS, not in a vault: restore {} from the catalog \
         (or name the other resources with --resource)",
        rds.join(", "),
        if rds.len() == 1 {
            "is kept as"
        } else {
            "are kept as"
        },
        if rds.len() == 1 { "it" } else { "them" },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let text = r#"name = "shop"
owner = "sre@example.com"
rto = "1h"
rpo = "1h"

[backup]
schedule = "0 * * * *"
primary_region = "local"
copy_to = ["dr"]

[regions.local]
vault = "file:///srv/vault-a"

[regions.dr]
vault = "file:///srv/vault-b/"

[[resources]]
name = "files"
kind = "path"
path = "/srv/files"

[drill]
region = "dr"
"#;
        crate::plan::parse_plan(std::path::Path::new("/plans/shop.toml"), text)
            .expect("the test plan is valid")
            .0
    }

    #[test]
    fn a_region_or_its_url_names_the_vault() {
        let mut p = plan();
        assert_eq!(vault_region(&mut p, "dr", None).unwrap(), "dr");
        assert_eq!(
            vault_region(&mut p, "file:///srv/vault-b", None).unwrap(),
            "dr"
        );
        assert_eq!(
            vault_region(&mut p, "file:///srv/vault-a/", Some("local")).unwrap(),
            "local"
        );
        let e = vault_region(&mut p, "file:///srv/vault-a", Some("dr")).unwrap_err();
        assert!(e.to_string().contains("not of `dr`"), "{e}");
        let e = vault_region(&mut p, "nowhere", None).unwrap_err();
        assert!(e.to_string().contains("local = file:///srv/vault-a"), "{e}");
    }

    #[test]
    fn a_moved_vault_takes_the_place_of_the_region_named() {
        let mut p = plan();
        let e = vault_region(&mut p, "file:///mnt/copy", None).unwrap_err();
        assert!(e.to_string().contains("--region"), "{e}");
        assert_eq!(
            vault_region(&mut p, "file:///mnt/copy", Some("dr")).unwrap(),
            "dr"
        );
        assert_eq!(p.regions["dr"].vault.as_deref(), Some("file:///mnt/copy"));
        assert_eq!(
            p.regions["local"].vault.as_deref(),
            Some("file:///srv/vault-a")
        );
    }
}
