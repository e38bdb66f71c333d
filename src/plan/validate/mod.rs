//! The rules of DESIGN.md's plan format, as a pipeline over the plan file:
//! its structure, then one phase per section (one file each), then the
//! rules across sections. Every problem is recorded with its position, and
//! a phase goes on past bad values where it can, so that one run reports
//! every problem of a file rather than the first.

mod aws;
mod backup;
mod drill;
mod notify;
mod placement;
mod regions;
mod resources;
mod retention;
mod structure;
mod verify;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;

use super::raw::{RawPlan, S};
use super::{Diagnostic, Plan};
use crate::schedule::Cron;

/// Longer durations are mistakes, and would overflow time arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(100 * 366 * 86_400);

/// Checks plan text; `file` names it in diagnostics and its folder is the
/// base of relative paths. The plan comes back only if no error was found;
/// the diagnostics are every error and warning, in the order found.
pub(super) fn validate(file: &Path, text: &str) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut v = Validator {
        file,
        text,
        diagnostics: Vec::new(),
    };
    let plan = v.run().filter(|_| !v.has_errors());
    (plan, v.diagnostics)
}

/// The file being checked and what was found so far; each section's rules
/// are an `impl` block of it, in the section's file.
struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let d = Diagnostic::error_at(self.file, self.text, span, message);
        self.diagnostics.push(d);
    }

    fn warning(&mut self, span: Range<usize>, message: impl Into<String>) {
        let d = Diagnostic::warning_at(self.file, self.text, span, message);
        self.diagnostics.push(d);
    }

    fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    fn run(&mut self) -> Option<Plan> {
        if self.text.trim().is_empty() {
            self.error(0..0, "file is empty; a plan needs name, owner, rto, rpo, [backup], [regions.*] and [[resources]]");
            return None;
        }
        let raw = self.structure()?;
        self.plan(raw)
    }

    /// The sections in the order their problems are reported; the rules
    /// across sections come once both sides are read.
    fn plan(&mut self, raw: RawPlan) -> Option<Plan> {
        let base_dir = self.base_dir();
        let (name, owner) = self.identity(&raw);
        let rto = self.positive_duration("rto", &raw.rto);
        let rpo = self.positive_duration("rpo", &raw.rpo);
        let regions = self.regions(raw.regions.get_ref(), &base_dir);
        let backup = self.backup(raw.backup.get_ref(), &regions);
        let retention = self.retention(raw.retention.as_ref());
        self.check_object_locks(raw.regions.get_ref(), &regions, &retention);
        let resources = self.resources(&raw.resources, &base_dir);
        self.check_vaults_of_resources(&resources, raw.backup.get_ref(), &regions, &backup);
        let drill = self.drill(raw.drill.as_ref(), &regions, &backup, &resources);
        let verify = self.verify(raw.verify.as_ref(), backup.tz);
        let aws = self.aws(raw.aws.as_ref());
        let notify = self.notify(raw.notify.as_ref());
        let placement = self.placement(raw.placement.as_ref());
        self.check_rpo(&raw.rpo, rpo, &backup);
        if self.has_errors() {
            return None;
        }
        // Every Option below is Some when no error was recorded.
        Some(Plan {
            name,
            owner,
            rto: rto?,
            rpo: rpo?,
            backup: backup.spec()?,
            retention,
            regions: regions::into_plan(regions),
            resources,
            drill: drill?,
            verify,
            aws,
            notify,
            placement,
            source: self.file.to_path_buf(),
        })
    }

    /// The plan's folder, absolute, so that the locations recorded in the
    /// catalog do not depend on the folder a command was started from.
    fn base_dir(&self) -> PathBuf {
        self.file
            .parent()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
            .unwrap_or_default()
    }

    /// `name` and `owner`.
    fn identity(&mut self, raw: &RawPlan) -> (String, String) {
        let name = raw.name.get_ref().clone();
        if !is_name(&name) {
            self.error(
                raw.name.span(),
                format!("plan name `{name}` must be 1 to 63 characters of a-z, 0-9 and '-'"),
            );
        }
        let owner = raw.owner.get_ref().trim().to_string();
        if owner.is_empty() {
            self.error(
                raw.owner.span(),
                "`owner` must not be empty: reports name who to call",
            );
        }
        (name, owner)
    }

    fn duration(&mut self, key: &str, value: &S<String>) -> Option<Duration> {
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if d > MAX_DURATION => {
                self.error(
                    value.span(),
                    format!(
                        "duration `{}` for `{key}` is too long (at most 100 years)",
                        value.get_ref()
                    ),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    value.span(),
                    format!(
                        "invalid duration `{}` for `{key}`: {e}; write e.g. \"90s\", \"15m\", \"1h\", \"7d\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn positive_duration(&mut self, key: &str, value: &S<String>) -> Option<Duration> {
        let d = self.duration(key, value)?;
        if d.is_zero() {
            self.error(value.span(), format!("`{key}` must be longer than zero"));
            return None;
        }
        Some(d)
    }

    /// `default` when the key is left out.
    fn optional_duration(
        &mut self,
        key: &str,
        value: Option<&S<String>>,
        default: Duration,
    ) -> Option<Duration> {
        match value {
            Some(v) => self.duration(key, v),
            None => Some(default),
        }
    }

    /// UTC when the key is left out.
    fn timezone(&mut self, value: Option<&S<String>>) -> Option<Tz> {
        let Some(v) = value else {
            return Some(chrono_tz::UTC);
        };
        match v.get_ref().parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.error(
                    v.span(),
                    format!(
                        "unknown time zone `{}`; use an IANA name such as \"UTC\" or \"Europe/Paris\"",
                        v.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn cron(&mut self, value: &S<String>) -> Option<Cron> {
        match Cron::parse(value.get_ref()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(value.span(), e.to_string());
                None
            }
        }
    }

    /// Jitter must be shorter than the shortest interval between slots, or
    /// runs could overtake each other.
    fn check_jitter(
        &mut self,
        (min_gap, _): (Duration, Duration),
        jitter: Duration,
        span: Range<usize>,
    ) {
        if jitter >= min_gap {
            self.error(
                span,
                format!(
                    "jitter {} is not shorter than the schedule's interval {}",
                    humantime::format_duration(jitter),
                    humantime::format_duration(min_gap)
                ),
            );
        }
    }
}

/// A plan name: it names catalog rows and files.
fn is_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
