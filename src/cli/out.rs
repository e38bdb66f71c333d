//! Standard output that never panics. `println!` panics when the reader
//! has gone (`lifeboat points list | head -1`, `drill run … | true`): the
//! panic would cut the command short, before it records its outcome or
//! sends its notifications. Here a closed stdout is not the command's
//! failure: the rest of its output is dropped, the command finishes its
//! work, and its exit code says how that went.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout could not be written: later output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout (the `out!` and `outln!` macros call this).
pub fn write(args: std::fmt::Arguments) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        // A reader that stopped reading is normal (`| head`); anything
        // else (a full disk behind `> file`) is worth one line.
        if e.kind() != ErrorKind::BrokenPipe {
            eprintln!("lifeboat: cannot write to standard output ({e}); the rest of the output is dropped");
        }
    }
}
