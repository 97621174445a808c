//! `map demo`: a seller and a buyer share one plan through a relay, edit it
//! concurrently while "offline", sync and converge — the README's first
//! command.
//!
//! Everything is temporary and local: a `map_relay` relay runs inside this
//! process on a free loopback port (its SQLite file in a temporary
//! directory), and each participant is this same executable run as a child
//! process with its own temporary `MAP_HOME`, exactly as a user would run
//! `map`. Each step is narrated (`== ... ==`) with the command line and its
//! output. Nothing needs configuring; the temporary files are removed at the
//! end, also when a step fails.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use map_model::PlanView;

use crate::context::Context;
use crate::error::{CliError, Result};

/// `map demo`.
pub fn run(_ctx: &mut Context) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("map-demo-")
        .tempdir()
        .map_err(|e| CliError::user(format!("cannot create a temporary directory: {e}")))?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::user(format!("cannot find the map executable: {e}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::user(format!("cannot start the demo relay: {e}")))?;

    let relay = map_relay::Relay::open(map_relay::RelayConfig::new(dir.path().join("relay.db")))
        .map_err(|e| CliError::user(format!("cannot open the demo relay's database: {e}")))?;
    let token = relay
        .add_user("dana")
        .map_err(|e| CliError::user(format!("cannot create the demo relay's user: {e}")))?;
    let bound = rt
        .block_on(relay.bind("127.0.0.1:0"))
        .map_err(|e| CliError::network(format!("cannot start the demo relay on 127.0.0.1: {e}")))?;
    let url = bound.url();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = rt.spawn(bound.serve(async {
        let _ = stop_rx.await;
    }));

    let demo = Demo {
        exe,
        seller: dir.path().join("seller"),
        buyer: dir.path().join("buyer"),
    };
    let result = demo.script(&url, &token);

    let _ = stop_tx.send(());
    let _ = rt
        .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(10), served).await });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    drop(dir);
    result
}

struct Demo {
    exe: PathBuf,
    seller: PathBuf,
    buyer: PathBuf,
}

/// Who runs a command.
#[derive(Clone, Copy)]
enum Who {
    Seller,
    Buyer,
}

impl Who {
    fn label(self) -> &'static str {
        match self {
            Who::Seller => "seller",
            Who::Buyer => "buyer",
        }
    }
}

fn out(line: &str) -> Result<()> {
    let mut o = anstream::stdout().lock();
    writeln!(o, "{line}").map_err(|e| crate::error::io_error("cannot write output", e))
}

fn step(title: &str) -> Result<()> {
    out("")?;
    out(&format!("== {title} =="))
}

impl Demo {
    fn home(&self, who: Who) -> &Path {
        match who {
            Who::Seller => &self.seller,
            Who::Buyer => &self.buyer,
        }
    }

    /// Run `map ARGS` as `who`, narrate it and return its stdout. `shown`
    /// replaces the arguments in the narration (to hide a token).
    fn map_shown<S: AsRef<OsStr>>(
        &self,
        who: Who,
        args: &[S],
        shown: Option<&str>,
    ) -> Result<String> {
        let printed = match shown {
            Some(s) => s.to_string(),
            None => args
                .iter()
                .map(|a| {
                    let a = a.as_ref().to_string_lossy();
                    if a.contains(' ') {
                        format!("\"{a}\"")
                    } else {
                        a.into_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        };
        out(&format!("{}$ map {printed}", who.label()))?;
        let output = Command::new(&self.exe)
            .args(args)
            .env("MAP_HOME", self.home(who))
            .env_remove("MAP_PLAN")
            .output()
            .map_err(|e| CliError::user(format!("cannot run {}: {e}", self.exe.display())))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        for l in stdout.lines().chain(stderr.lines()) {
            out(&format!("    {l}"))?;
        }
        if !output.status.success() {
            let code = output.status.code().unwrap_or(1);
            let msg = format!("the demo step `map {printed}` failed (exit {code})");
            return Err(if code == 3 {
                CliError::network(msg)
            } else {
                CliError::user(msg)
            }
            .hint("this is a bug in map demo; please report it with the output above"));
        }
        Ok(stdout)
    }

    fn map<S: AsRef<OsStr>>(&self, who: Who, args: &[S]) -> Result<String> {
        self.map_shown(who, args, None)
    }

    /// The plan as `who` has it (quietly).
    fn view(&self, who: Who) -> Result<PlanView> {
        let output = Command::new(&self.exe)
            .args(["show", "--json"])
            .env("MAP_HOME", self.home(who))
            .output()
            .map_err(|e| CliError::user(format!("cannot run {}: {e}", self.exe.display())))?;
        serde_json::from_slice(&output.stdout)
            .map_err(|e| CliError::user(format!("the demo could not read `map show --json`: {e}")))
    }

    fn script(&self, url: &str, token: &str) -> Result<()> {
        use Who::{Buyer, Seller};
        out("map demo: a seller and a buyer share one Mutual Action Plan through a relay.")?;
        out(&format!(
            "A relay runs inside this process at {url}; each side has its own temporary database."
        ))?;

        step("the seller (Dana) creates a plan from the saas template")?;
        self.map(
            Seller,
            &[
                "identity",
                "set",
                "--name",
                "Dana Seller",
                "--email",
                "dana@vendor.example",
                "--side",
                "seller",
            ],
        )?;
        self.map(
            Seller,
            &[
                "init",
                "Acme rollout",
                "--template",
                "saas",
                "--go-live",
                "+12w",
            ],
        )?;
        self.map(
            Seller,
            &[
                "person",
                "add",
                "Ana Buyer",
                "--email",
                "ana@acme.example",
                "--side",
                "buyer",
                "--role",
                "champion",
            ],
        )?;
        self.map(
            Seller,
            &[
                "person",
                "add",
                "Dana Seller",
                "--email",
                "dana@vendor.example",
                "--side",
                "seller",
                "--role",
                "account executive",
            ],
        )?;

        step("the seller pushes the plan to the relay and invites the buyer")?;
        self.map_shown(
            Seller,
            &["remote", "add", "origin", url, "--token", token],
            Some(&format!("remote add origin {url} --token <dana's token>")),
        )?;
        self.map(Seller, &["sync"])?;
        let invite = self.map(
            Seller,
            &[
                "share",
                "--access",
                "rw",
                "--side",
                "buyer",
                "--expires",
                "7d",
            ],
        )?;
        let invite = invite.trim().to_string();

        step("the buyer (Ana) joins with the invite; she never touched the relay")?;
        self.map(
            Buyer,
            &[
                "identity",
                "set",
                "--name",
                "Ana Buyer",
                "--email",
                "ana@acme.example",
                "--side",
                "buyer",
            ],
        )?;
        self.map(Buyer, &["join", &invite])?;

        step("seller and buyer edit offline, at the same time")?;
        let view = self.view(Seller)?;
        let same = view
            .tasks
            .iter()
            .find(|t| t.title == "InfoSec approval")
            .or_else(|| view.tasks.first())
            .ok_or_else(|| CliError::user("the demo plan has no tasks"))?;
        let same_id = same.id.chars().take(6).collect::<String>();
        self.map(Seller, &["task", "edit", &same_id, "--due", "+20d"])?;
        self.map(Buyer, &["task", "edit", &same_id, "--due", "+24d"])?;
        self.map(
            Seller,
            &[
                "task",
                "add",
                "Send pricing proposal",
                "--owner",
                "dana",
                "--due",
                "+5d",
            ],
        )?;
        self.map(
            Buyer,
            &[
                "task",
                "add",
                "Internal budget approval",
                "--owner",
                "ana",
                "--due",
                "+10d",
            ],
        )?;
        if let Some(first) = view.milestones.first() {
            out(&format!(
                "(the seller completes every task of milestone '{}')",
                first.title
            ))?;
            for t in view
                .tasks
                .iter()
                .filter(|t| t.milestone.as_deref() == Some(first.id.as_str()))
            {
                let id = t.id.chars().take(6).collect::<String>();
                self.map(Seller, &["task", "done", &id])?;
            }
        }

        step("both sync: seller, buyer, then seller again")?;
        self.map(Seller, &["sync"])?;
        self.map(Buyer, &["sync"])?;
        self.map(Seller, &["sync"])?;

        step("the converged plan, as the buyer sees it")?;
        self.map(Buyer, &["show"])?;

        step("its history, newest first")?;
        self.map(Buyer, &["log", "-n", "12"])?;

        step("what both changed at once (both values are kept; one is shown)")?;
        self.map(Buyer, &["conflicts"])?;

        let (s, b) = (self.view(Seller)?, self.view(Buyer)?);
        step("done")?;
        if s.heads == b.heads && s == b {
            out(&format!(
                "seller and buyer hold the same plan ({} head{}, {} tasks); the temporary relay and databases are removed.",
                s.heads.len(),
                if s.heads.len() == 1 { "" } else { "s" },
                s.tasks.len()
            ))?;
            out("Try it for real: see \"Sharing a plan through a relay\" in the README.")
        } else {
            Err(CliError::network("seller and buyer did not converge")
                .hint("this is a bug; please report it with the output above"))
        }
    }
}
