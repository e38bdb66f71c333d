//! A `path` point's archive and restore, in memory: links as data, names
//! as bytes, metadata, hard links, holes, files that vanish or change
//! while read (through the walker's hook), and legacy manifests.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use globset::GlobSet;
use indicatif::ProgressBar;

use super::super::manifest::{EntryType, FileEntry, Manifest};
use super::super::{PointFlag, ResourceError};
use super::fidelity::Summary;
use super::walk::{self, hook, Stage, Walked};
use super::{extract, names};

/// Archives `root` as a backup would: (tar + zstd bytes, what was walked).
fn backup(root: &Path) -> (Vec<u8>, Walked) {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let walked =
        walk::append_tree(&mut b, root, &GlobSet::empty(), &ProgressBar::hidden()).unwrap();
    let tar = b.into_inner().unwrap();
    (zstd::encode_all(&tar[..], 1).unwrap(), walked)
}

fn manifest(files: Vec<FileEntry>) -> Manifest {
    let mut m: Manifest = serde_json::from_value(serde_json::json!({
        "format": 1,
        "kind": "path",
        "data_time": "2026-01-01T00:00:00.000Z",
        "artifact": {"sha256": "", "size": 0},
        "file_count": 0,
        "content_bytes": 0
    }))
    .unwrap();
    m.files = files;
    m
}

fn restore(zst: &[u8], files: Vec<FileEntry>, dest: &Path) -> Result<Summary, ResourceError> {
    extract::extract(
        zst,
        &manifest(files),
        dest,
        "file:///vault/a.tar.zst",
        &ProgressBar::hidden(),
    )
}

/// A tar + zstd archive with raw headers (names a builder would refuse).
fn crafted(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_mtime(0);
        if *kind == tar::EntryType::Symlink {
            h.set_link_name(names::as_path(data)).unwrap();
            h.set_size(0);
            h.set_cksum();
            b.append(&h, &[][..]).unwrap();
        } else {
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
    }
    zstd::encode_all(&b.into_inner().unwrap()[..], 1).unwrap()
}

fn osstr(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

#[test]
fn links_are_restored_exactly_wherever_they_point() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("a/b")).unwrap();
    fs::write(src.join("a/b/f"), "x").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("absolute")).unwrap();
    std::os::unix::fs::symlink("../../outside", src.join("a/b/up")).unwrap();
    std::os::unix::fs::symlink("nowhere/at/all", src.join("dangling")).unwrap();
    let (zst, walked) = backup(&src);
    let dest = dir.path().join("dest");
    let summary = restore(&zst, walked.entries, &dest).unwrap();
    assert_eq!(summary.symlinks, 3);
    for (link, target) in [
        ("absolute", "/etc/passwd"),
        ("a/b/up", "../../outside"),
        ("dangling", "nowhere/at/all"),
    ] {
        assert_eq!(
            fs::read_link(dest.join(link)).unwrap(),
            PathBuf::from(target)
        );
    }
    assert!(summary.to_string().contains("3 symlinks"), "{summary}");
}

#[test]
fn an_entry_named_outside_the_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let zst = crafted(&[(b"../x", tar::EntryType::Regular, b"evil")]);
    let mut entry = FileEntry::new(b"../x", EntryType::File);
    entry.size = 4;
    let err = restore(&zst, vec![entry], &dest).unwrap_err().to_string();
    assert!(err.contains("outside the restore folder; refused"), "{err}");
    assert!(!dir.path().join("x").exists());
}

#[test]
fn an_entry_written_through_a_planted_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let zst = crafted(&[
        (
            b"a",
            tar::EntryType::Symlink,
            outside.as_os_str().as_bytes(),
        ),
        (b"a/x", tar::EntryType::Regular, b"evil"),
    ]);
    let mut link = FileEntry::new(b"a", EntryType::Symlink);
    link.set_target(outside.as_os_str().as_bytes());
    let mut file = FileEntry::new(b"a/x", EntryType::File);
    file.size = 4;
    let err = restore(&zst, vec![link, file], &dest)
        .unwrap_err()
        .to_string();
    assert!(err.contains("goes through symlink"), "{err}");
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing written outside"
    );
}

#[test]
fn names_that_are_not_utf8_keep_their_bytes_even_when_they_collide() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    // Both read "caf\u{fffd}" once converted lossily.
    let a: &[u8] = b"caf\xe9";
    let b: &[u8] = b"caf\xff";
    fs::write(src.join(osstr(a)), "latin-1").unwrap();
    fs::write(src.join(osstr(b)), "other").unwrap();
    std::os::unix::fs::symlink(osstr(b"t\xfe"), src.join("link")).unwrap();
    let (zst, walked) = backup(&src);

    // The manifest keeps both names exactly, through JSON.
    let json = serde_json::to_string(&manifest(walked.entries.clone())).unwrap();
    assert!(json.contains(r#""path_hex":"636166e9""#), "{json}");
    assert!(json.contains(r#""target_hex":"74fe""#), "{json}");
    let back: Manifest = serde_json::from_str(&json).unwrap();
    assert_eq!(back.files, walked.entries);
    // A UTF-8 name is only its readable string.
    let link = back.files.iter().find(|e| e.path == "link").unwrap();
    assert_eq!(
        (link.path_hex.as_ref(), link.name_bytes()),
        (None, b"link".as_slice())
    );
    assert!(
        json.contains(r#"{"path":"link","type":"symlink""#),
        "{json}"
    );
    let names: Vec<&[u8]> = back.files.iter().map(FileEntry::name_bytes).collect();
    assert!(names.contains(&a) && names.contains(&b), "{names:?}");

    let dest = dir.path().join("dest");
    restore(&zst, back.files, &dest).unwrap();
    assert_eq!(fs::read(dest.join(osstr(a))).unwrap(), b"latin-1");
    assert_eq!(fs::read(dest.join(osstr(b))).unwrap(), b"other");
    assert_eq!(
        fs::read_link(dest.join("link"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"t\xfe"
    );
}

#[test]
fn bad_hex_in_a_manifest_is_refused() {
    let json = r#"{"path":"x","path_hex":"zz","type":"file","mode":420}"#;
    let err = serde_json::from_str::<FileEntry>(json)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad hex"), "{err}");
}

#[test]
fn a_format_1_manifest_with_lossy_names_still_loads_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    // What the previous build wrote: no times, owners or exact bytes; a
    // name that is not UTF-8 held lossily.
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"old"));
    let json = format!(
        r#"[{{"path":"d","type":"dir","size":0,"mode":493}},
            {{"path":"d/caf\ufffd","type":"file","size":3,"mode":416,"sha256":"{sha}"}},
            {{"path":"l","type":"symlink","size":0,"mode":511,"target":"d/caf\ufffd"}}]"#
    );
    let files: Vec<FileEntry> = serde_json::from_str(&json).unwrap();
    assert!(files.iter().all(FileEntry::is_legacy));
    let zst = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        b.append_data(&mut h, "d", std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o640);
        h.set_mtime(1_600_000_000);
        h.set_size(3);
        b.append_data(&mut h, names::as_path(b"d/caf\xe9"), &b"old"[..])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        b.append_link(&mut h, "l", names::as_path(b"d/caf\xe9"))
            .unwrap();
        zstd::encode_all(&b.into_inner().unwrap()[..], 1).unwrap()
    };
    let dest = dir.path().join("dest");
    let summary = restore(&zst, files, &dest).unwrap();
    // Restored under the archive's exact bytes.
    let file = dest.join(osstr(b"d/caf\xe9"));
    assert_eq!(fs::read(&file).unwrap(), b"old");
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o640);
    assert!(
        summary.to_string().contains("records no times or owners"),
        "{summary}"
    );
}

#[test]
fn modes_times_hard_links_and_holes_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("ro")).unwrap();
    fs::write(src.join("ro/child"), "in a read-only folder").unwrap();
    fs::write(src.join("secret"), "s").unwrap();
    fs::set_permissions(src.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(src.join("first"), "shared").unwrap();
    fs::hard_link(src.join("first"), src.join("second")).unwrap();
    let sparse = fs::File::create(src.join("sparse")).unwrap();
    use std::os::unix::fs::FileExt;
    sparse.write_all_at(b"data", 6 << 20).unwrap();
    sparse.set_len(12 << 20).unwrap();
    drop(sparse);
    let old = filetime::FileTime::from_unix_time(1_234_567_890, 123_456_789);
    filetime::set_file_mtime(src.join("secret"), old).unwrap();
    let before_1970 = filetime::FileTime::from_unix_time(-86_400, 5);
    filetime::set_file_mtime(src.join("first"), before_1970).unwrap();
    fs::set_permissions(src.join("ro"), fs::Permissions::from_mode(0o2555)).unwrap();

    let (zst, walked) = backup(&src);
    let entry = |n: &str| {
        walked
            .entries
            .iter()
            .find(|e| e.name_bytes() == n.as_bytes())
            .unwrap()
            .clone()
    };
    assert_eq!(entry("second").entry_type, EntryType::Hardlink);
    assert_eq!(entry("second").target.as_deref(), Some("first"));
    assert!(!entry("sparse").holes.is_empty());
    assert_eq!(entry("secret").mtime, Some(1_234_567_890));
    assert_eq!(entry("secret").mtime_nsec, 123_456_789);

    let dest = dir.path().join("dest");
    let summary = restore(&zst, walked.entries.clone(), &dest).unwrap();
    let m = |n: &str| fs::symlink_metadata(dest.join(n)).unwrap();
    assert_eq!(m("secret").mode() & 0o7777, 0o600);
    assert_eq!(
        (m("secret").mtime(), m("secret").mtime_nsec()),
        (1_234_567_890, 123_456_789)
    );
    assert_eq!((m("first").mtime(), m("first").mtime_nsec()), (-86_400, 5));
    assert_eq!(m("ro").mode() & 0o7777, 0o2555);
    assert_eq!(m("first").ino(), m("second").ino());
    assert_eq!(m("sparse").len(), 12 << 20);
    assert!(
        m("sparse").blocks() * 512 < 1 << 20,
        "the sparse file came back sparse"
    );
    let text = summary.to_string();
    assert!(
        text.contains("1 hard link") && text.contains("1 sparse file"),
        "{text}"
    );
    assert!(text.contains("times"), "{text}");
    fs::set_permissions(src.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    super::remove_scratch(&dest).unwrap();
}

#[test]
fn a_manifest_that_disagrees_with_the_archive_fails_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), "a").unwrap();
    fs::write(src.join("b"), "b").unwrap();
    let (zst, walked) = backup(&src);
    for (i, edit) in [
        (|e: &mut FileEntry| e.mode ^= 0o070) as fn(&mut FileEntry),
        |e| e.mtime_nsec = (e.mtime_nsec + 1) % 1_000_000_000,
        |e| e.uid = Some(e.uid.unwrap() + 1),
    ]
    .into_iter()
    .enumerate()
    {
        if i == 2 && !super::sys::running_as_root() {
            continue; // owners are compared only where they are applied
        }
        let mut files = walked.entries.clone();
        edit(&mut files[1]);
        let dest = dir.path().join(format!("dest{i}"));
        let err = restore(&zst, files, &dest).unwrap_err();
        assert!(matches!(err, ResourceError::Mismatch(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("`b`") && text.contains("manifest"), "{text}");
    }
}

#[test]
fn a_hard_link_to_something_not_restored_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let link_to = |target: &str| {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_mtime(0);
        h.set_mode(0o644);
        b.append_link(&mut h, "l", target).unwrap();
        let zst = zstd::encode_all(&b.into_inner().unwrap()[..], 1).unwrap();
        let mut l = FileEntry::new(b"l", EntryType::Hardlink);
        l.set_target(target.as_bytes());
        (zst, vec![l])
    };
    let (zst, files) = link_to("/etc/passwd");
    let err = restore(&zst, files, &dir.path().join("d1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("leaves the restore folder; refused"), "{err}");
    let (zst, files) = link_to("f");
    let err = restore(&zst, files, &dir.path().join("d2"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not a file restored before it; refused"),
        "{err}"
    );
}

#[test]
fn a_file_that_vanishes_before_it_is_read_is_left_out_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), "a").unwrap();
    fs::write(src.join("b"), "b").unwrap();
    let (zst, walked) = hook::with(
        |stage, path| {
            if stage == Stage::BeforeOpen && path.ends_with("a") {
                fs::remove_file(path).unwrap();
            }
        },
        || backup(&src),
    );
    assert_eq!(walked.vanished, 1);
    assert_eq!(walked.flags(), vec![PointFlag::Vanished]);
    let names: Vec<&str> = walked.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, vec!["b"]);
    restore(&zst, walked.entries, &dir.path().join("dest")).unwrap();
}

#[test]
fn a_small_file_rewritten_once_while_read_is_read_again_and_not_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "old old").unwrap();
    let mut rewrites = 0;
    let (zst, walked) = hook::with(
        move |stage, path| {
            if stage == Stage::AfterRead && rewrites == 0 {
                rewrites += 1;
                // Same size, later time: a torn read would not show.
                fs::write(path, "new new").unwrap();
                let later = filetime::FileTime::from_unix_time(2_000_000_000, 1);
                filetime::set_file_mtime(path, later).unwrap();
            }
        },
        || backup(&src),
    );
    let e = &walked.entries[0];
    assert!(!e.changed_while_read);
    assert!(walked.flags().is_empty());
    assert_eq!(e.mtime, Some(2_000_000_000));
    let dest = dir.path().join("dest");
    restore(&zst, walked.entries, &dest).unwrap();
    assert_eq!(fs::read(dest.join("f")).unwrap(), b"new new");
}

#[test]
fn a_file_that_keeps_changing_is_flagged_small_or_large() {
    for size in [100usize, walk::BUFFERED_MAX as usize + 1] {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("f"), vec![b'a'; size]).unwrap();
        let mut n = 0u8;
        let (zst, walked) = hook::with(
            move |stage, path| {
                if stage == Stage::AfterRead {
                    n += 1;
                    fs::write(path, vec![b'a' + n; size]).unwrap();
                }
            },
            || backup(&src),
        );
        let e = &walked.entries[0];
        assert!(e.changed_while_read, "size {size}");
        assert_eq!(walked.flags(), vec![PointFlag::ChangedWhileRead]);
        // What was archived is consistent with its manifest entry.
        restore(&zst, walked.entries, &dir.path().join("dest")).unwrap();
    }
}

#[test]
fn a_fifo_is_skipped_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "f").unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(src.join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    let (_, walked) = backup(&src);
    assert_eq!(walked.specials, 1);
    assert_eq!(walked.flags(), vec![PointFlag::SpecialSkipped]);
    assert_eq!(walked.entries.len(), 1);
}

#[test]
fn a_folder_that_vanishes_is_left_out_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("b/inner")).unwrap();
    fs::write(src.join("b/inner/x"), "x").unwrap();
    fs::write(src.join("a"), "a").unwrap();
    // `b` is listed with `a`, and gone by the time the walk reaches it.
    let gone = src.join("b");
    let (zst, walked) = hook::with(
        move |stage, path| {
            if stage == Stage::BeforeOpen && path.ends_with("a") {
                fs::remove_dir_all(&gone).unwrap();
            }
        },
        || backup(&src),
    );
    assert_eq!(walked.vanished, 1);
    assert_eq!(walked.flags(), vec![PointFlag::Vanished]);
    let names: Vec<&str> = walked.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, vec!["a"]);
    restore(&zst, walked.entries, &dir.path().join("dest")).unwrap();
}

#[test]
fn the_progress_total_counts_each_file_once_and_skips_what_is_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("keep")).unwrap();
    fs::create_dir_all(root.join("cache")).unwrap();
    fs::write(root.join("keep/a"), vec![1u8; 1000]).unwrap();
    fs::write(root.join("keep/b.tmp"), vec![1u8; 50]).unwrap();
    fs::write(root.join("cache/big"), vec![1u8; 9000]).unwrap();
    fs::hard_link(root.join("keep/a"), root.join("keep/a-again")).unwrap();
    std::os::unix::fs::symlink("keep/a", root.join("link")).unwrap();
    let mut globs = globset::GlobSetBuilder::new();
    globs.add(globset::Glob::new("**/*.tmp").unwrap());
    globs.add(globset::Glob::new("cache").unwrap());
    let globs = globs.build().unwrap();
    assert_eq!(walk::content_bytes(root, &globs), 1000);
    assert_eq!(walk::content_bytes(root, &GlobSet::empty()), 10_050);
    // A single file is its own total.
    assert_eq!(
        walk::content_bytes(&root.join("keep/a"), &GlobSet::empty()),
        1000
    );
}

#[test]
fn a_scratch_tree_is_removed_whole_without_following_its_links() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("keep"), b"not the scratch's").unwrap();
    // One folder at the top (as a drill's scratch has), then branches.
    let scratch = dir.path().join("scratch");
    let tree = scratch.join("tree");
    for d in 0..7 {
        let sub = tree.join(format!("d{d}")).join("deeper");
        fs::create_dir_all(&sub).unwrap();
        for f in 0..30 {
            fs::write(sub.join(format!("f{f}")), b"x").unwrap();
        }
        fs::write(tree.join(format!("top{d}")), b"y").unwrap();
    }
    std::os::unix::fs::symlink(&outside, tree.join("link-to-outside")).unwrap();
    std::os::unix::fs::symlink(outside.join("keep"), tree.join("d3").join("file-link")).unwrap();
    super::remove_scratch(&scratch).unwrap();
    assert!(
        fs::symlink_metadata(&scratch).is_err(),
        "the scratch is gone"
    );
    assert_eq!(
        fs::read(outside.join("keep")).unwrap(),
        b"not the scratch's"
    );
    // Nothing to remove is no error.
    super::remove_scratch(&scratch).unwrap();
}
