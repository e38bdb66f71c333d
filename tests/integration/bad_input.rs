//! Bad input anywhere in the CLI: exit 2, never a panic; a one-line error,
//! or clap's whole usage message for what clap rejects.

use rstest::rstest;

use crate::common::*;

#[rstest]
#[case(&["backup", "run", "nosuch"])]
#[case(&["drill", "run", "nosuch"])]
#[case(&["drill", "run", "shop", "--point", "banana"])]
#[case(&["drill", "run", "shop", "--point", "99999"])]
#[case(&["drill", "run", "shop", "--region", "mars"])]
#[case(&["plan", "show", "nosuch"])]
#[case(&["report", "--from", "yesterday", "--to", "today"])]
#[case(&["report", "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"])]
#[case(&["plan", "validate", "/nonexistent/plan.toml"])]
#[case(&["prune", "nosuch"])]
fn bad_input_is_one_line_and_exit_2(#[case] args: &[&str]) {
    let env = Env::new();
    env.seed(5);
    env.write_plan("shop.toml", &env.local_plan(""));
    let out = env.run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?} printed more than one line:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// What clap rejects: its whole message (what is wrong, the usage or the
/// values allowed where it gives them, a tip), exit 2.
#[rstest]
#[case(&["frobnicate"])]
#[case(&["status", "--colour"])]
#[case(&["points", "list", "--plan"])]
#[case(&["report", "--since", "a while"])]
#[case(&["report", "--format", "pdf"])]
fn usage_errors_show_clap_s_message_and_exit_2(#[case] args: &[&str]) {
    let env = Env::new();
    env.seed(5);
    env.write_plan("shop.toml", &env.local_plan(""));
    let out = env.run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    // Not cut to its first line: clap's pointer to --help ends it.
    assert!(
        err.lines().count() > 1 && err.contains("For more information, try '--help'"),
        "{args:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_missing_plans_folder_is_bad_input() {
    let env = Env::new();
    let out = env
        .command(&["status"])
        .arg("--plans")
        .arg(env.path("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist"));
}

#[test]
fn help_and_version_exit_0() {
    let env = Env::new();
    assert_eq!(env.run(&["--help"]).status.code(), Some(0));
    assert_eq!(env.run(&["--version"]).status.code(), Some(0));
}
