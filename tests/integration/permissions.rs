//! What Lifeboat writes is for its own user (or group, when asked): a
//! 0600 source file must not become world-readable through a vault.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::*;

/// Every file and folder under `dir` (and `dir` itself), with its mode.
fn modes(dir: &Path) -> Vec<(String, bool, u32)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.path().display().to_string(),
                m.is_dir(),
                m.permissions().mode() & 0o777,
            )
        })
        .collect()
}

fn created(env: &Env) -> Vec<(String, bool, u32)> {
    let mut all = modes(&env.path("vaults"));
    all.extend(modes(&env.path("work")));
    for name in ["lifeboat.db", "lifeboat.db-wal"] {
        if env.path(name).exists() {
            all.extend(modes(&env.path(name)));
        }
    }
    all
}

#[test]
fn vaults_the_catalog_and_the_work_folder_are_private_by_default() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    let (b, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{b}");
    let (d, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{d}");
    let all = created(&env);
    assert!(
        all.iter().any(|(p, _, _)| p.ends_with(".tar.zst")),
        "{all:?}"
    );
    for (path, is_dir, mode) in &all {
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{path} is {mode:o}");
    }
}

#[test]
fn group_access_is_an_option() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    let (b, code) = env.json(&["backup", "run", "shop", "--json", "--group-readable"]);
    assert_eq!(code, 0, "{b}");
    let all = created(&env);
    for (path, is_dir, mode) in &all {
        let want = if *is_dir { 0o750 } else { 0o640 };
        assert_eq!(*mode, want, "{path} is {mode:o}");
    }
}
