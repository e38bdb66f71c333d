//! A reader that goes away (`lifeboat … | head -1`) never makes a command
//! panic or stop short: its work is recorded, its exit code is its own.

use std::process::{Output, Stdio};

use crate::common::*;

/// Runs `args` with a stdout whose reader is gone before anything is
/// written.
fn with_closed_stdout(env: &Env, args: &[&str]) -> Output {
    let mut child = env
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lifeboat");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for lifeboat")
}

#[test]
fn commands_whose_reader_has_gone_finish_their_work_without_panicking() {
    let env = Env::new();
    env.seed(20);
    env.write_plan("shop.toml", &env.local_plan(""));
    for args in [
        &["backup", "run", "shop"][..],
        &["drill", "run", "shop", "--json"],
        &["points", "list", "--json"],
        &["plan", "show", "shop", "--next", "1000"],
        &["status"],
        &["report"],
    ] {
        let out = with_closed_stdout(&env, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("internal error"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // The drill whose output nobody read is recorded, with its evidence.
    let (drills, _) = env.json(&["drills", "list", "--plan", "shop", "--json"]);
    assert_eq!(drills[0]["passed"], true, "{drills}");
    let (report, _) = env.json(&["report", "--format", "json"]);
    assert_eq!(report["plans"][0]["evidence"]["intact"], true, "{report}");
}

#[test]
fn counts_and_durations_out_of_range_are_bad_input() {
    let env = Env::new();
    env.seed(1);
    env.write_plan("shop.toml", &env.local_plan(""));
    for (args, says) in [
        (
            &["plan", "show", "shop", "--next", "99999999999"][..],
            "--next",
        ),
        (&["plan", "show", "shop", "--next", "0"], "--next"),
        (
            &["plan", "show", "--all", "--collision-window", "1000y"],
            "30 days",
        ),
        (&["daemon", "--max-jobs", "0"], "--max-jobs"),
        (&["daemon", "--grace", "100000000y"], "30 days"),
    ] {
        let out = env.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
