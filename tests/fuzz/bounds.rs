//! The bounds every fuzz case runs under: its own thread, a time limit, and
//! an allocator that measures, per thread, the largest single allocation
//! and the most memory live at once. A case that panics, hangs or
//! allocates without bound fails with its input named.
//!
//! Shared by the plan fuzzing (`tests/fuzz`) and the CLI fuzzing (the
//! binary's unit tests, `src/cli/fuzz.rs`, which include this file): each
//! binary gets its own counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::mpsc;
use std::time::Duration;

/// A case taking longer than this hangs: the slowest plan (a schedule
/// firing every second, whose gaps validation measures over a day) takes
/// well under a second in a debug build on a busy machine.
pub const CASE_TIME: Duration = Duration::from_secs(10);

/// No single allocation may be larger: a plan file is at most 1 MiB.
pub const MAX_ONE_ALLOCATION: usize = 64 << 20;

/// At most this much memory live at once in a case's thread.
pub const MAX_LIVE: usize = 256 << 20;

thread_local! {
    /// Whether this thread's allocations are measured (a case's thread).
    static MEASURED: Cell<bool> = const { Cell::new(false) };
    /// Bytes allocated and not yet freed by this thread (frees of memory
    /// another thread allocated can make it dip below zero).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The most `LIVE` has been.
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// The largest single allocation.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, measuring the threads that ask for it.
pub struct Counting;

fn grew(size: usize) {
    let _ = MEASURED.try_with(|m| {
        if m.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
            let _ = LIVE.try_with(|live| {
                let now = live.get().saturating_add(size as isize);
                live.set(now);
                let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
            });
        }
    });
}

fn shrank(size: usize) {
    let _ = MEASURED.try_with(|m| {
        if m.get() {
            let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size as isize)));
        }
    });
}

// SAFETY: every call is passed to the system allocator unchanged; the
// counting only touches const-initialised thread-locals without
// destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller's layout, as the trait requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrank(layout.size());
        grew(new_size);
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What a case allocated.
#[derive(Debug, Clone, Copy)]
struct Usage {
    largest_allocation: usize,
    peak_live: usize,
}

/// Runs `case` in its own thread and returns its result, or panics naming
/// `what` when the case panicked, ran past [`CASE_TIME`] (the thread is
/// left behind: a hang cannot be stopped from outside) or allocated past
/// [`MAX_ONE_ALLOCATION`] or [`MAX_LIVE`].
pub fn bounded<T: Send + 'static>(what: &str, case: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("fuzz-case".into())
        .spawn(move || {
            MEASURED.with(|m| m.set(true));
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(case));
            let usage = Usage {
                largest_allocation: LARGEST.with(Cell::get),
                peak_live: PEAK.with(Cell::get).max(0) as usize,
            };
            MEASURED.with(|m| m.set(false));
            let _ = tx.send((result, usage));
        });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => panic!("{what}: cannot start the case's thread: {e}"),
    };
    match rx.recv_timeout(CASE_TIME) {
        Ok((result, usage)) => {
            let _ = handle.join();
            let value = match result {
                Ok(v) => v,
                Err(payload) => {
                    let message = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panic!("{what}: panicked: {message}");
                }
            };
            assert!(
                usage.largest_allocation <= MAX_ONE_ALLOCATION,
                "{what}: one allocation of {} bytes",
                usage.largest_allocation
            );
            assert!(
                usage.peak_live <= MAX_LIVE,
                "{what}: {} bytes live at once",
                usage.peak_live
            );
            value
        }
        Err(_) => panic!("{what}: still running after {CASE_TIME:?} (a hang)"),
    }
}

/// How many generated cases a property runs: a few seconds' worth in the
/// test suite; `PROPTEST_CASES=100000` for a long run.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A short printable rendering of an input for failure messages.
pub fn shown(input: &[u8]) -> String {
    const MAX: usize = 2000;
    let text = String::from_utf8_lossy(&input[..input.len().min(MAX)]);
    let more = if input.len() > MAX {
        format!(" … ({} bytes in all)", input.len())
    } else {
        String::new()
    };
    format!("{text:?}{more}")
}
