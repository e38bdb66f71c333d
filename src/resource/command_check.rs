//! Checks an application owner writes: `[[drill.checks]] command = [...]`
//! runs a program on what a drill or a restore put back, told where it is
//! through its environment, and passes on exit status 0 — what AWS
//! restore testing does with a Lambda and Veeam with scripts.
//!
//! The program runs without a shell, from the plan file's folder, in its
//! own process group (a timeout kills it and whatever it started), with
//! Lifeboat's environment (so PGPASSWORD and the AWS variables reach it)
//! plus:
//!
//! - `LIFEBOAT_PLAN`, `LIFEBOAT_RESOURCE`;
//! - `LIFEBOAT_RESTORED_PATH`: the restored folder (`path`) or database
//!   file (`sqlite`);
//! - `LIFEBOAT_RESTORED_DATABASE_URL`: `sqlite://FILE`, or the restored
//!   PostgreSQL database's URL (no password: libpq's environment has it),
//!   or an RDS endpoint's `postgres://HOST:PORT` / `mysql://HOST:PORT`;
//! - `LIFEBOAT_RESTORED_BUCKET`, `LIFEBOAT_RESTORED_PREFIX`: where an `s3`
//!   point's objects are;
//! - `LIFEBOAT_RESTORED_ENDPOINT`: an RDS restore's `HOST:PORT`.

use std::path::Path;

use super::{CheckFailed, Restored, RestoredInto, Verdict};
use crate::plan::CommandCheck;

/// The environment telling the program where the restore is.
pub fn environment(plan: &str, resource: &str, restored: &Restored) -> Vec<(String, String)> {
    let mut env = vec![
        ("LIFEBOAT_PLAN".to_string(), plan.to_string()),
        ("LIFEBOAT_RESOURCE".to_string(), resource.to_string()),
    ];
    let mut set = |k: &str, v: String| env.push((format!("LIFEBOAT_RESTORED_{k}"), v));
    match &restored.into {
        RestoredInto::Folder(dir) => set("PATH", dir.display().to_string()),
        RestoredInto::File(file) => {
            set("PATH", file.display().to_string());
            set("DATABASE_URL", format!("sqlite://{}", file.display()));
        }
        RestoredInto::Database {
            name,
            url,
            drill_url,
            ..
        } => {
            if let Ok(u) = super::postgres::database_url(url, drill_url.as_deref(), name) {
                set("DATABASE_URL", u);
            }
        }
        RestoredInto::Objects { url, .. } => {
            if let Some(rest) = url.strip_prefix("s3://") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                set("BUCKET", bucket.to_string());
                set("PREFIX", format!("{}/", prefix.trim_end_matches('/')));
            }
        }
        RestoredInto::Instance { url: Some(url) } => {
            set("DATABASE_URL", url.clone());
            if let Some((_, endpoint)) = url.split_once("://") {
                set("ENDPOINT", endpoint.to_string());
            }
        }
        RestoredInto::Instance { url: None } => {}
    }
    env
}

/// Runs `check` on `restored`, from `dir` (the plan file's folder).
pub async fn run(check: &CommandCheck, env: &[(String, String)], dir: &Path) -> Verdict {
    crate::program::run(&check.argv, env, dir, check.timeout)
        .await
        .map_err(CheckFailed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn check(argv: &[&str], timeout: Duration) -> CommandCheck {
        CommandCheck {
            name: "smoke".into(),
            resource: "files".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout,
        }
    }

    fn folder(dir: &Path) -> Restored {
        Restored {
            verification: String::new(),
            into: RestoredInto::Folder(dir.to_path_buf()),
        }
    }

    #[tokio::test]
    async fn a_command_sees_where_the_restore_is_and_passes_on_exit_0() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("marker"), "x").unwrap();
        let env = environment("shop", "files", &folder(dir.path()));
        let c = check(&["sh", "-c", "echo noise; test -f \"$LIFEBOAT_RESTORED_PATH/marker\" && echo found $LIFEBOAT_RESOURCE"], Duration::from_secs(10));
        assert_eq!(
            run(&c, &env, dir.path()).await.unwrap(),
            "exit 0: noise / found files"
        );
        let c = check(
            &["sh", "-c", "echo missing >&2; exit 3"],
            Duration::from_secs(10),
        );
        assert_eq!(
            run(&c, &env, dir.path()).await.unwrap_err().0,
            "exit 3: missing"
        );
    }

    #[tokio::test]
    async fn a_command_that_hangs_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let env = environment("shop", "files", &folder(dir.path()));
        let c = check(
            &["sh", "-c", "sleep 30 & sleep 30"],
            Duration::from_millis(300),
        );
        let started = std::time::Instant::now();
        let e = run(&c, &env, dir.path()).await.unwrap_err();
        assert!(e.0.contains("did not finish"), "{}", e.0);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_missing_program_is_a_clear_failure() {
        let dir = tempfile::tempdir().unwrap();
        let c = check(&["./no-such-check.sh"], Duration::from_secs(10));
        let e = run(&c, &[], dir.path()).await.unwrap_err();
        assert!(e.0.contains("cannot run `./no-such-check.sh`"), "{}", e.0);
    }
}
