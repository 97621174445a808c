//! The plan document's schema (version 1): key names, enumerations and the
//! tolerant readers used on documents that come from peers.
//!
//! Readers never panic on malformed input: a field of the wrong type reads as
//! absent. Every string field accepts both Automerge Text and plain strings
//! (JS automerge writes Text for strings).

use std::fmt;
use std::str::FromStr;

use automerge::{ObjId, ObjType, ReadDoc, ScalarValueRef, Value, ValueRef};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// The schema version this build writes and the highest it reads.
pub const SCHEMA_VERSION: u64 = 1;

/// Root keys.
pub mod keys {
    #![allow(missing_docs)]
    pub const SCHEMA: &str = "schema";
    pub const HEADER: &str = "header";
    pub const PEOPLE: &str = "people";
    pub const MILESTONES: &str = "milestones";
    pub const TASKS: &str = "tasks";
    pub const RISKS: &str = "risks";
    pub const COMMENTS: &str = "comments";

    pub const TITLE: &str = "title";
    pub const OBJECTIVE: &str = "objective";
    pub const SUCCESS_CRITERIA: &str = "success_criteria";
    pub const SIGNATURE_DATE: &str = "signature_date";
    pub const GO_LIVE: &str = "go_live";
    pub const CREATED_AT: &str = "created_at";

    pub const NAME: &str = "name";
    pub const EMAIL: &str = "email";
    pub const SIDE: &str = "side";
    pub const ROLE: &str = "role";
    pub const ORDER: &str = "order";
    pub const DUE: &str = "due";
    pub const DELETED: &str = "deleted";

    pub const DESCRIPTION: &str = "description";
    pub const MILESTONE: &str = "milestone";
    pub const OWNER: &str = "owner";
    pub const START: &str = "start";
    pub const STATUS: &str = "status";
    pub const COMPLETED: &str = "completed";
    pub const DEPS: &str = "deps";
    pub const KIND: &str = "kind";
    pub const PRIORITY: &str = "priority";

    pub const IMPACT: &str = "impact";
    pub const LIKELIHOOD: &str = "likelihood";
    pub const MITIGATION: &str = "mitigation";

    pub const TARGET: &str = "target";
    pub const AUTHOR: &str = "author";
    pub const AT: &str = "at";
    pub const TEXT: &str = "text";
}

/// The kinds of entities a plan holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    /// The plan header.
    Header,
    /// A person.
    Person,
    /// A milestone.
    Milestone,
    /// A task.
    Task,
    /// A risk.
    Risk,
    /// A comment.
    Comment,
}

impl EntityKind {
    /// Lowercase name, as used in commands.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Header => "header",
            EntityKind::Person => "person",
            EntityKind::Milestone => "milestone",
            EntityKind::Task => "task",
            EntityKind::Risk => "risk",
            EntityKind::Comment => "comment",
        }
    }

    /// The root key of the collection holding this kind.
    pub fn collection(self) -> &'static str {
        match self {
            EntityKind::Header => keys::HEADER,
            EntityKind::Person => keys::PEOPLE,
            EntityKind::Milestone => keys::MILESTONES,
            EntityKind::Task => keys::TASKS,
            EntityKind::Risk => keys::RISKS,
            EntityKind::Comment => keys::COMMENTS,
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident, $field:literal, $expected:literal, default $def:ident, { $($(#[$vm:meta])* $var:ident => $s:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vm])* $var,)+
        }

        impl $name {
            /// All values, in order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s,)+ }
            }
            /// Parse a stored value; `None` if unknown.
            pub fn from_stored(s: &str) -> Option<$name> {
                s.parse().ok()
            }
        }

        impl Default for $name {
            fn default() -> Self { $name::$def }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let l = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
                match l.as_str() {
                    $($s $(| $alias)* => Ok($name::$var),)+
                    _ => Err(ModelError::InvalidValue { field: $field, value: s.to_string(), expected: $expected }),
                }
            }
        }
    };
}

string_enum!(
    /// Status of a task.
    TaskStatus, "status", "todo, in_progress, blocked, done or dropped", default Todo, {
        /// Not started.
        Todo => "todo" | "open" | "to_do",
        /// Started.
        InProgress => "in_progress" | "doing" | "started" | "wip",
        /// Waiting on something.
        Blocked => "blocked",
        /// Finished.
        Done => "done" | "complete" | "completed",
        /// Will not be done.
        Dropped => "dropped" | "cancelled" | "canceled",
    }
);

impl TaskStatus {
    /// Done or dropped: nothing left to do.
    pub fn is_closed(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Dropped)
    }
}

string_enum!(
    /// Kind of task.
    TaskKind, "kind", "task, meeting or approval", default Task, {
        /// An action item.
        Task => "task",
        /// A meeting.
        Meeting => "meeting",
        /// An approval or sign-off.
        Approval => "approval",
    }
);

string_enum!(
    /// Priority of a task.
    Priority, "priority", "low, medium or high", default Medium, {
        /// Low.
        Low => "low" | "l",
        /// Medium.
        Medium => "medium" | "med" | "m",
        /// High.
        High => "high" | "h",
    }
);

string_enum!(
    /// Impact or likelihood of a risk.
    Level, "level", "low, medium or high", default Medium, {
        /// Low.
        Low => "low" | "l",
        /// Medium.
        Medium => "medium" | "med" | "m",
        /// High.
        High => "high" | "h",
    }
);

string_enum!(
    /// Status of a risk.
    RiskStatus, "risk status", "open, mitigated or closed", default Open, {
        /// Still a risk.
        Open => "open",
        /// Mitigation in place.
        Mitigated => "mitigated",
        /// No longer a risk.
        Closed => "closed",
    }
);

/// Well-known stakeholder roles (free text is also accepted).
pub const KNOWN_ROLES: &[&str] = &[
    "champion",
    "economic buyer",
    "technical evaluator",
    "legal",
    "security",
    "procurement",
    "executive sponsor",
    "end user",
    "account executive",
    "solutions engineer",
    "customer success",
    "leadership",
];

/// Normalise a role: known roles are matched case-insensitively (and with
/// `_`/`-` for spaces); anything else is kept as typed, trimmed.
pub fn normalize_role(role: &str) -> String {
    let l = role.trim().to_lowercase().replace(['_', '-'], " ");
    match KNOWN_ROLES.iter().find(|k| **k == l) {
        Some(k) => (*k).to_string(),
        None => role.trim().to_string(),
    }
}

/// Dates are stored as `YYYY-MM-DD` strings.
pub fn date_to_stored(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Parse a stored date; `None` if malformed.
pub fn date_from_stored(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// Read a string from a value: plain string or Text object.
pub fn value_ref_str<R: ReadDoc>(doc: &R, value: &ValueRef<'_>, id: &ObjId) -> Option<String> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Str(s)) => Some(s.to_string()),
        ValueRef::Object(ObjType::Text) => doc.text(id).ok(),
        _ => None,
    }
}

/// Read a string from a `Value` (as returned by `get`/`get_all`).
pub fn value_str<R: ReadDoc>(doc: &R, value: &Value<'_>, id: &ObjId) -> Option<String> {
    match value {
        Value::Scalar(s) => match s.as_ref() {
            automerge::ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        Value::Object(ObjType::Text) => doc.text(id).ok(),
        _ => None,
    }
}

/// Read a number (int, uint, float, timestamp) as f64.
pub fn value_ref_f64(value: &ValueRef<'_>) -> Option<f64> {
    match value {
        ValueRef::Scalar(ScalarValueRef::F64(f)) if f.is_finite() => Some(*f),
        ValueRef::Scalar(ScalarValueRef::Int(i)) => Some(*i as f64),
        ValueRef::Scalar(ScalarValueRef::Uint(u)) => Some(*u as f64),
        ValueRef::Scalar(ScalarValueRef::Timestamp(t)) => Some(*t as f64),
        ValueRef::Scalar(ScalarValueRef::Counter(c)) => Some(*c as f64),
        _ => None,
    }
}

/// Read an integer (int, uint, integral float, timestamp) as i64.
pub fn value_ref_i64(value: &ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Int(i)) => Some(*i),
        ValueRef::Scalar(ScalarValueRef::Uint(u)) => i64::try_from(*u).ok(),
        ValueRef::Scalar(ScalarValueRef::Timestamp(t)) => Some(*t),
        ValueRef::Scalar(ScalarValueRef::Counter(c)) => Some(*c),
        ValueRef::Scalar(ScalarValueRef::F64(f)) if f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

/// Read a boolean.
pub fn value_ref_bool(value: &ValueRef<'_>) -> Option<bool> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Boolean(b)) => Some(*b),
        _ => None,
    }
}

/// Render any value for humans (conflict listings).
pub fn display_value<R: ReadDoc>(doc: &R, value: &Value<'_>, id: &ObjId) -> String {
    match value {
        Value::Object(ObjType::Text) => doc.text(id).unwrap_or_default(),
        Value::Object(ObjType::Map) => "(map)".to_string(),
        Value::Object(_) => "(list)".to_string(),
        Value::Scalar(s) => match s.as_ref() {
            automerge::ScalarValue::Str(s) => s.to_string(),
            automerge::ScalarValue::Null => "(none)".to_string(),
            other => other.to_string(),
        },
    }
}

/// A map object at `parent[key]`, if it is a map.
pub fn get_map<R: ReadDoc>(doc: &R, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

/// A string (Text or Str) at `parent[key]`.
pub fn get_str<R: ReadDoc>(doc: &R, parent: &ObjId, key: &str) -> Option<String> {
    match doc.get(parent, key) {
        Ok(Some((v, id))) => value_str(doc, &v, &id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_leniently() {
        assert_eq!(
            "In Progress".parse::<TaskStatus>().unwrap(),
            TaskStatus::InProgress
        );
        assert_eq!(
            "in-progress".parse::<TaskStatus>().unwrap(),
            TaskStatus::InProgress
        );
        assert_eq!(TaskStatus::InProgress.as_str(), "in_progress");
        assert!("later".parse::<TaskStatus>().is_err());
        assert_eq!("H".parse::<Priority>().unwrap(), Priority::High);
        assert_eq!(
            serde_json::to_string(&TaskStatus::InProgress).unwrap(),
            "\"in_progress\""
        );
    }

    #[test]
    fn roles_normalise() {
        assert_eq!(normalize_role("Economic_Buyer"), "economic buyer");
        assert_eq!(normalize_role(" Head of IT "), "Head of IT");
    }

    #[test]
    fn dates() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(date_to_stored(d), "2026-03-09");
        assert_eq!(date_from_stored("2026-03-09"), Some(d));
        assert_eq!(date_from_stored("soon"), None);
    }
}
