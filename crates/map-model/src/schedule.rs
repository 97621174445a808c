//! Scheduling: the projected finish of every task, the critical path (the
//! chain of tasks that sets the plan's finish, and so the go-live), and
//! "what if" slip propagation.
//!
//! # The scheduling rule
//!
//! Works on a [`PlanView`] (so it never touches the Automerge document).
//! Dropped tasks are ignored, with their dependency edges.
//!
//! - A task's **duration** is `due - start` in days when both are set and
//!   `start <= due`, else 0.
//! - A **done** task is finished: its finish is its completed date, else its
//!   due date; nothing propagates into it.
//! - An **open** task's projected finish is the latest of its own due date
//!   and, for every dependency with a projected finish `f`, `f + duration`
//!   (it can only start once its dependencies are done, and then takes its
//!   duration). A task with neither a due date nor a dated dependency is
//!   unscheduled (`None`). Propagation never moves a date earlier than
//!   planned: only the task you move yourself can move earlier.
//! - A **milestone**'s forecast is the latest of its due date and the
//!   projected finish of its live tasks.
//! - The plan's **finish** is the latest projected finish of any task
//!   (milestone dates are targets, not work). The **go-live target** is the header's go-live date,
//!   else the latest milestone due date. The go-live forecast is the later
//!   of the target and the finish.
//! - The **critical path** ends at the open task with the latest projected
//!   finish (ties: plan order) and walks back, at each step, to the open
//!   dependency with the latest projected finish (ties: the one that drives
//!   the date, then plan order). Done tasks are never on it: they no longer
//!   set any date.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::schema::TaskStatus;
use crate::view::{PlanView, TaskView};

/// Where the go-live target comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum GoLiveSource {
    /// The plan header's go-live date.
    Header,
    /// The latest milestone's due date (milestone id).
    Milestone(String),
    /// Neither is set.
    None,
}

/// The schedule of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSchedule {
    /// Task id.
    pub id: String,
    /// Duration in days (`due - start`, or 0).
    pub duration: i64,
    /// Projected finish (None: unscheduled).
    pub finish: Option<NaiveDate>,
    /// The dependency whose finish sets this task's finish, when a
    /// dependency (not the task's own due date) drives it.
    pub driven_by: Option<String>,
    /// Days the projected finish lies after the task's own due date (0 when
    /// on time or without a due date).
    pub late_by: i64,
    /// On the critical path.
    pub critical: bool,
}

/// The schedule of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Every live, not dropped task, in plan order.
    pub tasks: Vec<TaskSchedule>,
    /// Milestone id -> forecast date.
    pub milestones: BTreeMap<String, Option<NaiveDate>>,
    /// Critical path, first task first.
    pub critical_path: Vec<String>,
    /// Latest projected finish of any task.
    pub finish: Option<NaiveDate>,
    /// The go-live target.
    pub go_live: Option<NaiveDate>,
    /// Where the target comes from.
    pub go_live_source: GoLiveSource,
    /// The later of target and finish.
    pub go_live_forecast: Option<NaiveDate>,
    /// Days the finish lies after the go-live target (0 if on time).
    pub go_live_late_by: i64,
}

impl Schedule {
    /// The schedule of one task.
    pub fn task(&self, id: &str) -> Option<&TaskSchedule> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// Whether a task is on the critical path.
    pub fn is_critical(&self, id: &str) -> bool {
        self.critical_path.iter().any(|c| c == id)
    }
}

/// Dates a caller wants to override before scheduling (for what-if).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Task id -> (start, due).
    pub tasks: BTreeMap<String, (Option<NaiveDate>, Option<NaiveDate>)>,
}

fn live_deps<'a>(t: &'a TaskView, ids: &BTreeSet<&str>) -> Vec<&'a str> {
    t.deps
        .iter()
        .map(String::as_str)
        .filter(|d| ids.contains(d))
        .collect()
}

fn days(a: NaiveDate, b: NaiveDate) -> i64 {
    (a - b).num_days()
}

/// The schedule of `view`.
pub fn schedule(view: &PlanView) -> Schedule {
    schedule_with(view, &Overrides::default())
}

/// The schedule of `view` with some task dates replaced.
pub fn schedule_with<'a>(view: &'a PlanView, over: &Overrides) -> Schedule {
    let live: Vec<&TaskView> = view
        .tasks
        .iter()
        .filter(|t| t.status != TaskStatus::Dropped)
        .collect();
    let ids: BTreeSet<&str> = live.iter().map(|t| t.id.as_str()).collect();
    let dates = |t: &TaskView| -> (Option<NaiveDate>, Option<NaiveDate>) {
        over.tasks.get(&t.id).copied().unwrap_or((t.start, t.due))
    };
    let by_id: BTreeMap<&str, &TaskView> = live.iter().map(|t| (t.id.as_str(), *t)).collect();
    let deps_of = |t: &'a TaskView| live_deps(t, &ids);

    // Topological order (Kahn). The view's deps are acyclic (cycles are
    // broken there), but stay safe: anything left over is appended.
    let mut indeg: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &live {
        let ds = deps_of(t);
        indeg.insert(t.id.as_str(), ds.len());
        for d in ds {
            dependents.entry(d).or_default().push(t.id.as_str());
        }
    }
    let mut ready: Vec<&str> = live
        .iter()
        .filter(|t| indeg.get(t.id.as_str()) == Some(&0))
        .map(|t| t.id.as_str())
        .collect();
    let mut order: Vec<&str> = Vec::with_capacity(live.len());
    let mut done_set: BTreeSet<&str> = BTreeSet::new();
    while let Some(n) = ready.pop() {
        order.push(n);
        done_set.insert(n);
        for m in dependents.get(n).into_iter().flatten() {
            if let Some(k) = indeg.get_mut(m) {
                *k = k.saturating_sub(1);
                if *k == 0 {
                    ready.push(m);
                }
            }
        }
    }
    for t in &live {
        if !done_set.contains(t.id.as_str()) {
            order.push(t.id.as_str());
        }
    }

    let mut finish: BTreeMap<&str, Option<NaiveDate>> = BTreeMap::new();
    let mut driver: BTreeMap<&str, Option<String>> = BTreeMap::new();
    let mut duration: BTreeMap<&str, i64> = BTreeMap::new();
    for id in &order {
        let Some(t) = by_id.get(id) else { continue };
        let (start, due) = dates(t);
        let dur = match (start, due) {
            (Some(s), Some(d)) if s <= d => days(d, s),
            _ => 0,
        };
        duration.insert(id, dur);
        if t.status == TaskStatus::Done {
            finish.insert(id, t.completed.or(due));
            driver.insert(id, None);
            continue;
        }
        let mut best = due;
        let mut best_driver = None;
        for d in deps_of(t) {
            if let Some(Some(f)) = finish.get(d) {
                let cand = *f + chrono::Duration::days(dur);
                if best.is_none_or(|b| cand > b) {
                    best = Some(cand);
                    best_driver = Some(d.to_string());
                }
            }
        }
        finish.insert(id, best);
        driver.insert(id, best_driver);
    }

    // Critical path.
    let open = |id: &str| by_id.get(id).is_some_and(|t| !t.status.is_closed());
    let pos: BTreeMap<&str, usize> = live
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut last: Option<(&str, NaiveDate)> = None;
    for t in &live {
        if !open(&t.id) {
            continue;
        }
        if let Some(Some(f)) = finish.get(t.id.as_str())
            && last.is_none_or(|(_, lf)| *f > lf)
        {
            last = Some((t.id.as_str(), *f));
        }
    }
    let mut path: Vec<String> = Vec::new();
    let mut cur = last.map(|(id, _)| id);
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    while let Some(id) = cur {
        if !seen.insert(id) {
            break;
        }
        path.push(id.to_string());
        let Some(t) = by_id.get(id) else { break };
        let drv = driver.get(id).cloned().flatten();
        let mut next: Option<(&str, NaiveDate)> = None;
        for d in deps_of(t) {
            if !open(d) {
                continue;
            }
            let Some(Some(f)) = finish.get(d) else {
                continue;
            };
            let better = match next {
                None => true,
                Some((nid, nf)) => {
                    *f > nf
                        || (*f == nf
                            && (drv.as_deref() == Some(d)
                                || (drv.as_deref() != Some(nid) && pos.get(d) < pos.get(nid))))
                }
            };
            if better {
                next = Some((d, *f));
            }
        }
        cur = next.map(|(d, _)| d);
    }
    path.reverse();
    let critical: BTreeSet<&str> = path.iter().map(String::as_str).collect();

    let tasks: Vec<TaskSchedule> = live
        .iter()
        .map(|t| {
            let f = finish.get(t.id.as_str()).copied().flatten();
            let (_, due) = dates(t);
            TaskSchedule {
                id: t.id.clone(),
                duration: duration.get(t.id.as_str()).copied().unwrap_or(0),
                finish: f,
                driven_by: driver.get(t.id.as_str()).cloned().flatten(),
                late_by: match (f, due) {
                    (Some(f), Some(d)) if f > d && t.status != TaskStatus::Done => days(f, d),
                    _ => 0,
                },
                critical: critical.contains(t.id.as_str()),
            }
        })
        .collect();

    let mut milestones = BTreeMap::new();
    for m in &view.milestones {
        let mut fc = m.due;
        for t in &tasks {
            if by_id
                .get(t.id.as_str())
                .and_then(|x| x.milestone.as_deref())
                == Some(&m.id)
                && let Some(f) = t.finish
                && fc.is_none_or(|c| f > c)
            {
                fc = Some(f);
            }
        }
        milestones.insert(m.id.clone(), fc);
    }

    let plan_finish = tasks.iter().filter_map(|t| t.finish).max();
    let (go_live, go_live_source) = match view.header.go_live {
        Some(d) => (Some(d), GoLiveSource::Header),
        None => {
            let latest = view
                .milestones
                .iter()
                .filter_map(|m| m.due.map(|d| (d, m.id.clone())))
                .max_by(|a, b| a.0.cmp(&b.0));
            match latest {
                Some((d, id)) => (Some(d), GoLiveSource::Milestone(id)),
                None => (None, GoLiveSource::None),
            }
        }
    };
    let go_live_forecast = match (go_live, plan_finish) {
        (Some(g), Some(f)) => Some(g.max(f)),
        (g, f) => g.or(f),
    };
    let go_live_late_by = match (go_live, plan_finish) {
        (Some(g), Some(f)) if f > g => days(f, g),
        _ => 0,
    };
    Schedule {
        tasks,
        milestones,
        critical_path: path,
        finish: plan_finish,
        go_live,
        go_live_source,
        go_live_forecast,
        go_live_late_by,
    }
}

/// How a what-if moves a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    /// By a number of days (negative: earlier).
    Days(i64),
    /// To a date.
    To(NaiveDate),
}

/// A malformed shift.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid shift '{0}'; use +Nd or -Nd (days), +Nw or -Nw (weeks), or a date like 2026-12-24"
)]
pub struct ShiftError(pub String);

/// Parse `+5d`, `-2d`, `+1w`, `-1w` or a date (any form `dates` accepts,
/// relative to `today`).
pub fn parse_shift(s: &str, today: NaiveDate) -> Result<Shift, ShiftError> {
    let t = s.trim().to_ascii_lowercase();
    let err = || ShiftError(s.to_string());
    if let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix('-')) {
        let neg = t.starts_with('-');
        let (num, mult) = if let Some(n) = rest.strip_suffix('d') {
            (n, 1)
        } else if let Some(n) = rest.strip_suffix('w') {
            (n, 7)
        } else {
            return Err(err());
        };
        if num.is_empty() || num.len() > 5 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let n: i64 = num.parse().map_err(|_| err())?;
        return Ok(Shift::Days(if neg { -n * mult } else { n * mult }));
    }
    crate::dates::parse_date(&t, today)
        .map(Shift::To)
        .map_err(|_| err())
}

/// One date that moves in a what-if.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Task or milestone id (`go-live` for the go-live).
    pub id: String,
    /// Title.
    pub title: String,
    /// Date before.
    pub before: Option<NaiveDate>,
    /// Date after.
    pub after: Option<NaiveDate>,
    /// Days moved (after - before; 0 when either is unset).
    pub days: i64,
}

/// What a what-if changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatIf {
    /// The task moved.
    pub task: String,
    /// Its new due date.
    pub new_due: NaiveDate,
    /// Tasks whose projected finish moves (the moved task first, then plan order).
    pub tasks: Vec<Move>,
    /// Milestones whose forecast moves.
    pub milestones: Vec<Move>,
    /// The go-live forecast, if it moves.
    pub go_live: Option<Move>,
    /// The critical path after the move.
    pub critical_path: Vec<String>,
}

/// Errors of [`what_if`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhatIfError {
    /// No such live task.
    #[error("no task {0} in the plan")]
    UnknownTask(String),
    /// The task has no due date to shift.
    #[error(
        "task '{0}' has no due date to shift; give a date instead, e.g. `map whatif TASK 2026-12-24`"
    )]
    NoDue(String),
    /// The task is dropped.
    #[error("task '{0}' is dropped; it does not take part in the schedule")]
    Dropped(String),
}

fn mv(id: &str, title: &str, before: Option<NaiveDate>, after: Option<NaiveDate>) -> Move {
    Move {
        id: id.to_string(),
        title: title.to_string(),
        before,
        after,
        days: match (before, after) {
            (Some(b), Some(a)) => days(a, b),
            _ => 0,
        },
    }
}

/// Move task `id`'s due date (and its start, keeping its duration) and
/// report what moves. Never changes the plan.
pub fn what_if(view: &PlanView, id: &str, shift: Shift) -> Result<WhatIf, WhatIfError> {
    let t = view
        .task(id)
        .ok_or_else(|| WhatIfError::UnknownTask(id.to_string()))?;
    if t.status == TaskStatus::Dropped {
        return Err(WhatIfError::Dropped(t.title.clone()));
    }
    let new_due = match shift {
        Shift::To(d) => d,
        Shift::Days(n) => {
            let due = t.due.ok_or_else(|| WhatIfError::NoDue(t.title.clone()))?;
            due + chrono::Duration::days(n)
        }
    };
    let delta = t.due.map(|d| days(new_due, d)).unwrap_or(0);
    let new_start = t.start.map(|s| s + chrono::Duration::days(delta));
    let before = schedule(view);
    let mut over = Overrides::default();
    over.tasks.insert(t.id.clone(), (new_start, Some(new_due)));
    // A done task moved in a what-if is treated as finishing on the new date.
    let mut v2 = view.clone();
    if t.status == TaskStatus::Done
        && let Some(x) = v2.tasks.iter_mut().find(|x| x.id == t.id)
    {
        x.completed = Some(new_due);
    }
    let after = schedule_with(&v2, &over);
    let mut tasks = Vec::new();
    let mut moved_self = None;
    for b in &before.tasks {
        let a = after.task(&b.id).and_then(|x| x.finish);
        if a != b.finish {
            let title = view.task(&b.id).map(|x| x.title.as_str()).unwrap_or("");
            let m = mv(&b.id, title, b.finish, a);
            if b.id == t.id {
                moved_self = Some(m);
            } else {
                tasks.push(m);
            }
        }
    }
    if let Some(m) = moved_self {
        tasks.insert(0, m);
    }
    let mut milestones = Vec::new();
    for m in &view.milestones {
        let b = before.milestones.get(&m.id).copied().flatten();
        let a = after.milestones.get(&m.id).copied().flatten();
        if a != b {
            milestones.push(mv(&m.id, &m.title, b, a));
        }
    }
    let go_live = (before.go_live_forecast != after.go_live_forecast).then(|| {
        mv(
            "go-live",
            "Go-live",
            before.go_live_forecast,
            after.go_live_forecast,
        )
    });
    Ok(WhatIf {
        task: t.id.clone(),
        new_due,
        tasks,
        milestones,
        go_live,
        critical_path: after.critical_path,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::identity::{Identity, Side};
    use crate::plan::{NewTask, PlanDoc};

    pub(crate) fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    /// A plan: a (12-01..12-05) -> b (12-06..12-10) -> c (due 12-12, 2 days)
    /// and x (due 12-20) alone, milestone M (due 12-15) holding a, b, c,
    /// go-live 12-31.
    pub(crate) fn chain() -> (PlanDoc, Vec<String>, String) {
        let by = Identity::new("Sam", "s@x.com", Side::Seller);
        let mut plan = PlanDoc::create("P", &by, 0).unwrap();
        plan.set_go_live(&by, 0, Some(d("2026-12-31"))).unwrap();
        let m = plan
            .add_milestone(&by, 0, "M", Some(d("2026-12-15")))
            .unwrap();
        let mut ids = Vec::new();
        for (title, start, due) in [
            ("a", Some("2026-12-01"), "2026-12-05"),
            ("b", Some("2026-12-06"), "2026-12-10"),
            ("c", Some("2026-12-10"), "2026-12-12"),
            ("x", None, "2026-12-20"),
        ] {
            let id = plan
                .add_task(
                    &by,
                    0,
                    d("2026-12-01"),
                    NewTask {
                        title: title.into(),
                        start: start.map(d),
                        due: Some(d(due)),
                        milestone: (title != "x").then(|| m.clone()),
                        ..NewTask::default()
                    },
                )
                .unwrap();
            ids.push(id);
        }
        plan.add_dep(&by, 0, &ids[1], &ids[0]).unwrap();
        plan.add_dep(&by, 0, &ids[2], &ids[1]).unwrap();
        (plan, ids, m)
    }

    #[test]
    fn critical_path_follows_the_latest_chain() {
        let (mut plan, ids, m) = chain();
        let view = plan.view(d("2026-12-01")).unwrap();
        let s = schedule(&view);
        // x (12-20) finishes last and stands alone.
        assert_eq!(s.critical_path, vec![ids[3].clone()]);
        assert_eq!(s.finish, Some(d("2026-12-20")));
        assert_eq!(s.go_live, Some(d("2026-12-31")));
        assert_eq!(s.go_live_late_by, 0);
        assert_eq!(
            s.milestones.get(&m).copied().flatten(),
            Some(d("2026-12-15"))
        );
        assert_eq!(s.task(&ids[2]).map(|t| t.duration), Some(2));
    }

    #[test]
    fn what_if_propagates_down_the_chain() {
        let (mut plan, ids, m) = chain();
        let view = plan.view(d("2026-12-01")).unwrap();
        let w = what_if(&view, &ids[0], Shift::Days(5)).unwrap();
        // a 12-05 -> 12-10; b = 12-10 + 4 = 12-14 (was 12-10); c = 12-14 + 2 =
        // 12-16 (was 12-12); M forecast 12-16 (was 12-15); go-live unchanged.
        let got: Vec<(String, i64)> = w.tasks.iter().map(|t| (t.id.clone(), t.days)).collect();
        assert_eq!(
            got,
            vec![
                (ids[0].clone(), 5),
                (ids[1].clone(), 4),
                (ids[2].clone(), 4)
            ]
        );
        assert_eq!(w.milestones.len(), 1);
        assert_eq!(w.milestones[0].id, m);
        assert_eq!(w.milestones[0].days, 1);
        assert!(w.go_live.is_none());
        assert_eq!(w.critical_path, vec![ids[3].clone()]);

        // Big slip: now the chain sets the finish and moves go-live.
        let w = what_if(&view, &ids[0], Shift::Days(30)).unwrap();
        let gl = w.go_live.clone().unwrap();
        // c = 01-04 + 4 + 2 = 2027-01-10: 10 days after go-live 12-31.
        assert_eq!(gl.after, Some(d("2027-01-10")));
        assert_eq!(gl.days, 10);
        assert_eq!(w.critical_path, ids[..3].to_vec());

        // Pulling a in does not pull b and c earlier than planned.
        let w = what_if(&view, &ids[0], Shift::Days(-2)).unwrap();
        assert_eq!(w.tasks.len(), 1);
        assert_eq!(w.tasks[0].days, -2);

        // To a date.
        let w = what_if(&view, &ids[1], Shift::To(d("2026-12-11"))).unwrap();
        assert_eq!(w.tasks.len(), 2);

        assert!(matches!(
            what_if(&view, "nope", Shift::Days(1)),
            Err(WhatIfError::UnknownTask(_))
        ));
    }

    #[test]
    fn late_chain_is_critical_and_late() {
        let (mut plan, ids, _) = chain();
        let by = Identity::new("Sam", "s@x.com", Side::Seller);
        // Push a far out: b and c become late, the chain is critical.
        plan.edit_task(
            &by,
            0,
            &ids[0],
            crate::plan::TaskEdit {
                due: Some(Some(d("2027-01-02"))),
                ..Default::default()
            },
        )
        .unwrap();
        let view = plan.view(d("2026-12-01")).unwrap();
        let s = schedule(&view);
        assert_eq!(s.critical_path, ids[..3].to_vec());
        assert_eq!(s.task(&ids[1]).map(|t| t.late_by), Some(27));
        assert_eq!(
            s.task(&ids[1]).and_then(|t| t.driven_by.clone()),
            Some(ids[0].clone())
        );
        assert_eq!(s.finish, Some(d("2027-01-08")));
        assert_eq!(s.go_live_late_by, 8);
    }

    #[test]
    fn shifts_parse() {
        let t = d("2026-12-04");
        assert_eq!(parse_shift("+5d", t), Ok(Shift::Days(5)));
        assert_eq!(parse_shift("-2d", t), Ok(Shift::Days(-2)));
        assert_eq!(parse_shift("+1w", t), Ok(Shift::Days(7)));
        assert_eq!(parse_shift("2026-12-24", t), Ok(Shift::To(d("2026-12-24"))));
        assert!(parse_shift("+5x", t).is_err());
        assert!(parse_shift("+d", t).is_err());
        assert!(parse_shift("soon", t).is_err());
    }
}
