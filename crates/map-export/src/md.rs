//! The Markdown summary: one page a person can read or paste anywhere —
//! objective, success criteria, key dates, people by side, milestones with
//! progress, action items grouped by milestone, risks and the latest
//! changes.

use map_model::identity::Side;
use map_model::view::TaskView;

use crate::Export;
use crate::text::{author_name, bar, date, owner_label, when};

/// Escape text for a Markdown table cell or line.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '\\' | '*' | '_' | '`' | '<' | '>' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Tasks grouped by milestone, in milestone order, then tasks without one.
pub fn tasks_by_milestone(e: &Export) -> Vec<(Option<String>, Vec<&TaskView>)> {
    let mut groups: Vec<(Option<String>, Vec<&TaskView>)> = e
        .view
        .milestones
        .iter()
        .map(|m| {
            (
                Some(m.title.clone()),
                e.view
                    .tasks
                    .iter()
                    .filter(|t| t.milestone.as_deref() == Some(m.id.as_str()))
                    .collect(),
            )
        })
        .collect();
    let loose: Vec<&TaskView> = e
        .view
        .tasks
        .iter()
        .filter(|t| {
            t.milestone
                .as_deref()
                .is_none_or(|m| e.view.milestone(m).is_none())
        })
        .collect();
    if !loose.is_empty() {
        groups.push((None, loose));
    }
    groups.retain(|(_, ts)| !ts.is_empty());
    groups
}

/// Status text with `overdue` / `waiting` flags.
pub fn status_text(t: &TaskView) -> String {
    let mut s = t.status.to_string().replace('_', " ");
    if t.overdue {
        s += " (overdue)";
    } else if t.is_waiting() {
        s += " (waiting)";
    }
    s
}

/// The key dates line.
pub fn facts(e: &Export) -> Vec<String> {
    let h = &e.view.header;
    let mut facts = Vec::new();
    if let Some(d) = h.signature_date {
        facts.push(format!("Signature: {d}"));
    }
    if let Some(d) = h.go_live {
        facts.push(format!("Go-live: {d}"));
    }
    facts.push(format!(
        "Progress: {}/{} tasks done ({}%)",
        e.view.progress.done, e.view.progress.total, e.view.progress.percent
    ));
    let overdue = e.view.tasks.iter().filter(|t| t.overdue).count();
    if overdue > 0 {
        facts.push(format!("{overdue} overdue"));
    }
    facts
}

/// The Markdown summary.
pub fn markdown(e: &Export) -> String {
    let view = &e.view;
    let h = &view.header;
    let mut out = format!("# {}\n\n", esc(&h.title));
    if !h.objective.trim().is_empty() {
        out += &format!("**Objective:** {}\n\n", esc(h.objective.trim()));
    }
    if !h.success_criteria.trim().is_empty() {
        out += &format!(
            "**Success criteria:** {}\n\n",
            esc(h.success_criteria.trim())
        );
    }
    out += &format!("{}\n\n", facts(e).join(" · "));
    if !view.people.is_empty() {
        out += "## People\n\n";
        for side in [Side::Buyer, Side::Seller, Side::Other] {
            let people: Vec<_> = view.people.iter().filter(|p| p.side == side).collect();
            if people.is_empty() {
                continue;
            }
            let list: Vec<String> = people
                .iter()
                .map(|p| {
                    let mut s = esc(&p.name);
                    if !p.role.trim().is_empty() {
                        s += &format!(" ({})", esc(&p.role));
                    }
                    if !p.email.trim().is_empty() {
                        s += &format!(" {}", esc(&p.email));
                    }
                    s
                })
                .collect();
            out += &format!("- **{}:** {}\n", side_label(side), list.join("; "));
        }
        out += "\n";
    }
    if !view.milestones.is_empty() {
        out += "## Milestones\n\n| Milestone | Due | Progress |\n|---|---|---|\n";
        for m in &view.milestones {
            let due = if m.overdue {
                format!("{} (overdue)", date(m.due))
            } else {
                date(m.due)
            };
            out += &format!(
                "| {} | {} | {} {}% ({}/{}) |\n",
                esc(&m.title),
                due,
                bar(m.progress.percent),
                m.progress.percent,
                m.progress.done,
                m.progress.total
            );
        }
        out += "\n";
    }
    if !view.tasks.is_empty() {
        out += "## Action items\n\n";
        for (milestone, tasks) in tasks_by_milestone(e) {
            out += &format!(
                "### {}\n\n| Step | Owner | Due | Status |\n|---|---|---|---|\n",
                milestone
                    .as_deref()
                    .map(esc)
                    .unwrap_or_else(|| "No milestone".to_string())
            );
            for t in tasks {
                out += &format!(
                    "| {} | {} | {} | {} |\n",
                    esc(&t.title),
                    esc(&owner_label(t)),
                    date(t.due),
                    status_text(t)
                );
            }
            out += "\n";
        }
    }
    if !view.risks.is_empty() {
        out += "## Risks\n\n| Risk | Impact | Likelihood | Mitigation | Owner | Status |\n|---|---|---|---|---|---|\n";
        for r in &view.risks {
            out += &format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                esc(&r.title),
                r.impact,
                r.likelihood,
                esc(&r.mitigation),
                esc(r.owner_name.as_deref().unwrap_or("")),
                r.status
            );
        }
        out += "\n";
    }
    if !e.history.is_empty() {
        out += "## Recent changes\n\n";
        for r in &e.history {
            out += &format!(
                "- {} {}: {}\n",
                when(r.time_ms),
                esc(&author_name(r.author.as_deref())),
                esc(r.message.as_deref().unwrap_or("(no message)"))
            );
        }
        out += "\n";
    }
    out += &format!("_Plan `automerge:{}`, as of {}._\n", e.id, view.today);
    out
}

/// "Buyer", "Seller", "Other".
pub fn side_label(side: Side) -> &'static str {
    match side {
        Side::Buyer => "Buyer",
        Side::Seller => "Seller",
        Side::Other => "Other",
    }
}
