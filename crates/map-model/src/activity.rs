//! Activity: which change last touched each task, and who made it.
//!
//! Every Automerge operation id is `(counter, actor)`, and each change of an
//! actor covers a contiguous range of counters (`start_op..=max_op`). So the
//! change behind any value still in the document is found by a binary search
//! in that actor's changes, without replaying history: [`ChangeIndex`].
//!
//! A task's last touch is the newest change among: the op that created the
//! task, the ops of the values its fields hold now (including its
//! dependency set and the characters of its description) and the comments
//! on it. An edit that was later overwritten no longer counts (the newer
//! one does), and removing a dependency leaves no value to point at, so
//! that one edit is not seen; both are fine for "who touched this last".

use std::collections::{BTreeMap, HashMap};

use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, ValueRef};
use serde::{Deserialize, Serialize};

use crate::schema::{get_map, keys};

/// A change that touched something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    /// Time claimed by the writer (ms since the epoch).
    pub time: i64,
    /// `Name <email>` if recorded, else the actor id.
    pub author: String,
    /// Change hash (hex).
    pub hash: String,
}

#[derive(Debug, Clone)]
struct Span {
    start: u64,
    max: u64,
    touch: Touch,
}

/// Looks up the change behind an operation id.
#[derive(Debug, Clone, Default)]
pub struct ChangeIndex {
    by_actor: HashMap<ActorId, Vec<Span>>,
}

/// The author of a change's actor, as `history` shows it.
fn author_of(doc: &Automerge, m: &automerge::ChangeMetadata<'_>) -> String {
    m.author
        .as_ref()
        .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
        .or_else(|| {
            doc.get_author_for_actor(&m.actor)
                .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
        })
        .unwrap_or_else(|| m.actor.to_hex_string())
}

impl ChangeIndex {
    /// Index every change of `doc`.
    pub fn new(doc: &Automerge) -> ChangeIndex {
        let mut by_actor: HashMap<ActorId, Vec<Span>> = HashMap::new();
        for m in doc.get_changes_meta(&[]) {
            let touch = Touch {
                time: m.timestamp,
                author: author_of(doc, &m),
                hash: m.hash.to_string(),
            };
            by_actor
                .entry(m.actor.clone().into_owned())
                .or_default()
                .push(Span {
                    start: m.start_op,
                    max: m.max_op.max(m.start_op),
                    touch,
                });
        }
        for v in by_actor.values_mut() {
            v.sort_by_key(|s| s.start);
        }
        ChangeIndex { by_actor }
    }

    /// The change that made operation (or object) `id`.
    pub fn lookup(&self, id: &ObjId) -> Option<&Touch> {
        let ObjId::Id(counter, actor, _) = id else {
            return None;
        };
        let spans = self.by_actor.get(actor)?;
        let i = spans.partition_point(|s| s.start <= *counter);
        let s = spans.get(i.checked_sub(1)?)?;
        (*counter <= s.max).then_some(&s.touch)
    }
}

fn newer<'a>(best: &mut Option<&'a Touch>, t: Option<&'a Touch>) {
    if let Some(t) = t
        && best.is_none_or(|b| (t.time, &t.hash) > (b.time, &b.hash))
    {
        *best = Some(t);
    }
}

/// The newest change behind any value held in `obj`, recursively.
fn newest_in<'a>(
    doc: &Automerge,
    index: &'a ChangeIndex,
    obj: &ObjId,
    best: &mut Option<&'a Touch>,
    depth: usize,
) {
    match doc.object_type(obj) {
        Ok(ObjType::Map) | Ok(ObjType::Table) => {
            for item in doc.map_range(obj, ..) {
                newer(best, index.lookup(&item.id()));
                if let ValueRef::Object(_) = item.value
                    && depth < 4
                {
                    newest_in(doc, index, &item.id(), best, depth + 1);
                }
            }
        }
        Ok(ObjType::Text) | Ok(ObjType::List) => {
            for item in doc.list_range(obj, ..) {
                newer(best, index.lookup(&item.id()));
            }
        }
        Err(_) => {}
    }
}

/// Task id -> the newest change that touched it (live and deleted tasks).
pub fn last_touched(doc: &Automerge) -> BTreeMap<String, Touch> {
    let index = ChangeIndex::new(doc);
    let mut out: BTreeMap<String, Touch> = BTreeMap::new();
    let Some(tasks) = get_map(doc, &ROOT, keys::TASKS) else {
        return out;
    };
    for item in doc.map_range(&tasks, ..) {
        let obj = item.id();
        let mut best = index.lookup(&obj);
        newest_in(doc, &index, &obj, &mut best, 0);
        if let Some(b) = best {
            out.insert(item.key.to_string(), b.clone());
        }
    }
    // Comments touch their target.
    if let Some(comments) = get_map(doc, &ROOT, keys::COMMENTS) {
        for item in doc.map_range(&comments, ..) {
            let obj = item.id();
            let Some(target) = crate::schema::get_str(doc, &obj, keys::TARGET) else {
                continue;
            };
            let Some(entry) = out.get_mut(&target) else {
                continue;
            };
            if let Some(t) = index.lookup(&obj)
                && (t.time, &t.hash) > (entry.time, &entry.hash)
            {
                *entry = t.clone();
            }
        }
    }
    out
}

/// The change behind the current value of `field` of task `id`, if any.
pub fn field_touch<'a>(
    doc: &Automerge,
    index: &'a ChangeIndex,
    task: &str,
    field: &str,
) -> Option<&'a Touch> {
    let tasks = get_map(doc, &ROOT, keys::TASKS)?;
    let obj = get_map(doc, &tasks, task)?;
    if field.is_empty() {
        return index.lookup(&obj);
    }
    let (_, id) = doc.get(&obj, field).ok()??;
    index.lookup(&id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Identity, Side};
    use crate::plan::{NewTask, PlanDoc};
    use crate::schedule::tests::d;
    use crate::schema::TaskStatus;

    #[test]
    fn last_touch_is_the_newest_change_on_the_task() {
        let ana = Identity::new("Ana", "ana@s.com", Side::Seller);
        let bob = Identity::new("Bob", "bob@b.com", Side::Buyer);
        let mut plan = PlanDoc::create("P", &ana, 1_000).unwrap();
        let today = d("2026-12-01");
        let a = plan
            .add_task(
                &ana,
                2_000,
                today,
                NewTask {
                    title: "a".into(),
                    ..NewTask::default()
                },
            )
            .unwrap();
        let b = plan
            .add_task(
                &ana,
                3_000,
                today,
                NewTask {
                    title: "b".into(),
                    ..NewTask::default()
                },
            )
            .unwrap();
        plan.set_status(&bob, 5_000, today, &a, TaskStatus::InProgress)
            .unwrap();
        plan.add_comment(&bob, 7_000, &b, "ping").unwrap();
        let doc = plan.doc_mut().document().clone();
        let t = last_touched(&doc);
        assert_eq!(t.get(&a).map(|x| x.time), Some(5_000));
        assert_eq!(
            t.get(&a).map(|x| x.author.as_str()),
            Some("Bob <bob@b.com>")
        );
        assert_eq!(t.get(&b).map(|x| x.time), Some(7_000));
        let index = ChangeIndex::new(&doc);
        assert_eq!(
            field_touch(&doc, &index, &a, "title").map(|x| x.author.as_str()),
            Some("Ana <ana@s.com>")
        );
        assert_eq!(
            field_touch(&doc, &index, &a, "").map(|x| x.time),
            Some(2_000)
        );
    }
}
