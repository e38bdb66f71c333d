//! Reading plan files: TOML syntax, structure, then every semantic rule of
//! DESIGN.md, collecting every problem found rather than stopping at the first.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::raw::*;
use super::*;
use crate::schedule::{Cron, Timing};

/// Plan files are a few kilobytes; anything far larger is a mistake (or hostile).
pub const MAX_PLAN_BYTES: u64 = 1024 * 1024;
/// Serde structure errors are reported one at a time; unknown keys are
/// removed and parsing retried, up to this many times.
const MAX_STRUCTURE_ROUNDS: usize = 50;
/// Longer durations are mistakes, and would overflow time arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(100 * 366 * 86_400);

/// A plan file that could not be read or is invalid: every error found,
/// plus the warnings.
#[derive(Debug, Clone)]
pub struct PlanFileError {
    pub diagnostics: Vec<Diagnostic>,
}

/// The plans of a folder that loaded, and every diagnostic of every file.
#[derive(Debug, Default)]
pub struct LoadedPlans {
    pub plans: Vec<Plan>,
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadedPlans {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn get(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name == name)
    }
}

/// Loads every `*.toml` directly inside `dir`, sorted by file name. A plan
/// whose name another file already uses is rejected.
pub fn load_dir(dir: &Path) -> std::io::Result<LoadedPlans> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    let mut loaded = LoadedPlans::default();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match load_file(&file) {
            Ok((plan, warnings)) => {
                loaded.diagnostics.extend(warnings);
                if let Some(first) = seen.get(&plan.name) {
                    loaded.diagnostics.push(Diagnostic {
                        file: file.clone(),
                        line: 1,
                        column: 1,
                        severity: Severity::Error,
                        message: format!(
                            "plan name `{}` is already used by {}",
                            plan.name,
                            first.display()
                        ),
                    });
                    continue;
                }
                seen.insert(plan.name.clone(), file.clone());
                loaded.plans.push(plan);
            }
            Err(e) => loaded.diagnostics.extend(e.diagnostics),
        }
    }
    Ok(loaded)
}

/// Reads and validates one plan file. Ok carries the plan and its warnings.
pub fn load_file(path: &Path) -> Result<(Plan, Vec<Diagnostic>), PlanFileError> {
    let whole_file = |message: String| PlanFileError {
        diagnostics: vec![Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            severity: Severity::Error,
            message,
        }],
    };
    let meta = std::fs::metadata(path).map_err(|e| whole_file(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(whole_file("not a regular file".into()));
    }
    if meta.len() > MAX_PLAN_BYTES {
        return Err(whole_file(format!(
            "file is {} bytes; a plan file may be at most {} bytes",
            meta.len(),
            MAX_PLAN_BYTES
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| whole_file(format!("cannot read: {e}")))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let valid = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
            let mut d = Diagnostic::at(
                path,
                &valid,
                offset,
                Severity::Error,
                "file is not UTF-8 text (a plan is a TOML file)",
            );
            d.file = path.to_path_buf();
            return Err(PlanFileError {
                diagnostics: vec![d],
            });
        }
    };
    parse_plan(path, &text)
}

/// Validates plan text; `path` is used for positions and to resolve
/// relative paths (relative to the plan file's folder).
pub fn parse_plan(path: &Path, text: &str) -> Result<(Plan, Vec<Diagnostic>), PlanFileError> {
    let mut v = Validator {
        file: path,
        text,
        diagnostics: Vec::new(),
    };
    let plan = v.run();
    let has_errors = v.diagnostics.iter().any(Diagnostic::is_error);
    match plan {
        Some(plan) if !has_errors => Ok((plan, v.diagnostics)),
        _ => {
            v.diagnostics
                .sort_by_key(|d| (d.line, d.column, d.severity, d.message.clone()));
            Err(PlanFileError {
                diagnostics: v.diagnostics,
            })
        }
    }
}

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

    fn run(&mut self) -> Option<Plan> {
        if self.text.trim().is_empty() {
            self.error(0..0, "file is empty; a plan needs name, owner, rto, rpo, [backup], [regions.*] and [[resources]]");
            return None;
        }
        let raw = self.structure()?;
        self.semantics(raw)
    }

    /// TOML syntax (every error the parser recovers from), then the serde
    /// structure. Unknown keys are removed and parsing retried so that every
    /// unknown key is reported in one go.
    fn structure(&mut self) -> Option<RawPlan> {
        let (mut doc, errors) = DeTable::parse_recoverable(self.text);
        if !errors.is_empty() {
            for e in errors {
                let span = e.span().unwrap_or(0..0);
                self.error(span, e.message().trim().to_string());
            }
            return None;
        }
        for _ in 0..MAX_STRUCTURE_ROUNDS {
            let de = toml::de::Deserializer::from(doc.clone());
            match RawPlan::deserialize(de) {
                Ok(raw) => return Some(raw),
                Err(e) => {
                    let span = e.span().unwrap_or(0..0);
                    let message = e.message().trim().replace("unknown field", "unknown key");
                    let message = message.replace("missing field", "missing key");
                    let unknown = message.starts_with("unknown key");
                    self.error(span.clone(), message);
                    if !(unknown && remove_key_at(doc.get_mut(), &span)) {
                        return None;
                    }
                }
            }
        }
        None
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

    fn timezone(&mut self, value: Option<&S<String>>) -> Option<Tz> {
        match value {
            None => Some(chrono_tz::UTC),
            Some(v) => match v.get_ref().parse::<Tz>() {
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
            },
        }
    }

    fn cron(&mut self, value: &S<String>) -> Option<Cron> {
        match Cron::parse(value.get_ref()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(value.span(), e);
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

    fn retention(&mut self, raw: Option<&S<RawRetention>>) -> Retention {
        let Some(raw) = raw else {
            return Retention::default();
        };
        let raw = raw.get_ref();
        let mut count = |key: &str, v: &Option<S<i64>>| -> Option<u32> {
            let v = v.as_ref()?;
            match u32::try_from(*v.get_ref()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        v.span(),
                        format!("`{key}` must be a whole number from 0 to 4294967295"),
                    );
                    None
                }
            }
        };
        let keep_last = count("keep_last", &raw.keep_last);
        let keep_hourly = count("keep_hourly", &raw.keep_hourly);
        let keep_daily = count("keep_daily", &raw.keep_daily);
        let keep_weekly = count("keep_weekly", &raw.keep_weekly);
        let keep_monthly = count("keep_monthly", &raw.keep_monthly);
        let max_age = raw
            .max_age
            .as_ref()
            .and_then(|v| self.positive_duration("max_age", v));
        Retention {
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            keep_monthly,
            max_age,
        }
    }

    /// `object_lock = { mode, retain }`: both required. The mode is never
    /// assumed: governance can be lifted by privileged users, compliance by
    /// nobody, and which one a plan gets should be a decision.
    fn object_lock(&mut self, raw: &S<RawObjectLock>) -> Option<ObjectLock> {
        let l = raw.get_ref();
        let mode = match &l.mode {
            None => {
                self.error(
                    raw.span(),
                    "`object_lock` needs `mode`: \"governance\" (users allowed s3:BypassGovernanceRetention can still remove a lock) or \"compliance\" (nobody can before it expires, not even the account's root user)",
                );
                None
            }
            Some(m) => match LockMode::parse(m.get_ref()) {
                Some(mode) => Some(mode),
                None => {
                    self.error(
                        m.span(),
                        format!(
                            "`mode` must be governance or compliance (got `{}`)",
                            m.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let retain = match &l.retain {
            None => {
                self.error(
                    raw.span(),
                    "`object_lock` needs `retain`: how long each object stays locked once written, e.g. \"30d\"",
                );
                None
            }
            Some(r) => self.positive_duration("retain", r),
        };
        Some(ObjectLock {
            mode: mode?,
            retain: retain?,
        })
    }

    /// An object lock needs an `s3://` vault; and a lock longer than the
    /// region's `max_age` keeps points past it (prune waits for the lock).
    fn check_object_locks(
        &mut self,
        raw: &RawPlan,
        regions: &BTreeMap<String, (Range<usize>, Region)>,
        default_retention: &Retention,
    ) {
        for (key, region) in raw.regions.get_ref() {
            let Some(lock_raw) = &region.get_ref().object_lock else {
                continue;
            };
            let name = key.get_ref();
            let Some((_, r)) = regions.get(name) else {
                continue;
            };
            match r.vault.as_deref() {
                None => {
                    self.error(
                        lock_raw.span(),
                        format!("region `{name}` has no vault: `object_lock` locks the objects of an s3:// vault"),
                    );
                    continue;
                }
                Some(vault) if !vault.starts_with("s3://") => {
                    self.error(
                        lock_raw.span(),
                        format!("`object_lock` is S3 Object Lock and needs an s3:// vault; region `{name}` keeps its points in `{vault}`"),
                    );
                    continue;
                }
                Some(_) => {}
            }
            let rules = if r.retention.keeps_everything() {
                default_retention
            } else {
                &r.retention
            };
            if let (Some(lock), Some(max_age)) = (r.object_lock, rules.max_age) {
                if lock.retain > max_age {
                    self.warning(
                        lock_raw.span(),
                        format!(
                            "points in region `{name}` stay locked for {}, longer than max_age {}: prune keeps each point until its lock expires, then deletes it",
                            humantime::format_duration(lock.retain),
                            humantime::format_duration(max_age)
                        ),
                    );
                }
            }
        }
    }

    fn semantics(&mut self, raw: RawPlan) -> Option<Plan> {
        // Absolute, so vault locations recorded in the catalog do not
        // depend on the folder a command was started from.
        let base_dir = self
            .file
            .parent()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
            .unwrap_or_default();

        // Identity and objectives.
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
        let rto = self.positive_duration("rto", &raw.rto);
        let rpo = self.positive_duration("rpo", &raw.rpo);

        // Regions.
        let mut regions = BTreeMap::new();
        for (key, region) in raw.regions.get_ref() {
            let region_name = key.get_ref().clone();
            if !is_region_name(&region_name) {
                self.error(
                    key.span(),
                    format!("region name `{region_name}` must be 1 to 63 characters of a-z, A-Z, 0-9, '-', '_' and '.'"),
                );
            }
            let r = region.get_ref();
            if let Some(vault) = &r.vault {
                if let Err(e) = check_vault_url(vault.get_ref()) {
                    self.error(vault.span(), e);
                }
            }
            let retention = self.retention(r.retention.as_ref());
            let object_lock = r.object_lock.as_ref().and_then(|l| self.object_lock(l));
            regions.insert(
                region_name.clone(),
                (
                    key.span(),
                    Region {
                        name: region_name,
                        vault: r
                            .vault
                            .as_ref()
                            .map(|v| resolve_vault(&base_dir, v.get_ref())),
                        kms_key: r.kms_key.as_ref().map(|k| k.get_ref().clone()),
                        retention,
                        object_lock,
                    },
                ),
            );
        }

        // Two regions sharing a vault would make copies overwrite their
        // source and pruning in one region delete the other's points.
        let mut vault_owner: HashMap<String, String> = HashMap::new();
        for (key, region) in raw.regions.get_ref() {
            if let Some(vault) = &region.get_ref().vault {
                let canonical = normalize_vault(&resolve_vault(&base_dir, vault.get_ref()));
                if let Some(other) = vault_owner.get(&canonical) {
                    self.error(
                        vault.span(),
                        format!("vault `{}` is also the vault of region `{other}`; every region needs its own vault", vault.get_ref()),
                    );
                } else {
                    vault_owner.insert(canonical, key.get_ref().clone());
                }
            }
        }

        // Backup schedule and regions.
        let b = raw.backup.get_ref();
        let tz = self.timezone(b.timezone.as_ref());
        let cron = self.cron(&b.schedule);
        let jitter = self.optional_duration("jitter", b.jitter.as_ref(), Duration::ZERO);
        // Computed once: it walks a period of the schedule.
        let backup_gaps = match (&cron, tz) {
            (Some(cron), Some(tz)) => cron.gap_bounds(Utc::now(), tz),
            _ => None,
        };
        if let (Some(gaps), Some(jitter), Some(span)) =
            (backup_gaps, jitter, b.jitter.as_ref().map(|j| j.span()))
        {
            self.check_jitter(gaps, jitter, span);
        }
        let start_window = match &b.start_window {
            Some(v) => self.positive_duration("start_window", v),
            None => Some(Duration::from_secs(600)),
        };
        let completion_window = match &b.completion_window {
            Some(v) => self.positive_duration("completion_window", v),
            None => Some(Duration::from_secs(2 * 3600)),
        };
        let primary = b.primary_region.get_ref().clone();
        if !regions.contains_key(&primary) {
            self.error(
                b.primary_region.span(),
                format!("primary region `{primary}` has no [regions.{primary}] table"),
            );
        }
        let mut copy_to: Vec<String> = Vec::new();
        for region in b
            .copy_to
            .as_ref()
            .map(|c| c.get_ref().as_slice())
            .unwrap_or(&[])
        {
            let r = region.get_ref();
            if r == &primary {
                self.error(
                    region.span(),
                    format!("copy_to lists the primary region `{r}`; copies go to other regions"),
                );
            } else if copy_to.contains(r) {
                self.error(region.span(), format!("copy_to lists `{r}` twice"));
            } else if !regions.contains_key(r) {
                self.error(
                    region.span(),
                    format!("copy_to region `{r}` has no [regions.{r}] table"),
                );
            } else {
                copy_to.push(r.clone());
            }
        }

        let retention = self.retention(raw.retention.as_ref());
        self.check_object_locks(&raw, &regions, &retention);

        // Resources.
        let mut resources: Vec<Resource> = Vec::new();
        let mut resource_spans: HashMap<String, Range<usize>> = HashMap::new();
        if raw.resources.get_ref().is_empty() {
            self.error(
                raw.resources.span(),
                "the plan protects no resource: add a [[resources]] table",
            );
        }
        for res in raw.resources.get_ref() {
            let r = res.get_ref();
            let rname = r.name.get_ref().clone();
            if !is_resource_name(&rname) {
                self.error(
                    r.name.span(),
                    format!("resource name `{rname}` must be 1 to 63 characters of a-z, 0-9, '-' and '_'"),
                );
            }
            if let Some(first) = resource_spans.get(&rname) {
                let (line, _) = super::diagnostic::line_column(self.text, first.start);
                self.error(
                    r.name.span(),
                    format!("duplicate resource name `{rname}` (first defined on line {line})"),
                );
                continue;
            }
            // A drill's scratch names (database, S3 prefix) spell `-` as
            // `_`: two such resources would restore into one place.
            let scratch_key = rname.replace('-', "_");
            if let Some((other, first)) = resource_spans
                .iter()
                .find(|(name, _)| name.replace('-', "_") == scratch_key)
            {
                let (line, _) = super::diagnostic::line_column(self.text, first.start);
                self.error(
                    r.name.span(),
                    format!(
                        "resource name `{rname}` differs from `{other}` (line {line}) only by `-` and `_`, which drill scratch names spell alike; rename one"
                    ),
                );
                continue;
            }
            resource_spans.insert(rname.clone(), r.name.span());
            if let Some(spec) = self.resource_spec(r, &base_dir) {
                resources.push(Resource { name: rname, spec });
            }
        }

        // Every region that holds artifact points needs a vault.
        if let Some(first_artifact) = resources.iter().find(|r| r.spec.uses_vault()) {
            let mut holders = vec![(primary.clone(), b.primary_region.span())];
            for region in b
                .copy_to
                .as_ref()
                .map(|c| c.get_ref().as_slice())
                .unwrap_or(&[])
            {
                holders.push((region.get_ref().clone(), region.span()));
            }
            for (region, span) in holders {
                if let Some((_, r)) = regions.get(&region) {
                    if r.vault.is_none() {
                        self.error(
                            span,
                            format!(
                                "region `{region}` has no vault, but resource `{}` (kind {}) keeps its points in one",
                                first_artifact.name,
                                first_artifact.spec.kind()
                            ),
                        );
                    }
                }
            }
        }

        // Objects of an `s3` resource are copied inside S3: every region
        // holding its points needs an s3:// vault.
        if let Some(s3) = resources
            .iter()
            .find(|r| matches!(r.spec, ResourceSpec::S3 { .. }))
        {
            for (name, (span, r)) in &regions {
                let holds = name == &primary || copy_to.contains(name);
                let vault = r.vault.as_deref().unwrap_or("");
                if holds && !vault.is_empty() && !vault.starts_with("s3://") {
                    self.error(
                        span.clone(),
                        format!(
                            "region `{name}` keeps its points in `{vault}`, but resource `{}` is of kind s3, whose objects are copied inside S3: give the region an s3:// vault",
                            s3.name
                        ),
                    );
                }
            }
        }

        // Drill.
        let drill = self.drill(
            raw.drill.as_ref(),
            &regions,
            &primary,
            &copy_to,
            &resources,
            tz,
        );

        let aws = raw.aws.as_ref().map(|a| {
            let a = a.get_ref();
            let poll_interval = a
                .poll_interval
                .as_ref()
                .and_then(|p| self.duration("poll_interval", p));
            AwsSpec {
                endpoint_url: a.endpoint_url.as_ref().map(|v| v.get_ref().clone()),
                force_path_style: a.force_path_style.as_ref().map(|v| *v.get_ref()),
                profile: a.profile.as_ref().map(|v| v.get_ref().clone()),
                poll_interval,
            }
        });

        let notify = self.notify(raw.notify.as_ref());

        // Objectives that the schedule cannot meet by construction.
        if let (Some(jitter), Some(rpo)) = (jitter, rpo) {
            if let Some((_, max_gap)) = backup_gaps {
                let worst = max_gap.saturating_add(jitter);
                if worst >= rpo {
                    self.warning(
                        raw.rpo.span(),
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

        let has_errors = self.diagnostics.iter().any(Diagnostic::is_error);
        if has_errors {
            return None;
        }
        // Every Option below is Some when no error was recorded.
        Some(Plan {
            name,
            owner,
            rto: rto?,
            rpo: rpo?,
            backup: BackupSpec {
                timing: Timing {
                    cron: cron?,
                    timezone: tz?,
                    jitter: jitter?,
                },
                start_window: start_window?,
                completion_window: completion_window?,
                primary_region: primary,
                copy_to,
            },
            retention,
            regions: regions.into_iter().map(|(k, (_, r))| (k, r)).collect(),
            resources,
            drill: drill?,
            aws,
            notify,
            source: self.file.to_path_buf(),
        })
    }

    fn resource_spec(&mut self, r: &RawResource, base_dir: &Path) -> Option<ResourceSpec> {
        let kind = r.kind.get_ref().as_str();
        let allowed: &[&str] = match kind {
            "path" => &["path", "exclude"],
            "sqlite" => &["path"],
            "postgres" => &["url", "drill_url"],
            "s3" => &["bucket", "prefix"],
            "rds-instance" => &[
                "instance",
                "instance_class",
                "subnet_group",
                "security_groups",
            ],
            "rds-cluster" => &[
                "cluster",
                "instance_class",
                "subnet_group",
                "security_groups",
            ],
            other => {
                self.error(
                    r.kind.span(),
                    format!("unknown resource kind `{other}`; expected one of path, sqlite, postgres, s3, rds-instance, rds-cluster"),
                );
                return None;
            }
        };
        let mut ok = true;
        for (key, span) in r.present_keys() {
            if !allowed.contains(&key) {
                self.error(
                    span,
                    format!("`{key}` does not apply to a resource of kind `{kind}`"),
                );
                ok = false;
            }
        }
        let name = r.name.get_ref();
        let mut required = |key: &str, v: &Option<S<String>>| -> Option<String> {
            match v {
                Some(v) if !v.get_ref().trim().is_empty() => Some(v.get_ref().clone()),
                Some(v) => {
                    self.error(v.span(), format!("`{key}` must not be empty"));
                    None
                }
                None => {
                    self.error(
                        r.name.span(),
                        format!("resource `{name}` of kind `{kind}` needs `{key}`"),
                    );
                    None
                }
            }
        };
        let spec = match kind {
            "path" => {
                let path = required("path", &r.path);
                let mut exclude = Vec::new();
                for g in r
                    .exclude
                    .as_ref()
                    .map(|e| e.get_ref().as_slice())
                    .unwrap_or(&[])
                {
                    match globset::Glob::new(g.get_ref()) {
                        Ok(_) => exclude.push(g.get_ref().clone()),
                        Err(e) => {
                            self.error(
                                g.span(),
                                format!("invalid exclude glob `{}`: {e}", g.get_ref()),
                            );
                            ok = false;
                        }
                    }
                }
                ResourceSpec::Path {
                    path: base_dir.join(path?),
                    exclude,
                }
            }
            "sqlite" => ResourceSpec::Sqlite {
                path: base_dir.join(required("path", &r.path)?),
            },
            "postgres" => {
                let url = required("url", &r.url)?;
                for (key, value) in [("url", &r.url), ("drill_url", &r.drill_url)] {
                    if let Some(v) = value {
                        let text = v.get_ref();
                        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
                            self.error(
                                v.span(),
                                format!("`{key}` must be a postgres:// or postgresql:// URL"),
                            );
                            ok = false;
                        } else if url_has_password(text) {
                            self.error(
                                v.span(),
                                format!("`{key}` contains a password; give it through PGPASSWORD or ~/.pgpass instead, never in a plan file"),
                            );
                            ok = false;
                        }
                    }
                }
                ResourceSpec::Postgres {
                    url,
                    drill_url: r.drill_url.as_ref().map(|v| v.get_ref().clone()),
                }
            }
            "s3" => ResourceSpec::S3 {
                bucket: required("bucket", &r.bucket)?,
                prefix: r
                    .prefix
                    .as_ref()
                    .map(|p| p.get_ref().clone())
                    .unwrap_or_default(),
            },
            "rds-instance" => ResourceSpec::RdsInstance {
                instance: required("instance", &r.instance)?,
                restore: rds_restore(r),
            },
            "rds-cluster" => ResourceSpec::RdsCluster {
                cluster: required("cluster", &r.cluster)?,
                restore: rds_restore(r),
            },
            _ => return None,
        };
        ok.then_some(spec)
    }

    fn drill(
        &mut self,
        raw: Option<&S<RawDrill>>,
        regions: &BTreeMap<String, (Range<usize>, Region)>,
        primary: &str,
        copy_to: &[String],
        resources: &[Resource],
        backup_tz: Option<Tz>,
    ) -> Option<DrillSpec> {
        let default_region = copy_to
            .first()
            .cloned()
            .unwrap_or_else(|| primary.to_string());
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
        let tz = match &d.timezone {
            Some(_) => self.timezone(d.timezone.as_ref()),
            None => backup_tz,
        };
        let jitter = self.optional_duration("jitter", d.jitter.as_ref(), Duration::ZERO);
        let timing = match &d.schedule {
            Some(s) => {
                let cron = self.cron(s);
                if let (Some(cron), Some(tz), Some(jitter), Some(span)) =
                    (&cron, tz, jitter, d.jitter.as_ref().map(|j| j.span()))
                {
                    if let Some(gaps) = cron.gap_bounds(Utc::now(), tz) {
                        self.check_jitter(gaps, jitter, span);
                    }
                }
                match (cron, tz, jitter) {
                    (Some(cron), Some(timezone), Some(jitter)) => Some(Some(Timing {
                        cron,
                        timezone,
                        jitter,
                    })),
                    _ => None,
                }
            }
            None => {
                self.warning(
                    raw.span(),
                    "[drill] has no schedule: drills run only when started by hand",
                );
                Some(None)
            }
        };
        let isolate_primary = d
            .isolate_primary
            .as_ref()
            .map(|v| *v.get_ref())
            .unwrap_or(false);
        let region = match &d.region {
            Some(r) => {
                let name = r.get_ref().clone();
                if !regions.contains_key(&name) {
                    self.error(
                        r.span(),
                        format!("drill region `{name}` has no [regions.{name}] table"),
                    );
                } else if name == primary && isolate_primary {
                    self.error(
                        r.span(),
                        format!("drill region `{name}` is the primary region, but isolate_primary = true; drill from a copy_to region"),
                    );
                } else if name != primary && !copy_to.contains(&name) {
                    self.error(
                        r.span(),
                        format!("drill region `{name}` holds no points: it is neither the primary region nor in copy_to"),
                    );
                }
                name
            }
            None => default_region,
        };
        if region == primary {
            if isolate_primary {
                if d.region.is_none() {
                    self.error(
                        raw.span(),
                        "isolate_primary = true needs a drill region other than the primary: add copy_to",
                    );
                }
            } else {
                self.warning(
                    raw.span(),
                    format!("drills restore from the primary region `{primary}`: they do not prove recovery from the loss of that region; add copy_to"),
                );
            }
        }
        let cleanup = match d.cleanup.as_ref() {
            None => Some(Cleanup::Always),
            Some(c) => {
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
        };
        let point = match d.point.as_ref() {
            None => Some(PointChoice::Latest),
            Some(p) => match PointChoice::parse(p.get_ref()) {
                Some(c) => Some(c),
                None => {
                    self.error(
                        p.span(),
                        format!(
                            "`point` must be one of latest, oldest, random (got `{}`)",
                            p.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let mut checks = Vec::new();
        let mut names: HashMap<String, ()> = HashMap::new();
        for (i, c) in d
            .checks
            .as_ref()
            .map(|c| c.get_ref().as_slice())
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let c_ref = c.get_ref();
            let resource = c_ref.resource.get_ref().clone();
            match resources.iter().find(|r| r.name == resource) {
                None => {
                    // A resource that failed validation was already reported.
                    let known = self.text_mentions_resource(&resource);
                    if !known {
                        self.error(
                            c_ref.resource.span(),
                            format!("check refers to unknown resource `{resource}`"),
                        );
                    }
                }
                Some(r) if !r.spec.supports_sql() => self.error(
                    c_ref.sql.span(),
                    format!(
                        "resource `{resource}` is of kind `{}`: SQL checks need a database (sqlite, postgres, rds-instance, rds-cluster)",
                        r.spec.kind()
                    ),
                ),
                Some(_) => {}
            }
            if c_ref.sql.get_ref().trim().is_empty() {
                self.error(c_ref.sql.span(), "`sql` must not be empty");
            }
            let name = c_ref
                .name
                .as_ref()
                .map(|n| n.get_ref().clone())
                .unwrap_or_else(|| format!("{resource}-sql-{}", i + 1));
            if names.insert(name.clone(), ()).is_some() {
                let span = c_ref.name.as_ref().map(|n| n.span()).unwrap_or(c.span());
                self.error(span, format!("duplicate check name `{name}`"));
            }
            let expect = c_ref.expect.as_ref().map(|e| match e.get_ref() {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let timeout = match &c_ref.timeout {
                Some(t) => self.positive_duration("timeout", t).unwrap_or_default(),
                None => Duration::from_secs(300),
            };
            checks.push(SqlCheck {
                name,
                resource,
                sql: c_ref.sql.get_ref().clone(),
                expect,
                timeout,
            });
        }
        Some(DrillSpec {
            timing: timing?,
            region,
            isolate_primary,
            cleanup: cleanup?,
            point: point?,
            checks,
        })
    }

    /// `[[notify]]` webhooks: a URL (`url`, or `url_env` naming the
    /// environment variable that holds it) and the events it wants. A URL
    /// is never repeated in a message: it usually carries a token.
    fn notify(&mut self, raw: Option<&S<Vec<S<RawNotify>>>>) -> Vec<Webhook> {
        let mut hooks = Vec::new();
        for entry in raw.map(|r| r.get_ref().as_slice()).unwrap_or(&[]) {
            let n = entry.get_ref();
            let target = match (&n.url, &n.url_env) {
                (Some(_), Some(env)) => {
                    self.error(
                        env.span(),
                        "give the webhook's `url` or `url_env`, not both",
                    );
                    None
                }
                (None, None) => {
                    self.error(
                        entry.span(),
                        "a [[notify]] entry needs `url`, or `url_env`: the name of an environment variable holding the URL",
                    );
                    None
                }
                (Some(url), None) => match SecretUrl::parse(url.get_ref()) {
                    Ok(u) => Some(WebhookTarget::Url(u)),
                    Err(e) => {
                        self.error(url.span(), format!("webhook `url` {e}"));
                        None
                    }
                },
                (None, Some(env)) => {
                    let name = env.get_ref().trim();
                    if !is_env_name(name) {
                        self.error(
                            env.span(),
                            format!("`url_env` must name an environment variable (letters, digits and '_', not starting with a digit), got `{name}`"),
                        );
                        None
                    } else {
                        if std::env::var_os(name).is_none() {
                            self.warning(
                                env.span(),
                                format!("environment variable {name} is not set here: this webhook gets nothing where it is unset"),
                            );
                        }
                        Some(WebhookTarget::Env(name.to_string()))
                    }
                }
            };
            let events = match &n.events {
                None => NotifyEvent::ALL.to_vec(),
                Some(list) if list.get_ref().is_empty() => {
                    self.error(
                        list.span(),
                        "`events` is empty: list some (or leave it out for all of them)",
                    );
                    Vec::new()
                }
                Some(list) => {
                    let mut events = Vec::new();
                    for e in list.get_ref() {
                        match NotifyEvent::parse(e.get_ref()) {
                            Some(ev) if !events.contains(&ev) => events.push(ev),
                            Some(_) => {}
                            None => self.error(
                                e.span(),
                                format!(
                                    "unknown event `{}`; expected one of {}",
                                    e.get_ref(),
                                    NotifyEvent::ALL.map(NotifyEvent::as_str).join(", ")
                                ),
                            ),
                        }
                    }
                    events
                }
            };
            if let Some(target) = target {
                hooks.push(Webhook { target, events });
            }
        }
        hooks
    }

    /// Whether a resource of that name is written in the file (it may have
    /// been dropped for another error, already reported).
    fn text_mentions_resource(&self, name: &str) -> bool {
        self.diagnostics.iter().any(|d| d.is_error())
            && self.text.contains(&format!("name = \"{name}\""))
    }
}

fn is_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_resource_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_region_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// `file://PATH` (absolute, or relative to the plan's folder) or `s3://BUCKET[/PREFIX]`.
fn rds_restore(r: &RawResource) -> RdsRestore {
    RdsRestore {
        instance_class: r.instance_class.as_ref().map(|v| v.get_ref().clone()),
        subnet_group: r.subnet_group.as_ref().map(|v| v.get_ref().clone()),
        security_groups: r
            .security_groups
            .as_ref()
            .map(|v| v.get_ref().iter().map(|g| g.get_ref().clone()).collect())
            .unwrap_or_default(),
    }
}

fn check_vault_url(url: &str) -> Result<(), String> {
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(format!("vault `{url}` names no folder"));
        }
        Ok(())
    } else if let Some(rest) = url.strip_prefix("s3://") {
        let bucket = rest.split('/').next().unwrap_or("");
        if bucket.is_empty() {
            return Err(format!("vault `{url}` names no bucket"));
        }
        Ok(())
    } else {
        Err(format!(
            "vault `{url}` must be a file://PATH or s3://BUCKET/PREFIX URL"
        ))
    }
}

/// Relative `file://` vaults are resolved against the plan's folder (and
/// cleaned of `..`), so every command records the same locations.
fn resolve_vault(base_dir: &Path, url: &str) -> String {
    match url.strip_prefix("file://") {
        Some(path) if !Path::new(path).is_absolute() => {
            normalize_vault(&format!("file://{}", base_dir.join(path).display()))
        }
        _ => url.to_string(),
    }
}

/// A vault URL with its path cleaned lexically, to compare vaults.
fn normalize_vault(url: &str) -> String {
    match url.strip_prefix("file://") {
        Some(path) => {
            let mut out = PathBuf::new();
            for c in Path::new(path).components() {
                match c {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => out.push(other),
                }
            }
            format!("file://{}", out.display())
        }
        None => url.trim_end_matches('/').to_string(),
    }
}

fn url_has_password(url: &str) -> bool {
    // postgres://user:password@host/db, or password=... in a key/value string.
    if let Some(rest) = url.split("://").nth(1) {
        if let Some(userinfo) = rest.split('@').next().filter(|_| rest.contains('@')) {
            if userinfo.contains(':') {
                return true;
            }
        }
    }
    url.to_ascii_lowercase().contains("password=")
}

/// Removes the key whose span is `span` anywhere in the document, so the
/// next structure round can report the next problem.
fn remove_key_at(table: &mut DeTable<'_>, span: &Range<usize>) -> bool {
    let mut found = None;
    for (k, _) in table.iter() {
        if k.span() == *span {
            found = Some(k.get_ref().clone());
            break;
        }
    }
    if let Some(k) = found {
        table.remove(k.as_ref());
        return true;
    }
    for (_, v) in table.iter_mut() {
        if remove_in_value(v, span) {
            return true;
        }
    }
    false
}

fn remove_in_value(value: &mut Spanned<DeValue<'_>>, span: &Range<usize>) -> bool {
    match value.get_mut() {
        DeValue::Table(t) => remove_key_at(t, span),
        DeValue::Array(a) => a.iter_mut().any(|v| remove_in_value(v, span)),
        _ => false,
    }
}
