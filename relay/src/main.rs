//! `map-relay`: see the `map_relay` library; this binary is only its CLI.
/// mimalloc returns the memory of unloaded plans to the system (glibc's
/// allocator kept it: measured with `map-load` at-rest, see
/// docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    map_relay::cli::main()
}
