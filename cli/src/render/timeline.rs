//! `map timeline`: a Gantt chart in the terminal. Each milestone is a row
//! with `◆` on its due date, followed by its tasks as bars from start (or
//! due) to due; tasks with no milestone come last. Bars are `=` (open),
//! `#` (on the critical path) or `-` (done); `|` marks today and `G` the
//! go-live on the axis. The characters carry the meaning; colour (only on a
//! terminal) adds red for the critical path and overdue, green for done.

use anstyle::AnsiColor;
use chrono::NaiveDate;
use map_model::PlanView;
use map_model::schedule::Schedule;
use map_model::schema::TaskStatus;
use map_model::view::TaskView;

use crate::render::{bold, dim, paint};

const LABEL: usize = 30;

struct Scale {
    lo: NaiveDate,
    days: i64,
    width: usize,
}

impl Scale {
    fn col(&self, d: NaiveDate) -> usize {
        let off = (d - self.lo).num_days().clamp(0, self.days);
        if self.days == 0 {
            return 0;
        }
        usize::try_from(off * (self.width as i64 - 1) / self.days).unwrap_or(0)
    }
}

fn label(text: &str, indent: usize) -> String {
    let max = LABEL - indent - 1;
    let mut s: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        s.pop();
        s.push('…');
    }
    format!("{}{s:<w$} ", " ".repeat(indent), w = max)
}

/// Paint runs of equal characters (so a bar is one escape sequence).
fn paint_row(cells: &[(char, Option<AnsiColor>)]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cells.len() {
        let (_, col) = cells[i];
        let mut j = i;
        let mut run = String::new();
        while j < cells.len() && cells[j].1 == col {
            run.push(cells[j].0);
            j += 1;
        }
        match col {
            Some(c) => out.push_str(&paint(&run, c)),
            None => out.push_str(&run),
        }
        i = j;
    }
    out.trim_end().to_string()
}

fn blank(scale: &Scale, today_col: Option<usize>) -> Vec<(char, Option<AnsiColor>)> {
    let mut row = vec![(' ', None); scale.width];
    if let Some(c) = today_col
        && let Some(cell) = row.get_mut(c)
    {
        *cell = ('|', Some(AnsiColor::Blue));
    }
    row
}

fn task_row(
    t: &TaskView,
    s: &Schedule,
    scale: &Scale,
    today_col: Option<usize>,
    indent: usize,
) -> String {
    let mut row = blank(scale, today_col);
    let critical = s.is_critical(&t.id);
    let (ch, color) = if t.status == TaskStatus::Done {
        ('-', Some(AnsiColor::Green))
    } else if critical {
        ('#', Some(AnsiColor::Red))
    } else if t.overdue {
        ('=', Some(AnsiColor::Red))
    } else {
        ('=', None)
    };
    let mut note = String::new();
    if let Some(due) = t.due {
        let start = t.start.filter(|s| *s <= due).unwrap_or(due);
        for c in scale.col(start)..=scale.col(due) {
            if let Some(cell) = row.get_mut(c) {
                *cell = (ch, color);
            }
        }
        // A dependency pushing the task later: show the projected finish.
        if let Some(f) = s.task(&t.id).and_then(|x| x.finish)
            && f > due
            && t.status != TaskStatus::Done
        {
            for c in scale.col(due) + 1..=scale.col(f) {
                if let Some(cell) = row.get_mut(c) {
                    *cell = ('>', Some(AnsiColor::Red));
                }
            }
        }
    } else {
        note = dim(" (no due date)");
    }
    format!("{}{}{note}", label(&t.title, indent), paint_row(&row))
}

/// Render the timeline `width` columns wide (bar area).
pub fn render(view: &PlanView, s: &Schedule, width: usize) -> String {
    let mut dates: Vec<NaiveDate> = vec![view.today];
    for t in &view.tasks {
        dates.extend(t.start.iter().chain(t.due.iter()).copied());
    }
    dates.extend(view.milestones.iter().filter_map(|m| m.due));
    dates.extend(s.go_live.iter().copied());
    dates.extend(s.finish.iter().copied());
    let (Some(lo), Some(hi)) = (dates.iter().min().copied(), dates.iter().max().copied()) else {
        return "nothing to draw".to_string();
    };
    if view.tasks.is_empty() && view.milestones.is_empty() {
        return "nothing to draw yet: add milestones and tasks with due dates".to_string();
    }
    let scale = Scale {
        lo,
        days: (hi - lo).num_days(),
        width,
    };
    let today_col = Some(scale.col(view.today));
    let mut out = Vec::new();
    // Axis: first and last date, today and go-live marks.
    let lo_s = lo.to_string();
    let hi_s = hi.to_string();
    let gap = width.saturating_sub(lo_s.len() + hi_s.len()).max(1);
    out.push(format!(
        "{}{lo_s}{}{hi_s}",
        " ".repeat(LABEL),
        " ".repeat(gap)
    ));
    let mut axis = vec![('─', None); width];
    if let Some(c) = today_col
        && let Some(cell) = axis.get_mut(c)
    {
        *cell = ('|', Some(AnsiColor::Blue));
    }
    if let Some(g) = s.go_live
        && let Some(cell) = axis.get_mut(scale.col(g))
    {
        *cell = ('G', Some(AnsiColor::Magenta));
    }
    out.push(format!("{}{}", label("", 0), paint_row(&axis)));

    for m in &view.milestones {
        let mut row = blank(&scale, today_col);
        if let Some(d) = m.due
            && let Some(cell) = row.get_mut(scale.col(d))
        {
            *cell = (
                '◆',
                Some(if m.overdue {
                    AnsiColor::Red
                } else {
                    AnsiColor::Yellow
                }),
            );
        }
        out.push(format!("{}{}", bold(&label(&m.title, 0)), paint_row(&row)));
        for t in view
            .tasks
            .iter()
            .filter(|t| t.milestone.as_deref() == Some(&m.id) && t.status != TaskStatus::Dropped)
        {
            out.push(task_row(t, s, &scale, today_col, 2));
        }
    }
    let loose: Vec<&TaskView> = view
        .tasks
        .iter()
        .filter(|t| t.milestone.is_none() && t.status != TaskStatus::Dropped)
        .collect();
    if !loose.is_empty() {
        if !view.milestones.is_empty() {
            out.push(bold(&label("(no milestone)", 0)).trim_end().to_string());
        }
        let indent = if view.milestones.is_empty() { 0 } else { 2 };
        for t in loose {
            out.push(task_row(t, s, &scale, today_col, indent));
        }
    }
    out.push(String::new());
    out.push(dim(&format!(
        "today {} (|) · go-live {} (G) · = task  # critical path  - done  > pushed late by dependencies  ◆ milestone",
        view.today,
        s.go_live.map(|d| d.to_string()).unwrap_or("not set".into())
    )));
    out.join("\n")
}
