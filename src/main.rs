//! `lifeboat`: parse, init telemetry, run the command, map errors to exit codes.

// The futures of `demo` (a backup, then a drill, each a pipeline of
// phases over every kind's steps) nest deeper than rustc's default limit
// for computing their layout.
#![recursion_limit = "256"]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // No panic should reach a user; if one does, say so in one line.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("lifeboat: internal error: {info} (this is a bug; please report it)");
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Usage errors: clap's whole message (what is wrong, the usage
            // line, a "did you mean" tip), exit 2.
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    private_files(cli.group_readable);
    fewer_malloc_arenas(cli.command.is_long_running());
    // The daemon's log is its story: info by default.
    let verbosity = if cli.command.is_long_running() {
        cli.verbose.max(1)
    } else {
        cli.verbose
    };
    lifeboat::telemetry::init(cli.log_format, verbosity);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let message = one_line(&e);
            eprintln!("error: {message}");
            if e.downcast_ref::<cli::BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Everything Lifeboat creates (vault artifacts and manifests, the
/// catalog, the work folder, what a drill restores before it applies the
/// recorded modes) is for its own user, or its group when asked: a 0600
/// source file must not become readable by every local user through a
/// vault. The umask is the one place every file and folder, ours or a
/// child's (pg_dump), is created through. Set before any thread starts.
fn private_files(group_readable: bool) {
    let mask = if group_readable { 0o027 } else { 0o077 };
    // SAFETY: umask only swaps the process's file creation mask; no
    // memory is involved, and no other thread exists yet.
    unsafe {
        libc::umask(mask);
    }
}

/// A long-running process (the daemon, `demo`) spreads its file work
/// over tokio's blocking threads, and glibc gives each thread that
/// allocates an arena of its own (up to eight per core), which it rarely
/// hands back: at 1,000 plans the daemon held 107–117 MiB, and 78–80 MiB
/// with two arenas (`bench/daemon_scale.sh`, BENCHMARKS.md). Commands that
/// end soon keep glibc's default, and an operator's `MALLOC_ARENA_MAX`
/// wins. Set before any thread starts.
fn fewer_malloc_arenas(long_running: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if long_running && std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only tunes glibc's allocator, and no other
        // thread exists yet to be allocating meanwhile.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = long_running;
}

/// The error and its causes on one line. Most of our errors already quote
/// their cause in their own message (so logs, which print only the top
/// error, are complete): a cause already said is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("catalog x.db: cannot apply migrations: {source}")]
    struct Quoting {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let e = anyhow::Error::new(Quoting {
            source: std::io::Error::other("migration 5 was modified"),
        });
        assert_eq!(
            one_line(&e),
            "catalog x.db: cannot apply migrations: migration 5 was modified"
        );
        let e = anyhow::anyhow!("disk full\nretry later").context("writing the manifest");
        assert_eq!(one_line(&e), "writing the manifest: disk full retry later");
    }
}
