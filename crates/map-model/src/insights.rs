//! Derived insights: progress, overdue and blocked tasks, and the next
//! actions for each person and each side.
//!
//! These work on a [`PlanView`], so they are cheap and never touch the
//! Automerge document.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::identity::Side;
use crate::schema::{Priority, TaskStatus};
use crate::view::{PlanView, Progress, TaskView};

/// Progress of a set of tasks: dropped tasks are not counted.
pub fn progress<'a>(tasks: impl Iterator<Item = &'a TaskView>) -> Progress {
    let mut p = Progress::default();
    for t in tasks {
        match t.status {
            TaskStatus::Dropped => {}
            TaskStatus::Done => {
                p.done += 1;
                p.total += 1;
            }
            _ => p.total += 1,
        }
    }
    p.percent = (p.done * 100)
        .checked_div(p.total)
        .map_or(0, |x| u8::try_from(x).unwrap_or(100));
    p
}

/// Due before `today` and neither done nor dropped.
pub fn is_overdue(status: TaskStatus, due: Option<NaiveDate>, today: NaiveDate) -> bool {
    !status.is_closed() && due.is_some_and(|d| d < today)
}

/// Overdue tasks, in plan order.
pub fn overdue(view: &PlanView) -> Vec<&TaskView> {
    view.tasks.iter().filter(|t| t.overdue).collect()
}

/// Blocked tasks (status blocked or a dependency not done), in plan order.
pub fn blocked(view: &PlanView) -> Vec<&TaskView> {
    view.tasks.iter().filter(|t| t.blocked).collect()
}

fn priority_rank(p: Priority) -> u8 {
    match p {
        Priority::High => 0,
        Priority::Medium => 1,
        Priority::Low => 2,
    }
}

/// Order for next actions: due date (none last), then priority (high
/// first), then plan order.
pub fn next_action_order(a: &TaskView, b: &TaskView) -> Ordering {
    let due = match (a.due, b.due) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    due.then_with(|| priority_rank(a.priority).cmp(&priority_rank(b.priority)))
        .then_with(|| a.order.total_cmp(&b.order))
        .then_with(|| a.id.cmp(&b.id))
}

/// Tasks someone can act on now: open and not blocked, in next-action order.
pub fn next_actions(view: &PlanView) -> Vec<&TaskView> {
    let mut v: Vec<&TaskView> = view
        .tasks
        .iter()
        .filter(|t| !t.status.is_closed() && !t.blocked)
        .collect();
    v.sort_by(|a, b| next_action_order(a, b));
    v
}

/// Next actions of one person.
pub fn next_actions_for<'a>(view: &'a PlanView, person_id: &str) -> Vec<&'a TaskView> {
    next_actions(view)
        .into_iter()
        .filter(|t| t.owner.as_deref() == Some(person_id))
        .collect()
}

/// Next actions grouped by owner id (unassigned tasks under `None`).
pub fn next_actions_by_person(view: &PlanView) -> BTreeMap<Option<String>, Vec<&TaskView>> {
    let mut m: BTreeMap<Option<String>, Vec<&TaskView>> = BTreeMap::new();
    for t in next_actions(view) {
        m.entry(t.owner.clone()).or_default().push(t);
    }
    m
}

/// Next actions grouped by the owner's side (unassigned under `None`).
pub fn next_actions_by_side(view: &PlanView) -> BTreeMap<Option<Side>, Vec<&TaskView>> {
    let mut m: BTreeMap<Option<Side>, Vec<&TaskView>> = BTreeMap::new();
    for t in next_actions(view) {
        m.entry(t.owner_side).or_default().push(t);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::plan::{NewTask, PlanDoc};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn next_actions_sort_by_due_then_priority() {
        let by = Identity::new("Sam", "s@x.com", Side::Seller);
        let mut plan = PlanDoc::create("P", &by, 0).unwrap();
        let mut add = |title: &str, due: Option<&str>, priority, status| {
            plan.add_task(
                &by,
                0,
                d("2026-01-01"),
                NewTask {
                    title: title.into(),
                    due: due.map(d),
                    priority,
                    status,
                    ..NewTask::default()
                },
            )
            .unwrap()
        };
        add(
            "late low",
            Some("2026-01-05"),
            Priority::Low,
            TaskStatus::Todo,
        );
        add("no due", None, Priority::High, TaskStatus::Todo);
        add(
            "late high",
            Some("2026-01-05"),
            Priority::High,
            TaskStatus::Todo,
        );
        add(
            "early",
            Some("2026-01-02"),
            Priority::Low,
            TaskStatus::InProgress,
        );
        add("done", Some("2026-01-01"), Priority::High, TaskStatus::Done);
        add(
            "blocked",
            Some("2026-01-01"),
            Priority::High,
            TaskStatus::Blocked,
        );
        let view = plan.view(d("2026-01-03")).unwrap();
        let titles: Vec<&str> = next_actions(&view)
            .iter()
            .map(|t| t.title.as_str())
            .collect();
        assert_eq!(titles, ["early", "late high", "late low", "no due"]);
        let overdue: Vec<&str> = overdue(&view).iter().map(|t| t.title.as_str()).collect();
        assert_eq!(overdue, ["early", "blocked"]);
        assert_eq!(blocked(&view).len(), 1);
        let p = progress(view.tasks.iter());
        assert_eq!((p.done, p.total, p.percent), (1, 6, 16));
        assert_eq!(progress(std::iter::empty()).percent, 0);
        assert_eq!(
            next_actions_by_side(&view).get(&None).map(Vec::len),
            Some(4)
        );
    }
}
