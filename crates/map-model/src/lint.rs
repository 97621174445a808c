//! Plan checks (`map check`): what a good Mutual Action Plan has and this
//! one lacks, each with a suggested command that fixes it.
//!
//! Checks, in the order they are reported:
//! - the buyer side names an economic buyer and a champion;
//! - legal and security steps (by title or milestone title) have an owner
//!   on the buyer side: those reviews happen at the buyer;
//! - open tasks have an owner and a due date;
//! - no open task is due after its milestone;
//! - no milestone is past due with open tasks;
//! - the dates allow the go-live: no task is pushed past its due date by its
//!   dependencies, and the critical path finishes by the go-live
//!   (see [`crate::schedule`]).

use serde::{Deserialize, Serialize};

use crate::identity::Side;
use crate::schedule::Schedule;
use crate::view::{PlanView, TaskView};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The plan cannot work as written.
    Error,
    /// Something a good plan has.
    Warning,
    /// Worth a look.
    Info,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// Stable code, e.g. `no-economic-buyer`.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// Ids involved.
    pub ids: Vec<String>,
    /// A command that fixes it (placeholders in `<angle brackets>`).
    pub fix: String,
}

fn f(severity: Severity, code: &str, message: String, ids: Vec<String>, fix: String) -> Finding {
    Finding {
        severity,
        code: code.to_string(),
        message,
        ids,
        fix,
    }
}

const LEGAL: &[&str] = &["legal", "msa", "redline", "redlines", "contract", "dpa"];
const SECURITY: &[&str] = &["security", "infosec", "pen", "soc", "questionnaire"];

fn has_word(text: &str, words: &[&str]) -> bool {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| words.contains(&w))
}

fn category(t: &TaskView, words: &[&str]) -> bool {
    has_word(&t.title, words)
        || t.milestone_title
            .as_deref()
            .is_some_and(|m| has_word(m, words))
}

/// Check `view` (with its `schedule`).
pub fn check(view: &PlanView, schedule: &Schedule) -> Vec<Finding> {
    let mut out = Vec::new();
    let short = |id: &str| id.get(..4).unwrap_or(id).to_string();
    let has_role = |role: &str| {
        view.people
            .iter()
            .any(|p| p.side == Side::Buyer && p.role.eq_ignore_ascii_case(role))
    };
    for (role, code) in [
        ("economic buyer", "no-economic-buyer"),
        ("champion", "no-champion"),
    ] {
        if !has_role(role) {
            out.push(f(
                Severity::Warning,
                code,
                format!("no {role} is named on the buyer side"),
                vec![],
                format!("map person add <name> --side buyer --role \"{role}\""),
            ));
        }
    }
    let buyer_with = |role: &str| {
        view.people
            .iter()
            .find(|p| p.side == Side::Buyer && p.role.eq_ignore_ascii_case(role))
            .map(|p| short(&p.id))
            .unwrap_or_else(|| format!("<buyer {role} person>"))
    };
    for (what, words, role) in [
        ("legal", LEGAL, "legal"),
        ("security", SECURITY, "security"),
    ] {
        for t in view.tasks.iter().filter(|t| !t.status.is_closed()) {
            if category(t, words) && t.owner.is_some() && t.owner_side != Some(Side::Buyer) {
                // Only when no buyer owns any step of this kind.
                let buyer_owned = view.tasks.iter().any(|u| {
                    !u.status.is_closed() && category(u, words) && u.owner_side == Some(Side::Buyer)
                });
                if !buyer_owned {
                    out.push(f(
                        Severity::Warning,
                        &format!("{what}-without-buyer"),
                        format!(
                            "{what} step '{}' has no owner on the buyer side; the buyer's {what} review needs one",
                            t.title
                        ),
                        vec![t.id.clone()],
                        format!(
                            "map task add \"Buyer {what} review\" --owner {} --after {}",
                            buyer_with(role),
                            short(&t.id)
                        ),
                    ));
                }
            }
        }
    }
    for t in view.tasks.iter().filter(|t| !t.status.is_closed()) {
        if t.owner.is_none() {
            out.push(f(
                Severity::Warning,
                "no-owner",
                format!("task '{}' has no owner", t.title),
                vec![t.id.clone()],
                format!("map task edit {} --owner <person>", short(&t.id)),
            ));
        }
        if t.due.is_none() {
            out.push(f(
                Severity::Warning,
                "no-due",
                format!("task '{}' has no due date", t.title),
                vec![t.id.clone()],
                format!("map task edit {} --due <date>", short(&t.id)),
            ));
        }
    }
    for t in view.tasks.iter().filter(|t| !t.status.is_closed()) {
        let Some(m) = t.milestone.as_deref().and_then(|m| view.milestone(m)) else {
            continue;
        };
        if let (Some(td), Some(md)) = (t.due, m.due)
            && td > md
        {
            out.push(f(
                Severity::Warning,
                "due-after-milestone",
                format!(
                    "task '{}' is due {td}, {} days after its milestone '{}' ({md})",
                    t.title,
                    (td - md).num_days(),
                    m.title
                ),
                vec![t.id.clone(), m.id.clone()],
                format!("map task edit {} --due {md}", short(&t.id)),
            ));
        }
    }
    for m in view.milestones.iter().filter(|m| m.overdue) {
        out.push(f(
            Severity::Error,
            "milestone-past-due",
            format!(
                "milestone '{}' was due {} and has {} open task(s)",
                m.title,
                m.due.map(|d| d.to_string()).unwrap_or_default(),
                m.progress.total - m.progress.done
            ),
            vec![m.id.clone()],
            format!("map milestone edit {} --due <new date>", short(&m.id)),
        ));
    }
    for s in schedule.tasks.iter().filter(|s| s.late_by > 0) {
        let Some(t) = view.task(&s.id) else { continue };
        if t.status.is_closed() {
            continue;
        }
        let dep = s
            .driven_by
            .as_deref()
            .and_then(|d| view.task(d))
            .map(|d| format!(" ('{}' finishes too late)", d.title))
            .unwrap_or_default();
        let fin = s.finish.map(|d| d.to_string()).unwrap_or_default();
        out.push(f(
            Severity::Error,
            "impossible-date",
            format!(
                "task '{}' cannot finish by {}: its dependencies push it to {fin}{dep}",
                t.title,
                t.due.map(|d| d.to_string()).unwrap_or_default()
            ),
            vec![t.id.clone()],
            format!("map task edit {} --due {fin}", short(&t.id)),
        ));
    }
    if schedule.go_live_late_by > 0
        && let (Some(g), Some(fin)) = (schedule.go_live, schedule.finish)
    {
        out.push(f(
            Severity::Error,
            "go-live-impossible",
            format!(
                "the critical path finishes {fin}, {} days after the go-live {g}",
                schedule.go_live_late_by
            ),
            schedule.critical_path.clone(),
            "map path   (then move or shorten its tasks with `map task edit`)".to_string(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::plan::{NewPerson, NewTask, PlanDoc};
    use crate::schedule::{schedule, tests::d};

    #[test]
    fn finds_what_a_plan_lacks() {
        let by = Identity::new("Sam", "s@x.com", Side::Seller);
        let today = d("2026-12-04");
        let mut plan = PlanDoc::create("P", &by, 0).unwrap();
        plan.set_go_live(&by, 0, Some(d("2026-12-20"))).unwrap();
        plan.add_person(
            &by,
            0,
            NewPerson {
                name: "Bob".into(),
                side: Side::Buyer,
                role: "champion".into(),
                ..NewPerson::default()
            },
        )
        .unwrap();
        let ana = plan
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
        let m = plan
            .add_milestone(&by, 0, "Eval", Some(d("2026-12-01")))
            .unwrap();
        let a = plan
            .add_task(
                &by,
                0,
                today,
                NewTask {
                    title: "Legal redlines".into(),
                    owner: Some(ana.clone()),
                    due: Some(d("2026-12-12")),
                    milestone: Some(m.clone()),
                    ..NewTask::default()
                },
            )
            .unwrap();
        plan.add_task(
            &by,
            0,
            today,
            NewTask {
                title: "Go live".into(),
                start: Some(d("2026-12-01")),
                due: Some(d("2026-12-11")),
                deps: vec![a],
                ..NewTask::default()
            },
        )
        .unwrap();
        let view = plan.view(today).unwrap();
        let codes: Vec<String> = check(&view, &schedule(&view))
            .into_iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(
            codes,
            [
                "no-economic-buyer",
                "legal-without-buyer",
                "no-owner",
                "due-after-milestone",
                "milestone-past-due",
                "impossible-date",
                "go-live-impossible",
            ]
        );
    }
}
