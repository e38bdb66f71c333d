//! The command line's surface: usage errors, how a plan is named, unknown
//! plans, `status --check`, drill exit codes, `points list` paging, and
//! `--json` on the commands that report.

use serde_json::Value;

use crate::common::*;

/// An env with plan `shop` and its sample data.
fn shop() -> Env {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    env
}

#[test]
fn a_usage_error_shows_clap_s_whole_message_and_exits_2() {
    let env = shop();
    let out = env.run(&["backup", "run"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the following required arguments were not provided")
            && err.contains("<PLAN>")
            && err.contains("Usage: lifeboat backup run")
            && err.contains("--help"),
        "{err}"
    );
    // A mistyped subcommand keeps clap's suggestion.
    let out = env.run(&["bakup", "run", "shop"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unrecognized subcommand 'bakup'") && err.contains("'backup'"),
        "{err}"
    );
    assert!(err.contains("Usage:"), "{err}");
    let out = env.run(&["status", "--chek"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--check"), "the tip names the option: {err}");
}

#[test]
fn unknown_plans_are_bad_input_everywhere() {
    let env = shop();
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    for args in [
        &["points", "list", "nosuch"][..],
        &["points", "list", "--plan", "nosuch"],
        &["drills", "list", "nosuch"],
        &["drills", "list", "--plan", "nosuch"],
        &["status", "nosuch"],
        &["status", "--plan", "nosuch", "--check"],
        &["report", "--plan", "nosuch"],
        &["report", "nosuch"],
        &["prune", "--plan", "nosuch"],
        &["verify", "nosuch"],
        &["backup", "run", "--plan", "nosuch"],
        &["drill", "run", "--plan", "nosuch"],
        &["plan", "show", "--plan", "nosuch"],
        &["restores", "list", "nosuch"],
        &["restores", "list", "--plan", "nosuch"],
        &["restore", "--plan", "nosuch", "--dry-run"],
        &["catalog", "rebuild", "--from", "dr", "nosuch"],
    ] {
        let out = env.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("unknown plan `nosuch`") && err.contains("shop"),
            "{args:?}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
    }
}

#[test]
fn a_plan_whose_file_is_gone_can_still_be_listed() {
    let env = shop();
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    std::fs::remove_file(env.plans().join("shop.toml")).unwrap();
    let (points, code) = env.json(&["points", "list", "shop", "--json"]);
    assert_eq!(code, 0, "{points}");
    assert_eq!(points.as_array().unwrap().len(), 4);
    let (drills, code) = env.json(&["drills", "list", "--plan", "shop", "--json"]);
    assert_eq!(code, 0, "{drills}");
    assert!(drills.as_array().unwrap().is_empty());
}

#[test]
fn a_plan_is_named_positionally_or_with_plan() {
    let env = shop();
    let out = env.run(&["backup", "run", "--plan", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (drill, code) = env.json(&["drill", "run", "--plan", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
    let (files, db) = (env.path("to/files"), env.path("to/app.db"));
    let (restore, code) = env.json(&[
        "restore",
        "--plan",
        "shop",
        "--dry-run",
        "--to",
        &format!("files={}", files.display()),
        "--to",
        &format!("db={}", db.display()),
        "--json",
    ]);
    assert_eq!(code, 0, "{restore}");
    let (a, _) = env.json(&["points", "list", "shop", "--json"]);
    let (b, _) = env.json(&["points", "list", "--plan", "shop", "--json"]);
    assert_eq!(a, b);
    assert_eq!(a.as_array().unwrap().len(), 4);
    let (a, _) = env.json(&["drills", "list", "shop", "--json"]);
    let (b, _) = env.json(&["drills", "list", "--plan", "shop", "--json"]);
    assert_eq!(a, b);
    assert_eq!(a.as_array().unwrap().len(), 1);
    let (a, _) = env.json(&["status", "shop", "--json"]);
    let (b, _) = env.json(&["status", "--plan", "shop", "--json"]);
    assert_eq!(a[0]["plan"], "shop");
    assert_eq!(a[0]["plan"], b[0]["plan"]);
    for args in [
        &["report", "shop", "--format", "json"][..],
        &["report", "--plan", "shop", "--format", "json"],
    ] {
        let (r, code) = env.json(args);
        assert_eq!(code, 0, "{args:?}: {r}");
        assert_eq!(r["plans"][0]["name"], "shop", "{args:?}");
        assert_eq!(r["plans"].as_array().map(Vec::len), Some(1), "{args:?}");
    }
    let (p, code) = env.json(&["plan", "show", "--plan", "shop", "--json"]);
    assert_eq!(code, 0, "{p}");
    assert!(p["backup"].as_array().is_some_and(|b| !b.is_empty()));
    // Both spellings at once is a usage error.
    let out = env.run(&["points", "list", "shop", "--plan", "shop"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn status_check_exits_1_on_a_breach_and_0_when_compliant() {
    let env = shop();
    // A second plan that is never backed up: no point in either region.
    env.write_plan(
        "empty.toml",
        &local_plan("empty", &env.path("data"), &env.path("vaults-empty"), ""),
    );
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    // Plan `empty` has no point: a breach.
    let out = env.run(&["status", "--check"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("BREACH: 1 of 2 plan(s)")
            && text.contains("empty: region primary: no complete point of files, db"),
        "{text}"
    );
    // Without --check, status only shows.
    assert_eq!(env.run(&["status"]).status.code(), Some(0));
    // Plan `shop` alone is within its objectives.
    let out = env.run(&["status", "shop", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("OK: 1 plan(s)"), "{}", stdout(&out));
    let (json, code) = env.json(&["status", "--check", "--json"]);
    assert_eq!(code, 1, "{json}");
    let problems = |plan: &str| -> Vec<Value> {
        json.as_array()
            .unwrap()
            .iter()
            .find(|p| p["plan"] == plan)
            .unwrap()["problems"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(problems("shop").is_empty(), "{json}");
    assert_eq!(problems("empty").len(), 2, "{json}");
    // A failed last drill is a breach too.
    std::fs::remove_dir_all(env.path("vaults/dr")).unwrap();
    let out = env.run(&["drill", "run", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = env.run(&["status", "--plan", "shop", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("shop: last drill #1 failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_drill_that_misses_an_objective_exits_1_unless_asked_not_to() {
    let env = Env::new();
    env.seed(10);
    // No restore is done in a millisecond: the RTO is always missed.
    let plan = env.local_plan("").replace("rto = \"10m\"", "rto = \"1ms\"");
    env.write_plan("shop.toml", &plan);
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 1, "{drill}");
    assert_eq!(drill["passed"], true, "{drill}");
    assert_eq!(drill["met_rto"], false);
    assert_eq!(drill["met_rpo"], true);
    assert_eq!(drill["met_objectives"], false);
    assert_eq!(drill["rto_within_objective"], false);
    assert_eq!(drill["rpo_within_objective"], true);
    let out = env.run(&["drill", "run", "shop"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PASSED")
            && text.contains("(objective 1ms, MISSED)")
            && text.contains("(objective 1h, met)"),
        "{text}"
    );
    let out = env.run(&["drill", "run", "shop", "--no-fail-on-objective"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn points_list_limit_and_newest_first() {
    let env = shop();
    for _ in 0..3 {
        assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    }
    let ids = |args: &[&str]| -> Vec<i64> {
        let mut all = vec!["points", "list", "shop", "--region", "primary", "--json"];
        all.extend_from_slice(args);
        let (v, code) = env.json(&all);
        assert_eq!(code, 0, "{v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let oldest_first = ids(&[]);
    assert_eq!(oldest_first.len(), 6);
    let mut sorted = oldest_first.clone();
    sorted.sort();
    assert_eq!(oldest_first, sorted);
    let newest: Vec<i64> = oldest_first.iter().rev().copied().collect();
    assert_eq!(ids(&["--newest-first"]), newest);
    assert_eq!(ids(&["--newest-first", "--limit", "2"]), newest[..2]);
    assert_eq!(ids(&["--limit", "2"]), oldest_first[4..]);
    assert_eq!(ids(&["--limit", "100"]), oldest_first);
    let out = env.run(&["points", "list", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&env.run(&["points", "list", "--limit", "1"]));
    assert_eq!(text.lines().count(), 2, "a header and one point: {text}");
}

#[test]
fn prune_and_plan_validate_speak_json() {
    let env = shop();
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    let (pruned, code) = env.json(&["prune", "shop", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{pruned}");
    assert_eq!(pruned["dry_run"], true);
    assert_eq!(pruned["plans"][0]["plan"], "shop");
    assert!(pruned["plans"][0]["points"].as_array().is_some());
    assert_eq!(pruned["failures"], 0);

    env.write_plan("bad.toml", "name = \"bad\"\nrpo = \"soon\"\n");
    let (checked, code) = env.json(&["plan", "validate", "--json"]);
    assert_eq!(code, 2, "{checked}");
    assert_eq!(checked["invalid"], 1);
    let files = checked["files"].as_array().unwrap();
    let bad = files.iter().find(|f| f["valid"] == false).unwrap();
    assert!(bad["file"].as_str().unwrap().ends_with("bad.toml"), "{bad}");
    let diagnostic = &bad["diagnostics"][0];
    assert_eq!(diagnostic["severity"], "error", "{bad}");
    assert!(diagnostic["line"].as_u64().is_some(), "{bad}");
    let good = files.iter().find(|f| f["valid"] == true).unwrap();
    assert_eq!(good["plan"], "shop");
}

#[test]
fn daemon_help_puts_global_options_apart() {
    let env = Env::new();
    let out = env.run(&["daemon", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    let (own, global) = help
        .split_once("Global options:")
        .unwrap_or_else(|| panic!("no Global options heading:\n{help}"));
    assert!(
        own.contains("--listen") && own.contains("LIFEBOAT_LISTEN"),
        "{help}"
    );
    assert!(!own.contains("--catalog"), "{help}");
    assert!(
        global.contains("--catalog") && global.contains("LIFEBOAT_LOG_FORMAT"),
        "{help}"
    );
    assert!(global.contains("Examples:"), "{help}");
}

#[test]
fn demo_runs_from_a_folder_without_plans() {
    let env = Env::new();
    // The plans folder holds no demo plan: demo writes its own into the
    // work folder, with its data and vaults beside it.
    let out = env.run(&["demo", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("wrote the embedded one"), "{text}");
    assert!(
        env.path("work/demo-plans/demo.toml").is_file()
            && env.path("work/demo/vaults/dr").is_dir()
            && env.path("work/demo/data/app.db").is_file(),
        "{text}"
    );
    assert!(text.contains("PASSED"), "{text}");
    // Run again, it uses the plan it wrote (and says nothing about it).
    let again = env.run(&["demo", "--once"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(!stdout(&again).contains("wrote the embedded one"));
}

#[test]
fn init_writes_a_valid_plan_and_never_replaces_one() {
    let env = Env::new();
    for (name, kind) in [
        ("files", "path"),
        ("orders", "postgres"),
        ("db", "rds-cluster"),
    ] {
        let out = env.run(&["init", name, "--kind", kind]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(env.plans().join(format!("{name}.toml")).is_file());
    }
    let out = env.run(&["plan", "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = env.run(&["init", "files", "--kind", "sqlite"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    let printed = env.run(&["init", "uploads", "--kind", "s3", "--stdout"]);
    assert!(stdout(&printed).contains("kind = \"s3\""));
    assert!(!env.plans().join("uploads.toml").exists());
}

#[test]
fn completions_and_the_man_page_come_from_the_cli_itself() {
    let env = Env::new();
    let bash = stdout(&env.run(&["completions", "bash"]));
    assert!(
        bash.contains("_lifeboat") && bash.contains("restore"),
        "{bash}"
    );
    let zsh = stdout(&env.run(&["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef lifeboat"), "{zsh}");
    let man = stdout(&env.run(&["man"]));
    assert!(
        man.contains(".TH lifeboat") && man.contains("restore"),
        "{man}"
    );
}
