//! A rough guard on the hot path: loading a plan with 10,000 changes,
//! building its view and making an edit must stay fast (debug build, so the
//! bounds are generous; run with `--nocapture` to see the timings).

use std::time::Instant;

use chrono::NaiveDate;
use map_model::identity::{Identity, Side};
use map_model::plan::{NewTask, PlanDoc};
use map_model::schema::TaskStatus;

#[test]
fn ten_thousand_changes() {
    let by = Identity::new("Sam", "sam@x.com", Side::Seller);
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let mut plan = PlanDoc::create("Big", &by, 0).unwrap();
    let mut ids = Vec::new();
    for i in 0..200 {
        let t = NewTask {
            title: format!("Task {i}"),
            description: "Some words about the task".into(),
            ..NewTask::default()
        };
        ids.push(plan.add_task(&by, i, today, t).unwrap());
    }
    let statuses = [
        TaskStatus::InProgress,
        TaskStatus::Blocked,
        TaskStatus::Todo,
    ];
    for i in 0..9_800usize {
        let id = &ids[i % ids.len()];
        plan.set_status(&by, i as i64, today, id, statuses[i % 3])
            .unwrap();
    }
    let bytes = plan.save();

    let t0 = Instant::now();
    let mut loaded = PlanDoc::load(&bytes).unwrap();
    let load = t0.elapsed();
    let t1 = Instant::now();
    let view = loaded.view(today).unwrap();
    let view_t = t1.elapsed();
    let t2 = Instant::now();
    loaded
        .set_status(&by, 1, today, &ids[0], TaskStatus::Done)
        .unwrap();
    loaded.add_dep(&by, 2, &ids[1], &ids[2]).unwrap();
    let edit = t2.elapsed();
    let t3 = Instant::now();
    let history = loaded.history();
    let hist = t3.elapsed();
    eprintln!(
        "{} bytes; load {load:?}, view {view_t:?}, two edits {edit:?}, history {hist:?}",
        bytes.len()
    );
    assert_eq!(view.tasks.len(), 200);
    // Setting a status to the value it already has writes nothing.
    assert!(history.len() > 9_000);
    assert!(load.as_secs_f64() + view_t.as_secs_f64() + edit.as_secs_f64() < 5.0);
}
