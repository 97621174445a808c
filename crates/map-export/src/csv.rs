//! The CSV export: one row per live task in the standard MAP columns, with
//! the task id first so `map import` can match rows back to tasks. The
//! `depends on` column lists the titles of the tasks a row waits for,
//! separated by `; `; a title that is not unique (or holds a `;`) is
//! written as the task id instead, so the column always reads back to the
//! same tasks.

use map_model::PlanView;
use map_model::view::TaskView;

use crate::error::ExportError;
use crate::text::date;

/// The CSV header: `id`, then the columns MAP spreadsheets use.
pub const COLUMNS: [&str; 12] = [
    "id",
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

/// Separator between the items of the `depends on` and `notes` cells.
pub const DEP_SEPARATOR: &str = "; ";
/// Separator between comments in the `notes` cell.
pub const NOTE_SEPARATOR: &str = " | ";

/// How a dependency on `id` is written: its title when that names exactly
/// one live task and holds no `;`, else its id.
pub fn dep_label(view: &PlanView, id: &str) -> String {
    let Some(t) = view.task(id) else {
        return id.to_string();
    };
    let key = t.title.trim().to_lowercase();
    let same = view
        .tasks
        .iter()
        .filter(|x| x.title.trim().to_lowercase() == key)
        .count();
    if same == 1 && !t.title.contains(';') && !t.title.trim().is_empty() {
        t.title.trim().to_string()
    } else {
        t.id.clone()
    }
}

/// The `depends on` cell of a task.
pub fn deps_cell(t: &TaskView, view: &PlanView) -> String {
    t.deps
        .iter()
        .map(|d| dep_label(view, d))
        .collect::<Vec<_>>()
        .join(DEP_SEPARATOR)
}

/// One comment as written in the `notes` cell.
pub fn note(author: &str, text: &str) -> String {
    format!("{author}: {text}")
}

/// The `notes` cell of a task: its comments, oldest first.
pub fn notes_cell(t: &TaskView, view: &PlanView) -> String {
    view.comments
        .iter()
        .filter(|c| c.target == t.id)
        .map(|c| note(&c.author, &c.text))
        .collect::<Vec<_>>()
        .join(NOTE_SEPARATOR)
}

/// The `milestone` cell: the milestone's title, or its id when another
/// milestone has the same title.
pub fn milestone_cell(t: &TaskView, view: &PlanView) -> String {
    let (Some(id), Some(title)) = (&t.milestone, &t.milestone_title) else {
        return String::new();
    };
    let key = title.trim().to_lowercase();
    let same = view
        .milestones
        .iter()
        .filter(|m| m.title.trim().to_lowercase() == key)
        .count();
    if same == 1 && !key.is_empty() {
        title.trim().to_string()
    } else {
        id.clone()
    }
}

/// The `owner` cell: the owner's name, or their email (else id) when
/// another person has the same name.
pub fn owner_cell(t: &TaskView, view: &PlanView) -> String {
    let Some(id) = &t.owner else {
        return String::new();
    };
    let Some(p) = view.person(id) else {
        return t.owner_name.clone().unwrap_or_default();
    };
    let key = p.name.trim().to_lowercase();
    let same = view
        .people
        .iter()
        .filter(|x| x.name.trim().to_lowercase() == key)
        .count();
    if same == 1 && !key.is_empty() {
        p.name.trim().to_string()
    } else if !p.email.trim().is_empty() {
        p.email.trim().to_string()
    } else {
        p.id.clone()
    }
}

/// The cells of one task, in [`COLUMNS`] order.
pub fn row(t: &TaskView, view: &PlanView) -> [String; 12] {
    [
        t.id.clone(),
        t.title.clone(),
        t.description.clone(),
        milestone_cell(t, view),
        owner_cell(t, view),
        t.owner_side.map(|s| s.to_string()).unwrap_or_default(),
        date(t.start),
        date(t.due),
        t.status.to_string(),
        date(t.completed),
        deps_cell(t, view),
        notes_cell(t, view),
    ]
}

/// The CSV export.
pub fn write(view: &PlanView) -> Result<Vec<u8>, ExportError> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for t in &view.tasks {
        w.write_record(row(t, view))?;
    }
    w.into_inner()
        .map_err(|e| ExportError::Csv(e.into_error().into()))
}
