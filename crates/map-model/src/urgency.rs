//! Urgency: one number per open task saying how much it needs doing now, in
//! the spirit of taskwarrior's urgency, and the "who waits on whom" report.
//!
//! The score is a sum of terms (all shown, so the order can be explained):
//!
//! | term | value |
//! |---|---|
//! | due | `12 × f`, `f` going linearly from 0.2 (due in 14 days or more) to 1.0 (overdue by 7 days or more); 0 without a due date |
//! | blocking | `2` per open task transitively waiting on it, at most `8` |
//! | priority | high `6`, medium `3.9`, low `1.8` |
//! | in progress | `4` |
//! | critical path | `3` |
//! | blocked | `-5` (status blocked, or a dependency not done) |

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::identity::Side;
use crate::schedule::Schedule;
use crate::schema::{Priority, TaskStatus};
use crate::view::{PlanView, TaskView};

/// A task's urgency and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Urgency {
    /// Task id.
    pub id: String,
    /// The score (sum of the terms), rounded to 0.1.
    pub score: f64,
    /// Due-date term.
    pub due: f64,
    /// Blocking term.
    pub blocking: f64,
    /// Number of open tasks transitively waiting on this one.
    pub blocks: usize,
    /// Priority term.
    pub priority: f64,
    /// In-progress term.
    pub active: f64,
    /// Critical-path term.
    pub critical: f64,
    /// Blocked term (negative).
    pub blocked: f64,
    /// Days until due (negative: overdue).
    pub due_in: Option<i64>,
}

/// Open tasks that transitively depend on each task (open ones only).
pub fn dependents(view: &PlanView) -> BTreeMap<String, BTreeSet<String>> {
    let mut direct: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in view.tasks.iter().filter(|t| !t.status.is_closed()) {
        for d in &t.deps {
            direct.entry(d.as_str()).or_default().push(t.id.as_str());
        }
    }
    let mut out = BTreeMap::new();
    for t in &view.tasks {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut stack = vec![t.id.as_str()];
        while let Some(n) = stack.pop() {
            for m in direct.get(n).into_iter().flatten() {
                if seen.insert((*m).to_string()) {
                    stack.push(m);
                }
            }
        }
        seen.remove(&t.id);
        out.insert(t.id.clone(), seen);
    }
    out
}

fn due_factor(due_in: i64) -> f64 {
    if due_in <= -7 {
        1.0
    } else if due_in >= 14 {
        0.2
    } else {
        // -7 -> 1.0, 14 -> 0.2
        0.2 + (14 - due_in) as f64 * 0.8 / 21.0
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The urgency of one task.
pub fn urgency(task: &TaskView, today: NaiveDate, blocks: usize, critical_path: bool) -> Urgency {
    let due_in = task.due.map(|d| (d - today).num_days());
    let due = due_in.map_or(0.0, |n| 12.0 * due_factor(n));
    let blocking = (2.0 * blocks as f64).min(8.0);
    let priority = match task.priority {
        Priority::High => 6.0,
        Priority::Medium => 3.9,
        Priority::Low => 1.8,
    };
    let active = if task.status == TaskStatus::InProgress {
        4.0
    } else {
        0.0
    };
    let critical = if critical_path { 3.0 } else { 0.0 };
    let blocked = if task.blocked { -5.0 } else { 0.0 };
    Urgency {
        id: task.id.clone(),
        score: round1(due + blocking + priority + active + critical + blocked),
        due: round1(due),
        blocking,
        blocks,
        priority,
        active,
        critical,
        blocked,
        due_in,
    }
}

/// Open tasks someone can act on (not blocked), most urgent first (ties:
/// plan order).
pub fn ranked<'a>(view: &'a PlanView, schedule: &Schedule) -> Vec<(Urgency, &'a TaskView)> {
    let deps = dependents(view);
    let mut v: Vec<(Urgency, &'a TaskView)> = view
        .tasks
        .iter()
        .filter(|t| !t.status.is_closed() && !t.blocked)
        .map(|t| {
            let n = deps.get(&t.id).map_or(0, BTreeSet::len);
            (urgency(t, view.today, n, schedule.is_critical(&t.id)), t)
        })
        .collect();
    // Stable sort keeps plan order for equal scores.
    v.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
    v
}

/// An open task of one side that the other side is waiting on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The task holding things up.
    pub id: String,
    /// Open tasks of the other side that depend on it (directly or not).
    pub blocks: Vec<String>,
}

/// Open tasks owned by `side` that open tasks of another side wait on,
/// directly or through other tasks, in plan order.
pub fn waiting_on(view: &PlanView, side: Side) -> Vec<Waiting> {
    let deps = dependents(view);
    view.tasks
        .iter()
        .filter(|t| !t.status.is_closed() && t.owner_side == Some(side))
        .filter_map(|t| {
            let blocks: Vec<String> = view
                .tasks
                .iter()
                .filter(|u| {
                    deps.get(&t.id).is_some_and(|s| s.contains(&u.id))
                        && u.owner_side.is_some_and(|s| s != side)
                })
                .map(|u| u.id.clone())
                .collect();
            (!blocks.is_empty()).then(|| Waiting {
                id: t.id.clone(),
                blocks,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::plan::{NewPerson, NewTask, PlanDoc};
    use crate::schedule::{schedule, tests::d};

    #[test]
    fn order_weighs_due_blocking_and_priority() {
        let by = Identity::new("Sam", "s@x.com", Side::Seller);
        let mut plan = PlanDoc::create("P", &by, 0).unwrap();
        let buyer = plan
            .add_person(
                &by,
                0,
                NewPerson {
                    name: "Bob".into(),
                    side: Side::Buyer,
                    ..NewPerson::default()
                },
            )
            .unwrap();
        let seller = plan
            .add_person(
                &by,
                0,
                NewPerson {
                    name: "Ana".into(),
                    side: Side::Seller,
                    ..NewPerson::default()
                },
            )
            .unwrap();
        let today = d("2026-12-04");
        let mut add = |title: &str, due: Option<&str>, priority, owner: &str, deps: Vec<String>| {
            plan.add_task(
                &by,
                0,
                today,
                NewTask {
                    title: title.into(),
                    due: due.map(d),
                    priority,
                    owner: Some(owner.to_string()),
                    deps,
                    ..NewTask::default()
                },
            )
            .unwrap()
        };
        // overdue by 2 days, low: due 12*(0.2+16*0.8/21)=9.71 + 1.8 = 11.5
        let late = add("late", Some("2026-12-02"), Priority::Low, &seller, vec![]);
        // no due, high, blocks two buyer tasks: 0 + 4 + 6 = 10
        let gate = add("gate", None, Priority::High, &seller, vec![]);
        let w1 = add(
            "w1",
            Some("2026-12-30"),
            Priority::Low,
            &buyer,
            vec![gate.clone()],
        );
        add(
            "w2",
            Some("2026-12-30"),
            Priority::Low,
            &buyer,
            vec![w1.clone()],
        );
        // due in 14 days, medium: 2.4 + 3.9 = 6.3
        add(
            "later",
            Some("2026-12-18"),
            Priority::Medium,
            &buyer,
            vec![],
        );
        let view = plan.view(today).unwrap();
        let s = schedule(&view);
        let r = ranked(&view, &s);
        let got: Vec<(&str, f64)> = r.iter().map(|(u, t)| (t.title.as_str(), u.score)).collect();
        assert_eq!(got[0].0, "late");
        assert_eq!(got[0].1, 11.5);
        assert_eq!(got[1], ("gate", 10.0));
        // "later" is not critical (w2/w1 finish later), plain 6.3
        assert!(got.contains(&("later", 6.3)), "{got:?}");
        assert_eq!(
            r.iter().find(|(_, t)| t.id == gate).map(|(u, _)| u.blocks),
            Some(2)
        );
        // Blocked tasks are not offered.
        assert!(!got.iter().any(|g| g.0 == "w1" || g.0 == "w2"));

        let w = waiting_on(&view, Side::Seller);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].id, gate);
        assert_eq!(w[0].blocks.len(), 2);
        assert!(waiting_on(&view, Side::Buyer).is_empty());
        assert_eq!(late.len(), 12);
    }
}
