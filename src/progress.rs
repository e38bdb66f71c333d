//! Progress bars for long backups and restores: shown when stderr is a
//! terminal, silent otherwise (CI logs, pipes, the daemon).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether bars are shown at all: work done only for a bar (a total
/// counted first) can be skipped when they are not.
pub fn visible() -> bool {
    std::io::stderr().is_terminal()
}

/// A byte-counting bar (or spinner when the total is unknown).
pub fn bytes(message: impl Into<String>, total: Option<u64>) -> ProgressBar {
    if !visible() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
    } else {
        "{spinner} {msg:30} {bytes} {bytes_per_sec} {elapsed}"
    };
    // The templates are constants known to be valid.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.into());
    bar
}

/// A spinner with the time elapsed, for waits whose end no one can
/// predict (an RDS instance becoming available, `pg_restore` running):
/// the message can be updated with what is being waited on.
pub fn waiting(message: impl Into<String>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(message.into());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
