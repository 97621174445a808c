//! `map import --format csv FILE [--new TITLE] [--create-people]`: build or
//! update a plan from a spreadsheet in the standard MAP columns (the ones
//! `map export --format csv` writes).
//!
//! Rules:
//! - Only the `step` column is required; a column that is absent leaves
//!   that field alone, an empty cell clears it (start, due, milestone,
//!   owner, description). An empty `status` keeps the status (new tasks:
//!   todo); a `completed` date means done. Unknown columns are ignored
//!   with a warning. Fields are separated by `,` (or `;` / tab when the
//!   header uses those).
//! - A row is matched to a task by its `id` cell (a live task with that
//!   id), else by its `step` title (case-insensitive, must be unique), else
//!   it adds a task. Tasks missing from the file are left as they are.
//! - Milestones are matched by title and created when new. Owners must be
//!   people of the plan (id, name or email) unless `--create-people` is
//!   given; `side` must agree with an existing owner's side.
//! - `depends on` lists, separated by `;`, the ids or titles of rows of the
//!   file or tasks of the plan; it replaces the task's dependencies.
//! - `notes` entries (separated by ` | `) that are not yet comments of the
//!   task are added as comments; comments are never removed.
//! - Only fields that differ are written, so importing what was just
//!   exported changes nothing. Everything is validated before anything is
//!   written, and the whole import is one transaction: on any error, with
//!   the row and column named, nothing is imported.

use chrono::NaiveDate;
use map_export::csv::{NOTE_SEPARATOR, note, notes_cell};
use map_model::identity::Side;
use map_model::plan::{NewPerson, NewTask, TaskEdit};
use map_model::schema::TaskStatus;
use map_model::view::TaskView;
use map_model::{DocumentId, PlanDoc, PlanView};
use std::collections::{BTreeMap, BTreeSet};

use crate::cli::ImportArgs;
use crate::context::{self, Context, keys};
use crate::error::{CliError, Result, io_error};
use crate::plans::{self, Edit, save_plan};

/// The columns `map import` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Col {
    Id,
    Step,
    Description,
    Milestone,
    Owner,
    Side,
    Start,
    Due,
    Status,
    Completed,
    DependsOn,
    Notes,
}

impl Col {
    fn name(self) -> &'static str {
        match self {
            Col::Id => "id",
            Col::Step => "step",
            Col::Description => "description",
            Col::Milestone => "milestone",
            Col::Owner => "owner",
            Col::Side => "side",
            Col::Start => "start",
            Col::Due => "due",
            Col::Status => "status",
            Col::Completed => "completed",
            Col::DependsOn => "depends on",
            Col::Notes => "notes",
        }
    }

    /// A header cell, normalised (case, `_`, spaces), with common aliases.
    fn from_header(h: &str) -> Option<Col> {
        let h = h
            .trim()
            .trim_start_matches('\u{feff}')
            .to_lowercase()
            .replace(['_', '-'], " ");
        let h = h.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(match h.as_str() {
            "id" | "task id" => Col::Id,
            "step" | "title" | "task" | "action item" | "action" => Col::Step,
            "description" | "details" => Col::Description,
            "milestone" | "stage" | "phase" => Col::Milestone,
            "owner" | "assignee" | "responsible" => Col::Owner,
            "side" | "owner side" => Col::Side,
            "start" | "start date" => Col::Start,
            "due" | "due date" | "deadline" => Col::Due,
            "status" => Col::Status,
            "completed" | "completed date" | "completed on" | "done on" => Col::Completed,
            "depends on" | "dependencies" | "deps" | "after" => Col::DependsOn,
            "notes" | "note" | "comments" => Col::Notes,
            _ => return None,
        })
    }
}

/// An error about one cell: the row (spreadsheet numbering, header = 1) and
/// column are named, and the hints say nothing was imported.
fn cell_err(row: usize, col: Col, what: impl Into<String>, hint: impl Into<String>) -> CliError {
    let mut e = CliError::user("invalid import");
    e.message = format!("row {row}, column {}: {}", col.name(), what.into());
    e.hints = vec![hint.into(), "nothing was imported".to_string()];
    e
}

/// Prefix an error from the model with the row and column it came from.
fn at_row(row: usize, col: Col, e: impl Into<CliError>) -> CliError {
    let mut e: CliError = e.into();
    e.message = format!("row {row}, column {}: {}", col.name(), e.message);
    e.hints.push("nothing was imported".to_string());
    e
}

/// One data row of the file, parsed; `None` = column absent.
#[derive(Debug, Clone)]
struct Row {
    /// Spreadsheet row number (the header is row 1).
    n: usize,
    id: Option<String>,
    step: String,
    description: Option<String>,
    milestone: Option<String>,
    owner: Option<String>,
    side: Option<Side>,
    start: Option<Option<NaiveDate>>,
    due: Option<Option<NaiveDate>>,
    status: Option<TaskStatus>,
    completed: Option<NaiveDate>,
    deps: Option<Vec<String>>,
    notes: Option<String>,
}

/// The parsed file.
#[derive(Debug)]
struct Sheet {
    rows: Vec<Row>,
    ignored: Vec<String>,
}

fn parse_date(row: usize, col: Col, s: &str) -> Result<Option<NaiveDate>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return Ok(Some(d));
        }
    }
    Err(cell_err(
        row,
        col,
        format!("'{s}' is not a date"),
        "write dates as YYYY-MM-DD, e.g. 2026-12-24",
    ))
}

/// The field separator: `,`, or `;` / tab when the header line uses
/// those instead (spreadsheets saved in some locales write `;`).
fn delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    let count = |c: char| first.matches(c).count();
    [b';', b'\t']
        .into_iter()
        .filter(|d| count(char::from(*d)) > count(','))
        .max_by_key(|d| count(char::from(*d)))
        .unwrap_or(b',')
}

/// Parse and check the file's text (no plan needed).
fn parse(text: &str) -> Result<Sheet> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter(text))
        .from_reader(text.as_bytes());
    let mut records = rdr.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            return Err(
                CliError::user(format!("row 1: cannot read the header: {e}"))
                    .hint("nothing was imported"),
            );
        }
        None => {
            return Err(CliError::user("the file is empty")
                .hint("export a plan with `map export --format csv` to see the columns"));
        }
    };
    let mut cols: Vec<Option<Col>> = Vec::new();
    let mut has = BTreeSet::new();
    let mut ignored = Vec::new();
    for h in header.iter() {
        let c = Col::from_header(h);
        match c {
            Some(c) if !has.insert(c) => {
                return Err(
                    CliError::user(format!("row 1: column '{}' appears twice", c.name()))
                        .hint("keep one of them; nothing was imported"),
                );
            }
            None if !h.trim().is_empty() => ignored.push(h.trim().to_string()),
            _ => {}
        }
        cols.push(c);
    }
    if !has.contains(&Col::Step) {
        return Err(CliError::user("row 1: the file has no 'step' column").hint(
            "the columns are: id, step, description, milestone, owner, side, start, due, \
             status, completed, depends on, notes (only step is required); nothing was imported",
        ));
    }
    let mut rows = Vec::new();
    for (i, rec) in records.enumerate() {
        let n = i + 2;
        let rec = rec.map_err(|e| {
            CliError::user(format!("row {n}: cannot read the row: {e}"))
                .hint("check the quoting; nothing was imported")
        })?;
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rec.len() > cols.len() && rec.iter().skip(cols.len()).any(|c| !c.trim().is_empty()) {
            return Err(CliError::user(format!(
                "row {n}: {} cells but the header has {} columns",
                rec.len(),
                cols.len()
            ))
            .hint("remove the extra cells or name their column; nothing was imported"));
        }
        let mut cells: BTreeMap<Col, String> = BTreeMap::new();
        for (j, c) in cols.iter().enumerate() {
            if let Some(c) = c {
                cells.insert(*c, rec.get(j).unwrap_or("").to_string());
            }
        }
        let get = |c: Col| cells.get(&c).map(|s| s.trim().to_string());
        let step = get(Col::Step).unwrap_or_default();
        if step.is_empty() {
            return Err(cell_err(
                n,
                Col::Step,
                "the step is empty",
                "give every row a step title, or delete the row",
            ));
        }
        let side = match get(Col::Side).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<Side>().map_err(|_| {
                cell_err(
                    n,
                    Col::Side,
                    format!("'{s}' is not a side"),
                    "use seller, buyer or other",
                )
            })?),
        };
        let status = match get(Col::Status).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<TaskStatus>().map_err(|_| {
                cell_err(
                    n,
                    Col::Status,
                    format!("'{s}' is not a status"),
                    "use todo, in progress, blocked, done or dropped",
                )
            })?),
        };
        let completed = match get(Col::Completed) {
            None => None,
            Some(s) => parse_date(n, Col::Completed, &s)?,
        };
        // A completed date alone (no status) means done.
        let status = status.or(completed.map(|_| TaskStatus::Done));
        if completed.is_some() && status.is_some_and(|s| s != TaskStatus::Done) {
            return Err(cell_err(
                n,
                Col::Completed,
                "a completed date needs status done",
                "set the status to done or clear the completed date",
            ));
        }
        let start = get(Col::Start)
            .map(|s| parse_date(n, Col::Start, &s))
            .transpose()?;
        let due = get(Col::Due)
            .map(|s| parse_date(n, Col::Due, &s))
            .transpose()?;
        if let (Some(Some(s)), Some(Some(d))) = (start, due)
            && s > d
        {
            return Err(cell_err(
                n,
                Col::Start,
                format!("the start {s} is after the due date {d}"),
                "fix one of the two dates",
            ));
        }
        let deps = get(Col::DependsOn).map(|s| {
            s.split(';')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect::<Vec<_>>()
        });
        rows.push(Row {
            n,
            id: get(Col::Id).filter(|s| !s.is_empty()),
            step,
            description: cells.get(&Col::Description).cloned(),
            milestone: get(Col::Milestone),
            owner: get(Col::Owner),
            side,
            start,
            due,
            status,
            completed,
            deps,
            notes: get(Col::Notes),
        });
    }
    Ok(Sheet { rows, ignored })
}

/// A task as the import sees it: one of the plan, or a row's new task.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TaskRef {
    Existing(String),
    New(usize),
}

impl TaskRef {
    fn key(&self) -> String {
        match self {
            TaskRef::Existing(id) => id.clone(),
            TaskRef::New(i) => format!("#new{i}"),
        }
    }
}

/// A person an owner cell names.
#[derive(Debug, Clone)]
enum PersonRef {
    Existing(String),
    New(usize),
}

/// A milestone a milestone cell names.
#[derive(Debug, Clone)]
enum MilestoneRef {
    Existing(String),
    New(usize),
}

/// Everything the import will do, decided before any write.
#[derive(Debug, Default)]
struct Plan {
    new_people: Vec<NewPerson>,
    new_milestones: Vec<String>,
    targets: Vec<TaskRef>,
    owners: Vec<Option<Option<PersonRef>>>,
    milestones: Vec<Option<Option<MilestoneRef>>>,
    deps: Vec<Option<Vec<TaskRef>>>,
}

fn lower(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Resolve every reference of the sheet against the plan, and check the
/// dependencies the import would leave for cycles.
fn resolve(
    sheet: &Sheet,
    view: &PlanView,
    deleted: &BTreeSet<String>,
    create_people: bool,
) -> Result<Plan> {
    let mut plan = Plan::default();
    let live: BTreeMap<&str, &TaskView> = view.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    // Rows -> tasks.
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in sheet.rows.iter().enumerate() {
        let by_id =
            r.id.as_deref()
                .map(lower)
                .filter(|id| live.contains_key(id.as_str()));
        if let Some(id) = r.id.as_deref().map(lower)
            && by_id.is_none()
            && deleted.contains(&id)
        {
            return Err(cell_err(
                r.n,
                Col::Id,
                format!("task {id} was deleted"),
                format!("restore it with `map task restore {id}`, or clear the id to add it again"),
            ));
        }
        let target = match by_id {
            Some(id) => TaskRef::Existing(id),
            None => {
                let same: Vec<&TaskView> = view
                    .tasks
                    .iter()
                    .filter(|t| lower(&t.title) == lower(&r.step))
                    .collect();
                match same.len() {
                    0 => TaskRef::New(i),
                    1 => TaskRef::Existing(same[0].id.clone()),
                    _ => {
                        return Err(cell_err(
                            r.n,
                            Col::Step,
                            format!("{} tasks of the plan are called '{}'", same.len(), r.step),
                            "add an id column (as `map export --format csv` writes) to say which",
                        ));
                    }
                }
            }
        };
        if let TaskRef::Existing(id) = &target
            && let Some(prev) = claimed.insert(id.clone(), r.n)
        {
            let col = if r.id.is_some() { Col::Id } else { Col::Step };
            return Err(cell_err(
                r.n,
                col,
                format!("this is the same task as row {prev}"),
                "keep one row per task",
            ));
        }
        plan.targets.push(target);
    }
    // Owners.
    let mut new_people: BTreeMap<String, usize> = BTreeMap::new();
    for r in &sheet.rows {
        let owner = match r.owner.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(q) => {
                let ql = lower(q);
                let mut hits: Vec<&map_model::view::PersonView> =
                    view.people.iter().filter(|p| p.id == ql).collect();
                if hits.is_empty() {
                    hits = view
                        .people
                        .iter()
                        .filter(|p| lower(&p.name) == ql)
                        .collect();
                }
                if hits.is_empty() {
                    hits = view
                        .people
                        .iter()
                        .filter(|p| !p.email.trim().is_empty() && lower(&p.email) == ql)
                        .collect();
                }
                match hits.len() {
                    1 => {
                        let p = hits[0];
                        if let Some(s) = r.side
                            && s != p.side
                        {
                            return Err(cell_err(
                                r.n,
                                Col::Side,
                                format!("{} is on the {} side, not {s}", p.name, p.side),
                                format!(
                                    "fix the side, or change it with `map person edit \"{}\" --side {s}`",
                                    p.name
                                ),
                            ));
                        }
                        Some(Some(PersonRef::Existing(p.id.clone())))
                    }
                    0 if create_people => {
                        let idx = match new_people.get(&ql) {
                            Some(i) => *i,
                            None => {
                                let i = plan.new_people.len();
                                plan.new_people.push(NewPerson {
                                    name: q.trim().to_string(),
                                    email: String::new(),
                                    side: r.side.unwrap_or_default(),
                                    role: String::new(),
                                });
                                new_people.insert(ql.clone(), i);
                                i
                            }
                        };
                        if let Some(s) = r.side
                            && plan.new_people[idx].side != s
                        {
                            return Err(cell_err(
                                r.n,
                                Col::Side,
                                format!(
                                    "{} is on the {} side in an earlier row",
                                    q.trim(),
                                    plan.new_people[idx].side
                                ),
                                "give the same side in every row of a person",
                            ));
                        }
                        Some(Some(PersonRef::New(idx)))
                    }
                    0 => {
                        return Err(cell_err(
                            r.n,
                            Col::Owner,
                            format!("no person '{}' in the plan", q.trim()),
                            format!(
                                "add them with `map person add \"{}\" --side buyer|seller`, or import with --create-people",
                                q.trim()
                            ),
                        ));
                    }
                    _ => {
                        return Err(cell_err(
                            r.n,
                            Col::Owner,
                            format!("'{}' matches several people", q.trim()),
                            "write the person's email or id instead",
                        ));
                    }
                }
            }
        };
        plan.owners.push(owner);
    }
    // Milestones.
    let mut new_ms: BTreeMap<String, usize> = BTreeMap::new();
    for r in &sheet.rows {
        let ms = match r.milestone.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(q) => {
                let ql = lower(q);
                let mut hits: Vec<&map_model::view::MilestoneView> =
                    view.milestones.iter().filter(|m| m.id == ql).collect();
                if hits.is_empty() {
                    hits = view
                        .milestones
                        .iter()
                        .filter(|m| lower(&m.title) == ql)
                        .collect();
                }
                match hits.len() {
                    0 => {
                        let idx = *new_ms.entry(ql).or_insert_with(|| {
                            plan.new_milestones.push(q.trim().to_string());
                            plan.new_milestones.len() - 1
                        });
                        Some(Some(MilestoneRef::New(idx)))
                    }
                    1 => Some(Some(MilestoneRef::Existing(hits[0].id.clone()))),
                    _ => {
                        return Err(cell_err(
                            r.n,
                            Col::Milestone,
                            format!("{} milestones are called '{}'", hits.len(), q.trim()),
                            "write the milestone's id instead",
                        ));
                    }
                }
            }
        };
        plan.milestones.push(ms);
    }
    // Dependencies.
    let mut by_row_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_row_title: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in sheet.rows.iter().enumerate() {
        if let Some(id) = &r.id {
            by_row_id.insert(lower(id), i);
        }
        by_row_title.entry(lower(&r.step)).or_default().push(i);
    }
    for (i, r) in sheet.rows.iter().enumerate() {
        let Some(tokens) = &r.deps else {
            plan.deps.push(None);
            continue;
        };
        let mut out = Vec::new();
        for tok in tokens {
            let tl = lower(tok);
            let found = if let Some(j) = by_row_id.get(&tl) {
                Some(plan.targets[*j].clone())
            } else if live.contains_key(tl.as_str()) {
                Some(TaskRef::Existing(tl.clone()))
            } else if let Some(js) = by_row_title.get(&tl) {
                if js.len() > 1 {
                    return Err(cell_err(
                        r.n,
                        Col::DependsOn,
                        format!("several rows are called '{tok}'"),
                        "use the task's id instead",
                    ));
                }
                Some(plan.targets[js[0]].clone())
            } else {
                let same: Vec<&TaskView> = view
                    .tasks
                    .iter()
                    .filter(|t| lower(&t.title) == tl)
                    .collect();
                let pre: Vec<&TaskView> = view
                    .tasks
                    .iter()
                    .filter(|t| tl.len() >= 4 && t.id.starts_with(&tl))
                    .collect();
                if same.len() == 1 {
                    Some(TaskRef::Existing(same[0].id.clone()))
                } else if same.is_empty() && pre.len() == 1 {
                    Some(TaskRef::Existing(pre[0].id.clone()))
                } else if same.len() > 1 {
                    return Err(cell_err(
                        r.n,
                        Col::DependsOn,
                        format!("several tasks are called '{tok}'"),
                        "use the task's id instead",
                    ));
                } else {
                    None
                }
            };
            let Some(found) = found else {
                return Err(cell_err(
                    r.n,
                    Col::DependsOn,
                    format!("no task '{tok}' in the file or the plan"),
                    "write the title or id of a task, several separated by ';'",
                ));
            };
            if found == plan.targets[i] {
                return Err(cell_err(
                    r.n,
                    Col::DependsOn,
                    "a task cannot depend on itself",
                    "remove it from the list",
                ));
            }
            if !out.contains(&found) {
                out.push(found);
            }
        }
        plan.deps.push(Some(out));
    }
    // The dependency graph after the import must have no cycle.
    let mut edges: map_model::deps::Edges = BTreeMap::new();
    for t in &view.tasks {
        if !t.deps.is_empty() {
            edges.insert(t.id.clone(), t.deps.iter().cloned().collect());
        }
    }
    let mut row_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in sheet.rows.iter().enumerate() {
        let key = plan.targets[i].key();
        row_of.insert(key.clone(), r.n);
        if let Some(d) = &plan.deps[i] {
            edges.insert(key, d.iter().map(TaskRef::key).collect());
        }
    }
    if let Some(cycle) = map_model::deps::find_cycle(&edges) {
        let names: Vec<String> = cycle
            .iter()
            .map(|k| match row_of.get(k) {
                Some(n) => format!("row {n}"),
                None => live
                    .get(k.as_str())
                    .map(|t| format!("'{}'", t.title))
                    .unwrap_or_else(|| k.clone()),
            })
            .collect();
        let n = cycle
            .iter()
            .find_map(|k| row_of.get(k))
            .copied()
            .unwrap_or(1);
        return Err(cell_err(
            n,
            Col::DependsOn,
            format!("the dependencies form a cycle: {}", names.join(" -> ")),
            "remove one of the dependencies",
        ));
    }
    Ok(plan)
}

/// What an import did.
#[derive(Debug, Default)]
struct Counts {
    added: usize,
    updated: usize,
    unchanged: usize,
    people: usize,
    milestones: usize,
}

/// The entries of a `notes` cell that are not yet comments of task `id`
/// (an entry matches a comment as `author: text` or as its text alone).
fn new_notes<'a>(notes: &'a str, id: &str, view: &PlanView) -> Vec<&'a str> {
    let notes = notes.trim();
    if notes.is_empty() {
        return Vec::new();
    }
    if view
        .task(id)
        .is_some_and(|t| notes_cell(t, view).trim() == notes)
    {
        return Vec::new();
    }
    let existing: BTreeSet<String> = view
        .comments
        .iter()
        .filter(|c| c.target == id)
        .flat_map(|c| {
            [
                note(&c.author, &c.text).trim().to_string(),
                c.text.trim().to_string(),
            ]
        })
        .collect();
    let mut out: Vec<&str> = Vec::new();
    for part in notes.split(NOTE_SEPARATOR).map(str::trim) {
        if !part.is_empty() && !existing.contains(part) && !out.contains(&part) {
            out.push(part);
        }
    }
    out
}

/// Apply a resolved import to `doc`. Model errors name the row.
fn apply(
    doc: &mut PlanDoc,
    ed: &Edit,
    sheet: &Sheet,
    plan: &Plan,
    view: &PlanView,
) -> Result<Counts> {
    let mut counts = Counts::default();
    let by = &ed.by;
    let now = ed.now;
    let mut people = Vec::new();
    for p in &plan.new_people {
        people.push(doc.add_person(by, now, p.clone())?);
        counts.people += 1;
    }
    let mut milestones = Vec::new();
    for m in &plan.new_milestones {
        milestones.push(doc.add_milestone(by, now, m, None)?);
        counts.milestones += 1;
    }
    let person = |r: &PersonRef| match r {
        PersonRef::Existing(id) => id.clone(),
        PersonRef::New(i) => people[*i].clone(),
    };
    let milestone = |r: &MilestoneRef| match r {
        MilestoneRef::Existing(id) => id.clone(),
        MilestoneRef::New(i) => milestones[*i].clone(),
    };
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (i, r) in sheet.rows.iter().enumerate() {
        let owner = plan.owners[i].as_ref().map(|o| o.as_ref().map(&person));
        let ms = plan.milestones[i]
            .as_ref()
            .map(|m| m.as_ref().map(&milestone));
        match &plan.targets[i] {
            TaskRef::New(_) => {
                let status = r.status.unwrap_or_default();
                let id = doc
                    .add_task(
                        by,
                        now,
                        r.completed.unwrap_or(ed.today),
                        NewTask {
                            title: r.step.clone(),
                            description: r.description.clone().unwrap_or_default(),
                            milestone: ms.flatten(),
                            owner: owner.flatten(),
                            start: r.start.flatten(),
                            due: r.due.flatten(),
                            status,
                            ..NewTask::default()
                        },
                    )
                    .map_err(|e| at_row(r.n, Col::Step, e))?;
                ids.insert(plan.targets[i].key(), id);
                counts.added += 1;
            }
            TaskRef::Existing(id) => {
                ids.insert(id.clone(), id.clone());
                let Some(t) = view.task(id) else { continue };
                let mut edit = TaskEdit::default();
                let mut changed = false;
                if r.step.trim() != t.title.trim() {
                    edit.title = Some(r.step.clone());
                }
                if let Some(d) = &r.description
                    && d != &t.description
                {
                    edit.description = Some(d.clone());
                }
                if let Some(m) = ms
                    && m != t.milestone
                {
                    edit.milestone = Some(m);
                }
                if let Some(o) = owner
                    && o != t.owner
                {
                    edit.owner = Some(o);
                }
                if let Some(s) = r.start
                    && s != t.start
                {
                    edit.start = Some(s);
                }
                if let Some(d) = r.due
                    && d != t.due
                {
                    edit.due = Some(d);
                }
                if edit.title.is_some()
                    || edit.description.is_some()
                    || edit.milestone.is_some()
                    || edit.owner.is_some()
                    || edit.start.is_some()
                    || edit.due.is_some()
                {
                    doc.edit_task(by, now, id, edit)
                        .map_err(|e| at_row(r.n, Col::Step, e))?;
                    changed = true;
                }
                let status_change = match r.status {
                    Some(s) if s != t.status => true,
                    Some(TaskStatus::Done) => r.completed.is_some_and(|c| Some(c) != t.completed),
                    _ => false,
                };
                if let (true, Some(s)) = (status_change, r.status) {
                    doc.set_status(by, now, r.completed.unwrap_or(ed.today), id, s)
                        .map_err(|e| at_row(r.n, Col::Status, e))?;
                    changed = true;
                }
                let deps_change = plan.deps[i].as_ref().is_some_and(|d| {
                    let want: BTreeSet<String> = d.iter().map(TaskRef::key).collect();
                    let have: BTreeSet<String> = t.deps.iter().cloned().collect();
                    want != have
                });
                let notes_change = r
                    .notes
                    .as_deref()
                    .is_some_and(|n| !new_notes(n, id, view).is_empty());
                if changed || deps_change || notes_change {
                    counts.updated += 1;
                } else {
                    counts.unchanged += 1;
                }
            }
        }
    }
    // Dependencies, once every task exists.
    for (i, r) in sheet.rows.iter().enumerate() {
        let Some(want) = &plan.deps[i] else { continue };
        let key = plan.targets[i].key();
        let Some(id) = ids.get(&key).cloned() else {
            continue;
        };
        let want: BTreeSet<String> = want
            .iter()
            .filter_map(|d| ids.get(&d.key()).cloned())
            .collect();
        let have: BTreeSet<String> = view
            .task(&id)
            .map(|t| t.deps.iter().cloned().collect())
            .unwrap_or_default();
        for gone in have.difference(&want) {
            doc.remove_dep(by, now, &id, gone)
                .map_err(|e| at_row(r.n, Col::DependsOn, e))?;
        }
        for new in want.difference(&have) {
            doc.add_dep(by, now, &id, new)
                .map_err(|e| at_row(r.n, Col::DependsOn, e))?;
        }
    }
    // Notes: entries that are not comments yet become comments.
    for (i, r) in sheet.rows.iter().enumerate() {
        let Some(notes) = r.notes.as_deref() else {
            continue;
        };
        let Some(id) = ids.get(&plan.targets[i].key()).cloned() else {
            continue;
        };
        for part in new_notes(notes, &id, view) {
            doc.add_comment(by, now, &id, part)
                .map_err(|e| at_row(r.n, Col::Notes, e))?;
        }
    }
    Ok(counts)
}

/// `map import`.
pub fn run(ctx: &mut Context, args: ImportArgs) -> Result<()> {
    if args.new.is_some() && ctx.plan_arg.is_some() {
        return Err(CliError::user("give either --plan or --new, not both")
            .hint("--plan updates a plan, --new creates one"));
    }
    if let Some(t) = &args.new {
        crate::commands::non_empty("plan title", t)?;
    }
    let bytes = std::fs::read(&args.file)
        .map_err(|e| io_error(format!("cannot read {}", args.file.display()), e))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        CliError::user(format!("{} is not UTF-8 text", args.file.display()))
            .hint("save the spreadsheet as \"CSV UTF-8\"; nothing was imported")
    })?;
    let sheet = parse(&text)?;
    let clock = ctx.clock;
    let plan_arg = ctx.plan_arg.clone();
    let new_title = args.new.clone();
    let create_people = args.create_people;
    let (id, counts, saved) = ctx.store()?.write(|tx| {
        let ed = Edit {
            by: context::identity(tx)?,
            now: clock.now_ms,
            today: clock.today,
        };
        let (id, mut doc) = match &new_title {
            Some(title) => {
                let mut doc = PlanDoc::create(title, &ed.by, ed.now)?;
                doc.doc_mut().set_actor(context::actor(tx)?);
                (DocumentId::random().to_string(), doc)
            }
            None => {
                let row = plans::target_plan(tx, plan_arg.as_deref())?;
                let doc = plans::load_plan(tx, &row.id)?;
                (row.id, doc)
            }
        };
        let view = doc.view(ed.today)?;
        let deleted: BTreeSet<String> = doc
            .raw()?
            .tasks
            .iter()
            .filter(|t| t.deleted)
            .map(|t| t.id.clone())
            .collect();
        let plan = resolve(&sheet, &view, &deleted, create_people)?;
        let counts = apply(&mut doc, &ed, &sheet, &plan, &view)?;
        let saved = save_plan(tx, &id, &mut doc, ed.today, ed.now)?;
        if new_title.is_some() {
            tx.set_setting(keys::CURRENT_PLAN, &id)?;
        }
        Ok::<_, CliError>((id, counts, saved))
    })?;
    let mut lines = Vec::new();
    if let Some(t) = &new_title {
        lines.push(format!("saved: plan create: {}", t.trim()));
        lines.push(format!("id:  {id}"));
    }
    let mut what = vec![
        format!("{} tasks added", counts.added),
        format!("{} updated", counts.updated),
        format!("{} unchanged", counts.unchanged),
    ];
    if counts.milestones > 0 {
        what.push(format!("{} milestones added", counts.milestones));
    }
    if counts.people > 0 {
        what.push(format!("{} people added", counts.people));
    }
    lines.push(format!(
        "imported {}: {}",
        args.file.display(),
        what.join(", ")
    ));
    if saved.messages.is_empty() {
        lines.push("nothing changed".to_string());
    } else {
        lines.push(format!("{} changes saved", saved.messages.len()));
    }
    crate::commands::say(&lines)?;
    if !sheet.ignored.is_empty() {
        eprintln!("warning: ignored columns: {}", sheet.ignored.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_aliases() {
        assert_eq!(Col::from_header(" Depends_On "), Some(Col::DependsOn));
        assert_eq!(Col::from_header("\u{feff}ID"), Some(Col::Id));
        assert_eq!(Col::from_header("Due date"), Some(Col::Due));
        assert_eq!(Col::from_header("colour"), None);
    }

    #[test]
    fn separators_are_sniffed() {
        assert_eq!(delimiter("step,due\n"), b',');
        assert_eq!(delimiter("step;due;owner\nA;2026-12-01;B\n"), b';');
        assert_eq!(delimiter("step\tdue\n"), b'\t');
        assert_eq!(delimiter("step\n"), b',');
        let s = parse("step;due\n\"A; B\";2026-12-24\n").unwrap();
        assert_eq!(s.rows[0].step, "A; B");
    }

    #[test]
    fn parse_checks_cells() {
        let s = parse("step,due,status\nA,2026-12-24,in progress\n,,\n").unwrap();
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0].status, Some(TaskStatus::InProgress));
        let e = parse("step,due\nA,24/12/2026\n").unwrap_err();
        assert_eq!(e.message, "row 2, column due: '24/12/2026' is not a date");
        let e = parse("step,status\nA,finished\n").unwrap_err();
        assert_eq!(
            e.message,
            "row 2, column status: 'finished' is not a status"
        );
        let e = parse("title,title\n").unwrap_err();
        assert!(e.message.contains("appears twice"), "{}", e.message);
        let e = parse("owner,due\nBob,\n").unwrap_err();
        assert!(e.message.contains("no 'step' column"));
        let e = parse("step,status,completed\nA,todo,2026-12-01\n").unwrap_err();
        assert!(e.message.contains("completed date needs status done"));
        let s = parse("step,depends on\nA,\"B; C ;\"\n").unwrap();
        assert_eq!(
            s.rows[0].deps.as_deref(),
            Some(&["B".to_string(), "C".to_string()][..])
        );
    }
}
