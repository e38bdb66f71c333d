//! Fuzzing the command line: argument vectors built from clap's own model
//! of [`Cli`] (every subcommand, flag and allowed value, so a new flag is
//! fuzzed without being listed here) with hostile values, parsed with
//! `try_parse_from`; the cheap commands that parse (`plan validate`,
//! `plan show`) then run their validation and scheduling, on temporary
//! plan files only. Each case runs under the time and memory bounds of
//! `tests/fuzz/bounds.rs`: no panic, no hang, no unbounded allocation, and
//! every count and duration that parsed within its bound.
//!
//! The corpus `tests/fuzz/corpus/cli/*.json` (one JSON array of arguments
//! per file) is replayed on every run; `PROPTEST_CASES=20000 cargo test
//! --bin lifeboat fuzz` runs longer (docs/fuzzing.md).

#[path = "../../tests/fuzz/bounds.rs"]
mod bounds;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use proptest::prelude::*;

use super::plan::PlanCommand;
use super::{Cli, Command};
use bounds::bounded;

/// One subcommand that runs (`plan show`), with the arguments it takes
/// (its own and the global ones).
#[derive(Debug)]
struct Leaf {
    path: Vec<String>,
    args: Vec<ArgModel>,
}

#[derive(Debug)]
struct ArgModel {
    long: Option<String>,
    short: Option<char>,
    positional: bool,
    takes_value: bool,
    possible: Vec<String>,
}

impl ArgModel {
    fn of(arg: &clap::Arg) -> ArgModel {
        ArgModel {
            long: arg.get_long().map(String::from),
            short: arg.get_short(),
            positional: arg.is_positional(),
            takes_value: arg.get_action().takes_values(),
            possible: arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect(),
        }
    }
}

/// Every leaf subcommand of [`Cli`].
static MODEL: LazyLock<Vec<Leaf>> = LazyLock::new(|| {
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, global: &[ArgModel], out: &mut Vec<Leaf>) {
        if cmd.has_subcommands() {
            for sub in cmd.get_subcommands() {
                path.push(sub.get_name().to_string());
                walk(sub, path, global, out);
                path.pop();
            }
            return;
        }
        let mut args: Vec<ArgModel> = cmd
            .get_arguments()
            .filter(|a| !a.is_global_set())
            .map(ArgModel::of)
            .collect();
        args.extend(global.iter().map(|a| ArgModel {
            long: a.long.clone(),
            short: a.short,
            positional: a.positional,
            takes_value: a.takes_value,
            possible: a.possible.clone(),
        }));
        out.push(Leaf {
            path: path.clone(),
            args,
        });
    }
    let mut root = Cli::command();
    root.build();
    let global: Vec<ArgModel> = root.get_arguments().map(ArgModel::of).collect();
    let mut out = Vec::new();
    walk(&root, &mut Vec::new(), &global, &mut out);
    assert!(
        out.len() >= 15,
        "the command model lost its commands: {out:?}"
    );
    out
});

/// Temporary plans for the commands that read some: `@PLAN` is a valid
/// plan file, `@BAD` an invalid one, `@DIR` a folder of valid plans,
/// `@CROWD` a folder of plans all running every minute on one region,
/// `@EMPTY` an empty folder.
struct Fixture {
    _dir: tempfile::TempDir,
    plan: PathBuf,
    bad: PathBuf,
    plans: PathBuf,
    crowd: PathBuf,
    empty: PathBuf,
}

/// How many plans `@CROWD` holds.
const CROWD: usize = 12;

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let plans = dir.path().join("plans");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&plans).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(root.join("plans/demo.toml"), plans.join("demo.toml")).unwrap();
    let corpus = root.join("tests/fuzz/corpus/plans");
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("seed-") {
            std::fs::copy(&path, plans.join(&name)).unwrap();
        }
    }
    let crowd = dir.path().join("crowd");
    std::fs::create_dir_all(&crowd).unwrap();
    let demo = std::fs::read_to_string(root.join("plans/demo.toml")).unwrap();
    for i in 0..CROWD {
        let text = demo.replace("name = \"demo\"", &format!("name = \"crowd-{i}\""));
        std::fs::write(crowd.join(format!("crowd-{i}.toml")), text).unwrap();
    }
    let plan = plans.join("demo.toml");
    let bad = dir.path().join("bad.toml");
    std::fs::copy(corpus.join("cron-never-fires.toml"), &bad).unwrap();
    Fixture {
        _dir: dir,
        plan,
        bad,
        plans,
        crowd,
        empty,
    }
});

const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "5",
    "1000",
    "1001",
    "1024",
    "1025",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "1e9",
    "0x10",
    " 5",
    "５",
    "99999999999d",
    "18446744073709551615s",
    "30d",
    "31d",
    "720h",
    "36600d",
    "36601d",
    "100y",
    "101y",
    "0s",
    "1ns",
    "1m",
    "a while",
    "demo",
    "orders",
    "every-section",
    "aws-kinds",
    "nosuch",
    "../x",
    "",
    "-",
    "--",
    "--help",
    "-h",
    "--version",
    "@PLAN",
    "@BAD",
    "@DIR",
    "@CROWD",
    "@EMPTY",
    "/dev/null",
    "/dev/zero",
    "/nonexistent/plan.toml",
    ".",
    "2026-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "yesterday",
    "1/0",
    "0/1",
    "3/2",
    "1/18446744073709551615",
    "latest",
    "oldest",
    "random",
    "99999",
    "-9223372036854775808",
    "http://127.0.0.1:1/x",
    "https://hooks.example.com/x",
    "not a url",
    "127.0.0.1:0",
    "[::1]:99999",
    "0.0.0.0:8080",
    "us-east-1",
    "primary",
    "dr",
    "\u{202e}evil",
    "e\u{301}",
    "🦀",
    "a\u{0}b",
    "\u{FEFF}",
];

/// A value: one of [`VALUES`], one the argument allows, or anything.
#[derive(Debug, Clone)]
enum Value {
    Listed(&'static str),
    Allowed(usize),
    Any(String),
}

/// One word of the argument vector, built from the leaf's arguments.
#[derive(Debug, Clone)]
enum Word {
    /// `--long VALUE`, `--long=VALUE`, `-s VALUE` or the bare flag.
    Arg { arg: usize, value: Value, form: u8 },
    /// A positional value or a stray word.
    Bare(Value),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => prop::sample::select(VALUES).prop_map(Value::Listed),
        3 => any::<usize>().prop_map(Value::Allowed),
        1 => "\\PC{0,24}".prop_map(Value::Any),
        1 => (prop::sample::select(&["9", "a", "é", "-"][..]), 1usize..100_000)
            .prop_map(|(s, n)| Value::Any(s.repeat(n))),
    ]
}

fn word() -> impl Strategy<Value = Word> {
    prop_oneof![
        5 => (any::<usize>(), value(), 0u8..4).prop_map(|(arg, value, form)| Word::Arg { arg, value, form }),
        1 => value().prop_map(Word::Bare),
    ]
}

/// `@PLAN`, `@BAD`, `@DIR`, `@CROWD` and `@EMPTY` as the fixture's paths; any
/// other text as it is.
fn substitute(text: &str) -> String {
    let path = |p: &Path| p.display().to_string();
    match text {
        "@PLAN" => path(&FIXTURE.plan),
        "@BAD" => path(&FIXTURE.bad),
        "@DIR" => path(&FIXTURE.plans),
        "@CROWD" => path(&FIXTURE.crowd),
        "@EMPTY" => path(&FIXTURE.empty),
        other => other.to_string(),
    }
}

fn resolve(value: &Value, arg: Option<&ArgModel>) -> String {
    match value {
        Value::Listed(v) => substitute(v),
        Value::Allowed(i) => match arg {
            Some(a) if !a.possible.is_empty() => a.possible[i % a.possible.len()].clone(),
            _ => substitute(VALUES[i % VALUES.len()]),
        },
        Value::Any(s) => s.clone(),
    }
}

/// The argument vector: the leaf's command path, then the words.
fn argv(leaf: &Leaf, words: &[Word]) -> Vec<String> {
    let mut out = vec!["lifeboat".to_string()];
    out.extend(leaf.path.iter().cloned());
    for word in words {
        match word {
            Word::Arg { arg, value, form } => {
                let a = &leaf.args[arg % leaf.args.len()];
                let v = resolve(value, Some(a));
                if a.positional {
                    out.push(v);
                    continue;
                }
                let name = match (&a.long, a.short) {
                    (Some(_), Some(s)) if form % 2 == 1 => format!("-{s}"),
                    (Some(l), _) => format!("--{l}"),
                    (None, Some(s)) => format!("-{s}"),
                    (None, None) => continue,
                };
                match (a.takes_value, form) {
                    (true, 2) if name.starts_with("--") => out.push(format!("{name}={v}")),
                    (true, _) => {
                        out.push(name);
                        out.push(v);
                    }
                    // A value after a flag that takes none: a stray word.
                    (false, 3) => {
                        out.push(name);
                        out.push(v);
                    }
                    (false, _) => out.push(name),
                }
            }
            Word::Bare(v) => out.push(resolve(v, None)),
        }
    }
    out
}

/// The most any count option may be, and any duration option.
const MAX_COUNT: usize = 1024;
const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// Parses `args` as `lifeboat` would and, when a cheap command parsed, runs
/// its validation; panics (naming the arguments) on a panic, a hang, an
/// unbounded allocation or a value past its bound.
fn check(args: Vec<String>) {
    let what = format!(
        "lifeboat {}",
        bounds::shown(format!("{:?}", &args[1..]).as_bytes())
    );
    let problem = bounded(&what, move || match Cli::try_parse_from(&args) {
        Err(e) => {
            // Rendering is what main does with every usage error.
            let rendered = e.render().to_string();
            (rendered.trim().is_empty()).then(|| "an empty usage error".to_string())
        }
        Ok(cli) => run_cheap(&cli).err(),
    });
    if let Some(problem) = problem {
        panic!("{what}: {problem}");
    }
}

/// What `plan validate` and `plan show` compute, without printing it.
fn run_cheap(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Plan(PlanCommand::Validate { paths, .. }) => {
            let files: Vec<PathBuf> = if paths.is_empty() {
                match lifeboat::plan::load_dir(&cli.plans) {
                    Ok(loaded) => return well_placed(&loaded.diagnostics),
                    Err(_) => return Ok(()),
                }
            } else {
                paths.clone()
            };
            for file in files {
                if let Err(e) = lifeboat::plan::load_file(&file) {
                    well_placed(&e.diagnostics)?;
                }
            }
            Ok(())
        }
        Command::Plan(PlanCommand::Show {
            name,
            plan_option,
            next,
            collision_window,
            ..
        }) => {
            let name = name.as_deref().or(plan_option.as_deref());
            if !(1..=1000).contains(next) || *collision_window > MAX_DURATION {
                return Err(format!(
                    "out of bounds: --next {next} --collision-window {collision_window:?}"
                ));
            }
            let plans = match cli.plans_or_one(name) {
                Ok(plans) => plans,
                Err(_) => return Ok(()),
            };
            let now = chrono::Utc::now();
            let mut runs = Vec::new();
            for plan in &plans {
                let mut timings = vec![("backup", &plan.backup.timing)];
                timings.extend(plan.drill.timing.as_ref().map(|t| ("drill", t)));
                timings.extend(plan.verify.as_ref().map(|v| ("verify", &v.timing)));
                for (kind, timing) in timings {
                    let upcoming = timing.upcoming(&plan.name, kind, now, *next);
                    if upcoming.len() > *next {
                        return Err(format!("{} runs for --next {next}", upcoming.len()));
                    }
                    runs.extend(
                        upcoming
                            .into_iter()
                            .map(|r| lifeboat::schedule::PlannedRun {
                                plan: plan.name.clone(),
                                kind,
                                region: plan.backup.primary_region.clone(),
                                slot: r.slot,
                                start: r.start,
                            }),
                    );
                }
            }
            runs.sort_by(|a, b| a.start.cmp(&b.start).then(a.plan.cmp(&b.plan)));
            let _ = lifeboat::schedule::collisions(&runs, *collision_window);
            Ok(())
        }
        Command::Daemon(d) => {
            let counts = [
                d.max_jobs,
                d.max_jobs_per_region,
                d.breaker_threshold as usize,
            ];
            let durations = [d.breaker_cooldown, d.grace, d.watch_interval];
            if counts.iter().any(|c| !(1..=MAX_COUNT).contains(c))
                || durations.iter().any(|t| *t > MAX_DURATION)
            {
                return Err(format!("out of bounds: {d:?}"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Every diagnostic says `FILE:LINE:COL: message`.
fn well_placed(diagnostics: &[lifeboat::plan::Diagnostic]) -> Result<(), String> {
    for d in diagnostics {
        let prefix = format!("{}:{}:{}: ", d.file.display(), d.line, d.column);
        if d.line == 0 || d.column == 0 || !d.to_string().starts_with(&prefix) {
            return Err(format!("a diagnostic without its position: {d}"));
        }
    }
    Ok(())
}

fn corpus() -> Vec<(PathBuf, Vec<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/cli");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let args: Vec<String> = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not a JSON array of strings: {e}", p.display()));
            (p, args)
        })
        .collect()
}

#[test]
fn the_cli_corpus_replays_without_panic_hang_or_unbounded_value() {
    let cases = corpus();
    assert!(cases.len() >= 10, "the corpus lost its files: {cases:?}");
    for (_, args) in cases {
        let args: Vec<String> = std::iter::once("lifeboat".to_string())
            .chain(args.iter().map(|a| substitute(a)))
            .collect();
        check(args);
    }
}

#[test]
fn counts_and_durations_past_their_bounds_are_usage_errors() {
    let refused = |args: &[&str]| {
        let argv = std::iter::once("lifeboat").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => panic!("{args:?} parsed: {:?}", cli.command),
            Err(e) => assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            ),
        }
    };
    let accepted = |args: &[&str]| {
        let argv = std::iter::once("lifeboat").chain(args.iter().copied());
        if let Err(e) = Cli::try_parse_from(argv) {
            panic!("{args:?}: {e}");
        }
    };
    refused(&["report", "--since", "99999999999d"]);
    refused(&["report", "--since", "101y"]);
    refused(&["report", "--since", "a while"]);
    accepted(&["report", "--since", "365d"]);
    accepted(&["report", "--since", "100y"]);
    refused(&["plan", "show", "demo", "--next", "1001"]);
    refused(&["plan", "show", "--all", "--collision-window", "31d"]);
    refused(&["daemon", "--max-jobs", "18446744073709551616"]);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: bounds::cases(256),
        failure_persistence: None,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn hostile_argument_vectors_parse_or_fail_cleanly(
        leaf in 0..MODEL.len(),
        words in prop::collection::vec(word(), 0..8),
    ) {
        check(argv(&MODEL[leaf], &words));
    }
}
