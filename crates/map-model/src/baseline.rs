//! Baselines: a named point in the plan's history (its heads, as both sides
//! agreed it), stored in the document so every participant shares it, and
//! the difference between a baseline and now.
//!
//! Stored under the root key `baselines`: a map name -> map `{heads: list
//! of hex change hashes, at: ms, by: "Name <email>"}`. If two people create
//! the `baselines` map concurrently, Automerge keeps both maps as a
//! conflict; readers take the union of all of them, so no baseline is lost.
//!
//! The diff views the document at the baseline's heads (`fork_at`), builds
//! a [`PlanView`] of it and compares it with the view of now: due dates that
//! moved (slips are positive days), tasks added and dropped (or deleted),
//! the go-live, and who made each of those changes (the author of the
//! change that wrote the current value, via [`crate::activity`]).

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjType, ROOT, ReadDoc, ValueRef};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::activity::{ChangeIndex, field_touch};
use crate::error::{ModelError, Result};
use crate::identity::Identity;
use crate::plan::PlanDoc;
use crate::schema::{TaskStatus, keys, value_ref_i64, value_ref_str};
use crate::view::{self, PlanView};

/// Root key of the baselines map.
pub const BASELINES: &str = "baselines";

/// A named baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// Name.
    pub name: String,
    /// Heads (hex), sorted.
    pub heads: Vec<String>,
    /// When it was recorded (ms).
    pub at: i64,
    /// Who recorded it.
    pub by: String,
}

fn read_one<R: ReadDoc>(doc: &R, name: &str, obj: &automerge::ObjId) -> Baseline {
    let mut heads = Vec::new();
    if let Ok(Some((automerge::Value::Object(ObjType::List), list))) = doc.get(obj, "heads") {
        for item in doc.list_range(&list, ..) {
            if let Some(s) = value_ref_str(doc, &item.value, &item.id()) {
                heads.push(s);
            }
        }
    }
    heads.sort();
    let mut at = 0;
    let mut by = String::new();
    for item in doc.map_range(obj, ..) {
        match item.key.as_ref() {
            "at" => at = value_ref_i64(&item.value).unwrap_or(0),
            "by" => by = value_ref_str(doc, &item.value, &item.id()).unwrap_or_default(),
            _ => {}
        }
    }
    Baseline {
        name: name.to_string(),
        heads,
        at,
        by,
    }
}

/// All baselines, by name (the union of concurrent `baselines` maps).
pub fn list<R: ReadDoc>(doc: &R) -> Vec<Baseline> {
    let mut out: BTreeMap<String, Baseline> = BTreeMap::new();
    let Ok(all) = doc.get_all(ROOT, BASELINES) else {
        return Vec::new();
    };
    for (v, map) in all {
        if !matches!(v, automerge::Value::Object(ObjType::Map)) {
            continue;
        }
        for item in doc.map_range(&map, ..) {
            if let ValueRef::Object(ObjType::Map) = item.value {
                let b = read_one(doc, &item.key, &item.id());
                // Keep the newest of two same-named baselines.
                if out.get(&b.name).is_none_or(|o| b.at >= o.at) {
                    out.insert(b.name.clone(), b);
                }
            }
        }
    }
    out.into_values().collect()
}

/// A baseline by name (case-insensitive).
pub fn find<R: ReadDoc>(doc: &R, name: &str) -> Option<Baseline> {
    let n = name.trim().to_lowercase();
    list(doc).into_iter().find(|b| b.name.to_lowercase() == n)
}

impl PlanDoc {
    /// Record the current heads as baseline `name` (one change).
    pub fn create_baseline(&mut self, by: &Identity, now: i64, name: &str) -> Result<Baseline> {
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(ModelError::Empty("baseline name"));
        }
        if find(self.doc(), &name).is_some() {
            return Err(ModelError::InvalidValue {
                field: "baseline name",
                value: name,
                expected: "a name not used yet (see `map baseline list`)",
            });
        }
        let mut heads: Vec<String> = self.heads().iter().map(|h| h.to_string()).collect();
        heads.sort();
        let author = by.author_string();
        let b = Baseline {
            name: name.clone(),
            heads: heads.clone(),
            at: now,
            by: author.clone(),
        };
        self.edit(by, now, |p| {
            let d = p.doc_mut();
            let map = match d.get(ROOT, BASELINES)? {
                Some((automerge::Value::Object(ObjType::Map), id)) => id,
                _ => d.put_object(ROOT, BASELINES, ObjType::Map)?,
            };
            let obj = d.put_object(&map, name.as_str(), ObjType::Map)?;
            let list = d.put_object(&obj, "heads", ObjType::List)?;
            for (i, h) in heads.iter().enumerate() {
                d.insert(&list, i, h.as_str())?;
            }
            d.put(&obj, "at", now)?;
            d.put(&obj, "by", author.as_str())?;
            Ok(((), format!("baseline create: {name}")))
        })?;
        Ok(b)
    }
}

/// A date that moved since the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateMove {
    /// Task or milestone id (`go-live` for the plan's go-live).
    pub id: String,
    /// Title.
    pub title: String,
    /// Date at the baseline.
    pub before: Option<NaiveDate>,
    /// Date now.
    pub after: Option<NaiveDate>,
    /// Days later (negative: earlier; 0 when set or cleared).
    pub days: i64,
    /// Who wrote the current value (if known).
    pub by: Option<String>,
}

/// A task added or dropped since the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Who did it (if known).
    pub by: Option<String>,
}

/// What changed between a baseline and now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineDiff {
    /// The baseline.
    pub baseline: Baseline,
    /// Task due dates that moved, latest slip first.
    pub tasks: Vec<DateMove>,
    /// Milestone due dates that moved.
    pub milestones: Vec<DateMove>,
    /// The go-live date, if it moved.
    pub go_live: Option<DateMove>,
    /// Tasks added since.
    pub added: Vec<Item>,
    /// Tasks dropped or deleted since.
    pub dropped: Vec<Item>,
    /// Authors of the changes since the baseline (other than recording
    /// baselines), with their change counts.
    pub authors: Vec<(String, usize)>,
}

fn days(before: Option<NaiveDate>, after: Option<NaiveDate>) -> i64 {
    match (before, after) {
        (Some(b), Some(a)) => (a - b).num_days(),
        _ => 0,
    }
}

/// The view of `doc` at `baseline`'s heads.
pub fn view_at(doc: &Automerge, baseline: &Baseline, today: NaiveDate) -> Result<PlanView> {
    let heads: Vec<ChangeHash> = baseline
        .heads
        .iter()
        .map(|h| {
            h.parse::<ChangeHash>()
                .map_err(|_| ModelError::InvalidValue {
                    field: "baseline head",
                    value: h.clone(),
                    expected: "a change hash",
                })
        })
        .collect::<Result<_>>()?;
    let old = doc.fork_at(&heads).map_err(|_| {
        ModelError::NotAPlan(format!(
            "baseline '{}' refers to changes this copy does not have; sync with `map sync` and try again",
            baseline.name
        ))
    })?;
    view::build(&old, today)
}

/// Compare `baseline` with `doc` now.
pub fn diff(doc: &Automerge, baseline: &Baseline, today: NaiveDate) -> Result<BaselineDiff> {
    let before = view_at(doc, baseline, today)?;
    let now = view::build(doc, today)?;
    let index = ChangeIndex::new(doc);
    let by =
        |task: &str, field: &str| field_touch(doc, &index, task, field).map(|t| t.author.clone());

    let mut tasks = Vec::new();
    let mut added = Vec::new();
    let mut dropped = Vec::new();
    for t in &now.tasks {
        match before.task(&t.id) {
            None => added.push(Item {
                id: t.id.clone(),
                title: t.title.clone(),
                by: by(&t.id, ""),
            }),
            Some(b) => {
                if b.status != TaskStatus::Dropped && t.status == TaskStatus::Dropped {
                    dropped.push(Item {
                        id: t.id.clone(),
                        title: t.title.clone(),
                        by: by(&t.id, keys::STATUS),
                    });
                } else if b.due != t.due {
                    tasks.push(DateMove {
                        id: t.id.clone(),
                        title: t.title.clone(),
                        before: b.due,
                        after: t.due,
                        days: days(b.due, t.due),
                        by: by(&t.id, keys::DUE),
                    });
                }
            }
        }
    }
    for b in &before.tasks {
        if now.task(&b.id).is_none() {
            dropped.push(Item {
                id: b.id.clone(),
                title: b.title.clone(),
                by: by(&b.id, keys::DELETED),
            });
        }
    }
    tasks.sort_by_key(|m| std::cmp::Reverse(m.days));

    let mut milestones = Vec::new();
    for m in &now.milestones {
        if let Some(b) = before.milestone(&m.id)
            && b.due != m.due
        {
            let who = crate::schema::get_map(doc, &ROOT, keys::MILESTONES)
                .and_then(|c| crate::schema::get_map(doc, &c, &m.id))
                .and_then(|o| doc.get(&o, keys::DUE).ok().flatten())
                .and_then(|(_, id)| index.lookup(&id).map(|t| t.author.clone()));
            milestones.push(DateMove {
                id: m.id.clone(),
                title: m.title.clone(),
                before: b.due,
                after: m.due,
                days: days(b.due, m.due),
                by: who,
            });
        }
    }
    let go_live = (before.header.go_live != now.header.go_live).then(|| {
        let who = crate::schema::get_map(doc, &ROOT, keys::HEADER)
            .and_then(|h| doc.get(&h, keys::GO_LIVE).ok().flatten())
            .and_then(|(_, id)| index.lookup(&id).map(|t| t.author.clone()));
        DateMove {
            id: "go-live".into(),
            title: "Go-live".into(),
            before: before.header.go_live,
            after: now.header.go_live,
            days: days(before.header.go_live, now.header.go_live),
            by: who,
        }
    });

    let heads: Vec<ChangeHash> = baseline
        .heads
        .iter()
        .filter_map(|h| h.parse().ok())
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in doc.get_changes_meta(&heads) {
        // Recording a baseline changes nothing in the plan.
        if m.message
            .as_deref()
            .is_some_and(|s| s.starts_with("baseline create: "))
        {
            continue;
        }
        *counts
            .entry(crate::history::author_of(doc, &m))
            .or_default() += 1;
    }
    Ok(BaselineDiff {
        baseline: baseline.clone(),
        tasks,
        milestones,
        go_live,
        added,
        dropped,
        authors: counts.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Side;
    use crate::plan::{NewTask, TaskEdit};
    use crate::schedule::tests::d;

    #[test]
    fn concurrent_baselines_are_all_kept() {
        let ana = Identity::new("Ana", "ana@s.com", Side::Seller);
        let bob = Identity::new("Bob", "bob@b.com", Side::Buyer);
        let mut plan = PlanDoc::create("P", &ana, 0).unwrap();
        let mut other = plan.fork();
        plan.create_baseline(&ana, 1, "ana's").unwrap();
        other.create_baseline(&bob, 2, "bob's").unwrap();
        plan.merge(&mut other).unwrap();
        let names: Vec<String> = list(plan.doc()).into_iter().map(|b| b.name).collect();
        assert_eq!(names, ["ana's", "bob's"]);
        // A later baseline goes into one of the maps and is listed too.
        plan.create_baseline(&ana, 3, "third").unwrap();
        assert_eq!(list(plan.doc()).len(), 3);
    }

    #[test]
    fn diff_shows_slips_additions_drops_and_authors() {
        let ana = Identity::new("Ana", "ana@s.com", Side::Seller);
        let bob = Identity::new("Bob", "bob@b.com", Side::Buyer);
        let today = d("2026-12-01");
        let mut plan = PlanDoc::create("P", &ana, 0).unwrap();
        let m = plan
            .add_milestone(&ana, 0, "Sign", Some(d("2026-12-20")))
            .unwrap();
        let a = plan
            .add_task(
                &ana,
                0,
                today,
                NewTask {
                    title: "a".into(),
                    due: Some(d("2026-12-10")),
                    ..NewTask::default()
                },
            )
            .unwrap();
        let gone = plan
            .add_task(
                &ana,
                0,
                today,
                NewTask {
                    title: "gone".into(),
                    ..NewTask::default()
                },
            )
            .unwrap();
        let b = plan.create_baseline(&ana, 10, "signed-off").unwrap();
        assert_eq!(list(plan.doc()).len(), 1);
        assert!(plan.create_baseline(&ana, 11, "Signed-Off").is_err());

        // Bob slips a by 5 days, the milestone by 2, adds c, deletes gone.
        let mut bobs = plan.fork();
        bobs.edit_task(
            &bob,
            20,
            &a,
            TaskEdit {
                due: Some(Some(d("2026-12-15"))),
                ..TaskEdit::default()
            },
        )
        .unwrap();
        bobs.edit_milestone(
            &bob,
            21,
            &m,
            crate::plan::MilestoneEdit {
                due: Some(Some(d("2026-12-22"))),
                ..Default::default()
            },
        )
        .unwrap();
        bobs.add_task(
            &bob,
            22,
            today,
            NewTask {
                title: "c".into(),
                ..NewTask::default()
            },
        )
        .unwrap();
        bobs.delete_task(&bob, 23, &gone).unwrap();
        plan.merge(&mut bobs).unwrap();

        let doc = plan.doc_mut().document().clone();
        let diff = diff(&doc, &b, today).unwrap();
        assert_eq!(diff.tasks.len(), 1);
        assert_eq!(diff.tasks[0].days, 5);
        assert_eq!(diff.tasks[0].by.as_deref(), Some("Bob <bob@b.com>"));
        assert_eq!(diff.milestones[0].days, 2);
        assert_eq!(diff.added.len(), 1);
        assert_eq!(diff.added[0].title, "c");
        assert_eq!(diff.dropped.len(), 1);
        assert_eq!(diff.dropped[0].by.as_deref(), Some("Bob <bob@b.com>"));
        assert_eq!(diff.authors, vec![("Bob <bob@b.com>".to_string(), 4)]);
        assert!(diff.go_live.is_none());
    }
}
