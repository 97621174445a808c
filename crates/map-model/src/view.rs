//! `PlanView`: a self-contained, serialisable snapshot of a plan with every
//! derived value a reader needs (progress, overdue and blocked flags, owner
//! and milestone names, warnings about dangling references and cycles).
//!
//! It is cached by the store (JSON/CBOR) so `map show` never has to load the
//! Automerge document, and printed by `map show --json`. Lists are sorted by
//! `order` then id; deleted items are left out (and counted). Anything a
//! merge made invalid (a dangling reference, a dependency cycle, two people
//! with one email) is shown as missing or broken, with a warning, never as
//! valid.

use std::collections::{BTreeMap, BTreeSet};

use automerge::Automerge;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::deps::{self, CycleBreak};
use crate::error::Result;
use crate::identity::Side;
use crate::insights;
use crate::raw::{self, RawPlan, Texts};
use crate::schema::{
    EntityKind, Level, Priority, RiskStatus, TaskKind, TaskStatus, date_from_stored,
};

/// Done / total and percentage (dropped tasks excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Tasks done.
    pub done: usize,
    /// Tasks counted (not dropped).
    pub total: usize,
    /// `done * 100 / total`, rounded down; 0 for an empty list.
    pub percent: u8,
}

/// The plan header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderView {
    /// Title.
    pub title: String,
    /// Objective.
    pub objective: String,
    /// Success criteria.
    pub success_criteria: String,
    /// Target signature date.
    pub signature_date: Option<NaiveDate>,
    /// Target go-live date.
    pub go_live: Option<NaiveDate>,
    /// Creation time (ms).
    pub created_at: Option<i64>,
}

/// A person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Side.
    pub side: Side,
    /// Role.
    pub role: String,
    /// Order.
    pub order: f64,
    /// Open tasks owned.
    pub open_tasks: usize,
}

/// A milestone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MilestoneView {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Due date.
    pub due: Option<NaiveDate>,
    /// Order.
    pub order: f64,
    /// Progress of its live tasks.
    pub progress: Progress,
    /// Due before today with open tasks left.
    pub overdue: bool,
}

/// A task with its derived values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Milestone id (None if unset or if it refers to a missing/deleted milestone).
    pub milestone: Option<String>,
    /// Milestone title.
    pub milestone_title: Option<String>,
    /// Owner person id (None if unset or if the person is gone).
    pub owner: Option<String>,
    /// Owner name.
    pub owner_name: Option<String>,
    /// Owner side.
    pub owner_side: Option<Side>,
    /// Start date.
    pub start: Option<NaiveDate>,
    /// Due date.
    pub due: Option<NaiveDate>,
    /// Status.
    pub status: TaskStatus,
    /// Completed date (only when done).
    pub completed: Option<NaiveDate>,
    /// Kind.
    pub kind: TaskKind,
    /// Priority.
    pub priority: Priority,
    /// Order.
    pub order: f64,
    /// Creation time (ms).
    pub created_at: Option<i64>,
    /// Valid dependencies (live tasks, cycles broken), sorted.
    pub deps: Vec<String>,
    /// Dependencies not done yet (subset of `deps`).
    pub blocked_by: Vec<String>,
    /// Status is blocked, or a dependency is not done.
    pub blocked: bool,
    /// Due before today and not done/dropped.
    pub overdue: bool,
    /// Number of comments.
    pub comments: usize,
}

/// A risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskView {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Impact.
    pub impact: Level,
    /// Likelihood.
    pub likelihood: Level,
    /// Mitigation.
    pub mitigation: String,
    /// Owner person id (None if unset or gone).
    pub owner: Option<String>,
    /// Owner name.
    pub owner_name: Option<String>,
    /// Status.
    pub status: RiskStatus,
    /// Order.
    pub order: f64,
}

/// A comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentView {
    /// Id.
    pub id: String,
    /// Target entity id.
    pub target: String,
    /// Kind of the target (None if the target is gone).
    pub target_kind: Option<EntityKind>,
    /// Author.
    pub author: String,
    /// Time (ms).
    pub at: i64,
    /// Text.
    pub text: String,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// A reference to a milestone that is deleted or missing.
    DanglingMilestone,
    /// A reference to a person who was removed.
    DanglingOwner,
    /// A dependency on a deleted or missing task.
    DanglingDependency,
    /// A dependency cycle (one edge is ignored).
    DependencyCycle,
    /// Two people share one email.
    DuplicateEmail,
    /// A field holds a value this version does not understand.
    BadValue,
    /// A comment whose target is gone.
    OrphanComment,
}

/// A human-readable warning about the plan's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// What kind of problem.
    pub kind: WarningKind,
    /// Ids involved.
    pub ids: Vec<String>,
    /// Human text.
    pub message: String,
}

/// Counts of soft-deleted items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedCounts {
    /// Deleted milestones.
    pub milestones: usize,
    /// Deleted tasks.
    pub tasks: usize,
}

/// Everything `map show` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    /// Schema version of the document.
    pub schema: u64,
    /// The date the derived values were computed for.
    pub today: NaiveDate,
    /// Header.
    pub header: HeaderView,
    /// People.
    pub people: Vec<PersonView>,
    /// Live milestones.
    pub milestones: Vec<MilestoneView>,
    /// Live tasks.
    pub tasks: Vec<TaskView>,
    /// Risks.
    pub risks: Vec<RiskView>,
    /// Comments on live items, oldest first.
    pub comments: Vec<CommentView>,
    /// Progress of the whole plan.
    pub progress: Progress,
    /// Problems a merge left (deterministic order).
    pub warnings: Vec<Warning>,
    /// Dependencies ignored to break cycles.
    pub cycle_breaks: Vec<CycleBreak>,
    /// Heads, sorted hex.
    pub heads: Vec<String>,
    /// Number of fields holding concurrent values (see `map conflicts`).
    pub conflicts: usize,
    /// Soft-deleted items.
    pub deleted: DeletedCounts,
}

impl TaskView {
    /// Open, not explicitly blocked, but waiting on an unfinished dependency.
    pub fn is_waiting(&self) -> bool {
        self.blocked && self.status != TaskStatus::Blocked && !self.status.is_closed()
    }
}

impl PlanView {
    /// A task by id.
    pub fn task(&self, id: &str) -> Option<&TaskView> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// A person by id.
    pub fn person(&self, id: &str) -> Option<&PersonView> {
        self.people.iter().find(|p| p.id == id)
    }

    /// A milestone by id.
    pub fn milestone(&self, id: &str) -> Option<&MilestoneView> {
        self.milestones.iter().find(|m| m.id == id)
    }
}

fn by_order<T>(v: &mut [T], key: impl Fn(&T) -> (f64, &str)) {
    v.sort_by(|a, b| {
        let (oa, ia) = key(a);
        let (ob, ib) = key(b);
        oa.total_cmp(&ob).then_with(|| ia.cmp(ib))
    });
}

fn parse_date(
    warnings: &mut Vec<Warning>,
    what: &str,
    id: &str,
    field: &str,
    v: &Option<String>,
) -> Option<NaiveDate> {
    let s = v.as_deref()?;
    let d = date_from_stored(s);
    if d.is_none() {
        warnings.push(Warning {
            kind: WarningKind::BadValue,
            ids: vec![id.to_string()],
            message: format!("{what} has an invalid {field} '{s}' (ignored)"),
        });
    }
    d
}

fn parse_enum<T: Default>(
    warnings: &mut Vec<Warning>,
    what: &str,
    id: &str,
    field: &str,
    v: &Option<String>,
    parse: impl Fn(&str) -> Option<T>,
) -> T {
    match v.as_deref() {
        None => T::default(),
        Some(s) => parse(s).unwrap_or_else(|| {
            warnings.push(Warning {
                kind: WarningKind::BadValue,
                ids: vec![id.to_string()],
                message: format!("{what} has an unknown {field} '{s}' (read as default)"),
            });
            T::default()
        }),
    }
}

/// Build the view of a document for `today`.
pub fn build(doc: &Automerge, today: NaiveDate) -> Result<PlanView> {
    let plan = raw::read_plan(doc, Texts::Read)?;
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    Ok(from_raw(&plan, today, heads))
}

/// Build the view from an already-read plan.
pub fn from_raw(plan: &RawPlan, today: NaiveDate, heads: Vec<String>) -> PlanView {
    let mut warnings = Vec::new();

    // Header.
    let h = &plan.header;
    let header = HeaderView {
        title: h.title.clone(),
        objective: h.objective.clone(),
        success_criteria: h.success_criteria.clone(),
        signature_date: parse_date(
            &mut warnings,
            "the plan",
            "header",
            "signature date",
            &h.signature_date,
        ),
        go_live: parse_date(
            &mut warnings,
            "the plan",
            "header",
            "go-live date",
            &h.go_live,
        ),
        created_at: h.created_at,
    };

    // People.
    let mut people: Vec<PersonView> = plan
        .people
        .iter()
        .map(|p| PersonView {
            id: p.id.clone(),
            name: p.name.clone(),
            email: p.email.clone(),
            side: Side::from_stored(&p.side),
            role: p.role.clone(),
            order: p.order,
            open_tasks: 0,
        })
        .collect();
    by_order(&mut people, |p| (p.order, &p.id));
    let mut by_email: BTreeMap<String, Vec<&PersonView>> = BTreeMap::new();
    for p in &people {
        let e = p.email.trim().to_lowercase();
        if !e.is_empty() {
            by_email.entry(e).or_default().push(p);
        }
    }
    for (email, ps) in &by_email {
        if ps.len() > 1 {
            let mut ids: Vec<String> = ps.iter().map(|p| p.id.clone()).collect();
            ids.sort();
            let names: Vec<String> = ps
                .iter()
                .map(|p| format!("{} ({})", p.name, p.id))
                .collect();
            warnings.push(Warning {
                kind: WarningKind::DuplicateEmail,
                ids,
                message: format!(
                    "{} people share email {email}: {}; remove the duplicate with `map person remove`",
                    ps.len(),
                    names.join(", ")
                ),
            });
        }
    }
    let person_idx: BTreeMap<String, usize> = people
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();

    // Milestones.
    let mut deleted = DeletedCounts::default();
    let all_ms: BTreeMap<&str, &crate::raw::RawMilestone> =
        plan.milestones.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut milestones: Vec<MilestoneView> = Vec::new();
    for m in &plan.milestones {
        if m.deleted {
            deleted.milestones += 1;
            continue;
        }
        milestones.push(MilestoneView {
            id: m.id.clone(),
            title: m.title.clone(),
            due: parse_date(
                &mut warnings,
                &format!("milestone '{}'", m.title),
                &m.id,
                "due date",
                &m.due,
            ),
            order: m.order,
            progress: Progress::default(),
            overdue: false,
        });
    }
    by_order(&mut milestones, |m| (m.order, &m.id));

    // Tasks and dependencies.
    let all_tasks: BTreeMap<&str, &crate::raw::RawTask> =
        plan.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    for t in plan.tasks.iter().filter(|t| !t.deleted) {
        for d in &t.deps {
            let why = match all_tasks.get(d.as_str()) {
                None => Some("a missing task"),
                Some(dt) if dt.deleted => Some("a deleted task"),
                Some(_) if d == &t.id => Some("itself"),
                Some(_) => None,
            };
            if let Some(why) = why {
                let label = all_tasks
                    .get(d.as_str())
                    .map(|x| x.title.as_str())
                    .unwrap_or("?");
                warnings.push(Warning {
                    kind: WarningKind::DanglingDependency,
                    ids: vec![t.id.clone(), d.clone()],
                    message: format!(
                        "task '{}' ({}) depends on {why} '{label}' ({d}); the dependency is ignored (`map dep rm` removes it)",
                        t.title, t.id
                    ),
                });
            }
        }
    }
    let mut edges = crate::plan::live_edges(plan);
    let cycle_breaks = deps::break_cycles(&mut edges);
    for b in &cycle_breaks {
        let names: Vec<String> = b
            .cycle
            .iter()
            .map(|id| {
                format!(
                    "'{}' ({id})",
                    all_tasks
                        .get(id.as_str())
                        .map(|t| t.title.as_str())
                        .unwrap_or("?")
                )
            })
            .collect();
        let title = |id: &str| {
            all_tasks
                .get(id)
                .map(|t| t.title.clone())
                .unwrap_or_default()
        };
        warnings.push(Warning {
            kind: WarningKind::DependencyCycle,
            ids: b.cycle.clone(),
            message: format!(
                "dependency cycle between {}; ignoring '{}' needs '{}' (remove one with `map dep rm`)",
                names.join(", "),
                title(&b.from),
                title(&b.to)
            ),
        });
    }

    let mut comment_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &plan.comments {
        *comment_counts.entry(c.target.as_str()).or_default() += 1;
    }

    let status_of = |t: &crate::raw::RawTask| {
        t.status
            .as_deref()
            .and_then(TaskStatus::from_stored)
            .unwrap_or_default()
    };

    let mut tasks: Vec<TaskView> = Vec::new();
    for t in &plan.tasks {
        if t.deleted {
            deleted.tasks += 1;
            continue;
        }
        let what = format!("task '{}'", t.title);
        let status = parse_enum(
            &mut warnings,
            &what,
            &t.id,
            "status",
            &t.status,
            TaskStatus::from_stored,
        );
        let kind = parse_enum(
            &mut warnings,
            &what,
            &t.id,
            "kind",
            &t.kind,
            TaskKind::from_stored,
        );
        let priority = parse_enum(
            &mut warnings,
            &what,
            &t.id,
            "priority",
            &t.priority,
            Priority::from_stored,
        );
        let (milestone, milestone_title) = match t.milestone.as_deref() {
            None => (None, None),
            Some(m) => match all_ms.get(m) {
                Some(ms) if !ms.deleted => (Some(m.to_string()), Some(ms.title.clone())),
                found => {
                    let (why, label) = match found {
                        Some(ms) => ("deleted", ms.title.as_str()),
                        None => ("missing", "?"),
                    };
                    warnings.push(Warning {
                        kind: WarningKind::DanglingMilestone,
                        ids: vec![t.id.clone(), m.to_string()],
                        message: format!(
                            "task '{}' ({}) refers to {why} milestone '{label}' ({m}); shown without a milestone (`map task move` or `map milestone restore`)",
                            t.title, t.id
                        ),
                    });
                    (None, None)
                }
            },
        };
        let (owner, owner_name, owner_side) = match t.owner.as_deref() {
            None => (None, None, None),
            Some(o) => match person_idx.get(o) {
                Some(&i) => (
                    Some(o.to_string()),
                    Some(people[i].name.clone()),
                    Some(people[i].side),
                ),
                None => {
                    warnings.push(Warning {
                        kind: WarningKind::DanglingOwner,
                        ids: vec![t.id.clone(), o.to_string()],
                        message: format!(
                            "task '{}' ({}) is owned by a removed person ({o}); shown unassigned (`map task edit --owner`)",
                            t.title, t.id
                        ),
                    });
                    (None, None, None)
                }
            },
        };
        let deps: Vec<String> = edges
            .get(&t.id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let blocked_by: Vec<String> = deps
            .iter()
            .filter(|d| {
                all_tasks
                    .get(d.as_str())
                    .is_none_or(|dt| !status_of(dt).is_closed())
            })
            .cloned()
            .collect();
        let due = parse_date(&mut warnings, &what, &t.id, "due date", &t.due);
        let open = !status.is_closed();
        let blocked = open && (status == TaskStatus::Blocked || !blocked_by.is_empty());
        tasks.push(TaskView {
            id: t.id.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            milestone,
            milestone_title,
            owner,
            owner_name,
            owner_side,
            start: parse_date(&mut warnings, &what, &t.id, "start date", &t.start),
            due,
            status,
            completed: if status == TaskStatus::Done {
                t.completed.as_deref().and_then(date_from_stored)
            } else {
                None
            },
            kind,
            priority,
            order: t.order,
            created_at: t.created_at,
            deps,
            blocked_by,
            blocked,
            overdue: insights::is_overdue(status, due, today),
            comments: comment_counts.get(t.id.as_str()).copied().unwrap_or(0),
        });
    }
    by_order(&mut tasks, |t| (t.order, &t.id));

    // Progress and per-person counts.
    for m in &mut milestones {
        m.progress = insights::progress(
            tasks
                .iter()
                .filter(|t| t.milestone.as_deref() == Some(m.id.as_str())),
        );
        m.overdue = m.due.is_some_and(|d| d < today) && m.progress.done < m.progress.total;
    }
    let progress = insights::progress(tasks.iter());
    for t in tasks.iter().filter(|t| !t.status.is_closed()) {
        if let Some(i) = t.owner.as_deref().and_then(|o| person_idx.get(o)) {
            people[*i].open_tasks += 1;
        }
    }

    // Risks.
    let mut risks: Vec<RiskView> = Vec::new();
    for r in &plan.risks {
        let what = format!("risk '{}'", r.title);
        let owner = r.owner.as_deref().and_then(|o| {
            if person_idx.contains_key(o) {
                Some(o.to_string())
            } else {
                warnings.push(Warning {
                    kind: WarningKind::DanglingOwner,
                    ids: vec![r.id.clone(), o.to_string()],
                    message: format!(
                        "risk '{}' ({}) is owned by a removed person ({o}); shown unassigned",
                        r.title, r.id
                    ),
                });
                None
            }
        });
        let owner_name = owner
            .as_deref()
            .and_then(|o| person_idx.get(o))
            .map(|&i| people[i].name.clone());
        risks.push(RiskView {
            id: r.id.clone(),
            title: r.title.clone(),
            impact: parse_enum(
                &mut warnings,
                &what,
                &r.id,
                "impact",
                &r.impact,
                Level::from_stored,
            ),
            likelihood: parse_enum(
                &mut warnings,
                &what,
                &r.id,
                "likelihood",
                &r.likelihood,
                Level::from_stored,
            ),
            mitigation: r.mitigation.clone(),
            owner,
            owner_name,
            status: parse_enum(
                &mut warnings,
                &what,
                &r.id,
                "status",
                &r.status,
                RiskStatus::from_stored,
            ),
            order: r.order,
        });
    }
    by_order(&mut risks, |r| (r.order, &r.id));

    // Comments: only on live targets.
    let live_tasks: BTreeSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    let live_ms: BTreeSet<&str> = milestones.iter().map(|m| m.id.as_str()).collect();
    let risk_ids: BTreeSet<&str> = risks.iter().map(|r| r.id.as_str()).collect();
    let mut comments: Vec<CommentView> = Vec::new();
    for c in &plan.comments {
        let target_kind = if live_tasks.contains(c.target.as_str()) {
            Some(EntityKind::Task)
        } else if live_ms.contains(c.target.as_str()) {
            Some(EntityKind::Milestone)
        } else if risk_ids.contains(c.target.as_str()) {
            Some(EntityKind::Risk)
        } else {
            None
        };
        // Comments on deleted items stay hidden with them; only truly
        // missing targets are reported.
        if target_kind.is_none() {
            if !all_tasks.contains_key(c.target.as_str()) && !all_ms.contains_key(c.target.as_str())
            {
                warnings.push(Warning {
                    kind: WarningKind::OrphanComment,
                    ids: vec![c.id.clone(), c.target.clone()],
                    message: format!("comment {} refers to a missing item ({})", c.id, c.target),
                });
            }
            continue;
        }
        comments.push(CommentView {
            id: c.id.clone(),
            target: c.target.clone(),
            target_kind,
            author: c.author.clone(),
            at: c.at,
            text: c.text.clone(),
        });
    }
    comments.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));

    warnings.sort_by(|a, b| (a.kind, &a.ids, &a.message).cmp(&(b.kind, &b.ids, &b.message)));
    warnings.dedup();

    PlanView {
        schema: plan.schema,
        today,
        header,
        people,
        milestones,
        tasks,
        risks,
        comments,
        progress,
        warnings,
        cycle_breaks,
        heads,
        conflicts: plan.conflicts,
        deleted,
    }
}
