//! The timeline as an inline SVG Gantt chart for the HTML export:
//! milestones as diamonds on their due date, tasks as bars from their start
//! (or the day before their due date) to the end of their due date,
//! dependency arrows from the end of a task to the start of the task that
//! waits for it, a dashed "today" line, and the critical path outlined in
//! red. Everything drawn is escaped text and plain shapes: no scripts, no
//! external references.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{Datelike, Duration, NaiveDate};
use map_model::PlanView;
use map_model::schema::TaskStatus;

use crate::Export;
use crate::html::esc;
use crate::md::tasks_by_milestone;

const LABEL_W: i64 = 230;
const ROW_H: i64 = 24;
const TOP: i64 = 34;
const PAD: i64 = 16;

/// Ids of the tasks on the critical path (from `map_model::schedule`).
pub fn critical_tasks(view: &PlanView) -> BTreeSet<String> {
    map_model::schedule::schedule(view)
        .critical_path
        .into_iter()
        .collect()
}

/// The fill colour of a task bar.
pub fn status_fill(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Todo => "#94a3b8",
        TaskStatus::InProgress => "#3b82f6",
        TaskStatus::Blocked => "#c026d3",
        TaskStatus::Done => "#16a34a",
        TaskStatus::Dropped => "#d1d5db",
    }
}

enum Row<'a> {
    Milestone {
        title: &'a str,
        due: Option<NaiveDate>,
        overdue: bool,
    },
    Task {
        id: &'a str,
        title: &'a str,
        span: Option<(NaiveDate, NaiveDate)>,
        status: TaskStatus,
        overdue: bool,
        owner: Option<&'a str>,
    },
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The chart, or `None` when nothing in the plan has a date.
pub fn svg(e: &Export) -> Option<String> {
    let view = &e.view;
    let critical = critical_tasks(view);
    let mut rows: Vec<Row<'_>> = Vec::new();
    for (title, tasks) in tasks_by_milestone(e) {
        if let Some(title) = title
            && let Some(m) = view.milestones.iter().find(|m| m.title == title)
        {
            rows.push(Row::Milestone {
                title: &m.title,
                due: m.due,
                overdue: m.overdue,
            });
        }
        for t in tasks {
            let span = t.due.map(|due| {
                let start = t
                    .start
                    .filter(|s| *s <= due)
                    .unwrap_or(due - Duration::days(1));
                (start, due)
            });
            rows.push(Row::Task {
                id: &t.id,
                title: &t.title,
                span,
                status: t.status,
                overdue: t.overdue,
                owner: t.owner_name.as_deref(),
            });
        }
    }
    // Milestones without tasks still belong on the timeline.
    for m in &view.milestones {
        let listed = rows
            .iter()
            .any(|r| matches!(r, Row::Milestone { title, .. } if *title == m.title));
        if !listed {
            rows.push(Row::Milestone {
                title: &m.title,
                due: m.due,
                overdue: m.overdue,
            });
        }
    }
    let mut dates: Vec<NaiveDate> = Vec::new();
    for r in &rows {
        match r {
            Row::Milestone { due: Some(d), .. } => dates.push(*d),
            Row::Task {
                span: Some((s, d)), ..
            } => {
                dates.push(*s);
                dates.push(*d);
            }
            _ => {}
        }
    }
    if dates.is_empty() {
        return None;
    }
    dates.push(e.today());
    dates.extend(view.header.go_live);
    let first = dates.iter().min().copied()? - Duration::days(1);
    let last = dates.iter().max().copied()? + Duration::days(2);
    let days = (last - first).num_days().max(1);
    let ppd = (760 / days).clamp(3, 28);
    let width = LABEL_W + days * ppd + PAD;
    let height = TOP + rows.len() as i64 * ROW_H + PAD;
    let x = |d: NaiveDate| LABEL_W + (d - first).num_days() * ppd;

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="gantt" role="img" aria-label="Timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="12">"##
    );
    s += r##"<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" fill="#475569"/></marker></defs>"##;
    // Week grid and date labels (Mondays).
    let mut d = first;
    while d <= last {
        if d.weekday() == chrono::Weekday::Mon {
            let gx = x(d);
            let _ = write!(
                s,
                r##"<line x1="{gx}" y1="{}" x2="{gx}" y2="{}" stroke="#e2e8f0"/><text x="{}" y="14" fill="#475569">{}</text>"##,
                TOP - 8,
                height - PAD,
                gx + 2,
                d.format("%b %-d")
            );
        }
        d += Duration::days(1);
    }
    // Where each task's bar is, for the arrows.
    let mut bars: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + i as i64 * ROW_H;
        let mid = y + ROW_H / 2;
        match r {
            Row::Milestone {
                title,
                due,
                overdue,
            } => {
                let _ = write!(
                    s,
                    r##"<text x="6" y="{}" font-weight="bold">{}</text>"##,
                    mid + 4,
                    esc(&truncate(title, 30))
                );
                if let Some(d) = due {
                    let cx = x(*d) + ppd / 2;
                    let fill = if *overdue { "#dc2626" } else { "#0f172a" };
                    let _ = write!(
                        s,
                        r##"<path class="milestone" d="M{cx},{} L{},{mid} L{cx},{} L{},{mid} z" fill="{fill}"><title>{} — due {d}</title></path>"##,
                        mid - 7,
                        cx + 7,
                        mid + 7,
                        cx - 7,
                        esc(title)
                    );
                }
            }
            Row::Task {
                id,
                title,
                span,
                status,
                overdue,
                owner,
            } => {
                let _ = write!(
                    s,
                    r##"<text x="16" y="{}">{}</text>"##,
                    mid + 4,
                    esc(&truncate(title, 30))
                );
                let Some((start, due)) = span else { continue };
                let x0 = x(*start);
                let x1 = x(*due) + ppd;
                bars.insert(id, (x0, x1, mid));
                let is_critical = critical.contains(*id);
                let (stroke, sw) = if is_critical {
                    ("#dc2626", 2)
                } else if *overdue {
                    ("#f97316", 2)
                } else {
                    ("none", 0)
                };
                let class = if is_critical { "bar critical" } else { "bar" };
                let mut tip = format!("{title} — {status}, {start} to {due}");
                if let Some(o) = owner {
                    tip += &format!(", {o}");
                }
                if *overdue {
                    tip += ", overdue";
                }
                if is_critical {
                    tip += ", on the critical path";
                }
                let _ = write!(
                    s,
                    r##"<rect class="{class}" data-task="{}" x="{x0}" y="{}" width="{}" height="{}" rx="3" fill="{}" stroke="{stroke}" stroke-width="{sw}"><title>{}</title></rect>"##,
                    esc(id),
                    y + 5,
                    (x1 - x0).max(2),
                    ROW_H - 10,
                    status_fill(*status),
                    esc(&tip)
                );
            }
        }
    }
    // Dependency arrows.
    for t in &view.tasks {
        let Some(&(tx0, _, ty)) = bars.get(t.id.as_str()) else {
            continue;
        };
        for dep in &t.deps {
            let Some(&(_, dx1, dy)) = bars.get(dep.as_str()) else {
                continue;
            };
            let elbow = dx1 + 6;
            let _ = write!(
                s,
                r##"<path class="dep" d="M{dx1},{dy} L{elbow},{dy} L{elbow},{ty} L{tx0},{ty}" fill="none" stroke="#475569" stroke-width="1" marker-end="url(#arrow)"/>"##
            );
        }
    }
    // Today.
    let tx = x(e.today());
    let _ = write!(
        s,
        r##"<line class="today" x1="{tx}" y1="{}" x2="{tx}" y2="{}" stroke="#dc2626" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#dc2626">today</text>"##,
        TOP - 14,
        height - PAD,
        tx + 3,
        TOP - 4
    );
    if let Some(g) = view.header.go_live {
        let gx = x(g) + ppd;
        let _ = write!(
            s,
            r##"<line x1="{gx}" y1="{}" x2="{gx}" y2="{}" stroke="#16a34a" stroke-dasharray="2 2"/><text x="{}" y="{}" fill="#16a34a">go-live</text>"##,
            TOP - 14,
            height - PAD,
            gx + 3,
            height - 4
        );
    }
    s += "</svg>";
    Some(s)
}
