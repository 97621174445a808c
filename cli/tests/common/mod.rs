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

/// Every id in a `map show --json` view paired with a stable label: `PLAN`
/// for the plan, then `T1`, `M1`, ... for the items of each `(key, tag)`
/// kind, in the view's order.
pub fn id_labels(view: &serde_json::Value, kinds: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    if let Some(id) = view["id"].as_str() {
        labels.push((id.to_string(), "PLAN".to_string()));
    }
    for (key, tag) in kinds {
        if let Some(items) = view[*key].as_array() {
            for (i, item) in items.iter().enumerate() {
                if let Some(id) = item["id"].as_str() {
                    labels.push((id.to_string(), format!("{tag}{}", i + 1)));
                }
            }
        }
    }
    labels
}

/// Replace ids in `text` (the plan's whole, items' as prefixes of 4 to 12
/// characters) with their `[LABEL]`s.
pub fn redact_ids(text: &str, labels: &[(String, String)]) -> String {
    let mut s = text.to_string();
    for (id, label) in labels {
        if label == "PLAN" {
            s = s.replace(id.as_str(), "[PLAN]");
            continue;
        }
        let re = regex::Regex::new(&format!(r"\b{}[a-z2-7]{{0,8}}\b", &id[..4])).expect("regex");
        s = re
            .replace_all(&s, format!("[{label}]").as_str())
            .into_owned();
    }
    s
}
