//! One pass over a plan document into plain Rust structs ("raw" records:
//! what is stored, before any derivation or validation).
//!
//! This is the only place that walks the whole document. It is tolerant:
//! entries of the wrong shape are skipped, fields of the wrong type read as
//! absent, and both Text and plain strings are accepted for every string.

use std::collections::BTreeSet;

use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValueRef, ValueRef};

use crate::error::ModelError;
use crate::schema::{
    SCHEMA_VERSION, keys, value_ref_bool, value_ref_f64, value_ref_i64, value_ref_str,
};

/// The plan header as stored.
#[derive(Debug, Clone, Default)]
pub struct RawHeader {
    /// Title.
    pub title: String,
    /// Objective.
    pub objective: String,
    /// Success criteria.
    pub success_criteria: String,
    /// Target signature date (stored string).
    pub signature_date: Option<String>,
    /// Target go-live date (stored string).
    pub go_live: Option<String>,
    /// Creation time (ms).
    pub created_at: Option<i64>,
}

/// A person as stored.
#[derive(Debug, Clone, Default)]
pub struct RawPerson {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Side (stored string).
    pub side: String,
    /// Role.
    pub role: String,
    /// Order.
    pub order: f64,
}

/// A milestone as stored.
#[derive(Debug, Clone, Default)]
pub struct RawMilestone {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Due date (stored string).
    pub due: Option<String>,
    /// Order.
    pub order: f64,
    /// Soft-deleted.
    pub deleted: bool,
}

/// A task as stored.
#[derive(Debug, Clone, Default)]
pub struct RawTask {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Milestone id.
    pub milestone: Option<String>,
    /// Owner person id.
    pub owner: Option<String>,
    /// Start date (stored).
    pub start: Option<String>,
    /// Due date (stored).
    pub due: Option<String>,
    /// Status (stored).
    pub status: Option<String>,
    /// Completed date (stored).
    pub completed: Option<String>,
    /// Dependencies (task ids).
    pub deps: BTreeSet<String>,
    /// Kind (stored).
    pub kind: Option<String>,
    /// Priority (stored).
    pub priority: Option<String>,
    /// Order.
    pub order: f64,
    /// Creation time (ms).
    pub created_at: Option<i64>,
    /// Soft-deleted.
    pub deleted: bool,
}

/// A risk as stored.
#[derive(Debug, Clone, Default)]
pub struct RawRisk {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Impact (stored).
    pub impact: Option<String>,
    /// Likelihood (stored).
    pub likelihood: Option<String>,
    /// Mitigation.
    pub mitigation: String,
    /// Owner person id.
    pub owner: Option<String>,
    /// Status (stored).
    pub status: Option<String>,
    /// Order.
    pub order: f64,
}

/// A comment as stored.
#[derive(Debug, Clone, Default)]
pub struct RawComment {
    /// Id.
    pub id: String,
    /// Target entity id.
    pub target: String,
    /// Author (`Name <email>`).
    pub author: String,
    /// Time (ms).
    pub at: i64,
    /// Text.
    pub text: String,
}

/// The whole plan as stored.
#[derive(Debug, Clone, Default)]
pub struct RawPlan {
    /// Schema version.
    pub schema: u64,
    /// Header.
    pub header: RawHeader,
    /// People, in key order.
    pub people: Vec<RawPerson>,
    /// Milestones, in key order.
    pub milestones: Vec<RawMilestone>,
    /// Tasks, in key order.
    pub tasks: Vec<RawTask>,
    /// Risks, in key order.
    pub risks: Vec<RawRisk>,
    /// Comments, in key order.
    pub comments: Vec<RawComment>,
    /// Number of entity fields holding concurrent values.
    pub conflicts: usize,
}

/// Check that the document is a plan this build can read; returns its
/// schema version.
pub fn check_schema<R: ReadDoc>(doc: &R) -> Result<u64, ModelError> {
    let schema = match doc.get(ROOT, keys::SCHEMA) {
        Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
            automerge::ScalarValue::Uint(u) => Some(*u),
            automerge::ScalarValue::Int(i) => u64::try_from(*i).ok(),
            automerge::ScalarValue::F64(f) if *f >= 0.0 && f.fract() == 0.0 => Some(*f as u64),
            _ => None,
        },
        _ => None,
    };
    let has_header = matches!(
        doc.get(ROOT, keys::HEADER),
        Ok(Some((automerge::Value::Object(ObjType::Map), _)))
    );
    match schema {
        Some(v) if v > SCHEMA_VERSION => Err(ModelError::NewerSchema {
            found: v,
            supported: SCHEMA_VERSION,
        }),
        Some(v) if has_header => Ok(v),
        Some(_) => Err(ModelError::NotAPlan("it has no plan header".into())),
        None if has_header => Err(ModelError::NotAPlan(
            "its `schema` field is missing or not a number".into(),
        )),
        None => Err(ModelError::NotAPlan(
            "it has no `schema` or `header`; is this a plan id?".into(),
        )),
    }
}

/// Whether text fields (descriptions, mitigations, comments) are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Texts {
    /// Read everything.
    Read,
    /// Skip long texts (for validation during edits).
    Skip,
}

/// Read the whole plan.
pub fn read_plan<R: ReadDoc>(doc: &R, texts: Texts) -> Result<RawPlan, ModelError> {
    let schema = check_schema(doc)?;
    let mut plan = RawPlan {
        schema,
        ..RawPlan::default()
    };
    let mut conflicts = 0usize;
    if let Some(h) = crate::schema::get_map(doc, &ROOT, keys::HEADER) {
        plan.header = read_header(doc, &h, &mut conflicts);
    }
    plan.people = read_collection(doc, keys::PEOPLE, |doc, id, obj| {
        read_person(doc, id, obj, &mut conflicts)
    });
    plan.milestones = read_collection(doc, keys::MILESTONES, |doc, id, obj| {
        read_milestone(doc, id, obj, &mut conflicts)
    });
    plan.tasks = read_collection(doc, keys::TASKS, |doc, id, obj| {
        read_task(doc, id, obj, texts, &mut conflicts)
    });
    plan.risks = read_collection(doc, keys::RISKS, |doc, id, obj| {
        read_risk(doc, id, obj, texts, &mut conflicts)
    });
    if texts == Texts::Read {
        plan.comments = read_collection(doc, keys::COMMENTS, |doc, id, obj| {
            read_comment(doc, id, obj, &mut conflicts)
        });
    }
    plan.conflicts = conflicts;
    Ok(plan)
}

fn read_collection<R: ReadDoc, T>(
    doc: &R,
    key: &str,
    mut f: impl FnMut(&R, &str, &ObjId) -> T,
) -> Vec<T> {
    let Some(coll) = crate::schema::get_map(doc, &ROOT, key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in doc.map_range(&coll, ..) {
        if let ValueRef::Object(ObjType::Map) = item.value {
            let obj = item.id();
            out.push(f(doc, &item.key, &obj));
        }
    }
    out
}

/// Iterate the fields of an entity map, counting conflicts.
fn fields<R: ReadDoc>(
    doc: &R,
    obj: &ObjId,
    conflicts: &mut usize,
    mut f: impl FnMut(&str, &ValueRef<'_>, &ObjId),
) {
    for item in doc.map_range(obj, ..) {
        if item.conflict && has_distinct_values(doc, obj, &item.key) {
            *conflicts += 1;
        }
        let id = match item.value {
            ValueRef::Object(_) => item.id(),
            _ => ObjId::Root,
        };
        f(&item.key, &item.value, &id);
    }
}

/// Whether `obj[key]` holds two or more different values (identical
/// concurrent writes are not a conflict anyone needs to see).
fn has_distinct_values<R: ReadDoc>(doc: &R, obj: &ObjId, key: &str) -> bool {
    let Ok(all) = doc.get_all(obj, key) else {
        return false;
    };
    let rendered: Vec<String> = all
        .iter()
        .map(|(v, id)| crate::schema::display_value(doc, v, id))
        .collect();
    rendered.iter().any(|r| *r != rendered[0])
}

fn opt_str<R: ReadDoc>(doc: &R, v: &ValueRef<'_>, id: &ObjId) -> Option<String> {
    value_ref_str(doc, v, id).filter(|s| !s.is_empty())
}

fn read_header<R: ReadDoc>(doc: &R, obj: &ObjId, conflicts: &mut usize) -> RawHeader {
    let mut h = RawHeader::default();
    fields(doc, obj, conflicts, |k, v, id| match k {
        keys::TITLE => h.title = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::OBJECTIVE => h.objective = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::SUCCESS_CRITERIA => {
            h.success_criteria = value_ref_str(doc, v, id).unwrap_or_default()
        }
        keys::SIGNATURE_DATE => h.signature_date = opt_str(doc, v, id),
        keys::GO_LIVE => h.go_live = opt_str(doc, v, id),
        keys::CREATED_AT => h.created_at = value_ref_i64(v),
        _ => {}
    });
    h
}

fn read_person<R: ReadDoc>(doc: &R, pid: &str, obj: &ObjId, conflicts: &mut usize) -> RawPerson {
    let mut p = RawPerson {
        id: pid.to_string(),
        ..RawPerson::default()
    };
    fields(doc, obj, conflicts, |k, v, id| match k {
        keys::NAME => p.name = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::EMAIL => p.email = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::SIDE => p.side = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::ROLE => p.role = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::ORDER => p.order = value_ref_f64(v).unwrap_or(0.0),
        _ => {}
    });
    p
}

fn read_milestone<R: ReadDoc>(
    doc: &R,
    mid: &str,
    obj: &ObjId,
    conflicts: &mut usize,
) -> RawMilestone {
    let mut m = RawMilestone {
        id: mid.to_string(),
        ..RawMilestone::default()
    };
    fields(doc, obj, conflicts, |k, v, id| match k {
        keys::TITLE => m.title = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::DUE => m.due = opt_str(doc, v, id),
        keys::ORDER => m.order = value_ref_f64(v).unwrap_or(0.0),
        keys::DELETED => m.deleted = value_ref_bool(v).unwrap_or(false),
        _ => {}
    });
    m
}

fn read_deps<R: ReadDoc>(doc: &R, obj: &ObjId) -> BTreeSet<String> {
    doc.map_range(obj, ..)
        .filter(|item| {
            !matches!(
                item.value,
                ValueRef::Scalar(ScalarValueRef::Boolean(false))
                    | ValueRef::Scalar(ScalarValueRef::Null)
            )
        })
        .map(|item| item.key.to_string())
        .collect()
}

fn read_task<R: ReadDoc>(
    doc: &R,
    tid: &str,
    obj: &ObjId,
    texts: Texts,
    conflicts: &mut usize,
) -> RawTask {
    let mut t = RawTask {
        id: tid.to_string(),
        ..RawTask::default()
    };
    fields(doc, obj, conflicts, |k, v, id| match k {
        keys::TITLE => t.title = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::DESCRIPTION if texts == Texts::Read => {
            t.description = value_ref_str(doc, v, id).unwrap_or_default()
        }
        keys::MILESTONE => t.milestone = opt_str(doc, v, id),
        keys::OWNER => t.owner = opt_str(doc, v, id),
        keys::START => t.start = opt_str(doc, v, id),
        keys::DUE => t.due = opt_str(doc, v, id),
        keys::STATUS => t.status = opt_str(doc, v, id),
        keys::COMPLETED => t.completed = opt_str(doc, v, id),
        keys::DEPS => {
            if let ValueRef::Object(ObjType::Map) = v {
                t.deps = read_deps(doc, id);
            }
        }
        keys::KIND => t.kind = opt_str(doc, v, id),
        keys::PRIORITY => t.priority = opt_str(doc, v, id),
        keys::ORDER => t.order = value_ref_f64(v).unwrap_or(0.0),
        keys::CREATED_AT => t.created_at = value_ref_i64(v),
        keys::DELETED => t.deleted = value_ref_bool(v).unwrap_or(false),
        _ => {}
    });
    t
}

fn read_risk<R: ReadDoc>(
    doc: &R,
    rid: &str,
    obj: &ObjId,
    texts: Texts,
    conflicts: &mut usize,
) -> RawRisk {
    let mut r = RawRisk {
        id: rid.to_string(),
        ..RawRisk::default()
    };
    fields(doc, obj, conflicts, |k, v, id| match k {
        keys::TITLE => r.title = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::IMPACT => r.impact = opt_str(doc, v, id),
        keys::LIKELIHOOD => r.likelihood = opt_str(doc, v, id),
        keys::MITIGATION if texts == Texts::Read => {
            r.mitigation = value_ref_str(doc, v, id).unwrap_or_default()
        }
        keys::OWNER => r.owner = opt_str(doc, v, id),
        keys::STATUS => r.status = opt_str(doc, v, id),
        keys::ORDER => r.order = value_ref_f64(v).unwrap_or(0.0),
        _ => {}
    });
    r
}

fn read_comment<R: ReadDoc>(doc: &R, cid: &str, obj: &ObjId, conflicts: &mut usize) -> RawComment {
    let mut c = RawComment {
        id: cid.to_string(),
        ..RawComment::default()
    };
    fields(doc, obj, conflicts, |k, v, id| match k {
        keys::TARGET => c.target = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::AUTHOR => c.author = value_ref_str(doc, v, id).unwrap_or_default(),
        keys::AT => c.at = value_ref_i64(v).unwrap_or(0),
        keys::TEXT => c.text = value_ref_str(doc, v, id).unwrap_or_default(),
        _ => {}
    });
    c
}
