//! `map log` (the change history, from the history cache: who, when, what;
//! with `--verified`, also who the plan's relay says delivered each change,
//! see [`crate::commands::verify`]) and `map conflicts` (fields that concurrent edits left with several
//! values; this one loads the document).

use chrono::DateTime;
use map_model::PlanDoc;
use serde::Serialize;

use crate::cli::LogArgs;
use crate::commands::verify::{self, Status};
use crate::commands::{print_json, say};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::plans;
use crate::render;

/// One change in `map log --json`.
#[derive(Debug, Serialize)]
pub struct LogEntry {
    /// Change hash (hex).
    pub hash: String,
    /// `Name <email>` of the author, if recorded.
    pub author: Option<String>,
    /// Time as RFC 3339 (UTC).
    pub time: String,
    /// Time in ms since the epoch.
    pub time_ms: i64,
    /// What changed.
    pub message: Option<String>,
}

/// One change in `map log --verified --json`.
#[derive(Debug, Serialize)]
pub struct VerifiedEntry {
    /// The change as in `map log --json`.
    #[serde(flatten)]
    pub entry: LogEntry,
    /// The relay user who first delivered it, if the relay has it.
    pub deliverer: Option<String>,
    /// When the relay stored it (RFC 3339), if it has it.
    pub delivered_at: Option<String>,
    /// `verified`, `relayed`, `flagged`, `unconfirmed` or `unclaimed`.
    pub status: Status,
    /// Whether the deliverer is neither the claimed author nor relaying for them.
    pub flagged: bool,
}

/// Format ms since the epoch as RFC 3339 UTC (seconds).
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "?".to_string())
}

/// `map log`.
pub fn log(ctx: &mut Context, args: LogArgs) -> Result<()> {
    if args.verified {
        return log_verified(ctx, args);
    }
    let plan_arg = ctx.plan_arg.clone();
    let rows = ctx.store()?.read(|tx| {
        let row = plans::target_plan(tx, plan_arg.as_deref())?;
        Ok::<_, CliError>(tx.history(&row.id, args.limit)?)
    })?;
    let entries: Vec<LogEntry> = rows
        .iter()
        .map(|r| LogEntry {
            hash: r.hash.to_string(),
            author: r.author.clone(),
            time: rfc3339(r.time_ms),
            time_ms: r.time_ms,
            message: r.message.clone(),
        })
        .collect();
    if args.json {
        return print_json(&entries);
    }
    if entries.is_empty() {
        return say(&["no changes yet".to_string()]);
    }
    say(&[render::log(&entries)])
}

/// `map log --verified`: the relay's delivery records beside the history.
/// The plan's relay is `origin` if the plan is there, else the first remote
/// it is on. Exit 1 if it is on none, 3 if the relay cannot be asked.
fn log_verified(ctx: &mut Context, args: LogArgs) -> Result<()> {
    let plan_arg = ctx.plan_arg.clone();
    let (plan, rows, remote) = ctx.store()?.read(|tx| {
        let row = plans::target_plan(tx, plan_arg.as_deref())?;
        // Every change: the first deliverer of an identity may be an old one.
        let rows = tx.history(&row.id, usize::MAX)?;
        let names = tx.remotes_of_plan(&row.id)?;
        let name = names
            .iter()
            .find(|n| n.as_str() == "origin")
            .or_else(|| names.first());
        let remote = match name {
            Some(n) => tx.remote(n)?,
            None => None,
        };
        Ok::<_, CliError>((row.id, rows, remote))
    })?;
    let remote = remote.ok_or_else(|| {
        CliError::user(format!(
            "plan {plan} is on no relay, so nothing can verify its authors"
        ))
        .hint("push it with `map sync` first (see `map remote list`)")
    })?;
    let token = remote.token.clone().ok_or_else(|| {
        CliError::user(format!("remote '{}' has no token", remote.name))
            .hint("add it again with `map remote add NAME URL --token TOKEN`")
    })?;
    let rt = crate::net::runtime()?;
    let deliveries = rt.block_on(crate::net::api::deliveries(&remote.url, &token, &plan))?;
    let changes: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|r| (r.hash.to_string(), r.author.clone()))
        .collect();
    let verdicts = verify::classify(&changes, &deliveries);
    let entries: Vec<VerifiedEntry> = rows
        .iter()
        .zip(verdicts)
        .take(args.limit)
        .map(|(r, v)| VerifiedEntry {
            entry: LogEntry {
                hash: r.hash.to_string(),
                author: r.author.clone(),
                time: rfc3339(r.time_ms),
                time_ms: r.time_ms,
                message: r.message.clone(),
            },
            deliverer: v.deliverer,
            delivered_at: v.delivered_at.map(rfc3339),
            flagged: v.status == Status::Flagged,
            status: v.status,
        })
        .collect();
    if args.json {
        return print_json(&entries);
    }
    if entries.is_empty() {
        return say(&["no changes yet".to_string()]);
    }
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| {
            let when = e.entry.time.replace('T', " ");
            let when = when.trim_end_matches('Z');
            let hash = &e.entry.hash[..8.min(e.entry.hash.len())];
            let author = e.entry.author.as_deref().unwrap_or("(unknown)");
            let by = e.deliverer.as_deref().unwrap_or("(not on relay)");
            let status = if e.flagged {
                render::paint(e.status.as_str(), anstyle::AnsiColor::Red)
            } else {
                render::dim(e.status.as_str())
            };
            format!(
                "{}  {}  {}  delivered by {}  {}  {}",
                render::paint(hash, anstyle::AnsiColor::Yellow),
                render::dim(when),
                render::bold(author),
                render::bold(by),
                status,
                e.entry.message.as_deref().unwrap_or("(no message)")
            )
        })
        .collect();
    let flagged = entries.iter().filter(|e| e.flagged).count();
    if flagged > 0 {
        lines.push(format!(
            "{flagged} change{} delivered by someone who is neither the claimed author nor relaying for them",
            if flagged == 1 { "" } else { "s" }
        ));
    }
    say(&lines)
}

/// `map conflicts`.
pub fn conflicts(ctx: &mut Context, json: bool) -> Result<()> {
    let plan_arg = ctx.plan_arg.clone();
    let conflicts = ctx.store()?.read(|tx| {
        let row = plans::target_plan(tx, plan_arg.as_deref())?;
        let Some(doc) = tx.load_doc(&row.id)? else {
            return Err(CliError::user(format!("plan {} has no document", row.id)));
        };
        let mut plan = PlanDoc::from_doc(doc)?;
        Ok(plan.conflicts()?)
    })?;
    if json {
        return print_json(&conflicts);
    }
    if conflicts.is_empty() {
        return say(&["no conflicts".to_string()]);
    }
    say(&[render::conflicts(&conflicts)])
}
