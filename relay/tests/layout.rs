//! The relay binary is linked with its hot code first (`relay/build.rs`):
//! a dependency update that renamed every function in `hot-symbols.txt`
//! would silently give the memory back, so this checks that the list still
//! matches the code.

#![cfg(target_os = "linux")]

use object::{Object, ObjectSection};

#[test]
fn the_hot_code_section_holds_the_listed_functions() {
    if std::env::var_os("MAP_RELAY_PLAIN_LAYOUT").is_some() {
        eprintln!("MAP_RELAY_PLAIN_LAYOUT is set: the relay is linked without hot-code layout");
        return;
    }
    let path = env!("CARGO_BIN_EXE_map-relay");
    let bytes = std::fs::read(path).expect("reading the map-relay binary");
    let file = object::File::parse(&*bytes).expect("map-relay is an object file");
    let hot = file
        .section_by_name(".text.relay_hot")
        .expect("no .text.relay_hot section: relay/build.rs did not lay the hot code out");
    let text = file.section_by_name(".text").expect("a .text section");
    // About 3.4 MiB of 8.8 MiB in a release build when the list is current;
    // far less means most names no longer match: run bench/hot-symbols.sh.
    assert!(
        hot.size() >= 1024 * 1024,
        ".text.relay_hot holds {} bytes: relay/hot-symbols.txt is stale, run bench/hot-symbols.sh",
        hot.size()
    );
    assert!(
        hot.address() < text.address(),
        "the hot code comes before the rest"
    );
}
