//! Whether a plan is compliant, and why not, from its computed report.
//!
//! DESIGN.md's objectives decide: the RPO exposure stays within the
//! objective in every region, and the last drill of the window met both
//! objectives. Lifeboat adds two conditions: a drill passed within the drill
//! schedule's interval, and the drill evidence chain is intact. Failed runs
//! and flagged points are problems worth a look, but do not breach.

use super::{PlanReport, RegionExposure};
use crate::catalog::DrillView;
use crate::evidence::ChainStatus;
use crate::time::human_duration_secs;

/// How recently a drill passed, against how recently one must have.
#[derive(Debug, Clone, Copy)]
pub(super) struct DrillCadence {
    /// The drill interval plus its jitter; `None` without a drill schedule.
    pub allowed_gap_ms: Option<i64>,
    /// Window end − the start of the newest passing drill before it.
    pub since_last_pass_ms: Option<i64>,
}

/// The verdict and the problems behind it, in the order the report lists them.
#[derive(Debug)]
pub(super) struct Verdict {
    /// No problem found breaks compliance.
    pub compliant: bool,
    /// Every problem found, breaking or only noted, in words.
    pub problems: Vec<String>,
}

impl Verdict {
    /// A problem that breaks compliance.
    fn breach(&mut self, problem: String) {
        self.compliant = false;
        self.problems.push(problem);
    }

    /// A problem to show that leaves compliance alone.
    fn note(&mut self, problem: String) {
        self.problems.push(problem);
    }
}

fn dur(seconds: f64) -> String {
    human_duration_secs(seconds)
}

fn dur_ms(ms: i64) -> String {
    human_duration_secs(ms as f64 / 1000.0)
}

/// Judges a plan's computed report (its `compliant` and `problems` are not
/// read): exposure within the RPO in every region, the last drill of the
/// window meeting both objectives, a drill passed within the drill
/// interval, an intact evidence chain. Failed runs and `shrunk` points are
/// noted without breaching.
pub(super) fn judge(r: &PlanReport, cadence: &DrillCadence) -> Verdict {
    let mut v = Verdict {
        compliant: true,
        problems: Vec::new(),
    };
    for region in &r.regions {
        exposure_within_rpo(&mut v, region, r.rpo_objective_seconds);
    }
    last_drill_met_objectives(&mut v, r.drills.last.as_ref(), r);
    drill_within_interval(&mut v, cadence);
    if r.backups.failed > 0 {
        v.note(format!(
            "{} backup run(s) failed or were partial",
            r.backups.failed
        ));
    }
    let shrunk = |f: &super::FlaggedPoint| f.flags.iter().any(|x| x == "shrunk");
    if r.flagged_points.iter().any(shrunk) {
        v.note(
            "a point was flagged `shrunk`: far smaller than the one before it; check the source"
                .into(),
        );
    }
    evidence_intact(&mut v, r.evidence.as_ref());
    v
}

fn exposure_within_rpo(v: &mut Verdict, region: &RegionExposure, rpo_s: f64) {
    let name = &region.region;
    match region.exposure.worst_exposure_seconds {
        None => v.breach(format!(
            "region {name}: no backup attempted before the end of the window"
        )),
        Some(worst) if worst > rpo_s => v.breach(format!(
            "region {name}: RPO exposure reached {} (objective {})",
            dur(worst),
            dur(rpo_s)
        )),
        Some(_) => {}
    }
}

fn last_drill_met_objectives(v: &mut Verdict, last: Option<&DrillView>, r: &PlanReport) {
    let or_dash = |s: Option<f64>| s.map(dur).unwrap_or_else(|| "-".into());
    match last {
        None => v.breach("no drill in the window: nothing proves the points restore".into()),
        Some(d) if !d.passed => v.breach(format!("last drill ({}) failed", d.id)),
        Some(d) if !d.met_objectives() => v.breach(format!(
            "last drill ({}) missed its objectives (RTO {} vs {}, RPO {} vs {})",
            d.id,
            or_dash(d.rto_seconds),
            dur(r.rto_objective_seconds),
            or_dash(d.rpo_seconds),
            dur(r.rpo_objective_seconds),
        )),
        Some(_) => {}
    }
}

fn drill_within_interval(v: &mut Verdict, c: &DrillCadence) {
    let Some(allowed) = c.allowed_gap_ms else {
        return;
    };
    match c.since_last_pass_ms {
        Some(since) if since <= allowed => {}
        Some(since) => v.breach(format!(
            "no passing drill within the drill interval ({}): the last one passed {} before the window's end",
            dur_ms(allowed),
            dur_ms(since),
        )),
        None => v.breach(format!(
            "no passing drill ever (drill interval {})",
            dur_ms(allowed)
        )),
    }
}

fn evidence_intact(v: &mut Verdict, chain: Option<&ChainStatus>) {
    if let Some(chain) = chain.filter(|c| !c.intact) {
        v.breach(format!(
            "drill evidence chain in {} is broken: {}",
            chain.location,
            chain.problem.as_deref().unwrap_or("unknown")
        ));
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::catalog::{DrillPhases, DrillStatus};
    use crate::report::{BackupSummary, DrillSummary, ExposureSummary, FlaggedPoint};

    const HOUR: i64 = 3_600_000;

    fn last_drill() -> DrillView {
        DrillView {
            id: 7,
            plan: "shop".into(),
            region: "dr".into(),
            trigger: "schedule".into(),
            status: DrillStatus::Passed,
            started_at: 0,
            finished_at: Some(60_000),
            passed: true,
            met_rto: true,
            met_rpo: true,
            rto_seconds: Some(60.0),
            rpo_seconds: Some(1800.0),
            rto_objective_seconds: 600.0,
            rpo_objective_seconds: 3600.0,
            points: vec![1],
            phases: DrillPhases {
                choose_seconds: Some(0.0),
                restore_seconds: Some(30.0),
                checks_seconds: Some(30.0),
                cleanup_seconds: Some(1.0),
            },
            checks: Vec::new(),
            kept_path: None,
            error: None,
        }
    }

    /// A plan that meets every condition: RPO 1h, RTO 10m, daily drills.
    fn compliant() -> (PlanReport, DrillCadence) {
        let region = |name: &str| RegionExposure {
            region: name.into(),
            exposure: ExposureSummary {
                newest_data_time: None,
                worst_exposure_seconds: Some(3600.0),
                within_rpo_ratio: Some(1.0),
            },
            breaches: Vec::new(),
            timeline: Vec::new(),
        };
        let report = PlanReport {
            name: "shop".into(),
            owner: "team".into(),
            rto_objective_seconds: 600.0,
            rpo_objective_seconds: 3600.0,
            compliant: false,
            problems: Vec::new(),
            regions: vec![region("primary"), region("dr")],
            verified: ExposureSummary::default(),
            drills: DrillSummary {
                count: 1,
                passed: 1,
                last: Some(last_drill()),
                rto_p50_seconds: Some(60.0),
                rto_p95_seconds: Some(60.0),
                rto_max_seconds: Some(60.0),
                rpo_max_seconds: Some(1800.0),
                pass_rate: Some(1.0),
                last_passed_at: None,
                since_last_pass_seconds: Some(3600.0),
                interval_seconds: Some(86_400.0),
                history: Vec::new(),
            },
            backups: BackupSummary {
                runs: 24,
                failed: 0,
                missed: 0,
                incidents: Vec::new(),
            },
            flagged_points: Vec::new(),
            evidence: Some(ChainStatus {
                location: "file:///v/dr/evidence/shop/".into(),
                records: 1,
                intact: true,
                problem: None,
            }),
            restores: Vec::new(),
        };
        let cadence = DrillCadence {
            allowed_gap_ms: Some(24 * HOUR + HOUR),
            since_last_pass_ms: Some(HOUR),
        };
        (report, cadence)
    }

    #[test]
    fn a_plan_meeting_every_condition_is_compliant_with_no_problem() {
        let (report, cadence) = compliant();
        let v = judge(&report, &cadence);
        assert!(v.compliant);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
    }

    type Spoil = fn(&mut PlanReport, &mut DrillCadence);

    /// Gives a case's closure its type.
    fn spoil(f: Spoil) -> Spoil {
        f
    }

    #[rstest]
    #[case::exposure_over_rpo(
        spoil(|r, _| r.regions[1].exposure.worst_exposure_seconds = Some(3601.0)),
        false,
        "region dr: RPO exposure reached 1h 1s (objective 1h)"
    )]
    #[case::no_backup_attempted(
        spoil(|r, _| r.regions[0].exposure = ExposureSummary::default()),
        false,
        "region primary: no backup attempted before the end of the window"
    )]
    #[case::no_drill(
        spoil(|r, _| r.drills.last = None),
        false,
        "no drill in the window: nothing proves the points restore"
    )]
    #[case::last_drill_failed(
        spoil(|r, _| {
            let d = r.drills.last.as_mut().unwrap();
            (d.passed, d.met_rto, d.met_rpo, d.rto_seconds) = (false, false, false, None);
        }),
        false,
        "last drill (7) failed"
    )]
    #[case::last_drill_missed_rto(
        spoil(|r, _| {
            let d = r.drills.last.as_mut().unwrap();
            (d.met_rto, d.rto_seconds) = (false, Some(900.0));
        }),
        false,
        "last drill (7) missed its objectives (RTO 15m vs 10m, RPO 30m vs 1h)"
    )]
    #[case::no_pass_within_the_interval(
        spoil(|_, c| c.since_last_pass_ms = Some(26 * HOUR)),
        false,
        "no passing drill within the drill interval (1day 1h): the last one passed 1day 2h before the window's end"
    )]
    #[case::no_pass_ever(
        spoil(|_, c| c.since_last_pass_ms = None),
        false,
        "no passing drill ever (drill interval 1day 1h)"
    )]
    #[case::broken_evidence(
        spoil(|r, _| {
            let chain = r.evidence.as_mut().unwrap();
            (chain.intact, chain.problem) = (false, Some("x.json does not follow the start".into()));
        }),
        false,
        "drill evidence chain in file:///v/dr/evidence/shop/ is broken: x.json does not follow the start"
    )]
    #[case::failed_runs_are_only_noted(
        spoil(|r, _| r.backups.failed = 2),
        true,
        "2 backup run(s) failed or were partial"
    )]
    #[case::a_shrunk_point_is_only_noted(
        spoil(|r, _| r.flagged_points.push(FlaggedPoint {
            id: 3,
            resource: "db".into(),
            region: "dr".into(),
            flags: vec!["shrunk".into()],
            data_time: None,
        })),
        true,
        "a point was flagged `shrunk`: far smaller than the one before it; check the source"
    )]
    fn each_condition_breaks_or_notes_on_its_own(
        #[case] spoil: Spoil,
        #[case] compliant_after: bool,
        #[case] problem: &str,
    ) {
        let (mut report, mut cadence) = compliant();
        spoil(&mut report, &mut cadence);
        let v = judge(&report, &cadence);
        assert_eq!(v.compliant, compliant_after);
        assert_eq!(v.problems, vec![problem.to_string()]);
    }

    #[test]
    fn without_a_drill_schedule_no_interval_applies() {
        let (report, _) = compliant();
        let cadence = DrillCadence {
            allowed_gap_ms: None,
            since_last_pass_ms: None,
        };
        assert!(judge(&report, &cadence).compliant);
    }
}
