//! The task table of `map show` and `map task list`: status colours,
//! overdue highlighted, blocked tasks marked.

use comfy_table::{Cell, Color};
use map_export::text::owner_label;
use map_model::PlanView;
use map_model::schema::TaskStatus;
use map_model::view::TaskView;

use crate::render::{self, cell, finish, prefix_len, short};

/// The colour of a status.
pub fn status_color(s: TaskStatus) -> Color {
    match s {
        TaskStatus::Todo => Color::Reset,
        TaskStatus::InProgress => Color::Cyan,
        TaskStatus::Blocked => Color::Magenta,
        TaskStatus::Done => Color::Green,
        TaskStatus::Dropped => Color::DarkGrey,
    }
}

/// Render `tasks` (a subset of `view.tasks`) as a table.
pub fn table(tasks: &[&TaskView], view: &PlanView) -> String {
    let len = prefix_len(view.tasks.iter().map(|t| t.id.as_str()));
    let mut t = render::table(&["ID", "STATUS", "TASK", "OWNER", "DUE", "MILESTONE"]);
    for task in tasks {
        let mut status = task.status.to_string();
        if task.is_waiting() {
            status.push_str(" (waiting)");
        }
        let owner = owner_label(task);
        let due = match task.due {
            Some(d) if task.overdue => format!("{d} overdue"),
            Some(d) => d.to_string(),
            None => String::new(),
        };
        let title_color = if task.status.is_closed() {
            Some(Color::DarkGrey)
        } else {
            None
        };
        t.add_row(vec![
            cell(short(&task.id, len), Some(Color::Yellow)),
            cell(status, Some(status_color(task.status))),
            cell(&task.title, title_color),
            Cell::new(owner),
            cell(due, task.overdue.then_some(Color::Red)),
            Cell::new(task.milestone_title.as_deref().unwrap_or("")),
        ]);
    }
    finish(&t)
}
