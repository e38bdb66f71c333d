//! The PostgreSQL command-line tools: finding them, their versions, their
//! stderr, and what a dump's table of contents lists.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tracing::debug;

use super::target::CONNECT_TIMEOUT;
use crate::resource::ResourceError;

/// How much of a tool's stderr an error message quotes.
const STDERR_SHOWN: usize = 2000;

/// A PostgreSQL tool: `$LIFEBOAT_PG_BIN/NAME` when that is set (Debian keeps
/// each major version in /usr/lib/postgresql/N/bin), else NAME on the PATH.
pub(super) fn tool(name: &str) -> Command {
    let program = match std::env::var_os("LIFEBOAT_PG_BIN") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join(name),
        _ => name.into(),
    };
    let mut cmd = Command::new(program);
    if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
        cmd.env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT.as_secs().to_string());
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

pub(super) fn tool_missing(name: &str, e: &std::io::Error) -> ResourceError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ResourceError::Source(format!(
            "`{name}` was not found: install the PostgreSQL client tools (e.g. `apt-get install postgresql-client`), \
             of the server's major version or newer, or point LIFEBOAT_PG_BIN at their folder"
        ))
    } else {
        ResourceError::Source(format!("cannot run `{name}`: {e}"))
    }
}

/// `(major, full version text)` of a tool, from `NAME --version`
/// (`pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`).
pub(super) async fn tool_version(name: &str) -> Result<(u32, String), ResourceError> {
    let out = tool(name)
        .arg("--version")
        .output()
        .await
        .map_err(|e| tool_missing(name, &e))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let version = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("");
    let major: String = version.chars().take_while(|c| c.is_ascii_digit()).collect();
    match major.parse() {
        Ok(m) if out.status.success() => Ok((m, version.to_string())),
        _ => Err(ResourceError::Source(format!(
            "cannot tell the version of `{name}` from `{text}`"
        ))),
    }
}

/// Collects the last part of a child's stderr (what explains a failure is
/// at the end), logging every line at debug level.
pub(super) fn collect_stderr(
    stderr: Option<tokio::process::ChildStderr>,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let Some(mut stderr) = stderr else {
            return String::new();
        };
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 64 * 1024 {
                kept.drain(..kept.len() - 32 * 1024);
            }
        }
        let text = String::from_utf8_lossy(&kept).into_owned();
        for line in text.lines() {
            debug!(target: "lifeboat::postgres", "{line}");
        }
        text
    })
}

/// A tool's stderr as one line for a check's detail: its lines joined,
/// the end kept when it is long.
pub(super) fn one_line(stderr: &str) -> String {
    let joined = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.len() <= STDERR_SHOWN {
        return joined;
    }
    let mut start = joined.len() - STDERR_SHOWN;
    while !joined.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &joined[start..])
}

/// The tables a dump (a custom-format file or a directory) holds, from its
/// table of contents (`pg_restore --list`, which reads only the head of a
/// file, or a directory's `toc.dat`).
pub(super) async fn dump_tables(dump: &Path) -> Result<BTreeSet<(String, String)>, ResourceError> {
    let out = tool("pg_restore")
        .arg("--list")
        .arg(dump)
        .output()
        .await
        .map_err(|e| tool_missing("pg_restore", &e))?;
    if !out.status.success() {
        return Err(ResourceError::Source(format!(
            "pg_restore --list failed: {}",
            one_line(&String::from_utf8_lossy(&out.stderr))
        )));
    }
    Ok(parse_toc_tables(&String::from_utf8_lossy(&out.stdout)))
}

/// `215; 1259 16386 TABLE public orders owner` → `(public, orders)`.
fn parse_toc_tables(toc: &str) -> BTreeSet<(String, String)> {
    toc.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let (_, rest) = l.split_once("; ")?;
            let mut parts = rest.splitn(3, ' ');
            let (_, _, desc) = (parts.next()?, parts.next()?, parts.next()?);
            let rest = desc.strip_prefix("TABLE ")?;
            // `TABLE DATA` is a table's rows; `TABLE ATTACH` (PostgreSQL
            // 11+) attaches a partition listed as its own `TABLE` entry.
            if rest.starts_with("DATA ") || rest.starts_with("ATTACH ") {
                return None;
            }
            let (schema, rest) = rest.split_once(' ')?;
            // The owner is the last word; a name may hold spaces.
            let name = rest.rsplit_once(' ').map(|(n, _)| n).unwrap_or(rest);
            Some((schema.to_string(), name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_tables_are_parsed() {
        let toc = ";\n; Archive created at 2026-01-01\n;\n\
            215; 1259 16386 TABLE public orders lifeboat\n\
            216; 1259 16390 SEQUENCE public orders_id_seq lifeboat\n\
            217; 1259 16391 TABLE sales order lines lifeboat\n\
            3350; 0 16386 TABLE DATA public orders lifeboat\n\
            3200; 0 0 TABLE ATTACH public orders lifeboat\n\
            3201; 1259 16400 INDEX public orders_total lifeboat\n";
        let t = parse_toc_tables(toc);
        assert_eq!(
            t.into_iter().collect::<Vec<_>>(),
            vec![
                ("public".to_string(), "orders".to_string()),
                ("sales".to_string(), "order lines".to_string())
            ]
        );
    }
}
