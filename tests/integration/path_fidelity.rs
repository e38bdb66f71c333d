//! A `path` point restores what the source held, name for name and byte
//! for byte, with its metadata: links wherever they point, names that are
//! not UTF-8, hard links, a sparse file, modes, times and (as root)
//! owners; a special file is skipped and flagged; and a manifest that
//! disagrees with the archive fails the drill.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

fn plan(env: &Env) -> String {
    format!(
        r#"name = "fid"
owner = "sre@example.com"
rto = "10m"
rpo = "1h"

[backup]
schedule = "*/15 * * * *"
primary_region = "primary"

[regions.primary]
vault = "file://{vaults}/primary"

[[resources]]
name = "files"
kind = "path"
path = "{data}"

[drill]
region = "primary"
"#,
        vaults = env.path("vaults").display(),
        data = env.path("data").display()
    )
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn name(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn set_mtime(path: &Path, sec: i64, nsec: u32) {
    let t = filetime::FileTime::from_unix_time(sec, nsec);
    filetime::set_symlink_file_times(path, t, t).unwrap();
}

/// The tree of the brief: every kind of entry a folder can hold.
fn seed(data: &Path) {
    fs::create_dir_all(data.join("sub/deeper")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", data.join("absolute")).unwrap();
    std::os::unix::fs::symlink("../../outside", data.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("no/such/file", data.join("dangling")).unwrap();
    // Two names that read the same once converted lossily.
    fs::write(data.join(name(b"caf\xe9")), "latin-1").unwrap();
    fs::write(data.join(name(b"caf\xff")), "not latin-1").unwrap();
    fs::write(data.join("pair-a"), "a pair").unwrap();
    fs::hard_link(data.join("pair-a"), data.join("pair-b")).unwrap();
    fs::write(data.join("triple-1"), "a triple").unwrap();
    fs::hard_link(data.join("triple-1"), data.join("sub/triple-2")).unwrap();
    fs::hard_link(data.join("triple-1"), data.join("triple-3")).unwrap();
    let sparse = fs::File::create(data.join("sparse.img")).unwrap();
    for (i, at) in [0u64, 20 << 20, 40 << 20].into_iter().enumerate() {
        sparse
            .write_all_at(&pseudo_random(8192, i as u64), at)
            .unwrap();
    }
    sparse.set_len(64 << 20).unwrap();
    drop(sparse);
    fs::write(data.join("secret"), "only me").unwrap();
    fs::set_permissions(data.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir(data.join("shared")).unwrap();
    fs::write(data.join("shared/doc"), "group doc").unwrap();
    fs::set_permissions(data.join("shared"), fs::Permissions::from_mode(0o2755)).unwrap();
    fs::create_dir(data.join("readonly")).unwrap();
    fs::write(data.join("readonly/kept"), "cannot add beside me").unwrap();
    fs::write(data.join("sub/deeper/old"), "from 2001").unwrap();
    set_mtime(&data.join("sub/deeper/old"), 1_000_000_000, 123_456_789);
    set_mtime(&data.join("secret"), 1_500_000_000, 987_654_321);
    set_mtime(&data.join("dangling"), 1_400_000_000, 1);
    let status = std::process::Command::new("mkfifo")
        .arg(data.join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    if running_as_root() {
        fs::write(data.join("owned"), "someone else's").unwrap();
        std::os::unix::fs::chown(data.join("owned"), Some(1234), Some(5678)).unwrap();
    }
    // Folders last: their children are written, and their times settle.
    fs::set_permissions(data.join("readonly"), fs::Permissions::from_mode(0o555)).unwrap();
    set_mtime(&data.join("sub/deeper"), 1_100_000_000, 42);
}

/// What an entry is, as compared between the source and the restore.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    kind: &'static str,
    size: u64,
    mode: u32,
    mtime: (i64, i64),
    owner: (u32, u32),
    /// A file's bytes' digest, a link's target.
    content: Vec<u8>,
    /// The other names of the same inode (hard links).
    same_as: Vec<Vec<u8>>,
}

/// Every entry under `root` (FIFOs and the like left out), by exact name.
fn tree(root: &Path) -> BTreeMap<Vec<u8>, Seen> {
    let mut by_inode: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let ft = m.file_type();
        let (kind, content) = if ft.is_dir() {
            ("dir", Vec::new())
        } else if ft.is_symlink() {
            (
                "symlink",
                fs::read_link(e.path())
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if ft.is_file() {
            by_inode.entry(m.ino()).or_default().push(rel.clone());
            use sha2::Digest;
            (
                "file",
                sha2::Sha256::digest(fs::read(e.path()).unwrap()).to_vec(),
            )
        } else {
            continue;
        };
        out.insert(
            rel,
            Seen {
                kind,
                size: if ft.is_file() { m.len() } else { 0 },
                mode: if ft.is_symlink() {
                    0
                } else {
                    m.mode() & 0o7777
                },
                mtime: (m.mtime(), m.mtime_nsec()),
                owner: (m.uid(), m.gid()),
                content,
                same_as: Vec::new(),
            },
        );
    }
    for names in by_inode.values().filter(|n| n.len() > 1) {
        for n in names {
            out.get_mut(n).unwrap().same_as = names.clone();
        }
    }
    out
}

fn backup_and_keep(env: &Env) -> (Value, Value, PathBuf) {
    let (backup, code) = env.json(&["backup", "run", "fid", "--json"]);
    assert_eq!(code, 0, "{backup}");
    let point = backup["points"][0].clone();
    assert_eq!(point["status"], "complete", "{point}");
    let (drill, code) = env.json(&["drill", "run", "fid", "--keep", "--json"]);
    assert_eq!(code, 0, "{drill}");
    let kept = PathBuf::from(drill["kept_path"].as_str().expect("kept path")).join("files");
    (point, drill, kept)
}

#[test]
fn a_tree_with_every_kind_of_entry_restores_exactly() {
    let env = Env::new();
    let data = env.path("data");
    seed(&data);
    env.write_plan("fid.toml", &plan(&env));
    let (point, drill, kept) = backup_and_keep(&env);

    let flags: Vec<&str> = point["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        flags,
        vec!["special-skipped"],
        "the FIFO is skipped and flagged"
    );

    let source = tree(&data);
    let restored = tree(&kept);
    assert!(source.len() >= 20, "{source:?}");
    assert!(!restored.contains_key(b"pipe".as_slice()));
    for (n, want) in &source {
        let got = restored
            .get(n)
            .unwrap_or_else(|| panic!("`{}` was not restored", n.escape_ascii()));
        assert_eq!(got, want, "`{}` differs", n.escape_ascii());
    }
    assert_eq!(
        restored.keys().collect::<Vec<_>>(),
        source.keys().collect::<Vec<_>>(),
        "nothing more was restored"
    );
    // Spot checks of what the comparison covers, so it cannot pass empty.
    assert_eq!(restored[b"caf\xe9".as_slice()].size, 7);
    assert_eq!(restored[b"caf\xff".as_slice()].size, 11);
    assert_eq!(restored[b"absolute".as_slice()].content, b"/etc/hostname");
    assert_eq!(restored[b"sub/up".as_slice()].content, b"../../outside");
    assert_eq!(restored[b"triple-1".as_slice()].same_as.len(), 3);
    assert_eq!(restored[b"secret".as_slice()].mode, 0o600);
    assert_eq!(restored[b"shared".as_slice()].mode, 0o2755);
    assert_eq!(restored[b"readonly".as_slice()].mode, 0o555);
    assert_eq!(
        restored[b"sub/deeper/old".as_slice()].mtime,
        (1_000_000_000, 123_456_789)
    );
    assert_eq!(
        restored[b"sub/deeper".as_slice()].mtime,
        (1_100_000_000, 42)
    );
    assert_eq!(restored[b"dangling".as_slice()].mtime, (1_400_000_000, 1));
    if running_as_root() {
        assert_eq!(restored[b"owned".as_slice()].owner, (1234, 5678));
    }
    let sparse = fs::metadata(kept.join("sparse.img")).unwrap();
    assert_eq!(sparse.len(), 64 << 20);
    assert!(
        sparse.blocks() * 512 < 4 << 20,
        "the sparse file came back sparse: {} blocks",
        sparse.blocks()
    );

    // The drill says what it verified.
    let detail = drill["checks"][0]["detail"].as_str().unwrap();
    for part in [
        "3 symlinks",
        "3 hard links",
        "1 sparse file",
        "names, modes",
    ] {
        assert!(detail.contains(part), "`{part}` missing from: {detail}");
    }
    if running_as_root() {
        assert!(
            detail.contains("times and owners match the manifest"),
            "{detail}"
        );
    } else {
        assert!(detail.contains("owners were not applied"), "{detail}");
    }
    fs::set_permissions(data.join("readonly"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(kept.join("readonly"), fs::Permissions::from_mode(0o755)).unwrap();
}

/// The manifest of the point's only artifact in the file:// vault.
fn manifest_path(env: &Env) -> PathBuf {
    walkdir::WalkDir::new(env.path("vaults"))
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.into_path())
        .find(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .expect("a manifest in the vault")
}

#[test]
fn a_manifest_that_disagrees_with_the_archive_fails_the_drill() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("secret"), "only me").unwrap();
    fs::set_permissions(data.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(data.join("plain"), "anyone").unwrap();
    env.write_plan("fid.toml", &plan(&env));
    let (backup, code) = env.json(&["backup", "run", "fid", "--json"]);
    assert_eq!(code, 0, "{backup}");
    let (drill, code) = env.json(&["drill", "run", "fid", "--json"]);
    assert_eq!(code, 0, "the untouched point passes: {drill}");

    let path = manifest_path(&env);
    let original = fs::read(&path).unwrap();
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit); 2] = [
        ("mode", |e| e["mode"] = 0o644.into()),
        ("mtime", |e| {
            e["mtime"] = (e["mtime"].as_i64().unwrap() - 3600).into();
        }),
    ];
    for (what, edit) in edits {
        let mut m: Value = serde_json::from_slice(&original).unwrap();
        let entry = m["files"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e["path"] == "secret")
            .unwrap();
        edit(entry);
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        let (drill, code) = env.json(&["drill", "run", "fid", "--json"]);
        assert_eq!(code, 1, "an edited {what} fails the drill: {drill}");
        assert_eq!(drill["passed"], false);
        let detail = drill["checks"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains("`secret`") || detail.contains("manifest"),
            "the failure names the entry or the manifest: {detail}"
        );
    }
}
