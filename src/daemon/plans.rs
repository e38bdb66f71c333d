//! The daemon's plans: reloaded from the folder on SIGHUP or when a file
//! changes; a file whose new version is invalid keeps its last good plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::plan::{load_file, Diagnostic, Plan};

/// The plans loaded, by the file each came from.
#[derive(Debug, Default)]
pub struct PlanSet {
    by_file: BTreeMap<PathBuf, Plan>,
}

/// What a reload found.
#[derive(Debug, Default)]
pub struct Reload {
    /// Errors of files that were kept at their last good version (or skipped).
    pub errors: Vec<Diagnostic>,
    /// Names of plans from files not loaded before.
    pub added: Vec<String>,
    /// Names of plans whose file now parses to a different plan (by the
    /// plan's new name, should the edit rename it).
    pub changed: Vec<String>,
    /// Names of plans no longer loaded: their file is gone, or its plan's
    /// name is now taken by a file earlier in name order.
    pub removed: Vec<String>,
}

impl PlanSet {
    /// Every plan, in file order.
    pub fn plans(&self) -> impl Iterator<Item = &Plan> {
        self.by_file.values()
    }

    /// How many plans are loaded.
    pub fn len(&self) -> usize {
        self.by_file.len()
    }

    /// True when no plan is loaded.
    pub fn is_empty(&self) -> bool {
        self.by_file.is_empty()
    }

    /// The plan named `name`.
    pub fn get(&self, name: &str) -> Option<&Plan> {
        self.by_file.values().find(|p| p.name == name)
    }

    /// Re-reads every `*.toml` of `dir`.
    pub fn reload(&mut self, dir: &Path) -> std::io::Result<Reload> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        files.sort();
        let mut next: BTreeMap<PathBuf, Plan> = BTreeMap::new();
        let mut report = Reload::default();
        for file in files {
            match load_file(&file) {
                Ok((plan, _warnings)) => {
                    let taken = next.values().any(|p| p.name == plan.name);
                    if taken {
                        report.errors.push(Diagnostic {
                            file: file.clone(),
                            line: 1,
                            column: 1,
                            severity: crate::plan::Severity::Error,
                            message: format!(
                                "plan name `{}` is already used by another file; ignored",
                                plan.name
                            ),
                        });
                        continue;
                    }
                    match self.by_file.get(&file) {
                        None => report.added.push(plan.name.clone()),
                        Some(old) if !same_plan(old, &plan) => {
                            report.changed.push(plan.name.clone())
                        }
                        _ => {}
                    }
                    next.insert(file, plan);
                }
                Err(e) => {
                    report
                        .errors
                        .extend(e.diagnostics.into_iter().filter(|d| d.is_error()));
                    // The last good version keeps running.
                    if let Some(old) = self.by_file.get(&file) {
                        next.insert(file, old.clone());
                    }
                }
            }
        }
        for (file, plan) in &self.by_file {
            if !next.contains_key(file) {
                report.removed.push(plan.name.clone());
            }
        }
        self.by_file = next;
        Ok(report)
    }
}

/// Plans are compared by their file's text through the parsed model's
/// debug form: cheap, and any change of meaning shows.
fn same_plan(a: &Plan, b: &Plan) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// A fingerprint of the folder's plan files (names, sizes, times), to
/// notice edits without a platform file-watch API.
pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some((e.path(), m.len(), m.modified().ok()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
