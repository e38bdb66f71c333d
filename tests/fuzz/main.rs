//! Fuzzing the plan parser: the corpus replayed, then generated plans —
//! real plans edited as TOML trees and as raw bytes — each validated under
//! a time and memory bound (`bounds`) and checked (`check`): no panic, no
//! hang, no unbounded allocation, and every rejection an error at
//! `FILE:LINE:COL`.
//!
//! The suite runs a few seconds of cases; `PROPTEST_CASES=20000 cargo test
//! --test fuzz` runs longer (docs/fuzzing.md). An input that fails goes
//! into `tests/fuzz/corpus/plans/` once fixed, so it is replayed forever.
//! The command line is fuzzed by the binary's own tests (`src/cli/fuzz.rs`).

mod bounds;
mod check;
mod mutate;

use proptest::prelude::*;
use proptest::test_runner::Config;

use mutate::{apply, apply_bytes, byte_edit, corpus_dir, edit, toml_files, SEEDS};

fn config(default_cases: u32) -> Config {
    Config {
        cases: bounds::cases(default_cases),
        // Inputs worth keeping go into the corpus by hand, named for what
        // they found; shrinking a hang would take a case's time limit per
        // step, so it stays short.
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    }
}

#[test]
fn the_corpus_replays_without_panic_hang_or_unplaced_error() {
    let files = toml_files(&corpus_dir());
    assert!(files.len() >= 10, "the corpus lost its files: {files:?}");
    for (path, bytes) in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        check::plan_file(bytes.clone());
        if let Ok(text) = String::from_utf8(bytes) {
            check::plan_text(text.clone());
            // The seeds are the valid plans mutation starts from.
            if name.starts_with("seed-") {
                if let Err(e) = lifeboat::plan::load_file(&path) {
                    panic!("{name} must be a valid plan: {:?}", e.diagnostics);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn edited_plans_are_validated_or_rejected_at_a_position(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        check::plan_text(apply(&SEEDS[seed], &edits));
    }

    #[test]
    fn plan_files_with_edited_bytes_are_validated_or_rejected_at_a_position(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec(byte_edit(), 1..10),
    ) {
        check::plan_file(apply_bytes(&SEEDS[seed], &edits));
    }
}
