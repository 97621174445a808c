//! Replays the fuzz corpora and every crash the fuzzers found (`fuzz/`) on
//! stable, with the very code the fuzz targets run (`fuzz/checks/*.rs`,
//! included below), so the corpus is a regression suite.
//!
//! Targets replayed here: `plan_load` (load a peer's plan and derive its
//! view, conflicts and history) and `dates_filters` (the CLI's date and
//! filter parsing). The relay's `frames` target is replayed in
//! `crates/map-sync/tests/fuzz_regressions.rs`.
//!
//! To refresh the seed inputs after a schema or template change:
//! `cargo test -p map-model --test fuzz_regressions -- --ignored write_seeds`.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/checks/plan_load.rs"]
mod plan_load;

#[path = "../../../fuzz/checks/dates_filters.rs"]
mod dates_filters;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file under `fuzz/corpus/<target>` and `fuzz/regressions/<target>`.
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

fn replay(target: &str, run: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no inputs for fuzz target {target}");
    for (path, bytes) in inputs {
        let result = std::panic::catch_unwind(|| run(&bytes));
        assert!(result.is_ok(), "fuzz input {} panics", path.display());
    }
}

#[test]
fn plan_load_corpus_and_regressions() {
    replay("plan_load", plan_load::run);
}

#[test]
fn dates_filters_corpus_and_regressions() {
    replay("dates_filters", dates_filters::run);
}

fn write(target: &str, seeds: Vec<(String, Vec<u8>)>) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create corpus directory");
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus; run by hand"]
fn write_seeds() {
    write("plan_load", plan_load::seeds());
    write("dates_filters", dates_filters::seeds());
}
