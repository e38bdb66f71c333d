//! Lines about what crashed processes left behind (`lifeboat::leftovers`),
//! shared by `prune` (which removes them) and `verify` (which lists them).

use lifeboat::leftovers::{Leftover, LeftoverKind, Outcome};
use lifeboat::time::rfc3339;

/// What a leftover is and where, as one phrase.
pub fn describe(l: &Leftover) -> String {
    let region = l
        .region
        .as_deref()
        .map(|r| format!(" in {r}"))
        .unwrap_or_default();
    let written = l
        .modified
        .map(|m| format!(", written {}", rfc3339(m)))
        .unwrap_or_default();
    format!(
        "{} {}{region} ({} object(s), {}{written})",
        l.kind.as_str(),
        l.location,
        l.objects,
        lifeboat::units::size(l.bytes),
    )
}

/// Why a leftover goes, or why it stays.
pub fn why(l: &Leftover) -> &'static str {
    match l.kind {
        LeftoverKind::PartialUpload => "an upload that never finished",
        LeftoverKind::SnapshotFolder => "a SQLite snapshot of a backup that is gone",
        LeftoverKind::Unowned => "no usable point owns it (its backup failed or it was deleted)",
        LeftoverKind::Unrecorded => {
            "a whole point the catalog has no row for: kept (a catalog made again over this vault?)"
        }
    }
}

/// Prints what `prune` did with each leftover (on stdout only when `text`:
/// `--json` prints its own); returns how many failed.
pub fn print_outcomes(done: &[(Leftover, Outcome)], text: bool) -> usize {
    let mut failures = 0;
    for (l, outcome) in done {
        if let Outcome::Failed(e) = outcome {
            eprintln!("error: {e}; it will be retried by the next prune");
            failures += 1;
        }
        if !text {
            continue;
        }
        let what = describe(l);
        match outcome {
            Outcome::Removed => outln!("removed {what}: {}", why(l)),
            Outcome::WouldRemove => outln!("would remove {what}: {}", why(l)),
            Outcome::Kept => match l.locked_until {
                Some(until) if l.kind != LeftoverKind::Unrecorded => outln!(
                    "kept {what}: object lock until {}; to remove then: {}",
                    rfc3339(until),
                    why(l)
                ),
                _ => outln!("kept {what}: {}", why(l)),
            },
            Outcome::Failed(_) => outln!("FAILED to remove {what}: {}", why(l)),
        }
    }
    failures
}

/// Prints the places that could not be looked at.
pub fn print_problems(problems: &[String]) {
    for p in problems {
        eprintln!("warning: cannot look for leftovers: {p}");
    }
}
