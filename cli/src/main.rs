//! `map`: the command-line client of a local-first Mutual Action Plan.
//!
//! This file only parses the command line, runs the command and turns the
//! outcome into an exit code (0 ok, 1 user error, 2 usage error, 3 network).
//! A panic never shows a backtrace: a hook prints one short line instead.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod context;
mod error;
mod export;
mod import;
mod net;
mod plans;
mod render;

use std::process::ExitCode;

use clap::Parser;

/// Loading a plan's Automerge document allocates heavily; mimalloc makes
/// that cheaper than the system allocator for a short-lived process
/// (`cli-speed` in bench/ measures it).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: map hit an internal error{place}; nothing was changed");
        eprintln!("hint: please report this bug with the command you ran");
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(error::EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commands::run(cli))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            e.print();
            ExitCode::from(e.exit_code())
        }
        Err(_) => ExitCode::from(error::EXIT_USER),
    }
}
