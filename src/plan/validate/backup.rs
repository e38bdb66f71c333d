//! `[backup]`: the schedule, its windows, the primary region and the
//! regions copies go to; and the RPO the schedule can meet.

use std::ops::Range;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;

use super::regions::Regions;
use super::Validator;
use crate::plan::raw::{RawBackup, S};
use crate::plan::{BackupSpec, Hook};
use crate::schedule::{Cron, Timing};

/// How long after its slot a backup may still start, unless the plan says.
const DEFAULT_START_WINDOW: Duration = Duration::from_secs(600);
/// How long a backup may run, unless the plan says.
const DEFAULT_COMPLETION_WINDOW: Duration = Duration::from_secs(2 * 3600);
/// How long a `before` or `after` hook may run, unless the plan says.
const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// `[backup]` as read: a value is `None` when it was invalid (and
/// reported). Later phases read its regions and time zone.
pub(super) struct Backup {
    pub tz: Option<Tz>,
    cron: Option<Cron>,
    jitter: Option<Duration>,
    /// The shortest and longest interval between two slots.
    gaps: Option<(Duration, Duration)>,
    start_window: Option<Duration>,
    completion_window: Option<Duration>,
    /// `before` and `after` (`Err` when invalid, reported), and their
    /// timeout.
    before: Result<Option<Vec<String>>, ()>,
    after: Result<Option<Vec<String>>, ()>,
    hook_timeout: Option<Duration>,
    pub primary: String,
    /// The valid `copy_to` regions, in order.
    pub copy_to: Vec<String>,
}

impl Backup {
    /// Every region that holds points: the primary and the copies.
    pub fn holds_points(&self, region: &str) -> bool {
        region == self.primary || self.copy_to.iter().any(|r| r == region)
    }

    /// The spec, when every value was valid.
    pub fn spec(self) -> Option<BackupSpec> {
        let hook_timeout = self.hook_timeout?;
        Some(BackupSpec {
            timing: Timing {
                cron: self.cron?,
                timezone: self.tz?,
                jitter: self.jitter?,
            },
            start_window: self.start_window?,
            completion_window: self.completion_window?,
            primary_region: self.primary,
            copy_to: self.copy_to,
            before: self.before.ok()?.map(|argv| Hook {
                argv,
                timeout: hook_timeout,
            }),
            after: self.after.ok()?.map(|argv| Hook {
                argv,
                timeout: hook_timeout,
            }),
        })
    }
}

impl Validator<'_> {
    pub(super) fn backup(&mut self, b: &RawBackup, regions: &Regions) -> Backup {
        let tz = self.timezone(b.timezone.as_ref());
        let cron = self.cron(&b.schedule);
        let jitter = self.optional_duration("jitter", b.jitter.as_ref(), Duration::ZERO);
        // Computed once: it walks a period of the schedule.
        let gaps = match (&cron, tz) {
            (Some(cron), Some(tz)) => cron.gap_bounds(Utc::now(), tz),
            _ => None,
        };
        if let (Some(gaps), Some(jitter), Some(span)) =
            (gaps, jitter, b.jitter.as_ref().map(|j| j.span()))
        {
            self.check_jitter(gaps, jitter, span);
        }
        let start_window = match &b.start_window {
            Some(v) => self.positive_duration("start_window", v),
            None => Some(DEFAULT_START_WINDOW),
        };
        let completion_window = match &b.completion_window {
            Some(v) => self.positive_duration("completion_window", v),
            None => Some(DEFAULT_COMPLETION_WINDOW),
        };
        let hook_timeout = match &b.hook_timeout {
            Some(v) => self.positive_duration("hook_timeout", v),
            None => Some(DEFAULT_HOOK_TIMEOUT),
        };
        let before = self.hook("before", b.before.as_ref());
        let after = self.hook("after", b.after.as_ref());
        let primary = b.primary_region.get_ref().clone();
        if !regions.contains_key(&primary) {
            self.error(
                b.primary_region.span(),
                format!("primary region `{primary}` has no [regions.{primary}] table"),
            );
        }
        let copy_to = self.copy_to(b, &primary, regions);
        Backup {
            tz,
            cron,
            jitter,
            gaps,
            start_window,
            completion_window,
            before,
            after,
            hook_timeout,
            primary,
            copy_to,
        }
    }

    /// A hook's program and arguments; `Err` (reported) without a program.
    fn hook(
        &mut self,
        key: &str,
        raw: Option<&S<Vec<S<String>>>>,
    ) -> Result<Option<Vec<String>>, ()> {
        let Some(raw) = raw else { return Ok(None) };
        let argv: Vec<String> = raw.get_ref().iter().map(|a| a.get_ref().clone()).collect();
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            self.error(
                raw.span(),
                format!("`{key}` needs a program: [\"PROGRAM\", \"ARG\", …] (run without a shell)"),
            );
            return Err(());
        }
        Ok(Some(argv))
    }

    /// The `copy_to` regions that are valid: other than the primary, listed
    /// once, and defined.
    fn copy_to(&mut self, b: &RawBackup, primary: &str, regions: &Regions) -> Vec<String> {
        let mut copy_to: Vec<String> = Vec::new();
        for (r, span) in listed_copy_to(b) {
            if r == primary {
                self.error(
                    span,
                    format!("copy_to lists the primary region `{r}`; copies go to other regions"),
                );
            } else if copy_to.iter().any(|c| c == r) {
                self.error(span, format!("copy_to lists `{r}` twice"));
            } else if !regions.contains_key(r) {
                self.error(
                    span,
                    format!("copy_to region `{r}` has no [regions.{r}] table"),
                );
            } else {
                copy_to.push(r.to_string());
            }
        }
        copy_to
    }

    /// Objectives that the schedule cannot meet by construction.
    pub(super) fn check_rpo(&mut self, raw: &S<String>, rpo: Option<Duration>, backup: &Backup) {
        let (Some(jitter), Some(rpo), Some((_, max_gap))) = (backup.jitter, rpo, backup.gaps)
        else {
            return;
        };
        let worst = max_gap.saturating_add(jitter);
        if worst >= rpo {
            self.warning(
                raw.span(),
                format!(
                    "rpo {} cannot be met by construction: the schedule leaves up to {} between backups (longest interval {} + jitter up to {}), before counting the time a backup takes",
                    humantime::format_duration(rpo),
                    humantime::format_duration(worst),
                    humantime::format_duration(max_gap),
                    humantime::format_duration(jitter),
                ),
            );
        }
    }
}

/// The primary region then every `copy_to` entry as written (valid or
/// not), each with its span.
pub(super) fn point_regions(b: &RawBackup) -> Vec<(&str, Range<usize>)> {
    let primary = (b.primary_region.get_ref().as_str(), b.primary_region.span());
    std::iter::once(primary).chain(listed_copy_to(b)).collect()
}

fn listed_copy_to(b: &RawBackup) -> impl Iterator<Item = (&str, Range<usize>)> {
    let listed = b.copy_to.as_ref().map(|c| c.get_ref().as_slice());
    listed
        .unwrap_or(&[])
        .iter()
        .map(|r| (r.get_ref().as_str(), r.span()))
}
