//! Property test: random edits on 2-3 forks of one plan, merged in every
//! order, converge to identical heads and views, and the view keeps its
//! invariants (unique ids, no dependency cycle, no dangling reference shown
//! as valid).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use map_model::deps;
use map_model::identity::{Identity, Side};
use map_model::plan::{NewPerson, NewTask, PlanDoc, Position, TaskEdit};
use map_model::schema::TaskStatus;
use map_model::view::PlanView;
use proptest::prelude::*;

const NOW: i64 = 1_780_000_000_000;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

fn who(i: usize) -> Identity {
    let names = ["Sam", "Ana", "Kim"];
    Identity::new(
        names[i % 3],
        format!("{}@x.com", names[i % 3].to_lowercase()),
        Side::Buyer,
    )
}

#[derive(Debug, Clone)]
enum Op {
    AddTask(u8, Option<u8>),
    Status(u8, u8),
    Title(u8, u8),
    Describe(u8, u8),
    AddDep(u8, u8),
    RemoveDep(u8, u8),
    DeleteTask(u8),
    RestoreTask(u8),
    AddMilestone,
    DeleteMilestone(u8),
    RestoreMilestone(u8),
    SetMilestone(u8, Option<u8>),
    AddPerson(u8),
    RemovePerson(u8),
    SetOwner(u8, u8),
    Move(u8, u8, u8),
    Sync(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let i = any::<u8>;
    prop_oneof![
        3 => (i(), proptest::option::of(i())).prop_map(|(a, b)| Op::AddTask(a, b)),
        2 => (i(), 0u8..5).prop_map(|(a, b)| Op::Status(a, b)),
        1 => (i(), i()).prop_map(|(a, b)| Op::Title(a, b)),
        1 => (i(), i()).prop_map(|(a, b)| Op::Describe(a, b)),
        3 => (i(), i()).prop_map(|(a, b)| Op::AddDep(a, b)),
        1 => (i(), i()).prop_map(|(a, b)| Op::RemoveDep(a, b)),
        1 => i().prop_map(Op::DeleteTask),
        1 => i().prop_map(Op::RestoreTask),
        1 => Just(Op::AddMilestone),
        1 => i().prop_map(Op::DeleteMilestone),
        1 => i().prop_map(Op::RestoreMilestone),
        2 => (i(), proptest::option::of(i())).prop_map(|(a, b)| Op::SetMilestone(a, b)),
        1 => i().prop_map(Op::AddPerson),
        1 => i().prop_map(Op::RemovePerson),
        2 => (i(), i()).prop_map(|(a, b)| Op::SetOwner(a, b)),
        2 => (i(), i(), 0u8..4).prop_map(|(a, b, c)| Op::Move(a, b, c)),
        1 => i().prop_map(Op::Sync),
    ]
}

fn pick(ids: &[String], i: u8) -> Option<String> {
    if ids.is_empty() {
        None
    } else {
        Some(ids[i as usize % ids.len()].clone())
    }
}

/// Apply one op; refusals (validation errors) are fine and ignored.
fn apply(plans: &mut [PlanDoc], f: usize, op: &Op, step: usize) {
    let by = who(f);
    let now = NOW + step as i64;
    let raw = plans[f].raw().unwrap();
    let tasks: Vec<String> = raw.tasks.iter().map(|t| t.id.clone()).collect();
    let ms: Vec<String> = raw.milestones.iter().map(|m| m.id.clone()).collect();
    let people: Vec<String> = raw.people.iter().map(|p| p.id.clone()).collect();
    let p = &mut plans[f];
    let _ = match op {
        Op::AddTask(t, m) => p
            .add_task(
                &by,
                now,
                today(),
                NewTask {
                    title: format!("T{t}"),
                    milestone: m.and_then(|m| pick(&ms, m)),
                    due: Some(today() + chrono::Days::new(u64::from(*t % 10))),
                    ..NewTask::default()
                },
            )
            .map(|_| ()),
        Op::Status(t, s) => match pick(&tasks, *t) {
            Some(id) => p.set_status(&by, now, today(), &id, TaskStatus::ALL[*s as usize % 5]),
            None => Ok(()),
        },
        Op::Title(t, n) => match pick(&tasks, *t) {
            Some(id) => p.edit_task(
                &by,
                now,
                &id,
                TaskEdit {
                    title: Some(format!("Title {n}")),
                    ..TaskEdit::default()
                },
            ),
            None => Ok(()),
        },
        Op::Describe(t, n) => match pick(&tasks, *t) {
            Some(id) => p.edit_task(
                &by,
                now,
                &id,
                TaskEdit {
                    description: Some(format!("by {f}: {n}")),
                    ..TaskEdit::default()
                },
            ),
            None => Ok(()),
        },
        Op::AddDep(a, b) => match (pick(&tasks, *a), pick(&tasks, *b)) {
            (Some(a), Some(b)) => p.add_dep(&by, now, &a, &b),
            _ => Ok(()),
        },
        Op::RemoveDep(a, b) => match (pick(&tasks, *a), pick(&tasks, *b)) {
            (Some(a), Some(b)) => p.remove_dep(&by, now, &a, &b),
            _ => Ok(()),
        },
        Op::DeleteTask(t) => pick(&tasks, *t).map_or(Ok(()), |id| p.delete_task(&by, now, &id)),
        Op::RestoreTask(t) => pick(&tasks, *t).map_or(Ok(()), |id| p.restore_task(&by, now, &id)),
        Op::AddMilestone => p
            .add_milestone(&by, now, &format!("M{step}"), None)
            .map(|_| ()),
        Op::DeleteMilestone(m) => {
            pick(&ms, *m).map_or(Ok(()), |id| p.delete_milestone(&by, now, &id))
        }
        Op::RestoreMilestone(m) => {
            pick(&ms, *m).map_or(Ok(()), |id| p.restore_milestone(&by, now, &id))
        }
        Op::SetMilestone(t, m) => match pick(&tasks, *t) {
            Some(id) => {
                let m = m.and_then(|m| pick(&ms, m));
                p.set_milestone(&by, now, &id, m.as_deref())
            }
            None => Ok(()),
        },
        Op::AddPerson(n) => p
            .add_person(
                &by,
                now,
                NewPerson {
                    name: format!("P{n}"),
                    email: format!("p{}@x.com", n % 4),
                    side: Side::Buyer,
                    role: String::new(),
                },
            )
            .map(|_| ()),
        Op::RemovePerson(n) => {
            pick(&people, *n).map_or(Ok(()), |id| p.remove_person(&by, now, &id))
        }
        Op::SetOwner(t, n) => match (pick(&tasks, *t), pick(&people, *n)) {
            (Some(t), Some(o)) => p.edit_task(
                &by,
                now,
                &t,
                TaskEdit {
                    owner: Some(Some(o)),
                    ..TaskEdit::default()
                },
            ),
            _ => Ok(()),
        },
        Op::Move(t, o, k) => match (pick(&tasks, *t), pick(&tasks, *o)) {
            (Some(t), Some(o)) => {
                let pos = match k {
                    0 => Position::First,
                    1 => Position::Last,
                    2 => Position::Before(o),
                    _ => Position::After(o),
                };
                p.move_task(&by, now, &t, pos)
            }
            _ => Ok(()),
        },
        Op::Sync(other) => {
            let o = *other as usize % plans.len();
            if o != f {
                let mut other = plans[o].fork();
                plans[f].merge(&mut other).unwrap();
            }
            Ok(())
        }
    };
}

fn check_invariants(v: &PlanView) -> Result<(), TestCaseError> {
    let people: BTreeSet<&str> = v.people.iter().map(|p| p.id.as_str()).collect();
    let ms: BTreeSet<&str> = v.milestones.iter().map(|m| m.id.as_str()).collect();
    let tasks: BTreeSet<&str> = v.tasks.iter().map(|t| t.id.as_str()).collect();
    prop_assert_eq!(tasks.len(), v.tasks.len());
    prop_assert_eq!(people.len(), v.people.len());
    prop_assert_eq!(ms.len(), v.milestones.len());
    let mut edges = deps::Edges::new();
    for t in &v.tasks {
        if let Some(m) = &t.milestone {
            prop_assert!(ms.contains(m.as_str()));
        }
        if let Some(o) = &t.owner {
            prop_assert!(people.contains(o.as_str()));
        }
        for d in &t.deps {
            prop_assert!(tasks.contains(d.as_str()));
            edges.entry(t.id.clone()).or_default().insert(d.clone());
        }
        prop_assert_eq!(t.completed.is_some() && t.status != TaskStatus::Done, false);
    }
    prop_assert!(deps::find_cycle(&edges).is_none());
    Ok(())
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    match n {
        2 => vec![vec![0, 1], vec![1, 0]],
        _ => vec![
            vec![0, 1, 2],
            vec![0, 2, 1],
            vec![1, 0, 2],
            vec![1, 2, 0],
            vec![2, 0, 1],
            vec![2, 1, 0],
        ],
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Modest by default so debug runs take seconds; raise with
        // MAP_PROPTEST_CASES for a longer search.
        cases: std::env::var("MAP_PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn forks_converge(n in 2usize..=3, ops in proptest::collection::vec((0usize..3, op()), 0..30)) {
        let base_by = who(0);
        let mut base = PlanDoc::create("Base", &base_by, NOW).unwrap();
        let m = base.add_milestone(&base_by, NOW, "M0", None).unwrap();
        for i in 0..3 {
            base.add_task(&base_by, NOW, today(), NewTask { title: format!("Base {i}"), milestone: Some(m.clone()), ..NewTask::default() }).unwrap();
        }
        let mut plans: Vec<PlanDoc> = (0..n).map(|_| base.fork()).collect();
        for (step, (f, op)) in ops.iter().enumerate() {
            apply(&mut plans, f % n, op, step);
        }
        let mut reference: Option<(Vec<automerge::ChangeHash>, PlanView)> = None;
        for perm in permutations(n) {
            let mut merged = plans[perm[0]].fork();
            for &i in &perm[1..] {
                let mut other = plans[i].fork();
                merged.merge(&mut other).unwrap();
            }
            let heads = merged.heads();
            let view = merged.view(today()).unwrap();
            check_invariants(&view)?;
            match &reference {
                None => {
                    let json = serde_json::to_string(&view).unwrap();
                    let back: PlanView = serde_json::from_str(&json).unwrap();
                    prop_assert_eq!(&back, &view);
                    reference = Some((heads, view));
                }
                Some((h, v)) => {
                    prop_assert_eq!(h, &heads);
                    prop_assert_eq!(v, &view);
                }
            }
        }
    }
}
