//! `map show`: the whole plan on one screen (header, milestones with
//! progress bars, tasks, risks, people, warnings), plus the milestone,
//! people and risk tables reused by the `list` commands.

use anstyle::AnsiColor;
use comfy_table::{Cell, Color};
use map_export::text::bar;
use map_model::PlanView;
use map_model::schema::{Level, RiskStatus};

use crate::render::{bold, cell, dim, finish, paint, prefix_len, short, table, tasks};

/// The full `map show` output.
pub fn plan(id: &str, view: &PlanView) -> String {
    let h = &view.header;
    let mut out = vec![bold(&h.title)];
    if !h.objective.trim().is_empty() {
        out.push(format!("Objective: {}", h.objective.trim()));
    }
    if !h.success_criteria.trim().is_empty() {
        out.push(format!("Success criteria: {}", h.success_criteria.trim()));
    }
    let mut facts = Vec::new();
    if let Some(d) = h.signature_date {
        facts.push(format!("Signature {d}"));
    }
    if let Some(d) = h.go_live {
        facts.push(format!("Go-live {d}"));
    }
    facts.push(format!(
        "Progress {} {}% ({}/{} tasks)",
        bar(view.progress.percent),
        view.progress.percent,
        view.progress.done,
        view.progress.total
    ));
    out.push(facts.join(" · "));
    out.push(dim(&format!("id {id}")));

    if !view.milestones.is_empty() {
        out.push(String::new());
        out.push(bold("Milestones"));
        out.push(milestones(view));
    }
    out.push(String::new());
    out.push(bold("Tasks"));
    if view.tasks.is_empty() {
        out.push("no tasks yet; add one with `map task add TITLE`".to_string());
    } else {
        let all: Vec<_> = view.tasks.iter().collect();
        out.push(tasks::table(&all, view));
    }
    let overdue = view.tasks.iter().filter(|t| t.overdue).count();
    let blocked = view
        .tasks
        .iter()
        .filter(|t| t.status == map_model::schema::TaskStatus::Blocked)
        .count();
    let waiting = view.tasks.iter().filter(|t| t.is_waiting()).count();
    let mut parts = Vec::new();
    if overdue > 0 {
        parts.push(paint(&format!("{overdue} overdue"), AnsiColor::Red));
    }
    if blocked > 0 {
        parts.push(paint(&format!("{blocked} blocked"), AnsiColor::Magenta));
    }
    if waiting > 0 {
        parts.push(format!("{waiting} waiting on other tasks"));
    }
    if view.deleted.tasks > 0 {
        parts.push(dim(&format!(
            "{} deleted (see `map task restore`)",
            view.deleted.tasks
        )));
    }
    if !parts.is_empty() {
        out.push(parts.join(", "));
    }
    let sched = map_model::schedule::schedule(view);
    if let Some(line) = crate::render::analysis::critical_line(view, &sched) {
        out.push(line);
    }
    if !view.risks.is_empty() {
        out.push(String::new());
        out.push(bold("Risks"));
        out.push(risks(view));
    }
    if !view.people.is_empty() {
        out.push(String::new());
        out.push(bold("People"));
        out.push(people(view));
    }
    if !view.warnings.is_empty() || view.conflicts > 0 {
        out.push(String::new());
        out.push(bold("Warnings"));
        for w in &view.warnings {
            out.push(format!("{} {}", paint("!", AnsiColor::Yellow), w.message));
        }
        if view.conflicts > 0 {
            out.push(format!(
                "{} {} field(s) were edited concurrently; see `map conflicts`",
                paint("!", AnsiColor::Yellow),
                view.conflicts
            ));
        }
    }
    out.join("\n")
}

/// Milestones with progress bars.
pub fn milestones(view: &PlanView) -> String {
    let len = prefix_len(view.milestones.iter().map(|m| m.id.as_str()));
    let mut t = table(&["ID", "MILESTONE", "DUE", "PROGRESS", ""]);
    for m in &view.milestones {
        let due = match m.due {
            Some(d) if m.overdue => format!("{d} overdue"),
            Some(d) => d.to_string(),
            None => String::new(),
        };
        let color = if m.progress.total > 0 && m.progress.done == m.progress.total {
            Some(Color::Green)
        } else {
            None
        };
        t.add_row(vec![
            cell(short(&m.id, len), Some(Color::Yellow)),
            Cell::new(&m.title),
            cell(due, m.overdue.then_some(Color::Red)),
            cell(
                format!("{} {:>3}%", bar(m.progress.percent), m.progress.percent),
                color,
            ),
            Cell::new(format!("{}/{}", m.progress.done, m.progress.total)),
        ]);
    }
    finish(&t)
}

/// People with their side and role.
pub fn people(view: &PlanView) -> String {
    let len = prefix_len(view.people.iter().map(|p| p.id.as_str()));
    let mut t = table(&["ID", "NAME", "SIDE", "ROLE", "EMAIL", "OPEN"]);
    for p in &view.people {
        t.add_row(vec![
            cell(short(&p.id, len), Some(Color::Yellow)),
            Cell::new(&p.name),
            Cell::new(p.side),
            Cell::new(&p.role),
            Cell::new(&p.email),
            Cell::new(p.open_tasks),
        ]);
    }
    finish(&t)
}

fn level_color(l: Level) -> Option<Color> {
    match l {
        Level::High => Some(Color::Red),
        Level::Medium => Some(Color::Yellow),
        Level::Low => None,
    }
}

/// The risk register.
pub fn risks(view: &PlanView) -> String {
    let len = prefix_len(view.risks.iter().map(|r| r.id.as_str()));
    let mut t = table(&[
        "ID",
        "RISK",
        "IMPACT",
        "LIKELIHOOD",
        "OWNER",
        "STATUS",
        "MITIGATION",
    ]);
    for r in &view.risks {
        let status_color = match r.status {
            RiskStatus::Open => None,
            RiskStatus::Mitigated | RiskStatus::Closed => Some(Color::Green),
        };
        t.add_row(vec![
            cell(short(&r.id, len), Some(Color::Yellow)),
            Cell::new(&r.title),
            cell(r.impact, level_color(r.impact)),
            cell(r.likelihood, level_color(r.likelihood)),
            Cell::new(r.owner_name.as_deref().unwrap_or("")),
            cell(r.status, status_color),
            Cell::new(&r.mitigation),
        ]);
    }
    finish(&t)
}
