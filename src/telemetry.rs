//! The tracing subscriber, built and installed once: human-readable by
//! default, JSON lines with `--log-format json`, always on stderr. Colours
//! only on a terminal, and never when `NO_COLOR` is set (no-color.org).

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
        .with_ansi(colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR"),
        ))
        .with_writer(std::io::stderr);
    // try_init: a second initialisation (tests) is not an error worth dying for.
    let _ = match format {
        LogFormat::Pretty => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Whether log lines get ANSI colours: on a terminal, unless `NO_COLOR`
/// is set to anything but an empty string (https://no-color.org).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn colours_only_on_a_terminal_and_never_under_no_color() {
        let set = |v: &str| Some(std::ffi::OsString::from(v));
        assert!(super::colour(true, None));
        assert!(!super::colour(false, None));
        assert!(!super::colour(true, set("1")));
        assert!(!super::colour(true, set("false")), "any value counts");
        assert!(super::colour(true, set("")), "an empty value does not");
    }
}
