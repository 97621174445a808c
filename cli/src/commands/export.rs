//! `map export --format json|md|csv [-o FILE]`: the plan for scripts
//! (JSON, same as `map show --json`), for people (a one-page Markdown
//! summary) and for spreadsheets (CSV with the standard MAP columns).

use std::io::Write;

use map_model::PlanView;
use map_model::view::TaskView;

use crate::cli::{ExportArgs, ExportFormat};
use crate::commands::plan::{ShowJson, current_view};
use crate::context::Context;
use crate::error::{CliError, Result, io_error};
use crate::render;

/// The CSV header: the columns MAP spreadsheets use.
pub const CSV_COLUMNS: [&str; 11] = [
    "step",
    "description",
    "milestone",
    "owner",
    "side",
    "start",
    "due",
    "status",
    "completed",
    "depends on",
    "notes",
];

/// `map export`.
pub fn run(ctx: &mut Context, args: ExportArgs) -> Result<()> {
    let (id, view) = current_view(ctx)?;
    let bytes = match args.format {
        ExportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&ShowJson {
                url: format!("automerge:{id}"),
                id: id.clone(),
                view: &view,
            })
            .map_err(|e| CliError::user(format!("cannot encode JSON: {e}")))?;
            s.push('\n');
            s.into_bytes()
        }
        ExportFormat::Md => markdown(&id, &view).into_bytes(),
        ExportFormat::Csv => csv(&view)?,
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

fn date(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn dep_titles(t: &TaskView, view: &PlanView) -> String {
    t.deps
        .iter()
        .map(|d| {
            view.task(d)
                .map(|x| x.title.clone())
                .unwrap_or_else(|| d.clone())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn notes(t: &TaskView, view: &PlanView) -> String {
    view.comments
        .iter()
        .filter(|c| c.target == t.id)
        .map(|c| format!("{}: {}", c.author, c.text))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The CSV export.
pub fn csv(view: &PlanView) -> Result<Vec<u8>> {
    let err = |e: csv::Error| CliError::user(format!("cannot write CSV: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS).map_err(err)?;
    for t in &view.tasks {
        w.write_record([
            t.title.clone(),
            t.description.clone(),
            t.milestone_title.clone().unwrap_or_default(),
            t.owner_name.clone().unwrap_or_default(),
            t.owner_side.map(|s| s.to_string()).unwrap_or_default(),
            date(t.start),
            date(t.due),
            t.status.to_string(),
            date(t.completed),
            dep_titles(t, view),
            notes(t, view),
        ])
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| CliError::user(format!("cannot write CSV: {e}")))
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown summary.
pub fn markdown(id: &str, view: &PlanView) -> String {
    let h = &view.header;
    let mut out = format!("# {}\n\n", md_escape(&h.title));
    if !h.objective.trim().is_empty() {
        out += &format!("**Objective:** {}\n\n", h.objective.trim());
    }
    if !h.success_criteria.trim().is_empty() {
        out += &format!("**Success criteria:** {}\n\n", h.success_criteria.trim());
    }
    let mut facts = Vec::new();
    if let Some(d) = h.signature_date {
        facts.push(format!("Signature: {d}"));
    }
    if let Some(d) = h.go_live {
        facts.push(format!("Go-live: {d}"));
    }
    facts.push(format!(
        "Progress: {}/{} tasks done ({}%)",
        view.progress.done, view.progress.total, view.progress.percent
    ));
    out += &format!("{}\n\n", facts.join(" · "));
    if !view.milestones.is_empty() {
        out += "## Milestones\n\n| Milestone | Due | Progress |\n|---|---|---|\n";
        for m in &view.milestones {
            out += &format!(
                "| {} | {} | {} {}% ({}/{}) |\n",
                md_escape(&m.title),
                date(m.due),
                render::bar(m.progress.percent),
                m.progress.percent,
                m.progress.done,
                m.progress.total
            );
        }
        out += "\n";
    }
    if !view.tasks.is_empty() {
        out += "## Action items\n\n| Step | Milestone | Owner | Due | Status |\n|---|---|---|---|---|\n";
        for t in &view.tasks {
            let mut status = t.status.to_string();
            if t.overdue {
                status += " (overdue)";
            }
            let owner = render::tasks::owner_label(t);
            out += &format!(
                "| {} | {} | {} | {} | {} |\n",
                md_escape(&t.title),
                md_escape(t.milestone_title.as_deref().unwrap_or("")),
                md_escape(&owner),
                date(t.due),
                status
            );
        }
        out += "\n";
    }
    if !view.risks.is_empty() {
        out += "## Risks\n\n| Risk | Impact | Likelihood | Mitigation | Owner | Status |\n|---|---|---|---|---|---|\n";
        for r in &view.risks {
            out += &format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                md_escape(&r.title),
                r.impact,
                r.likelihood,
                md_escape(&r.mitigation),
                md_escape(r.owner_name.as_deref().unwrap_or("")),
                r.status
            );
        }
        out += "\n";
    }
    if !view.people.is_empty() {
        out += "## People\n\n| Name | Side | Role | Email |\n|---|---|---|---|\n";
        for p in &view.people {
            out += &format!(
                "| {} | {} | {} | {} |\n",
                md_escape(&p.name),
                p.side,
                md_escape(&p.role),
                md_escape(&p.email)
            );
        }
        out += "\n";
    }
    out += &format!("_Plan `automerge:{id}`, as of {}._\n", view.today);
    out
}
