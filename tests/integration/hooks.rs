//! `[backup] before` and `after`: programs run around a backup, as
//! resticprofile and Velero run theirs. `before` fails the run (no point
//! taken) and `after` always runs once the run started.

use serde_json::Value;

use crate::common::*;

/// The shop plan with `hooks` (TOML lines) in its `[backup]` table.
fn with_hooks(env: &Env, hooks: &str) {
    let text = env
        .local_plan("")
        .replacen("[backup]\n", &format!("[backup]\n{hooks}\n"), 1);
    env.write_plan("shop.toml", &text);
}

fn backup(env: &Env) -> (Value, i32) {
    env.json(&["backup", "run", "shop", "--json"])
}

fn hook<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hook"] == name)
        .unwrap_or_else(|| panic!("no {name} hook in {run:#}"))
}

#[test]
fn before_runs_first_and_after_is_told_how_the_run_went() {
    let env = Env::new();
    env.seed(10);
    let fresh = env.path("data/files/from-before.txt");
    let told = env.path("after-was-told");
    with_hooks(
        &env,
        &format!(
            r#"before = ["sh", "-c", "echo quiesced > '{}'; echo froze $LIFEBOAT_PLAN"]
after = ["sh", "-c", "echo $LIFEBOAT_HOOK $LIFEBOAT_BACKUP_STATUS > '{}'"]"#,
            fresh.display(),
            told.display()
        ),
    );
    let (run, code) = backup(&env);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(hook(&run, "before")["passed"], true);
    assert!(
        hook(&run, "before")["detail"]
            .as_str()
            .unwrap()
            .contains("froze shop"),
        "{run:#}"
    );
    assert_eq!(hook(&run, "after")["passed"], true);
    assert_eq!(
        std::fs::read_to_string(&told).unwrap().trim(),
        "after succeeded"
    );
    // What `before` wrote is in the point: it ran before the data was read.
    let to = env.path("restored");
    let out = env.run(&[
        "restore",
        "shop",
        "--resource",
        "files",
        "--to",
        to.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(to.join("from-before.txt")).unwrap(),
        "quiesced\n"
    );
}

#[test]
fn a_failing_before_takes_no_point_and_after_still_runs() {
    let env = Env::new();
    env.seed(10);
    let told = env.path("after-was-told");
    with_hooks(
        &env,
        &format!(
            r#"before = ["sh", "-c", "echo cannot quiesce the app >&2; exit 3"]
after = ["sh", "-c", "echo $LIFEBOAT_BACKUP_STATUS > '{}'"]"#,
            told.display()
        ),
    );
    let (run, code) = backup(&env);
    assert_eq!(code, 1, "{run:#}");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["points"].as_array().unwrap().len(), 0, "{run:#}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("before hook failed: exit 3: cannot quiesce the app"),
        "{error}"
    );
    assert_eq!(std::fs::read_to_string(&told).unwrap().trim(), "failed");
    // Recorded so: the report and status see a failed run.
    let (points, _) = env.json(&["points", "list", "--plan", "shop", "--json"]);
    assert_eq!(points.as_array().unwrap().len(), 0);
}

#[test]
fn a_failing_after_makes_the_run_partial_but_keeps_its_points() {
    let env = Env::new();
    env.seed(10);
    with_hooks(&env, r#"after = ["sh", "-c", "echo thaw failed; exit 1"]"#);
    let (run, code) = backup(&env);
    assert_eq!(code, 1, "{run:#}");
    assert_eq!(run["status"], "partial");
    assert!(run["points"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["status"] == "complete"));
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("after hook failed: exit 1: thaw failed"),
        "{run:#}"
    );
}

#[test]
fn a_hook_that_hangs_is_killed_at_its_timeout() {
    let env = Env::new();
    env.seed(10);
    with_hooks(&env, "before = [\"sleep\", \"30\"]\nhook_timeout = \"1s\"");
    let started = std::time::Instant::now();
    let (run, code) = backup(&env);
    assert_eq!(code, 1, "{run:#}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1s"),
        "{run:#}"
    );
}

#[test]
fn a_hook_without_a_program_is_rejected_with_its_place() {
    let env = Env::new();
    env.seed(1);
    with_hooks(&env, "before = []");
    let out = env.run(&["plan", "validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("shop.toml:7:10:") && err.contains("`before` needs a program"),
        "{err}"
    );
}
