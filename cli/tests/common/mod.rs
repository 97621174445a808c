//! What every CLI test file needs: run the real `map` binary in a given
//! `MAP_HOME` with the clock pinned and colours off, and show its output as
//! a user sees it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The output of one run.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stdout, then stderr, then the exit code: what a user sees.
    pub fn seen(&self) -> String {
        let mut s = self.stdout.clone();
        if !self.stderr.is_empty() {
            s += "--- stderr ---\n";
            s += &self.stderr;
        }
        s += &format!("--- exit {} ---\n", self.code);
        s
    }
}

/// Runs `map ARGS` with `MAP_HOME=home`, `MAP_TODAY=today`, `MAP_NOW=now`.
pub fn run_map(home: &Path, today: &str, now: &str, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_map"))
        .args(args)
        .env("MAP_HOME", home)
        .env("MAP_TODAY", today)
        .env("MAP_NOW", now)
        .env("NO_COLOR", "1")
        .env("USER", "tester")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run map");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
