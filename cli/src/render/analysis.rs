//! Human output of the analysis commands: the critical path, what-if
//! previews, next actions with their urgency, the blocked / waiting / stale
//! reports, check findings, baselines and baseline diffs.

use anstyle::AnsiColor;
use comfy_table::{Cell, Color};
use map_export::text::owner_label;
use map_model::PlanView;
use map_model::baseline::{Baseline, BaselineDiff, DateMove};
use map_model::identity::Side;
use map_model::lint::{Finding, Severity};
use map_model::schedule::{GoLiveSource, Move, Schedule, WhatIf};
use map_model::urgency::{Urgency, Waiting};
use map_model::view::TaskView;

use crate::commands::analysis::StaleItem;
use crate::render::{bold, cell, dim, finish, paint, prefix_len, short, table, tasks};

fn opt_date(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn signed_days(n: i64) -> String {
    if n > 0 {
        format!("+{n}d")
    } else {
        format!("{n}d")
    }
}

/// The one-line verdict on the go-live.
pub fn go_live_line(view: &PlanView, s: &Schedule) -> String {
    let Some(g) = s.go_live else {
        return match s.finish {
            Some(f) => format!("finishes {f}; no go-live date set"),
            None => "no dates yet".to_string(),
        };
    };
    let source = match &s.go_live_source {
        GoLiveSource::Milestone(id) => view
            .milestone(id)
            .map(|m| format!(" (milestone '{}')", m.title))
            .unwrap_or_default(),
        _ => String::new(),
    };
    match s.finish {
        Some(f) if s.go_live_late_by > 0 => paint(
            &format!(
                "finishes {f}, {} days after the go-live {g}{source}",
                s.go_live_late_by
            ),
            AnsiColor::Red,
        ),
        Some(f) if f == g => format!("finishes on the go-live {g}{source}, no days to spare"),
        Some(f) => format!(
            "finishes {f}; go-live {g}{source} has {} days to spare",
            (g - f).num_days()
        ),
        None => format!("go-live {g}{source}; no task has a date yet"),
    }
}

/// The `Critical path:` line of `map show`.
pub fn critical_line(view: &PlanView, s: &Schedule) -> Option<String> {
    if s.critical_path.is_empty() {
        return None;
    }
    let len = prefix_len(view.tasks.iter().map(|t| t.id.as_str()));
    let chain: Vec<String> = s
        .critical_path
        .iter()
        .filter_map(|id| view.task(id))
        .map(|t| short(&t.id, len).to_string())
        .collect();
    let chain = if chain.len() > 6 {
        let mut c: Vec<String> = chain[..3].to_vec();
        c.push("…".to_string());
        c.extend(chain[chain.len() - 2..].iter().cloned());
        c.push(format!("({} tasks)", chain.len()));
        c
    } else {
        chain
    };
    Some(format!(
        "{} {} ({}; see `map path`)",
        bold("Critical path:"),
        chain.join(" → ").replace(" → (", " ("),
        go_live_line(view, s)
    ))
}

/// `map path`.
pub fn path(view: &PlanView, s: &Schedule) -> String {
    if s.critical_path.is_empty() {
        return format!(
            "no critical path: no open task has a date ({})",
            go_live_line(view, s)
        );
    }
    let len = prefix_len(view.tasks.iter().map(|t| t.id.as_str()));
    let mut t = table(&["#", "ID", "TASK", "OWNER", "START", "DUE", "FINISH", ""]);
    for (i, id) in s.critical_path.iter().enumerate() {
        let Some(task) = view.task(id) else { continue };
        let sched = s.task(id);
        let late = sched.map_or(0, |x| x.late_by);
        t.add_row(vec![
            Cell::new(i + 1),
            cell(short(&task.id, len), Some(Color::Yellow)),
            Cell::new(&task.title),
            Cell::new(owner_label(task)),
            Cell::new(opt_date(task.start)),
            Cell::new(opt_date(task.due)),
            cell(
                opt_date(sched.and_then(|x| x.finish)),
                (late > 0).then_some(Color::Red),
            ),
            cell(
                if late > 0 {
                    format!("{late} days late")
                } else {
                    String::new()
                },
                Some(Color::Red),
            ),
        ]);
    }
    [
        format!("{} ({})", bold("Critical path"), go_live_line(view, s)),
        finish(&t),
    ]
    .join("\n")
}

fn moves_table(view: &PlanView, moves: &[Move], what: &str) -> String {
    let len = prefix_len(
        view.tasks
            .iter()
            .map(|t| t.id.as_str())
            .chain(view.milestones.iter().map(|m| m.id.as_str())),
    );
    let mut t = table(&["ID", what, "BEFORE", "AFTER", "MOVES"]);
    for m in moves {
        t.add_row(vec![
            cell(short(&m.id, len), Some(Color::Yellow)),
            Cell::new(&m.title),
            Cell::new(opt_date(m.before)),
            Cell::new(opt_date(m.after)),
            cell(
                signed_days(m.days),
                Some(if m.days > 0 { Color::Red } else { Color::Green }),
            ),
        ]);
    }
    finish(&t)
}

/// `map whatif`.
pub fn whatif(view: &PlanView, task: &TaskView, w: &WhatIf) -> String {
    let mut out = vec![format!(
        "What if '{}' is due {} instead of {}:",
        task.title,
        w.new_due,
        task.due
            .map(|d| d.to_string())
            .unwrap_or("(no date)".into())
    )];
    if w.tasks.is_empty() && w.milestones.is_empty() {
        out.push("nothing moves".to_string());
    }
    if !w.tasks.is_empty() {
        out.push(String::new());
        out.push(bold("Tasks"));
        out.push(moves_table(view, &w.tasks, "TASK"));
    }
    if !w.milestones.is_empty() {
        out.push(String::new());
        out.push(bold("Milestones"));
        out.push(moves_table(view, &w.milestones, "MILESTONE"));
    }
    out.push(String::new());
    match &w.go_live {
        Some(g) => out.push(paint(
            &format!(
                "Go-live moves {} ({} -> {})",
                signed_days(g.days),
                opt_date(g.before),
                opt_date(g.after)
            ),
            if g.days > 0 {
                AnsiColor::Red
            } else {
                AnsiColor::Green
            },
        )),
        None => out.push("Go-live does not move".to_string()),
    }
    out.push(dim("(a preview: the plan is unchanged)"));
    out.join("\n")
}

fn why(u: &Urgency) -> String {
    let mut w = Vec::new();
    match u.due_in {
        Some(n) if n < 0 => w.push(format!("overdue {}d", -n)),
        Some(0) => w.push("due today".to_string()),
        Some(n) => w.push(format!("due in {n}d")),
        None => {}
    }
    if u.blocks > 0 {
        w.push(format!("blocks {}", u.blocks));
    }
    if u.priority >= 6.0 {
        w.push("high priority".to_string());
    }
    if u.active > 0.0 {
        w.push("in progress".to_string());
    }
    if u.critical > 0.0 {
        w.push("critical path".to_string());
    }
    w.join(", ")
}

/// `map next`: one table per owner (plan order of people, unassigned last),
/// most urgent first.
pub fn next(view: &PlanView, ranked: &[(Urgency, &TaskView)]) -> String {
    let len = prefix_len(view.tasks.iter().map(|t| t.id.as_str()));
    let mut owners: Vec<Option<&str>> = view.people.iter().map(|p| Some(p.id.as_str())).collect();
    owners.push(None);
    let mut out = Vec::new();
    for o in owners {
        let rows: Vec<&(Urgency, &TaskView)> = ranked
            .iter()
            .filter(|(_, t)| t.owner.as_deref() == o)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let heading = match o.and_then(|id| view.person(id)) {
            Some(p) if p.name.contains(&format!("({})", p.side)) => p.name.clone(),
            Some(p) => format!("{} ({})", p.name, p.side),
            None => "Unassigned".to_string(),
        };
        let mut t = table(&["SCORE", "ID", "TASK", "DUE", "WHY"]);
        for (u, task) in rows {
            t.add_row(vec![
                Cell::new(format!("{:.1}", u.score)),
                cell(short(&task.id, len), Some(Color::Yellow)),
                Cell::new(&task.title),
                cell(opt_date(task.due), task.overdue.then_some(Color::Red)),
                Cell::new(why(u)),
            ]);
        }
        if !out.is_empty() {
            out.push(String::new());
        }
        out.push(bold(&heading));
        out.push(finish(&t));
    }
    out.join("\n")
}

/// `map blocked`: blocked tasks and what they wait on.
pub fn blocked(view: &PlanView, list: &[&TaskView]) -> String {
    let len = prefix_len(view.tasks.iter().map(|t| t.id.as_str()));
    let mut t = table(&["ID", "STATUS", "TASK", "OWNER", "DUE", "WAITING ON"]);
    for task in list {
        let on: Vec<String> = task
            .blocked_by
            .iter()
            .filter_map(|id| view.task(id))
            .map(|d| format!("{} {}", short(&d.id, len), d.title))
            .collect();
        t.add_row(vec![
            cell(short(&task.id, len), Some(Color::Yellow)),
            cell(task.status, Some(tasks::status_color(task.status))),
            Cell::new(&task.title),
            Cell::new(owner_label(task)),
            cell(opt_date(task.due), task.overdue.then_some(Color::Red)),
            Cell::new(if on.is_empty() {
                "(status blocked)".to_string()
            } else {
                on.join(", ")
            }),
        ]);
    }
    finish(&t)
}

/// `map waiting --on SIDE`.
pub fn waiting(view: &PlanView, side: Side, list: &[Waiting]) -> String {
    let len = prefix_len(view.tasks.iter().map(|t| t.id.as_str()));
    let mut t = table(&["ID", "TASK", "OWNER", "DUE", "HOLDS UP"]);
    for w in list {
        let Some(task) = view.task(&w.id) else {
            continue;
        };
        let mut held: Vec<String> = w
            .blocks
            .iter()
            .take(3)
            .map(|id| short(id, len).to_string())
            .collect();
        if w.blocks.len() > 3 {
            held.push(format!("+{} more", w.blocks.len() - 3));
        }
        t.add_row(vec![
            cell(short(&task.id, len), Some(Color::Yellow)),
            Cell::new(&task.title),
            Cell::new(owner_label(task)),
            cell(opt_date(task.due), task.overdue.then_some(Color::Red)),
            Cell::new(format!("{} task(s): {}", w.blocks.len(), held.join(", "))),
        ]);
    }
    let other = match side {
        Side::Buyer => "the seller",
        Side::Seller => "the buyer",
        Side::Other => "the others",
    };
    format!(
        "{}\n{}",
        bold(&format!("Open {side} tasks {other} is waiting on")),
        finish(&t)
    )
}

/// `map stale`.
pub fn stale(view: &PlanView, items: &[StaleItem]) -> String {
    let len = prefix_len(view.tasks.iter().map(|t| t.id.as_str()));
    let mut t = table(&["ID", "TASK", "OWNER", "LAST TOUCHED", "BY", "DAYS"]);
    for i in items {
        t.add_row(vec![
            cell(short(&i.id, len), Some(Color::Yellow)),
            Cell::new(&i.title),
            Cell::new(i.owner_name.as_deref().unwrap_or("")),
            Cell::new(
                chrono::DateTime::from_timestamp_millis(i.last_touched)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
            ),
            Cell::new(&i.by),
            Cell::new(i.days),
        ]);
    }
    finish(&t)
}

/// `map check`.
pub fn check(findings: &[Finding], errors: usize, warnings: usize) -> String {
    if findings.is_empty() {
        return "no findings: the plan has what a good plan needs".to_string();
    }
    let mut out = Vec::new();
    for f in findings {
        let sev = match f.severity {
            Severity::Error => paint("error", AnsiColor::Red),
            Severity::Warning => paint("warning", AnsiColor::Yellow),
            Severity::Info => paint("info", AnsiColor::Cyan),
        };
        out.push(format!("{sev}: {} [{}]", f.message, f.code));
        out.push(format!("  fix: {}", f.fix));
    }
    out.push(format!(
        "{errors} error(s), {warnings} warning(s), {} other",
        findings.len() - errors - warnings
    ));
    out.join("\n")
}

/// `map baseline list`.
pub fn baselines(list: &[Baseline]) -> String {
    let mut t = table(&["NAME", "RECORDED", "BY", "HEADS"]);
    for b in list {
        t.add_row(vec![
            cell(&b.name, Some(Color::Yellow)),
            Cell::new(crate::commands::log::rfc3339(b.at)),
            Cell::new(&b.by),
            Cell::new(
                b.heads
                    .iter()
                    .map(|h| h.get(..8).unwrap_or(h))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ]);
    }
    finish(&t)
}

fn date_moves(out: &mut Vec<String>, title: &str, what: &str, moves: &[DateMove]) {
    if moves.is_empty() {
        return;
    }
    out.push(String::new());
    out.push(bold(title));
    let mut t = table(&[what, "BASELINE", "NOW", "MOVED", "BY"]);
    for m in moves {
        let moved = match (m.before, m.after) {
            (Some(_), Some(_)) if m.days > 0 => format!("slipped {}d", m.days),
            (Some(_), Some(_)) => format!("pulled in {}d", -m.days),
            (None, Some(_)) => "date set".to_string(),
            (Some(_), None) => "date cleared".to_string(),
            (None, None) => String::new(),
        };
        t.add_row(vec![
            Cell::new(&m.title),
            Cell::new(opt_date(m.before)),
            Cell::new(opt_date(m.after)),
            cell(moved, (m.days > 0).then_some(Color::Red)),
            Cell::new(m.by.as_deref().unwrap_or("")),
        ]);
    }
    out.push(finish(&t));
}

/// `map diff NAME`.
pub fn diff(d: &BaselineDiff) -> String {
    let b = &d.baseline;
    let mut out = vec![format!(
        "Since baseline '{}' ({} by {}):",
        b.name,
        crate::commands::log::rfc3339(b.at),
        b.by
    )];
    if let Some(g) = &d.go_live {
        date_moves(&mut out, "Go-live", "", std::slice::from_ref(g));
    }
    date_moves(&mut out, "Milestones", "MILESTONE", &d.milestones);
    date_moves(&mut out, "Tasks", "TASK", &d.tasks);
    for (title, items) in [("Added", &d.added), ("Dropped", &d.dropped)] {
        if items.is_empty() {
            continue;
        }
        out.push(String::new());
        out.push(bold(title));
        for i in items {
            out.push(format!(
                "  {}{}",
                i.title,
                i.by.as_deref()
                    .map(|b| format!("  (by {b})"))
                    .unwrap_or_default()
            ));
        }
    }
    out.push(String::new());
    if d.authors.is_empty() {
        out.push("no changes since the baseline".to_string());
    } else {
        let who: Vec<String> = d
            .authors
            .iter()
            .map(|(a, n)| format!("{a} ({n})"))
            .collect();
        out.push(format!("Changes by: {}", who.join(", ")));
    }
    out.join("\n")
}
