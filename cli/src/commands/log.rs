//! `map log` (the change history, from the history cache: who, when, what)
//! and `map conflicts` (fields that concurrent edits left with several
//! values; this one loads the document).

use chrono::DateTime;
use map_model::PlanDoc;
use serde::Serialize;

use crate::cli::LogArgs;
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

/// Format ms since the epoch as RFC 3339 UTC (seconds).
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "?".to_string())
}

/// `map log`.
pub fn log(ctx: &mut Context, args: LogArgs) -> Result<()> {
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
