//! `map export --format md|html|csv|xlsx|ics|json [-o FILE]`: the plan in
//! the formats people already use. JSON for scripts (same as `map show
//! --json`); everything else comes from the `map-export` crate (a one-page
//! Markdown or HTML summary, CSV and XLSX for spreadsheets, an iCalendar
//! file of due dates; `--owner` makes a personal calendar).
//!
//! Every exporter is a pure function of a [`map_export::Export`] (the cached
//! view, the plan id and the latest history rows); this module only reads
//! the store and writes the bytes.

use std::io::{IsTerminal, Write};

use map_export::{Change, Export, HISTORY_HIGHLIGHTS, csv, html, ics, md, xlsx};
use map_model::PlanView;
use map_store::HistoryRow;

use crate::cli::{ExportArgs, ExportFormat};
use crate::commands::plan::ShowJson;
use crate::context::Context;
use crate::error::{CliError, Result, io_error};
use crate::plans;

/// `map export`.
pub fn run(ctx: &mut Context, args: ExportArgs) -> Result<()> {
    if args.owner.is_some() && !matches!(args.format, ExportFormat::Ics) {
        return Err(CliError::user("--owner only applies to --format ics")
            .hint("drop --owner, or export a personal calendar with `--format ics --owner NAME`"));
    }
    let binary = matches!(args.format, ExportFormat::Xlsx);
    if binary && args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::user(
            "an xlsx workbook is binary and will not be written to a terminal",
        )
        .hint("write it to a file with `-o plan.xlsx`"));
    }
    let export = load(ctx)?;
    let bytes = match args.format {
        ExportFormat::Json => json(&export)?,
        ExportFormat::Md => md::markdown(&export).into_bytes(),
        ExportFormat::Html => html::page(&export).into_bytes(),
        ExportFormat::Csv => csv::write(&export.view)?,
        ExportFormat::Xlsx => xlsx::workbook(&export)?,
        ExportFormat::Ics => {
            let owner = args
                .owner
                .as_deref()
                .map(|q| find_person(&export.view, q))
                .transpose()?;
            ics::calendar(&export, owner.as_deref()).into_bytes()
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &bytes)
                .map_err(|e| io_error(format!("cannot write {}", path.display()), e))?;
            crate::commands::say(&[format!("exported: {}", path.display())])
        }
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .map_err(|e| io_error("cannot write output", e)),
    }
}

/// Read the target plan's view and latest history in one read transaction.
pub fn load(ctx: &mut Context) -> Result<Export> {
    let plan_arg = ctx.plan_arg.clone();
    let today = ctx.today();
    let now_ms = ctx.now_ms();
    ctx.store()?.read(|tx| {
        let row = plans::target_plan(tx, plan_arg.as_deref())?;
        let view = plans::read_view(tx, &row.id, today)?;
        let history = tx
            .history(&row.id, HISTORY_HIGHLIGHTS)?
            .into_iter()
            .map(change)
            .collect();
        Ok::<_, CliError>(Export {
            id: row.id,
            view,
            history,
            now_ms,
        })
    })
}

/// A history row as the exporters list it.
fn change(r: HistoryRow) -> Change {
    Change {
        hash: r.hash.to_string(),
        author: r.author,
        time_ms: r.time_ms,
        message: r.message,
    }
}

fn json(e: &Export) -> Result<Vec<u8>> {
    let mut s = serde_json::to_string_pretty(&ShowJson {
        url: format!("automerge:{}", e.id),
        id: e.id.clone(),
        view: &e.view,
    })
    .map_err(|e| CliError::user(format!("cannot encode JSON: {e}")))?;
    s.push('\n');
    Ok(s.into_bytes())
}

/// A person of the view by id (prefix), name or email (case-insensitive);
/// returns their id.
pub fn find_person(view: &PlanView, query: &str) -> Result<String> {
    let q = query.trim().to_lowercase();
    let hits = |f: &dyn Fn(&map_model::view::PersonView) -> bool| -> Vec<String> {
        view.people
            .iter()
            .filter(|p| f(p))
            .map(|p| p.id.clone())
            .collect()
    };
    for found in [
        hits(&|p| p.id == q),
        hits(&|p| p.name.trim().to_lowercase() == q || p.email.trim().to_lowercase() == q),
        hits(&|p| !q.is_empty() && p.id.starts_with(&q)),
        hits(&|p| {
            !q.is_empty()
                && (p.name.to_lowercase().starts_with(&q)
                    || p.name
                        .to_lowercase()
                        .split(|c: char| !c.is_alphanumeric())
                        .any(|w| w == q))
        }),
    ] {
        match found.len() {
            0 => continue,
            1 => return Ok(found.into_iter().next().unwrap_or_default()),
            _ => {
                return Err(CliError::user(format!("'{query}' matches several people"))
                    .hint("give the full name, the email or the id"));
            }
        }
    }
    Err(CliError::user(format!("no person matches '{query}'"))
        .hint("list people with `map person list`"))
}
