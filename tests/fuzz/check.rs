//! What must hold for any plan input: validation ends (in time, in
//! bounded memory), without a panic, with either a plan or errors that each
//! say `FILE:LINE:COL: message` at a real position of the file; a plan
//! that loads can be scheduled (`plan show --next 1000`) as well.

use std::path::{Path, PathBuf};

use lifeboat::plan::{Diagnostic, Plan, PlanFileError, Severity};

use crate::bounds::{bounded, shown};

/// The most runs `plan show --next` asks for.
const MAX_NEXT: usize = 1000;

/// The most a plan file may hold (`plan::load`'s limit): a longer text
/// is checked as a file, which is refused unread.
const MAX_PLAN_BYTES: usize = 1 << 20;

/// Validates `text` as the plan file `p.toml` (no file involved).
pub fn plan_text(text: String) {
    if text.len() > MAX_PLAN_BYTES {
        return plan_file(text.into_bytes());
    }
    let what = format!("plan text {}", shown(text.as_bytes()));
    let input = text.clone();
    let problem = bounded(&what, move || {
        let path = Path::new("/fuzz/p.toml");
        let result = lifeboat::plan::parse_plan(path, &input);
        outcome(path, &input, result)
    });
    if let Err(problem) = problem {
        panic!("{what}: {problem}");
    }
}

/// Writes `bytes` to a plan file and loads it as the CLI does.
pub fn plan_file(bytes: Vec<u8>) {
    let what = format!("plan file {}", shown(&bytes));
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("fuzz.toml");
    std::fs::write(&path, &bytes).unwrap();
    let problem = bounded(&what, move || {
        let result = lifeboat::plan::load_file(&path);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        outcome(&path, &text, result)
    });
    if let Err(problem) = problem {
        panic!("{what}: {problem}");
    }
}

/// Checks a validation outcome; `Err` says what is wrong with it.
fn outcome(
    path: &Path,
    text: &str,
    result: Result<(Plan, Vec<Diagnostic>), PlanFileError>,
) -> Result<(), String> {
    match result {
        Ok((plan, warnings)) => {
            for w in &warnings {
                if w.severity != Severity::Warning {
                    return Err(format!("a loaded plan came with an error: {w}"));
                }
                positioned(path, text, w)?;
            }
            schedulable(&plan)
        }
        Err(e) => {
            if !e.diagnostics.iter().any(Diagnostic::is_error) {
                return Err(format!("rejected without an error: {:?}", e.diagnostics));
            }
            for d in &e.diagnostics {
                positioned(path, text, d)?;
            }
            Ok(())
        }
    }
}

/// `FILE:LINE:COL: message`, the position inside the file.
fn positioned(path: &Path, text: &str, d: &Diagnostic) -> Result<(), String> {
    let shown = d.to_string();
    let prefix = format!("{}:{}:{}: ", path.display(), d.line, d.column);
    let lines: Vec<&str> = text.split('\n').collect();
    let bad = d.file != path
        || !shown.starts_with(&prefix)
        || d.message.trim().is_empty()
        || d.line == 0
        || d.column == 0
        || d.line > lines.len()
        || d.column > lines[d.line - 1].chars().count() + 1;
    if bad {
        return Err(format!(
            "diagnostic without a position in the file: {shown}"
        ));
    }
    Ok(())
}

/// Every timing of a loaded plan gives its next runs, at most as many as
/// asked, in order, each after now.
fn schedulable(plan: &Plan) -> Result<(), String> {
    let now = chrono::Utc::now();
    let mut timings = vec![("backup", &plan.backup.timing)];
    timings.extend(plan.drill.timing.as_ref().map(|t| ("drill", t)));
    timings.extend(plan.verify.as_ref().map(|v| ("verify", &v.timing)));
    for (kind, timing) in timings {
        let runs = timing.upcoming(&plan.name, kind, now, MAX_NEXT);
        if runs.len() > MAX_NEXT
            || runs.iter().any(|r| r.start <= now || r.start < r.slot)
            || runs.windows(2).any(|w| w[0].slot >= w[1].slot)
        {
            return Err(format!("{kind} runs out of order or bounds: {runs:?}"));
        }
    }
    Ok(())
}
