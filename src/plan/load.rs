//! Reading plan files and folders of them: the checks on the file itself
//! (size, encoding), then [`super::validate`] on its text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{validate, Diagnostic, Plan, Severity};

/// Plan files are a few kilobytes; anything far larger is a mistake (or hostile).
pub const MAX_PLAN_BYTES: u64 = 1024 * 1024;

/// A plan file that could not be read or is invalid: every error found,
/// plus the warnings.
#[derive(Debug, Clone)]
pub struct PlanFileError {
    /// At least one error; sorted by position (then errors first) when
    /// they come from validation.
    pub diagnostics: Vec<Diagnostic>,
}

/// The plans of a folder that loaded, and every diagnostic of every file.
#[derive(Debug, Default)]
pub struct LoadedPlans {
    /// The valid plans, in file-name order; names unique.
    pub plans: Vec<Plan>,
    /// The warnings of the plans that loaded, and every error and warning
    /// of the files that did not, file by file.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadedPlans {
    /// Whether some file was rejected (the others may still have loaded).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The loaded plan named `name` (its `name` key, not its file name).
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
    match validate::validate(path, text) {
        (Some(plan), warnings) => Ok((plan, warnings)),
        (None, mut diagnostics) => {
            diagnostics.sort_by_key(|d| (d.line, d.column, d.severity, d.message.clone()));
            Err(PlanFileError { diagnostics })
        }
    }
}
