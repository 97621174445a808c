//! Tests of the plan model's public API: edits, validation, views, history.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
use chrono::NaiveDate;
use map_model::ModelError;
use map_model::identity::{Identity, Side};
use map_model::insights;
use map_model::plan::{NewPerson, NewRisk, NewTask, PersonEdit, PlanDoc, Position, TaskEdit};
use map_model::schema::{EntityKind, TaskStatus};
use map_model::view::WarningKind;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn seller() -> Identity {
    Identity::new("Sam Seller", "sam@vendor.com", Side::Seller)
}

fn buyer() -> Identity {
    Identity::new("Ana Buyer", "ana@buyer.com", Side::Buyer)
}

const NOW: i64 = 1_780_000_000_000;

fn task(plan: &mut PlanDoc, title: &str) -> String {
    plan.add_task(
        &seller(),
        NOW,
        d("2026-12-01"),
        NewTask {
            title: title.into(),
            ..NewTask::default()
        },
    )
    .unwrap()
}

fn changes(plan: &mut PlanDoc) -> usize {
    plan.doc_mut().get_changes(&[]).len()
}

#[test]
fn create_save_load_round_trip() {
    let mut plan = PlanDoc::create("Acme rollout", &seller(), NOW).unwrap();
    let bytes = plan.save();
    let mut loaded = PlanDoc::load(&bytes).unwrap();
    assert_eq!(loaded.title(), "Acme rollout");
    let v = loaded.view(d("2026-12-01")).unwrap();
    assert_eq!(v.schema, 1);
    assert_eq!(v.header.title, "Acme rollout");
    assert_eq!(v.header.created_at, Some(NOW));
    assert!(v.warnings.is_empty());
    assert!(matches!(
        PlanDoc::create("  ", &seller(), NOW),
        Err(ModelError::Empty(_))
    ));
}

#[test]
fn refuses_newer_schema_and_non_plans() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    plan.doc_mut().put(ROOT, "schema", 2u64).unwrap();
    plan.doc_mut().commit();
    let err = PlanDoc::load(&plan.save()).unwrap_err();
    assert!(
        matches!(err, ModelError::NewerSchema { found: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade"));

    let mut other = AutoCommit::new();
    other.put(ROOT, "count", 3).unwrap();
    let err = PlanDoc::load(&other.save()).unwrap_err();
    assert!(matches!(err, ModelError::NotAPlan(_)), "{err}");
    assert!(PlanDoc::load(b"garbage").is_err());
}

#[test]
fn every_edit_is_one_change_with_author_time_and_message() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let before = changes(&mut plan);
    let ana = plan
        .add_person(
            &seller(),
            NOW + 1,
            NewPerson {
                name: "Ana".into(),
                email: "ana@buyer.com".into(),
                side: Side::Buyer,
                role: "Legal".into(),
            },
        )
        .unwrap();
    assert_eq!(changes(&mut plan), before + 1);
    let t = plan
        .add_task(
            &buyer(),
            NOW + 2,
            d("2026-12-01"),
            NewTask {
                title: "Security review".into(),
                owner: Some(ana.clone()),
                ..NewTask::default()
            },
        )
        .unwrap();
    plan.set_status(&buyer(), NOW + 3, d("2026-12-02"), &t, TaskStatus::Done)
        .unwrap();
    assert_eq!(changes(&mut plan), before + 3);

    let h = plan.history();
    assert_eq!(h.len(), 4);
    assert_eq!(h[0].message, "task done: Security review");
    assert_eq!(h[0].author, "Ana Buyer <ana@buyer.com>");
    assert_eq!(h[0].time, NOW + 3);
    assert_eq!(h[1].message, "task add: Security review");
    assert_eq!(h[2].message, "person add: Ana (buyer, legal)");
    assert_eq!(h[2].author, "Sam Seller <sam@vendor.com>");
    assert_eq!(h[3].message, "plan create: Acme");
    // A failed edit leaves no change behind.
    assert!(
        plan.set_status(&buyer(), NOW, d("2026-12-02"), "nope", TaskStatus::Done)
            .is_err()
    );
    assert_eq!(changes(&mut plan), before + 3);
    // History serialises.
    let json = serde_json::to_string(&h).unwrap();
    assert!(json.contains("task done"));
}

#[test]
fn actor_is_kept_when_author_is_set() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let actor = automerge::ActorId::from(vec![7u8; 16]);
    plan.doc_mut().set_actor(actor.clone());
    task(&mut plan, "One");
    assert_eq!(plan.doc().get_actor(), &actor);
    plan.add_milestone(&seller(), NOW, "M", None).unwrap();
    assert_eq!(plan.doc().get_actor(), &actor);
    // Someone else editing through the same document gets their own actor,
    // so the history never credits them to the seller.
    plan.add_milestone(&buyer(), NOW, "N", None).unwrap();
    assert_ne!(plan.doc().get_actor(), &actor);
    assert_eq!(plan.history()[0].author, "Ana Buyer <ana@buyer.com>");
    assert_eq!(plan.history()[1].author, "Sam Seller <sam@vendor.com>");
}

#[test]
fn status_done_sets_and_reopen_clears_completed() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let t = task(&mut plan, "Legal redlines");
    plan.set_status(&seller(), NOW, d("2026-12-03"), &t, TaskStatus::Done)
        .unwrap();
    let v = plan.view(d("2026-12-04")).unwrap();
    assert_eq!(v.tasks[0].completed, Some(d("2026-12-03")));
    assert_eq!(v.progress.percent, 100);
    plan.set_status(&seller(), NOW, d("2026-12-05"), &t, TaskStatus::InProgress)
        .unwrap();
    let v = plan.view(d("2026-12-05")).unwrap();
    assert_eq!(v.tasks[0].completed, None);
    assert_eq!(v.tasks[0].status, TaskStatus::InProgress);
    assert_eq!(
        plan.history()[0].message,
        "task in_progress: Legal redlines"
    );
}

#[test]
fn validation_errors_say_what_to_do() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let err = plan
        .add_task(
            &seller(),
            NOW,
            d("2026-12-01"),
            NewTask {
                title: "x".into(),
                owner: Some("bob".into()),
                ..NewTask::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, ModelError::UnknownPerson(_)));
    assert!(err.to_string().contains("map person add"), "{err}");
    let err = plan
        .add_task(
            &seller(),
            NOW,
            d("2026-12-01"),
            NewTask {
                title: "x".into(),
                milestone: Some("zzz".into()),
                ..NewTask::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, ModelError::UnknownMilestone(_)));
    let err = plan
        .add_task(&seller(), NOW, d("2026-12-01"), NewTask::default())
        .unwrap_err();
    assert!(matches!(err, ModelError::Empty(_)));
    let t = task(&mut plan, "A");
    assert!(matches!(
        plan.edit_task(
            &seller(),
            NOW,
            &t,
            TaskEdit {
                title: Some(" ".into()),
                ..TaskEdit::default()
            }
        ),
        Err(ModelError::Empty(_))
    ));
    assert!(matches!(
        plan.add_comment(&seller(), NOW, "nothing", "hi"),
        Err(ModelError::UnknownTarget(_))
    ));
}

#[test]
fn deps_refuse_self_cycles_and_unknown_tasks() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let a = task(&mut plan, "A");
    let b = task(&mut plan, "B");
    let c = task(&mut plan, "C");
    plan.add_dep(&seller(), NOW, &a, &b).unwrap();
    plan.add_dep(&seller(), NOW, &b, &c).unwrap();
    assert!(matches!(
        plan.add_dep(&seller(), NOW, &a, &a),
        Err(ModelError::SelfDependency(_))
    ));
    assert!(matches!(
        plan.add_dep(&seller(), NOW, &a, "zzzz"),
        Err(ModelError::UnknownTask(_))
    ));
    match plan.add_dep(&seller(), NOW, &c, &a) {
        Err(ModelError::Cycle { path }) => {
            assert_eq!(path.len(), 4);
            assert!(path[0].starts_with("C ("));
            assert!(path[3].starts_with("C ("));
        }
        other => panic!("{other:?}"),
    }
    let v = plan.view(d("2026-12-01")).unwrap();
    let ta = v.task(&a).unwrap();
    assert_eq!(ta.deps, vec![b.clone()]);
    assert!(ta.blocked);
    assert_eq!(
        insights::next_actions(&v)
            .iter()
            .map(|t| t.title.as_str())
            .collect::<Vec<_>>(),
        vec!["C"]
    );
    plan.remove_dep(&seller(), NOW, &a, &b).unwrap();
    assert!(
        plan.view(d("2026-12-01"))
            .unwrap()
            .task(&a)
            .unwrap()
            .deps
            .is_empty()
    );
    assert!(plan.remove_dep(&seller(), NOW, &a, &b).is_err());
}

#[test]
fn resolve_prefixes_names_and_emails() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let ana = plan
        .add_person(
            &seller(),
            NOW,
            NewPerson {
                name: "Ana".into(),
                email: "ana@buyer.com".into(),
                side: Side::Buyer,
                role: String::new(),
            },
        )
        .unwrap();
    assert_eq!(plan.resolve(EntityKind::Person, "ana").unwrap(), ana);
    assert_eq!(
        plan.resolve(EntityKind::Person, "ANA@buyer.com").unwrap(),
        ana
    );
    assert_eq!(plan.resolve(EntityKind::Person, &ana[..5]).unwrap(), ana);
    let err = plan.resolve(EntityKind::Person, "bob smith").unwrap_err();
    assert!(err.to_string().contains("no person matches 'bob smith'"));
    let t = task(&mut plan, "Security review");
    assert_eq!(
        plan.resolve(EntityKind::Task, "security review").unwrap(),
        t
    );
    assert_eq!(plan.resolve(EntityKind::Comment, &t[..6]).unwrap(), t);
    // Ambiguity: many tasks share a one-letter prefix eventually.
    let mut ids = vec![t];
    for i in 0..40 {
        ids.push(task(&mut plan, &format!("T{i}")));
    }
    let first = ids[0].chars().next().unwrap().to_string();
    let n = ids.iter().filter(|i| i.starts_with(&first)).count();
    if n > 1 {
        assert!(matches!(
            plan.resolve(EntityKind::Task, &first),
            Err(ModelError::Ambiguous { .. })
        ));
    }
}

#[test]
fn view_derives_progress_overdue_and_owners() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let ana = plan
        .add_person(
            &seller(),
            NOW,
            NewPerson {
                name: "Ana".into(),
                email: "a@b.c".into(),
                side: Side::Buyer,
                role: "legal".into(),
            },
        )
        .unwrap();
    let m = plan
        .add_milestone(&seller(), NOW, "Security", Some(d("2026-11-01")))
        .unwrap();
    let mk = |plan: &mut PlanDoc, title: &str, due: &str, status| {
        plan.add_task(
            &seller(),
            NOW,
            d("2026-10-01"),
            NewTask {
                title: title.into(),
                milestone: Some(m.clone()),
                owner: Some(ana.clone()),
                due: Some(d(due)),
                status,
                ..NewTask::default()
            },
        )
        .unwrap()
    };
    mk(&mut plan, "Questionnaire", "2026-10-15", TaskStatus::Done);
    mk(&mut plan, "Pen test", "2026-10-20", TaskStatus::Todo);
    mk(&mut plan, "Dropped", "2026-10-20", TaskStatus::Dropped);
    let v = plan.view(d("2026-11-05")).unwrap();
    let ms = v.milestone(&m).unwrap();
    assert_eq!(
        (ms.progress.done, ms.progress.total, ms.progress.percent),
        (1, 2, 50)
    );
    assert!(ms.overdue);
    assert_eq!(insights::overdue(&v).len(), 1);
    let pen = v.tasks.iter().find(|t| t.title == "Pen test").unwrap();
    assert_eq!(pen.owner_name.as_deref(), Some("Ana"));
    assert_eq!(pen.owner_side, Some(Side::Buyer));
    assert_eq!(pen.milestone_title.as_deref(), Some("Security"));
    assert_eq!(v.person(&ana).unwrap().open_tasks, 1);
    let by_side = insights::next_actions_by_side(&v);
    assert_eq!(by_side.get(&Some(Side::Buyer)).map(|v| v.len()), Some(1));
    // Serde round trip (JSON).
    let json = serde_json::to_string(&v).unwrap();
    let back: map_model::PlanView = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
    // CBOR round trip (the store caches views as CBOR).
    let mut cbor = Vec::new();
    ciborium::into_writer(&v, &mut cbor).unwrap();
    let back: map_model::PlanView = ciborium::from_reader(cbor.as_slice()).unwrap();
    assert_eq!(back, v);
}

#[test]
fn move_uses_midpoints_and_renumbers_when_needed() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let a = task(&mut plan, "A");
    let b = task(&mut plan, "B");
    let c = task(&mut plan, "C");
    plan.move_task(&seller(), NOW, &c, Position::Before(b.clone()))
        .unwrap();
    let titles = |plan: &mut PlanDoc| {
        plan.view(d("2026-12-01"))
            .unwrap()
            .tasks
            .iter()
            .map(|t| t.title.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(titles(&mut plan), ["A", "C", "B"]);
    plan.move_task(&seller(), NOW, &a, Position::Last).unwrap();
    assert_eq!(titles(&mut plan), ["C", "B", "A"]);
    plan.move_task(&seller(), NOW, &a, Position::First).unwrap();
    assert_eq!(titles(&mut plan), ["A", "C", "B"]);
    for _ in 0..80 {
        plan.move_task(&seller(), NOW, &b, Position::After(a.clone()))
            .unwrap();
        plan.move_task(&seller(), NOW, &c, Position::After(a.clone()))
            .unwrap();
    }
    assert_eq!(titles(&mut plan), ["A", "C", "B"]);
}

#[test]
fn soft_delete_and_restore() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let a = task(&mut plan, "A");
    let b = task(&mut plan, "B");
    plan.add_dep(&seller(), NOW, &b, &a).unwrap();
    plan.delete_task(&seller(), NOW, &a).unwrap();
    let v = plan.view(d("2026-12-01")).unwrap();
    assert_eq!(v.tasks.len(), 1);
    assert_eq!(v.deleted.tasks, 1);
    assert!(v.tasks[0].deps.is_empty());
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    assert!(matches!(
        plan.set_status(&seller(), NOW, d("2026-12-01"), &a, TaskStatus::Done),
        Err(ModelError::Deleted { .. })
    ));
    // Deleted tasks can still be named (to restore them), but live ones win.
    assert_eq!(plan.resolve(EntityKind::Task, &a[..11]).unwrap(), a);
    plan.restore_task(&seller(), NOW, &a).unwrap();
    assert_eq!(plan.view(d("2026-12-01")).unwrap().tasks.len(), 2);

    let m = plan.add_milestone(&seller(), NOW, "M", None).unwrap();
    plan.set_milestone(&seller(), NOW, &a, Some(&m)).unwrap();
    plan.delete_milestone(&seller(), NOW, &m).unwrap();
    let v = plan.view(d("2026-12-01")).unwrap();
    assert!(v.milestones.is_empty());
    assert_eq!(v.task(&a).unwrap().milestone, None);
    assert!(v.warnings.is_empty());
    assert_eq!(
        plan.history()[0].message,
        "milestone delete: M (1 tasks moved out)"
    );
    plan.restore_milestone(&seller(), NOW, &m).unwrap();
    assert_eq!(plan.view(d("2026-12-01")).unwrap().milestones.len(), 1);
}

#[test]
fn people_risks_comments_and_header() {
    let mut plan = PlanDoc::create("Acme", &seller(), NOW).unwrap();
    let ana = plan
        .add_person(
            &seller(),
            NOW,
            NewPerson {
                name: "Ana".into(),
                email: "a@b.c".into(),
                side: Side::Buyer,
                role: "economic_buyer".into(),
            },
        )
        .unwrap();
    plan.edit_person(
        &seller(),
        NOW,
        &ana,
        PersonEdit {
            role: Some("Champion".into()),
            ..PersonEdit::default()
        },
    )
    .unwrap();
    let t = plan
        .add_task(
            &seller(),
            NOW,
            d("2026-12-01"),
            NewTask {
                title: "T".into(),
                owner: Some(ana.clone()),
                ..NewTask::default()
            },
        )
        .unwrap();
    let r = plan
        .add_risk(
            &seller(),
            NOW,
            NewRisk {
                title: "Budget freeze".into(),
                mitigation: "Ask early".into(),
                owner: Some(ana.clone()),
                ..NewRisk::default()
            },
        )
        .unwrap();
    plan.add_comment(&buyer(), NOW + 5, &t, "Looks good")
        .unwrap();
    plan.add_comment(&buyer(), NOW + 6, &r, "Worried").unwrap();
    plan.set_objective(&seller(), NOW, "Go live by March")
        .unwrap();
    plan.set_success_criteria(&seller(), NOW, "SSO works")
        .unwrap();
    plan.set_signature_date(&seller(), NOW, Some(d("2027-01-15")))
        .unwrap();
    plan.set_go_live(&seller(), NOW, Some(d("2027-03-01")))
        .unwrap();
    plan.set_title(&seller(), NOW, "Acme 2027").unwrap();
    let v = plan.view(d("2026-12-01")).unwrap();
    assert_eq!(v.people[0].role, "champion");
    assert_eq!(v.risks[0].owner_name.as_deref(), Some("Ana"));
    assert_eq!(v.risks[0].mitigation, "Ask early");
    assert_eq!(v.comments.len(), 2);
    assert_eq!(v.comments[0].author, "Ana Buyer <ana@buyer.com>");
    assert_eq!(v.comments[0].target_kind, Some(EntityKind::Task));
    assert_eq!(v.tasks[0].comments, 1);
    assert_eq!(v.header.title, "Acme 2027");
    assert_eq!(v.header.objective, "Go live by March");
    assert_eq!(v.header.go_live, Some(d("2027-03-01")));
    plan.remove_person(&seller(), NOW, &ana).unwrap();
    let v = plan.view(d("2026-12-01")).unwrap();
    assert!(v.people.is_empty());
    assert_eq!(v.tasks[0].owner, None);
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    plan.remove_risk(&seller(), NOW, &r).unwrap();
    assert!(plan.view(d("2026-12-01")).unwrap().risks.is_empty());
}

#[test]
fn reads_plain_strings_and_text_alike() {
    // A plan as JS automerge would write it: Text for every string.
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "schema", 1i64).unwrap();
    let h = doc.put_object(ROOT, "header", ObjType::Map).unwrap();
    let title = doc.put_object(&h, "title", ObjType::Text).unwrap();
    doc.splice_text(&title, 0, 0, "From JS").unwrap();
    doc.put(&h, "objective", "plain objective").unwrap();
    let tasks = doc.put_object(ROOT, "tasks", ObjType::Map).unwrap();
    let t = doc
        .put_object(&tasks, "aaaaaaaaaaaa", ObjType::Map)
        .unwrap();
    let tt = doc.put_object(&t, "title", ObjType::Text).unwrap();
    doc.splice_text(&tt, 0, 0, "JS task").unwrap();
    let st = doc.put_object(&t, "status", ObjType::Text).unwrap();
    doc.splice_text(&st, 0, 0, "done").unwrap();
    doc.put(&t, "description", "plain description").unwrap();
    doc.put(&t, "order", 1.5).unwrap();
    doc.commit();
    let mut plan = PlanDoc::from_doc(doc).unwrap();
    assert_eq!(plan.title(), "From JS");
    let v = plan.view(d("2026-12-01")).unwrap();
    assert_eq!(v.header.objective, "plain objective");
    assert_eq!(v.tasks[0].title, "JS task");
    assert_eq!(v.tasks[0].status, TaskStatus::Done);
    assert_eq!(v.tasks[0].description, "plain description");
    // Editing a plain-string description turns it into Text.
    plan.edit_task(
        &seller(),
        NOW,
        "aaaaaaaaaaaa",
        TaskEdit {
            description: Some("new".into()),
            ..TaskEdit::default()
        },
    )
    .unwrap();
    let tasks = plan.doc().get(ROOT, "tasks").unwrap().unwrap().1;
    let t = plan.doc().get(&tasks, "aaaaaaaaaaaa").unwrap().unwrap().1;
    assert!(matches!(
        plan.doc().get(&t, "description").unwrap().unwrap().0,
        automerge::Value::Object(ObjType::Text)
    ));
    // Collections missing from a peer's document are created on first write.
    let id = task(&mut plan, "Added");
    assert!(plan.view(d("2026-12-01")).unwrap().task(&id).is_some());
}

#[test]
fn malformed_documents_never_panic() {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "schema", 1u64).unwrap();
    let h = doc.put_object(ROOT, "header", ObjType::Map).unwrap();
    doc.put(&h, "title", 42).unwrap();
    doc.put(&h, "go_live", "someday").unwrap();
    doc.put(ROOT, "people", "not a map").unwrap();
    let tasks = doc.put_object(ROOT, "tasks", ObjType::Map).unwrap();
    doc.put(&tasks, "scalar", 1).unwrap();
    let l = doc.put_object(&tasks, "list", ObjType::List).unwrap();
    doc.insert(&l, 0, "x").unwrap();
    let t = doc
        .put_object(&tasks, "bbbbbbbbbbbb", ObjType::Map)
        .unwrap();
    doc.put(&t, "status", "later").unwrap();
    doc.put(&t, "due", 5).unwrap();
    doc.put(&t, "start", "2026-99-99").unwrap();
    doc.put(&t, "order", "first").unwrap();
    doc.put(&t, "deps", "x").unwrap();
    doc.put(&t, "owner", "ghost").unwrap();
    doc.put(&t, "deleted", "yes").unwrap();
    doc.commit();
    let mut plan = PlanDoc::from_doc(doc).unwrap();
    let v = plan.view(d("2026-12-01")).unwrap();
    assert_eq!(v.tasks.len(), 1);
    assert_eq!(v.tasks[0].status, TaskStatus::Todo);
    assert_eq!(v.tasks[0].owner, None);
    assert!(v.warnings.iter().any(|w| w.kind == WarningKind::BadValue));
    assert!(
        v.warnings
            .iter()
            .any(|w| w.kind == WarningKind::DanglingOwner)
    );
    plan.conflicts().unwrap();
    plan.history();
    // Edits still work where they can.
    assert!(matches!(
        plan.add_person(
            &seller(),
            NOW,
            NewPerson {
                name: "X".into(),
                ..NewPerson::default()
            }
        ),
        Ok(_) | Err(_)
    ));
}
