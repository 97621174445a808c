//! What the merged plan shows when two participants edit concurrently.
//! Each test backs one row of the table in docs/merging.md.
//!
//! Every test checks that the merge is deterministic (A into B and B into A
//! give identical heads and views), that nothing invalid is presented as
//! valid, and that the choice Automerge made is visible (in `conflicts()` or
//! as a warning).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use map_model::conflicts::Conflict;
use map_model::deps;
use map_model::identity::{Identity, Side};
use map_model::plan::{NewPerson, NewTask, PlanDoc, Position, TaskEdit};
use map_model::schema::TaskStatus;
use map_model::view::{PlanView, WarningKind};

const NOW: i64 = 1_780_000_000_000;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

fn sam() -> Identity {
    Identity::new("Sam", "sam@vendor.com", Side::Seller)
}

fn ana() -> Identity {
    Identity::new("Ana", "ana@buyer.com", Side::Buyer)
}

struct Base {
    plan: PlanDoc,
    m1: String,
    m2: String,
    t1: String,
    t2: String,
    t3: String,
    person: String,
}

fn base() -> Base {
    let mut plan = PlanDoc::create("Acme", &sam(), NOW).unwrap();
    let person = plan
        .add_person(
            &sam(),
            NOW,
            NewPerson {
                name: "Lee".into(),
                email: "lee@buyer.com".into(),
                side: Side::Buyer,
                role: "legal".into(),
            },
        )
        .unwrap();
    let m1 = plan.add_milestone(&sam(), NOW, "Security", None).unwrap();
    let m2 = plan.add_milestone(&sam(), NOW, "Legal", None).unwrap();
    let mut add = |title: &str| {
        plan.add_task(
            &sam(),
            NOW,
            today(),
            NewTask {
                title: title.into(),
                description: "Send the questionnaire".into(),
                milestone: Some(m1.clone()),
                ..NewTask::default()
            },
        )
        .unwrap()
    };
    let t1 = add("Questionnaire");
    let t2 = add("Pen test");
    let t3 = add("Sign-off");
    Base {
        plan,
        m1,
        m2,
        t1,
        t2,
        t3,
        person,
    }
}

/// Two forks of the base plan, for Sam (A) and Ana (B).
fn forks(b: &mut Base) -> (PlanDoc, PlanDoc) {
    (b.plan.fork(), b.plan.fork())
}

/// Merge both ways, check convergence and invariants; return the view and
/// the merged plan.
fn converge(a: &mut PlanDoc, b: &mut PlanDoc) -> (PlanView, PlanDoc) {
    let mut ab = a.fork();
    ab.merge(b).unwrap();
    let mut ba = b.fork();
    ba.merge(a).unwrap();
    assert_eq!(ab.heads(), ba.heads(), "heads differ");
    let v1 = ab.view(today()).unwrap();
    let v2 = ba.view(today()).unwrap();
    assert_eq!(v1, v2, "views differ by merge order");
    let conflicts = ab.conflicts().unwrap();
    assert_eq!(conflicts, ba.conflicts().unwrap());
    let json = serde_json::to_string(&conflicts).unwrap();
    let back: Vec<Conflict> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, conflicts);
    check_invariants(&v1);
    (v1, ab)
}

/// Nothing invalid is presented as valid.
pub fn check_invariants(v: &PlanView) {
    let people: BTreeSet<&str> = v.people.iter().map(|p| p.id.as_str()).collect();
    let ms: BTreeSet<&str> = v.milestones.iter().map(|m| m.id.as_str()).collect();
    let tasks: BTreeSet<&str> = v.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(tasks.len(), v.tasks.len(), "task ids unique");
    assert_eq!(people.len(), v.people.len(), "person ids unique");
    let mut edges = deps::Edges::new();
    for t in &v.tasks {
        if let Some(m) = &t.milestone {
            assert!(
                ms.contains(m.as_str()),
                "task {} shows missing milestone {m}",
                t.id
            );
        }
        if let Some(o) = &t.owner {
            assert!(
                people.contains(o.as_str()),
                "task {} shows missing owner {o}",
                t.id
            );
        }
        for d in &t.deps {
            assert!(
                tasks.contains(d.as_str()),
                "task {} shows missing dep {d}",
                t.id
            );
            edges.entry(t.id.clone()).or_default().insert(d.clone());
        }
        assert!(t.blocked_by.iter().all(|d| t.deps.contains(d)));
    }
    assert!(
        deps::find_cycle(&edges).is_none(),
        "view shows a dependency cycle"
    );
}

fn field_conflicts(plan: &mut PlanDoc) -> BTreeMap<(String, String), Vec<String>> {
    plan.conflicts()
        .unwrap()
        .into_iter()
        .filter_map(|c| match c {
            Conflict::Field(f) => Some((
                (f.id, f.field),
                f.values.into_iter().map(|v| v.value).collect(),
            )),
            Conflict::DependencyCycle { .. } => None,
        })
        .collect()
}

#[test]
fn both_set_the_same_field() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.edit_task(
        &sam(),
        NOW,
        &b.t1,
        TaskEdit {
            title: Some("Questionnaire v2".into()),
            ..TaskEdit::default()
        },
    )
    .unwrap();
    bb.edit_task(
        &ana(),
        NOW,
        &b.t1,
        TaskEdit {
            title: Some("Security questionnaire".into()),
            ..TaskEdit::default()
        },
    )
    .unwrap();
    let (v, mut merged) = converge(&mut a, &mut bb);
    let shown = v.task(&b.t1).unwrap().title.clone();
    assert!(shown == "Questionnaire v2" || shown == "Security questionnaire");
    assert_eq!(v.conflicts, 1);
    let c = field_conflicts(&mut merged);
    let values = &c[&(b.t1.clone(), "title".to_string())];
    assert_eq!(values.len(), 2);
    assert_eq!(values[0], shown, "winner listed first");
    // Authors are visible.
    let all = merged.conflicts().unwrap();
    let Conflict::Field(f) = &all[0] else {
        panic!()
    };
    let authors: BTreeSet<String> = f.values.iter().filter_map(|v| v.author.clone()).collect();
    assert_eq!(
        authors,
        BTreeSet::from([
            "Ana <ana@buyer.com>".to_string(),
            "Sam <sam@vendor.com>".to_string()
        ])
    );
    // Writing the field again resolves it.
    merged
        .edit_task(
            &sam(),
            NOW,
            &b.t1,
            TaskEdit {
                title: Some("Questionnaire".into()),
                ..TaskEdit::default()
            },
        )
        .unwrap();
    assert!(merged.conflicts().unwrap().is_empty());
    assert_eq!(merged.view(today()).unwrap().conflicts, 0);
}

#[test]
fn edit_of_a_task_the_other_deleted() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.delete_task(&sam(), NOW, &b.t2).unwrap();
    bb.edit_task(
        &ana(),
        NOW,
        &b.t2,
        TaskEdit {
            title: Some("Pen test (external)".into()),
            ..TaskEdit::default()
        },
    )
    .unwrap();
    let (v, mut merged) = converge(&mut a, &mut bb);
    assert!(v.task(&b.t2).is_none(), "delete wins");
    assert_eq!(v.deleted.tasks, 1);
    merged.restore_task(&sam(), NOW, &b.t2).unwrap();
    let v = merged.view(today()).unwrap();
    assert_eq!(
        v.task(&b.t2).unwrap().title,
        "Pen test (external)",
        "the edit was kept"
    );
    assert_eq!(
        v.task(&b.t2).unwrap().milestone.as_deref(),
        Some(b.m1.as_str())
    );
}

#[test]
fn deps_that_together_form_a_cycle() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.add_dep(&sam(), NOW, &b.t1, &b.t2).unwrap();
    bb.add_dep(&ana(), NOW, &b.t2, &b.t1).unwrap();
    let (v, mut merged) = converge(&mut a, &mut bb);
    let (from, to) = if (b.t1.as_str(), b.t2.as_str()) > (b.t2.as_str(), b.t1.as_str()) {
        (&b.t1, &b.t2)
    } else {
        (&b.t2, &b.t1)
    };
    assert!(
        !v.task(from).unwrap().deps.contains(to),
        "greatest edge ignored"
    );
    assert_eq!(
        v.task(to).unwrap().deps,
        vec![from.clone()],
        "other edge kept"
    );
    assert!(
        v.warnings
            .iter()
            .any(|w| w.kind == WarningKind::DependencyCycle && w.message.contains("Questionnaire"))
    );
    assert_eq!(v.cycle_breaks.len(), 1);
    assert!(
        merged
            .conflicts()
            .unwrap()
            .iter()
            .any(|c| matches!(c, Conflict::DependencyCycle { .. }))
    );
    // Removing one edge resolves it.
    merged.remove_dep(&sam(), NOW, from, to).unwrap();
    let v = merged.view(today()).unwrap();
    assert!(v.cycle_breaks.is_empty() && v.warnings.is_empty());
}

#[test]
fn both_move_a_task_to_different_milestones() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.set_milestone(&sam(), NOW, &b.t3, Some(&b.m2)).unwrap();
    bb.set_milestone(&ana(), NOW, &b.t3, None).unwrap();
    let (v, mut merged) = converge(&mut a, &mut bb);
    // One side deleted the key, the other wrote it: the write survives.
    assert_eq!(
        v.task(&b.t3).unwrap().milestone.as_deref(),
        Some(b.m2.as_str())
    );
    let (mut a, mut bb) = forks(&mut b);
    let m3 = a.add_milestone(&sam(), NOW, "Procurement", None).unwrap();
    bb.merge(&mut a).unwrap();
    let mut a = bb.fork();
    a.set_milestone(&sam(), NOW, &b.t3, Some(&b.m2)).unwrap();
    bb.set_milestone(&ana(), NOW, &b.t3, Some(&m3)).unwrap();
    let (v, mut merged2) = converge(&mut a, &mut bb);
    let shown = v.task(&b.t3).unwrap().milestone.clone().unwrap();
    assert!(shown == b.m2 || shown == m3);
    let c = field_conflicts(&mut merged2);
    assert_eq!(c[&(b.t3.clone(), "milestone".to_string())][0], shown);
    assert!(field_conflicts(&mut merged).is_empty());
}

#[test]
fn both_edit_the_same_description() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.edit_task(
        &sam(),
        NOW,
        &b.t1,
        TaskEdit {
            description: Some("Send the questionnaire by Friday".into()),
            ..TaskEdit::default()
        },
    )
    .unwrap();
    bb.edit_task(
        &ana(),
        NOW,
        &b.t1,
        TaskEdit {
            description: Some("Please send the questionnaire".into()),
            ..TaskEdit::default()
        },
    )
    .unwrap();
    let (v, _) = converge(&mut a, &mut bb);
    assert_eq!(
        v.task(&b.t1).unwrap().description,
        "Please send the questionnaire by Friday"
    );
    assert_eq!(v.conflicts, 0);
}

#[test]
fn one_completes_a_task_the_other_blocks() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.set_status(&sam(), NOW, today(), &b.t1, TaskStatus::Done)
        .unwrap();
    bb.set_status(&ana(), NOW, today(), &b.t1, TaskStatus::Blocked)
        .unwrap();
    let (v, mut merged) = converge(&mut a, &mut bb);
    let t = v.task(&b.t1).unwrap();
    assert!(t.status == TaskStatus::Done || t.status == TaskStatus::Blocked);
    // The completed date is only shown for a task that is done.
    assert_eq!(t.completed.is_some(), t.status == TaskStatus::Done);
    assert_eq!(t.blocked, t.status == TaskStatus::Blocked);
    let c = field_conflicts(&mut merged);
    assert_eq!(
        c[&(b.t1.clone(), "status".to_string())][0],
        t.status.as_str()
    );
}

#[test]
fn both_add_a_person_with_the_same_email() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    let p = |name: &str| NewPerson {
        name: name.into(),
        email: "kim@buyer.com".into(),
        side: Side::Buyer,
        role: "security".into(),
    };
    let k1 = a.add_person(&sam(), NOW, p("Kim")).unwrap();
    let k2 = bb.add_person(&ana(), NOW, p("Kim Lee")).unwrap();
    let (v, _) = converge(&mut a, &mut bb);
    assert!(
        v.person(&k1).is_some() && v.person(&k2).is_some(),
        "both kept"
    );
    let w: Vec<_> = v
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::DuplicateEmail)
        .collect();
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("kim@buyer.com"));
}

#[test]
fn milestone_deleted_while_the_other_adds_tasks_to_it() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.delete_milestone(&sam(), NOW, &b.m2).unwrap();
    let t = bb
        .add_task(
            &ana(),
            NOW,
            today(),
            NewTask {
                title: "Redlines".into(),
                milestone: Some(b.m2.clone()),
                ..NewTask::default()
            },
        )
        .unwrap();
    let (v, mut merged) = converge(&mut a, &mut bb);
    assert!(v.milestone(&b.m2).is_none());
    assert_eq!(
        v.task(&t).unwrap().milestone,
        None,
        "shown as missing, never valid"
    );
    assert!(
        v.warnings
            .iter()
            .any(|w| w.kind == WarningKind::DanglingMilestone && w.message.contains("Redlines"))
    );
    merged.restore_milestone(&sam(), NOW, &b.m2).unwrap();
    let v = merged.view(today()).unwrap();
    assert_eq!(
        v.task(&t).unwrap().milestone.as_deref(),
        Some(b.m2.as_str())
    );
    assert!(v.warnings.is_empty());
}

#[test]
fn both_reorder_the_same_list() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.move_task(&sam(), NOW, &b.t3, Position::First).unwrap();
    bb.move_task(&ana(), NOW, &b.t3, Position::Before(b.t2.clone()))
        .unwrap();
    bb.move_task(&ana(), NOW, &b.t1, Position::Last).unwrap();
    let (v, mut merged) = converge(&mut a, &mut bb);
    let order: Vec<&str> = v.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(order.len(), 3);
    assert_eq!(
        *order.last().unwrap(),
        b.t1.as_str(),
        "B's move of t1 applies"
    );
    assert!(field_conflicts(&mut merged).contains_key(&(b.t3.clone(), "order".to_string())));
}

#[test]
fn owner_removed_while_the_other_assigns() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.remove_person(&sam(), NOW, &b.person).unwrap();
    bb.edit_task(
        &ana(),
        NOW,
        &b.t1,
        TaskEdit {
            owner: Some(Some(b.person.clone())),
            ..TaskEdit::default()
        },
    )
    .unwrap();
    let (v, _) = converge(&mut a, &mut bb);
    assert_eq!(v.task(&b.t1).unwrap().owner, None);
    assert!(
        v.warnings
            .iter()
            .any(|w| w.kind == WarningKind::DanglingOwner)
    );
}

#[test]
fn dependency_on_a_task_the_other_deleted() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    a.delete_task(&sam(), NOW, &b.t1).unwrap();
    bb.add_dep(&ana(), NOW, &b.t2, &b.t1).unwrap();
    let (v, _) = converge(&mut a, &mut bb);
    let t2 = v.task(&b.t2).unwrap();
    assert!(t2.deps.is_empty() && !t2.blocked);
    assert!(
        v.warnings
            .iter()
            .any(|w| w.kind == WarningKind::DanglingDependency)
    );
}

#[test]
fn both_edit_a_description_a_js_peer_wrote_as_plain_string() {
    use automerge::transaction::Transactable;
    use automerge::{ROOT, ReadDoc};
    let mut b = base();
    // A JS peer (or an old version) stored the description as a plain string.
    {
        let doc = b.plan.doc_mut();
        let tasks = doc.get(ROOT, "tasks").unwrap().unwrap().1;
        let t = doc.get(&tasks, b.t1.as_str()).unwrap().unwrap().1;
        doc.put(&t, "description", "plain").unwrap();
        doc.commit();
    }
    let (mut a, mut bb) = forks(&mut b);
    a.edit_task(
        &sam(),
        NOW,
        &b.t1,
        TaskEdit {
            description: Some("plain, from Sam".into()),
            ..TaskEdit::default()
        },
    )
    .unwrap();
    bb.edit_task(
        &ana(),
        NOW,
        &b.t1,
        TaskEdit {
            description: Some("plain, from Ana".into()),
            ..TaskEdit::default()
        },
    )
    .unwrap();
    let (v, mut merged) = converge(&mut a, &mut bb);
    let shown = v.task(&b.t1).unwrap().description.clone();
    assert_eq!(v.conflicts, 1);
    let c = field_conflicts(&mut merged);
    assert_eq!(c[&(b.t1.clone(), "description".to_string())][0], shown);
    // Editing again resolves the conflict; from then on edits merge in the text.
    merged
        .edit_task(
            &sam(),
            NOW,
            &b.t1,
            TaskEdit {
                description: Some("agreed".into()),
                ..TaskEdit::default()
            },
        )
        .unwrap();
    assert!(merged.conflicts().unwrap().is_empty());
    assert_eq!(
        merged
            .view(today())
            .unwrap()
            .task(&b.t1)
            .unwrap()
            .description,
        "agreed"
    );
}

#[test]
fn history_of_a_merged_plan_lists_newest_first() {
    let mut b = base();
    let (mut a, mut bb) = forks(&mut b);
    for i in 0..5 {
        a.set_status(
            &sam(),
            NOW + i,
            today(),
            &b.t1,
            TaskStatus::ALL[i as usize % 4],
        )
        .unwrap();
        bb.set_status(
            &ana(),
            NOW + i,
            today(),
            &b.t2,
            TaskStatus::ALL[i as usize % 4],
        )
        .unwrap();
    }
    let (_, mut merged) = converge(&mut a, &mut bb);
    let history = merged.history();
    assert_eq!(
        history.last().map(|h| h.message.as_str()),
        Some("plan create: Acme")
    );
    let pos: BTreeMap<String, usize> = history
        .iter()
        .enumerate()
        .map(|(i, h)| (h.hash.clone(), i))
        .collect();
    for h in &history {
        let hash: automerge::ChangeHash = h.hash.parse().unwrap();
        let change = merged.doc_mut().get_change_by_hash(&hash).unwrap();
        for dep in change.deps() {
            assert!(
                pos[&dep.to_string()] > pos[&h.hash],
                "a change is listed before its dependency"
            );
        }
    }
    assert!(history.iter().any(|h| h.author == "Ana <ana@buyer.com>"));
}
