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
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{CheckFailed, Restored, RestoredInto, Verdict};
use crate::plan::CommandCheck;

/// The output kept as the check's detail: its last lines, at most this
/// many bytes.
const DETAIL_BYTES: usize = 600;
/// Output read beyond this is dropped (only the tail is kept).
const TAIL_BYTES: usize = 64 * 1024;

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
    let Some((program, args)) = check.argv.split_first() else {
        return Err(CheckFailed("the check names no program".into()));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        CheckFailed(format!(
            "cannot run `{program}` (from {}): {e}",
            dir.display()
        ))
    })?;
    let pid = child.id();
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let read = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (ra, rb) = tokio::join!(
            read_tail(out.as_mut(), &mut a),
            read_tail(err.as_mut(), &mut b)
        );
        let _ = (ra, rb);
        a.extend_from_slice(&b);
        a
    };
    let finished = tokio::time::timeout(check.timeout, async {
        let (output, status) = tokio::join!(read, child.wait());
        (output, status)
    })
    .await;
    match finished {
        Err(_) => {
            kill_group(pid);
            let _ = child.kill().await;
            Err(CheckFailed(format!(
                "`{program}` did not finish within {}: killed",
                humantime::format_duration(Duration::from_secs(check.timeout.as_secs()))
            )))
        }
        Ok((output, Err(e))) => Err(CheckFailed(format!(
            "waiting for `{program}`: {e}; {}",
            tail(&output)
        ))),
        Ok((output, Ok(status))) if status.success() => Ok(format!("exit 0: {}", tail(&output))),
        Ok((output, Ok(status))) => Err(CheckFailed(format!(
            "{}: {}",
            describe(status),
            tail(&output)
        ))),
    }
}

/// Reads everything from `r`, keeping only the last [`TAIL_BYTES`].
async fn read_tail<R: tokio::io::AsyncRead + Unpin>(r: Option<&mut R>, into: &mut Vec<u8>) {
    let Some(r) = r else { return };
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        into.extend_from_slice(&buf[..n]);
        if into.len() > 2 * TAIL_BYTES {
            into.drain(..into.len() - TAIL_BYTES);
        }
    }
}

/// The last non-empty lines of the output, to at most [`DETAIL_BYTES`].
fn tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return "no output".into();
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut size = 0;
    for l in lines.iter().rev() {
        if size + l.len() > DETAIL_BYTES && !kept.is_empty() {
            break;
        }
        size += l.len() + 3;
        kept.push(l);
    }
    kept.reverse();
    let joined = kept.join(" / ");
    if joined.len() <= DETAIL_BYTES {
        return joined;
    }
    let mut start = joined.len() - DETAIL_BYTES;
    while !joined.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &joined[start..])
}

/// `exit 3`, or `killed by signal 9`.
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// Kills the check's whole process group (what it started, too).
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill has no memory effects; a negative pid names the
        // process group the child leads (process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn the_detail_is_the_tail_of_the_output() {
        let long: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let t = tail(long.as_bytes());
        assert!(
            t.ends_with("line 199") && t.len() <= DETAIL_BYTES + 3,
            "{t}"
        );
        assert_eq!(tail(b"\n\n"), "no output");
    }
}
