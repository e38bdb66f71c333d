//! `[drill]`: its schedule, the region it restores from, what it cleans up,
//! which point it takes, and its SQL checks.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;

use super::backup::Backup;
use super::regions::Regions;
use super::Validator;
use crate::plan::raw::{RawCheck, RawDrill, S};
use crate::plan::{Cleanup, CommandCheck, DrillCheck, DrillSpec, PointChoice, Resource, SqlCheck};
use crate::schedule::Timing;

/// How long a SQL check may run, unless the plan says.
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(300);

impl Validator<'_> {
    /// Without a `[drill]` table, drills run by hand only, from the first
    /// copy_to region (or the primary), with the defaults.
    pub(super) fn drill(
        &mut self,
        raw: Option<&S<RawDrill>>,
        regions: &Regions,
        backup: &Backup,
        resources: &[Resource],
    ) -> Option<DrillSpec> {
        let default_region = backup.copy_to.first().unwrap_or(&backup.primary).clone();
        let Some(raw) = raw else {
            self.warning(
                0..0,
                "no [drill] table: nothing proves this plan's points can be restored; add one with a schedule",
            );
            return Some(DrillSpec {
                timing: None,
                region: default_region,
                isolate_primary: false,
                cleanup: Cleanup::Always,
                point: PointChoice::Latest,
                checks: Vec::new(),
            });
        };
        let d = raw.get_ref();
        let timing = self.drill_timing(raw, backup.tz);
        let isolate_primary = d.isolate_primary.as_ref().is_some_and(|v| *v.get_ref());
        let region = match &d.region {
            Some(r) => self.drill_region(r, regions, backup, isolate_primary),
            None => default_region,
        };
        self.check_drill_isolation(raw, &region, &backup.primary, isolate_primary);
        let cleanup = self.cleanup(d.cleanup.as_ref());
        let point = self.point_choice(d.point.as_ref());
        let checks = self.checks(d.checks.as_ref(), resources);
        Some(DrillSpec {
            timing: timing?,
            region,
            isolate_primary,
            cleanup: cleanup?,
            point: point?,
            checks,
        })
    }

    /// `Some(None)` for a drill without a schedule; `None` when the
    /// schedule is invalid. The time zone defaults to the backup's.
    fn drill_timing(&mut self, raw: &S<RawDrill>, backup_tz: Option<Tz>) -> Option<Option<Timing>> {
        let d = raw.get_ref();
        let tz = match &d.timezone {
            Some(_) => self.timezone(d.timezone.as_ref()),
            None => backup_tz,
        };
        let jitter = self.optional_duration("jitter", d.jitter.as_ref(), Duration::ZERO);
        let Some(schedule) = &d.schedule else {
            self.warning(
                raw.span(),
                "[drill] has no schedule: drills run only when started by hand",
            );
            return Some(None);
        };
        let cron = self.cron(schedule);
        if let (Some(cron), Some(tz), Some(jitter), Some(span)) =
            (&cron, tz, jitter, d.jitter.as_ref().map(|j| j.span()))
        {
            if let Some(gaps) = cron.gap_bounds(Utc::now(), tz) {
                self.check_jitter(gaps, jitter, span);
            }
        }
        Some(Some(Timing {
            cron: cron?,
            timezone: tz?,
            jitter: jitter?,
        }))
    }

    /// The region a drill restores from must hold points, and not be the
    /// primary when the drill isolates it.
    fn drill_region(
        &mut self,
        r: &S<String>,
        regions: &Regions,
        backup: &Backup,
        isolate_primary: bool,
    ) -> String {
        let name = r.get_ref().clone();
        if !regions.contains_key(&name) {
            self.error(
                r.span(),
                format!("drill region `{name}` has no [regions.{name}] table"),
            );
        } else if name == backup.primary && isolate_primary {
            self.error(
                r.span(),
                format!("drill region `{name}` is the primary region, but isolate_primary = true; drill from a copy_to region"),
            );
        } else if !backup.holds_points(&name) {
            self.error(
                r.span(),
                format!("drill region `{name}` holds no points: it is neither the primary region nor in copy_to"),
            );
        }
        name
    }

    /// A drill from the primary region proves nothing about losing it.
    fn check_drill_isolation(
        &mut self,
        raw: &S<RawDrill>,
        region: &str,
        primary: &str,
        isolate_primary: bool,
    ) {
        if region != primary {
            return;
        }
        if !isolate_primary {
            self.warning(
                raw.span(),
                format!("drills restore from the primary region `{primary}`: they do not prove recovery from the loss of that region; add copy_to"),
            );
        } else if raw.get_ref().region.is_none() {
            self.error(
                raw.span(),
                "isolate_primary = true needs a drill region other than the primary: add copy_to",
            );
        }
    }

    fn cleanup(&mut self, raw: Option<&S<String>>) -> Option<Cleanup> {
        let Some(c) = raw else {
            return Some(Cleanup::Always);
        };
        match c.get_ref().as_str() {
            "always" => Some(Cleanup::Always),
            "on-success" => Some(Cleanup::OnSuccess),
            "never" => Some(Cleanup::Never),
            other => {
                self.error(
                    c.span(),
                    format!("`cleanup` must be one of always, on-success, never (got `{other}`)"),
                );
                None
            }
        }
    }

    fn point_choice(&mut self, raw: Option<&S<String>>) -> Option<PointChoice> {
        let Some(p) = raw else {
            return Some(PointChoice::Latest);
        };
        let choice = PointChoice::parse(p.get_ref());
        if choice.is_none() {
            self.error(
                p.span(),
                format!(
                    "`point` must be one of latest, oldest, random (got `{}`)",
                    p.get_ref()
                ),
            );
        }
        choice
    }

    /// `[[drill.checks]]`, each named uniquely (`RESOURCE-sql-N` unless
    /// named).
    fn checks(
        &mut self,
        raw: Option<&S<Vec<S<RawCheck>>>>,
        resources: &[Resource],
    ) -> Vec<DrillCheck> {
        let mut names = HashSet::new();
        let raw = raw.map(|c| c.get_ref().as_slice()).unwrap_or(&[]);
        let mut checks = Vec::new();
        for (i, c) in raw.iter().enumerate() {
            let check = self.check(c, i + 1, resources);
            if !names.insert(check.name().to_string()) {
                let span = c.get_ref().name.as_ref().map_or(c.span(), |n| n.span());
                self.error(span, format!("duplicate check name `{}`", check.name()));
            }
            checks.push(check);
        }
        checks
    }

    /// The `n`th check (from 1). It is kept even when invalid: the errors
    /// recorded reject the plan.
    fn check(&mut self, raw: &S<RawCheck>, n: usize, resources: &[Resource]) -> DrillCheck {
        let c = raw.get_ref();
        let resource = c.resource.get_ref().clone();
        let found = resources.iter().find(|r| r.name == resource);
        if found.is_none() && !self.text_mentions_resource(&resource) {
            // A resource that failed validation was already reported.
            self.error(
                c.resource.span(),
                format!("check refers to unknown resource `{resource}`"),
            );
        }
        let timeout = match &c.timeout {
            Some(t) => self.positive_duration("timeout", t).unwrap_or_default(),
            None => DEFAULT_CHECK_TIMEOUT,
        };
        let given_name = c.name.as_ref().map(|n| n.get_ref().clone());
        match (&c.sql, &c.command) {
            (Some(_), Some(command)) => {
                self.error(command.span(), "give `sql` or `command`, not both");
            }
            (None, None) => {
                self.error(
                    raw.span(),
                    "a check needs `sql` (a query on a restored database) or `command` (a program run on the restored data)",
                );
            }
            _ => {}
        }
        if let Some(command) = &c.command {
            let argv: Vec<String> = command
                .get_ref()
                .iter()
                .map(|a| a.get_ref().clone())
                .collect();
            if argv.first().is_none_or(|p| p.trim().is_empty()) {
                self.error(
                    command.span(),
                    "`command` needs a program: [\"PROGRAM\", \"ARG\", …]",
                );
            }
            if let Some(e) = &c.expect {
                self.error(
                    e.span(),
                    "`expect` is for `sql` checks; a command passes on exit status 0",
                );
            }
            return DrillCheck::Command(CommandCheck {
                name: given_name.unwrap_or_else(|| format!("{resource}-command-{n}")),
                resource,
                argv,
                timeout,
            });
        }
        let sql = c
            .sql
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default();
        let sql_span = c.sql.as_ref().map_or(raw.span(), |s| s.span());
        if let Some(r) = found {
            if !r.spec.supports_sql() {
                self.error(
                    sql_span.clone(),
                    format!(
                        "resource `{resource}` is of kind `{}`: SQL checks need a database (sqlite, postgres, rds-instance, rds-cluster); a `command` check can look at any kind",
                        r.spec.kind()
                    ),
                );
            }
        }
        if c.sql.is_some() && sql.trim().is_empty() {
            self.error(sql_span, "`sql` must not be empty");
        }
        let expect = c.expect.as_ref().map(|e| match e.get_ref() {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        DrillCheck::Sql(SqlCheck {
            name: given_name.unwrap_or_else(|| format!("{resource}-sql-{n}")),
            resource,
            sql,
            expect,
            timeout,
        })
    }

    /// Whether a resource of that name is written in the file (it may have
    /// been dropped for another error, already reported).
    fn text_mentions_resource(&self, name: &str) -> bool {
        self.has_errors() && self.text.contains(&format!("name = \"{name}\""))
    }
}
