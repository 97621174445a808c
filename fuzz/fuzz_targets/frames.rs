//! Fuzz target `frames`: see `../checks/frames.rs` for what it checks. The same
//! code replays the corpus and the regressions in the normal test suite.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/frames.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::run(data));
