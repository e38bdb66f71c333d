//! The tracing subscriber, built and installed once: human-readable by
//! default, JSON lines with `--log-format json`, always on stderr.

use tracing_subscriber::EnvFilter;

/// `--log-format`: how log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One compact human-readable line per event (colours on a terminal).
    Pretty,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

/// `verbosity` 0 = warnings, 1 = info, 2+ = debug; `RUST_LOG` overrides.
pub fn init(format: LogFormat, verbosity: u8) {
    let default = match verbosity {
        0 => "warn",
        1 => "warn,lifeboat=info",
        _ => "info,lifeboat=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // try_init: a second initialisation (tests) is not an error worth dying for.
    let _ = match format {
        LogFormat::Pretty => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
