//! Replays the `frames` fuzz corpus and every crash the fuzzer found
//! (`fuzz/`) on stable, with the very code the fuzz target runs
//! (`fuzz/checks/frames.rs`, included below): the relay's handling of one
//! incoming frame (wire decode, automerge sync decode and apply), so the
//! corpus is a regression suite. `plan_load` and `dates_filters` are
//! replayed in `crates/map-model/tests/fuzz_regressions.rs`.
//!
//! To refresh the seed inputs after a protocol change:
//! `cargo test -p map-sync --test fuzz_regressions -- --ignored write_seeds`.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/checks/frames.rs"]
mod frames;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file under `fuzz/corpus/frames` and `fuzz/regressions/frames`.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("readable fuzz input");
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn frames_corpus_and_regressions() {
    let inputs = inputs("frames");
    assert!(!inputs.is_empty(), "no inputs for fuzz target frames");
    for (path, bytes) in inputs {
        let result = std::panic::catch_unwind(|| frames::run(&bytes));
        assert!(result.is_ok(), "fuzz input {} panics", path.display());
    }
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus; run by hand"]
fn write_seeds() {
    let dir = fuzz_dir().join("corpus/frames");
    std::fs::create_dir_all(&dir).expect("create corpus directory");
    for (name, bytes) in frames::seeds() {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}
