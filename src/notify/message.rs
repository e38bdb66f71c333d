//! The messages: Slack-compatible JSON (`text` is what Slack shows; the
//! other keys are for machines, and Slack ignores them).

use serde::Serialize;

use crate::catalog::{CheckRecord, DrillRecord};
use crate::plan::{NotifyEvent, Plan};
use crate::time::{human_duration_secs, rfc3339, Millis};

/// One notification, as sent.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// One line for people (Slack shows this).
    pub text: String,
    /// What happened, sent as its plan-file name (`backup-failed`,
    /// `drill-failed`, `verify-failed`, `rpo-breach`, `rpo-recovered`, `restore-finished`).
    #[serde(serialize_with = "event_name")]
    pub event: NotifyEvent,
    /// The plan's name.
    pub plan: String,
    /// The plan's `owner`, so a shared channel knows whom it concerns.
    pub owner: String,
    /// The region concerned; `null` for a backup run (it spans regions).
    pub region: Option<String>,
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    /// What went wrong, or how long the breach lasted.
    pub detail: String,
    /// The backup run (`backup-failed`); absent when the run could not
    /// start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// The failed drill (`drill-failed`); absent when the drill could not
    /// run at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill_id: Option<i64>,
    /// The restore (`restore-finished`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_id: Option<i64>,
    /// The backup run's status (`failed` | `partial`); the restore's
    /// (`succeeded` | `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The names of the drill's failing checks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<String>,
    /// The points a verify found damaged (`verify-failed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged_points: Vec<i64>,
    /// The points a verify could not check (`verify-failed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchecked_points: Vec<i64>,
    /// The region's RPO exposure when the message was built, in seconds
    /// (`rpo-breach`, `rpo-recovered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure_seconds: Option<f64>,
    /// The plan's RPO objective, in seconds (`rpo-breach`, `rpo-recovered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_objective_seconds: Option<f64>,
    /// When the exposure went over the objective, RFC 3339 (`rpo-breach`,
    /// `rpo-recovered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach_started_at: Option<String>,
    /// When it came back within, RFC 3339 (`rpo-recovered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach_ended_at: Option<String>,
    /// How long the breach lasted, in seconds (`rpo-recovered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach_seconds: Option<f64>,
}

fn event_name<S: serde::Serializer>(e: &NotifyEvent, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.as_str())
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Messages come from the catalog and from errors of tools; keep them to
/// a size a chat message can carry.
fn clip(text: &str) -> String {
    const MAX: usize = 1500;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl Notification {
    fn base(plan: &Plan, event: NotifyEvent, at: Millis, text: String, detail: String) -> Self {
        Notification {
            text: clip(&text),
            event,
            plan: plan.name.clone(),
            owner: plan.owner.clone(),
            region: None,
            time: rfc3339(at),
            detail: clip(&detail),
            run_id: None,
            drill_id: None,
            restore_id: None,
            status: None,
            failed_checks: Vec::new(),
            damaged_points: Vec::new(),
            unchecked_points: Vec::new(),
            exposure_seconds: None,
            rpo_objective_seconds: None,
            breach_started_at: None,
            breach_ended_at: None,
            breach_seconds: None,
        }
    }

    /// A backup run that failed or was partial (`run_id` is `None` when the
    /// run could not even start, e.g. the catalog was unreachable).
    pub fn backup_failed(
        plan: &Plan,
        run_id: Option<i64>,
        status: &str,
        detail: &str,
        at: Millis,
    ) -> Self {
        let what = if status == "partial" {
            "partly failed"
        } else {
            "FAILED"
        };
        let run = run_id.map(|id| format!(" (run {id})")).unwrap_or_default();
        let text = format!(
            ":x: lifeboat: backup of plan {}{run} {what}: {detail}",
            plan.name
        );
        let mut n = Self::base(
            plan,
            NotifyEvent::BackupFailed,
            at,
            text,
            detail.to_string(),
        );
        n.run_id = run_id;
        n.status = Some(status.to_string());
        n
    }

    /// A finished backup run that failed or was partial; `None` when it succeeded.
    pub fn from_backup(
        plan: &Plan,
        outcome: &crate::backup::BackupOutcome,
        at: Millis,
    ) -> Option<Self> {
        if outcome.status == crate::catalog::RunStatus::Succeeded {
            return None;
        }
        let failed: Vec<&crate::catalog::Point> = outcome
            .points
            .iter()
            .filter(|p| p.error.is_some())
            .collect();
        let mut detail = format!("{} point(s) failed", failed.len());
        if let Some(e) = failed.first().and_then(|p| p.error.as_deref()) {
            detail.push_str(&format!(
                ": {} {}: {e}",
                failed[0].resource, failed[0].region
            ));
        }
        // A failed hook is why nothing (or not everything) was done.
        for h in outcome.hooks.iter().filter(|h| !h.passed) {
            detail = format!("{} hook failed: {}; {detail}", h.hook.as_str(), h.detail);
        }
        Some(Self::backup_failed(
            plan,
            Some(outcome.run_id),
            outcome.status.as_str(),
            &detail,
            at,
        ))
    }

    /// A finished restore, restored or not: a restore is rare and
    /// consequential, so stakeholders hear of every one.
    pub fn from_restore(plan: &Plan, run: &crate::restore::RestoreRun) -> Option<Self> {
        let rec = &run.record;
        let targets: Vec<String> = run
            .items
            .iter()
            .map(|i| format!("{} point {} → {}", i.resource, i.point, i.target))
            .collect();
        let (icon, what, detail) = if run.succeeded() {
            (":recycle:", "RESTORED and verified", targets.join("; "))
        } else {
            let why = rec
                .error
                .clone()
                .unwrap_or_else(|| "the restore failed".into());
            (":x:", "FAILED", format!("{why}; {}", targets.join("; ")))
        };
        let text = format!(
            "{icon} lifeboat: restore {} of plan {} from region {} by {} {what}",
            rec.id, plan.name, rec.region, rec.by_whom
        );
        let at = rec.finished_at.unwrap_or(rec.started_at);
        let mut n = Self::base(plan, NotifyEvent::RestoreFinished, at, text, detail);
        n.region = Some(rec.region.clone());
        n.restore_id = Some(rec.id);
        n.status = Some(
            if run.succeeded() {
                "succeeded"
            } else {
                "failed"
            }
            .into(),
        );
        n.failed_checks = run
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.clone())
            .collect();
        Some(n)
    }

    /// A finished drill that failed (reading its failing checks); `None`
    /// when it passed.
    pub async fn from_drill(
        cat: &crate::catalog::Catalog,
        plan: &Plan,
        drill: &DrillRecord,
    ) -> Option<Self> {
        if drill.passed() {
            return None;
        }
        let mut checks = cat.drill_checks(drill.id).await.unwrap_or_default();
        checks.retain(|c| !c.passed);
        Some(Self::drill_failed(plan, drill, &checks))
    }

    /// A drill that failed, with its failing checks.
    pub fn drill_failed(plan: &Plan, drill: &DrillRecord, failed: &[CheckRecord]) -> Self {
        let mut detail: Vec<String> = failed
            .iter()
            .map(|c| format!("check {} ({}) failed: {}", c.name, c.resource, c.detail))
            .collect();
        if let Some(e) = &drill.error {
            if detail.is_empty() || !e.starts_with("check") {
                detail.insert(0, e.clone());
            }
        }
        if detail.is_empty() {
            detail.push("the drill failed".into());
        }
        let detail = detail.join("; ");
        let text = format!(
            ":x: lifeboat: drill {} of plan {} in region {} FAILED: {detail}",
            drill.id, plan.name, drill.region
        );
        let mut n = Self::base(
            plan,
            NotifyEvent::DrillFailed,
            drill.finished_at.unwrap_or(drill.started_at),
            text,
            detail,
        );
        n.region = Some(drill.region.clone());
        n.drill_id = Some(drill.id);
        n.failed_checks = failed.iter().map(|c| c.name.clone()).collect();
        n
    }

    /// A drill that could not run at all (no point to restore, a vault
    /// that cannot be read, ...).
    pub fn drill_error(plan: &Plan, region: &str, error: &str, at: Millis) -> Self {
        let text = format!(
            ":x: lifeboat: drill of plan {} in region {region} FAILED: {error}",
            plan.name
        );
        let mut n = Self::base(plan, NotifyEvent::DrillFailed, at, text, error.to_string());
        n.region = Some(region.to_string());
        n
    }

    /// A scheduled verify of the plan found `damaged` points, or could not
    /// check `unchecked` ones; `detail` says which and why.
    pub fn verify_failed(
        plan: &Plan,
        damaged: Vec<i64>,
        unchecked: Vec<i64>,
        detail: &str,
        at: Millis,
    ) -> Self {
        let text = format!(
            ":x: lifeboat: verify of plan {} FAILED: {detail}",
            plan.name
        );
        let mut n = Self::base(
            plan,
            NotifyEvent::VerifyFailed,
            at,
            text,
            detail.to_string(),
        );
        n.damaged_points = damaged;
        n.unchecked_points = unchecked;
        n
    }

    /// The RPO exposure in `region` went over the objective at `since`;
    /// it is `exposure_ms` at `now`.
    pub fn rpo_breach(
        plan: &Plan,
        region: &str,
        since: Millis,
        exposure_ms: i64,
        now: Millis,
    ) -> Self {
        let rpo_ms = plan.rpo.as_millis() as i64;
        let detail = format!(
            "RPO exposure {} is over the {} objective since {}: a disaster now would lose that much data",
            human_duration_secs(secs(exposure_ms)),
            human_duration_secs(secs(rpo_ms)),
            rfc3339(since)
        );
        let text = format!(
            ":warning: lifeboat: plan {} region {region}: {detail}",
            plan.name
        );
        let mut n = Self::base(plan, NotifyEvent::RpoBreach, now, text, detail);
        n.region = Some(region.to_string());
        n.exposure_seconds = Some(secs(exposure_ms));
        n.rpo_objective_seconds = Some(secs(rpo_ms));
        n.breach_started_at = Some(rfc3339(since));
        n
    }

    /// The breach of `region` that began at `since` ended at `ended`;
    /// the exposure is `exposure_ms` at `now`.
    pub fn rpo_recovered(
        plan: &Plan,
        region: &str,
        since: Millis,
        ended: Millis,
        exposure_ms: i64,
        now: Millis,
    ) -> Self {
        let rpo_ms = plan.rpo.as_millis() as i64;
        let detail = format!(
            "RPO exposure is back within the {} objective (now {}) after {} over it",
            human_duration_secs(secs(rpo_ms)),
            human_duration_secs(secs(exposure_ms)),
            human_duration_secs(secs(ended - since)),
        );
        let text = format!(
            ":white_check_mark: lifeboat: plan {} region {region}: {detail}",
            plan.name
        );
        let mut n = Self::base(plan, NotifyEvent::RpoRecovered, now, text, detail);
        n.region = Some(region.to_string());
        n.exposure_seconds = Some(secs(exposure_ms));
        n.rpo_objective_seconds = Some(secs(rpo_ms));
        n.breach_started_at = Some(rfc3339(since));
        n.breach_ended_at = Some(rfc3339(ended));
        n.breach_seconds = Some(secs(ended - since));
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_details_are_clipped_on_a_char_boundary() {
        let text = "é".repeat(2000);
        let c = clip(&text);
        assert!(c.len() <= 1500 + "…".len());
        assert!(c.ends_with('…'));
        assert_eq!(clip("short"), "short");
    }
}
