//! Generators of hostile plans: real plans (the shipped ones and the
//! corpus's seeds) edited as TOML trees — keys dropped, duplicated, added,
//! given wrong types, huge numbers, odd strings, deep nesting, thousands of
//! entries — or as raw bytes.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use proptest::prelude::*;
use toml::{Table, Value};

/// A plan to start from.
#[derive(Debug, Clone)]
pub struct Seed {
    pub text: String,
}

/// The corpus of plan inputs replayed on every run.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/plans")
}

/// Every `*.toml` of a folder, sorted, as bytes.
pub fn toml_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// The shipped plans and the corpus's `seed-*.toml` plans (valid plans
/// that together use every section, key and resource kind).
pub static SEEDS: LazyLock<Vec<Seed>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for dir in [
        root.join("plans"),
        root.join("plans/examples"),
        corpus_dir(),
    ] {
        for (path, bytes) in toml_files(&dir) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if dir == corpus_dir() && !name.starts_with("seed-") {
                continue;
            }
            seeds.push(Seed {
                text: String::from_utf8(bytes).unwrap(),
            });
        }
    }
    assert!(seeds.len() >= 4, "too few seed plans: {seeds:?}");
    seeds
});

const DURATIONS: &[&str] = &[
    "99999999999d",
    "99999999999999999999d",
    "18446744073709551615s",
    "9223372036854775807ms",
    "584542046091y",
    "36600d",
    "36601d",
    "100y",
    "101y",
    "1ns",
    "0s",
    "0",
    "-1s",
    "1h -1m",
    "1 fortnight",
    "1.5h",
    "5m5m5m5m",
    "1e9s",
    "∞",
    "1h\u{0}",
    "１h",
    "2m",
    "10s",
    "30d",
    "365d",
];

const CRONS: &[&str] = &[
    "0 0 30 2 *",
    "0 0 31 4 *",
    "0 0 31 2,4,6,9,11 *",
    "* * * * * *",
    "* * * * * * *",
    "*/0 * * * *",
    "*/4294967296 * * * *",
    "0 0 * * 8",
    "0 0 * * 7/0",
    "0 0 * * 7/8",
    "0 0 * * FRI-MON",
    "0 0 * * 0-7/1",
    "0 0 1 1 * 1970",
    "0 0 0 1 1 * 2099",
    "0 0 0 29 2 * 2100",
    "0 0 0 1 1 * 2030,2090",
    "0 0 0 * * * 1970-2200/1",
    "0 0 0 29 2 * 2096-2104",
    "0 0 29 2 1",
    "0 0 13 * FRI",
    "@daily",
    "@reboot",
    "L * * * *",
    "0 0 L * *",
    "0 0 * * 5L",
    "0 0 ? * ?",
    "1-59/58 * * * *",
    "0-59 0-23 1-31 1-12 0-7",
    "60 * * * *",
    "* 24 * * *",
    "59 23 31 12 *",
    "0 0 1 1 *",
    "*/15 * * * *",
    "",
    "* * * *",
    "* * * * * * * *",
    "0 3 * * SUN",
    "0 3 * * sunday",
];

const ODD: &[&str] = &[
    "",
    " ",
    "\t",
    "\u{0}",
    "a\u{0}b",
    "\u{202e}evil",
    "e\u{301}\u{301}\u{301}",
    "🦀",
    "\u{FEFF}",
    "\u{10FFFF}",
    "\u{FFFD}",
    "a\nb",
    "\r\n",
    "\\",
    "\"",
    "'''",
    "${HOME}",
    "%s%n",
    "../../../../etc/passwd",
    "/",
    ".",
    "..",
    "file://",
    "file:///",
    "file://relative/x",
    "file:///dev/null",
    "file:///tmp/a",
    "s3://",
    "s3://b",
    "s3://B_a/../x",
    "s3://bucket/prefix/",
    "ftp://x",
    "postgres://u:secret@h/db",
    "postgresql://",
    "postgres://h:99999/db",
    "http://[::1",
    "https://",
    "https://hooks.example.com/x",
    "UTC",
    "Mars/Olympus",
    "Europe/Paris",
    "+05:00",
    "1/0",
    "1/1",
    "1/7",
    "1/18446744073709551616",
    "0/5",
    "1/-3",
    "2/3",
    "governance",
    "compliance",
    "GOVERNANCE",
    "always",
    "never",
    "on-success",
    "latest",
    "oldest",
    "random",
    "backup-failed",
    "rpo-breach",
    "path",
    "sqlite",
    "postgres",
    "s3",
    "rds-instance",
    "rds-cluster",
    "rds",
    "PATH",
    "us-east-1",
    "us-west-2",
    "primary",
    "dr",
    "orders",
    "db",
    "SELECT 1",
    "DROP TABLE x; --",
    "db.t4g.medium",
    "sg-0",
    "a-",
    "-a",
    "a--b",
];

const KEYS: &[&str] = &[
    "name",
    "owner",
    "rto",
    "rpo",
    "backup",
    "retention",
    "regions",
    "resources",
    "drill",
    "verify",
    "aws",
    "notify",
    "schedule",
    "timezone",
    "jitter",
    "start_window",
    "completion_window",
    "primary_region",
    "copy_to",
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "max_age",
    "vault",
    "kms_key",
    "object_lock",
    "mode",
    "retain",
    "kind",
    "path",
    "exclude",
    "url",
    "drill_url",
    "bucket",
    "prefix",
    "instance",
    "cluster",
    "instance_class",
    "subnet_group",
    "security_groups",
    "region",
    "isolate_primary",
    "cleanup",
    "point",
    "checks",
    "resource",
    "sql",
    "expect",
    "timeout",
    "read_data",
    "read_data_subset",
    "endpoint_url",
    "force_path_style",
    "profile",
    "poll_interval",
    "url_env",
    "events",
    "colour",
    "",
    "é",
    "a.b",
];

/// A string a plan might hold, or should never.
fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(DURATIONS).prop_map(String::from),
        4 => prop::sample::select(CRONS).prop_map(String::from),
        6 => prop::sample::select(ODD).prop_map(String::from),
        2 => "\\PC{0,40}",
        2 => "[a-z0-9-]{0,70}",
        1 => (prop::sample::select(&["a", "é", "🦀", "\u{0}", "%", "\\"][..]), 1usize..300_000)
            .prop_map(|(s, n)| s.repeat(n)),
        1 => (0u64..u64::MAX, prop::sample::select(&["s", "ms", "m", "h", "d", "w", "y", "ns", "us"][..]))
            .prop_map(|(n, unit)| format!("{n}{unit}")),
    ]
}

/// Any TOML value, odd ones first.
pub fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        8 => odd_string().prop_map(Value::String),
        3 => prop::sample::select(&[i64::MAX, i64::MIN, -1, 0, 1, 7, 24, u32::MAX as i64, u32::MAX as i64 + 1][..])
            .prop_map(Value::Integer),
        1 => any::<i64>().prop_map(Value::Integer),
        1 => prop::sample::select(&[f64::NAN, f64::INFINITY, -0.0, 1e308, 0.5][..]).prop_map(Value::Float),
        1 => any::<bool>().prop_map(Value::Boolean),
        1 => Just(Value::Datetime("1979-05-27T07:32:00Z".parse().unwrap())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Table(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// One edit of a plan's TOML tree (`at` picks a node, modulo their
/// number) or of its text (`at` picks a line).
#[derive(Debug, Clone)]
pub enum Edit {
    /// Remove the node.
    Drop { at: usize },
    /// Give the node another value (often of the wrong type).
    Replace { at: usize, value: Value },
    /// Add a key (known elsewhere, unknown, odd) to the table at or above
    /// the node.
    Insert {
        at: usize,
        key: &'static str,
        value: Value,
    },
    /// Bury the node's value under `depth` arrays or tables.
    Nest {
        at: usize,
        depth: usize,
        table: bool,
    },
    /// Grow the array (or table) at or above the node to `count` entries,
    /// copies of its own, renamed where they have a name.
    Multiply { at: usize, count: usize },
    /// Repeat a line of the text (a duplicate key or table header).
    DuplicateLine { at: usize },
    /// Insert raw text before a line (deep nesting, stray syntax).
    Splice { at: usize, text: String },
}

fn splice_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (1usize..20_000).prop_map(|n| format!("x = {}1{}\n", "[".repeat(n), "]".repeat(n))),
        (1usize..20_000).prop_map(|n| format!("x = {}{}\n", "{a = ".repeat(n), "}".repeat(n))),
        (1usize..5_000).prop_map(|n| format!("[{}]\n", vec!["t"; n].join("."))),
        (1usize..3_000).prop_map(|n| "[[resources]]\n".repeat(n)),
        Just("[backup]\n".to_string()),
        Just("[[backup]]\n".to_string()),
        Just("name = \"again\"\n".to_string()),
        Just("\"\"\"\n".to_string()),
        Just("a = 1979-05-27T07:32:00Z\n".to_string()),
        "\\PC{0,80}\n",
    ]
}

pub fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        3 => at.prop_map(|at| Edit::Drop { at }),
        6 => (at, hostile_value()).prop_map(|(at, value)| Edit::Replace { at, value }),
        3 => (at, prop::sample::select(KEYS), hostile_value())
            .prop_map(|(at, key, value)| Edit::Insert { at, key, value }),
        1 => (at, 1usize..200, any::<bool>()).prop_map(|(at, depth, table)| Edit::Nest { at, depth, table }),
        1 => (at, prop_oneof![2usize..10, 10usize..3_000]).prop_map(|(at, count)| Edit::Multiply { at, count }),
        2 => at.prop_map(|at| Edit::DuplicateLine { at }),
        1 => (at, splice_text()).prop_map(|(at, text)| Edit::Splice { at, text }),
    ]
}

/// A step from a table or array to one of its children.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every node's path, parents before children.
fn paths(table: &Table) -> Vec<Vec<Step>> {
    fn walk(value: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        match value {
            Value::Table(t) => {
                for (k, v) in t {
                    path.push(Step::Key(k.clone()));
                    out.push(path.clone());
                    walk(v, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    path.push(Step::Index(i));
                    out.push(path.clone());
                    walk(v, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let root = Value::Table(table.clone());
    walk(&root, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut cur = root;
    for step in path {
        cur = match (step, cur) {
            (Step::Key(k), Value::Table(t)) => t.get_mut(k)?,
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The node's path and the path of its parent.
fn pick(root: &Value, at: usize) -> Option<Vec<Step>> {
    let Value::Table(t) = root else { return None };
    let all = paths(t);
    (!all.is_empty()).then(|| all[at % all.len()].clone())
}

/// Generated plans stay under this size: twice what a plan file may be,
/// so the size limit is crossed too, without building texts of hundreds
/// of megabytes (which `parse_plan` would take its time over, and no file
/// can bring: `load_file` refuses them unread).
pub const MAX_TEXT: usize = 2 << 20;

/// The average written size of `values`, at least 1.
fn written_size(values: &[Value]) -> usize {
    let total: usize = values.iter().map(|v| v.to_string().len()).sum();
    (total / values.len().max(1)).max(1)
}

/// The tree edits applied to a TOML tree; text edits return the text.
fn apply_to_tree(root: &mut Value, edit: &Edit) {
    match edit {
        Edit::Drop { at } => {
            let Some(path) = pick(root, *at) else { return };
            let (last, parent) = path.split_last().unwrap();
            match (node_mut(root, parent), last) {
                (Some(Value::Table(t)), Step::Key(k)) => {
                    t.remove(k);
                }
                (Some(Value::Array(a)), Step::Index(i)) => {
                    a.remove(*i);
                }
                _ => {}
            }
        }
        Edit::Replace { at, value } => {
            let Some(path) = pick(root, *at) else { return };
            if let Some(node) = node_mut(root, &path) {
                *node = value.clone();
            }
        }
        Edit::Insert { at, key, value } => {
            let path = pick(root, *at).unwrap_or_default();
            let mut path = path.as_slice();
            loop {
                match node_mut(root, path) {
                    Some(Value::Table(t)) => {
                        t.insert(key.to_string(), value.clone());
                        return;
                    }
                    _ if path.is_empty() => return,
                    _ => path = &path[..path.len() - 1],
                }
            }
        }
        Edit::Nest { at, depth, table } => {
            let Some(path) = pick(root, *at) else { return };
            if let Some(node) = node_mut(root, &path) {
                let mut v = node.clone();
                for _ in 0..*depth {
                    v = if *table {
                        Value::Table(Table::from_iter([("a".to_string(), v)]))
                    } else {
                        Value::Array(vec![v])
                    };
                }
                *node = v;
            }
        }
        Edit::Multiply { at, count } => {
            let path = pick(root, *at).unwrap_or_default();
            let mut path = path.as_slice();
            loop {
                match node_mut(root, path) {
                    Some(Value::Array(a)) if !a.is_empty() => {
                        let originals = a.clone();
                        let count = (*count).min(MAX_TEXT / written_size(&originals));
                        for i in a.len()..count {
                            let mut copy = originals[i % originals.len()].clone();
                            if let Value::Table(t) = &mut copy {
                                if let Some(Value::String(n)) = t.get_mut("name") {
                                    n.push_str(&format!("-{i}"));
                                }
                            }
                            a.push(copy);
                        }
                        return;
                    }
                    Some(Value::Table(t)) if !t.is_empty() => {
                        let originals: Vec<(String, Value)> =
                            t.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        let values: Vec<Value> = originals.iter().map(|(_, v)| v.clone()).collect();
                        let count = (*count).min(MAX_TEXT / written_size(&values));
                        for i in t.len()..count {
                            let (k, v) = &originals[i % originals.len()];
                            t.insert(format!("{k}-{i}"), v.clone());
                        }
                        return;
                    }
                    _ if path.is_empty() => return,
                    _ => path = &path[..path.len() - 1],
                }
            }
        }
        Edit::DuplicateLine { .. } | Edit::Splice { .. } => {}
    }
}

fn apply_to_text(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    match edit {
        Edit::DuplicateLine { at } if !lines.is_empty() => {
            let i = at % lines.len();
            lines.insert(i, lines[i]);
            lines.join("\n") + "\n"
        }
        Edit::Splice { at, text: inserted } => {
            let i = at % (lines.len() + 1);
            let mut out = lines[..i].join("\n");
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(inserted);
            out.push_str(&lines[i..].join("\n"));
            out.push('\n');
            out
        }
        _ => text.to_string(),
    }
}

/// The seed's text with the edits applied in order: tree edits on the
/// parsed TOML (written back as TOML), text edits on the text. An edit
/// that would make the text longer than [`MAX_TEXT`] is skipped.
pub fn apply(seed: &Seed, edits: &[Edit]) -> String {
    let mut text = seed.text.clone();
    for edit in edits {
        let before = text.clone();
        match edit {
            Edit::DuplicateLine { .. } | Edit::Splice { .. } => text = apply_to_text(&text, edit),
            _ => {
                // A text edit may have broken the TOML: then tree edits
                // have nothing to work on.
                let Ok(table) = toml::from_str::<Table>(&text) else {
                    continue;
                };
                let mut root = Value::Table(table);
                apply_to_tree(&mut root, edit);
                if let Value::Table(t) = root {
                    if let Ok(written) = toml::to_string(&t) {
                        text = written;
                    }
                }
            }
        }
        if text.len() > MAX_TEXT {
            text = before;
        }
    }
    text
}

/// A raw edit of a plan's bytes.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Set { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Copy { from: usize, len: usize, to: usize },
    Truncate { at: usize },
}

const ODD_BYTES: &[&[u8]] = &[
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\0",
    b"\r",
    b"\"",
    b"[",
    b"]",
    b"=",
    b"#",
    b"'''",
    b"\n[[resources]]\n",
    b"\\u00",
];

pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let at = any::<usize>();
    let odd_bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..16),
        prop::sample::select(ODD_BYTES).prop_map(|b| b.to_vec()),
    ];
    prop_oneof![
        3 => (at, any::<u8>()).prop_map(|(at, byte)| ByteEdit::Set { at, byte }),
        3 => (at, odd_bytes).prop_map(|(at, bytes)| ByteEdit::Insert { at, bytes }),
        2 => (at, 1usize..64).prop_map(|(at, len)| ByteEdit::Delete { at, len }),
        2 => (at, 1usize..256, any::<usize>()).prop_map(|(from, len, to)| ByteEdit::Copy { from, len, to }),
        1 => at.prop_map(|at| ByteEdit::Truncate { at }),
    ]
}

/// The seed's bytes with the edits applied in order.
pub fn apply_bytes(seed: &Seed, edits: &[ByteEdit]) -> Vec<u8> {
    let mut b = seed.text.as_bytes().to_vec();
    for edit in edits {
        let n = b.len() + 1;
        match edit {
            ByteEdit::Set { at, byte } if !b.is_empty() => {
                let i = at % b.len();
                b[i] = *byte;
            }
            ByteEdit::Insert { at, bytes } => {
                let i = at % n;
                b.splice(i..i, bytes.iter().copied());
            }
            ByteEdit::Delete { at, len } => {
                let i = at % n;
                let end = (i + len).min(b.len());
                b.drain(i.min(end)..end);
            }
            ByteEdit::Copy { from, len, to } => {
                let i = from % n;
                let end = (i + len).min(b.len());
                let chunk: Vec<u8> = b[i.min(end)..end].to_vec();
                let j = to % (b.len() + 1);
                b.splice(j..j, chunk);
            }
            ByteEdit::Truncate { at } => b.truncate(at % n),
            ByteEdit::Set { .. } => {}
        }
    }
    b
}
