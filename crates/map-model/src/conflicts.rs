//! Concurrent values: fields two participants set at the same time, and
//! dependency cycles a merge created.
//!
//! Automerge keeps every concurrent value of a map key and picks one winner
//! deterministically. `map conflicts` lists them so people can see what was
//! overwritten; writing the field again resolves it (the new value
//! supersedes all the ones it has seen).

use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, ValueRef};
use serde::{Deserialize, Serialize};

use crate::deps::CycleBreak;
use crate::error::Result;
use crate::raw::{self, Texts};
use crate::schema::{EntityKind, display_value, get_map, get_str, keys};

/// One of the concurrent values of a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    /// The value, rendered for humans.
    pub value: String,
    /// Actor that wrote it (hex), if known.
    pub actor: Option<String>,
    /// Author (`Name <email>`) that wrote it, if recorded.
    pub author: Option<String>,
    /// Whether this is the value the plan shows.
    pub winner: bool,
}

/// A field holding concurrent values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldConflict {
    /// Kind of entity.
    pub kind: EntityKind,
    /// Entity id (`header` for the header).
    pub id: String,
    /// Entity title or name.
    pub title: String,
    /// Field name.
    pub field: String,
    /// The values, winner first.
    pub values: Vec<ConflictValue>,
}

/// Something a merge left for people to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Conflict {
    /// Concurrent values of one field.
    Field(FieldConflict),
    /// A dependency cycle; one dependency is ignored.
    DependencyCycle {
        /// The broken cycle.
        #[serde(flatten)]
        cycle: CycleBreak,
        /// Titles of the tasks in `cycle.cycle`, same order.
        titles: Vec<String>,
    },
}

/// The concurrent values at `obj[key]`, winner first, or `None` when there
/// are fewer than two distinct values.
pub fn values_at(doc: &Automerge, obj: &ObjId, key: &str) -> Option<Vec<ConflictValue>> {
    let all = doc.get_all(obj, key).ok()?;
    if all.len() < 2 {
        return None;
    }
    let winner = doc.get(obj, key).ok().flatten().map(|(_, id)| id);
    let mut out: Vec<ConflictValue> = all
        .iter()
        .map(|(v, id)| {
            let (actor, author) = match id {
                ObjId::Id(_, actor, _) => (
                    Some(actor.to_hex_string()),
                    doc.get_author_for_actor(actor)
                        .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned()),
                ),
                ObjId::Root => (None, None),
            };
            ConflictValue {
                value: display_value(doc, v, id),
                actor,
                author,
                winner: winner.as_ref() == Some(id),
            }
        })
        .collect();
    let first = out.iter().filter(|v| v.value == out[0].value).count();
    if first == out.len() {
        // Everyone wrote the same thing: nothing to resolve.
        return None;
    }
    out.sort_by_key(|v| !v.winner);
    Some(out)
}

fn entity_conflicts(
    doc: &Automerge,
    kind: EntityKind,
    id: &str,
    title: &str,
    obj: &ObjId,
    out: &mut Vec<Conflict>,
) {
    let keys: Vec<String> = doc
        .map_range(obj, ..)
        .filter(|i| i.conflict)
        .map(|i| i.key.to_string())
        .collect();
    for k in keys {
        if let Some(values) = values_at(doc, obj, &k) {
            out.push(Conflict::Field(FieldConflict {
                kind,
                id: id.to_string(),
                title: title.to_string(),
                field: k,
                values,
            }));
        }
    }
}

/// Every conflict in the plan: fields with concurrent values (header,
/// people, milestones, tasks, risks), then dependency cycles.
pub fn find(doc: &Automerge) -> Result<Vec<Conflict>> {
    raw::check_schema(doc)?;
    let mut out = Vec::new();
    if let Some(h) = get_map(doc, &ROOT, keys::HEADER) {
        let title = get_str(doc, &h, keys::TITLE).unwrap_or_default();
        entity_conflicts(doc, EntityKind::Header, "header", &title, &h, &mut out);
    }
    for kind in [
        EntityKind::Person,
        EntityKind::Milestone,
        EntityKind::Task,
        EntityKind::Risk,
    ] {
        let Some(coll) = get_map(doc, &ROOT, kind.collection()) else {
            continue;
        };
        let label_key = if kind == EntityKind::Person {
            keys::NAME
        } else {
            keys::TITLE
        };
        for item in doc.map_range(&coll, ..) {
            if let ValueRef::Object(ObjType::Map) = item.value {
                let obj = item.id();
                let title = get_str(doc, &obj, label_key).unwrap_or_default();
                entity_conflicts(doc, kind, &item.key, &title, &obj, &mut out);
            }
        }
    }
    let plan = raw::read_plan(doc, Texts::Skip)?;
    let mut edges = crate::plan::live_edges(&plan);
    let titles: std::collections::BTreeMap<&str, &str> = plan
        .tasks
        .iter()
        .map(|t| (t.id.as_str(), t.title.as_str()))
        .collect();
    for b in crate::deps::break_cycles(&mut edges) {
        let t = b
            .cycle
            .iter()
            .map(|id| titles.get(id.as_str()).copied().unwrap_or("?").to_string())
            .collect();
        out.push(Conflict::DependencyCycle {
            cycle: b,
            titles: t,
        });
    }
    Ok(out)
}
