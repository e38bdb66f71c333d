//! Running a program an operator wrote: a command check on restored data
//! (`[[drill.checks]] command`) or a hook around a backup (`[backup]
//! before` / `after`). One runner, so both behave alike.
//!
//! The program runs without a shell, from the folder given (the plan
//! file's), in its own process group (a timeout kills it and whatever it
//! started), with Lifeboat's environment plus what the caller adds. Its
//! output (stdout and stderr) is kept only as its last lines, which become
//! the check's or the hook's detail.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// The output kept as the detail: its last lines, at most this many bytes.
const DETAIL_BYTES: usize = 600;
/// Output read beyond this is dropped (only the tail is kept).
const TAIL_BYTES: usize = 64 * 1024;

/// Runs `argv` from `dir` with `env` added to Lifeboat's environment,
/// for at most `timeout`: on exit 0, `exit 0: ` and the output's last
/// lines; else what went wrong (exit status, signal, timeout, cannot
/// start) and the output's last lines.
pub async fn run(
    argv: &[String],
    env: &[(String, String)],
    dir: &Path,
    timeout: Duration,
) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("no program named".into());
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
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{program}` (from {}): {e}", dir.display()))?;
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
    let finished = tokio::time::timeout(timeout, async {
        let (output, status) = tokio::join!(read, child.wait());
        (output, status)
    })
    .await;
    match finished {
        Err(_) => {
            kill_group(pid);
            let _ = child.kill().await;
            Err(format!(
                "`{program}` did not finish within {}: killed",
                humantime::format_duration(Duration::from_secs(timeout.as_secs()))
            ))
        }
        Ok((output, Err(e))) => Err(format!("waiting for `{program}`: {e}; {}", tail(&output))),
        Ok((output, Ok(status))) if status.success() => Ok(format!("exit 0: {}", tail(&output))),
        Ok((output, Ok(status))) => Err(format!("{}: {}", describe(status), tail(&output))),
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
