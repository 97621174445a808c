//! `map-relay`: see the `map_relay` library; this binary is only its CLI.
fn main() -> std::process::ExitCode {
    map_relay::cli::main()
}
