//! The HTML summary: the Markdown summary's content as one self-contained,
//! print-friendly page (inline CSS, no scripts, no external fonts or
//! images), with the timeline drawn as an inline SVG Gantt chart. All text
//! from the plan is HTML-escaped.

use std::fmt::Write as _;

use map_model::identity::Side;

use crate::Export;
use crate::gantt;
use crate::md::{facts, side_label, status_text, tasks_by_milestone};
use crate::text::{author_name, date, owner_label, when};

/// Escape text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escape, keeping line breaks (as `<br>`).
pub fn esc_lines(s: &str) -> String {
    esc(s.trim()).replace('\n', "<br>")
}

const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #0f172a; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.4; }
h1 { margin-bottom: .2em; }
h2 { border-bottom: 1px solid #cbd5e1; padding-bottom: .2em; margin-top: 1.6em; }
h3 { margin-bottom: .3em; }
.facts { color: #334155; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; }
th, td { border: 1px solid #cbd5e1; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f1f5f9; }
.overdue { color: #b91c1c; font-weight: bold; }
.status-done { color: #15803d; }
.status-blocked { color: #a21caf; }
.status-dropped { color: #6b7280; text-decoration: line-through; }
.progress { display: inline-block; width: 8em; height: .8em; background: #e2e8f0; border-radius: .4em; overflow: hidden; vertical-align: middle; }
.progress span { display: block; height: 100%; background: #16a34a; }
.gantt-wrap { overflow-x: auto; border: 1px solid #e2e8f0; padding: .5em; }
.legend span { display: inline-block; margin-right: 1em; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: middle; margin-right: .3em; border-radius: 2px; }
footer { margin-top: 2em; color: #64748b; font-size: .9em; }
@media print { body { margin: 0; max-width: none; } .gantt-wrap { overflow: visible; border: none; } h2 { page-break-after: avoid; } tr { page-break-inside: avoid; } }
"#;

/// The HTML page.
pub fn page(e: &Export) -> String {
    let view = &e.view;
    let h = &view.header;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&h.title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", esc(&h.title));
    if !h.objective.trim().is_empty() {
        let _ = writeln!(
            out,
            "<p><strong>Objective:</strong> {}</p>",
            esc_lines(&h.objective)
        );
    }
    if !h.success_criteria.trim().is_empty() {
        let _ = writeln!(
            out,
            "<p><strong>Success criteria:</strong> {}</p>",
            esc_lines(&h.success_criteria)
        );
    }
    let _ = writeln!(out, "<p class=\"facts\">{}</p>", esc(&facts(e).join(" · ")));

    if !view.people.is_empty() {
        out += "<h2>People</h2>\n<table>\n<tr><th>Side</th><th>Name</th><th>Role</th><th>Email</th></tr>\n";
        for side in [Side::Buyer, Side::Seller, Side::Other] {
            for p in view.people.iter().filter(|p| p.side == side) {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    side_label(side),
                    esc(&p.name),
                    esc(&p.role),
                    esc(&p.email)
                );
            }
        }
        out += "</table>\n";
    }

    out += "<h2>Timeline</h2>\n";
    match gantt::svg(e) {
        Some(svg) => {
            out += "<div class=\"gantt-wrap\">";
            out += &svg;
            out += "</div>\n<p class=\"legend\">";
            for (label, colour) in [
                ("to do", "#94a3b8"),
                ("in progress", "#3b82f6"),
                ("blocked", "#c026d3"),
                ("done", "#16a34a"),
            ] {
                let _ = write!(
                    out,
                    "<span><span class=\"swatch\" style=\"background:{colour}\"></span>{label}</span>"
                );
            }
            out += "<span><span class=\"swatch\" style=\"border:2px solid #dc2626\"></span>critical path</span><span>◆ milestone</span></p>\n";
        }
        None => out += "<p>Nothing in the plan has a date yet.</p>\n",
    }

    if !view.milestones.is_empty() {
        out += "<h2>Milestones</h2>\n<table>\n<tr><th>Milestone</th><th>Due</th><th>Progress</th></tr>\n";
        for m in &view.milestones {
            let due = if m.overdue {
                format!("<span class=\"overdue\">{} (overdue)</span>", date(m.due))
            } else {
                date(m.due)
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{due}</td><td><span class=\"progress\"><span style=\"width:{}%\"></span></span> {}% ({}/{})</td></tr>",
                esc(&m.title),
                m.progress.percent.min(100),
                m.progress.percent,
                m.progress.done,
                m.progress.total
            );
        }
        out += "</table>\n";
    }

    if !view.tasks.is_empty() {
        let critical = gantt::critical_tasks(view);
        out += "<h2>Action items</h2>\n";
        for (milestone, tasks) in tasks_by_milestone(e) {
            let _ = writeln!(
                out,
                "<h3>{}</h3>\n<table>\n<tr><th>Step</th><th>Owner</th><th>Due</th><th>Status</th></tr>",
                milestone
                    .as_deref()
                    .map(esc)
                    .unwrap_or_else(|| "No milestone".to_string())
            );
            for t in tasks {
                let mut step = esc(&t.title);
                if critical.contains(&t.id) {
                    step += " <small>(critical path)</small>";
                }
                let status_class = if t.overdue {
                    "overdue".to_string()
                } else {
                    format!("status-{}", t.status.as_str().replace('_', "-"))
                };
                let _ = writeln!(
                    out,
                    "<tr><td>{step}</td><td>{}</td><td>{}</td><td class=\"{status_class}\">{}</td></tr>",
                    esc(&owner_label(t)),
                    date(t.due),
                    esc(&status_text(t))
                );
            }
            out += "</table>\n";
        }
    }

    if !view.risks.is_empty() {
        out += "<h2>Risks</h2>\n<table>\n<tr><th>Risk</th><th>Impact</th><th>Likelihood</th><th>Mitigation</th><th>Owner</th><th>Status</th></tr>\n";
        for r in &view.risks {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.title),
                r.impact,
                r.likelihood,
                esc_lines(&r.mitigation),
                esc(r.owner_name.as_deref().unwrap_or("")),
                r.status
            );
        }
        out += "</table>\n";
    }

    if !e.history.is_empty() {
        out += "<h2>Recent changes</h2>\n<ul>\n";
        for r in &e.history {
            let _ = writeln!(
                out,
                "<li>{} — {}: {}</li>",
                when(r.time_ms),
                esc(&author_name(r.author.as_deref())),
                esc(r.message.as_deref().unwrap_or("(no message)"))
            );
        }
        out += "</ul>\n";
    }
    let _ = writeln!(
        out,
        "<footer>Plan automerge:{}, as of {}.</footer>\n</body>\n</html>",
        esc(&e.id),
        view.today
    );
    out
}
